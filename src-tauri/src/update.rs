//! Updates of the app itself (issue 15, item 4): `update_check` and `update_install`
//! (docs/APP-IPC.md), through Tauri's updater, from the Wardcheck server the device is
//! signed in to (`GET /api/v1/app/updates/{target}/{arch}/{bundle}/{current_version}`,
//! with the device token; docs/RELEASE.md).
//!
//! Nothing happens unless the inspector asks: an update is never fetched or installed in
//! the middle of a visit. The package is downloaded here, only from the server the
//! device signed in to (the device token goes nowhere else), under [`MAX_PACKAGE_BYTES`]
//! (the updater's own download has no limit), and handed to the updater, which checks
//! its minisign signature against the public key compiled into the app
//! (`plugins.updater.pubkey`) and that the signature binds the version the server
//! announced (`requireSignedVersion`), and only then installs it. A package signed with
//! any other key is refused and nothing is installed, whatever the server says.
//!
//! Debug builds only: `WARDCHECK_TEST_UPDATE_PUBKEY` replaces the compiled-in key, so
//! the tests can sign packages with a key of their own (a release build ignores it).

use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_updater::{Error as UpdaterError, Update, UpdaterExt};

use crate::error::{AppError, ErrorCode};
use crate::service::App;

/// The largest package downloaded (the server keeps at most as much).
pub const MAX_PACKAGE_BYTES: usize = 256 * 1024 * 1024;
/// How long a download may take in all: a package is tens of MB over a hospital's
/// guest Wi-Fi.
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// How long the server gets to say whether there is an update.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The test-only public key's variable (debug builds).
pub const TEST_PUBKEY_VAR: &str = "WARDCHECK_TEST_UPDATE_PUBKEY";

/// What `update_check` answers.
#[derive(Debug, Serialize)]
pub struct UpdateCheck {
    /// This app's version.
    pub current: String,
    /// A newer version the server offers, if any.
    pub available: Option<Available>,
}

#[derive(Debug, Serialize)]
pub struct Available {
    pub version: String,
    pub notes: String,
    pub date: Option<String>,
}

/// What `update_install` answers once the package is installed.
#[derive(Debug, Serialize)]
pub struct Installed {
    pub version: String,
    /// The package's size in bytes.
    pub bytes: usize,
    /// Whether the app must be started again to run it (Linux, macOS); on Windows the
    /// installer closes and restarts the app itself.
    pub restart_needed: bool,
}

/// The update the server offers this device, if any.
async fn find(handle: &AppHandle, app: &App) -> Result<Option<Update>, AppError> {
    let session = app.session().ok_or_else(AppError::not_signed_in)?;
    // The package kind is written into the program by the bundler: a program that came
    // from no package (a build run in place) has nothing to update itself with.
    if tauri::utils::platform::bundle_type().is_none() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "This copy of the app was not installed from a package, so it cannot update \
             itself: install the package",
        ));
    }
    let endpoint = format!(
        "{}/api/v1/app/updates/{{{{target}}}}/{{{{arch}}}}/{{{{bundle_type}}}}/{{{{current_version}}}}",
        session.settings.server
    );
    let endpoint = endpoint.parse().map_err(AppError::internal)?;
    let mut builder = handle
        .updater_builder()
        .endpoints(vec![endpoint])
        .map_err(updater_error)?
        .header("Authorization", format!("Bearer {}", session.token))
        .map_err(updater_error)?
        .timeout(CHECK_TIMEOUT);
    if cfg!(debug_assertions)
        && let Ok(key) = std::env::var(TEST_PUBKEY_VAR)
        && !key.is_empty()
    {
        builder = builder.pubkey(key);
    }
    builder
        .build()
        .map_err(updater_error)?
        .check()
        .await
        .map_err(updater_error)
}

#[tauri::command]
pub async fn update_check(handle: AppHandle, app: State<'_, App>) -> Result<UpdateCheck, AppError> {
    let found = find(&handle, &app).await?;
    Ok(UpdateCheck {
        current: handle.package_info().version.to_string(),
        available: found.map(|u| Available {
            version: u.version.clone(),
            notes: u.body.clone().unwrap_or_default(),
            date: u.date.map(|d| d.to_string()),
        }),
    })
}

/// Downloads the update the server offers now and installs it if its signature holds.
/// `version`: the version the inspector agreed to; a different offer is not installed.
#[tauri::command]
pub async fn update_install(
    handle: AppHandle,
    app: State<'_, App>,
    version: String,
) -> Result<Installed, AppError> {
    let update = find(&handle, &app).await?.ok_or_else(|| {
        AppError::new(
            ErrorCode::NotFound,
            "The server offers no newer version of the app now",
        )
    })?;
    if update.version != version {
        return Err(AppError::new(
            ErrorCode::Invalid,
            format!(
                "The server now offers version {} rather than {version}: check again",
                update.version
            ),
        ));
    }
    let session = app.session().ok_or_else(AppError::not_signed_in)?;
    // The token goes only to the server the device signed in to (as every request of
    // the app: service::remote), never to an address a server's answer names.
    let server: reqwest::Url = session
        .settings
        .server
        .parse()
        .map_err(AppError::internal)?;
    let url = &update.download_url;
    if url.scheme() != server.scheme()
        || url.host_str() != server.host_str()
        || url.port_or_known_default() != server.port_or_known_default()
    {
        return Err(AppError::new(
            ErrorCode::UpdateRefused,
            format!(
                "The update's package is at {}, not on the server this device signed in to \
                 ({}): not downloaded",
                url.origin().ascii_serialization(),
                server.origin().ascii_serialization()
            ),
        ));
    }
    let bytes = download(&update, &session.token).await?;
    update.verify(&bytes).map_err(updater_error)?;
    let size = bytes.len();
    // Installing runs dpkg (through pkexec or sudo) or the Windows installer: off the
    // async threads.
    tauri::async_runtime::spawn_blocking(move || update.install(bytes))
        .await
        .map_err(AppError::internal)?
        .map_err(updater_error)?;
    Ok(Installed {
        version,
        bytes: size,
        restart_needed: !cfg!(windows),
    })
}

/// The package, read under [`MAX_PACKAGE_BYTES`], with the device token.
async fn download(update: &Update, token: &str) -> Result<Vec<u8>, AppError> {
    let offline = |e: reqwest::Error| {
        AppError::new(
            ErrorCode::Offline,
            format!("The update could not be downloaded: {e}"),
        )
    };
    let client = crate::service::remote::client_with(DOWNLOAD_TIMEOUT);
    let mut res = client
        .get(update.download_url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map_err(offline)?;
    if !res.status().is_success() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!(
                "The server did not give the update's package (HTTP {})",
                res.status().as_u16()
            ),
        ));
    }
    let too_large = || {
        AppError::new(
            ErrorCode::TooLarge,
            format!("The update's package is over {MAX_PACKAGE_BYTES} bytes: not downloaded"),
        )
    };
    if res
        .content_length()
        .is_some_and(|n| n > MAX_PACKAGE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(offline)? {
        if bytes.len() + chunk.len() > MAX_PACKAGE_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The updater's errors as the UI's: a signature that does not hold is `update_refused`.
fn updater_error(e: UpdaterError) -> AppError {
    match e {
        UpdaterError::Minisign(_)
        | UpdaterError::SignatureUtf8(_)
        | UpdaterError::Base64(_)
        | UpdaterError::MissingSignedVersion
        | UpdaterError::SignedVersionMismatch { .. } => AppError::new(
            ErrorCode::UpdateRefused,
            format!(
                "Its signature does not hold under this app's release key ({e}): nothing was \
                 installed"
            ),
        ),
        UpdaterError::Reqwest(e) => AppError::new(
            ErrorCode::Offline,
            format!("The server could not be asked about updates: {e}"),
        ),
        UpdaterError::Network(m) => AppError::new(
            ErrorCode::Offline,
            format!("The server could not be asked about updates: {m}"),
        ),
        other => AppError::new(
            ErrorCode::UpdateFailed,
            format!("The update could not be installed: {other}"),
        ),
    }
}
