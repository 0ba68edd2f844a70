//! A lean automerge-repo WebSocket client, enough to drive a sync server.
//!
//! The messages are core's [`wardcheck_core::sync::WireMessage`]: `join`/`peer` to
//! shake hands, then `request` (from a peer that has nothing of the document yet)
//! and `sync` carrying Automerge sync messages, `doc-unavailable` when the server has
//! no such document or will not share it, `error` before a close.
//!
//! The same code drives our server (with a device token) and the JavaScript one
//! (no authentication), so the two are measured alike.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wardcheck_core::inspection::Inspection;
use wardcheck_core::sync::{DocMessage, PROTOCOL_V1, PeerMetadata, WireMessage};

pub use wardcheck_core::sync::uuid_to_doc_id as doc_id;

/// One WebSocket connection to a sync server, after the `join`/`peer` handshake.
#[derive(Debug)]
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    peer_id: String,
    server_id: String,
}

/// A message from the server, as far as a client needs to tell them apart.
#[derive(Debug)]
pub enum Incoming {
    Sync { doc_id: String, data: Vec<u8> },
    Unavailable { doc_id: String },
    Other,
}

impl Connection {
    /// Connects to `url` (`ws://...`), presenting `token` as a bearer token if given,
    /// and completes the handshake.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Connection> {
        let mut req = url.into_client_request().context("the sync URL")?;
        if let Some(t) = token {
            req.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}"))?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut conn = Connection {
            ws,
            peer_id: format!("bench-{}", uuid::Uuid::new_v4()),
            server_id: String::new(),
        };
        let join = WireMessage::Join {
            sender_id: conn.peer_id.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_V1.into()]),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
        };
        conn.send_wire(&join).await?;
        loop {
            match conn.next_wire().await? {
                WireMessage::Peer { sender_id, .. } => {
                    conn.server_id = sender_id;
                    return Ok(conn);
                }
                WireMessage::Error { message, .. } => {
                    bail!("the server refused the join: {message}")
                }
                _ => {}
            }
        }
    }

    /// Sends a `request` (`first` is true: we hold nothing of the document yet) or a
    /// `sync` message for one document.
    pub async fn send(&mut self, first: bool, doc_id: &str, data: Vec<u8>) -> Result<()> {
        let d = DocMessage {
            sender_id: self.peer_id.clone(),
            target_id: self.server_id.clone(),
            document_id: doc_id.to_owned(),
            data,
        };
        let m = if first {
            WireMessage::Request(d)
        } else {
            WireMessage::Sync(d)
        };
        self.send_wire(&m).await
    }

    /// The next message from the server.
    pub async fn recv(&mut self) -> Result<Incoming> {
        Ok(match self.next_wire().await? {
            WireMessage::Sync(d) | WireMessage::Request(d) => Incoming::Sync {
                doc_id: d.document_id,
                data: d.data,
            },
            WireMessage::DocUnavailable { document_id, .. } => Incoming::Unavailable {
                doc_id: document_id,
            },
            WireMessage::Error { message, .. } => bail!("the server sent an error: {message}"),
            _ => Incoming::Other,
        })
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    async fn send_wire(&mut self, m: &WireMessage) -> Result<()> {
        self.ws.send(Frame::Binary(m.encode().into())).await?;
        Ok(())
    }

    async fn next_wire(&mut self) -> Result<WireMessage> {
        loop {
            let frame = self
                .ws
                .next()
                .await
                .ok_or_else(|| anyhow!("the server closed the connection"))??;
            match frame {
                Frame::Binary(b) => return Ok(WireMessage::decode(&b)?),
                Frame::Close(c) => bail!("the server closed the connection: {c:?}"),
                _ => {}
            }
        }
    }
}

/// A document a client syncs: a bare Automerge document (before the first sync, when
/// it is still empty) or an inspection.
pub trait Doc {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message>;
    fn receive(&mut self, state: &mut sync::State, msg: sync::Message) -> Result<()>;
    fn heads(&mut self) -> Vec<ChangeHash>;
    fn has(&mut self, hash: &ChangeHash) -> bool;
}

impl Doc for AutoCommit {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.sync().generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, msg: sync::Message) -> Result<()> {
        Ok(self.sync().receive_sync_message(state, msg)?)
    }
    fn heads(&mut self) -> Vec<ChangeHash> {
        self.get_heads()
    }
    fn has(&mut self, hash: &ChangeHash) -> bool {
        self.get_change_by_hash(hash).is_some()
    }
}

impl Doc for Inspection {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, msg: sync::Message) -> Result<()> {
        Ok(self.receive_sync_message(state, msg)?)
    }
    fn heads(&mut self) -> Vec<ChangeHash> {
        Inspection::heads(self)
    }
    fn has(&mut self, hash: &ChangeHash) -> bool {
        self.has_change(hash)
    }
}

/// A client's copy of one document and its sync state with the server.
#[derive(Debug)]
pub struct Replica<D> {
    pub doc_id: String,
    pub doc: D,
    pub state: sync::State,
}

impl<D: Doc> Replica<D> {
    pub fn new(doc_id: String, doc: D) -> Self {
        Replica {
            doc_id,
            doc,
            state: sync::State::new(),
        }
    }

    /// The same replica around another form of its document (same sync state).
    pub fn map<E>(self, f: impl FnOnce(D) -> Result<E>) -> Result<Replica<E>> {
        Ok(Replica {
            doc_id: self.doc_id,
            doc: f(self.doc)?,
            state: self.state,
        })
    }

    /// Sends our next sync message, if Automerge has one: `request` while we hold
    /// nothing of the document, `sync` after.
    pub async fn push(&mut self, conn: &mut Connection) -> Result<()> {
        if let Some(msg) = self.doc.generate(&mut self.state) {
            let first = self.doc.heads().is_empty();
            conn.send(first, &self.doc_id, msg.encode()).await?;
        }
        Ok(())
    }

    /// Reads and answers the server's messages until `done` holds, or `limit` passes.
    /// Messages about other documents are skipped.
    pub async fn sync_until(
        &mut self,
        conn: &mut Connection,
        limit: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<()> {
        let run = async {
            while !done(self) {
                match conn.recv().await? {
                    Incoming::Sync { doc_id, data } if doc_id == self.doc_id => {
                        let msg = sync::Message::decode(&data)
                            .map_err(|e| anyhow!("a bad sync message: {e}"))?;
                        self.doc.receive(&mut self.state, msg)?;
                        self.push(conn).await?;
                    }
                    Incoming::Unavailable { doc_id } if doc_id == self.doc_id => {
                        bail!("the server says document {doc_id} is unavailable")
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| anyhow!("no answer within {limit:?}"))?
    }

    /// Whether we hold everything the server last said it has (and it said something).
    pub fn has_theirs(&mut self) -> bool {
        match self.state.their_heads.clone() {
            Some(h) if !h.is_empty() => h.iter().all(|h| self.doc.has(h)),
            _ => false,
        }
    }

    /// Whether the server has said it holds our every head.
    pub fn server_has_ours(&mut self) -> bool {
        let ours = self.doc.heads();
        match &self.state.their_heads {
            Some(theirs) => ours.iter().all(|h| theirs.contains(h)),
            None => false,
        }
    }
}
