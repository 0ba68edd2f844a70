//! The write policy: who may change which part of a document, in which states, and what
//! the stamps of a change must say.
//!
//! One table ([`rule`]) decides, for each writer [`Role`] and each [`Part`] of the three
//! kinds of document, in which states of the inspection a change is allowed. It is used
//! twice, so that the two can never disagree:
//!
//! - core's typed operations ask it ([`permits`]) before they change anything, once a
//!   writer is set ([`crate::inspection::Inspection::set_writer`]): an honest client never
//!   makes a forbidden change;
//! - [`check_change`] takes one Automerge change made anywhere (a raw client may have
//!   written anything), works out what each of its operations touches from the
//!   document's shape, and holds every one to the same table, to the schema (the kinds
//!   of value and object each place holds), and to the rule that every stamp names the
//!   change's author. The server runs it on every change it receives, before storing or
//!   forwarding it.
//!
//! The author of a change is not what the change says: it is the user the change's
//! Automerge actor is bound to (the server binds each device's actors at sign-in). The
//! caller works that out and passes it in as the [`Writer`].
//!
//! # What a change may look like
//! Every place in a document holds one kind of thing, and an operation anywhere else, or
//! of another kind, is refused as `malformed`:
//!
//! - stamped fields hold JSON in a string scalar (`{value, by, at}`); `by` must be the
//!   author, except in a value picked to resolve a conflict, which keeps its author and
//!   must be one of the values the field held, with `resolved.by` the author;
//! - notes and finding texts are Automerge text, changed by inserting and deleting
//!   characters, never replaced;
//! - maps are made only where the schema makes them (a sampled device, a finding), with a
//!   UUID for a key, never over something that exists;
//! - nothing is deleted but a photo from an item and an item from a finding's links (and
//!   a comment's release);
//! - counters, lists, tables and marks are never used.
//!
//! The inspection's state used for a change is the one the document held just before it
//! (the server's current state, not the author's view), so an offline edit cannot reach
//! past a submission.

use std::collections::{BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checklist::{Checklist, Scope, Severity};
use crate::inspection::{
    Answer, Comment, CommentTarget, LinkKind, MAX_SHORT_CHARS, MAX_TEXT_CHARS, Observation,
    PhotoRef, SCHEMA_VERSION, Signoff, SignoffRole, Stamp, Stamped, State, check_answer_against,
};
use crate::response::AccuracyComment;
use crate::seal::{Seal, is_hash as is_sha256};

/// Longest string scalar any place holds, in bytes: the longest JSON value is a comment
/// or a text answer of [`MAX_TEXT_CHARS`] characters (at most 4 bytes each) with its
/// stamp. Past this a value is refused before it is parsed.
pub const MAX_VALUE_BYTES: usize = 4 * MAX_TEXT_CHARS + 4096;

/// Which of an inspection's documents a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// The inspection itself: what the inspectors found.
    Inspection,
    /// The trust's response document: written by the trust lead.
    TrustResponse,
    /// Internal comments between inspectors and reviewers, and which are released to the
    /// trust: never read by the trust lead.
    Review,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Inspection => "inspection",
            DocKind::TrustResponse => "trust_response",
            DocKind::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        [DocKind::Inspection, DocKind::TrustResponse, DocKind::Review]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Who makes a change, as the server's record knows them for one inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The inspector the inspection's team names as its lead.
    LeadInspector,
    /// An inspector assigned to the inspection.
    Inspector,
    /// An NHS Digital reviewer.
    Reviewer,
    /// The lead of the inspection's trust, once the inspection is shared with the trust.
    TrustLead,
    /// An administrator: users, devices and checklists, no document.
    Admin,
    /// The server itself, creating and migrating documents. Never a user.
    Server,
}

impl Role {
    /// The roles a user can hold, as the tables list them.
    pub const USERS: [Role; 5] = [
        Role::LeadInspector,
        Role::Inspector,
        Role::Reviewer,
        Role::TrustLead,
        Role::Admin,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Role::LeadInspector => "lead inspector",
            Role::Inspector => "inspector",
            Role::Reviewer => "reviewer",
            Role::TrustLead => "trust lead",
            Role::Admin => "admin",
            Role::Server => "the server",
        }
    }
}

/// The author of a change: the user, and their role on this inspection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Writer {
    pub user: String,
    pub role: Role,
}

impl Writer {
    pub fn new(user: impl Into<String>, role: Role) -> Self {
        Writer {
            user: user.into(),
            role,
        }
    }
}

/// A part of a document, as the policy table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The document's skeleton: its id, its maps and the slots made at creation.
    Shape,
    /// Trust, sites, checklist pin, team, visit dates and the creation stamp: facts the
    /// server's record holds, copied in when the document is made.
    Meta,
    /// `schema_version`, moved up to the current version on a first write.
    Schema,
    /// The inspection's state.
    State,
    /// Answers to checklist items.
    Answer,
    /// Item notes.
    Note,
    /// Photos attached to items (references to the photo store).
    Photo,
    /// Sampled devices and what was observed on them.
    Device,
    Finding,
    /// Sign-offs: the lead inspector's and the reviewer's.
    Signoff,
    /// Comments kept in the inspection document before review documents existed: moved
    /// out when a data folder is migrated, and never written again.
    LegacyComment,
    /// Trust response document: the trust's response to each finding.
    Response,
    /// Trust response document: factual-accuracy comments.
    Accuracy,
    /// Review document: comments between inspectors and reviewers.
    Comment,
    /// Review document: marking a comment for the trust to read.
    Release,
}

impl Part {
    /// Every part, with the document it lives in, in the order the tables list them.
    pub const ALL: [(DocKind, Part); 15] = [
        (DocKind::Inspection, Part::Shape),
        (DocKind::Inspection, Part::Meta),
        (DocKind::Inspection, Part::Schema),
        (DocKind::Inspection, Part::State),
        (DocKind::Inspection, Part::Answer),
        (DocKind::Inspection, Part::Note),
        (DocKind::Inspection, Part::Photo),
        (DocKind::Inspection, Part::Device),
        (DocKind::Inspection, Part::Finding),
        (DocKind::Inspection, Part::Signoff),
        (DocKind::Inspection, Part::LegacyComment),
        (DocKind::TrustResponse, Part::Response),
        (DocKind::TrustResponse, Part::Accuracy),
        (DocKind::Review, Part::Comment),
        (DocKind::Review, Part::Release),
    ];

    pub fn label(self) -> &'static str {
        match self {
            Part::Shape => "document shape",
            Part::Meta => "meta",
            Part::Schema => "schema version",
            Part::State => "state",
            Part::Answer => "answers",
            Part::Note => "notes",
            Part::Photo => "photos",
            Part::Device => "devices and observations",
            Part::Finding => "findings",
            Part::Signoff => "sign-offs",
            Part::LegacyComment => "comments (old documents)",
            Part::Response => "responses to findings",
            Part::Accuracy => "factual-accuracy comments",
            Part::Comment => "comments",
            Part::Release => "release to the trust",
        }
    }
}

/// In which states a role may change a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Never.
    Never,
    /// While the inspection is in one of these states.
    In(&'static [State]),
    /// The state itself: these moves, and picking between concurrent states (unless closed).
    Moves(&'static [(State, State)]),
    /// Always: the server's own changes.
    Always,
}

const OPEN: &[State] = &[State::Draft, State::InProgress];
const NOT_CLOSED: &[State] = &[
    State::Draft,
    State::InProgress,
    State::Submitted,
    State::SharedWithTrust,
];
const SUBMITTED: &[State] = &[State::Submitted];
const INSPECTOR_MOVES: &[(State, State)] = &[
    (State::Draft, State::InProgress),
    (State::InProgress, State::Submitted),
];
const REVIEWER_MOVES: &[(State, State)] = &[
    (State::Submitted, State::InProgress),
    (State::Submitted, State::SharedWithTrust),
    (State::SharedWithTrust, State::Closed),
];

/// The table: in which states `role` may change `part`. A closed inspection takes no
/// change from anyone. Source of `docs/ACCESS.md`'s write policy (see [`table_markdown`]).
pub fn rule(role: Role, part: Part) -> Rule {
    use Part::*;
    use Role::*;
    match (role, part) {
        (Server, _) => Rule::Always,
        (_, Shape | Meta | LegacyComment) => Rule::Never,
        (LeadInspector | Inspector | Reviewer, Schema) => Rule::In(NOT_CLOSED),
        (LeadInspector | Inspector, State) => Rule::Moves(INSPECTOR_MOVES),
        (Reviewer, State) => Rule::Moves(REVIEWER_MOVES),
        (LeadInspector | Inspector, Answer | Note | Photo | Device | Finding) => Rule::In(OPEN),
        (Reviewer, Finding) => Rule::In(NOT_CLOSED),
        // Each signs as what they are: the lead inspector's sign-off and the reviewer's.
        (LeadInspector | Reviewer, Signoff) => Rule::In(SUBMITTED),
        (TrustLead, Response | Accuracy) => Rule::In(NOT_CLOSED),
        (LeadInspector | Inspector | Reviewer, Comment) => Rule::In(NOT_CLOSED),
        (Reviewer, Release) => Rule::In(NOT_CLOSED),
        _ => Rule::Never,
    }
}

/// The parts a standing lead inspector's sign-off freezes, for everyone ([`crate::seal`]).
pub const FROZEN: [Part; 5] = [
    Part::Answer,
    Part::Note,
    Part::Photo,
    Part::Device,
    Part::Finding,
];

/// [`permits`], where the sign-off chain stands: a part a standing sign-off froze is
/// refused as frozen to every role that may otherwise change it.
pub fn permits_sealed(
    role: Role,
    part: Part,
    state: State,
    frozen_now: bool,
) -> Result<(), Refusal> {
    if frozen_now && FROZEN.contains(&part) && matches!(rule(role, part), Rule::In(_)) {
        return Err(frozen(part));
    }
    permits(role, part, state)
}

/// The refusal of a change to a frozen part.
pub fn frozen(part: Part) -> Refusal {
    refuse(
        Code::Frozen,
        format!(
            "the inspection is signed off: its {} are frozen until a reviewer reopens it",
            part.label()
        ),
    )
}

/// Whether a link of `kind` by `role` may follow where the chain stands: the lead
/// inspector signs what is not signed; the reviewer signs once after the lead inspector,
/// or reopens what the lead inspector signed.
pub fn may_link(role: SignoffRole, kind: LinkKind, seal: &Seal) -> Result<(), Refusal> {
    let why = match (kind, role) {
        (LinkKind::SignOff, SignoffRole::LeadInspector) if seal.frozen => {
            "the lead inspector has signed it already; a reviewer reopens it before it is signed again"
        }
        (LinkKind::SignOff, SignoffRole::Reviewer) if !seal.frozen => {
            "the reviewer signs off after the lead inspector"
        }
        (LinkKind::SignOff, SignoffRole::Reviewer) if seal.reviewer_signed => {
            "a reviewer has signed it already"
        }
        (LinkKind::Reopen, SignoffRole::LeadInspector) => "only a reviewer reopens an inspection",
        (LinkKind::Reopen, _) if !seal.frozen => "only a signed inspection is reopened",
        _ => return Ok(()),
    };
    Err(refuse(Code::WrongState, why))
}

/// The sign-off a role makes, if it makes one.
pub fn signoff_role(role: Role) -> Option<SignoffRole> {
    match role {
        Role::LeadInspector => Some(SignoffRole::LeadInspector),
        Role::Reviewer => Some(SignoffRole::Reviewer),
        _ => None,
    }
}

/// Why a change was refused: a stable code and a message naming what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

/// The stable codes of a refusal, as a client sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The author's role may never change this part.
    Forbidden,
    /// Not in the inspection's current state.
    WrongState,
    /// A move of the state the author's role may not make.
    IllegalTransition,
    /// A stamp names someone other than the author.
    ForgedAuthor,
    /// Not the shape the document has: an unknown key, a wrong kind of value or object,
    /// a deletion, an unreadable value.
    Malformed,
    /// A text over its limit.
    TooLong,
    /// A photo the author neither uploaded nor could already read.
    UnearnedPhoto,
    /// A part a standing sign-off froze, or a sign-off that does not pin what it signs.
    Frozen,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Forbidden => "forbidden",
            Code::WrongState => "wrong_state",
            Code::IllegalTransition => "illegal_transition",
            Code::ForgedAuthor => "forged_author",
            Code::Malformed => "malformed_change",
            Code::TooLong => "too_long",
            Code::UnearnedPhoto => "unearned_photo",
            Code::Frozen => "frozen",
        }
    }
}

fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    refuse(Code::Malformed, message)
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Draft => "draft",
        State::InProgress => "in progress",
        State::Submitted => "submitted",
        State::SharedWithTrust => "shared with the trust",
        State::Closed => "closed",
        State::Cancelled => "cancelled",
    }
}

/// Whether `role` may change `part` while the inspection is in `state`.
pub fn permits(role: Role, part: Part, state: State) -> Result<(), Refusal> {
    let wrong_state = || {
        refuse(
            Code::WrongState,
            format!(
                "{} cannot change while the inspection is {}",
                part.label(),
                state_name(state)
            ),
        )
    };
    match rule(role, part) {
        Rule::Always => Ok(()),
        Rule::Never => Err(refuse(
            Code::Forbidden,
            format!("a {} may not change {}", role.label(), part.label()),
        )),
        Rule::In(states) if states.contains(&state) => Ok(()),
        Rule::In(_) => Err(wrong_state()),
        // A closed or cancelled inspection takes no state change, not even the pick of
        // the value it holds.
        Rule::Moves(_) if state.is_final() => Err(wrong_state()),
        Rule::Moves(_) => Ok(()),
    }
}

/// Whether `role` may move the inspection from `from` to `to`.
pub fn permits_move(role: Role, from: State, to: State) -> Result<(), Refusal> {
    let ok = match rule(role, Part::State) {
        Rule::Always => from.can_become(to),
        Rule::Moves(moves) => moves.contains(&(from, to)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(refuse(
            Code::IllegalTransition,
            format!(
                "a {} may not move an inspection from {} to {}",
                role.label(),
                state_name(from),
                state_name(to)
            ),
        ))
    }
}

/// The write policy as a Markdown table: one row per part, one column per role.
pub fn table_markdown() -> String {
    let mut out = String::from("| document | part |");
    for r in Role::USERS {
        out.push_str(&format!(" {} |", r.label()));
    }
    out.push_str("\n|---|---|");
    for _ in Role::USERS {
        out.push_str("---|");
    }
    out.push('\n');
    for (kind, part) in Part::ALL {
        out.push_str(&format!("| {} | {} |", kind.as_str(), part.label()));
        for role in Role::USERS {
            let cell = match rule(role, part) {
                Rule::Never => "-".to_owned(),
                Rule::Always => "always".to_owned(),
                Rule::In(states) if states == NOT_CLOSED => "until closed".to_owned(),
                Rule::In(states) => states
                    .iter()
                    .map(|s| state_name(*s))
                    .collect::<Vec<_>>()
                    .join(", "),
                Rule::Moves(moves) => moves
                    .iter()
                    .map(|(a, b)| format!("{} → {}", state_name(*a), state_name(*b)))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let cell = if part == Part::Signoff && cell != "-" {
                format!("{cell} (as {})", role.label())
            } else {
                cell
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

// ----- checking one change -----

/// What [`check_change`] needs besides the change.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub kind: DocKind,
    /// The checklist the inspection pins (answers, observations and links are checked
    /// against it).
    pub checklist: Option<&'a Checklist>,
    /// The inspection's state just before the change.
    pub state: State,
    /// Whether the author may refer to the photo with this hash: they uploaded it, or
    /// could already read it.
    pub earned: &'a dyn Fn(&str) -> bool,
    /// Where the sign-off chain stood just before the change.
    pub seal: &'a Seal,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("kind", &self.kind)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What an accepted change touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub parts: BTreeSet<Part>,
    /// The state the change put, if it put one.
    pub state: Option<State>,
    /// The sign-off or reopening the change added, if it added one: the caller checks its
    /// content hash against the document at its heads ([`crate::seal`]).
    pub link: Option<Signoff>,
}

/// Checks one change against the policy, for `writer`.
///
/// `doc` already holds the change (and everything before it); `before` are the heads
/// just before it, for what fields held before (the values a conflict is resolved
/// between, the state a move starts from). Every operation is checked; the first that
/// fails refuses the whole change.
pub fn check_change<D: ReadDoc>(
    doc: &D,
    before: &[ChangeHash],
    change: &Change,
    writer: &Writer,
    ctx: &Context<'_>,
) -> Result<Checked, Refusal> {
    if let Some(by) = change
        .message()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| v.get("by").and_then(|b| b.as_str().map(str::to_owned)))
        && by != writer.user
    {
        return Err(refuse(
            Code::ForgedAuthor,
            format!(
                "the change says it is by {by:?}, but its author is {:?}",
                writer.user
            ),
        ));
    }
    let mut c = Checker {
        doc,
        before,
        writer,
        ctx,
        paths: HashMap::new(),
        local: HashMap::new(),
        texts: BTreeSet::new(),
        releases: Vec::new(),
        deps: change.deps().to_vec(),
        out: Checked::default(),
    };
    let expanded = change.decode();
    let start = expanded.start_op.get();
    let actor = expanded.actor_id.clone();
    for (i, op) in expanded.operations.iter().enumerate() {
        let id = (start + i as u64, actor.clone());
        c.op(id, op)?;
    }
    c.finish()?;
    Ok(c.out)
}

struct Checker<'a, D> {
    doc: &'a D,
    before: &'a [ChangeHash],
    writer: &'a Writer,
    ctx: &'a Context<'a>,
    /// Paths of objects already in the document.
    paths: HashMap<(u64, ActorId), (Vec<String>, ObjType)>,
    /// Objects this change makes.
    local: HashMap<(u64, ActorId), (Vec<String>, ObjType)>,
    /// Text objects changed, checked for length at the end.
    texts: BTreeSet<(u64, Vec<u8>)>,
    /// Comments released, which must exist at the end.
    releases: Vec<String>,
    /// The change's dependencies: a sign-off's heads must be these.
    deps: Vec<ChangeHash>,
    out: Checked,
}

fn exid(id: &OpId) -> ObjId {
    ObjId::Id(id.counter(), id.actor().clone(), 0)
}

/// Whether `obj.key` holds exactly one value in the document as it will be (the change's
/// own, which the caller checks): nothing written concurrently beside it.
fn alone<D: ReadDoc>(doc: &D, obj: &ObjectId, key: &str, at: &str) -> Result<(), Refusal> {
    let o = match obj {
        ObjectId::Root => automerge::ROOT,
        ObjectId::Id(id) => exid(id),
    };
    let n = doc.get_all(&o, key).map_err(|e| bad(e.to_string()))?.len();
    if n > 1 {
        return Err(bad(format!(
            "{at} already holds a value, which this would stand beside"
        )));
    }
    Ok(())
}

impl<D: ReadDoc> Checker<'_, D> {
    fn object(&mut self, obj: &ObjectId) -> Result<(Vec<String>, ObjType), Refusal> {
        let id = match obj {
            ObjectId::Root => return Ok((Vec::new(), ObjType::Map)),
            ObjectId::Id(id) => id,
        };
        let key = (id.counter(), id.actor().clone());
        if let Some(found) = self.local.get(&key).or_else(|| self.paths.get(&key)) {
            return Ok(found.clone());
        }
        let ex = exid(id);
        let typ = self
            .doc
            .object_type(&ex)
            .map_err(|_| bad("an operation is on an object the document does not hold"))?;
        let mut path = Vec::new();
        for p in self
            .doc
            .parents(&ex)
            .map_err(|_| bad("an operation is on an object the document does not hold"))?
        {
            match p.prop {
                Prop::Map(k) => path.push(k),
                Prop::Seq(_) => return Err(bad("an operation is inside a list")),
            }
        }
        path.reverse();
        self.paths.insert(key, (path.clone(), typ));
        Ok((path, typ))
    }

    fn op(&mut self, id: (u64, ActorId), op: &automerge::legacy::Op) -> Result<(), Refusal> {
        let (path, typ) = self.object(&op.obj)?;
        match (&op.key, typ) {
            (Key::Map(k), ObjType::Map) => {
                let k = k.to_string();
                let target = classify(self.ctx.kind, &path, &k);
                self.map_op(target, &path, &k, op)?;
                if let OpType::Make(t) = op.action {
                    let mut p = path.clone();
                    p.push(k);
                    self.local.insert(id, (p, t));
                }
                Ok(())
            }
            (Key::Seq(_), ObjType::Text) => {
                let target = classify_text(self.ctx.kind, &path);
                self.text_op(target, &path, &op.obj, op)
            }
            _ => Err(bad(format!(
                "an operation on {} does not fit its object",
                shown(&path)
            ))),
        }
    }

    fn permit(&mut self, part: Part) -> Result<(), Refusal> {
        permits_sealed(self.writer.role, part, self.ctx.state, self.ctx.seal.frozen)?;
        self.out.parts.insert(part);
        Ok(())
    }

    fn text_op(
        &mut self,
        target: Target,
        path: &[String],
        obj: &ObjectId,
        op: &automerge::legacy::Op,
    ) -> Result<(), Refusal> {
        let part = match target {
            Target::NoteText => Part::Note,
            Target::FindingText => Part::Finding,
            _ => return Err(bad(format!("{} is not a text", shown(path)))),
        };
        self.permit(part)?;
        match &op.action {
            OpType::Put(ScalarValue::Str(s)) if s.len() <= 64 => {}
            OpType::Delete => {}
            _ => {
                return Err(bad(format!(
                    "{} takes inserted and deleted characters only",
                    shown(path)
                )));
            }
        }
        if let ObjectId::Id(id) = obj {
            self.texts
                .insert((id.counter(), id.actor().to_bytes().to_vec()));
        }
        Ok(())
    }

    fn map_op(
        &mut self,
        target: Target,
        path: &[String],
        key: &str,
        op: &automerge::legacy::Op,
    ) -> Result<(), Refusal> {
        let at = || {
            let mut p = path.to_vec();
            p.push(key.to_owned());
            shown(&p)
        };
        // Objects are made once, where the schema makes them, never over a value nor
        // beside one (a second object made concurrently at the same key would hide the
        // first, and everything in it, behind a conflict).
        let doc = self.doc;
        let alone = || alone(doc, &op.obj, key, &at());
        let make = |want: ObjType| -> Result<(), Refusal> {
            match op.action {
                OpType::Make(t) if t == want && op.pred.is_empty() => alone(),
                OpType::Make(_) if !op.pred.is_empty() => Err(bad(format!(
                    "{} already exists and is not made again",
                    at()
                ))),
                _ => Err(bad(format!("{} holds a {want:?}", at()))),
            }
        };
        // Comments, sign-offs and factual-accuracy comments are written once, by their
        // author, and never replaced: not over a value, nor beside one.
        let once = || -> Result<(), Refusal> {
            if op.pred.is_empty() {
                alone()
            } else {
                Err(bad(format!("{} is written once and never replaced", at())))
            }
        };
        match target {
            Target::Unknown | Target::NoteText | Target::FindingText => {
                Err(bad(format!("{} is not part of the document", at())))
            }
            Target::Server(part) => {
                self.permit(part)?;
                // Only the server gets here; its changes are its own.
                Ok(())
            }
            Target::Schema => {
                self.permit(Part::Schema)?;
                match op.action {
                    OpType::Put(ScalarValue::Uint(v)) if v == SCHEMA_VERSION => Ok(()),
                    OpType::Put(ScalarValue::Int(v)) if v == SCHEMA_VERSION as i64 => Ok(()),
                    _ => Err(bad(format!(
                        "schema_version may only be moved to {SCHEMA_VERSION}"
                    ))),
                }
            }
            Target::State => self.state(path, key, op),
            Target::Answer(item) => {
                self.permit(Part::Answer)?;
                let v: Stamped<Answer> = self.stamped(op, path, key, STAMPED)?;
                self.answer(&item, &v.value, Scope::Inspection)
            }
            Target::NoteEdited => {
                self.permit(Part::Note)?;
                self.stamp(op, &at())
            }
            Target::Photo(hash) => {
                self.permit(Part::Photo)?;
                if matches!(op.action, OpType::Delete) {
                    return Ok(());
                }
                let v: Stamped<PhotoRef> = self.stamped(op, path, key, STAMPED)?;
                if v.value.hash != hash || !is_hash(&hash) {
                    return Err(bad(format!(
                        "the photo at {} must be keyed by its SHA-256",
                        at()
                    )));
                }
                short("caption", &v.value.caption)?;
                short("mime type", &v.value.mime)?;
                if !(self.ctx.earned)(&hash) {
                    return Err(refuse(
                        Code::UnearnedPhoto,
                        format!(
                            "{} neither uploaded photo {hash} nor may read it",
                            self.writer.user
                        ),
                    ));
                }
                Ok(())
            }
            Target::DeviceMap(ref k) | Target::FindingMap(ref k) => {
                let part = if matches!(target, Target::DeviceMap(_)) {
                    Part::Device
                } else {
                    Part::Finding
                };
                self.permit(part)?;
                uuid_key(k, &at())?;
                make(ObjType::Map)
            }
            Target::DeviceText(field) => {
                self.permit(Part::Device)?;
                let v: Stamped<String> = self.stamped(op, path, key, STAMPED)?;
                short(field, &v.value)?;
                if field == "hostname" && v.value.trim().is_empty() {
                    return Err(bad("a sampled device's hostname must not be empty"));
                }
                Ok(())
            }
            Target::DeviceAdded => {
                self.permit(Part::Device)?;
                self.stamp(op, &at())
            }
            Target::Observations => {
                self.permit(Part::Device)?;
                make(ObjType::Map)
            }
            Target::Observation(item) => {
                self.permit(Part::Device)?;
                let v: Stamped<Observation> = self.stamped(op, path, key, STAMPED)?;
                short("observation note", &v.value.note)?;
                self.answer(&item, &v.value.answer, Scope::Device)
            }
            Target::Severity => {
                self.permit(Part::Finding)?;
                let _: Stamped<Severity> = self.stamped(op, path, key, STAMPED)?;
                Ok(())
            }
            Target::FindingTextMake => {
                self.permit(Part::Finding)?;
                make(ObjType::Text)
            }
            Target::FindingItems => {
                self.permit(Part::Finding)?;
                make(ObjType::Map)
            }
            Target::FindingItem(item) => {
                self.permit(Part::Finding)?;
                self.known_item(&item, "to link")?;
                if matches!(op.action, OpType::Delete) {
                    return Ok(());
                }
                self.stamp(op, &at())
            }
            Target::FindingStamp => {
                self.permit(Part::Finding)?;
                self.stamp(op, &at())
            }
            Target::Signoff(ref k) => {
                self.permit(Part::Signoff)?;
                once()?;
                let s: Signoff = self.json(
                    op,
                    &at(),
                    &[
                        "id",
                        "role",
                        "kind",
                        "statement",
                        "by",
                        "at",
                        "heads",
                        "content",
                        "prev",
                    ],
                )?;
                if s.id.to_string() != *k {
                    return Err(bad(format!("sign-off {} must be keyed by its id", at())));
                }
                self.by(&s.by, &at())?;
                if signoff_role(self.writer.role) != Some(s.role) {
                    return Err(refuse(
                        Code::Forbidden,
                        format!(
                            "a {} may not sign off as {:?}",
                            self.writer.role.label(),
                            s.role
                        ),
                    ));
                }
                text("sign-off statement", &s.statement, true)?;
                self.link(s)
            }
            Target::Response(ref k) => {
                self.permit(Part::Response)?;
                uuid_key(k, &at())?;
                let v: Stamped<String> = self.stamped(op, path, key, STAMPED)?;
                text("response", &v.value, true)
            }
            Target::Accuracy(ref k) => {
                self.permit(Part::Accuracy)?;
                once()?;
                let c: AccuracyComment =
                    self.json(op, &at(), &["id", "about", "text", "by", "at"])?;
                if c.id.to_string() != *k {
                    return Err(bad(format!("comment {} must be keyed by its id", at())));
                }
                self.by(&c.by, &at())?;
                text("comment", &c.text, true)?;
                text("about", &c.about, true)
            }
            Target::Comment(ref k) => {
                self.permit(Part::Comment)?;
                once()?;
                let c: Comment = self.json(op, &at(), &["id", "target", "text", "by", "at"])?;
                if c.id.to_string() != *k {
                    return Err(bad(format!("comment {} must be keyed by its id", at())));
                }
                self.by(&c.by, &at())?;
                if let CommentTarget::Item(item) = &c.target {
                    self.known_item(item, "to comment on")?;
                }
                text("comment", &c.text, true)
            }
            Target::Release(ref k) => {
                self.permit(Part::Release)?;
                uuid_key(k, &at())?;
                if matches!(op.action, OpType::Delete) {
                    return Ok(());
                }
                self.stamp(op, &at())?;
                self.releases.push(k.clone());
                Ok(())
            }
        }
    }

    /// A state change: a move the author's role may make from what it overwrites, or a
    /// pick between concurrent states.
    fn state(
        &mut self,
        path: &[String],
        key: &str,
        op: &automerge::legacy::Op,
    ) -> Result<(), Refusal> {
        self.permit(Part::State)?;
        let v: Stamped<State> = self.stamped(op, path, key, STAMPED)?;
        if self.out.state.is_some() && self.writer.role != Role::Server {
            // Two puts in one change would leave one of them standing beside the other
            // as a concurrent value, to be picked later without the move being checked.
            return Err(bad("a change moves the state once"));
        }
        self.out.state = Some(v.value);
        if self.writer.role == Role::Server {
            return Ok(());
        }
        if v.resolved.is_some() {
            // A pick between the values the field held (checked in `stamped`): a move
            // from where the inspection stands, unless it stays there.
            if self.ctx.state != v.value {
                permits_move(self.writer.role, self.ctx.state, v.value)?;
            }
            return Ok(());
        }
        // What the author saw: the states this one overwrites.
        let overwritten = self.before_values(path, key, Some(&op.pred))?;
        if overwritten.is_empty() {
            return Err(refuse(
                Code::IllegalTransition,
                "a state must replace the state it follows",
            ));
        }
        let current = self.ctx.state;
        for raw in overwritten {
            let from = read_state_value(&raw)?;
            permits_move(self.writer.role, from, v.value)?;
        }
        // And where the inspection stands now: the same move, or already there (two
        // inspectors who both submitted offline).
        if current != v.value {
            permits_move(self.writer.role, current, v.value)?;
        }
        Ok(())
    }

    /// A link of the sign-off chain: sealed, following the chain's last link, pinning the
    /// heads the change was made on, one per change, and allowed where the chain stands.
    /// Its content hash is checked by the caller, who has the document at its heads.
    fn link(&mut self, s: Signoff) -> Result<(), Refusal> {
        if self.writer.role == Role::Server {
            return Ok(());
        }
        if self.out.link.is_some() {
            return Err(bad("a change adds one sign-off at most"));
        }
        let mut deps: Vec<String> = self.deps.iter().map(ChangeHash::to_string).collect();
        deps.sort();
        let sealed = s.content.as_deref().is_some_and(is_sha256);
        if !sealed || s.heads != deps {
            return Err(refuse(
                Code::Frozen,
                "a sign-off records the document's heads (the change's dependencies) and \
                 the SHA-256 of what it signs",
            ));
        }
        if s.prev != self.ctx.seal.tip {
            return Err(refuse(
                Code::Frozen,
                format!(
                    "the sign-off follows {}, but the chain's last link is {}: sync and sign again",
                    s.prev.as_deref().unwrap_or("nothing"),
                    self.ctx.seal.tip.as_deref().unwrap_or("nothing")
                ),
            ));
        }
        may_link(s.role, s.kind, self.ctx.seal)?;
        self.out.link = Some(s);
        Ok(())
    }

    /// An item of the inspection's checklist (which must be at hand: a change naming
    /// items is never taken unchecked).
    fn known_item(&self, item: &str, what: &str) -> Result<(), Refusal> {
        match self.ctx.checklist {
            Some(c) if c.item(item).is_some() => Ok(()),
            Some(_) => Err(bad(format!("no checklist item {item:?} {what}"))),
            None => Err(bad(
                "the inspection's checklist is needed to check an item it names",
            )),
        }
    }

    fn answer(&self, item: &str, answer: &Answer, scope: Scope) -> Result<(), Refusal> {
        let Some(checklist) = self.ctx.checklist else {
            return Err(bad(
                "the inspection's checklist is needed to check an answer",
            ));
        };
        check_answer_against(checklist, item, answer, scope).map_err(|e| {
            let code = if matches!(e, crate::inspection::InspectionError::TooLong { .. }) {
                Code::TooLong
            } else {
                Code::Malformed
            };
            refuse(code, e.to_string())
        })
    }

    /// The string a put writes.
    fn put_str<'o>(&self, op: &'o automerge::legacy::Op, at: &str) -> Result<&'o str, Refusal> {
        match &op.action {
            OpType::Put(ScalarValue::Str(s)) if s.len() <= MAX_VALUE_BYTES => Ok(s.as_str()),
            OpType::Put(ScalarValue::Str(_)) => Err(refuse(
                Code::TooLong,
                format!("the value at {at} is over {MAX_VALUE_BYTES} bytes"),
            )),
            _ => Err(bad(format!("{at} holds a JSON value in a string"))),
        }
    }

    /// A JSON value with only `keys` at its top level.
    fn json<T: DeserializeOwned>(
        &self,
        op: &automerge::legacy::Op,
        at: &str,
        keys: &[&str],
    ) -> Result<T, Refusal> {
        let s = self.put_str(op, at)?;
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| bad(format!("the value at {at}: {e}")))?;
        let Some(obj) = v.as_object() else {
            return Err(bad(format!("the value at {at} is not a JSON object")));
        };
        if let Some(k) = obj.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(bad(format!("the value at {at} has an unknown field {k:?}")));
        }
        serde_json::from_value(v).map_err(|e| bad(format!("the value at {at}: {e}")))
    }

    fn by(&self, by: &str, at: &str) -> Result<(), Refusal> {
        if by == self.writer.user || self.writer.role == Role::Server {
            Ok(())
        } else {
            Err(refuse(
                Code::ForgedAuthor,
                format!(
                    "{at} says it is by {by:?}, but its author is {:?}",
                    self.writer.user
                ),
            ))
        }
    }

    /// A bare stamp `{by, at}` by the author.
    fn stamp(&self, op: &automerge::legacy::Op, at: &str) -> Result<(), Refusal> {
        let s: Stamp = self.json(op, at, &["by", "at"])?;
        self.by(&s.by, at)
    }

    /// A stamped value: by the author, or a pick of one of the values the field held
    /// (keeping its author) with the author as `resolved.by`.
    fn stamped<T: DeserializeOwned>(
        &self,
        op: &automerge::legacy::Op,
        path: &[String],
        key: &str,
        keys: &[&str],
    ) -> Result<Stamped<T>, Refusal> {
        let mut p = path.to_vec();
        p.push(key.to_owned());
        let at = shown(&p);
        let raw = self.put_str(op, &at)?;
        let v: Stamped<T> = self.json(op, &at, keys)?;
        match &v.resolved {
            None => self.by(&v.by, &at)?,
            Some(r) => {
                self.by(&r.by, &at)?;
                let mut picked: serde_json::Value =
                    serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
                strip_resolved(&mut picked);
                let held = self.before_values(path, key, None)?;
                let found = held.iter().any(|h| {
                    serde_json::from_str::<serde_json::Value>(h).is_ok_and(|mut h| {
                        strip_resolved(&mut h);
                        h == picked
                    })
                });
                if !found {
                    return Err(bad(format!(
                        "the value picked at {at} is not one the field held"
                    )));
                }
            }
        }
        Ok(v)
    }

    /// The string values `path.key` held just before the change (only those with ids in
    /// `among`, if given).
    fn before_values(
        &self,
        path: &[String],
        key: &str,
        among: Option<&automerge::legacy::SortedVec<OpId>>,
    ) -> Result<Vec<String>, Refusal> {
        let mut obj = automerge::ROOT;
        for k in path {
            match self.doc.get_at(&obj, k.as_str(), self.before) {
                Ok(Some((Value::Object(_), id))) => obj = id,
                _ => return Ok(Vec::new()),
            }
        }
        let all = self
            .doc
            .get_all_at(&obj, key, self.before)
            .map_err(|e| bad(e.to_string()))?;
        Ok(all
            .into_iter()
            .filter(|(_, id)| {
                among.is_none_or(|pred| {
                    pred.iter().any(|p| match id {
                        ObjId::Id(c, a, _) => *c == p.counter() && a == p.actor(),
                        ObjId::Root => false,
                    })
                })
            })
            .filter_map(|(v, _)| match v {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                Value::Object(_) => None,
            })
            .collect())
    }

    fn finish(&mut self) -> Result<(), Refusal> {
        // A reopening moves the inspection back to in progress in the same change, and a
        // signed inspection goes back to in progress only by a reopening (with a reason).
        if self.writer.role != Role::Server && self.ctx.kind == DocKind::Inspection {
            let reopens = self
                .out
                .link
                .as_ref()
                .is_some_and(|l| l.kind == LinkKind::Reopen);
            let back = self.out.state == Some(State::InProgress);
            if reopens && !back {
                return Err(bad(
                    "a reopening moves the inspection back to in progress in the same change",
                ));
            }
            if back && self.ctx.seal.frozen && !reopens {
                return Err(refuse(
                    Code::Frozen,
                    "the inspection is signed off: a reviewer reopens it, with a reason",
                ));
            }
        }
        // A sampled device or a finding is made whole in one change: every view reads
        // each field, so one made without them would leave the inspection unreadable.
        for (counter_actor, (path, _)) in &self.local {
            let required: &[(&str, Option<ObjType>)] = match path
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                [DEVICES, _] => &[
                    ("hostname", None),
                    ("build_seen", None),
                    ("added", None),
                    ("observations", Some(ObjType::Map)),
                ],
                [FINDINGS, _] => &[
                    ("severity", None),
                    ("text", Some(ObjType::Text)),
                    ("recommendation", Some(ObjType::Text)),
                    ("items", Some(ObjType::Map)),
                    ("created", None),
                    ("edited", None),
                ],
                _ => continue,
            };
            if self.ctx.kind != DocKind::Inspection {
                continue;
            }
            let obj = ObjId::Id(counter_actor.0, counter_actor.1.clone(), 0);
            for (key, want) in required {
                let found = self.doc.get(&obj, *key).map_err(|e| bad(e.to_string()))?;
                let fits = match (found, want) {
                    (Some((Value::Object(t), _)), Some(w)) => t == *w,
                    (Some((Value::Scalar(v), _)), None) => {
                        matches!(v.as_ref(), ScalarValue::Str(_))
                    }
                    _ => false,
                };
                if !fits {
                    return Err(bad(format!(
                        "{} is made without its {key}: a sampled device or a finding is made whole, in one change",
                        shown(path)
                    )));
                }
            }
        }
        for (counter, actor) in std::mem::take(&mut self.texts) {
            let obj = ObjId::Id(counter, ActorId::from(actor), 0);
            let len = self
                .doc
                .text(&obj)
                .map_err(|e| bad(e.to_string()))?
                .chars()
                .count();
            if len > MAX_TEXT_CHARS {
                return Err(refuse(
                    Code::TooLong,
                    format!(
                        "a text would be {len} characters, more than the {MAX_TEXT_CHARS} allowed"
                    ),
                ));
            }
        }
        if !self.releases.is_empty() {
            let comments = match self.doc.get(automerge::ROOT, "comments") {
                Ok(Some((Value::Object(_), id))) => id,
                _ => return Err(bad("the review document has no comments")),
            };
            for k in &self.releases {
                if !matches!(self.doc.get(&comments, k.as_str()), Ok(Some(_))) {
                    return Err(bad(format!("no comment {k} to release")));
                }
            }
        }
        Ok(())
    }
}

const STAMPED: &[&str] = &["value", "by", "at", "resolved"];
const DEVICES: &str = "devices";
const FINDINGS: &str = "findings";

fn strip_resolved(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("resolved");
    }
}

fn read_state_value(raw: &str) -> Result<State, Refusal> {
    // Version 1 documents kept a bare state name.
    serde_json::from_str::<Stamped<State>>(raw)
        .map(|s| s.value)
        .or_else(|_| serde_json::from_value(serde_json::Value::String(raw.to_owned())))
        .map_err(|_| bad(format!("the state {raw:?} is unreadable")))
}

fn is_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn uuid_key(k: &str, at: &str) -> Result<(), Refusal> {
    match k.parse::<Uuid>() {
        Ok(u) if u.to_string() == k => Ok(()),
        _ => Err(bad(format!("{at} must be keyed by a UUID"))),
    }
}

fn short(field: &str, s: &str) -> Result<(), Refusal> {
    let n = s.chars().count();
    if n > MAX_SHORT_CHARS {
        return Err(refuse(
            Code::TooLong,
            format!("{field} is {n} characters, more than the {MAX_SHORT_CHARS} allowed"),
        ));
    }
    Ok(())
}

fn text(field: &str, s: &str, required: bool) -> Result<(), Refusal> {
    if required && s.trim().is_empty() {
        return Err(bad(format!("{field} must not be empty")));
    }
    let n = s.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(refuse(
            Code::TooLong,
            format!("{field} is {n} characters, more than the {MAX_TEXT_CHARS} allowed"),
        ));
    }
    Ok(())
}

fn shown(path: &[String]) -> String {
    if path.is_empty() {
        "the document's root".into()
    } else {
        path.iter()
            .map(|p| {
                p.chars()
                    .filter(|c| !c.is_control())
                    .take(80)
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What a map key is, by where it sits in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Not a place the document has.
    Unknown,
    /// Made or written by the server only.
    Server(Part),
    Schema,
    State,
    Answer(String),
    NoteEdited,
    Photo(String),
    DeviceMap(String),
    DeviceText(&'static str),
    DeviceAdded,
    Observations,
    Observation(String),
    FindingMap(String),
    Severity,
    FindingTextMake,
    FindingText,
    NoteText,
    FindingItems,
    FindingItem(String),
    FindingStamp,
    Signoff(String),
    Response(String),
    Accuracy(String),
    Comment(String),
    Release(String),
}

fn classify(kind: DocKind, path: &[String], key: &str) -> Target {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match kind {
        DocKind::Inspection => match (p.as_slice(), key) {
            ([], "schema_version") => Target::Schema,
            ([], "id" | "meta" | "responses" | "devices" | "findings" | "signoffs") => {
                Target::Server(Part::Shape)
            }
            ([], "comments") => Target::Server(Part::LegacyComment),
            (["meta"], "state") => Target::State,
            (["meta", ..], _) => Target::Server(Part::Meta),
            (["responses"], _) => Target::Server(Part::Shape),
            (["responses", _], "answer") => Target::Answer(p[1].to_owned()),
            (["responses", _], "note" | "photos") => Target::Server(Part::Shape),
            (["responses", _], "note_edited") => Target::NoteEdited,
            (["responses", _, "photos"], h) => Target::Photo(h.to_owned()),
            (["devices"], k) => Target::DeviceMap(k.to_owned()),
            (["devices", _], "hostname") => Target::DeviceText("hostname"),
            (["devices", _], "build_seen") => Target::DeviceText("build seen"),
            (["devices", _], "added") => Target::DeviceAdded,
            (["devices", _], "observations") => Target::Observations,
            (["devices", _, "observations"], item) => Target::Observation(item.to_owned()),
            (["findings"], k) => Target::FindingMap(k.to_owned()),
            (["findings", _], "severity") => Target::Severity,
            (["findings", _], "text" | "recommendation") => Target::FindingTextMake,
            (["findings", _], "items") => Target::FindingItems,
            (["findings", _, "items"], item) => Target::FindingItem(item.to_owned()),
            (["findings", _], "created" | "edited") => Target::FindingStamp,
            (["comments"], _) => Target::Server(Part::LegacyComment),
            (["signoffs"], k) => Target::Signoff(k.to_owned()),
            _ => Target::Unknown,
        },
        DocKind::TrustResponse => match (p.as_slice(), key) {
            ([], "schema_version" | "inspection" | "findings" | "accuracy") => {
                Target::Server(Part::Shape)
            }
            (["findings"], k) => Target::Response(k.to_owned()),
            (["accuracy"], k) => Target::Accuracy(k.to_owned()),
            _ => Target::Unknown,
        },
        DocKind::Review => match (p.as_slice(), key) {
            ([], "schema_version" | "inspection" | "comments" | "released") => {
                Target::Server(Part::Shape)
            }
            (["comments"], k) => Target::Comment(k.to_owned()),
            (["released"], k) => Target::Release(k.to_owned()),
            _ => Target::Unknown,
        },
    }
}

fn classify_text(kind: DocKind, path: &[String]) -> Target {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, p.as_slice()) {
        (DocKind::Inspection, ["responses", _, "note"]) => Target::NoteText,
        (DocKind::Inspection, ["findings", _, "text" | "recommendation"]) => Target::FindingText,
        _ => Target::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_or_cancelled_inspection_takes_no_change_from_anyone_but_the_server() {
        for state in [State::Closed, State::Cancelled] {
            for role in Role::USERS {
                for (_, part) in Part::ALL {
                    assert!(
                        permits(role, part, state).is_err(),
                        "{role:?} may change {part:?} of a {state:?} inspection"
                    );
                }
                // No one but the server cancels, and nothing leaves `cancelled`.
                assert!(permits_move(role, State::Draft, State::Cancelled).is_err());
                for to in [State::Draft, State::InProgress, State::Closed] {
                    assert!(permits_move(role, State::Cancelled, to).is_err());
                }
            }
            assert!(permits(Role::Server, Part::State, state).is_ok());
        }
        assert!(permits_move(Role::Server, State::Draft, State::Cancelled).is_ok());
        assert!(permits_move(Role::Server, State::Cancelled, State::Draft).is_err());
    }

    #[test]
    fn only_inspectors_submit_and_only_reviewers_return_share_and_close() {
        use State::*;
        for role in Role::USERS {
            for (from, to) in [
                (Draft, InProgress),
                (InProgress, Submitted),
                (Submitted, InProgress),
                (Submitted, SharedWithTrust),
                (SharedWithTrust, Closed),
            ] {
                let inspector = matches!(role, Role::LeadInspector | Role::Inspector);
                let want = match (from, to) {
                    (Draft, InProgress) | (InProgress, Submitted) => inspector,
                    _ => role == Role::Reviewer,
                };
                assert_eq!(
                    permits_move(role, from, to).is_ok(),
                    want,
                    "{role:?}: {from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn the_table_renders_every_part_and_role() {
        let t = table_markdown();
        assert_eq!(t.lines().count(), 2 + Part::ALL.len());
        assert!(
            t.contains(
                "| inspection | answers | draft, in progress | draft, in progress | - | - | - |"
            ),
            "{t}"
        );
    }
}
