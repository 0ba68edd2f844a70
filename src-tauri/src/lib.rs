//! Wardcheck's field app: a thin Tauri shell over `wardcheck-core`.
//!
//! - [`service`]: everything the app does, with no Tauri in it: the keystore, the
//!   encrypted store, sign-in, the inspection commands, and the background sync worker
//!   (documents over the WebSocket, photos over HTTP). Tests drive it without a window.
//! - `commands`: the Tauri commands of docs/APP-IPC.md, each a few lines over one
//!   [`service::App`] method, returning a typed result or an [`error::AppError`].
//! - [`run`]: the shell. It opens the service on the app's data folder, starts the
//!   worker, forwards its status as the `sync-status` event, and opens one window on
//!   the bundled UI (`ui/dist-field`) under a strict CSP and the isolation pattern,
//!   refusing any navigation away from the app's own pages. On Linux it then sets the
//!   webview's WebKit settings (`webview`: no GPU compositing, unused features off).
//! - [`update`]: updates of the app from the server it is signed in to, signed with the
//!   release key, installed only when the inspector asks.
//!
//! The CSP (tauri.conf.json) names no `frame-src`: Tauri adds the isolation frame's
//! origin (a scheme with a random name per build) to `default-src` only, so an explicit
//! `frame-src` would block the isolation frame and every command would hang.

mod commands;
pub mod error;
pub mod instance;
pub mod service;
pub mod update;
pub mod webview;

use tauri::{Emitter, Manager, WebviewWindowBuilder};

use service::keystore::KeystoreChoice;
use service::{App, Config};

/// The event that carries each new `SyncStatus`.
pub const SYNC_STATUS_EVENT: &str = "sync-status";

/// Whether the webview may go to `url`: only the app's own bundled pages (`tauri://`
/// on Linux and macOS, `http(s)://tauri.localhost` on Windows). The isolation iframe is
/// allowed by Tauri itself.
fn is_app_page(url: &tauri::Url) -> bool {
    match url.scheme() {
        "tauri" => url.host_str() == Some("localhost"),
        "http" | "https" => url.host_str() == Some("tauri.localhost"),
        _ => false,
    }
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::sign_in,
            commands::sign_out,
            commands::list_inspections,
            commands::open_inspection,
            commands::set_answer,
            commands::edit_note,
            commands::add_photo,
            commands::photo_thumbnail,
            commands::add_device,
            commands::record_observation,
            commands::add_finding,
            commands::add_comment,
            commands::resolve_conflict,
            commands::submit_inspection,
            commands::sign_off,
            commands::inspection_history,
            commands::sync_status,
            commands::sync_now,
            commands::take_servers_copy,
            commands::carried_actions,
            commands::check_action,
            update::update_check,
            update::update_install,
        ])
        // Updates of the app, only when asked for (`update`): no endpoints in the
        // config, the server's is set per check.
        .plugin(tauri_plugin_updater::Builder::new().build())
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?;
            // One app per data folder: a second start shows the first's window and
            // ends, before it opens the store or starts a sync worker.
            match instance::claim(&data_dir)? {
                instance::Claim::First(first) => {
                    let handle = app.handle().clone();
                    first.serve(move || {
                        if let Some(w) = handle.get_webview_window("main") {
                            let _ = w.unminimize();
                            let _ = w.show();
                            let _ = w.set_focus();
                        }
                    });
                }
                instance::Claim::Running(asked) => {
                    match asked {
                        Ok(()) => eprintln!(
                            "Wardcheck is already running on this account: its window was \
                             brought to the front"
                        ),
                        Err(why) => {
                            eprintln!(
                                "Wardcheck is already running on this account, but its window \
                                 could not be brought to the front: {why}"
                            );
                            std::process::exit(1);
                        }
                    }
                    std::process::exit(0);
                }
            }
            let service = App::open(Config::new(data_dir, KeystoreChoice::from_env()));
            app.manage(service.clone());

            let handle = app.handle().clone();
            let mut status = service.subscribe();
            tauri::async_runtime::spawn(async move {
                while status.changed().await.is_ok() {
                    let now = status.borrow_and_update().clone();
                    let _ = handle.emit(SYNC_STATUS_EVENT, now);
                }
            });
            tauri::async_runtime::spawn(service.run_worker());

            // The window is made here, not from the config alone, so that the state
            // above is managed before the page can call a command, and so that
            // navigation is checked.
            let config = app
                .config()
                .app
                .windows
                .iter()
                .find(|w| w.label == "main")
                .cloned()
                .ok_or("tauri.conf.json has no window labelled main")?;
            let window = WebviewWindowBuilder::from_config(app.handle(), &config)?
                .on_navigation(is_app_page)
                .build()?;
            webview::configure(&window)?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running the Wardcheck app");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command registered here is one the isolation hook lets through (its list is
    /// also where the permissions come from: build.rs) and one the window's capability
    /// allows, and the other way round: a command missing from either would be refused
    /// before it reached the app.
    #[test]
    fn every_registered_command_passes_isolation_and_is_allowed() {
        let source = include_str!("lib.rs");
        let start = source.find("generate_handler![").unwrap();
        let end = start + source[start..].find("])").unwrap();
        let mut registered: Vec<String> = source[start..end]
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().trim_end_matches(',').rsplit("::").next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        registered.sort();
        let hook = include_str!("../isolation/index.js");
        let mut passed: Vec<String> = hook
            [hook.find("new Set([").unwrap()..hook.find("]);").unwrap()]
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|n| !n.starts_with("plugin:"))
            .map(str::to_owned)
            .collect();
        passed.sort();
        assert_eq!(registered, passed, "isolation/index.js ALLOWED");
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).unwrap();
        let mut allowed: Vec<String> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        allowed.sort();
        assert_eq!(registered, allowed, "capabilities/default.json");
    }

    #[test]
    fn only_the_apps_own_pages_load() {
        for ok in [
            "tauri://localhost/index.html",
            "http://tauri.localhost/",
            "https://tauri.localhost/x",
        ] {
            assert!(is_app_page(&ok.parse().unwrap()), "{ok} is the app");
        }
        for bad in [
            "https://example.com/",
            "http://127.0.0.1:8080/",
            "file:///etc/passwd",
            "tauri://evil/",
            "data:text/html,hi",
        ] {
            assert!(!is_app_page(&bad.parse().unwrap()), "{bad} is refused");
        }
    }
}
