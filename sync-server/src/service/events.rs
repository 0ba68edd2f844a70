//! Pushed updates: following an inspection, a stream of events (sent as server-sent
//! events by `GET /api/v1/inspections/{id}/events`) that says which parts of an inspection changed, so that an open dashboard page reads
//! again only then, and only what changed, instead of asking every few seconds.
//!
//! - `ready` first, with the parts the caller may read (`{"parts": [...]}`, of
//!   `inspection`, `review` and `response`): the page reads once more then, for what
//!   changed between its first read and the subscription.
//! - `changed` when a change to one of those parts is stored (by sync or by the API), with
//!   the parts that changed. Changes that come close together are told together, at most
//!   one event per [`limits::EVENTS_MIN_GAP`].
//! - `closed` before the server ends the stream, audited with its reason: `signed_out`
//!   (the device's sign-in was revoked or its user disabled), `not_found` (the inspection
//!   is no longer the caller's to see), `rights_changed` (what the caller may read
//!   changed), `expired` (open for [`limits::EVENTS_MAX_AGE`]) or `unavailable`
//!   (storage failed). The page subscribes again.
//!
//! Nothing of a document is sent: an event names parts, and the page reads them through
//! the API, which decides access again. Rights and sign-in are checked again before
//! every event and every [`limits::EVENTS_RECHECK`] when nothing happens. A user holds
//! at most [`limits::MAX_EVENT_STREAMS_PER_USER`] streams, counted apart from sync
//! connections (open tabs never keep a field device from syncing). A stream watches its
//! documents without keeping them in memory, and is not counted among their followers
//! (it does not slow pushes to sync peers).

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use super::{Acting, blocking};
use crate::auth::Caller;
use crate::error::AppError;
use crate::storage::{DocAccess, DocKind, InspectionRecord};
use crate::sync::{Inbox, Watch};
use crate::{AppState, access, limits};

/// The parts of an inspection the caller may read, by document.
fn readable(caller: &Caller, rec: &InspectionRecord) -> Vec<(Uuid, &'static str)> {
    let right = |doc: Uuid, kind: DocKind| {
        access::doc_right(
            &caller.user,
            &DocAccess {
                doc,
                kind,
                inspection: rec.clone(),
            },
        )
        .can_read()
    };
    let mut parts = Vec::new();
    if access::can_read_view(&caller.user, rec) {
        parts.push((rec.id, "inspection"));
    }
    if right(rec.review_doc, DocKind::Review) {
        parts.push((rec.review_doc, "review"));
    }
    if right(rec.response_doc, DocKind::TrustResponse) {
        parts.push((rec.response_doc, "response"));
    }
    parts
}

fn names(parts: &[(Uuid, &'static str)]) -> Vec<&'static str> {
    parts.iter().map(|(_, n)| *n).collect()
}

/// One open stream: what it follows, and its hold on those documents.
pub struct Following {
    state: AppState,
    caller: Caller,
    inspection: Uuid,
    parts: Vec<(Uuid, &'static str)>,
    inbox: Arc<Inbox>,
    /// Told of the documents' changes until the stream is dropped.
    _watches: Vec<Watch>,
    _counted: crate::sync::Counted,
    ready_sent: bool,
    ended: bool,
    last_sent: tokio::time::Instant,
    /// When the stream ends on its own (`expired`).
    ends_at: tokio::time::Instant,
}

impl std::fmt::Debug for Following {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Following")
            .field("user", &self.caller.user.name)
            .field("inspection", &self.inspection)
            .finish_non_exhaustive()
    }
}

/// One event of a stream: its name (`ready`, `changed`, `closed`) and its data.
pub type Update = (&'static str, serde_json::Value);

impl Acting<'_> {
    /// Follows inspection `id` for the caller: within the caller's limit of streams, and
    /// only the parts the caller may read (audited).
    pub async fn follow(&self, id: &str) -> Result<Following, AppError> {
        let state = self.state;
        let record = self.visible(id).await?;
        let Some(counted) = state
            .streams
            .admit(&self.caller.user.name, limits::MAX_EVENT_STREAMS_PER_USER)
        else {
            let what = format!("events:{}", record.id);
            self.audit("denied", &what, "too_many_connections").await;
            return Err(AppError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!(
                    "a user may hold at most {} event streams open",
                    limits::MAX_EVENT_STREAMS_PER_USER
                ),
            ));
        };
        let parts = readable(self.caller, &record);
        let (connection, inbox) = state.docs.connection();
        let watches = parts
            .iter()
            .map(|(doc, _)| state.docs.watch(*doc, connection, inbox.clone()))
            .collect();
        self.audit("events", &format!("inspection:{}", record.id), "ok")
            .await;
        Ok(Following {
            state: state.clone(),
            caller: self.caller.clone(),
            inspection: record.id,
            parts,
            inbox,
            _watches: watches,
            _counted: counted,
            ready_sent: false,
            ended: false,
            last_sent: tokio::time::Instant::now(),
            ends_at: tokio::time::Instant::now() + limits::EVENTS_MAX_AGE,
        })
    }
}

impl Following {
    /// The stream's next event, or `None` once it has ended.
    pub async fn next(&mut self) -> Option<Update> {
        let f = self;
        if f.ended {
            return None;
        }
        if !f.ready_sent {
            f.ready_sent = true;
            f.last_sent = tokio::time::Instant::now();
            return Some(("ready", serde_json::json!({ "parts": names(&f.parts) })));
        }
        loop {
            let wait = limits::EVENTS_RECHECK.min(
                f.ends_at
                    .saturating_duration_since(tokio::time::Instant::now()),
            );
            let woken = tokio::time::timeout(wait, f.inbox.notify.notified())
                .await
                .is_ok();
            if woken {
                // Changes close together are told together.
                tokio::time::sleep_until(f.last_sent + limits::EVENTS_MIN_GAP).await;
            }
            let verdict = if tokio::time::Instant::now() >= f.ends_at {
                Err("expired")
            } else {
                f.recheck().await
            };
            if let Err(why) = verdict {
                f.ended = true;
                let what = format!("inspection:{}", f.inspection);
                f.state
                    .acting(&f.caller)
                    .audit("events_closed", &what, why)
                    .await;
                return Some(("closed", serde_json::json!({ "reason": why })));
            }
            let dirty: BTreeSet<Uuid> = f.inbox.take().into_iter().collect();
            let changed: Vec<&'static str> = f
                .parts
                .iter()
                .filter(|(doc, _)| dirty.contains(doc))
                .map(|(_, n)| *n)
                .collect();
            if !changed.is_empty() {
                f.last_sent = tokio::time::Instant::now();
                return Some(("changed", serde_json::json!({ "parts": changed })));
            }
        }
    }

    /// Whether the stream may go on: the caller still signed in, the inspection still theirs
    /// to see, and the same parts still theirs to read.
    async fn recheck(&self) -> Result<(), &'static str> {
        let f = self;
        let storage = f.state.storage.clone();
        let (device, id) = (f.caller.device.id, f.inspection);
        let found = blocking(move || {
            let live = storage.device_live(device)?;
            let rec = storage.inspection(id)?;
            Ok((live, rec))
        })
        .await;
        let Ok((live, rec)) = found else {
            // Storage failed: the stream ends, and the page falls back to asking.
            return Err("unavailable");
        };
        if !live {
            return Err("signed_out");
        }
        let Some(rec) = rec.filter(|r| access::can_see(&f.caller.user, r)) else {
            return Err("not_found");
        };
        if names(&readable(&f.caller, &rec)) != names(&f.parts) {
            return Err("rights_changed");
        }
        Ok(())
    }
}
