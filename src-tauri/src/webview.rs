//! The webview's settings on Linux (WebKitGTK), made to spend less memory on what the
//! field app never uses (BENCHMARKS.md, "Field app"). Other platforms keep the defaults.
//!
//! They are applied through [`tauri::WebviewWindow::with_webview`], which runs on the
//! main thread once the webview exists. wry has by then asked for the first page (it
//! loads the URL inside `build`, and Tauri offers no hook before that), so a setting
//! reaches a web process that is already running: what each one saves is measured,
//! not assumed (BENCHMARKS.md, "Field app").

use tauri::{Runtime, WebviewWindow};

/// Applies the app's webview settings to `window` (Linux only; a no-op elsewhere).
pub fn configure<R: Runtime>(window: &WebviewWindow<R>) -> tauri::Result<()> {
    #[cfg(target_os = "linux")]
    window.with_webview(|webview| linux::configure(&webview.inner()))?;
    #[cfg(not(target_os = "linux"))]
    let _ = window;
    Ok(())
}

#[cfg(target_os = "linux")]
mod linux {
    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebView, WebViewExt,
    };

    pub(super) fn configure(webview: &WebView) {
        if let Some(settings) = WebViewExt::settings(webview) {
            // No GPU compositing: the app is forms and lists, drawn on the CPU. This is
            // the saving: the web process's idle Pss falls from about 213 to 130 MiB
            // (BENCHMARKS.md). The GL driver stays loaded (WebKit opened its display
            // before this runs, in both processes).
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            // Features the app does not use (wry turns the first two on). They save no
            // idle memory that the benchmark can see; they are off because nothing
            // needs them.
            settings.set_enable_webgl(false);
            settings.set_enable_webaudio(false);
            settings.set_enable_media(false);
            settings.set_enable_mediasource(false);
            settings.set_enable_media_stream(false);
            settings.set_enable_webrtc(false);
            settings.set_enable_encrypted_media(false);
            // One page, never left: no back-forward cache (wry turns it on).
            settings.set_enable_page_cache(false);
            settings.set_enable_dns_prefetching(false);
            settings.set_javascript_can_open_windows_automatically(false);
            // The inspector only in debug builds.
            settings.set_enable_developer_extras(cfg!(debug_assertions));
        }
        if let Some(context) = webview.context() {
            // The smallest caches: the pages come from the app itself. Set after the
            // web process started (wry gives no earlier hook); WebKit passes a new cache
            // model on to running processes.
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    }
}
