//! The trust response document: one per inspection, written by the trust's lead and
//! read by inspectors and reviewers. It holds a management response to each finding
//! and factual-accuracy comments.
//!
//! ```text
//! schema_version  int
//! inspection      str (the inspection's UUID)
//! findings        map: finding uuid -> stamped json { text }
//! accuracy        map: uuid -> json { about, text, by, at }
//! ```
//! Like the inspection, a response is one stamped scalar, so two concurrent
//! responses to the same finding are both kept and shown until one is picked.

use std::collections::BTreeMap;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::inspection::{Candidate, Field, MAX_TEXT_CHARS, Stamp, Stamped, State};
use crate::policy::{self, Part, Refusal, Writer};

pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} is {len} characters, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("malformed response document: {0}")]
    Malformed(String),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

type Result<T, E = ResponseError> = std::result::Result<T, E>;

/// A factual-accuracy comment: what it is about (a finding, an item, or the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyComment {
    pub id: Uuid,
    pub about: String,
    pub text: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseView {
    pub inspection: Uuid,
    /// The management response to each finding answered so far.
    pub findings: BTreeMap<Uuid, Field<String>>,
    pub accuracy: Vec<AccuracyComment>,
}

#[derive(Debug)]
pub struct TrustResponse {
    doc: AutoCommit,
    /// Who writes, and the inspection's state: operations ask the write policy first.
    writer: Option<(Writer, State)>,
}

impl TrustResponse {
    pub fn create(inspection: Uuid, actor: ActorId, stamp: &Stamp) -> Result<Self> {
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(automerge::ROOT, "schema_version", SCHEMA_VERSION)?;
        doc.put(automerge::ROOT, "inspection", inspection.to_string())?;
        doc.put_object(automerge::ROOT, "findings", ObjType::Map)?;
        doc.put_object(automerge::ROOT, "accuracy", ObjType::Map)?;
        let mut r = TrustResponse { doc, writer: None };
        r.commit("create", stamp);
        Ok(r)
    }

    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self> {
        let r = TrustResponse {
            doc: AutoCommit::load(bytes)?.with_actor(actor),
            writer: None,
        };
        r.view()?;
        Ok(r)
    }

    /// Wraps a document loaded elsewhere, checking it reads as a response document.
    pub fn from_doc(doc: AutoCommit) -> Result<Self> {
        let r = TrustResponse { doc, writer: None };
        r.view()?;
        Ok(r)
    }

    /// Holds every further operation to the write policy for `writer`, while the
    /// inspection is in `state` ([`crate::policy`]).
    pub fn set_writer(&mut self, writer: Writer, state: State) {
        self.writer = Some((writer, state));
    }

    /// Makes further changes on `actor` (each author writes on actors bound to them).
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    fn begin(&self, part: Part, stamp: &Stamp) -> Result<()> {
        if let Some((w, state)) = &self.writer {
            if stamp.by != w.user {
                return Err(Refusal {
                    code: policy::Code::ForgedAuthor,
                    message: format!(
                        "the change is stamped {:?} but made by {:?}",
                        stamp.by, w.user
                    ),
                }
                .into());
            }
            policy::permits(w.role, part, *state)?;
        }
        Ok(())
    }

    /// Sets the trust's response to a finding.
    pub fn respond(&mut self, finding: Uuid, text: &str, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Response, stamp)?;
        check("response", text)?;
        let findings = self.object("findings")?;
        let value = Stamped {
            value: text.to_owned(),
            by: stamp.by.clone(),
            at: stamp.at,
            resolved: None,
        };
        self.doc.put(
            &findings,
            finding.to_string(),
            serde_json::to_string(&value).expect("serialises"),
        )?;
        self.commit("respond", stamp);
        Ok(())
    }

    pub fn comment_accuracy(
        &mut self,
        id: Uuid,
        about: &str,
        text: &str,
        stamp: &Stamp,
    ) -> Result<()> {
        self.begin(Part::Accuracy, stamp)?;
        check("comment", text)?;
        check("about", about)?;
        let accuracy = self.object("accuracy")?;
        let c = AccuracyComment {
            id,
            about: about.to_owned(),
            text: text.to_owned(),
            by: stamp.by.clone(),
            at: stamp.at,
        };
        self.doc.put(
            &accuracy,
            id.to_string(),
            serde_json::to_string(&c).expect("serialises"),
        )?;
        self.commit("comment_accuracy", stamp);
        Ok(())
    }

    pub fn view(&self) -> Result<ResponseView> {
        let inspection = match self.doc.get(automerge::ROOT, "inspection")? {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => s
                    .parse()
                    .map_err(|_| ResponseError::Malformed("inspection id".into()))?,
                _ => return Err(ResponseError::Malformed("inspection id".into())),
            },
            _ => return Err(ResponseError::Malformed("inspection id is missing".into())),
        };
        let findings_obj = self.object("findings")?;
        let mut findings = BTreeMap::new();
        for key in self.doc.keys(&findings_obj) {
            let id: Uuid = key
                .parse()
                .map_err(|_| ResponseError::Malformed(format!("finding key {key:?}")))?;
            let winner = self
                .doc
                .get(&findings_obj, &key)?
                .map(|(_, id)| id.to_string());
            let mut values = Vec::new();
            for (v, op) in self.doc.get_all(&findings_obj, &key)? {
                values.push(Candidate {
                    id: op.to_string(),
                    value: parse(&v)?,
                });
            }
            if let Some(pos) = winner.and_then(|w| values.iter().position(|c| c.id == w)) {
                values.swap(0, pos);
            }
            findings.insert(id, Field { values });
        }
        let accuracy_obj = self.object("accuracy")?;
        let mut accuracy: Vec<AccuracyComment> = Vec::new();
        for key in self.doc.keys(&accuracy_obj) {
            if let Some((v, _)) = self.doc.get(&accuracy_obj, &key)? {
                accuracy.push(parse(&v)?);
            }
        }
        accuracy.sort_by_key(|c| (c.at, c.id));
        Ok(ResponseView {
            inspection,
            findings,
            accuracy,
        })
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The document, to read.
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// Every change not already covered by `heads`, as change chunks.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    pub fn generate_sync_message(&mut self, peer: &mut sync::State) -> Option<sync::Message> {
        self.doc.sync().generate_sync_message(peer)
    }

    pub fn receive_sync_message(&mut self, peer: &mut sync::State, m: sync::Message) -> Result<()> {
        self.doc.sync().receive_sync_message(peer, m)?;
        Ok(())
    }

    fn object(&self, key: &str) -> Result<automerge::ObjId> {
        match self.doc.get(automerge::ROOT, key)? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(ResponseError::Malformed(format!("{key} is missing"))),
        }
    }

    fn commit(&mut self, op: &str, stamp: &Stamp) {
        let message = serde_json::json!({ "op": op, "by": stamp.by }).to_string();
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(stamp.at.timestamp()),
        );
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value<'_>) -> Result<T> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => {
                serde_json::from_str(s).map_err(|e| ResponseError::Malformed(e.to_string()))
            }
            _ => Err(ResponseError::Malformed("value is not text".into())),
        },
        Value::Object(_) => Err(ResponseError::Malformed("value is an object".into())),
    }
}

fn check(field: &'static str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(ResponseError::Empty(field));
    }
    let len = s.chars().count();
    if len > MAX_TEXT_CHARS {
        return Err(ResponseError::TooLong {
            field,
            len,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stamp(by: &str, s: i64) -> Stamp {
        Stamp::new(by, chrono::Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap())
    }

    #[test]
    fn responses_and_comments_round_trip_and_concurrent_responses_conflict() {
        let insp = Uuid::from_u128(1);
        let f = Uuid::from_u128(2);
        let mut a = TrustResponse::create(insp, ActorId::random(), &stamp("lead", 0)).unwrap();
        let mut b = TrustResponse::load(&a.save(), ActorId::random()).unwrap();
        a.respond(f, "We will replace the PCs by March.", &stamp("lead", 1))
            .unwrap();
        b.respond(f, "Replacement funded.", &stamp("deputy", 2))
            .unwrap();
        b.comment_accuracy(
            Uuid::from_u128(3),
            "report",
            "Site name is wrong",
            &stamp("deputy", 3),
        )
        .unwrap();
        a.doc.merge(&mut b.doc).unwrap();
        let v = a.view().unwrap();
        assert_eq!(v.inspection, insp);
        assert!(v.findings[&f].is_conflict(), "both responses kept");
        assert_eq!(v.accuracy.len(), 1);
        assert!(matches!(
            a.respond(f, " ", &stamp("lead", 4)),
            Err(ResponseError::Empty(_))
        ));
    }
}
