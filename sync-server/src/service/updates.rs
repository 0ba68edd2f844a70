//! Updates of the field app for devices (issue 15, item 4; [`crate::updates`]).
//!
//! - `GET /api/v1/app/updates/{target}/{arch}/{bundle}/{current_version}`: the newest
//!   package kept for the platform when it is newer than the caller's version, in the
//!   Tauri updater's format, else nothing (204);
//! - `GET /api/v1/app/packages/{sha256}`: a package.
//!
//! Any signed-in caller: the app's package is the same for everyone. Not audited (a
//! read of the software every device runs); publishing is (`app-update publish`).

use std::sync::LazyLock;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::reports::Download;
use super::{Acting, blocking};
use crate::error::AppError;
use crate::updates::{self, Platform};

/// Packages being read for a download: each is held in memory whole.
static DOWNLOADS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(updates::DOWNLOADS_AT_ONCE));

/// What the Tauri updater reads from an update endpoint (its "dynamic update server"
/// format).
#[derive(Debug, Serialize)]
pub struct UpdateManifest {
    pub version: String,
    pub notes: String,
    /// RFC 3339.
    pub pub_date: String,
    /// Where the package is: `{origin}/api/v1/app/packages/{sha256}`.
    pub url: String,
    /// The `.sig` file's base64 text.
    pub signature: String,
    pub sha256: String,
    pub size: u64,
}

impl Acting<'_> {
    /// The update for a device of `platform` at `current`, if the server keeps a newer
    /// package; `origin` is where the device reached the server (`scheme://host[:port]`).
    pub async fn app_update(
        &self,
        target: &str,
        arch: &str,
        bundle: &str,
        current: &str,
        origin: &str,
    ) -> Result<Option<UpdateManifest>, AppError> {
        let platform = Platform::of(target, arch, bundle)
            .map_err(|e| AppError::bad_request("unknown_platform", e.to_string()))?;
        let current = updates::version(current)
            .map_err(|e| AppError::bad_request("invalid_field", e.to_string()))?;
        let storage = self.state.storage.clone();
        let kept = blocking(move || Ok(storage.app_updates(Some(platform.as_str()))?)).await?;
        // The newest by semantic version (a version that no longer parses is passed over).
        let newest = kept
            .into_iter()
            .filter_map(|m| updates::version(&m.version).ok().map(|v| (v, m)))
            .max_by(|a, b| a.0.cmp(&b.0));
        Ok(newest
            .filter(|(v, _)| *v > current)
            .map(|(_, m)| UpdateManifest {
                url: format!("{origin}/api/v1/app/packages/{}", m.sha256),
                version: m.version,
                notes: m.notes,
                pub_date: m
                    .published_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                signature: m.signature,
                sha256: m.sha256,
                size: m.size,
            }))
    }

    /// A package by its SHA-256 (404 when none is kept).
    pub async fn app_package(&self, sha256: &str) -> Result<Download, AppError> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(AppError::not_found());
        }
        // A turn, or a 429 after a while: at most DOWNLOADS_AT_ONCE packages in memory.
        let _turn = tokio::time::timeout(std::time::Duration::from_secs(30), DOWNLOADS.acquire())
            .await
            .map_err(|_| AppError::rate_limited(30))?
            .map_err(AppError::internal)?;
        let storage = self.state.storage.clone();
        let key = sha256.to_owned();
        let bytes = blocking(move || Ok(storage.app_package(&key)?))
            .await?
            .ok_or_else(AppError::not_found)?;
        Ok(Download {
            file_name: format!("wardcheck-{}.pkg", &sha256[..12]),
            content_type: "application/octet-stream",
            sha256: sha256.to_owned(),
            bytes,
        })
    }
}
