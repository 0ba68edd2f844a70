//! The webview's settings on Linux (WebKitGTK), made to spend less memory on what the
//! field app never uses (BENCHMARKS.md, "Field app"). Other platforms keep the defaults.
//!
//! They are applied through [`tauri::WebviewWindow::with_webview`], which runs on the
//! main thread once the webview exists. wry has by then asked for the first page (it
//! loads the URL inside `build`, and Tauri offers no hook before that), so a setting
//! reaches a web process that is already running: what each one saves is measured,
//! not assumed (BENCHMARKS.md, "Field app").

use tauri::{Runtime, WebviewWindow};

/// WebKitGTK settings that exist only as environment variables, read by the web process
/// when it starts, which no API reaches. Each is set only if the user has not set it,
/// so it can be turned back on by hand (`JSC_useJIT=1`, say). Linux only.
///
/// - `JSC_useJIT=0`: JavaScriptCore interprets the UI's script instead of compiling it
///   to machine code. The UI is forms and lists: the interpreter is fast enough (the
///   cold start is unchanged, BENCHMARKS.md), the web process's idle memory falls by
///   about 8 MiB, and no page can make writable-executable memory.
/// - `WEBKIT_DISABLE_DMABUF_RENDERER=1`: with compositing off ([`configure`]) WebKit
///   still set up its DMA-BUF renderer to hand frames to the app; without it frames
///   come through shared memory. About 10 MiB less across the app and web process.
pub const ENVIRONMENT: &[(&str, &str)] =
    &[("JSC_useJIT", "0"), ("WEBKIT_DISABLE_DMABUF_RENDERER", "1")];

/// The variables of [`ENVIRONMENT`] this process lacks, to be set before WebKit starts
/// (main.rs does it, first thing). A variable the user already set is kept as it is.
/// None off Linux.
pub fn missing_environment() -> Vec<(&'static str, &'static str)> {
    if !cfg!(target_os = "linux") {
        return Vec::new();
    }
    ENVIRONMENT
        .iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .copied()
        .collect()
}

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
