// Keeps a console window from opening beside the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    set_webkit_environment();
    wardcheck_app_lib::run();
}

/// Sets the environment WebKit's processes inherit (`webview::ENVIRONMENT`).
///
/// The app's only `unsafe`: changing the environment is unsound while another thread
/// may read it. Here it is the first thing `main` does, so no other thread exists yet
/// (the standard library starts none before `main`, and Tauri, GTK, WebKit and the
/// runtime start after this returns).
#[allow(unsafe_code)]
fn set_webkit_environment() {
    for (name, value) in wardcheck_app_lib::webview::missing_environment() {
        // SAFETY: single-threaded, see above.
        unsafe { std::env::set_var(name, value) };
    }
}
