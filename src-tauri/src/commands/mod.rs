//! The Tauri commands, registered in one list in `lib.rs`.

use serde::Serialize;

/// What the shell shows before the field app's screens exist.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// The checklists bundled with this build, as `id@version`.
    pub checklists: Vec<String>,
}

#[tauri::command]
pub fn app_info() -> AppInfo {
    AppInfo {
        name: "Wardcheck",
        version: env!("CARGO_PKG_VERSION"),
        checklists: wardcheck_core::checklist::bundled_summaries(),
    }
}
