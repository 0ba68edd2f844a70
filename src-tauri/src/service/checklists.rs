//! Checklists that reach the device (issue 15, item 3): when online, the device asks the
//! server which checklists it holds and fetches each one it lacks (neither bundled in
//! this build nor fetched before), checks that its files hash to exactly the pin the
//! server named, and keeps it in its encrypted store for good (a setting per pin), so an
//! inspection pinned to it opens offline too. One that cannot be had is named, with why,
//! in the sync status and beside the inspection that needs it; never left off silently.

use serde::{Deserialize, Serialize};
use wardcheck_core::checklist::{self, ChecklistPin};
use wardcheck_core::store::Store;

use super::local::{has_checklist, register_fetched};
use super::remote::{self, HeldChecklist};

/// The store's settings prefix for kept checklists: `checklist:ID@VERSION@SHA256`.
const PREFIX: &str = "checklist:";

#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    files: Vec<(String, String)>,
}

fn key(pin: &ChecklistPin) -> String {
    format!("{PREFIX}{}@{}@{}", pin.id, pin.version, pin.sha256)
}

/// Loads the checklists this device kept (at start, before any inspection opens). One
/// that no longer loads or hashes to its pin is skipped, and said.
pub fn load_kept(store: &Store) {
    let Ok(kept) = store.settings_with_prefix(PREFIX) else {
        return;
    };
    for (k, bytes) in kept {
        let loaded = serde_json::from_slice::<Kept>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|kept| checklist::load_files(&kept.files).map_err(|e| e.to_string()));
        match loaded {
            Ok(c) if key(&c.pin) == k => register_fetched(c),
            Ok(c) => tracing::error!("kept checklist {k} hashes to {}: skipped", key(&c.pin)),
            Err(e) => tracing::error!("kept checklist {k} does not load: {e}"),
        }
    }
}

/// Loads `files` and checks that they are exactly the checklist `want` names.
pub fn checked(
    want: &ChecklistPin,
    files: &[(String, String)],
) -> Result<checklist::Checklist, String> {
    let c = checklist::load_files(files).map_err(|e| format!("its files do not load: {e}"))?;
    if c.pin != *want {
        return Err(format!(
            "its files hash to {}@{} ({}), not to the pin {}@{} ({})",
            c.pin.id, c.pin.version, c.pin.sha256, want.id, want.version, want.sha256
        ));
    }
    Ok(c)
}

/// Keeps a checked checklist in `store` and makes it available.
pub fn keep(
    store: &mut Store,
    c: checklist::Checklist,
    files: Vec<(String, String)>,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(&Kept { files }).map_err(|e| e.to_string())?;
    store
        .put_setting(&key(&c.pin), &bytes)
        .map_err(|e| e.to_string())?;
    register_fetched(c);
    Ok(())
}

/// The pins the server holds that this device lacks.
pub fn missing(held: &[HeldChecklist]) -> Vec<ChecklistPin> {
    held.iter()
        .map(|h| ChecklistPin {
            id: h.id.clone(),
            version: h.version.clone(),
            sha256: h.sha256.clone(),
        })
        .filter(|p| !has_checklist(p))
        .collect()
}

/// Fetches one checklist's files from the server; `Err` says why it cannot be had.
pub async fn fetch(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    pin: &ChecklistPin,
) -> Result<(checklist::Checklist, Vec<(String, String)>), String> {
    let files = remote::checklist_files(http, server, token, &pin.id, &pin.version)
        .await
        .map_err(|e| format!("the server did not give it ({e})"))?;
    let c = checked(pin, &files)?;
    Ok((c, files))
}
