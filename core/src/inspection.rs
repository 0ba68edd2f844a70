//! The inspection document: one Automerge document per inspection.
//!
//! This module is the only code that writes an inspection. Callers use typed
//! operations ([`Inspection::set_answer`], [`Inspection::add_finding`], ...) and read
//! typed views ([`Inspection::view`]); they never see an Automerge object id.
//!
//! # Layout
//! ```text
//! schema_version   int
//! id               str (UUID)
//! meta             map: trust, sites (json), checklist {id, version, sha256},
//!                       team {user -> json}, created (json stamp), dates, state (stamped)
//! responses        map: item id -> { answer (stamped), note (text), note_edited (stamp),
//!                                    photos {sha256 -> stamped photo ref} }
//! devices          map: uuid -> { hostname, build_seen (stamped), added,
//!                                 observations {item id -> stamped observation} }
//! findings         map: uuid -> { severity (stamped), text (text), recommendation (text),
//!                                 items {item id -> stamp}, created, edited }
//! comments         map: uuid -> json
//! signoffs         map: uuid -> json
//! ```
//!
//! # Why it is shaped like this
//! - Everything is keyed by a stable id (item id or UUID), so edits to different
//!   items never touch each other.
//! - Every object a concurrent editor might write into is created once, when the
//!   inspection (or the device or finding) is created. If two replicas each created
//!   `responses[item]` on first use, Automerge would keep one map and hide the other,
//!   and an answer would vanish from the view.
//! - A field that one person sets as a whole (an answer, a severity, a state) is a
//!   single scalar holding JSON with its value, author and time. When two people set
//!   it concurrently Automerge keeps both: the view shows every value with its author
//!   and time ([`Field::is_conflict`]) until [`Inspection::resolve`] picks one.
//! - Long free text two people may edit at once (notes, finding text and
//!   recommendations) is Automerge text, edited by diff, so concurrent edits merge.
//! - Every operation is one Automerge change whose message names the operation and
//!   its author, and whose time is the operation's time.
//!
//! # Schema versions
//! Version 1 documents kept `meta.state` as a bare string. Readers understand both
//! forms; the first write to a version 1 document moves it to the current version.
//! Documents newer than [`SCHEMA_VERSION`] are refused rather than misread.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checklist::{AnswerKind, Checklist, ChecklistPin, Org, Scope, Severity};
use crate::policy::{self, Part, Refusal, Writer};

/// The schema this code writes.
pub const SCHEMA_VERSION: u64 = 2;
/// Longest note, finding text, recommendation or comment, in characters. A page of
/// text is a few thousand; this leaves room for long notes while keeping one
/// inspection's document far from sizes where Automerge loads slowly.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Longest short field (hostname, OS build, caption, reason, text answer).
pub const MAX_SHORT_CHARS: usize = 500;
/// Most sites, and team members, one inspection may name.
pub const MAX_LIST_LEN: usize = 100;

/// Errors from inspection operations: each names the value it refused.
#[derive(Debug, thiserror::Error)]
pub enum InspectionError {
    #[error("unknown checklist item {0:?}")]
    UnknownItem(String),
    #[error("item {item:?} is answered {expected}, not {got}")]
    WrongAnswerKind {
        item: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("'not applicable' for item {0:?} needs a reason")]
    MissingReason(String),
    #[error("answer {value} for item {item:?} is outside {min:?}..={max:?}")]
    OutOfRange {
        item: String,
        value: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
    #[error("item {item:?} is a {scope:?}-scope check and cannot be answered here")]
    WrongScope { item: String, scope: Scope },
    #[error(
        "malformed ODS code {0:?}: a trust is 3 letters or digits (e.g. RJ1), a site 5 (e.g. RJ121)"
    )]
    InvalidOdsCode(String),
    #[error("site {site:?} does not belong to trust {trust:?}")]
    SiteNotInTrust { site: String, trust: String },
    #[error("an inspection cannot go from {from:?} to {to:?}")]
    IllegalTransition { from: State, to: State },
    #[error("{0} needs the inspection to be {1:?}")]
    WrongState(&'static str, State),
    #[error("the inspection is closed or cancelled: nothing in it changes")]
    Closed,
    #[error("unknown device {0}")]
    UnknownDevice(Uuid),
    #[error("unknown finding {0}")]
    UnknownFinding(Uuid),
    #[error("{0} {1} already exists")]
    Duplicate(&'static str, Uuid),
    #[error("no photo {hash} on item {item:?}")]
    UnknownPhoto { item: String, hash: String },
    #[error("malformed photo hash {0:?}: expected 64 lowercase hex digits")]
    InvalidPhotoHash(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("visit dates: {0}")]
    InvalidDates(String),
    #[error("{field} is {len} characters, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("no value {candidate:?} to pick for {field}")]
    UnknownCandidate { field: String, candidate: String },
    #[error("document pins checklist {doc:?}, but {given:?} was supplied")]
    ChecklistMismatch {
        doc: Box<ChecklistPin>,
        given: Box<ChecklistPin>,
    },
    #[error("document schema version {0} is newer than this app understands ({SCHEMA_VERSION})")]
    UnsupportedSchema(u64),
    #[error("malformed inspection document: {0}")]
    Malformed(String),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

type Result<T, E = InspectionError> = std::result::Result<T, E>;

/// Who made a change, and when. Passed into every operation (no clock is read here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The author's user id.
    pub by: String,
    pub at: DateTime<Utc>,
}

impl Stamp {
    pub fn new(by: impl Into<String>, at: DateTime<Utc>) -> Self {
        Stamp { by: by.into(), at }
    }
}

/// A value with the author and time that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub value: T,
    pub by: String,
    pub at: DateTime<Utc>,
    /// Set when this value was picked to resolve a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Stamp>,
}

/// One value of a field as the document holds it. `id` names it for
/// [`Inspection::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate<T> {
    pub id: String,
    #[serde(flatten)]
    pub value: Stamped<T>,
}

/// A field that may hold concurrent values. `values[0]` is the one Automerge picks
/// deterministically; when there are more, the field is a conflict and every value
/// is shown until someone picks one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field<T> {
    pub values: Vec<Candidate<T>>,
}

impl<T> Field<T> {
    pub fn current(&self) -> &Stamped<T> {
        &self.values[0].value
    }
    pub fn is_conflict(&self) -> bool {
        self.values.len() > 1
    }
}

/// An answer to a checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Answer {
    Met,
    PartlyMet,
    NotMet,
    NotApplicable { reason: String },
    Number { value: f64 },
    Date { value: NaiveDate },
    Text { value: String },
}

impl Answer {
    fn kind_name(&self) -> &'static str {
        match self {
            Answer::Met | Answer::PartlyMet | Answer::NotMet => "a compliance answer",
            Answer::NotApplicable { .. } => "not applicable",
            Answer::Number { .. } => "a number",
            Answer::Date { .. } => "a date",
            Answer::Text { .. } => "text",
        }
    }
}

/// The life of an inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    InProgress,
    Submitted,
    SharedWithTrust,
    Closed,
    /// A planned visit called off before it began: nothing in it changes any more.
    Cancelled,
}

impl State {
    /// Closed or cancelled: nothing in the inspection changes any more (but the
    /// server's own changes).
    pub fn is_final(self) -> bool {
        matches!(self, State::Closed | State::Cancelled)
    }

    /// The transitions allowed: forward through the life, back from submitted to in
    /// progress when a reviewer returns it, and from draft to cancelled (the server's
    /// move, for a reviewer or admin who calls a planned visit off).
    pub fn can_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Draft, InProgress)
                | (InProgress, Submitted)
                | (Submitted, InProgress)
                | (Submitted, SharedWithTrust)
                | (SharedWithTrust, Closed)
                | (Draft, Cancelled)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    LeadInspector,
    Inspector,
    Reviewer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub user: String,
    pub name: String,
    pub role: TeamRole,
}

/// What creating an inspection needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInspection {
    pub id: Uuid,
    /// The trust's ODS code, e.g. `RJ1`.
    pub trust: String,
    /// Site codes, e.g. `RJ121`; each starts with the trust's code.
    pub sites: Vec<String>,
    pub team: Vec<TeamMember>,
    pub visit_start: Option<NaiveDate>,
    pub visit_end: Option<NaiveDate>,
    /// The trust's type and whether it runs a major trauma centre, when known: the
    /// inspection then holds only the sections that apply to it (`Section::applies`).
    pub org: Option<Org>,
}

/// A photo as the document records it; the bytes live in the blob store under `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// SHA-256 of the stored bytes, lowercase hex: the photo's id.
    pub hash: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
    pub mime: String,
    pub caption: String,
    pub captured_at: Option<DateTime<Utc>>,
}

/// What an inspector saw for one check on one sampled device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub answer: Answer,
    #[serde(default)]
    pub note: String,
}

/// A new finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFinding {
    pub id: Uuid,
    pub severity: Severity,
    pub text: String,
    /// The checklist items the finding rests on.
    pub items: Vec<String>,
    pub recommendation: String,
}

/// An edit of a finding: each `Some` field is set; links are added and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingEdit {
    pub severity: Option<Severity>,
    pub text: Option<String>,
    pub recommendation: Option<String>,
    #[serde(default)]
    pub link: Vec<String>,
    #[serde(default)]
    pub unlink: Vec<String>,
}

/// What a comment is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum CommentTarget {
    Inspection,
    Item(String),
    Finding(Uuid),
    Device(Uuid),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: Uuid,
    pub target: CommentTarget,
    pub text: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// Who released the comment to the trust, and when: set in views from the review
    /// document, never stored inside the comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Stamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignoffRole {
    LeadInspector,
    Reviewer,
}

/// What a link of the sign-off chain is ([`crate::seal`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    #[default]
    SignOff,
    /// A reviewer reopened the signed inspection; the statement is the reason.
    Reopen,
}

impl LinkKind {
    fn is_sign_off(&self) -> bool {
        *self == LinkKind::SignOff
    }
}

/// A sign-off, or a reopening: one link of the chain ([`crate::seal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signoff {
    pub id: Uuid,
    pub role: SignoffRole,
    #[serde(default, skip_serializing_if = "LinkKind::is_sign_off")]
    pub kind: LinkKind,
    /// The statement signed, or the reason for reopening.
    pub statement: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// The document's heads when it was made (hex), which are the change's dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heads: Vec<String>,
    /// The SHA-256 of the signed content at `heads` ([`crate::seal::content_hash`]);
    /// `None` only for sign-offs from before sign-offs were sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The hash of the link before it; `None` for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// This link's hash ([`crate::seal::link_hash`]): set in views, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// A field that can hold a conflict, named for [`Inspection::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum FieldRef {
    State,
    Answer { item: String },
    DeviceHostname { device: Uuid },
    DeviceBuild { device: Uuid },
    Observation { device: Uuid, item: String },
    FindingSeverity { finding: Uuid },
}

// ----- views -----

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectionView {
    pub id: Uuid,
    pub schema_version: u64,
    pub meta: MetaView,
    /// Every inspection-scope item of the checklist, answered or not.
    pub responses: BTreeMap<String, ResponseView>,
    pub devices: Vec<DeviceView>,
    pub findings: Vec<FindingView>,
    pub comments: Vec<Comment>,
    /// The sign-offs and reopenings in chain order (those from before sign-offs were
    /// sealed first), each sealed one with its hash.
    pub signoffs: Vec<Signoff>,
    /// A lead inspector's sign-off stands: answers, notes, photos, devices and findings
    /// take no change until a reviewer reopens the inspection.
    pub frozen: bool,
    pub progress: Vec<SectionProgress>,
    /// Every field that holds concurrent values.
    pub conflicts: Vec<FieldRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaView {
    pub trust: String,
    pub sites: Vec<String>,
    pub checklist: ChecklistPin,
    pub team: Vec<TeamMember>,
    pub created: Stamp,
    pub visit_start: Option<NaiveDate>,
    pub visit_end: Option<NaiveDate>,
    pub state: Field<State>,
    /// The organisation the inspection was made for; `None` for one made before this
    /// was recorded, or of a trust the trusts feed did not know (every section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Org>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseView {
    pub answer: Option<Field<Answer>>,
    pub note: String,
    pub note_edited: Option<Stamp>,
    pub photos: Vec<Stamped<PhotoRef>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub id: Uuid,
    pub hostname: Field<String>,
    pub build_seen: Field<String>,
    pub added: Stamp,
    pub observations: BTreeMap<String, Field<Observation>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingView {
    pub id: Uuid,
    pub severity: Field<Severity>,
    pub text: String,
    pub recommendation: String,
    pub items: Vec<String>,
    pub created: Stamp,
    pub edited: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionProgress {
    pub section: String,
    pub answered: usize,
    pub total: usize,
}

/// One inspection document, with the checklist it pins.
#[derive(Debug)]
pub struct Inspection {
    doc: AutoCommit,
    checklist: Arc<Checklist>,
    /// Who is making changes: every operation asks the write policy for them first. With
    /// none set, operations are not held to the policy (the server making a document,
    /// tools and tests); the server checks every change it receives all the same.
    writer: Option<Writer>,
}

const META: &str = "meta";
const RESPONSES: &str = "responses";
const DEVICES: &str = "devices";
const FINDINGS: &str = "findings";
const COMMENTS: &str = "comments";
const SIGNOFFS: &str = "signoffs";

impl Inspection {
    /// Creates a new inspection document on this device's `actor`.
    pub fn create(
        new: NewInspection,
        checklist: Arc<Checklist>,
        actor: ActorId,
        stamp: &Stamp,
    ) -> Result<Self> {
        validate_trust(&new.trust)?;
        if new.sites.len() > MAX_LIST_LEN {
            return Err(too_long("sites", new.sites.len(), MAX_LIST_LEN));
        }
        if new.team.len() > MAX_LIST_LEN {
            return Err(too_long("team", new.team.len(), MAX_LIST_LEN));
        }
        for site in &new.sites {
            validate_site(site, &new.trust)?;
        }
        validate_dates(new.visit_start, new.visit_end, stamp.at.date_naive())?;
        for m in &new.team {
            check_required("team member", &m.user)?;
            check_short("team member", &m.user)?;
            check_short("team member name", &m.name)?;
        }
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(automerge::ROOT, "schema_version", SCHEMA_VERSION)?;
        doc.put(automerge::ROOT, "id", new.id.to_string())?;
        let meta = doc.put_object(automerge::ROOT, META, ObjType::Map)?;
        doc.put(&meta, "trust", new.trust.as_str())?;
        doc.put(&meta, "sites", to_json(&new.sites))?;
        let pin = doc.put_object(&meta, "checklist", ObjType::Map)?;
        doc.put(&pin, "id", checklist.pin.id.as_str())?;
        doc.put(&pin, "version", checklist.pin.version.as_str())?;
        doc.put(&pin, "sha256", checklist.pin.sha256.as_str())?;
        let team = doc.put_object(&meta, "team", ObjType::Map)?;
        for m in &new.team {
            doc.put(&team, m.user.as_str(), to_json(m))?;
        }
        doc.put(&meta, "created", to_json(stamp))?;
        doc.put(&meta, "dates", to_json(&(new.visit_start, new.visit_end)))?;
        doc.put(&meta, "state", to_json(&stamped(State::Draft, stamp)))?;
        if let Some(org) = &new.org {
            doc.put(&meta, "org", to_json(org))?;
        }
        let responses = doc.put_object(automerge::ROOT, RESPONSES, ObjType::Map)?;
        for (section, item) in checklist.items() {
            // Only the sections that apply to the trust: an acute trust's inspection
            // holds no ambulance section, and nobody but the server adds one later.
            if section.scope != Scope::Inspection || !section.applies(new.org.as_ref()) {
                continue;
            }
            let r = doc.put_object(&responses, item.id.as_str(), ObjType::Map)?;
            doc.put_object(&r, "note", ObjType::Text)?;
            doc.put_object(&r, "photos", ObjType::Map)?;
        }
        for key in [DEVICES, FINDINGS, COMMENTS, SIGNOFFS] {
            doc.put_object(automerge::ROOT, key, ObjType::Map)?;
        }
        let mut insp = Inspection {
            doc,
            checklist,
            writer: None,
        };
        insp.commit("create", stamp);
        Ok(insp)
    }

    /// Loads a saved document (snapshot or concatenated changes) and checks it pins
    /// `checklist`.
    pub fn load(bytes: &[u8], checklist: Arc<Checklist>, actor: ActorId) -> Result<Self> {
        let doc = AutoCommit::load(bytes)?.with_actor(actor);
        Self::from_doc(doc, checklist)
    }

    /// Wraps a document loaded elsewhere (the store), checking its schema and pin.
    pub fn from_doc(doc: AutoCommit, checklist: Arc<Checklist>) -> Result<Self> {
        let insp = Inspection {
            doc,
            checklist,
            writer: None,
        };
        let version = insp.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(InspectionError::UnsupportedSchema(version));
        }
        let pin = insp.pin()?;
        if pin != insp.checklist.pin {
            return Err(InspectionError::ChecklistMismatch {
                doc: Box::new(pin),
                given: Box::new(insp.checklist.pin.clone()),
            });
        }
        Ok(insp)
    }

    /// Reads a document held elsewhere (the server's live copy) as an inspection, without
    /// copying it: `doc` is lent to the inspection for `f` and given back.
    pub fn read_in<R>(
        doc: &mut AutoCommit,
        checklist: Arc<Checklist>,
        f: impl FnOnce(&Inspection) -> R,
    ) -> Result<R> {
        let insp = Inspection {
            doc: std::mem::take(doc),
            checklist,
            writer: None,
        };
        let checked = insp.schema_version().and_then(|v| {
            if v > SCHEMA_VERSION {
                return Err(InspectionError::UnsupportedSchema(v));
            }
            let pin = insp.pin()?;
            if pin != insp.checklist.pin {
                return Err(InspectionError::ChecklistMismatch {
                    doc: Box::new(pin),
                    given: Box::new(insp.checklist.pin.clone()),
                });
            }
            Ok(())
        });
        let out = checked.map(|()| f(&insp));
        *doc = insp.doc;
        out
    }

    /// The checklist pin recorded in a saved document, read without a checklist, so
    /// the caller can find the right one before calling [`Inspection::load`].
    pub fn pin_of(bytes: &[u8]) -> Result<ChecklistPin> {
        let doc = AutoCommit::load(bytes)?;
        read_pin(&doc)
    }

    /// The checklist pin of a document already loaded (as [`Inspection::pin_of`] does
    /// for saved bytes), to find its checklist before [`Inspection::from_doc`].
    pub fn pin_of_doc(doc: &AutoCommit) -> Result<ChecklistPin> {
        read_pin(doc)
    }

    /// Every photo hash any item refers to, sorted, without repeats: without building
    /// the view.
    pub fn photo_hashes(&self) -> Result<Vec<String>> {
        Ok(index_facts(&self.doc)?.photos)
    }

    pub fn checklist(&self) -> &Arc<Checklist> {
        &self.checklist
    }

    pub fn id(&self) -> Result<Uuid> {
        let s = get_str(&self.doc, &automerge::ROOT, "id")?;
        s.parse()
            .map_err(|_| malformed(format!("inspection id {s:?} is not a UUID")))
    }

    /// Holds every further operation to the write policy for `writer` ([`crate::policy`]):
    /// an operation the writer may not make is refused before it changes anything.
    pub fn set_writer(&mut self, writer: Writer) {
        self.writer = Some(writer);
    }

    pub fn writer(&self) -> Option<&Writer> {
        self.writer.as_ref()
    }

    /// Makes further changes on `actor` (each author writes on actors bound to them).
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    /// The comments of a document from before review documents, which kept them here;
    /// read only to move them out ([`crate::review`]).
    pub fn legacy_comments(&self) -> Result<Vec<Comment>> {
        let mut c: Vec<Comment> = self.json_values(COMMENTS)?;
        c.sort_by_key(|c| (c.at, c.id));
        Ok(c)
    }

    /// Removes the comments kept in a document from before review documents (after they
    /// were copied into its review document).
    pub fn remove_legacy_comments(&mut self, stamp: &Stamp) -> Result<usize> {
        let obj = self.object(&automerge::ROOT, COMMENTS)?;
        let keys: Vec<String> = self.doc.keys(&obj).collect();
        for k in &keys {
            self.doc.delete(&obj, k.as_str())?;
        }
        if !keys.is_empty() {
            self.commit("move_comments", stamp);
        }
        Ok(keys.len())
    }

    /// The document, to read (e.g. for the write policy's checks).
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    // ----- operations -----

    /// Sets the answer to an inspection-scope item.
    pub fn set_answer(&mut self, item: &str, answer: Answer, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Answer, stamp)?;
        self.check_answer(item, &answer, Scope::Inspection)?;
        let r = self.response(item)?;
        self.doc
            .put(&r, "answer", to_json(&stamped(answer, stamp)))?;
        self.commit("set_answer", stamp);
        Ok(())
    }

    /// Replaces an item's note; the edit is a text diff, so concurrent edits merge.
    pub fn edit_note(&mut self, item: &str, text: &str, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Note, stamp)?;
        self.inspection_item(item)?;
        check_text("note", text)?;
        let r = self.response(item)?;
        let note = self.object(&r, "note")?;
        self.doc.update_text(&note, text)?;
        self.doc.put(&r, "note_edited", to_json(stamp))?;
        self.commit("edit_note", stamp);
        Ok(())
    }

    /// Attaches a photo (already in the blob store) to an item.
    pub fn attach_photo(&mut self, item: &str, photo: PhotoRef, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Photo, stamp)?;
        self.inspection_item(item)?;
        validate_hash(&photo.hash)?;
        check_short("caption", &photo.caption)?;
        check_short("mime type", &photo.mime)?;
        let r = self.response(item)?;
        let photos = self.object(&r, "photos")?;
        let key = photo.hash.clone();
        self.doc
            .put(&photos, key.as_str(), to_json(&stamped(photo, stamp)))?;
        self.commit("attach_photo", stamp);
        Ok(())
    }

    pub fn detach_photo(&mut self, item: &str, hash: &str, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Photo, stamp)?;
        self.inspection_item(item)?;
        let r = self.response(item)?;
        let photos = self.object(&r, "photos")?;
        if self.doc.get(&photos, hash)?.is_none() {
            return Err(InspectionError::UnknownPhoto {
                item: item.to_owned(),
                hash: hash.to_owned(),
            });
        }
        self.doc.delete(&photos, hash)?;
        self.commit("detach_photo", stamp);
        Ok(())
    }

    /// Adds a sampled device.
    pub fn add_device(
        &mut self,
        id: Uuid,
        hostname: &str,
        build_seen: &str,
        stamp: &Stamp,
    ) -> Result<()> {
        self.begin(Part::Device, stamp)?;
        check_required("hostname", hostname)?;
        check_short("hostname", hostname)?;
        check_short("build seen", build_seen)?;
        let devices = self.object(&automerge::ROOT, DEVICES)?;
        let key = id.to_string();
        if self.doc.get(&devices, key.as_str())?.is_some() {
            return Err(InspectionError::Duplicate("device", id));
        }
        let d = self.doc.put_object(&devices, key.as_str(), ObjType::Map)?;
        self.doc.put(
            &d,
            "hostname",
            to_json(&stamped(hostname.to_owned(), stamp)),
        )?;
        self.doc.put(
            &d,
            "build_seen",
            to_json(&stamped(build_seen.to_owned(), stamp)),
        )?;
        self.doc.put(&d, "added", to_json(stamp))?;
        self.doc.put_object(&d, "observations", ObjType::Map)?;
        self.commit("add_device", stamp);
        Ok(())
    }

    /// Corrects a sampled device's hostname or the build seen on its screen.
    pub fn edit_device(
        &mut self,
        id: Uuid,
        hostname: Option<&str>,
        build_seen: Option<&str>,
        stamp: &Stamp,
    ) -> Result<()> {
        self.begin(Part::Device, stamp)?;
        let d = self.device(id)?;
        if let Some(h) = hostname {
            check_required("hostname", h)?;
            check_short("hostname", h)?;
            self.doc
                .put(&d, "hostname", to_json(&stamped(h.to_owned(), stamp)))?;
        }
        if let Some(b) = build_seen {
            check_short("build seen", b)?;
            self.doc
                .put(&d, "build_seen", to_json(&stamped(b.to_owned(), stamp)))?;
        }
        self.commit("edit_device", stamp);
        Ok(())
    }

    /// Records what was seen on a sampled device for one device-scope check.
    pub fn record_observation(
        &mut self,
        device: Uuid,
        item: &str,
        observation: Observation,
        stamp: &Stamp,
    ) -> Result<()> {
        self.begin(Part::Device, stamp)?;
        self.check_answer(item, &observation.answer, Scope::Device)?;
        check_short("observation note", &observation.note)?;
        let d = self.device(device)?;
        let obs = self.object(&d, "observations")?;
        self.doc
            .put(&obs, item, to_json(&stamped(observation, stamp)))?;
        self.commit("record_observation", stamp);
        Ok(())
    }

    pub fn add_finding(&mut self, new: NewFinding, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Finding, stamp)?;
        check_text("finding text", &new.text)?;
        check_required("finding text", &new.text)?;
        check_text("recommendation", &new.recommendation)?;
        for item in &new.items {
            self.any_item(item)?;
        }
        let findings = self.object(&automerge::ROOT, FINDINGS)?;
        let key = new.id.to_string();
        if self.doc.get(&findings, key.as_str())?.is_some() {
            return Err(InspectionError::Duplicate("finding", new.id));
        }
        let f = self.doc.put_object(&findings, key.as_str(), ObjType::Map)?;
        self.doc
            .put(&f, "severity", to_json(&stamped(new.severity, stamp)))?;
        let text = self.doc.put_object(&f, "text", ObjType::Text)?;
        self.doc.update_text(&text, &new.text)?;
        let rec = self.doc.put_object(&f, "recommendation", ObjType::Text)?;
        self.doc.update_text(&rec, &new.recommendation)?;
        let items = self.doc.put_object(&f, "items", ObjType::Map)?;
        for item in &new.items {
            self.doc.put(&items, item.as_str(), to_json(stamp))?;
        }
        self.doc.put(&f, "created", to_json(stamp))?;
        self.doc.put(&f, "edited", to_json(stamp))?;
        self.commit("add_finding", stamp);
        Ok(())
    }

    pub fn edit_finding(&mut self, id: Uuid, edit: FindingEdit, stamp: &Stamp) -> Result<()> {
        self.begin(Part::Finding, stamp)?;
        let f = self.finding(id)?;
        if let Some(text) = &edit.text {
            check_text("finding text", text)?;
            check_required("finding text", text)?;
        }
        if let Some(rec) = &edit.recommendation {
            check_text("recommendation", rec)?;
        }
        for item in edit.link.iter().chain(&edit.unlink) {
            self.any_item(item)?;
        }
        if let Some(sev) = edit.severity {
            self.doc
                .put(&f, "severity", to_json(&stamped(sev, stamp)))?;
        }
        if let Some(text) = &edit.text {
            let t = self.object(&f, "text")?;
            self.doc.update_text(&t, text)?;
        }
        if let Some(rec) = &edit.recommendation {
            let t = self.object(&f, "recommendation")?;
            self.doc.update_text(&t, rec)?;
        }
        let items = self.object(&f, "items")?;
        for item in &edit.link {
            self.doc.put(&items, item.as_str(), to_json(stamp))?;
        }
        for item in &edit.unlink {
            if self.doc.get(&items, item.as_str())?.is_some() {
                self.doc.delete(&items, item.as_str())?;
            }
        }
        self.doc.put(&f, "edited", to_json(stamp))?;
        self.commit("edit_finding", stamp);
        Ok(())
    }

    /// Moves the inspection through its life; see [`State::can_become`].
    pub fn change_state(&mut self, to: State, stamp: &Stamp) -> Result<()> {
        let from = self.state()?.current().value;
        if !from.can_become(to) {
            return Err(InspectionError::IllegalTransition { from, to });
        }
        self.begin(Part::State, stamp)?;
        if let Some(w) = &self.writer {
            policy::permits_move(w.role, from, to)?;
        }
        let meta = self.object(&automerge::ROOT, META)?;
        self.doc.put(&meta, "state", to_json(&stamped(to, stamp)))?;
        self.commit("change_state", stamp);
        Ok(())
    }

    /// Moves a planned visit to new dates: the server's change (the visit's dates are the
    /// server's, like its trust and team), made for a reviewer or admin who reschedules.
    /// Only while the inspection is a draft (its visit not begun); the dates are checked
    /// as at creation ([`validate_dates`]).
    pub fn reschedule(
        &mut self,
        start: NaiveDate,
        end: Option<NaiveDate>,
        stamp: &Stamp,
    ) -> Result<()> {
        if self.state()?.current().value != State::Draft {
            return Err(InspectionError::WrongState("rescheduling", State::Draft));
        }
        self.begin(Part::Meta, stamp)?;
        validate_dates(Some(start), end, stamp.at.date_naive())?;
        let meta = self.object(&automerge::ROOT, META)?;
        self.doc.put(&meta, "dates", to_json(&(Some(start), end)))?;
        self.commit("reschedule", stamp);
        Ok(())
    }

    /// Calls a planned visit off: the server's move from draft to cancelled, made for a
    /// reviewer or admin. Nothing in a cancelled inspection changes after.
    pub fn cancel(&mut self, stamp: &Stamp) -> Result<()> {
        if self.state()?.current().value != State::Draft {
            return Err(InspectionError::WrongState("cancelling", State::Draft));
        }
        self.change_state(State::Cancelled, stamp)
    }

    /// Signs off a submitted inspection: a link of the sign-off chain ([`crate::seal`])
    /// that pins the document's heads and the SHA-256 of the signed content. The lead
    /// inspector's sign-off freezes answers, notes, photos, devices and findings; the
    /// reviewer signs after it. Refused while a signed field holds concurrent values.
    pub fn sign_off(
        &mut self,
        id: Uuid,
        role: SignoffRole,
        statement: &str,
        stamp: &Stamp,
    ) -> Result<()> {
        let state = self.state()?.current().value;
        if state != State::Submitted {
            return Err(InspectionError::WrongState("signing off", State::Submitted));
        }
        self.begin(Part::Signoff, stamp)?;
        if let Some(w) = &self.writer
            && policy::signoff_role(w.role) != Some(role)
        {
            return Err(Refusal {
                code: policy::Code::Forbidden,
                message: format!("a {} may not sign off as {role:?}", w.role.label()),
            }
            .into());
        }
        check_required("sign-off statement", statement)?;
        check_text("sign-off statement", statement)?;
        let seal = self.chain()?.seal();
        policy::may_link(role, LinkKind::SignOff, &seal)?;
        let view = self.view()?;
        if let Some(c) = view.conflicts.iter().find(|c| **c != FieldRef::State) {
            return Err(Refusal {
                code: policy::Code::Malformed,
                message: format!(
                    "{c:?} holds values made at the same time: pick one before signing"
                ),
            }
            .into());
        }
        self.link(id, role, LinkKind::SignOff, statement, stamp, &view, seal)?;
        self.commit("sign_off", stamp);
        Ok(())
    }

    /// Reopens a signed inspection, as a reviewer, for `reason`: a link of the chain and
    /// the move back to in progress, in one change. A new sign-off is then needed.
    pub fn reopen(&mut self, id: Uuid, reason: &str, stamp: &Stamp) -> Result<()> {
        let state = self.state()?.current().value;
        if state != State::Submitted {
            return Err(InspectionError::WrongState("reopening", State::Submitted));
        }
        self.begin(Part::Signoff, stamp)?;
        if let Some(w) = &self.writer {
            policy::permits_move(w.role, State::Submitted, State::InProgress)?;
        }
        check_required("reason for reopening", reason)?;
        check_text("reason for reopening", reason)?;
        let seal = self.chain()?.seal();
        policy::may_link(SignoffRole::Reviewer, LinkKind::Reopen, &seal)?;
        let view = self.view()?;
        self.link(
            id,
            SignoffRole::Reviewer,
            LinkKind::Reopen,
            reason,
            stamp,
            &view,
            seal,
        )?;
        let meta = self.object(&automerge::ROOT, META)?;
        self.doc
            .put(&meta, "state", to_json(&stamped(State::InProgress, stamp)))?;
        self.commit("reopen", stamp);
        Ok(())
    }

    /// Every value the fields of `subject` held, oldest first ([`crate::history`]).
    pub fn history(
        &mut self,
        subject: &crate::history::Subject,
        max: usize,
    ) -> (Vec<crate::history::Entry>, bool) {
        crate::history::of(&mut self.doc, subject, max)
    }

    /// The sign-offs and reopenings, in chain order ([`crate::seal::Chain`]).
    pub fn chain(&self) -> Result<crate::seal::Chain> {
        Ok(crate::seal::Chain::from_links(self.json_values(SIGNOFFS)?))
    }

    /// Writes one link of the chain (uncommitted).
    #[allow(clippy::too_many_arguments)] // the link's own fields
    fn link(
        &mut self,
        id: Uuid,
        role: SignoffRole,
        kind: LinkKind,
        statement: &str,
        stamp: &Stamp,
        view: &InspectionView,
        seal: crate::seal::Seal,
    ) -> Result<Signoff> {
        let signoffs = self.object(&automerge::ROOT, SIGNOFFS)?;
        let key = id.to_string();
        if self.doc.get(&signoffs, key.as_str())?.is_some() {
            return Err(InspectionError::Duplicate("sign-off", id));
        }
        let mut heads: Vec<String> = self.doc.get_heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        let s = Signoff {
            id,
            role,
            kind,
            statement: statement.to_owned(),
            by: stamp.by.clone(),
            at: stamp.at,
            heads,
            content: Some(crate::seal::content_hash(view)),
            prev: seal.tip,
            hash: None,
        };
        self.doc.put(&signoffs, key.as_str(), to_json(&s))?;
        Ok(s)
    }

    /// Resolves a conflict by picking one of the field's values (by its candidate id).
    /// The picked value keeps its author and time, and records who picked it.
    pub fn resolve(&mut self, field: &FieldRef, candidate: &str, stamp: &Stamp) -> Result<()> {
        let part = match field {
            FieldRef::State => Part::State,
            FieldRef::Answer { .. } => Part::Answer,
            FieldRef::DeviceHostname { .. }
            | FieldRef::DeviceBuild { .. }
            | FieldRef::Observation { .. } => Part::Device,
            FieldRef::FindingSeverity { .. } => Part::Finding,
        };
        if *field != FieldRef::State || self.writer.is_some() {
            self.begin(part, stamp)?;
        }
        let (obj, key) = self.field_location(field)?;
        let values = self.doc.get_all(&obj, key.as_str())?;
        let picked = values
            .iter()
            .find(|(_, id)| id.to_string() == candidate)
            .map(|(v, _)| scalar_str(v))
            .ok_or_else(|| InspectionError::UnknownCandidate {
                field: format!("{field:?}"),
                candidate: candidate.to_owned(),
            })?
            .ok_or_else(|| malformed(format!("{field:?} holds a non-text value")))?;
        let mut json: serde_json::Value =
            serde_json::from_str(&picked).map_err(|e| malformed(format!("{field:?}: {e}")))?;
        // Picking a state is a move from where the inspection stands, unless it stays.
        if *field == FieldRef::State
            && let Some(w) = &self.writer
        {
            let current = self.state()?.current().value;
            let to: State = serde_json::from_value(json["value"].clone())
                .map_err(|e| malformed(format!("the state picked: {e}")))?;
            if to != current {
                policy::permits_move(w.role, current, to)?;
            }
        }
        json["resolved"] = serde_json::to_value(stamp).expect("a stamp serialises");
        self.doc.put(&obj, key.as_str(), json.to_string())?;
        self.commit("resolve", stamp);
        Ok(())
    }

    // ----- reads -----

    /// The whole inspection as typed values.
    pub fn view(&self) -> Result<InspectionView> {
        let doc = &self.doc;
        let root = automerge::ROOT;
        let meta = self.object(&root, META)?;
        let dates: (Option<NaiveDate>, Option<NaiveDate>) =
            from_json(&get_str(doc, &meta, "dates")?)?;
        let team_obj = self.object(&meta, "team")?;
        let mut team = Vec::new();
        for key in doc.keys(&team_obj) {
            team.push(from_json(&get_str(doc, &team_obj, &key)?)?);
        }
        let meta_view = MetaView {
            trust: get_str(doc, &meta, "trust")?,
            sites: from_json(&get_str(doc, &meta, "sites")?)?,
            checklist: self.pin()?,
            team,
            created: from_json(&get_str(doc, &meta, "created")?)?,
            visit_start: dates.0,
            visit_end: dates.1,
            state: self.state()?,
            org: match doc.get(&meta, "org")? {
                Some((v, _)) => Some(from_json(&scalar_str(&v).unwrap_or_default())?),
                None => None,
            },
        };
        let mut conflicts = Vec::new();
        if meta_view.state.is_conflict() {
            conflicts.push(FieldRef::State);
        }

        let responses_obj = self.object(&root, RESPONSES)?;
        let mut responses = BTreeMap::new();
        for key in doc.keys(&responses_obj) {
            let r = self.object(&responses_obj, &key)?;
            let answer = read_field::<Answer>(doc, &r, "answer")?;
            if answer.as_ref().is_some_and(Field::is_conflict) {
                conflicts.push(FieldRef::Answer { item: key.clone() });
            }
            let note_obj = self.object(&r, "note")?;
            let photos_obj = self.object(&r, "photos")?;
            let mut photos = Vec::new();
            for h in doc.keys(&photos_obj) {
                photos.push(from_json(&get_str(doc, &photos_obj, &h)?)?);
            }
            let note_edited = match doc.get(&r, "note_edited")? {
                Some((v, _)) => Some(from_json(&scalar_str(&v).unwrap_or_default())?),
                None => None,
            };
            responses.insert(
                key,
                ResponseView {
                    answer,
                    note: doc.text(&note_obj)?,
                    note_edited,
                    photos,
                },
            );
        }

        let devices_obj = self.object(&root, DEVICES)?;
        let mut devices = Vec::new();
        for key in doc.keys(&devices_obj) {
            let id = parse_uuid(&key)?;
            let d = self.object(&devices_obj, &key)?;
            let hostname = required_field::<String>(doc, &d, "hostname")?;
            let build_seen = required_field::<String>(doc, &d, "build_seen")?;
            if hostname.is_conflict() {
                conflicts.push(FieldRef::DeviceHostname { device: id });
            }
            if build_seen.is_conflict() {
                conflicts.push(FieldRef::DeviceBuild { device: id });
            }
            let obs_obj = self.object(&d, "observations")?;
            let mut observations = BTreeMap::new();
            for item in doc.keys(&obs_obj) {
                let f = required_field::<Observation>(doc, &obs_obj, &item)?;
                if f.is_conflict() {
                    conflicts.push(FieldRef::Observation {
                        device: id,
                        item: item.clone(),
                    });
                }
                observations.insert(item, f);
            }
            devices.push(DeviceView {
                id,
                hostname,
                build_seen,
                added: from_json(&get_str(doc, &d, "added")?)?,
                observations,
            });
        }
        devices.sort_by_key(|d| (d.added.at, d.id));

        let findings_obj = self.object(&root, FINDINGS)?;
        let mut findings = Vec::new();
        for key in doc.keys(&findings_obj) {
            let id = parse_uuid(&key)?;
            let f = self.object(&findings_obj, &key)?;
            let severity = required_field::<Severity>(doc, &f, "severity")?;
            if severity.is_conflict() {
                conflicts.push(FieldRef::FindingSeverity { finding: id });
            }
            let items_obj = self.object(&f, "items")?;
            findings.push(FindingView {
                id,
                severity,
                text: doc.text(self.object(&f, "text")?)?,
                recommendation: doc.text(self.object(&f, "recommendation")?)?,
                items: doc.keys(&items_obj).collect(),
                created: from_json(&get_str(doc, &f, "created")?)?,
                edited: from_json(&get_str(doc, &f, "edited")?)?,
            });
        }
        findings.sort_by_key(|f| (f.created.at, f.id));

        let chain = crate::seal::Chain::from_links(self.json_values(SIGNOFFS)?);
        let frozen = chain.seal().frozen;
        let mut signoffs = chain.unsealed;
        signoffs.extend(chain.links);

        let progress = self
            .checklist
            .sections
            .iter()
            .filter(|s| s.scope == Scope::Inspection && s.applies(meta_view.org.as_ref()))
            .map(|s| SectionProgress {
                section: s.id.clone(),
                total: s.items.len(),
                answered: s
                    .items
                    .iter()
                    .filter(|i| responses.get(&i.id).is_some_and(|r| r.answer.is_some()))
                    .count(),
            })
            .collect();

        Ok(InspectionView {
            id: self.id()?,
            schema_version: self.schema_version()?,
            meta: meta_view,
            responses,
            devices,
            findings,
            // Comments live in the review document: whoever builds a view for someone
            // who may read them adds them (`crate::review`).
            comments: Vec::new(),
            signoffs,
            frozen,
            progress,
            conflicts,
        })
    }

    /// The inspection's state, with any concurrent values.
    pub fn state(&self) -> Result<Field<State>> {
        read_state(&self.doc)
    }

    // ----- storage and sync -----

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// A compacted snapshot of the whole document.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Every change not already covered by `heads`, as change chunks.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// How many changes of the document are not ancestors of `heads` (e.g. the heads a
    /// sync peer is known to hold: what that peer has not acknowledged yet). Heads this
    /// document does not hold are ignored.
    pub fn changes_after(&mut self, heads: &[ChangeHash]) -> usize {
        let known: Vec<ChangeHash> = heads
            .iter()
            .filter(|h| self.doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        self.doc.get_changes_meta(&known).len()
    }

    /// Whether the document holds the change with this hash.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// Merges every change of `other` into this document.
    pub fn merge(&mut self, other: &mut Inspection) -> Result<Vec<ChangeHash>> {
        Ok(self.doc.merge(&mut other.doc)?)
    }

    /// Applies changes saved by [`Inspection::save_after`] on another replica.
    pub fn apply_changes(&mut self, bytes: &[u8]) -> Result<()> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    /// The next sync protocol message for a peer, if there is anything to say.
    pub fn generate_sync_message(&mut self, peer: &mut sync::State) -> Option<sync::Message> {
        self.doc.sync().generate_sync_message(peer)
    }

    pub fn receive_sync_message(
        &mut self,
        peer: &mut sync::State,
        message: sync::Message,
    ) -> Result<()> {
        self.doc.sync().receive_sync_message(peer, message)?;
        Ok(())
    }

    // ----- internals -----

    fn commit(&mut self, op: &str, stamp: &Stamp) -> Option<ChangeHash> {
        let message = serde_json::json!({ "op": op, "by": stamp.by }).to_string();
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(stamp.at.timestamp()),
        )
    }

    fn schema_version(&self) -> Result<u64> {
        match self.doc.get(automerge::ROOT, "schema_version")? {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Uint(v) => Ok(*v),
                ScalarValue::Int(v) if *v >= 0 => Ok(*v as u64),
                _ => Err(malformed("schema_version is not a number")),
            },
            _ => Err(malformed("schema_version is missing")),
        }
    }

    /// Moves a version 1 document to the current schema before its first write.
    fn upgrade_schema(&mut self) -> Result<()> {
        if self.schema_version()? < SCHEMA_VERSION {
            self.doc
                .put(automerge::ROOT, "schema_version", SCHEMA_VERSION)?;
        }
        Ok(())
    }

    fn pin(&self) -> Result<ChecklistPin> {
        read_pin(&self.doc)
    }

    /// Asks the write policy whether the writer may change `part` now (with no writer
    /// set, only refuses a closed inspection), then upgrades an old schema.
    fn begin(&mut self, part: Part, stamp: &Stamp) -> Result<()> {
        let state = self.state()?.current().value;
        match &self.writer {
            Some(w) => {
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
                let frozen = policy::FROZEN.contains(&part) && self.chain()?.seal().frozen;
                policy::permits_sealed(w.role, part, state, frozen)?;
            }
            None if state.is_final() => return Err(InspectionError::Closed),
            None => {
                if policy::FROZEN.contains(&part) && self.chain()?.seal().frozen {
                    return Err(policy::frozen(part).into());
                }
            }
        }
        self.upgrade_schema()
    }

    fn object(&self, parent: &ObjId, key: &str) -> Result<ObjId> {
        object(&self.doc, parent, key)
    }

    fn response(&self, item: &str) -> Result<ObjId> {
        let responses = self.object(&automerge::ROOT, RESPONSES)?;
        self.object(&responses, item)
    }

    fn device(&self, id: Uuid) -> Result<ObjId> {
        let devices = self.object(&automerge::ROOT, DEVICES)?;
        match self.doc.get(&devices, id.to_string())? {
            Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
            _ => Err(InspectionError::UnknownDevice(id)),
        }
    }

    fn finding(&self, id: Uuid) -> Result<ObjId> {
        let findings = self.object(&automerge::ROOT, FINDINGS)?;
        match self.doc.get(&findings, id.to_string())? {
            Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
            _ => Err(InspectionError::UnknownFinding(id)),
        }
    }

    fn any_item(&self, item: &str) -> Result<&crate::checklist::Item> {
        self.checklist
            .item(item)
            .map(|(_, i)| i)
            .ok_or_else(|| InspectionError::UnknownItem(item.to_owned()))
    }

    fn inspection_item(&self, item: &str) -> Result<&crate::checklist::Item> {
        let (section, i) = self
            .checklist
            .item(item)
            .ok_or_else(|| InspectionError::UnknownItem(item.to_owned()))?;
        if section.scope != Scope::Inspection {
            return Err(InspectionError::WrongScope {
                item: item.to_owned(),
                scope: section.scope,
            });
        }
        Ok(i)
    }

    /// Checks an answer fits the item's kind and scope.
    fn check_answer(&self, item: &str, answer: &Answer, scope: Scope) -> Result<()> {
        check_answer_against(&self.checklist, item, answer, scope)
    }

    fn field_location(&self, field: &FieldRef) -> Result<(ObjId, String)> {
        Ok(match field {
            FieldRef::State => (self.object(&automerge::ROOT, META)?, "state".into()),
            FieldRef::Answer { item } => {
                self.inspection_item(item)?;
                (self.response(item)?, "answer".into())
            }
            FieldRef::DeviceHostname { device } => (self.device(*device)?, "hostname".into()),
            FieldRef::DeviceBuild { device } => (self.device(*device)?, "build_seen".into()),
            FieldRef::Observation { device, item } => {
                let d = self.device(*device)?;
                (self.object(&d, "observations")?, item.clone())
            }
            FieldRef::FindingSeverity { finding } => (self.finding(*finding)?, "severity".into()),
        })
    }

    fn json_values<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let obj = self.object(&automerge::ROOT, key)?;
        self.doc
            .keys(&obj)
            .map(|k| from_json(&get_str(&self.doc, &obj, &k)?))
            .collect()
    }
}

/// Checks an answer fits the item's kind and scope in `checklist` (used by the typed
/// operations and by the write policy on received changes).
pub fn check_answer_against(
    checklist: &Checklist,
    item: &str,
    answer: &Answer,
    scope: Scope,
) -> Result<()> {
    let (section, def) = checklist
        .item(item)
        .ok_or_else(|| InspectionError::UnknownItem(item.to_owned()))?;
    if section.scope != scope {
        return Err(InspectionError::WrongScope {
            item: item.to_owned(),
            scope: section.scope,
        });
    }
    let wrong = |expected| InspectionError::WrongAnswerKind {
        item: item.to_owned(),
        expected,
        got: answer.kind_name(),
    };
    match (answer, &def.answer) {
        (Answer::NotApplicable { reason }, _) => {
            if reason.trim().is_empty() {
                return Err(InspectionError::MissingReason(item.to_owned()));
            }
            check_short("reason", reason)?;
        }
        (Answer::Met | Answer::PartlyMet | Answer::NotMet, AnswerKind::Compliance) => {}
        (Answer::Number { value }, AnswerKind::Number { min, max, .. }) => {
            let below = min.is_some_and(|m| *value < m);
            let above = max.is_some_and(|m| *value > m);
            if !value.is_finite() || below || above {
                return Err(InspectionError::OutOfRange {
                    item: item.to_owned(),
                    value: *value,
                    min: *min,
                    max: *max,
                });
            }
        }
        (Answer::Date { .. }, AnswerKind::Date) => {}
        (Answer::Text { value }, AnswerKind::Text) => {
            check_required("text answer", value)?;
            check_text("text answer", value)?;
        }
        (_, AnswerKind::Compliance) => return Err(wrong("met, partly met or not met")),
        (_, AnswerKind::Number { .. }) => return Err(wrong("a number")),
        (_, AnswerKind::Date) => return Err(wrong("a date")),
        (_, AnswerKind::Text) => return Err(wrong("text")),
    }
    Ok(())
}

fn read_state(doc: &AutoCommit) -> Result<Field<State>> {
    let meta = object(doc, &automerge::ROOT, META)?;
    read_candidates(doc, &meta, "state", |s| {
        // Version 1 kept the bare state name, with no author or time.
        match serde_json::from_str::<Stamped<State>>(s) {
            Ok(st) => Ok(st),
            Err(_) => Ok(Stamped {
                value: from_json(&serde_json::Value::String(s.to_owned()).to_string())?,
                by: String::new(),
                at: DateTime::<Utc>::UNIX_EPOCH,
                resolved: None,
            }),
        }
    })?
    .ok_or_else(|| malformed("meta.state is missing"))
}

/// The state an inspection document shows now (Automerge's pick where states conflict),
/// read without the checklist.
pub fn current_state(doc: &AutoCommit) -> Result<State> {
    Ok(read_state(doc)?.current().value)
}

/// What a server indexes about an inspection document, read without building the
/// whole view (which costs far more on every received change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFacts {
    /// The current state (Automerge's pick where states conflict).
    pub state: State,
    /// Every photo hash any item refers to, sorted, without repeats.
    pub photos: Vec<String>,
}

/// Reads [`IndexFacts`] from an inspection document.
pub fn index_facts(doc: &AutoCommit) -> Result<IndexFacts> {
    let state = read_state(doc)?.current().value;
    let responses = object(doc, &automerge::ROOT, RESPONSES)?;
    let mut photos = Vec::new();
    for item in doc.keys(&responses) {
        let r = object(doc, &responses, &item)?;
        let p = object(doc, &r, "photos")?;
        photos.extend(doc.keys(&p));
    }
    photos.sort();
    photos.dedup();
    Ok(IndexFacts { state, photos })
}

fn read_pin(doc: &AutoCommit) -> Result<ChecklistPin> {
    let meta = object(doc, &automerge::ROOT, META)?;
    let pin = object(doc, &meta, "checklist")?;
    Ok(ChecklistPin {
        id: get_str(doc, &pin, "id")?,
        version: get_str(doc, &pin, "version")?,
        sha256: get_str(doc, &pin, "sha256")?,
    })
}

fn object(doc: &AutoCommit, parent: &ObjId, key: &str) -> Result<ObjId> {
    match doc.get(parent, key)? {
        Some((Value::Object(_), obj)) => Ok(obj),
        _ => Err(malformed(format!("object {key:?} is missing"))),
    }
}

fn get_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String> {
    match doc.get(obj, key)? {
        Some((v, _)) => scalar_str(&v).ok_or_else(|| malformed(format!("{key:?} is not text"))),
        None => Err(malformed(format!("{key:?} is missing"))),
    }
}

fn scalar_str(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        Value::Object(_) => None,
    }
}

/// Every concurrent value of a stamped field, winner first.
fn read_field<T: DeserializeOwned>(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
) -> Result<Option<Field<T>>> {
    read_candidates(doc, obj, key, from_json)
}

fn read_candidates<T>(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
    parse: impl Fn(&str) -> Result<Stamped<T>>,
) -> Result<Option<Field<T>>> {
    let values = doc.get_all(obj, key)?;
    if values.is_empty() {
        return Ok(None);
    }
    let winner = doc.get(obj, key)?.map(|(_, id)| id.to_string());
    let mut out = Vec::with_capacity(values.len());
    for (v, id) in values {
        let s = scalar_str(&v).ok_or_else(|| malformed(format!("{key:?} is not text")))?;
        out.push(Candidate {
            id: id.to_string(),
            value: parse(&s)?,
        });
    }
    // The value `get` returns (Automerge's deterministic pick) goes first.
    if let Some(pos) = winner.and_then(|w| out.iter().position(|c| c.id == w)) {
        out.swap(0, pos);
    }
    Ok(Some(Field { values: out }))
}

fn required_field<T: DeserializeOwned>(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
) -> Result<Field<T>> {
    read_field(doc, obj, key)?.ok_or_else(|| malformed(format!("{key:?} is missing")))
}

fn stamped<T>(value: T, stamp: &Stamp) -> Stamped<T> {
    Stamped {
        value,
        by: stamp.by.clone(),
        at: stamp.at,
        resolved: None,
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("document values serialise to JSON")
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| malformed(format!("bad value {s:?}: {e}")))
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    s.parse()
        .map_err(|_| malformed(format!("key {s:?} is not a UUID")))
}

fn malformed(msg: impl Into<String>) -> InspectionError {
    InspectionError::Malformed(msg.into())
}

fn too_long(field: &'static str, len: usize, max: usize) -> InspectionError {
    InspectionError::TooLong { field, len, max }
}

fn check_short(field: &'static str, s: &str) -> Result<()> {
    let len = s.chars().count();
    if len > MAX_SHORT_CHARS {
        return Err(too_long(field, len, MAX_SHORT_CHARS));
    }
    Ok(())
}

fn check_required(field: &'static str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(InspectionError::Empty(field));
    }
    Ok(())
}

fn check_text(field: &'static str, s: &str) -> Result<()> {
    let len = s.chars().count();
    if len > MAX_TEXT_CHARS {
        return Err(too_long(field, len, MAX_TEXT_CHARS));
    }
    Ok(())
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// Longest visit, first day to last: an on-site inspection lasts days, not months.
pub const MAX_VISIT_DAYS: i64 = 31;

/// How far before `today` a visit's first day may be (a visit recorded after the fact),
/// and how far after (planned ahead), in days.
pub const VISIT_DAYS_BEFORE: i64 = 366;
pub const VISIT_DAYS_AHEAD: i64 = 731;

/// A visit's dates: none, a first day alone, or a first and last day in order,
/// [`MAX_VISIT_DAYS`] in all at most; the first day within a year before `today` and two
/// years after.
pub fn validate_dates(
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<()> {
    if let Some(s) = start {
        if (today - s).num_days() > VISIT_DAYS_BEFORE {
            return Err(InspectionError::InvalidDates(format!(
                "the first day ({s}) is more than {VISIT_DAYS_BEFORE} days ago"
            )));
        }
        if (s - today).num_days() > VISIT_DAYS_AHEAD {
            return Err(InspectionError::InvalidDates(format!(
                "the first day ({s}) is more than {VISIT_DAYS_AHEAD} days ahead"
            )));
        }
    }
    match (start, end) {
        (None, Some(_)) => Err(InspectionError::InvalidDates(
            "a last day needs a first day".into(),
        )),
        (Some(s), Some(e)) if e < s => Err(InspectionError::InvalidDates(format!(
            "the last day ({e}) is before the first ({s})"
        ))),
        (Some(s), Some(e)) if (e - s).num_days() + 1 > MAX_VISIT_DAYS => {
            Err(InspectionError::InvalidDates(format!(
                "a visit lasts at most {MAX_VISIT_DAYS} days, not {} ({s} to {e})",
                (e - s).num_days() + 1
            )))
        }
        _ => Ok(()),
    }
}

/// A trust's ODS code: 3 characters, upper-case letters or digits, starting with a
/// letter (e.g. `RJ1`, `RRU`).
pub fn validate_trust(code: &str) -> Result<()> {
    let ok = code.len() == 3
        && code.chars().all(is_code_char)
        && code.starts_with(|c: char| c.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(InspectionError::InvalidOdsCode(code.to_owned()))
    }
}

/// A site code: the trust's 3-character code followed by 2 more (e.g. `RJ121`).
pub fn validate_site(site: &str, trust: &str) -> Result<()> {
    if site.len() != 5 || !site.chars().all(is_code_char) {
        return Err(InspectionError::InvalidOdsCode(site.to_owned()));
    }
    if !site.starts_with(trust) {
        return Err(InspectionError::SiteNotInTrust {
            site: site.to_owned(),
            trust: trust.to_owned(),
        });
    }
    Ok(())
}

fn validate_hash(h: &str) -> Result<()> {
    if h.len() == 64
        && h.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        Ok(())
    } else {
        Err(InspectionError::InvalidPhotoHash(h.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visit_dates_are_in_order_and_at_most_a_month() {
        let d = |s: &str| Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let today = d("2026-12-07").unwrap();
        let ok = |s, e| validate_dates(s, e, today).is_ok();
        assert!(ok(None, None));
        assert!(ok(d("2027-01-11"), None), "a first day alone");
        assert!(ok(d("2027-01-11"), d("2027-01-11")), "one day");
        assert!(ok(d("2027-01-01"), d("2027-01-31")), "31 days");
        assert!(ok(d("2026-01-01"), None), "recorded after the visit");
        for (s, e) in [
            (d("2027-01-13"), d("2027-01-11")),
            (d("2027-01-01"), d("2027-02-01")),
            (None, d("2027-01-11")),
            (d("2025-12-01"), None),
            (d("9999-01-01"), None),
            (d("0001-01-01"), None),
        ] {
            let err = validate_dates(s, e, today).unwrap_err();
            assert!(matches!(err, InspectionError::InvalidDates(_)), "{err}");
        }
    }
    use crate::checklist::{Item, OrgType, References, Section};
    use chrono::TimeZone;

    fn checklist() -> Arc<Checklist> {
        Arc::new(Checklist {
            id: "t".into(),
            version: "1".into(),
            title: "t".into(),
            applies_to: vec![OrgType::Acute],
            sections: vec![Section {
                id: "s".into(),
                title: "s".into(),
                source: "t".into(),
                scope: Scope::Inspection,
                applies_to: Vec::new(),
                major_trauma_centre: false,
                items: vec![Item {
                    id: "a".into(),
                    prompt: "p".into(),
                    guidance: "g".into(),
                    observe: None,
                    answer: AnswerKind::Compliance,
                    evidence: vec![],
                    refs: References::default(),
                    severity: Severity::Low,
                    telemetry: None,
                    judge: None,
                }],
            }],
            pin: ChecklistPin {
                id: "t".into(),
                version: "1".into(),
                sha256: "0".repeat(64),
            },
        })
    }

    fn stamp(secs: i64) -> Stamp {
        Stamp::new("ann", Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap())
    }

    fn fresh() -> Inspection {
        let new = NewInspection {
            id: Uuid::from_u128(1),
            trust: "RJ1".into(),
            sites: vec![],
            team: vec![],
            visit_start: None,
            visit_end: None,
            org: None,
        };
        Inspection::create(new, checklist(), ActorId::random(), &stamp(0)).unwrap()
    }

    #[test]
    fn every_change_records_its_author_operation_and_time() {
        let mut insp = fresh();
        insp.set_answer("a", Answer::Met, &stamp(5)).unwrap();
        let change = insp.doc.get_last_local_change().unwrap();
        let msg: serde_json::Value = serde_json::from_str(change.message().unwrap()).unwrap();
        assert_eq!(msg, serde_json::json!({"op": "set_answer", "by": "ann"}));
        assert_eq!(change.timestamp(), stamp(5).at.timestamp());
    }

    #[test]
    fn a_version_1_document_is_read_and_upgraded_on_first_write() {
        let mut insp = fresh();
        // Rewrite into the version 1 shape: a bare state name, version 1.
        let meta = insp.object(&automerge::ROOT, META).unwrap();
        insp.doc.put(&meta, "state", "in_progress").unwrap();
        insp.doc
            .put(automerge::ROOT, "schema_version", 1_u64)
            .unwrap();
        insp.doc.commit();
        let bytes = insp.save();

        let mut old = Inspection::load(&bytes, checklist(), ActorId::random()).unwrap();
        let v = old.view().unwrap();
        assert_eq!(v.schema_version, 1);
        assert_eq!(v.meta.state.current().value, State::InProgress);
        old.set_answer("a", Answer::Met, &stamp(9)).unwrap();
        assert_eq!(old.view().unwrap().schema_version, SCHEMA_VERSION);
        old.change_state(State::Submitted, &stamp(10)).unwrap();
        assert_eq!(old.state().unwrap().current().by, "ann");
    }

    #[test]
    fn a_newer_schema_is_refused_rather_than_misread() {
        let mut insp = fresh();
        insp.doc
            .put(automerge::ROOT, "schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        let bytes = insp.save();
        let e = Inspection::load(&bytes, checklist(), ActorId::random()).unwrap_err();
        assert!(matches!(e, InspectionError::UnsupportedSchema(v) if v == SCHEMA_VERSION + 1));
    }
}
