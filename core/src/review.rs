//! The review document: one per inspection, holding what CQC and NHS Digital say to each
//! other about it, which the trust never reads.
//!
//! ```text
//! schema_version  int
//! inspection      str (the inspection's UUID)
//! comments        map: uuid -> json Comment { id, target, text, by, at }
//! released        map: comment uuid -> json Stamp (the reviewer who released it to the
//!                      trust, and when)
//! ```
//!
//! Why a document of its own: a trust lead syncs the whole inspection document, history
//! included, so anything inside it is theirs to read. Comments between inspectors and
//! reviewers ("Telemetry shows hundreds of Windows 7 devices in imaging…") therefore live
//! here, in a document trust leads cannot read at all, and reach the trust only when a
//! reviewer releases one: the server then shows the trust lead that comment (and only
//! released ones) in its views. Inspectors and reviewers write comments; reviewers
//! release them ([`crate::policy`]).

use std::collections::BTreeMap;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ReadDoc, ScalarValue, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::checklist::Checklist;
use crate::inspection::{Comment, CommentTarget, MAX_TEXT_CHARS, Stamp, State};
use crate::policy::{self, Part, Refusal, Writer};

pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} is {len} characters, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("comment {0} already exists")]
    Duplicate(Uuid),
    #[error("no comment {0}")]
    UnknownComment(Uuid),
    #[error("unknown checklist item {0:?}")]
    UnknownItem(String),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("malformed review document: {0}")]
    Malformed(String),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

type Result<T, E = ReviewError> = std::result::Result<T, E>;

/// The review document as typed values: every comment, each with its release (if any),
/// oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewView {
    pub inspection: Uuid,
    pub comments: Vec<Comment>,
}

impl ReviewView {
    /// The comments the trust may read: the released ones.
    pub fn released(&self) -> Vec<Comment> {
        self.comments
            .iter()
            .filter(|c| c.released.is_some())
            .cloned()
            .collect()
    }
}

#[derive(Debug)]
pub struct Review {
    doc: AutoCommit,
    writer: Option<(Writer, State)>,
}

const COMMENTS: &str = "comments";
const RELEASED: &str = "released";

impl Review {
    pub fn create(inspection: Uuid, actor: ActorId, stamp: &Stamp) -> Result<Self> {
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(automerge::ROOT, "schema_version", SCHEMA_VERSION)?;
        doc.put(automerge::ROOT, "inspection", inspection.to_string())?;
        doc.put_object(automerge::ROOT, COMMENTS, ObjType::Map)?;
        doc.put_object(automerge::ROOT, RELEASED, ObjType::Map)?;
        let mut r = Review { doc, writer: None };
        r.commit("create", stamp);
        Ok(r)
    }

    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self> {
        Self::from_doc(AutoCommit::load(bytes)?.with_actor(actor))
    }

    /// Wraps a document loaded elsewhere, checking it reads as a review document.
    pub fn from_doc(doc: AutoCommit) -> Result<Self> {
        let r = Review { doc, writer: None };
        r.view()?;
        Ok(r)
    }

    /// Holds every further operation to the write policy for `writer`, while the
    /// inspection is in `state`.
    pub fn set_writer(&mut self, writer: Writer, state: State) {
        self.writer = Some((writer, state));
    }

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

    /// Adds a comment on the inspection, one of its items, findings or sampled devices.
    /// `checklist`, when given, is the inspection's: an item comment must name one of its
    /// items.
    pub fn comment(
        &mut self,
        id: Uuid,
        target: CommentTarget,
        text: &str,
        checklist: Option<&Checklist>,
        stamp: &Stamp,
    ) -> Result<()> {
        self.begin(Part::Comment, stamp)?;
        if text.trim().is_empty() {
            return Err(ReviewError::Empty("comment"));
        }
        let len = text.chars().count();
        if len > MAX_TEXT_CHARS {
            return Err(ReviewError::TooLong {
                field: "comment",
                len,
                max: MAX_TEXT_CHARS,
            });
        }
        if let (CommentTarget::Item(item), Some(c)) = (&target, checklist)
            && c.item(item).is_none()
        {
            return Err(ReviewError::UnknownItem(item.clone()));
        }
        let comments = self.object(COMMENTS)?;
        if self.doc.get(&comments, id.to_string())?.is_some() {
            return Err(ReviewError::Duplicate(id));
        }
        let c = Comment {
            id,
            target,
            text: text.to_owned(),
            by: stamp.by.clone(),
            at: stamp.at,
            released: None,
        };
        self.doc.put(&comments, id.to_string(), to_json(&c))?;
        self.commit("comment", stamp);
        Ok(())
    }

    /// Copies comments kept elsewhere (an old inspection document) as they were, with
    /// their own authors and times: for moving them here.
    pub fn import(&mut self, comments: &[Comment], stamp: &Stamp) -> Result<()> {
        let obj = self.object(COMMENTS)?;
        for c in comments {
            let mut c = c.clone();
            c.released = None;
            self.doc.put(&obj, c.id.to_string(), to_json(&c))?;
        }
        if !comments.is_empty() {
            self.commit("import_comments", stamp);
        }
        Ok(())
    }

    /// Releases a comment to the trust: from now on the trust lead reads it.
    pub fn release(&mut self, id: Uuid, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Release, stamp)?;
        let comments = self.object(COMMENTS)?;
        if self.doc.get(&comments, id.to_string())?.is_none() {
            return Err(ReviewError::UnknownComment(id));
        }
        let released = self.object(RELEASED)?;
        self.doc.put(&released, id.to_string(), to_json(stamp))?;
        self.commit("release", stamp);
        Ok(())
    }

    pub fn view(&self) -> Result<ReviewView> {
        let inspection = match self.doc.get(automerge::ROOT, "inspection")? {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => s
                    .parse()
                    .map_err(|_| ReviewError::Malformed("inspection id".into()))?,
                _ => return Err(ReviewError::Malformed("inspection id".into())),
            },
            _ => return Err(ReviewError::Malformed("inspection id is missing".into())),
        };
        let released_obj = self.object(RELEASED)?;
        let mut released: BTreeMap<String, Stamp> = BTreeMap::new();
        for k in self.doc.keys(&released_obj) {
            if let Some((v, _)) = self.doc.get(&released_obj, &k)? {
                released.insert(k, parse(&v)?);
            }
        }
        let comments_obj = self.object(COMMENTS)?;
        let mut comments = Vec::new();
        for k in self.doc.keys(&comments_obj) {
            if let Some((v, _)) = self.doc.get(&comments_obj, &k)? {
                let mut c: Comment = parse(&v)?;
                c.released = released.get(&k).cloned();
                comments.push(c);
            }
        }
        comments.sort_by_key(|c: &Comment| (c.at, c.id));
        Ok(ReviewView {
            inspection,
            comments,
        })
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// Whether the document holds the change with this hash.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// How many changes are not ancestors of `heads` (those it holds).
    pub fn changes_after(&mut self, heads: &[ChangeHash]) -> usize {
        let known: Vec<ChangeHash> = heads
            .iter()
            .filter(|h| self.doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        self.doc.get_changes_meta(&known).len()
    }

    pub fn generate_sync_message(&mut self, peer: &mut sync::State) -> Option<sync::Message> {
        self.doc.sync().generate_sync_message(peer)
    }

    pub fn receive_sync_message(&mut self, peer: &mut sync::State, m: sync::Message) -> Result<()> {
        self.doc.sync().receive_sync_message(peer, m)?;
        Ok(())
    }

    /// Applies changes saved by `save_after` on another replica.
    pub fn apply_changes(&mut self, bytes: &[u8]) -> Result<()> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    fn object(&self, key: &str) -> Result<automerge::ObjId> {
        match self.doc.get(automerge::ROOT, key)? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(ReviewError::Malformed(format!("{key} is missing"))),
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

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("review values serialise to JSON")
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value<'_>) -> Result<T> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => {
                serde_json::from_str(s).map_err(|e| ReviewError::Malformed(e.to_string()))
            }
            _ => Err(ReviewError::Malformed("value is not text".into())),
        },
        Value::Object(_) => Err(ReviewError::Malformed("value is an object".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;
    use chrono::{TimeZone, Utc};

    fn stamp(by: &str, s: i64) -> Stamp {
        Stamp::new(by, Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap())
    }

    #[test]
    fn comments_are_released_one_by_one_and_only_by_reviewers() {
        let insp = Uuid::from_u128(1);
        let mut r = Review::create(insp, ActorId::random(), &stamp("server", 0)).unwrap();
        r.set_writer(Writer::new("ann", Role::Inspector), State::InProgress);
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(3);
        r.comment(
            a,
            CommentTarget::Inspection,
            "Windows 7 in imaging",
            None,
            &stamp("ann", 1),
        )
        .unwrap();
        r.comment(
            b,
            CommentTarget::Inspection,
            "Ask about the patch board",
            None,
            &stamp("ann", 2),
        )
        .unwrap();
        let e = r.release(a, &stamp("ann", 3)).unwrap_err();
        assert!(
            matches!(e, ReviewError::Refused(ref f) if f.code == policy::Code::Forbidden),
            "{e}"
        );
        r.set_writer(Writer::new("rita", Role::Reviewer), State::Submitted);
        r.release(b, &stamp("rita", 4)).unwrap();
        let v = r.view().unwrap();
        assert_eq!(v.comments.len(), 2);
        let released = v.released();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].id, b);
        assert_eq!(released[0].released.as_ref().unwrap().by, "rita");
        assert!(matches!(
            r.release(Uuid::from_u128(9), &stamp("rita", 5)),
            Err(ReviewError::UnknownComment(_))
        ));
    }
}
