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
//! - Readers' changes are stripped before Automerge sees the message.
//! - Sync states are kept per document and device.
//! - Any failure or panic in Automerge on a peer's input drops that document from
//!   memory unsaved, resets that peer's sync state, and closes that connection with
//!   an `error` message; other connections carry on.
//! - Documents no connection holds leave memory after [`limits::DOC_IDLE`].

mod connection;
mod docs;
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

use crate::auth::Caller;
use crate::error::AppError;
use crate::{AppState, limits};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/sync", get(upgrade))
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
    ws.max_message_size(limits::MAX_WS_MESSAGE)
        .max_frame_size(limits::MAX_WS_FRAME)
        .on_upgrade(move |socket| connection::serve(socket, state, caller))
}
