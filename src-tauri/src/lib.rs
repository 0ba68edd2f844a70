//! Wardcheck's field app: a thin Tauri shell over `wardcheck-core`.
//!
//! Commands extract their input, call one core function and return a typed result
//! or a serialisable `{code, message}` error. No document logic lives here.

mod commands;

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![commands::app_info])
        .run(tauri::generate_context!())
        .expect("error while running the Wardcheck app");
}
