//! `webkit-floor`: the smallest WebKitGTK app, for the floor under the field app's idle
//! memory (BENCHMARKS.md, "Field app").
//!
//! One GTK window the size of the field app's (1024 x 768) holding one WebKit view with
//! GPU compositing off (as the field app sets it), showing a heading and a line of text.
//! No Tauri, no script, no IPC, no store. Whatever it costs when idle, every app that
//! shows a page through WebKitGTK on this machine costs at least that: its own process,
//! WebKit's web process and WebKit's network process.
//!
//! `app-start --floor-runs N` starts it N times, with and without the environment the
//! field app sets (`wardcheck_app_lib::webview::ENVIRONMENT`), and reads its memory the
//! same way as the app's. It runs until it is killed or its window is closed.
//!
//! `webkit-floor PAGE.html` shows that file instead (read once, at most 1 MiB): to see
//! what one feature of a page costs in WebKit, measured by hand (BENCHMARKS.md).

#[cfg(target_os = "linux")]
fn main() {
    use gtk::prelude::*;
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};

    if let Err(e) = gtk::init() {
        eprintln!("webkit-floor: cannot start GTK (is DISPLAY set?): {e}");
        std::process::exit(1);
    }
    let window = gtk::Window::new(gtk::WindowType::Toplevel);
    window.set_title("webkit-floor");
    window.set_default_size(1024, 768);
    let view = webkit2gtk::WebView::new();
    if let Some(settings) = WebViewExt::settings(&view) {
        settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
    }
    const PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>floor</title></head><body><h1>Wardcheck</h1><p>The smallest WebKitGTK page.</p>\
        </body></html>";
    const MAX_PAGE: u64 = 1 << 20;
    let page = match std::env::args_os().nth(1) {
        None => PAGE.to_owned(),
        Some(path) => {
            let read = std::fs::metadata(&path).and_then(|m| {
                if m.len() > MAX_PAGE {
                    Err(std::io::Error::other("over 1 MiB"))
                } else {
                    std::fs::read_to_string(&path)
                }
            });
            match read {
                Ok(page) => page,
                Err(e) => {
                    eprintln!("webkit-floor: cannot read {}: {e}", path.to_string_lossy());
                    std::process::exit(2);
                }
            }
        }
    };
    view.load_html(&page, None);
    window.add(&view);
    window.connect_destroy(|_| gtk::main_quit());
    window.show_all();
    gtk::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("webkit-floor: WebKitGTK is the Linux webview; nothing to measure here");
    std::process::exit(2);
}
