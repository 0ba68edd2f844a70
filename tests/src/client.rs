//! A small sync client: sign in, open the WebSocket, `join`, then sync documents
//! until the server holds everything we hold and we hold everything it has.
//!
//! It speaks the automerge-repo protocol (`wardcheck_core::sync`) and is the model for
//! the app's sync worker: one [`sync::State`] per document, `request` for a document
//! we have nothing of and `sync` otherwise, and a document counts as synced when the
//! heads the server last told us equal ours. The server sends every message only
//! after committing what it acknowledges, so at that point our changes are durable
//! there.

use std::collections::HashMap;
use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;
use wardcheck_core::inspection::Inspection;
use wardcheck_core::sync::{DocMessage, PROTOCOL_V1, WireMessage, uuid_to_doc_id};

/// How long a client waits for any one message from the server.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong, as a test would want to tell cases apart.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused the upgrade with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the server sent an error: {0}")]
    Server(String),
    #[error("the server has no document {0}, or will not share it")]
    Unavailable(String),
    #[error("the server closed the connection ({0})")]
    Closed(String),
    #[error("no answer from the server in {0:?}")]
    Timeout(Duration),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("http: {0}")]
    Http(String),
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A signed-in device.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub device_id: i64,
    /// An Automerge actor bound to the user at sign-in: what this device writes with.
    pub actor: ActorId,
    /// The server's address (`http://...`), for binding more actors.
    pub base: String,
}

impl Login {
    /// Binds another actor to this device's user (`POST /api/v1/actors`) and returns it:
    /// for a second replica of the same user, which must not share an actor.
    pub async fn new_actor(&self) -> ActorId {
        let actor = ActorId::random();
        bind_actor(&self.base, &self.token, &actor)
            .await
            .unwrap_or_else(|e| panic!("binding an actor: {e}"));
        actor
    }
}

/// `POST /api/v1/actors`.
pub async fn bind_actor(base: &str, token: &str, actor: &ActorId) -> Result<()> {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/actors"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "actor": actor.to_hex_string() }))
        .send()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    if !res.status().is_success() {
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        return Err(ClientError::Http(format!(
            "binding an actor: {status} {body}"
        )));
    }
    Ok(())
}

/// `POST /api/v1/login`, binding a fresh actor; `base` is e.g. `http://127.0.0.1:8080`.
pub async fn login(base: &str, user: &str, password: &str, device: &str) -> Result<Login> {
    login_with(base, user, password, device, ActorId::random()).await
}

/// `POST /api/v1/login`, binding `actor` (as a device that signs in again does, with
/// the actor its store writes with).
pub async fn login_with(
    base: &str,
    user: &str,
    password: &str,
    device: &str,
    actor: ActorId,
) -> Result<Login> {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(
            &serde_json::json!({ "user": user, "password": password, "device": device,
            "actors": [actor.to_hex_string()] }),
        )
        .send()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let status = res.status();
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    if !status.is_success() {
        return Err(ClientError::Http(format!(
            "login as {user}: {status} {body}"
        )));
    }
    Ok(Login {
        token: body["token"].as_str().unwrap_or_default().to_owned(),
        device_id: body["device_id"].as_i64().unwrap_or_default(),
        actor,
        base: base.trim_end_matches('/').to_owned(),
    })
}

/// A document replica the client can sync.
pub trait Replica {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message>;
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String>;
    fn heads(&mut self) -> Vec<ChangeHash>;
    fn has_change(&mut self, hash: &ChangeHash) -> bool;
}

impl Replica for Inspection {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.receive_sync_message(state, m)
            .map_err(|e| e.to_string())
    }
    fn heads(&mut self) -> Vec<ChangeHash> {
        Inspection::heads(self)
    }
    fn has_change(&mut self, hash: &ChangeHash) -> bool {
        Inspection::has_change(self, hash)
    }
}

impl Replica for AutoCommit {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.sync().generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.sync()
            .receive_sync_message(state, m)
            .map_err(|e| e.to_string())
    }
    fn heads(&mut self) -> Vec<ChangeHash> {
        self.get_heads()
    }
    fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.get_change_by_hash(hash).is_some()
    }
}

/// One message from the server, or the end of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Message(WireMessage),
    /// A close frame (code and reason), or the stream ending without one.
    Closed(Option<(u16, String)>),
}

/// One connection to the sync server.
#[derive(Debug)]
pub struct SyncClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The peer id we claim in `join`.
    pub peer_id: String,
    /// The server's peer id, from its `peer` answer.
    pub server_id: String,
    states: HashMap<String, sync::State>,
}

impl SyncClient {
    /// Connects to `url` (`ws://.../api/v1/sync`), with `token` as a bearer token
    /// when given, and completes the join/peer handshake.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<SyncClient> {
        let mut c = SyncClient::open(url, token).await?;
        c.join().await?;
        Ok(c)
    }

    /// Opens the WebSocket without the handshake.
    pub async fn open(url: &str, token: Option<&str>) -> Result<SyncClient> {
        let mut req = url
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if let Some(t) = token {
            let v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            req.headers_mut().insert("authorization", v);
        }
        let ws = match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(res)) => {
                return Err(ClientError::Refused {
                    status: res.status().as_u16(),
                    body: String::from_utf8_lossy(res.body().as_deref().unwrap_or_default())
                        .into_owned(),
                });
            }
            Err(e) => return Err(ClientError::Transport(e.to_string())),
        };
        Ok(SyncClient {
            ws,
            peer_id: format!("wardcheck-test-{}", Uuid::new_v4()),
            server_id: String::new(),
            states: HashMap::new(),
        })
    }

    /// Sends `join` and waits for `peer`.
    pub async fn join(&mut self) -> Result<()> {
        let join = WireMessage::Join {
            sender_id: self.peer_id.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_V1.into()]),
            peer_metadata: None,
        };
        self.send(&join).await?;
        match self.recv().await? {
            Incoming::Message(WireMessage::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                ..
            }) => {
                if target_id != self.peer_id || selected_protocol_version != PROTOCOL_V1 {
                    return Err(ClientError::Protocol(format!(
                        "peer answer for {target_id:?} with version {selected_protocol_version:?}"
                    )));
                }
                self.server_id = sender_id;
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Syncs one document to completion.
    pub async fn sync(&mut self, id: Uuid, doc: &mut dyn Replica) -> Result<()> {
        self.sync_all(&mut [(id, doc)]).await
    }

    /// Fetches a document as one that has nothing of it (forgetting what this
    /// connection knew of it).
    pub async fn fetch(&mut self, id: Uuid) -> Result<AutoCommit> {
        self.states.remove(&uuid_to_doc_id(id));
        let mut doc = AutoCommit::new();
        self.sync(id, &mut doc).await?;
        Ok(doc)
    }

    /// Syncs documents until, for each, the server's last heads equal ours (or, when
    /// the server only lets us read, until we hold all of its heads).
    ///
    /// "Last" is what the server said on this connection: changes others make later
    /// arrive as pushes ([`SyncClient::recv`] and [`SyncClient::apply`]), and a new
    /// connection always starts with a full exchange.
    pub async fn sync_all(&mut self, docs: &mut [(Uuid, &mut dyn Replica)]) -> Result<()> {
        let ids: Vec<String> = docs.iter().map(|(id, _)| uuid_to_doc_id(*id)).collect();
        loop {
            let mut done = true;
            for (i, (_, doc)) in docs.iter_mut().enumerate() {
                let state = self.states.entry(ids[i].clone()).or_default();
                if let Some(m) = doc.generate(state) {
                    let d = DocMessage {
                        sender_id: self.peer_id.clone(),
                        target_id: self.server_id.clone(),
                        document_id: ids[i].clone(),
                        data: m.encode(),
                    };
                    // automerge-repo asks with `request` while it has nothing.
                    let msg = if doc.heads().is_empty() {
                        WireMessage::Request(d)
                    } else {
                        WireMessage::Sync(d)
                    };
                    send(&mut self.ws, &msg).await?;
                }
                let state = &self.states[&ids[i]];
                done &= is_synced(state, &mut **doc);
            }
            if done {
                return Ok(());
            }
            match self.recv().await? {
                Incoming::Message(WireMessage::Sync(d)) => {
                    // A push for a document not in this call waits for its own sync.
                    let Some(i) = ids.iter().position(|id| *id == d.document_id) else {
                        continue;
                    };
                    let m = sync::Message::decode(&d.data)
                        .map_err(|e| ClientError::Protocol(format!("bad sync data: {e}")))?;
                    let state = self.states.entry(d.document_id).or_default();
                    docs[i].1.receive(state, m).map_err(ClientError::Protocol)?;
                }
                Incoming::Message(WireMessage::DocUnavailable { document_id, .. })
                    if ids.contains(&document_id) =>
                {
                    return Err(ClientError::Unavailable(document_id));
                }
                Incoming::Message(WireMessage::DocUnavailable { .. }) => {}
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Applies a sync message the server pushed (from [`SyncClient::recv`]).
    pub fn apply(&mut self, doc: &mut dyn Replica, d: &DocMessage) -> Result<()> {
        let m = sync::Message::decode(&d.data)
            .map_err(|e| ClientError::Protocol(format!("bad sync data: {e}")))?;
        let state = self.states.entry(d.document_id.clone()).or_default();
        doc.receive(state, m).map_err(ClientError::Protocol)
    }

    /// The sync state for a document, if we have synced it on this connection.
    pub fn state(&self, id: Uuid) -> Option<&sync::State> {
        self.states.get(&uuid_to_doc_id(id))
    }

    pub async fn send(&mut self, m: &WireMessage) -> Result<()> {
        send(&mut self.ws, m).await
    }

    /// Sends any frame, valid or not.
    pub async fn send_frame(&mut self, frame: Frame) -> Result<()> {
        self.ws
            .send(frame)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// The next protocol message, or the end of the connection.
    pub async fn recv(&mut self) -> Result<Incoming> {
        loop {
            let next = tokio::time::timeout(ANSWER_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout(ANSWER_TIMEOUT))?;
            return match next {
                None => Ok(Incoming::Closed(None)),
                Some(Ok(Frame::Binary(b))) => WireMessage::decode(&b)
                    .map(Incoming::Message)
                    .map_err(|e| ClientError::Protocol(e.to_string())),
                Some(Ok(Frame::Close(f))) => Ok(Incoming::Closed(
                    f.map(|f| (u16::from(f.code), f.reason.to_string())),
                )),
                Some(Ok(Frame::Text(t))) => {
                    Err(ClientError::Protocol(format!("a text frame: {t}")))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(ClientError::Transport(e.to_string())),
            };
        }
    }

    /// Says `leave` and closes.
    pub async fn close(mut self) {
        let leave = WireMessage::Leave {
            sender_id: self.peer_id.clone(),
        };
        let _ = self.send(&leave).await;
        let _ = self
            .ws
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "done".into(),
            }))
            .await;
    }
}

async fn send(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>, m: &WireMessage) -> Result<()> {
    ws.send(Frame::binary(m.encode()))
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))
}

fn unexpected(got: Incoming) -> ClientError {
    match got {
        Incoming::Message(WireMessage::Error { message, .. }) => ClientError::Server(message),
        Incoming::Closed(c) => ClientError::Closed(format!("{c:?}")),
        Incoming::Message(m) => ClientError::Protocol(format!("unexpected {}", m.type_name())),
    }
}

/// Whether the server's last word says it holds all we hold, and we all it holds.
fn is_synced(state: &sync::State, doc: &mut dyn Replica) -> bool {
    let Some(theirs) = &state.their_heads else {
        return false;
    };
    let mut theirs = theirs.clone();
    let mut ours = doc.heads();
    theirs.sort();
    ours.sort();
    // A server that only lets us read will never take our changes.
    theirs == ours || (state.is_peer_read_only() && theirs.iter().all(|h| doc.has_change(h)))
}

/// Signs `user` (with the test password) in on a new device of `server`.
pub async fn sign_in(server: &crate::server::Server, user: &str) -> Login {
    let device = format!("{user}-{}", Uuid::new_v4().simple());
    login(
        &server.url(""),
        user,
        crate::server::PASSWORD,
        &device[..device.len().min(40)],
    )
    .await
    .unwrap_or_else(|e| panic!("signing {user} in: {e}"))
}
