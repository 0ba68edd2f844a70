//! The automerge-repo wire protocol, with no transport.
//!
//! Wardcheck syncs documents the way automerge-repo does, so that any automerge-repo
//! peer (JavaScript `@automerge/automerge-repo` 2.x with its WebSocket adapter, or
//! Rust samod) can talk to our server. A connection carries binary WebSocket frames,
//! each one CBOR map with a `type` field:
//!
//! ```text
//! client                                         server
//!   join {senderId, supportedProtocolVersions:["1"], peerMetadata?}  ->
//!   <- peer {senderId, targetId, selectedProtocolVersion:"1", peerMetadata?}
//!   request|sync {senderId, targetId, documentId, data}  ->
//!   <- sync {senderId, targetId, documentId, data}
//!   <- doc-unavailable {senderId, targetId, documentId}
//!   <- error {senderId, targetId, message}          (then the sender closes)
//!   leave {senderId}  ->
//! ```
//!
//! - `data` is an Automerge sync message ([`automerge::sync::Message::encode`]) as a
//!   CBOR byte string. `request` is a `sync` from a peer that has nothing of the
//!   document yet.
//! - `documentId` is the base58check encoding (Bitcoin style: a 4-byte double SHA-256
//!   checksum) of the document's 16 UUID bytes, as automerge-repo's
//!   `binaryToDocumentId` makes it. [`uuid_to_doc_id`] and [`doc_id_to_uuid`] convert.
//! - `ephemeral`, `remote-subscription-change` and `remote-heads-changed` are decoded
//!   as [`WireMessage::Ignored`]: a peer may send them; we have no use for them.
//!
//! Field names are those of automerge-repo's `network/messages.ts` and
//! `automerge-repo-network-websocket/src/messages.ts`, and samod's
//! `wire_protocol.rs`. [`WireMessage::decode`] is total: any bytes give a message or
//! a [`WireError`], never a panic, and input over [`MAX_MESSAGE_BYTES`] is refused
//! before it is parsed.

use ciborium::Value;
use uuid::Uuid;

/// The only protocol version automerge-repo has defined.
pub const PROTOCOL_V1: &str = "1";

/// Largest message decoded. A first sync of a large inspection carries the whole
/// document, and inspections are well under 8 MiB; this matches the server's
/// WebSocket message limit.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Longest peer id, storage id or document id accepted. automerge-repo peer ids are a
/// prefix and a UUID; document ids are 22 to 24 characters.
pub const MAX_ID_CHARS: usize = 256;

/// Longest error text accepted from, or sent to, a peer.
pub const MAX_ERROR_CHARS: usize = 4096;

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// The peer's storage id, if it keeps documents and sync states across runs.
    pub storage_id: Option<String>,
    /// Whether the peer expects not to come back with this storage id.
    pub is_ephemeral: bool,
}

/// A `request` or `sync`: an Automerge sync message about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMessage {
    pub sender_id: String,
    pub target_id: String,
    /// As sent: check it with [`doc_id_to_uuid`].
    pub document_id: String,
    /// An encoded Automerge sync message.
    pub data: Vec<u8>,
}

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// Client to server: the first message on a connection.
    Join {
        sender_id: String,
        /// `None` when the field is absent, which automerge-repo takes as version 1.
        supported_protocol_versions: Option<Vec<String>>,
        peer_metadata: Option<PeerMetadata>,
    },
    /// Server to client: the answer to `join`.
    Peer {
        sender_id: String,
        target_id: String,
        selected_protocol_version: String,
        peer_metadata: Option<PeerMetadata>,
    },
    /// The sender is disconnecting.
    Leave {
        sender_id: String,
    },
    /// A sync message from a peer that has nothing of the document yet.
    Request(DocMessage),
    Sync(DocMessage),
    /// The sender does not have the document, or will not share it: the two are
    /// deliberately the same answer.
    DocUnavailable {
        sender_id: String,
        target_id: String,
        document_id: String,
    },
    /// Something went wrong; the sender closes the connection after it.
    Error {
        sender_id: Option<String>,
        target_id: Option<String>,
        message: String,
        /// Wardcheck's addition (other peers ignore it): a stable code for what went
        /// wrong, e.g. `forbidden` when a change was refused.
        code: Option<String>,
        /// Wardcheck's addition: the document the error is about, if one.
        document_id: Option<String>,
    },
    /// `ephemeral`, `remote-subscription-change` or `remote-heads-changed`: valid
    /// automerge-repo messages that we do not act on.
    Ignored {
        kind: &'static str,
    },
}

/// Why bytes are not a protocol message. Each names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the message is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("the message is not CBOR: {0}")]
    NotCbor(String),
    #[error("the message has {0} bytes after its CBOR value")]
    TrailingBytes(usize),
    #[error("the message is not a CBOR map with text keys")]
    NotAMap,
    #[error("the message has no text field `type`")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("a {kind} message needs the field `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("field `{field}` of a {kind} message must be {expected}")]
    WrongField {
        kind: &'static str,
        field: &'static str,
        expected: &'static str,
    },
}

/// Why a string is not one of our document ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    #[error("document id {0:?} is not base58check")]
    NotBase58Check(String),
    #[error("document id {id:?} holds {len} bytes, not the 16 of a UUID")]
    WrongLength { id: String, len: usize },
}

/// The automerge-repo document id of a document: base58check of its UUID's bytes.
pub fn uuid_to_doc_id(id: Uuid) -> String {
    bs58::encode(id.as_bytes()).with_check().into_string()
}

/// The UUID a document id names.
pub fn doc_id_to_uuid(doc_id: &str) -> Result<Uuid, DocIdError> {
    let shown = || doc_id.chars().take(MAX_ID_CHARS).collect::<String>();
    if doc_id.len() > MAX_ID_CHARS {
        return Err(DocIdError::NotBase58Check(shown()));
    }
    let bytes = bs58::decode(doc_id)
        .with_check(None)
        .into_vec()
        .map_err(|_| DocIdError::NotBase58Check(shown()))?;
    let bytes: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| DocIdError::WrongLength {
            id: shown(),
            len: bytes.len(),
        })?;
    Ok(Uuid::from_bytes(bytes))
}

impl WireMessage {
    /// The `type` this message carries on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            WireMessage::Join { .. } => "join",
            WireMessage::Peer { .. } => "peer",
            WireMessage::Leave { .. } => "leave",
            WireMessage::Request(_) => "request",
            WireMessage::Sync(_) => "sync",
            WireMessage::DocUnavailable { .. } => "doc-unavailable",
            WireMessage::Error { .. } => "error",
            WireMessage::Ignored { kind } => kind,
        }
    }

    /// Decodes one message from one WebSocket frame's bytes.
    pub fn decode(bytes: &[u8]) -> Result<WireMessage, WireError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let mut rest = bytes;
        // ciborium limits nesting (256 levels) and reads byte strings in pieces, so
        // a hostile length prefix cannot make it allocate more than the input.
        let value: Value =
            ciborium::from_reader(&mut rest).map_err(|e| WireError::NotCbor(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes(rest.len()));
        }
        let Value::Map(entries) = value else {
            return Err(WireError::NotAMap);
        };
        let mut fields = Fields(Vec::with_capacity(entries.len()));
        for (k, v) in entries {
            let Value::Text(k) = k else {
                return Err(WireError::NotAMap);
            };
            fields.0.push((k, v));
        }
        let kind = match fields.get("type") {
            Some(Value::Text(t)) => t.clone(),
            _ => return Err(WireError::MissingType),
        };
        let f = &fields;
        Ok(match kind.as_str() {
            "join" => WireMessage::Join {
                sender_id: f.id("join", "senderId")?,
                supported_protocol_versions: f.texts("join", "supportedProtocolVersions")?,
                peer_metadata: f.metadata("join")?,
            },
            "peer" => WireMessage::Peer {
                sender_id: f.id("peer", "senderId")?,
                target_id: f.id("peer", "targetId")?,
                selected_protocol_version: f.id("peer", "selectedProtocolVersion")?,
                peer_metadata: f.metadata("peer")?,
            },
            "leave" => WireMessage::Leave {
                sender_id: f.id("leave", "senderId")?,
            },
            "request" => WireMessage::Request(f.doc_message("request")?),
            "sync" => WireMessage::Sync(f.doc_message("sync")?),
            "doc-unavailable" => WireMessage::DocUnavailable {
                sender_id: f.id("doc-unavailable", "senderId")?,
                target_id: f.id("doc-unavailable", "targetId")?,
                document_id: f.document_id("doc-unavailable")?,
            },
            "error" => WireMessage::Error {
                sender_id: f.opt_id("error", "senderId")?,
                target_id: f.opt_id("error", "targetId")?,
                message: f.opt_text("error", "message", MAX_ERROR_CHARS)?.ok_or(
                    WireError::MissingField {
                        kind: "error",
                        field: "message",
                    },
                )?,
                code: f.opt_id("error", "code")?,
                document_id: f.opt_id("error", "documentId")?,
            },
            "ephemeral" => WireMessage::Ignored { kind: "ephemeral" },
            "remote-subscription-change" => WireMessage::Ignored {
                kind: "remote-subscription-change",
            },
            "remote-heads-changed" => WireMessage::Ignored {
                kind: "remote-heads-changed",
            },
            _ => {
                return Err(WireError::UnknownType(
                    kind.chars().take(MAX_ID_CHARS).collect(),
                ));
            }
        })
    }

    /// Encodes the message as one CBOR map, as automerge-repo's `cbor.encode` would:
    /// text keys, `data` as a byte string, absent optional fields left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut m: Vec<(Value, Value)> = vec![entry("type", text(self.type_name()))];
        let mut push = |k: &str, v: Value| m.push(entry(k, v));
        match self {
            WireMessage::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            } => {
                push("senderId", text(sender_id));
                if let Some(versions) = supported_protocol_versions {
                    push(
                        "supportedProtocolVersions",
                        Value::Array(versions.iter().map(|v| text(v)).collect()),
                    );
                }
                if let Some(meta) = peer_metadata {
                    push("peerMetadata", metadata_value(meta));
                }
            }
            WireMessage::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                peer_metadata,
            } => {
                push("senderId", text(sender_id));
                push("targetId", text(target_id));
                push("selectedProtocolVersion", text(selected_protocol_version));
                if let Some(meta) = peer_metadata {
                    push("peerMetadata", metadata_value(meta));
                }
            }
            WireMessage::Leave { sender_id } => push("senderId", text(sender_id)),
            WireMessage::Request(d) | WireMessage::Sync(d) => {
                push("senderId", text(&d.sender_id));
                push("targetId", text(&d.target_id));
                push("documentId", text(&d.document_id));
                push("data", Value::Bytes(d.data.clone()));
            }
            WireMessage::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                push("senderId", text(sender_id));
                push("targetId", text(target_id));
                push("documentId", text(document_id));
            }
            WireMessage::Error {
                sender_id,
                target_id,
                message,
                code,
                document_id,
            } => {
                if let Some(s) = sender_id {
                    push("senderId", text(s));
                }
                if let Some(t) = target_id {
                    push("targetId", text(t));
                }
                push("message", text(message));
                if let Some(c) = code {
                    push("code", text(c));
                }
                if let Some(d) = document_id {
                    push("documentId", text(d));
                }
            }
            WireMessage::Ignored { .. } => {}
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(m), &mut out)
            .expect("writing CBOR into memory cannot fail");
        out
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn entry(k: &str, v: Value) -> (Value, Value) {
    (text(k), v)
}

fn metadata_value(meta: &PeerMetadata) -> Value {
    let mut m = Vec::new();
    if let Some(s) = &meta.storage_id {
        m.push(entry("storageId", text(s)));
    }
    m.push(entry("isEphemeral", Value::Bool(meta.is_ephemeral)));
    Value::Map(m)
}

/// A decoded map's fields. JavaScript's `undefined` and `null` count as absent.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn opt_text(
        &self,
        kind: &'static str,
        field: &'static str,
        max_chars: usize,
    ) -> Result<Option<String>, WireError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Text(s)) if s.chars().count() <= max_chars => Ok(Some(s.clone())),
            Some(_) => Err(WireError::WrongField {
                kind,
                field,
                expected: "a short text",
            }),
        }
    }

    fn opt_id(&self, kind: &'static str, field: &'static str) -> Result<Option<String>, WireError> {
        self.opt_text(kind, field, MAX_ID_CHARS)
    }

    fn id(&self, kind: &'static str, field: &'static str) -> Result<String, WireError> {
        self.opt_id(kind, field)?
            .ok_or(WireError::MissingField { kind, field })
    }

    fn texts(
        &self,
        kind: &'static str,
        field: &'static str,
    ) -> Result<Option<Vec<String>>, WireError> {
        let wrong = WireError::WrongField {
            kind,
            field,
            expected: "an array of short texts",
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) if items.len() <= 64 => items
                .iter()
                .map(|v| match v {
                    Value::Text(s) if s.chars().count() <= MAX_ID_CHARS => Ok(s.clone()),
                    _ => Err(wrong.clone()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong),
        }
    }

    fn bytes(&self, kind: &'static str, field: &'static str) -> Result<Vec<u8>, WireError> {
        match self.get(field) {
            None => Err(WireError::MissingField { kind, field }),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(_) => Err(WireError::WrongField {
                kind,
                field,
                expected: "a byte string",
            }),
        }
    }

    /// A document id as text; samod also sends the 16 bytes themselves.
    fn document_id(&self, kind: &'static str) -> Result<String, WireError> {
        match self.get("documentId") {
            Some(Value::Bytes(b)) => Ok(bs58::encode(b).with_check().into_string()),
            _ => self.id(kind, "documentId"),
        }
    }

    fn doc_message(&self, kind: &'static str) -> Result<DocMessage, WireError> {
        Ok(DocMessage {
            sender_id: self.id(kind, "senderId")?,
            target_id: self.id(kind, "targetId")?,
            document_id: self.document_id(kind)?,
            data: self.bytes(kind, "data")?,
        })
    }

    fn metadata(&self, kind: &'static str) -> Result<Option<PeerMetadata>, WireError> {
        let wrong = WireError::WrongField {
            kind,
            field: "peerMetadata",
            expected: "a map of storageId and isEphemeral",
        };
        let Some(v) = self.get("peerMetadata") else {
            return Ok(None);
        };
        let Value::Map(entries) = v else {
            return Err(wrong);
        };
        let mut meta = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("storageId"), Value::Text(s)) if s.chars().count() <= MAX_ID_CHARS => {
                    meta.storage_id = Some(s.clone())
                }
                (Some("storageId"), Value::Null) => {}
                (Some("storageId"), _) => return Err(wrong),
                (Some("isEphemeral"), Value::Bool(b)) => meta.is_ephemeral = *b,
                (Some("isEphemeral"), Value::Null) => {}
                (Some("isEphemeral"), _) => return Err(wrong),
                // Other keys are allowed: automerge-repo may add fields.
                _ => {}
            }
        }
        Ok(Some(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (text(k), v.clone())).collect())
    }

    #[test]
    fn document_ids_match_automerge_repo() {
        // automerge-repo's test/AutomergeUrl.test.ts: goodBinaryDocumentId and
        // goodDocumentId are the same document.
        let bytes = [
            241, 194, 156, 132, 116, 200, 74, 222, 184, 0, 190, 71, 98, 125, 51, 191,
        ];
        let id = Uuid::from_bytes(bytes);
        assert_eq!(uuid_to_doc_id(id), "4NMNnkMhL8jXrdJ9jamS58PAVdXu");
        assert_eq!(doc_id_to_uuid("4NMNnkMhL8jXrdJ9jamS58PAVdXu"), Ok(id));
    }

    #[test]
    fn bad_document_ids_are_refused() {
        assert!(matches!(
            doc_id_to_uuid("badbadbad"),
            Err(DocIdError::NotBase58Check(_))
        ));
        assert!(matches!(
            doc_id_to_uuid("4NMNnkMhL8jXrdJ9jamS58PAVdXv"),
            Err(DocIdError::NotBase58Check(_))
        ));
        // A valid base58check string that does not hold 16 bytes (automerge-repo's
        // badUuidDocumentId).
        let eight = bs58::encode([1u8, 2, 3, 4, 42, 255, 69, 9])
            .with_check()
            .into_string();
        assert!(matches!(
            doc_id_to_uuid(&eight),
            Err(DocIdError::WrongLength { len: 8, .. })
        ));
        assert!(doc_id_to_uuid("").is_err());
        assert!(doc_id_to_uuid(&"1".repeat(10_000)).is_err());
    }

    #[test]
    fn every_message_round_trips() {
        let doc = DocMessage {
            sender_id: "client-1".into(),
            target_id: "server".into(),
            document_id: uuid_to_doc_id(Uuid::new_v4()),
            data: vec![0x42, 0, 1, 2],
        };
        let meta = Some(PeerMetadata {
            storage_id: Some("store-1".into()),
            is_ephemeral: false,
        });
        let all = [
            WireMessage::Join {
                sender_id: "client-1".into(),
                supported_protocol_versions: Some(vec![PROTOCOL_V1.into()]),
                peer_metadata: meta.clone(),
            },
            WireMessage::Join {
                sender_id: "client-1".into(),
                supported_protocol_versions: None,
                peer_metadata: None,
            },
            WireMessage::Peer {
                sender_id: "server".into(),
                target_id: "client-1".into(),
                selected_protocol_version: PROTOCOL_V1.into(),
                peer_metadata: Some(PeerMetadata::default()),
            },
            WireMessage::Leave {
                sender_id: "client-1".into(),
            },
            WireMessage::Request(doc.clone()),
            WireMessage::Sync(doc.clone()),
            WireMessage::DocUnavailable {
                sender_id: "server".into(),
                target_id: "client-1".into(),
                document_id: doc.document_id.clone(),
            },
            WireMessage::Error {
                sender_id: Some("server".into()),
                target_id: None,
                message: "bad".into(),
                code: None,
                document_id: None,
            },
            WireMessage::Error {
                sender_id: None,
                target_id: Some("client-1".into()),
                message: "refused".into(),
                code: Some("forbidden".into()),
                document_id: Some(doc.document_id.clone()),
            },
        ];
        for m in all {
            let bytes = m.encode();
            assert_eq!(WireMessage::decode(&bytes), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn the_wire_shape_is_automerge_repos() {
        let m = WireMessage::Sync(DocMessage {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: "4NMNnkMhL8jXrdJ9jamS58PAVdXu".into(),
            data: vec![1, 2, 3],
        });
        let v: Value = ciborium::from_reader(m.encode().as_slice()).unwrap();
        let Value::Map(entries) = v else {
            panic!("a map")
        };
        let get = |k: &str| {
            entries
                .iter()
                .find(|(key, _)| key.as_text() == Some(k))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("type"), Some(text("sync")));
        assert_eq!(get("senderId"), Some(text("a")));
        assert_eq!(get("targetId"), Some(text("b")));
        assert_eq!(
            get("documentId"),
            Some(text("4NMNnkMhL8jXrdJ9jamS58PAVdXu"))
        );
        assert_eq!(
            get("data"),
            Some(Value::Bytes(vec![1, 2, 3])),
            "data is a CBOR byte string, as JavaScript sends a Uint8Array"
        );
    }

    #[test]
    fn javascript_shapes_decode() {
        // cbor-x writes `undefined` as simple value 23 (0xf7): a JS join whose peer has
        // no storage sends `storageId: undefined`.
        let mut bytes = cbor(&map(&[
            ("type", text("join")),
            ("senderId", text("js-peer")),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ]));
        // Patch the map header from 3 to 4 entries and append
        // "peerMetadata": {"storageId": undefined, "isEphemeral": true}.
        assert_eq!(bytes[0], 0xa3);
        bytes[0] = 0xa4;
        bytes.extend(cbor(&text("peerMetadata")));
        bytes.push(0xa2);
        bytes.extend(cbor(&text("storageId")));
        bytes.push(0xf7);
        bytes.extend(cbor(&text("isEphemeral")));
        bytes.push(0xf5);
        assert_eq!(
            WireMessage::decode(&bytes),
            Ok(WireMessage::Join {
                sender_id: "js-peer".into(),
                supported_protocol_versions: Some(vec!["1".into()]),
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: true
                }),
            })
        );
        // Extra fields are ignored; a binary documentId is converted.
        let id = Uuid::new_v4();
        let bytes = cbor(&map(&[
            ("type", text("request")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", Value::Bytes(id.as_bytes().to_vec())),
            ("data", Value::Bytes(vec![0x42])),
            ("somethingNew", Value::Integer(7.into())),
        ]));
        match WireMessage::decode(&bytes) {
            Ok(WireMessage::Request(d)) => assert_eq!(doc_id_to_uuid(&d.document_id), Ok(id)),
            other => panic!("expected a request, got {other:?}"),
        }
        for kind in [
            "ephemeral",
            "remote-subscription-change",
            "remote-heads-changed",
        ] {
            let bytes = cbor(&map(&[("type", text(kind)), ("senderId", text("a"))]));
            assert_eq!(
                WireMessage::decode(&bytes),
                Ok(WireMessage::Ignored {
                    kind: match kind {
                        "ephemeral" => "ephemeral",
                        "remote-subscription-change" => "remote-subscription-change",
                        _ => "remote-heads-changed",
                    }
                })
            );
        }
    }

    #[test]
    fn malformed_messages_get_typed_errors() {
        type Check = fn(&WireError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![], |e| matches!(e, WireError::NotCbor(_))),
            (b"hello, not cbor".to_vec(), |e| {
                // 'h' starts an 8-byte CBOR text: a value, then trailing bytes.
                matches!(e, WireError::TrailingBytes(6))
            }),
            (cbor(&Value::Array(vec![])), |e| *e == WireError::NotAMap),
            (
                cbor(&Value::Map(vec![(Value::Integer(1.into()), text("x"))])),
                |e| *e == WireError::NotAMap,
            ),
            (cbor(&map(&[("senderId", text("a"))])), |e| {
                *e == WireError::MissingType
            }),
            (
                cbor(&map(&[("type", text("bogus"))])),
                |e| matches!(e, WireError::UnknownType(t) if t == "bogus"),
            ),
            (
                cbor(&map(&[
                    ("type", text("sync")),
                    ("senderId", text("a")),
                    ("targetId", text("b")),
                    ("documentId", text("x")),
                    ("data", text("not bytes")),
                ])),
                |e| matches!(e, WireError::WrongField { field: "data", .. }),
            ),
            (
                cbor(&map(&[("type", text("sync")), ("senderId", text("a"))])),
                |e| {
                    matches!(
                        e,
                        WireError::MissingField {
                            field: "targetId",
                            ..
                        }
                    )
                },
            ),
            (
                cbor(&map(&[
                    ("type", text("join")),
                    ("senderId", text(&"x".repeat(MAX_ID_CHARS + 1))),
                ])),
                |e| {
                    matches!(
                        e,
                        WireError::WrongField {
                            field: "senderId",
                            ..
                        }
                    )
                },
            ),
            (
                {
                    let mut b = cbor(&map(&[("type", text("leave")), ("senderId", text("a"))]));
                    b.push(0);
                    b
                },
                |e| *e == WireError::TrailingBytes(1),
            ),
            (
                // A byte string claiming 2^63 bytes.
                vec![0xa1, 0x61, b'x', 0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0],
                |e| matches!(e, WireError::NotCbor(_)),
            ),
            (
                // Nested arrays far past ciborium's recursion limit.
                vec![0x81; 100_000],
                |e| matches!(e, WireError::NotCbor(_)),
            ),
        ];
        for (bytes, ok) in cases {
            match WireMessage::decode(&bytes) {
                Err(e) => assert!(
                    ok(&e),
                    "unexpected error {e:?} for {:?}",
                    &bytes[..bytes.len().min(16)]
                ),
                Ok(m) => panic!("decoded {m:?} from malformed bytes"),
            }
        }
        let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            WireMessage::decode(&big),
            Err(WireError::TooLarge {
                len: MAX_MESSAGE_BYTES + 1,
                max: MAX_MESSAGE_BYTES
            })
        );
    }

    #[test]
    fn decoding_random_bytes_never_panics() {
        // A small xorshift generator: deterministic, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid = WireMessage::Sync(DocMessage {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: uuid_to_doc_id(Uuid::nil()),
            data: vec![1; 40],
        })
        .encode();
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            bytes.truncate((next() as usize) % (bytes.len() + 1));
            let _ = WireMessage::decode(&bytes);
        }
    }
}
