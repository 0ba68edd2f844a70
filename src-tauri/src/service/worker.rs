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
//! network wait; each step runs on the blocking pool, not on the runtime's threads.
//!
//! # What a bad document does
//! Every Automerge call on what the server sent (decoding, receiving, loading a fetched
//! document, saving it, and making the reply) runs under `catch_unwind` (SYNC-NOTES §5:
//! damaged input can make Automerge panic). A message about one document that cannot be
//! read, does not apply, panics, or cannot be saved leaves that document out of the
//! connection: its loaded copy is dropped (reloaded from the store, never a half-changed
//! copy), its sync state reset, and the status names it and is never `synced` while it
//! is out. The other documents go on; the next connection or `sync_now` tries it again.
//! A stored document that does not open (damaged) is reported by the status as an
//! `error` that names it.
//!
//! # Timeouts
//! Every send and close has [`limits::SEND_TIMEOUT`]; the silence timeout is a deadline
//! moved only by a frame from the server. Either one expiring means offline, and a
//! reconnect after the back-off.
//!
//! [`Store::save_inspection`]: wardcheck_core::store::Store::save_inspection
//! [`Store::put_sync_state`]: wardcheck_core::store::Store::put_sync_state

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
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
use wardcheck_core::policy::DocKind;
use wardcheck_core::review::Review;
use wardcheck_core::sync::{
    DocMessage, PROTOCOL_V1, PeerMetadata, WireMessage, doc_id_to_uuid, uuid_to_doc_id,
};

use super::local::{Local, Unopenable};
use super::status::Link;
use super::{App, Session, limits, local, remote};
use crate::error::{AppError, ErrorCode};

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
    /// The wait before the next attempt: between half and all of a step that doubles on
    /// each call, up to [`limits::BACKOFF_MAX`]. The random part ("equal jitter") spreads
    /// out the tablets that lost the server at the same moment (a restart), so that they
    /// do not all come back in the same second.
    pub fn next_wait(&mut self) -> Duration {
        use rand::RngExt;
        let step = self.next;
        self.next = (self.next * 2).min(limits::BACKOFF_MAX);
        let half = step / 2;
        half + step.mul_f64(rand::rng().random_range(0.0..=0.5))
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
    /// The server refused a change and closed the connection: the document is left
    /// out, and the others go on over a new connection at once.
    ChangeRefused,
    /// The server could not be reached, or the connection broke.
    Offline(String),
    /// The server refused us (a revoked token).
    Refused(String),
    /// The device was revoked with a wipe: the app deletes its data.
    Wiped(String),
}

impl From<remote::RemoteError> for End {
    fn from(e: remote::RemoteError) -> Self {
        match e {
            remote::RemoteError::Offline(m) => End::Offline(m),
            remote::RemoteError::Wiped(m) => End::Wiped(m),
            remote::RemoteError::Unauthorized(_) => End::Refused(
                "The server no longer accepts this device's sign-in: sign in again".into(),
            ),
            // A server error, an overloaded or restarting server: waiting mends it.
            remote::RemoteError::Refused { status, .. } if e.is_transient() => {
                End::Offline(format!("the server answered HTTP {status}"))
            }
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
    // A wipe done while the server could not be told: tell it now.
    app.retry_wipe_report().await;
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
            End::ChangeRefused => {
                // Not offline: the status keeps saying what was refused.
                backoff.reset();
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
            End::Wiped(why) => {
                tracing::warn!("sync: the server asks this device to delete its data ({why})");
                app.wipe(&why).await;
                // Signed out, on a fresh store: the loop waits for a sign-in.
                backoff.reset();
                retrying = false;
                continue;
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
    /// Documents listed by the server and not stored yet, being fetched (an inspection,
    /// or its review document).
    fetching: HashMap<Uuid, (DocKind, AutoCommit)>,
    /// Documents the server will not share (revoked, deleted), that this build
    /// cannot open, or whose exchange failed: left alone for the rest of the
    /// connection (or until `sync_now`).
    skipped: HashSet<Uuid>,
    /// The documents whose exchange failed, and why: the status is never `synced`
    /// while any is.
    failed: BTreeMap<Uuid, String>,
    /// What the server's list said of each inspection (its trust and state), to show
    /// one this device cannot open.
    listed: HashMap<Uuid, remote::Listed>,
}

impl Conn {
    fn new(peer_id: String, peer: String) -> Self {
        Conn {
            peer_id,
            server_id: String::new(),
            peer,
            states: HashMap::new(),
            fetching: HashMap::new(),
            skipped: HashSet::new(),
            failed: BTreeMap::new(),
            listed: HashMap::new(),
        }
    }
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
    let actor = match app.local() {
        Ok(local) => local.store.actor(),
        Err(e) => return End::Refused(e.message),
    };
    // The server takes changes only from actors bound to their user: bound at sign-in,
    // and again here (it changes nothing the second time) for a device signed in before.
    if let Err(e) = remote::bind_actor(inner.http(), &server, &token, &actor.to_hex_string()).await
    {
        return match e {
            remote::RemoteError::Refused {
                status: 409,
                message,
                ..
            } => End::Refused(format!(
                "This device's changes cannot be taken by the server ({message}): ask your \
                 Wardcheck administrator"
            )),
            e => e.into(),
        };
    }
    // The checklists the server holds that this device lacks, before the inspections
    // that pin them.
    sync_checklists(app, &server, &token).await;
    let listed = match remote::inspection_ids(inner.http(), &server, &token).await {
        Ok(ids) => ids,
        Err(e) => return e.into(),
    };
    let mut ws = match open(&server, &token).await {
        Ok(ws) => ws,
        Err(e) => return e,
    };
    let mut conn = Conn::new(format!("wardcheck-app-{}", Uuid::new_v4()), server.clone());
    if let Err(e) = join(&mut ws, &mut conn, &actor.to_hex_string()).await {
        return e;
    }
    backoff.reset();
    tracing::info!("sync: connected to {server}");
    inner.hub.set_link(Link::Connected, false);
    let first = actor.clone();
    let kept = listed.clone();
    if let Err(e) = on_pool(app, &mut conn, move |app, conn| {
        add_listed(app, conn, &kept, &first)
    })
    .await
    {
        return e;
    }
    super::actions::spawn(app, &server, &token, listed);

    let mut changed_rx = inner.changed.subscribe();
    let mut now_rx = inner.sync_now.subscribe();
    changed_rx.borrow_and_update();
    now_rx.borrow_and_update();
    let mut next_list = Instant::now() + limits::LIST_REFRESH;
    if let Err(e) = send_all(app, &mut conn, &mut ws).await {
        return e;
    }
    if let Err(e) = on_pool(app, &mut conn, report).await {
        return e;
    }
    // An absolute deadline, moved only by a frame from the server: sending, list
    // refreshes and local changes do not keep a dead connection alive.
    let mut silent_until = Instant::now() + inner.silence_timeout;
    loop {
        tokio::select! {
            frame = tokio::time::timeout_at(silent_until, ws.next()) => {
                let frame = match frame {
                    Err(_) => return End::Offline("the server stopped answering".into()),
                    Ok(None) => return End::Offline("the server closed the connection".into()),
                    Ok(Some(Err(e))) => return End::Offline(e.to_string()),
                    Ok(Some(Ok(frame))) => frame,
                };
                silent_until = Instant::now() + inner.silence_timeout;
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
                // Sync now: everything left out is tried again.
                conn.skipped.clear();
                conn.failed.clear();
                if let Err(e) = refresh(app, &mut conn, &mut ws, (&server, &token), &actor).await {
                    return e;
                }
                next_list = Instant::now() + limits::LIST_REFRESH;
            }
            () = tokio::time::sleep_until(next_list) => {
                if let Err(e) = refresh(app, &mut conn, &mut ws, (&server, &token), &actor).await {
                    return e;
                }
                next_list = Instant::now() + limits::LIST_REFRESH;
            }
            r = session_rx.changed() => {
                let _ = r;
                // A courtesy: a server that does not take it at once is not waited for
                // (the sign-in or sign-out goes ahead).
                let _ = tokio::time::timeout(limits::LEAVE_TIMEOUT, leave(&mut ws, &conn)).await;
                return End::SessionChanged;
            }
        }
        if let Err(e) = on_pool(app, &mut conn, report).await {
            return e;
        }
    }
}

/// Reads the server's list of the user's inspections again, takes in any new ones, and
/// sends whatever the server lacks.
async fn refresh(
    app: &App,
    conn: &mut Conn,
    ws: &mut Ws,
    (server, token): (&str, &str),
    actor: &automerge::ActorId,
) -> Result<(), End> {
    // A new inspection may pin a checklist this device lacks: fetched first; one that
    // arrived lets the inspections left out for want of it be fetched again.
    if sync_checklists(app, server, token).await {
        conn.skipped.clear();
    }
    let ids: Vec<remote::Listed> =
        remote::inspection_ids(app.inner().http(), server, token).await?;
    let actor = actor.clone();
    let kept = ids.clone();
    on_pool(app, conn, move |app, conn| {
        add_listed(app, conn, &kept, &actor)
    })
    .await?;
    super::actions::spawn(app, server, token, ids);
    send_all(app, conn, ws).await
}

/// Fetches each checklist the server holds that this device lacks, checks it against its
/// pin and keeps it ([`super::checklists`]); one that cannot be had is said in the sync
/// status. Whether any arrived. A server without the route (older) changes nothing.
async fn sync_checklists(app: &App, server: &str, token: &str) -> bool {
    let http = app.inner().http();
    let held = match remote::checklists(http, server, token).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("sync: the server's checklists could not be listed: {e}");
            return false;
        }
    };
    let mut arrived = false;
    let mut problems = BTreeMap::new();
    for pin in super::checklists::missing(&held) {
        match super::checklists::fetch(http, server, token, &pin).await {
            Ok((c, files)) => {
                let kept = app
                    .local()
                    .map_err(|e| e.message)
                    .and_then(|mut local| super::checklists::keep(&mut local.store, c, files));
                match kept {
                    Ok(()) => {
                        tracing::info!(
                            "sync: checklist {}@{} fetched and kept",
                            pin.id,
                            pin.version
                        );
                        arrived = true;
                    }
                    Err(e) => {
                        problems.insert(format!("{}@{}", pin.id, pin.version), e);
                    }
                }
            }
            Err(why) => {
                problems.insert(format!("{}@{}", pin.id, pin.version), why);
            }
        }
    }
    if !problems.is_empty() {
        let said: Vec<String> = problems.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        app.inner().hub.set_note(Some(format!(
            "Checklists that could not be had from the server: {}",
            said.join("; ")
        )));
    }
    *app.inner()
        .checklist_problems
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = problems;
    arrived
}

/// Opens the WebSocket with the device token as a bearer token (a header: tungstenite
/// can set one, so the token never goes in a URL that a proxy might log).
async fn open(server: &str, token: &str) -> Result<Ws, End> {
    let mut req = remote::ws_url(server)
        .into_client_request()
        .map_err(|e| End::Refused(format!("bad server address: {e}")))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| End::Refused("the stored device token is damaged: sign in again".into()))?;
    bearer.set_sensitive(true);
    req.headers_mut().insert("authorization", bearer);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(wardcheck_core::sync::MAX_MESSAGE_BYTES))
        .max_frame_size(Some(wardcheck_core::sync::MAX_MESSAGE_BYTES));
    let tls = remote::ws_tls()
        .map_err(|e| End::Refused(format!("the platform's TLS cannot be set up: {e}")))?;
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        req,
        Some(config),
        false,
        Some(tokio_tungstenite::Connector::NativeTls(tls)),
    );
    match tokio::time::timeout(limits::CONNECT_TIMEOUT, connect).await {
        Err(_) => Err(End::Offline("connecting timed out".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 401 => {
            let body: Option<serde_json::Value> = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok());
            let code = body
                .as_ref()
                .and_then(|b| b["error"]["code"].as_str())
                .unwrap_or_default();
            if code == remote::WIPED_CODE {
                let message = body.as_ref().and_then(|b| b["error"]["message"].as_str());
                Err(End::Wiped(message.unwrap_or("wiped").to_owned()))
            } else {
                Err(remote::RemoteError::Unauthorized(String::new()).into())
            }
        }
        // A 5xx, 408 or 429 is offline (retried); anything else an error.
        Ok(Err(tungstenite::Error::Http(res))) => {
            let status = res.status().as_u16();
            Err(remote::RemoteError::Refused {
                status,
                code: String::new(),
                message: "the sync connection was refused".into(),
            }
            .into())
        }
        // The certificate refused: retrying will not mend it, so the status says why.
        Ok(Err(tungstenite::Error::Tls(e))) if remote::is_certificate_refusal(&e.to_string()) => {
            Err(remote::RemoteError::Untrusted(e.to_string()).into())
        }
        Ok(Err(e)) => Err(End::Offline(e.to_string())),
    }
}

/// Sends one message, or gives up after [`limits::SEND_TIMEOUT`] (a peer that stops
/// reading would otherwise hold the worker forever).
async fn send(ws: &mut Ws, m: &WireMessage) -> Result<(), End> {
    match tokio::time::timeout(limits::SEND_TIMEOUT, ws.send(Frame::binary(m.encode()))).await {
        Err(_) => Err(End::Offline("sending to the server timed out".into())),
        Ok(r) => r.map_err(|e| End::Offline(e.to_string())),
    }
}

async fn leave(ws: &mut Ws, conn: &Conn) -> Result<(), End> {
    send(
        ws,
        &WireMessage::Leave {
            sender_id: conn.peer_id.clone(),
        },
    )
    .await?;
    match tokio::time::timeout(limits::SEND_TIMEOUT, ws.close(None)).await {
        Err(_) => Err(End::Offline("closing the connection timed out".into())),
        Ok(r) => r.map_err(|e| End::Offline(e.to_string())),
    }
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

/// Keeps what the list says of each inspection (its review document, its lead) and
/// starts fetching every listed document not stored yet (and not left out).
fn add_listed(app: &App, conn: &mut Conn, listed: &[remote::Listed], actor: &automerge::ActorId) {
    let Ok(mut local) = app.local() else { return };
    let stored: HashSet<Uuid> = local.synced_ids().unwrap_or_default().into_iter().collect();
    let refused = local.refusals();
    // Rows for inspections the server no longer lists go.
    app.inner()
        .unavailable
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|id, _| listed.iter().any(|l| l.id == *id));
    for l in listed {
        conn.listed.insert(l.id, l.clone());
        let record = local::Record {
            review_doc: l.review_doc,
            lead: l.lead.clone(),
        };
        if local.record(l.id) != record {
            local.put_record(l.id, &record);
        }
    }
    drop(local);
    let docs = listed.iter().flat_map(|l| {
        std::iter::once((l.id, DocKind::Inspection))
            .chain(l.review_doc.map(|r| (r, DocKind::Review)))
    });
    for (id, kind) in docs {
        if !stored.contains(&id)
            && !conn.fetching.contains_key(&id)
            && !conn.skipped.contains(&id)
            && !refused.contains_key(&id)
        {
            conn.fetching
                .insert(id, (kind, AutoCommit::new().with_actor(actor.clone())));
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

/// Runs Automerge work on what a peer sent, catching a panic (SYNC-NOTES §5: damaged
/// input can make Automerge panic). `Err` carries the panic's text.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Leaves a document out of this connection after its exchange failed: its loaded
/// copy is dropped (the next use reloads what the store holds, never a half-changed
/// copy), its sync state is forgotten (in memory and stored), a fetch in progress is
/// abandoned, and the failure is kept for the status. The worker goes on with the
/// other documents; the next connection or `sync_now` tries this one again.
fn leave_out(local: &mut Local, conn: &mut Conn, id: Uuid, why: String) {
    tracing::warn!("sync: inspection {id} is left out of this connection: {why}");
    local.evict(id);
    local.reset_sync_state(id, &conn.peer);
    conn.fetching.remove(&id);
    conn.states.remove(&id);
    conn.skipped.insert(id);
    conn.failed.insert(id, why);
}

/// Runs store work (SQLite writes with fsync, Automerge loads and merges) on the
/// blocking pool, not on the async runtime's threads: the connection's state moves in
/// and back. If the task itself fails the connection ends (its state is lost with it).
async fn on_pool<T: Send + 'static>(
    app: &App,
    conn: &mut Conn,
    f: impl FnOnce(&App, &mut Conn) -> T + Send + 'static,
) -> Result<T, End> {
    let app = app.clone();
    let mut owned = std::mem::replace(conn, Conn::new(String::new(), String::new()));
    let (owned, out) = tokio::task::spawn_blocking(move || {
        let out = f(&app, &mut owned);
        (owned, out)
    })
    .await
    .map_err(|e| End::Offline(format!("the sync worker's store task failed: {e}")))?;
    *conn = owned;
    Ok(out)
}

/// [`leave_out`] from the async side.
async fn left_out(app: &App, conn: &mut Conn, id: Uuid, why: String) -> Result<(), End> {
    on_pool(app, conn, move |app, conn| {
        let mut local = app.local().map_err(|e| End::Refused(e.message))?;
        leave_out(&mut local, conn, id, why);
        Ok(())
    })
    .await?
}

/// Sends whatever each document has to say (local changes, first messages).
async fn send_all(app: &App, conn: &mut Conn, ws: &mut Ws) -> Result<(), End> {
    let out = on_pool(app, conn, to_send).await??;
    for m in &out {
        send(ws, m).await?;
    }
    Ok(())
}

/// What each document has to say, made under the store lock (on the blocking pool).
fn to_send(app: &App, conn: &mut Conn) -> Result<Vec<WireMessage>, End> {
    let mut out = Vec::new();
    {
        let mut local = app.local().map_err(|e| End::Refused(e.message))?;
        let refused = local.refusals();
        for id in local.synced_ids().unwrap_or_default() {
            // A document whose change the server refused is not sent again: it would only
            // be refused again. It waits for the user (take the server's copy).
            if conn.skipped.contains(&id) || refused.contains_key(&id) {
                continue;
            }
            if !conn.states.contains_key(&id) {
                let state = local.sync_state(id, &conn.peer);
                conn.states.insert(id, state);
            }
            let insp = match local.synced(id) {
                Ok(insp) => insp,
                Err(e) => {
                    // A damaged one is in `local.damaged()`, which the status reports.
                    let e = AppError::from(e);
                    tracing::warn!("sync: inspection {id} is left out: {}", e.message);
                    conn.skipped.insert(id);
                    continue;
                }
            };
            let state = conn.states.get_mut(&id).expect("inserted above");
            match guarded(|| insp.generate(state)) {
                Ok(Some(m)) => out.push(WireMessage::Sync(doc_message(conn, id, m))),
                Ok(None) => {}
                Err(p) => leave_out(
                    &mut local,
                    conn,
                    id,
                    format!("the document library failed on it ({p})"),
                ),
            }
        }
        let ids: Vec<Uuid> = conn.fetching.keys().copied().collect();
        for id in ids {
            let state = conn.states.entry(id).or_default();
            let (_, doc) = conn.fetching.get_mut(&id).expect("listed above");
            match guarded(|| doc.sync().generate_sync_message(state)) {
                // automerge-repo asks with `request` while it has nothing of a document.
                Ok(Some(m)) => out.push(WireMessage::Request(doc_message(conn, id, m))),
                Ok(None) => {}
                Err(p) => leave_out(
                    &mut local,
                    conn,
                    id,
                    format!("the document library failed on it ({p})"),
                ),
            }
        }
    }
    Ok(out)
}

/// One message from the server. A message about one document that cannot be read or
/// applied leaves that document out (see [`leave_out`]); it ends the connection only
/// when the store itself is gone.
async fn handle(app: &App, conn: &mut Conn, ws: &mut Ws, msg: WireMessage) -> Result<(), End> {
    match msg {
        WireMessage::Sync(d) | WireMessage::Request(d) => {
            let Ok(id) = doc_id_to_uuid(&d.document_id) else {
                return Ok(());
            };
            if conn.skipped.contains(&id) {
                return Ok(());
            }
            let m = match guarded(|| sync::Message::decode(&d.data)) {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => {
                    return left_out(app, conn, id, format!("unreadable sync data ({e})")).await;
                }
                Err(p) => {
                    return left_out(app, conn, id, format!("unreadable sync data ({p})")).await;
                }
            };
            let reply = if conn.fetching.contains_key(&id) {
                on_pool(app, conn, move |app, conn| receive_new(app, conn, id, m)).await??
            } else {
                on_pool(app, conn, move |app, conn| receive_stored(app, conn, id, m)).await??
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
        WireMessage::Error {
            message,
            code: Some(code),
            document_id: Some(doc),
            ..
        } if is_refusal(&code) => {
            // The server refused a change to this document: it keeps nothing of it and
            // closes the connection. The document is left out (kept on this device, not
            // sent again) until the user acts; the others sync on the next connection.
            if let Ok(id) = doc_id_to_uuid(&doc) {
                tracing::warn!("sync: the server refused a change to {id} ({code}): {message}");
                // The server says "change H to document D was refused (CODE): WHY; nothing of
                // it was stored": the user is told WHY.
                let why = message
                    .split_once("): ")
                    .map(|(_, r)| r.split("; nothing of it was stored").next().unwrap_or(r))
                    .unwrap_or(&message)
                    .to_owned();
                on_pool(app, conn, move |app, conn| {
                    let mut local = app.local().map_err(|e| End::Refused(e.message))?;
                    let refusal = local::Refusal {
                        code,
                        message: why,
                        at: chrono::Utc::now(),
                    };
                    if let Err(e) = local.refuse(id, &refusal) {
                        tracing::error!("sync: could not keep the refusal of {id}: {}", e.message);
                    }
                    local.evict(id);
                    local.reset_sync_state(id, &conn.peer);
                    conn.states.remove(&id);
                    conn.fetching.remove(&id);
                    conn.skipped.insert(id);
                    app.report_refused(&local);
                    Ok::<(), End>(())
                })
                .await??;
            }
            let _ = message;
            Err(End::ChangeRefused)
        }
        WireMessage::Error { message, .. } => Err(End::Offline(format!(
            "the server ended the connection: {message}"
        ))),
        _ => Ok(()),
    }
}

/// Whether an `error`'s code says the server refused a change (for good: sending it again
/// would be refused again), rather than failed itself.
fn is_refusal(code: &str) -> bool {
    !matches!(code, "load_failed" | "storage_failed")
}

/// A message about a stored inspection: applied, saved, its state persisted, then the
/// reply made, all under one lock and with no network wait. Any failure on the way
/// leaves the document out of this connection ([`leave_out`]).
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
    let applied = match local.synced(id) {
        Ok(insp) => guarded(|| {
            let before = insp.heads();
            insp.receive(&mut state, m).map(|()| insp.heads() != before)
        }),
        Err(_) => {
            // Not ours to open (an unknown checklist, or damaged: the status says so).
            conn.skipped.insert(id);
            return Ok(None);
        }
    };
    let changed = match applied {
        Ok(Ok(changed)) => changed,
        Ok(Err(e)) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("its changes from the server do not apply ({e})"),
            );
            return Ok(None);
        }
        Err(p) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("its changes from the server made the document library fail ({p})"),
            );
            return Ok(None);
        }
    };
    if changed {
        // Saved before the state that records it, and before the reply.
        let saved = guarded(|| local.save(id));
        let failure = match saved {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!(
                "the server's changes could not be saved ({})",
                e.message
            )),
            Err(p) => Some(format!("saving the server's changes failed ({p})")),
        };
        if let Some(why) = failure {
            leave_out(&mut local, conn, id, why);
            return Ok(None);
        }
        app.received_from_server();
    }
    if let Err(e) = local.store.put_sync_state(id, &conn.peer, &state.encode()) {
        tracing::warn!("sync: could not keep the sync state of {id}: {e}");
    }
    local.count_pending(id, &state.shared_heads);
    let reply = match local.synced(id) {
        Ok(insp) => guarded(|| insp.generate(&mut state)),
        Err(e) => Err(AppError::from(e).message),
    };
    match reply {
        Ok(reply) => {
            conn.states.insert(id, state);
            Ok(reply)
        }
        Err(why) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("no answer could be made ({why})"),
            );
            Ok(None)
        }
    }
}

/// What one message about a document being fetched did.
enum Fetch {
    /// Not whole yet: the reply, if any.
    More(Option<sync::Message>),
    /// Whole: ready to store.
    Whole,
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
    let (kind, doc) = conn.fetching.get_mut(&id).expect("checked by the caller");
    let kind = *kind;
    let step = guarded(|| -> Result<Fetch, automerge::AutomergeError> {
        doc.sync().receive_sync_message(state, m)?;
        if !doc.get_heads().is_empty() && is_whole(state, doc) {
            Ok(Fetch::Whole)
        } else {
            Ok(Fetch::More(doc.sync().generate_sync_message(state)))
        }
    });
    let failure = match step {
        Ok(Ok(Fetch::More(reply))) => return Ok(reply),
        Ok(Ok(Fetch::Whole)) => None,
        Ok(Err(e)) => Some(format!("it could not be fetched ({e})")),
        Err(p) => Some(format!("fetching it made the document library fail ({p})")),
    };
    if let Some(why) = failure {
        let mut local = app.local().map_err(|e| End::Refused(e.message))?;
        leave_out(&mut local, conn, id, why);
        return Ok(None);
    }
    let (_, doc) = conn.fetching.remove(&id).expect("checked by the caller");
    if kind == DocKind::Review {
        return store_review(app, conn, id, doc);
    }
    let pinned = Inspection::pin_of_doc(&doc).ok();
    let opened = guarded(|| {
        Inspection::pin_of_doc(&doc)
            .map_err(AppError::from)
            .and_then(|pin| local::checklist_for(&pin))
            .and_then(|checklist| Ok(Inspection::from_doc(doc, checklist)?))
    });
    let mut local = app.local().map_err(|e| End::Refused(e.message))?;
    let insp = match opened {
        Ok(Ok(insp)) => {
            app.inner()
                .unavailable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            insp
        }
        Ok(Err(e)) => {
            tracing::warn!("sync: inspection {id} cannot be opened here: {}", e.message);
            conn.skipped.insert(id);
            conn.states.remove(&id);
            if e.code == ErrorCode::NotFound {
                // A checklist this device lacks (and could not fetch): not a sync
                // failure, but the inspection is listed with why.
                let listed = conn.listed.get(&id);
                let state = listed
                    .and_then(|l| l.state.clone())
                    .and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok())
                    .unwrap_or(wardcheck_core::inspection::State::Draft);
                let checklist = pinned
                    .as_ref()
                    .map_or("?".into(), |p| format!("{}@{}", p.id, p.version));
                let why = app
                    .inner()
                    .checklist_problems
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&checklist)
                    .cloned()
                    .unwrap_or_else(|| "the server does not hold it".into());
                let unavailable = super::views::Unavailable {
                    trust: listed.and_then(|l| l.trust.clone()).unwrap_or_default(),
                    state,
                    checklist,
                    why: why.clone(),
                };
                app.inner()
                    .unavailable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, unavailable);
                app.inner()
                    .hub
                    .set_note(Some(format!("{} It cannot be had: {why}.", e.message)));
            } else {
                conn.failed.insert(id, e.message);
            }
            return Ok(None);
        }
        Err(p) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("reading it made the document library fail ({p})"),
            );
            return Ok(None);
        }
    };
    let inserted = guarded(|| local.insert(insp));
    let failure = match inserted {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("it could not be saved ({})", e.message)),
        Err(p) => Some(format!("saving it made the document library fail ({p})")),
    };
    if let Some(why) = failure {
        leave_out(&mut local, conn, id, why);
        return Ok(None);
    }
    app.received_from_server();
    let state = conn.states.entry(id).or_default();
    if let Err(e) = local.store.put_sync_state(id, &conn.peer, &state.encode()) {
        tracing::warn!("sync: could not keep the sync state of {id}: {e}");
    }
    let shared = state.shared_heads.clone();
    local.count_pending(id, &shared);
    let reply = match local.synced(id) {
        Ok(insp) => guarded(|| insp.generate(state)),
        Err(e) => Err(AppError::from(e).message),
    };
    match reply {
        Ok(reply) => Ok(reply),
        Err(why) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("no answer could be made ({why})"),
            );
            Ok(None)
        }
    }
}

/// Stores a review document fetched whole, then answers as for a stored one.
fn store_review(
    app: &App,
    conn: &mut Conn,
    id: Uuid,
    doc: AutoCommit,
) -> Result<Option<sync::Message>, End> {
    let mut local = app.local().map_err(|e| End::Refused(e.message))?;
    let inserted = guarded(|| {
        Review::from_doc(doc)
            .map_err(|e| AppError::new(ErrorCode::Storage, e.to_string()))
            .and_then(|r| local.insert_review(id, r))
    });
    let failure = match inserted {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!(
            "its review document could not be saved ({})",
            e.message
        )),
        Err(p) => Some(format!(
            "saving its review document made the document library fail ({p})"
        )),
    };
    if let Some(why) = failure {
        leave_out(&mut local, conn, id, why);
        return Ok(None);
    }
    app.received_from_server();
    let state = conn.states.entry(id).or_default();
    if let Err(e) = local.store.put_sync_state(id, &conn.peer, &state.encode()) {
        tracing::warn!("sync: could not keep the sync state of {id}: {e}");
    }
    let shared = state.shared_heads.clone();
    local.count_pending(id, &shared);
    let reply = match local.synced(id) {
        Ok(r) => guarded(|| r.generate(state)),
        Err(e) => Err(AppError::from(e).message),
    };
    match reply {
        Ok(reply) => Ok(reply),
        Err(why) => {
            leave_out(
                &mut local,
                conn,
                id,
                format!("no answer could be made ({why})"),
            );
            Ok(None)
        }
    }
}

/// Whether we hold every head the server last named.
fn is_whole(state: &sync::State, doc: &mut AutoCommit) -> bool {
    state
        .their_heads
        .as_ref()
        .is_some_and(|theirs| theirs.iter().all(|h| doc.get_change_by_hash(h).is_some()))
}

/// Whether the server's last word says it holds all we hold, and we all it holds.
fn in_step(state: &sync::State, insp: &mut dyn local::Synced) -> bool {
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
    let mut all = conn.fetching.is_empty() && conn.failed.is_empty();
    let refused = local.refusals();
    for id in local.synced_ids().unwrap_or_default() {
        if conn.skipped.contains(&id) || refused.contains_key(&id) {
            continue;
        }
        let Some(state) = conn.states.get(&id) else {
            all = false;
            continue;
        };
        match local.synced(id) {
            Ok(insp) => all &= in_step(state, insp),
            // Never synced, never shown: not this device's to sync until updated.
            Err(Unopenable::Checklist(_) | Unopenable::Missing(_)) => {}
            Err(Unopenable::Damaged(_)) => all = false,
        }
    }
    all &= local.damaged().is_empty();
    let changes = local.pending_total(&conn.peer);
    let (photos, bytes) = local.pending_photos();
    app.report_damaged(&local);
    app.report_refused(&local);
    drop(local);
    let hub = &app.inner().hub;
    hub.set_doc_problem(problem_report(&conn.failed));
    let a = hub.set_link(Link::Connected, all);
    let b = hub.set_pending_changes(changes);
    let c = hub.set_pending_photos(photos, bytes);
    if a || b || c {
        app.remember_synced();
    }
}

/// One message naming the documents left out of this connection, or `None`.
fn problem_report(failed: &BTreeMap<Uuid, String>) -> Option<String> {
    let (id, why) = failed.iter().next()?;
    let others = match failed.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other)".into(),
        n => format!(" (and {n} others)"),
    };
    Some(format!(
        "Inspection {id}{others} could not be synced: {why}. The rest sync as usual; \
         it is tried again on the next connection or Sync now"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_and_resets() {
        let steps = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut b = Backoff::default();
            for step in steps {
                let w = b.next_wait().as_secs_f64();
                assert!(w >= step / 2.0 && w <= step, "{w} s for a {step} s step");
                seen.insert(w.to_bits());
            }
            b.reset();
            assert!(b.next_wait().as_secs_f64() <= 1.0);
        }
        assert!(seen.len() > steps.len(), "the waits vary");
    }
}
