//! `GET /api/v1/sync`: documents sync over a WebSocket with the automerge-repo
//! protocol (`wardcheck_core::sync` has the wire format), so automerge-repo clients
//! in JavaScript and Rust can sync with this server.
//!
//! - The upgrade is authenticated ([`Caller`]: bearer header, cookie, or
//!   `?access_token=`); without a valid token it gets 401 and no WebSocket.
//! - Every `request` and `sync` is checked against the caller's right on that
//!   document before anything is loaded; a document the caller may not read and one
//!   that does not exist both get `doc-unavailable`.
//! - Changes are committed to storage before the reply that acknowledges them.
//! - Readers' changes are stripped before Automerge sees the message; a writer's are
//!   walked under byte and operation budgets before anything inflates them.
//! - Every new change is checked before it is stored or forwarded: its actor's binding,
//!   its author's rights, the write policy, and a round trip through the form storage
//!   keeps (`docs`, `guard`). A refused change gets an `error` with a stable code and the
//!   document's id, is audited, and leaves nothing behind.
//! - Sync states are kept per document and device.
//! - Any failure or panic in Automerge on a peer's input drops that document from
//!   memory unsaved, resets that peer's sync state, and closes that connection with
//!   an `error` message; other connections carry on.
//! - Documents no connection holds leave memory after [`limits::DOC_IDLE`].

mod connection;
mod docs;
mod guard;
#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use connection::SERVER_PEER_ID;
pub use docs::Documents;
pub(crate) use docs::{Failure, Inbox, Watch};
pub(crate) use guard::DocContext;

use crate::auth::Caller;
use crate::error::AppError;
use crate::{AppState, limits};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/sync", get(upgrade))
}

/// How many sync connections each user holds open.
#[derive(Debug, Default)]
pub struct ConnectionCounts(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    counts: std::sync::Arc<ConnectionCounts>,
    user: String,
}

impl ConnectionCounts {
    /// Counts a new connection of `user`, or `None` past `most`.
    pub(crate) fn admit(self: &std::sync::Arc<Self>, user: &str, most: usize) -> Option<Counted> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user.to_owned()).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(Counted {
            counts: self.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut m = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.user);
            }
        }
    }
}

/// The caller is extracted first, so an unauthenticated upgrade is refused before
/// anything else is looked at.
async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return AppError::bad_request(
            "not_websocket",
            "this endpoint takes a WebSocket upgrade (automerge-repo protocol)",
        )
        .into_response();
    };
    let Some(counted) = state
        .connections
        .admit(&caller.user.name, limits::MAX_CONNECTIONS_PER_USER)
    else {
        crate::audit(
            &state,
            Some(&caller),
            "denied",
            "sync",
            "too_many_connections",
        )
        .await;
        return AppError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "a user may hold at most {} sync connections open",
                limits::MAX_CONNECTIONS_PER_USER
            ),
        )
        .into_response();
    };
    ws.max_message_size(limits::MAX_WS_MESSAGE)
        .max_frame_size(limits::MAX_WS_FRAME)
        .on_upgrade(move |socket| async move {
            // Counted while it lives: a stopping server waits for it to close.
            let live = state.live_sync.clone();
            live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            connection::serve(socket, state, caller).await;
            live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            drop(counted);
        })
}
