//! One WebSocket connection: the automerge-repo handshake, then `request` and `sync`
//! messages document by document, each checked against the caller's rights before
//! anything is loaded, and pushes when a document changes elsewhere.
//!
//! The caller was authenticated on the upgrade. The `senderId` a client claims in
//! `join` is only its name on the wire: sync states are kept per device
//! (`device-<id>`), and rights come from the user.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use automerge::sync::{self, ChunkList};
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use uuid::Uuid;
use wardcheck_core::sync::{
    DocMessage, MAX_ERROR_CHARS, PROTOCOL_V1, PeerMetadata, WireMessage, doc_id_to_uuid,
};

use super::docs::{self, DocHandle, Failure, Inbox, Waiting};
use super::guard::DocContext;
use crate::access::{self, DocRight};
use crate::auth::Caller;
use crate::storage::{AuditEvent, DocAccess, DocKind, Storage};
use crate::{AppState, limits};

/// The server's peer id on the wire.
pub const SERVER_PEER_ID: &str = "wardcheck-server";

enum Flow {
    Continue,
    Close,
}

/// A document this connection follows.
/// Writers' large messages being inflated, checked and applied at once, server-wide
/// ([`limits::MAX_INFLATING`]).
static INFLATING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(limits::MAX_INFLATING);

/// Each user's turn at heavy work, shared by their connections while any is open.
static TURNS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Semaphore>>>,
> = std::sync::LazyLock::new(Default::default);

fn turn_of(user: &str) -> Arc<tokio::sync::Semaphore> {
    let mut m = TURNS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = m.get(user).and_then(std::sync::Weak::upgrade) {
        return t;
    }
    // Forget the users with no connection open.
    m.retain(|_, w| w.strong_count() > 0);
    let t = Arc::new(tokio::sync::Semaphore::new(1));
    m.insert(user.to_owned(), Arc::downgrade(&t));
    t
}

struct ConnDoc {
    handle: DocHandle,
    /// Taken while an exchange runs; `None` afterwards only if it failed.
    state: Option<sync::State>,
    /// The document id as the client spells it, for our messages about it.
    doc_id: String,
    read_audited: bool,
    /// The peer's changes that wait for changes they depend on (`Documents::exchange`).
    pending: Waiting,
}

struct Conn {
    id: u64,
    app: AppState,
    caller: Caller,
    /// Sync states are stored under this name: the device, whatever peer id it claims.
    peer_key: String,
    /// The peer id the client claimed in `join`; `None` until then.
    client_peer: Option<String>,
    inbox: Arc<Inbox>,
    docs: HashMap<Uuid, ConnDoc>,
    /// When the device was last found still signed in.
    device_checked: Instant,
    /// The user's turn at heavy work: one writer's message at a time per user, across
    /// their connections.
    heavy: Arc<tokio::sync::Semaphore>,
}

/// Resolves once the server is stopping ([`AppState::stopping`]).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    if stopping.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves one upgraded connection until it closes.
pub(crate) async fn serve(mut socket: WebSocket, app: AppState, caller: Caller) {
    let (id, inbox) = app.docs.connection();
    let heavy = turn_of(&caller.user.name);
    let mut conn = Conn {
        id,
        peer_key: format!("device-{}", caller.device.id),
        app,
        caller,
        client_peer: None,
        inbox: inbox.clone(),
        docs: HashMap::new(),
        device_checked: Instant::now(),
        heavy,
    };
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + limits::KEEPALIVE,
        limits::KEEPALIVE,
    );
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    // Pushes to this peer of what others changed: the first at once, the next no sooner
    // than a gap that grows with the document's followers (`Conn::push_gap`), so that
    // on a busy shared inspection a burst of changes costs one push, not one each.
    let mut last_push = tokio::time::Instant::now()
        .checked_sub(limits::MAX_PUSH_GAP)
        .unwrap_or_else(tokio::time::Instant::now);
    let mut push_at: Option<tokio::time::Instant> = None;
    let mut stopping = conn.app.stopping.subscribe();
    loop {
        let flow = tokio::select! {
            // The server is stopping: closed between messages (a change being stored has
            // been committed and answered), with a reason the app shows and retries on.
            () = stopped(&mut stopping) => {
                tracing::debug!(connection = conn.id, "the server is stopping; closing");
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code::AWAY,
                        reason: "the server is restarting: reconnect in a moment".into(),
                    })))
                    .await;
                Flow::Close
            }
            incoming = socket.recv() => {
                heard = Instant::now();
                conn.on_frame(&mut socket, incoming).await
            }
            () = inbox.notify.notified(), if push_at.is_none() => {
                let due = last_push + conn.push_gap();
                if due <= tokio::time::Instant::now() {
                    last_push = tokio::time::Instant::now();
                    conn.push(&mut socket).await
                } else {
                    push_at = Some(due);
                    Flow::Continue
                }
            }
            () = tokio::time::sleep_until(push_at.unwrap_or_else(tokio::time::Instant::now)), if push_at.is_some() => {
                push_at = None;
                last_push = tokio::time::Instant::now();
                conn.push(&mut socket).await
            }
            _ = keepalive.tick() => {
                if let Flow::Close = conn.check_device(&mut socket).await {
                    Flow::Close
                } else if heard.elapsed() > limits::KEEPALIVE * limits::SILENT_KEEPALIVES {
                    tracing::debug!(connection = conn.id, "no word from the peer; closing");
                    Flow::Close
                } else if socket.send(Message::Ping(Default::default())).await.is_err() {
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
        };
        if matches!(flow, Flow::Close) {
            break;
        }
    }
    // Let go of the documents at once; others need not wait for the handshake.
    conn.docs.clear();
    // Finish the closing handshake: read until the peer's close (bounded), so that
    // what the peer sent meanwhile does not turn our close into a TCP reset, which
    // can destroy the error message before the peer reads it.
    let _ = tokio::time::timeout(limits::CLOSE_WAIT, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    tracing::debug!(
        connection = conn.id,
        device = conn.caller.device.id,
        "sync connection closed"
    );
}

/// A document id fit for the audit log: what a client sent may be anything.
fn shown(doc_id: &str) -> String {
    doc_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect()
}

impl Conn {
    async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Flow {
        match incoming {
            None | Some(Ok(Message::Close(_))) => Flow::Close,
            Some(Ok(Message::Binary(bytes))) => self.on_binary(socket, &bytes).await,
            Some(Ok(Message::Text(_))) => {
                self.fail(
                    socket,
                    close_code::UNSUPPORTED,
                    "text frames are not part of the protocol: send each message as one binary CBOR frame".into(),
                )
                .await
            }
            Some(Ok(_)) => Flow::Continue, // ping and pong: answered by the transport
            Some(Err(e)) => {
                let text = e.to_string();
                // tungstenite reports a frame or message over the limits as a
                // "Space limit exceeded" capacity error; axum does not expose its type.
                if text.contains("Space limit exceeded") {
                    self.fail(
                        socket,
                        close_code::SIZE,
                        format!(
                            "the message is larger than the server accepts ({} bytes per message, {} per frame)",
                            limits::MAX_WS_MESSAGE,
                            limits::MAX_WS_FRAME
                        ),
                    )
                    .await
                } else {
                    tracing::debug!(connection = self.id, error = %text, "reading a sync connection failed");
                    Flow::Close
                }
            }
        }
    }

    /// Closes the connection if its device was revoked or its user disabled since the
    /// upgrade (the CLI and sign-out change the database, not this process's state).
    async fn check_device(&mut self, socket: &mut WebSocket) -> Flow {
        let id = self.caller.device.id;
        match self.storage(move |s| s.device_live(id)).await {
            Ok(Ok(true)) => {
                self.device_checked = Instant::now();
                // An open connection is a device in use: its token stays renewed.
                let now = chrono::Utc::now();
                if self.app.activity.seen(id, now) {
                    let _ = self.storage(move |s| s.touch_devices(&[(id, now)])).await;
                }
                Flow::Continue
            }
            Ok(Ok(false)) => {
                self.audit("sync.revoked", &self.target(), "closed").await;
                self.fail(
                    socket,
                    close_code::POLICY,
                    "this device's sign-in was revoked or its user disabled: sign in again".into(),
                )
                .await
            }
            Ok(Err(e)) => self.internal(socket, e.to_string()).await,
            Err(e) => self.internal(socket, e).await,
        }
    }

    async fn on_binary(&mut self, socket: &mut WebSocket, bytes: &[u8]) -> Flow {
        if self.device_checked.elapsed() >= limits::DEVICE_RECHECK
            && let Flow::Close = self.check_device(socket).await
        {
            return Flow::Close;
        }
        let message = match WireMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .fail(
                        socket,
                        close_code::PROTOCOL,
                        format!("malformed message: {e}"),
                    )
                    .await;
            }
        };
        match (self.client_peer.is_some(), message) {
            (
                _,
                WireMessage::Join {
                    sender_id,
                    supported_protocol_versions,
                    ..
                },
            ) => {
                self.on_join(socket, sender_id, supported_protocol_versions)
                    .await
            }
            (false, other) => {
                self.fail(
                    socket,
                    close_code::PROTOCOL,
                    format!("send join first (got {})", other.type_name()),
                )
                .await
            }
            (true, WireMessage::Request(d) | WireMessage::Sync(d)) => self.on_doc(socket, d).await,
            (true, WireMessage::Leave { .. }) => {
                let _ = socket.send(Message::Close(None)).await;
                Flow::Close
            }
            (true, WireMessage::Error { message, .. }) => {
                tracing::info!(connection = self.id, device = self.caller.device.id, %message, "a sync client reported an error");
                Flow::Close
            }
            (true, WireMessage::DocUnavailable { .. } | WireMessage::Ignored { .. }) => {
                Flow::Continue
            }
            (true, WireMessage::Peer { .. }) => {
                self.fail(
                    socket,
                    close_code::PROTOCOL,
                    "peer is the server's answer to join; a client sends join".into(),
                )
                .await
            }
        }
    }

    async fn on_join(
        &mut self,
        socket: &mut WebSocket,
        sender_id: String,
        versions: Option<Vec<String>>,
    ) -> Flow {
        // automerge-repo's server takes a join without versions as version 1.
        if versions.is_some_and(|v| !v.iter().any(|v| v == PROTOCOL_V1)) {
            return self
                .fail(
                    socket,
                    close_code::PROTOCOL,
                    format!(
                        "unsupported protocol version: this server speaks version {PROTOCOL_V1}"
                    ),
                )
                .await;
        }
        let reply = WireMessage::Peer {
            sender_id: SERVER_PEER_ID.into(),
            target_id: sender_id.clone(),
            selected_protocol_version: PROTOCOL_V1.into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: false,
            }),
        };
        let claimed = shown(&sender_id);
        self.client_peer = Some(sender_id);
        let flow = self.send(socket, &reply).await;
        // The claimed peer id is recorded; the identity is the device.
        self.audit("sync_join", &format!("peer:{claimed}"), "ok")
            .await;
        flow
    }

    async fn on_doc(&mut self, socket: &mut WebSocket, d: DocMessage) -> Flow {
        let Ok(id) = doc_id_to_uuid(&d.document_id) else {
            let flow = self.unavailable(socket, &d.document_id).await;
            self.audit(
                "denied",
                &format!("doc:{}", shown(&d.document_id)),
                "bad_id",
            )
            .await;
            return flow;
        };
        // Rights first, from the access columns alone: nothing is loaded for a
        // caller who may not read, and the answer is the same as for no document.
        let access = match self.access(id).await {
            Ok(a) => a,
            Err(e) => return self.internal(socket, e).await,
        };
        let Some((right, access)) = access.filter(|(r, _)| r.can_read()) else {
            self.docs.remove(&id);
            let flow = self.unavailable(socket, &d.document_id).await;
            self.audit("denied", &id.to_string(), "denied").await;
            return flow;
        };
        let data = d.data;
        let decoded = tokio::task::spawn_blocking(move || docs::decode_message(&data)).await;
        let mut message = match decoded {
            Ok(Ok(m)) => m,
            Ok(Err(f)) => return self.failed(socket, id, &d.document_id, f).await,
            Err(e) => {
                let f = Failure::Panicked(e.to_string());
                return self.failed(socket, id, &d.document_id, f).await;
            }
        };
        // A reader's changes are dropped unread, never inflated. A writer's are walked
        // under the message's budget before anything else sees them, and the work of
        // inflating and applying them is rationed: one message at a time per user, and
        // at most `MAX_INFLATING` large ones at once server-wide (small ones, as honest
        // edits are, let go of the server-wide turn once their size is known).
        let waiting = self.docs.get(&id).map_or(0, |cd| cd.pending.inflated);
        let mut _turns = None;
        if right.can_write() && (!message.changes.is_empty() || waiting > 0) {
            let mine = self
                .heavy
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let all = INFLATING
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let joined = tokio::task::spawn_blocking(move || {
                let r = docs::scan_message(&message);
                (message, r)
            })
            .await;
            let (m, scanned) = match joined {
                Ok(x) => x,
                Err(e) => {
                    let f = Failure::Panicked(e.to_string());
                    return self.failed(socket, id, &d.document_id, f).await;
                }
            };
            message = m;
            let inflated = match scanned {
                Ok(n) => n,
                Err(f) => return self.failed(socket, id, &d.document_id, f).await,
            };
            _turns = Some(if inflated + waiting <= limits::SMALL_MESSAGE {
                drop(all);
                (mine, None)
            } else {
                (mine, Some(all))
            });
        }
        if !self.docs.contains_key(&id) {
            if self.docs.len() >= limits::MAX_DOCS_PER_CONNECTION {
                return self
                    .fail(
                        socket,
                        close_code::POLICY,
                        format!(
                            "one connection may follow at most {} documents",
                            limits::MAX_DOCS_PER_CONNECTION
                        ),
                    )
                    .await;
            }
            let peer = self.peer_key.clone();
            let docs = self.app.docs.clone();
            let stored = tokio::task::spawn_blocking(move || docs.sync_state(id, &peer))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            let stored = stored.unwrap_or_else(|e| {
                tracing::warn!(doc = %id, error = %e, "reading a sync state failed; starting afresh");
                None
            });
            let handle = self.app.docs.open(id, self.id, self.inbox.clone());
            self.docs.insert(
                id,
                ConnDoc {
                    handle,
                    state: Some(docs::decode_state(stored)),
                    doc_id: d.document_id.clone(),
                    read_audited: false,
                    pending: Waiting::default(),
                },
            );
        }
        // A reader's changes never reach storage: strip them, and tell Automerge we
        // are read-only toward this peer so it neither asks for nor waits on them.
        let refused_write = !right.can_write() && !message.changes.is_empty();
        if refused_write {
            message.changes = ChunkList::empty();
        }
        // What the changes are checked against: the record (rights, team, state) and, for
        // the documents that name checklist items, the pinned checklist.
        let waits = self
            .docs
            .get(&id)
            .is_some_and(|cd| !cd.pending.parts.is_empty());
        let checklist =
            if (message.changes.is_empty() && !waits) || access.kind == DocKind::TrustResponse {
                None
            } else {
                let rec = access.inspection.clone();
                let storage = self.app.storage.clone();
                match tokio::task::spawn_blocking(move || {
                    crate::inspections::pinned_checklist(&*storage, &rec)
                })
                .await
                {
                    Ok(Ok(c)) => Some(c),
                    Ok(Err(e)) => return self.internal(socket, e.to_string()).await,
                    Err(e) => return self.internal(socket, e.to_string()).await,
                }
            };
        let ctx = DocContext {
            kind: access.kind,
            record: access.inspection.clone(),
            checklist,
            sender: self.caller.user.name.clone(),
        };
        // What waited for its dependencies elsewhere on this connection, which this
        // document's may not push past the limit.
        let waiting_elsewhere: usize = self
            .docs
            .iter()
            .filter(|(k, _)| **k != id)
            .map(|(_, cd)| cd.pending.inflated)
            .sum();
        let cd = self.docs.get_mut(&id).expect("inserted above");
        let mut state = cd.state.take().unwrap_or_default();
        state.set_read_only(!right.can_write());
        let pending = std::mem::take(&mut cd.pending);
        // An inspection's state column and photo references are brought in step
        // before the reply, so that once a peer hears its change is stored, a photo it
        // attached is readable by those who may read the inspection.
        let result = self
            .app
            .docs
            .exchange(
                &cd.handle,
                self.peer_key.clone(),
                state,
                message,
                ctx,
                pending,
            )
            .await;
        let ex = match result {
            Ok(ex) => ex,
            Err(f) => return self.failed(socket, id, &d.document_id, f).await,
        };
        cd.state = Some(ex.state);
        let waiting = waiting_elsewhere + ex.pending.inflated;
        let over = ex.pending.over.clone().or_else(|| {
            (waiting > limits::MAX_PENDING_INFLATED).then(|| {
                format!(
                    "{waiting} bytes (inflated) of changes would wait, more than the {} one connection may leave waiting",
                    limits::MAX_PENDING_INFLATED
                )
            })
        });
        cd.pending = ex.pending;
        if ex.stored.is_some() {
            self.app.docs.notify_others(&cd.handle);
        }
        if let Some(why) = over {
            // What applied is stored (and others have heard of it); what waits is not
            // kept. The reply still goes first: it names what the server lacks, which an
            // honest peer sends first when it starts afresh.
            if let Some(reply) = ex.reply
                && let Flow::Close = self.send_sync(socket, &d.document_id, reply).await
            {
                return Flow::Close;
            }
            return self
                .failed(socket, id, &d.document_id, Failure::Waiting(why))
                .await;
        }
        let first_read = !std::mem::replace(&mut cd.read_audited, true);
        let mut flow = Flow::Continue;
        if let Some(reply) = ex.reply {
            flow = self.send_sync(socket, &d.document_id, reply).await;
        }
        // Audited after the reply, so the log's fsync does not delay the
        // acknowledgement; the changes themselves are already committed.
        if first_read {
            self.audit("doc_read", &id.to_string(), "ok").await;
        }
        if ex.stored.is_some() {
            self.audit("doc_write", &id.to_string(), "ok").await;
        }
        if refused_write {
            self.audit("doc_write", &id.to_string(), "read_only").await;
        }
        flow
    }

    /// How long after one push the next may go: [`limits::PUSH_GAP_PER_FOLLOWER`] for
    /// each other follower of the busiest document this peer follows, at most
    /// [`limits::MAX_PUSH_GAP`]. Two people on one inspection hear each other at once.
    fn push_gap(&self) -> std::time::Duration {
        let others = self
            .docs
            .values()
            .map(|d| d.handle.followers().saturating_sub(1))
            .max()
            .unwrap_or(0);
        (limits::PUSH_GAP_PER_FOLLOWER * others.saturating_sub(1) as u32).min(limits::MAX_PUSH_GAP)
    }

    /// Sends what each followed document that changed elsewhere has for this peer.
    async fn push(&mut self, socket: &mut WebSocket) -> Flow {
        for id in self.inbox.take() {
            if !self.docs.contains_key(&id) {
                continue;
            }
            // Rights may have been withdrawn since this peer last asked.
            match self.access(id).await {
                Ok(Some((right, _))) if right.can_read() => {}
                Ok(_) => {
                    let cd = self.docs.remove(&id).expect("checked above");
                    if let Flow::Close = self.unavailable(socket, &cd.doc_id).await {
                        return Flow::Close;
                    }
                    continue;
                }
                Err(e) => return self.internal(socket, e).await,
            }
            let cd = self.docs.get_mut(&id).expect("checked above");
            let state = cd.state.take().unwrap_or_default();
            match self.app.docs.generate(&cd.handle, state).await {
                Ok((state, reply)) => {
                    cd.state = Some(state);
                    let doc_id = cd.doc_id.clone();
                    if let Some(reply) = reply
                        && let Flow::Close = self.send_sync(socket, &doc_id, reply).await
                    {
                        return Flow::Close;
                    }
                }
                Err(f) => {
                    let doc_id = cd.doc_id.clone();
                    return self.failed(socket, id, &doc_id, f).await;
                }
            }
        }
        Flow::Continue
    }

    /// The caller's right on a document and its access facts, if it exists.
    async fn access(&self, id: Uuid) -> Result<Option<(DocRight, DocAccess)>, String> {
        let found = self
            .storage(move |s| s.doc_access(id))
            .await?
            .map_err(|e| e.to_string())?;
        Ok(found.map(|a| (access::doc_right(&self.caller.user, &a), a)))
    }

    async fn storage<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> R + Send + 'static,
    ) -> Result<R, String> {
        let s = self.app.storage.clone();
        tokio::task::spawn_blocking(move || f(&*s))
            .await
            .map_err(|e| e.to_string())
    }

    async fn audit(&self, action: &str, target: &str, outcome: &str) {
        self.app
            .audit(AuditEvent {
                at: chrono::Utc::now(),
                actor: self.caller.user.name.clone(),
                device: Some(self.caller.device.id),
                action: action.into(),
                target: target.into(),
                from: self.caller.from.clone(),
                outcome: outcome.into(),
                detail: None,
            })
            .await;
    }

    fn target(&self) -> String {
        self.client_peer.clone().unwrap_or_default()
    }

    async fn send(&self, socket: &mut WebSocket, m: &WireMessage) -> Flow {
        match socket.send(Message::Binary(m.encode().into())).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close,
        }
    }

    async fn send_sync(&self, socket: &mut WebSocket, doc_id: &str, m: sync::Message) -> Flow {
        let msg = WireMessage::Sync(DocMessage {
            sender_id: SERVER_PEER_ID.into(),
            target_id: self.target(),
            document_id: doc_id.into(),
            data: m.encode(),
        });
        self.send(socket, &msg).await
    }

    /// The one answer for a document that does not exist and one the caller may
    /// not read.
    async fn unavailable(&self, socket: &mut WebSocket, doc_id: &str) -> Flow {
        let msg = WireMessage::DocUnavailable {
            sender_id: SERVER_PEER_ID.into(),
            target_id: self.target(),
            document_id: doc_id.chars().take(64).collect(),
        };
        self.send(socket, &msg).await
    }

    /// An exchange failed: the document has left memory unsaved; this peer's sync
    /// state starts afresh; this connection closes; others carry on.
    async fn failed(&mut self, socket: &mut WebSocket, id: Uuid, doc_id: &str, f: Failure) -> Flow {
        tracing::warn!(doc = %id, device = self.caller.device.id, failure = ?f, "a sync exchange failed");
        self.docs.remove(&id);
        let peer = self.peer_key.clone();
        let docs = self.app.docs.clone();
        match tokio::task::spawn_blocking(move || docs.reset_sync_state(id, &peer)).await {
            Ok(Ok(())) => {}
            other => tracing::error!(doc = %id, result = ?other, "resetting a sync state failed"),
        }
        let code = match f {
            Failure::TooLarge { .. } | Failure::Limit(_) | Failure::Waiting(_) => close_code::SIZE,
            Failure::Refused(_) | Failure::Panicked(_) | Failure::Policy(_) => close_code::POLICY,
            Failure::Unstorable(_) => close_code::POLICY,
            Failure::Load(_) | Failure::Storage(_) | Failure::Stale(_) => close_code::ERROR,
        };
        let flow = self
            .fail_about(
                socket,
                code,
                f.client_message(doc_id),
                Some(f.code()),
                Some(doc_id),
            )
            .await;
        if f.is_refusal() {
            // Who, from which device, with which actor, what, and why: never content.
            let detail = match &f {
                Failure::Policy(r) => r.detail(),
                other => format!("{other:?}")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect(),
            };
            self.app
                .audit(AuditEvent {
                    at: chrono::Utc::now(),
                    actor: self.caller.user.name.clone(),
                    device: Some(self.caller.device.id),
                    action: "change_refused".into(),
                    target: id.to_string(),
                    from: self.caller.from.clone(),
                    outcome: f.code().into(),
                    detail: Some(detail),
                })
                .await;
        } else {
            self.audit("sync", &id.to_string(), f.code()).await;
        }
        flow
    }

    async fn internal(&self, socket: &mut WebSocket, cause: String) -> Flow {
        tracing::error!(%cause, "a sync connection hit an internal error");
        self.fail(
            socket,
            close_code::ERROR,
            "the server could not complete the request; try again later".into(),
        )
        .await
    }

    /// Sends an `error` message, then closes the connection.
    async fn fail(&self, socket: &mut WebSocket, code: u16, text: String) -> Flow {
        self.fail_about(socket, code, text, None, None).await
    }

    /// [`Conn::fail`], naming the error's stable code and the document it is about.
    async fn fail_about(
        &self,
        socket: &mut WebSocket,
        code: u16,
        text: String,
        error_code: Option<&str>,
        doc_id: Option<&str>,
    ) -> Flow {
        tracing::info!(connection = self.id, device = self.caller.device.id, %text, "closing a sync connection");
        let msg = WireMessage::Error {
            sender_id: Some(SERVER_PEER_ID.into()),
            target_id: self.client_peer.clone(),
            message: text.chars().take(MAX_ERROR_CHARS).collect(),
            code: error_code.map(str::to_owned),
            document_id: doc_id.map(|d| d.chars().take(64).collect()),
        };
        let _ = self.send(socket, &msg).await;
        let reason = match code {
            close_code::SIZE => "message or document too large",
            close_code::UNSUPPORTED => "binary frames only",
            close_code::ERROR => "server error",
            close_code::POLICY => "signed out",
            _ => "protocol error",
        };
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
        Flow::Close
    }
}
