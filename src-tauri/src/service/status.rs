//! The sync status the UI always shows, and the hub every part of the service reports
//! into: the document sync loop (connected or not, all documents synced or not), the
//! photo uploader (progress) and the local store (what is still only on this device).
//!
//! The hub recomputes [`SyncStatus`] from those parts after each report and publishes it
//! on a `watch` channel only when it changed; the Tauri shell forwards each new value as
//! the `sync-status` event.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    SignedOut,
    Offline,
    Syncing,
    Synced,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UploadProgress {
    pub done_photos: u64,
    pub total_photos: u64,
    pub done_bytes: u64,
    pub total_bytes: u64,
}

/// A document whose change the server refused: it is not sent again until the user
/// takes the server's copy (`take_servers_copy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedDoc {
    /// The document refused (an inspection, or its review document).
    pub document: uuid::Uuid,
    /// The inspection it belongs to.
    pub inspection: uuid::Uuid,
    /// The server's stable code, e.g. `wrong_state`.
    pub code: String,
    /// What the server said.
    pub message: String,
}

/// `sync_status` and the `sync-status` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub state: SyncState,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub pending_changes: u64,
    pub pending_photos: u64,
    pub pending_photo_bytes: u64,
    /// Checks of carried-over corrective actions kept here, not yet on the server.
    pub pending_checks: u64,
    pub upload: Option<UploadProgress>,
    pub message: Option<String>,
    /// Photos taken on other devices and fetched from the server since the app started:
    /// when it moves, a photo shown as "on the server" may now be here.
    pub photos_fetched: u64,
    /// Times the worker has stored changes from the server (other people's edits, or a
    /// new inspection) since the app started: when it moves, a screen reads the store
    /// again, even if the state stayed `synced` throughout.
    pub changes_received: u64,
    /// Documents whose changes the server refused: each stays on this device, out of
    /// sync, until the user takes the server's copy.
    pub refused: Vec<RefusedDoc>,
}

/// The state of the link to the server, as the sync loop last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not tried yet, or trying.
    Connecting,
    /// The server could not be reached; the message says why.
    Offline(String),
    Connected,
    /// Reached, but it refused us (revoked token) or something else failed that waiting
    /// alone will not mend.
    Failed(String),
}

/// Everything the status is computed from.
#[derive(Debug, Clone)]
struct Parts {
    signed_in: bool,
    link: Link,
    /// Every document the server shares with us is in step with it.
    docs_synced: bool,
    pending_changes: u64,
    pending_photos: u64,
    pending_photo_bytes: u64,
    pending_checks: u64,
    upload: Option<UploadProgress>,
    /// Something the uploader or the sync loop wants the inspector to know.
    note: Option<String>,
    /// Stored inspections that do not open (damaged): the state is `error` while any
    /// is, and the message says which.
    damaged: Option<String>,
    /// Documents the sync loop had to leave out of this connection (the server's data
    /// for them failed): never `synced` while any is.
    doc_problem: Option<String>,
    refused: Vec<RefusedDoc>,
    last_synced_at: Option<DateTime<Utc>>,
    photos_fetched: u64,
    changes_received: u64,
}

/// Where every part of the service reports, and the status comes out.
#[derive(Debug, Clone)]
pub struct StatusHub {
    parts: Arc<Mutex<Parts>>,
    tx: Arc<watch::Sender<SyncStatus>>,
}

impl StatusHub {
    pub fn new(signed_in: bool, last_synced_at: Option<DateTime<Utc>>) -> Self {
        let parts = Parts {
            signed_in,
            link: Link::Connecting,
            docs_synced: false,
            pending_changes: 0,
            pending_photos: 0,
            pending_photo_bytes: 0,
            pending_checks: 0,
            upload: None,
            note: None,
            damaged: None,
            doc_problem: None,
            refused: Vec::new(),
            last_synced_at,
            photos_fetched: 0,
            changes_received: 0,
        };
        let (tx, _) = watch::channel(compute(&parts));
        StatusHub {
            parts: Arc::new(Mutex::new(parts)),
            tx: Arc::new(tx),
        }
    }

    pub fn current(&self) -> SyncStatus {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.tx.subscribe()
    }

    /// Changes the parts and publishes the new status if it differs. Returns the
    /// status, and whether this report is the one that made it `synced`.
    fn update(&self, f: impl FnOnce(&mut Parts)) -> (SyncStatus, bool) {
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        let before = compute(&parts).state;
        f(&mut parts);
        let mut status = compute(&parts);
        let became_synced = status.state == SyncState::Synced && before != SyncState::Synced;
        if status.state == SyncState::Synced {
            let now = Utc::now();
            parts.last_synced_at = Some(now);
            status.last_synced_at = Some(now);
        }
        drop(parts);
        self.tx.send_if_modified(|old| {
            // A refreshed "synced at" alone is not worth an event every few seconds:
            // only on the transition, or with any other change.
            let changed = old.state != status.state
                || old.pending_changes != status.pending_changes
                || old.pending_photos != status.pending_photos
                || old.pending_photo_bytes != status.pending_photo_bytes
                || old.pending_checks != status.pending_checks
                || old.upload != status.upload
                || old.message != status.message
                || old.photos_fetched != status.photos_fetched
                || old.changes_received != status.changes_received
                || old.refused != status.refused
                || became_synced;
            if changed {
                *old = status.clone();
            }
            changed
        });
        (status, became_synced)
    }

    pub fn set_signed_in(&self, signed_in: bool) {
        self.update(|p| {
            p.signed_in = signed_in;
            if !signed_in {
                p.link = Link::Connecting;
                p.docs_synced = false;
                p.upload = None;
                p.note = None;
                p.doc_problem = None;
            }
        });
    }

    /// Returns true when this report made the state `synced`.
    pub fn set_link(&self, link: Link, docs_synced: bool) -> bool {
        self.update(|p| {
            p.link = link;
            p.docs_synced = docs_synced;
        })
        .1
    }

    pub fn set_pending_changes(&self, n: u64) -> bool {
        self.update(|p| p.pending_changes = n).1
    }

    pub fn set_pending_checks(&self, n: u64) -> bool {
        self.update(|p| p.pending_checks = n).1
    }

    pub fn set_pending_photos(&self, photos: u64, bytes: u64) -> bool {
        self.update(|p| {
            p.pending_photos = photos;
            p.pending_photo_bytes = bytes;
        })
        .1
    }

    pub fn set_upload(&self, upload: Option<UploadProgress>) {
        self.update(|p| p.upload = upload);
    }

    pub fn set_note(&self, note: Option<String>) {
        self.update(|p| p.note = note);
    }

    /// Which stored inspections fail to open, as one message (`None`: all open).
    pub fn set_damaged(&self, damaged: Option<String>) -> bool {
        self.update(|p| p.damaged = damaged).1
    }

    /// Changes from the server are now stored here.
    pub fn changes_received(&self) {
        self.update(|p| p.changes_received += 1);
    }

    /// A photo from another device is now stored here.
    pub fn photo_fetched(&self) {
        self.update(|p| p.photos_fetched += 1);
    }

    /// The documents whose changes the server refused.
    pub fn set_refused(&self, refused: Vec<RefusedDoc>) {
        self.update(|p| p.refused = refused);
    }

    /// What the sync loop left out of this connection, as one message.
    pub fn set_doc_problem(&self, problem: Option<String>) {
        self.update(|p| p.doc_problem = problem);
    }
}

fn compute(p: &Parts) -> SyncStatus {
    let (state, link_message) = if !p.signed_in {
        (SyncState::SignedOut, None)
    } else {
        match &p.link {
            Link::Failed(m) => (SyncState::Error, Some(m.clone())),
            // Whatever else the link, a stored inspection that does not open is an
            // error the inspector must see: never "synced" over it.
            _ if p.damaged.is_some() => (SyncState::Error, p.damaged.clone()),
            Link::Connecting => (SyncState::Offline, None),
            Link::Offline(m) => (SyncState::Offline, Some(m.clone())),
            Link::Connected => {
                if p.docs_synced
                    && p.doc_problem.is_none()
                    && p.refused.is_empty()
                    && p.pending_changes == 0
                    && p.pending_photos == 0
                    && p.pending_checks == 0
                {
                    (SyncState::Synced, None)
                } else {
                    (SyncState::Syncing, None)
                }
            }
        }
    };
    SyncStatus {
        state,
        last_synced_at: p.last_synced_at,
        pending_changes: p.pending_changes,
        pending_photos: p.pending_photos,
        pending_photo_bytes: p.pending_photo_bytes,
        pending_checks: p.pending_checks,
        upload: if p.signed_in { p.upload } else { None },
        message: link_message
            .or_else(|| refusal_message(&p.refused))
            .or_else(|| p.doc_problem.clone())
            .or_else(|| p.note.clone()),
        photos_fetched: p.photos_fetched,
        changes_received: p.changes_received,
        refused: if p.signed_in {
            p.refused.clone()
        } else {
            Vec::new()
        },
    }
}

/// One message for the refused documents, naming the first.
fn refusal_message(refused: &[RefusedDoc]) -> Option<String> {
    let first = refused.first()?;
    let more = match refused.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other)".into(),
        n => format!(" (and {n} others)"),
    };
    Some(format!(
        "The server refused a change to inspection {}{more}: {}. Your copy stays on this \
         device and is not sent again; everything else syncs as usual",
        first.inspection, first.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_parts() {
        let hub = StatusHub::new(false, None);
        assert_eq!(hub.current().state, SyncState::SignedOut);
        hub.set_signed_in(true);
        assert_eq!(hub.current().state, SyncState::Offline);
        hub.set_link(Link::Connected, false);
        assert_eq!(hub.current().state, SyncState::Syncing);
        assert!(
            hub.set_link(Link::Connected, true),
            "the report that syncs says so"
        );
        let s = hub.current();
        assert_eq!(s.state, SyncState::Synced);
        assert!(s.last_synced_at.is_some());
        hub.set_pending_changes(3);
        assert_eq!(hub.current().state, SyncState::Syncing);
        hub.set_link(Link::Offline("no route".into()), true);
        let s = hub.current();
        assert_eq!(s.state, SyncState::Offline);
        assert_eq!(s.pending_changes, 3);
        assert_eq!(s.message.as_deref(), Some("no route"));

        // A damaged inspection: an error, whatever the link says, until it opens.
        hub.set_pending_changes(0);
        hub.set_link(Link::Connected, true);
        assert_eq!(hub.current().state, SyncState::Synced);
        hub.set_damaged(Some("Inspection X is damaged".into()));
        let s = hub.current();
        assert_eq!(s.state, SyncState::Error);
        assert_eq!(s.message.as_deref(), Some("Inspection X is damaged"));
        hub.set_damaged(None);
        hub.set_doc_problem(Some("left out".into()));
        let s = hub.current();
        assert_eq!(
            s.state,
            SyncState::Syncing,
            "never synced with a document left out"
        );
        assert_eq!(s.message.as_deref(), Some("left out"));
    }
}
