//! Permissions are generated for exactly the app's commands (`allow-$command`), which the
//! capability file (capabilities/default.json) then grants the main window. The list of
//! commands is written once, in the isolation hook (isolation/index.js, `ALLOWED`), which
//! passes only those on at run time; this script reads it from there.

use std::fs;

const HOOK: &str = "isolation/index.js";

/// The app's own command names in the hook's `ALLOWED` set (core and plugin entries,
/// such as `plugin:event|listen`, have their permissions from Tauri).
fn allowed_commands(hook: &str) -> Vec<&str> {
    let start = hook
        .find("new Set([")
        .unwrap_or_else(|| panic!("{HOOK}: no `const ALLOWED = new Set([...])`"));
    let list = &hook[start..];
    let list = &list[..list
        .find("])")
        .unwrap_or_else(|| panic!("{HOOK}: the ALLOWED list is not closed"))];
    list.split('"')
        .skip(1)
        .step_by(2)
        .filter(|name| !name.starts_with("plugin:"))
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed={HOOK}");
    let hook = fs::read_to_string(HOOK).unwrap_or_else(|e| panic!("reading {HOOK}: {e}"));
    let commands: Vec<&'static str> = allowed_commands(hook.leak());
    assert!(
        !commands.is_empty()
            && commands
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
        "{HOOK}: the ALLOWED command names are snake_case: {commands:?}"
    );
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands.leak())),
    )
    .expect("tauri build script failed");
}
