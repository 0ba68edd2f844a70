//! Who is signed in, and to which server: a small JSON record beside the store.
//!
//! Nothing in it is secret (the token is in the keychain), and the app needs it before
//! anything else, so it is a plain file written atomically (temporary file, fsync,
//! rename): a crash leaves the old record or the new one, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const FILE: &str = "settings.json";

/// The signed-in user as the server described them at sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// e.g. `http://127.0.0.1:8080`, without a trailing slash.
    pub server: String,
    pub user: String,
    pub display_name: String,
    pub role: String,
    pub device_id: i64,
    /// When everything on this device was last on the server.
    #[serde(default)]
    pub last_synced_at: Option<DateTime<Utc>>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The record, if there is a readable one.
pub fn load(data_dir: &Path) -> Option<Settings> {
    let text = fs::read(path(data_dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("ignoring unreadable {FILE}: {e}");
            None
        }
    }
}

pub fn save(data_dir: &Path, settings: &Settings) -> std::io::Result<()> {
    fs::create_dir_all(data_dir)?;
    let tmp = data_dir.join(format!(".{FILE}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(settings).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    fs::rename(&tmp, path(data_dir))
}
