//! The document sync loop: the automerge-repo protocol over a WebSocket to
//! `{server}/api/v1/sync`, modelled on the test client (tests/src/client.rs).
//!
//! While signed in it: asks the server for this user's inspections
//! (`GET /api/v1/inspections`); connects and joins; sends a `sync` for every stored
//! inspection and a `request` for every listed one not stored yet; then answers the
//! server's messages and sends local changes as they are made, until the connection
//! ends. An unreachable server is retried with exponential back-off (1 s doubling to
//! 30 s); `sync_now`, a sign-in or a sign-out cut the wait short.
//!
//! # What is durable when
//! - A local change is saved by the command before the worker ever sees it.
//! - A received change is saved ([`Store::save_inspection`]) before the sync state that
//!   records it is persisted, and both before the reply goes out. Killing the app at
//!   any point loses nothing: what was not saved is still on the server.
//! - A document fetched for the first time enters the store only once whole (its heads
//!   are the server's), so a half-fetched document never shows.
//!
//! One [`sync::State`] per document (and server), persisted with
//! [`Store::put_sync_state`] (its shared heads: a reconnect does not pay for the Bloom
//! filter of the whole history). A document is in step when the heads the server last
//! sent equal ours. The store lock is taken for each step and released before any
//! network wait.
//!
//! [`Store::save_inspection`]: wardcheck_core::store::Store::save_inspection
//! [`Store::put_sync_state`]: wardcheck_core::store::Store::put_sync_state

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use automerge::AutoCommit;
use automerge::sync::{self, SyncDoc};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;
use wardcheck_core::inspection::Inspection;
use wardcheck_core::sync::{
    DocMessage, PROTOCOL_V1, PeerMetadata, WireMessage, doc_id_to_uuid, uuid_to_doc_id,
};

use super::status::Link;
use super::{App, Session, limits, local, remote};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Exponential back-off between attempts to reach the server.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: limits::BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt; each call doubles the one after, up to
    /// [`limits::BACKOFF_MAX`].
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(limits::BACKOFF_MAX);
        wait
    }

    pub fn reset(&mut self) {
        self.next = limits::BACKOFF_START;
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// Signed in or out meanwhile: start again at once.
    SessionChanged,
    /// The server could not be reached, or the connection broke.
    Offline(String),
    /// The server refused us (a revoked token).
    Refused(String),
}

impl From<remote::RemoteError> for End {
    fn from(e: remote::RemoteError) -> Self {
        match e {
            remote::RemoteError::Offline(m) => End::Offline(m),
            remote::RemoteError::Unauthorized(_) => End::Refused(
                "The server no longer accepts this device's sign-in: sign in again".into(),
            ),
            e => End::Refused(e.to_string()),
        }
    }
}

/// Runs the document sync loop until the future is dropped.
pub(crate) async fn run(app: App) {
    let inner = app.inner();
    let mut session_rx = inner.session_gen.subscribe();
    let mut now_rx = inner.sync_now.subscribe();
    let mut backoff = Backoff::default();
    // While retrying, the status keeps saying why the last try failed.
    let mut retrying = false;
    loop {
        if app.local().is_err() {
            // No store (no keychain, or it failed to open): nothing to do, ever.
            return;
        }
        session_rx.borrow_and_update();
        let Some(session) = app.session() else {
            retrying = false;
            if session_rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        if !retrying {
            inner.hub.set_link(Link::Connecting, false);
        }
        let end = connection(&app, &session, &mut session_rx, &mut backoff).await;
        let wait = backoff.next_wait();
        retrying = true;
        match end {
            End::SessionChanged => {
                backoff.reset();
                retrying = false;
                continue;
            }
            End::Offline(why) => {
                tracing::info!("sync: offline ({why}); next try in {wait:?}");
                inner.hub.set_link(
                    Link::Offline(format!(
                        "The server cannot be reached ({why}); trying again in {} s",
                        wait.as_secs().max(1)
                    )),
                    false,
                );
            }
            End::Refused(why) => {
                tracing::warn!("sync: refused ({why})");
                inner.hub.set_link(Link::Failed(why), false);
            }
        }
        now_rx.borrow_and_update();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            r = now_rx.changed() => {
                if r.is_err() { return; }
                backoff.reset();
            }
            r = session_rx.changed() => {
                if r.is_err() { return; }
                backoff.reset();
            }
        }
    }
}

/// What one connection knows.
struct Conn {
    peer_id: String,
    server_id: String,
    /// The sync states kept for this server are filed under its address.
    peer: String,
    states: HashMap<Uuid, sync::State>,
    /// Documents listed by the server and not stored yet, being fetched.
    fetching: HashMap<Uuid, AutoCommit>,
    /// Documents the server will not share (revoked, deleted), or that this build
    /// cannot open: left alone for the rest of the connection.
    skipped: HashSet<Uuid>,
}

/// One connection, from the list request to its end.
async fn connection(
    app: &App,
    session: &Session,
    session_rx: &mut watch::Receiver<u64>,
    backoff: &mut Backoff,
) -> End {
    let inner = app.inner();
    let server = session.settings.server.clone();
    let token = session.token.clone();
    let listed = match remote::inspection_ids(&inner.http, &server, &token).await {
        Ok(ids) => ids,
        Err(e) => return e.into(),
    };
    let mut ws = match open(&server, &token).await {
        Ok(ws) => ws,
        Err(e) => return e,
    };
    let actor = match app.local() {
        Ok(local) => local.store.actor(),
        Err(e) => return End::Refused(e.message),
    };
    let mut conn = Conn {
        peer_id: format!("wardcheck-app-{}", Uuid::new_v4()),
        server_id: String::new(),
        peer: server.clone(),
        states: HashMap::new(),
        fetching: HashMap::new(),
        skipped: HashSet::new(),
    };
    if let Err(e) = join(&mut ws, &mut conn, &actor.to_hex_string()).await {
        return e;
    }
    backoff.reset();
    tracing::info!("sync: connected to {server}");
    inner.hub.set_link(Link::Connected, false);
    add_listed(app, &mut conn, &listed, &actor);

    let mut changed_rx = inner.changed.subscribe();
    let mut now_rx = inner.sync_now.subscribe();
    changed_rx.borrow_and_update();
    now_rx.borrow_and_update();
    let mut next_list = Instant::now() + limits::LIST_REFRESH;
    if let Err(e) = send_all(app, &mut conn, &mut ws).await {
        return e;
    }
    report(app, &mut conn);
    loop {
        tokio::select! {
            frame = tokio::time::timeout(limits::SILENCE_TIMEOUT, ws.next()) => {
                let frame = match frame {
                    Err(_) => return End::Offline("the server stopped answering".into()),
                    Ok(None) => return End::Offline("the server closed the connection".into()),
                    Ok(Some(Err(e))) => return End::Offline(e.to_string()),
                    Ok(Some(Ok(frame))) => frame,
                };
                let bytes = match frame {
                    Frame::Binary(b) => b,
                    Frame::Close(_) => return End::Offline("the server closed the connection".into()),
                    _ => continue,
                };
                let msg = match WireMessage::decode(&bytes) {
                    Ok(m) => m,
                    Err(e) => return End::Offline(format!("unreadable message from the server: {e}")),
                };
                if let Err(e) = handle(app, &mut conn, &mut ws, msg).await {
                    return e;
                }
            }
            r = changed_rx.changed() => {
                if r.is_err() { return End::SessionChanged; }
                if let Err(e) = send_all(app, &mut conn, &mut ws).await {
                    return e;
                }
            }
            r = now_rx.changed() => {
                if r.is_err() { return End::SessionChanged; }
                match remote::inspection_ids(&inner.http, &server, &token).await {
                    Ok(ids) => add_listed(app, &mut conn, &ids, &actor),
                    Err(e) => return e.into(),
                }
                conn.skipped.clear();
                next_list = Instant::now() + limits::LIST_REFRESH;
                if let Err(e) = send_all(app, &mut conn, &mut ws).await {
                    return e;
                }
            }
            () = tokio::time::sleep_until(next_list) => {
                match remote::inspection_ids(&inner.http, &server, &token).await {
                    Ok(ids) => add_listed(app, &mut conn, &ids, &actor),
                    Err(e) => return e.into(),
                }
                next_list = Instant::now() + limits::LIST_REFRESH;
                if let Err(e) = send_all(app, &mut conn, &mut ws).await {
                    return e;
                }
            }
            r = session_rx.changed() => {
                let _ = r;
                let _ = leave(&mut ws, &conn).await;
                return End::SessionChanged;
            }
        }
        report(app, &mut conn);
    }
}

/// Opens the WebSocket with the device token as a bearer token (a header: tungstenite
/// can set one, so the token never goes in a URL that a proxy might log).
async fn open(server: &str, token: &str) -> Result<Ws, End> {
    let mut req = remote::ws_url(server)
        .into_client_request()
        .map_err(|e| End::Refused(format!("bad server address: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| End::Refused("the stored device token is damaged: sign in again".into()))?;
    req.headers_mut().insert("authorization", bearer);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(wardcheck_core::sync::MAX_MESSAGE_BYTES))
        .max_frame_size(Some(wardcheck_core::sync::MAX_MESSAGE_BYTES));
    let connect = tokio_tungstenite::connect_async_with_config(req, Some(config), false);
    match tokio::time::timeout(limits::CONNECT_TIMEOUT, connect).await {
        Err(_) => Err(End::Offline("connecting timed out".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 401 => {
            Err(remote::RemoteError::Unauthorized(String::new()).into())
        }
        Ok(Err(tungstenite::Error::Http(res))) => Err(End::Refused(format!(
            "the server refused the sync connection (HTTP {})",
            res.status()
        ))),
        Ok(Err(e)) => Err(End::Offline(e.to_string())),
    }
}

async fn send(ws: &mut Ws, m: &WireMessage) -> Result<(), End> {
    ws.send(Frame::binary(m.encode()))
        .await
        .map_err(|e| End::Offline(e.to_string()))
}

async fn leave(ws: &mut Ws, conn: &Conn) -> Result<(), End> {
    send(
        ws,
        &WireMessage::Leave {
            sender_id: conn.peer_id.clone(),
        },
    )
    .await?;
    ws.close(None)
        .await
        .map_err(|e| End::Offline(e.to_string()))
}

/// `join`, then wait for `peer`.
async fn join(ws: &mut Ws, conn: &mut Conn, storage_id: &str) -> Result<(), End> {
    send(
        ws,
        &WireMessage::Join {
            sender_id: conn.peer_id.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_V1.into()]),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(storage_id.to_owned()),
                is_ephemeral: false,
            }),
        },
    )
    .await?;
    let deadline = Instant::now() + limits::CONNECT_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| End::Offline("the server did not answer the join".into()))?;
        let bytes = match frame {
            None => return Err(End::Offline("the server closed the connection".into())),
            Some(Err(e)) => return Err(End::Offline(e.to_string())),
            Some(Ok(Frame::Binary(b))) => b,
            Some(Ok(Frame::Close(_))) => {
                return Err(End::Offline("the server closed the connection".into()));
            }
            Some(Ok(_)) => continue,
        };
        match WireMessage::decode(&bytes) {
            Ok(WireMessage::Peer { sender_id, .. }) => {
                conn.server_id = sender_id;
                return Ok(());
            }
            Ok(WireMessage::Error { message, .. }) => return Err(End::Refused(message)),
            Ok(other) => {
                return Err(End::Offline(format!(
                    "the server answered the join with {}",
                    other.type_name()
                )));
            }
            Err(e) => return Err(End::Offline(e.to_string())),
        }
    }
}

/// Starts fetching every listed inspection not stored yet.
fn add_listed(app: &App, conn: &mut Conn, listed: &[Uuid], actor: &automerge::ActorId) {
    let Ok(local) = app.local() else { return };
    let stored: HashSet<Uuid> = local.ids().unwrap_or_default().into_iter().collect();
    drop(local);
    for id in listed {
        if !stored.contains(id) && !conn.fetching.contains_key(id) {
            conn.fetching
                .insert(*id, AutoCommit::new().with_actor(actor.clone()));
        }
    }
}

fn doc_message(conn: &Conn, id: Uuid, m: sync::Message) -> DocMessage {
    DocMessage {
        sender_id: conn.peer_id.clone(),
        target_id: conn.server_id.clone(),
        document_id: uuid_to_doc_id(id),
        data: m.encode(),
    }
}

/// Sends whatever each document has to say (local changes, first messages).
async fn send_all(app: &App, conn: &mut Conn, ws: &mut Ws) -> Result<(), End> {
    let mut out = Vec::new();
    {
        let mut local = app.local().map_err(|e| End::Refused(e.message))?;
        for id in local.ids().unwrap_or_default() {
            if conn.skipped.contains(&id) {
                continue;
            }
            if !conn.states.contains_key(&id) {
                let state = local.sync_state(id, &conn.peer);
                conn.states.insert(id, state);
            }
            let state = conn.states.get_mut(&id).expect("inserted above");
            let insp = match local.doc(id) {
                Ok(insp) => insp,
                Err(e) => {
                    tracing::warn!("sync: inspection {id} is left out: {}", e.message);
                    conn.skipped.insert(id);
                    continue;
                }
            };
            if let Some(m) = insp.generate_sync_message(state) {
                out.push(WireMessage::Sync(doc_message(conn, id, m)));
            }
        }
    }
    let ids: Vec<Uuid> = conn.fetching.keys().copied().collect();
    for id in ids {
        let state = conn.states.entry(id).or_default();
        let doc = conn.fetching.get_mut(&id).expect("listed above");
        let message = doc.sync().generate_sync_message(state);
        if let Some(m) = message {
            // automerge-repo asks with `request` while it has nothing of a document.
            out.push(WireMessage::Request(doc_message(conn, id, m)));
        }
    }
    for m in &out {
        send(ws, m).await?;
    }
    Ok(())
}

/// One message from the server.
async fn handle(app: &App, conn: &mut Conn, ws: &mut Ws, msg: WireMessage) -> Result<(), End> {
    match msg {
        WireMessage::Sync(d) | WireMessage::Request(d) => {
            let Ok(id) = doc_id_to_uuid(&d.document_id) else {
                return Ok(());
            };
            let m = sync::Message::decode(&d.data)
                .map_err(|e| End::Offline(format!("unreadable sync data: {e}")))?;
            let reply = if conn.fetching.contains_key(&id) {
                receive_new(app, conn, id, m)?
            } else {
                receive_stored(app, conn, id, m)?
            };
            if let Some(r) = reply {
                send(ws, &WireMessage::Sync(doc_message(conn, id, r))).await?;
            }
            Ok(())
        }
        WireMessage::DocUnavailable { document_id, .. } => {
            if let Ok(id) = doc_id_to_uuid(&document_id) {
                tracing::info!("sync: the server does not share inspection {id}");
                conn.fetching.remove(&id);
                conn.skipped.insert(id);
            }
            Ok(())
        }
        WireMessage::Error { message, .. } => Err(End::Offline(format!(
            "the server ended the connection: {message}"
        ))),
        _ => Ok(()),
    }
}

/// A message about a stored inspection: applied, saved, its state persisted, then the
/// reply made, all under one lock and with no network wait.
fn receive_stored(
    app: &App,
    conn: &mut Conn,
    id: Uuid,
    m: sync::Message,
) -> Result<Option<sync::Message>, End> {
    let mut local = app.local().map_err(|e| End::Refused(e.message))?;
    let mut state = match conn.states.remove(&id) {
        Some(s) => s,
        None => local.sync_state(id, &conn.peer),
    };
    let Ok(insp) = local.doc(id) else {
        // Not ours to open (no such document here, or an unknown checklist).
        conn.skipped.insert(id);
        return Ok(None);
    };
    let before = insp.heads();
    if let Err(e) = insp.receive_sync_message(&mut state, m) {
        // The loaded copy may be half-changed: drop it and reload from the store; the
        // exchange starts again on the next connection.
        local.evict(id);
        return Err(End::Offline(format!(
            "inspection {id} could not take the server's changes: {e}"
        )));
    }
    if insp.heads() != before {
        // Saved before the state that records it, and before the reply.
        if let Err(e) = local.write(id, |_| Ok(())) {
            return Err(End::Refused(format!(
                "the server's changes could not be saved: {}",
                e.message
            )));
        }
    }
    if let Err(e) = local.store.put_sync_state(id, &conn.peer, &state.encode()) {
        tracing::warn!("sync: could not keep the sync state of {id}: {e}");
    }
    local.count_pending(id, &state.shared_heads);
    let reply = local
        .doc(id)
        .map_err(|e| End::Refused(e.message))?
        .generate_sync_message(&mut state);
    conn.states.insert(id, state);
    Ok(reply)
}

/// A message about an inspection being fetched: applied in memory until whole, then
/// stored with its sync state.
fn receive_new(
    app: &App,
    conn: &mut Conn,
    id: Uuid,
    m: sync::Message,
) -> Result<Option<sync::Message>, End> {
    let state = conn.states.entry(id).or_default();
    let doc = conn.fetching.get_mut(&id).expect("checked by the caller");
    let received = doc.sync().receive_sync_message(state, m);
    if let Err(e) = received {
        conn.fetching.remove(&id);
        conn.states.remove(&id);
        conn.skipped.insert(id);
        tracing::warn!("sync: inspection {id} could not be fetched: {e}");
        return Ok(None);
    }
    let whole = !doc.get_heads().is_empty() && is_whole(state, doc);
    if !whole {
        return Ok(doc.sync().generate_sync_message(state));
    }
    let doc = conn.fetching.remove(&id).expect("checked by the caller");
    let stored = Inspection::pin_of_doc(&doc)
        .map_err(crate::error::AppError::from)
        .and_then(|pin| local::checklist_for(&pin))
        .and_then(|checklist| Ok(Inspection::from_doc(doc, checklist)?));
    let insp = match stored {
        Ok(insp) => insp,
        Err(e) => {
            tracing::warn!("sync: inspection {id} cannot be opened here: {}", e.message);
            conn.skipped.insert(id);
            app.inner().hub.set_note(Some(e.message));
            return Ok(None);
        }
    };
    let mut local = app.local().map_err(|e| End::Refused(e.message))?;
    local.insert(insp).map_err(|e| End::Refused(e.message))?;
    if let Err(e) = local.store.put_sync_state(id, &conn.peer, &state.encode()) {
        tracing::warn!("sync: could not keep the sync state of {id}: {e}");
    }
    let shared = state.shared_heads.clone();
    local.count_pending(id, &shared);
    let insp = local.doc(id).map_err(|e| End::Refused(e.message))?;
    Ok(insp.generate_sync_message(state))
}

/// Whether we hold every head the server last named.
fn is_whole(state: &sync::State, doc: &mut AutoCommit) -> bool {
    state
        .their_heads
        .as_ref()
        .is_some_and(|theirs| theirs.iter().all(|h| doc.get_change_by_hash(h).is_some()))
}

/// Whether the server's last word says it holds all we hold, and we all it holds.
fn in_step(state: &sync::State, insp: &mut Inspection) -> bool {
    let Some(theirs) = &state.their_heads else {
        return false;
    };
    let mut theirs = theirs.clone();
    let mut ours = insp.heads();
    theirs.sort();
    ours.sort();
    // A server that only lets us read will never take our changes.
    theirs == ours || (state.is_peer_read_only() && theirs.iter().all(|h| insp.has_change(h)))
}

/// Reports whether every document is in step, and what is still only here.
fn report(app: &App, conn: &mut Conn) {
    let Ok(mut local) = app.local() else { return };
    let mut all = conn.fetching.is_empty();
    for id in local.ids().unwrap_or_default() {
        if conn.skipped.contains(&id) {
            continue;
        }
        let Some(state) = conn.states.get(&id) else {
            all = false;
            continue;
        };
        let Ok(insp) = local.doc(id) else { continue };
        all &= in_step(state, insp);
    }
    let changes = local.pending_total(&conn.peer);
    let (photos, bytes) = local.pending_photos();
    drop(local);
    let hub = &app.inner().hub;
    let a = hub.set_link(Link::Connected, all);
    let b = hub.set_pending_changes(changes);
    let c = hub.set_pending_photos(photos, bytes);
    if a || b || c {
        app.remember_synced();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_wait().as_secs(), 1);
    }
}
