//! Shared support for the end-to-end tests: fixtures that both the test binaries
//! and the helper processes they start must agree on.

use wardcheck_core::checklist::{Checklist, Scope, bundled};
use wardcheck_core::store::StoreKey;

/// The store key the crash test and its writer process share (test data only).
pub fn store_key() -> StoreKey {
    StoreKey::from_bytes([0x5a; 32])
}

/// The checklist inspectors take on site: the shipped CQC template.
pub fn crash_checklist() -> Checklist {
    bundled()
        .into_iter()
        .find(|c| c.id == "cqc-onsite-cyber")
        .expect("the CQC on-site template is bundled")
}

/// The inspection-scope items the writer edits notes on, in a fixed order.
pub fn crash_items(checklist: &Checklist) -> Vec<String> {
    checklist
        .items()
        .filter(|(s, _)| s.scope == Scope::Inspection)
        .map(|(_, i)| i.id.clone())
        .take(40)
        .collect()
}

/// Runs `f` on a thread of its own and returns its answer: for blocking calls (the
/// PostgreSQL client, which starts a runtime of its own) made from an async test, whose
/// thread drives the test's runtime and may not block on another.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

pub mod app_driver;
pub mod client;
pub mod fault_proxy;
pub mod hostile;
pub mod pg;
pub mod process_group;
pub mod server;
pub mod updates;
pub mod xvfb;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// `<workspace>/target`, or `$CARGO_TARGET_DIR` (a relative one taken from the workspace
/// root, where the scripts run cargo).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Builds the workspace's binaries (a no-op when they are up to date, so a test never
/// starts a stale one; once per test process) and returns the path of `name`.
///
/// The build is the scripts' `cargo build --workspace --all-targets`, not
/// `cargo build -p NAME`: only a workspace build with every target resolves features
/// the way `cargo test --workspace` does, so this reuses what the test run compiled
/// instead of compiling a second set (Tauri and WebKit among them).
pub fn workspace_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--all-targets"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .status()
            .expect("running cargo to build the workspace");
        assert!(
            status.success(),
            "building the workspace failed ({status}); see cargo's output above"
        );
    });
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "the build succeeded but {} does not exist",
        path.display()
    );
    path
}
