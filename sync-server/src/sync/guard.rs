//! The server as guardian of the record: who wrote each change it receives, and whether
//! they may.
//!
//! Every change that reaches a document (from a sync peer, or made by the API on a
//! caller's behalf) is checked here before it is stored or forwarded:
//!
//! 1. **Its author is its actor's binding**, never what the change says. A device binds
//!    the Automerge actors it writes with at sign-in (`POST /api/v1/actors`); an actor
//!    bound to no one, to a revoked device or a disabled user is refused.
//! 2. **A device sends its own user's changes.** Changes carry no signature: a change
//!    claiming another user's actor cannot be told from a forgery of that user's work,
//!    so one arriving over another user's connection is refused (`foreign_actor`).
//!    Wardcheck's devices sync only with the server, so an honest device never relays
//!    another user's change the server does not already hold (those are skipped before
//!    anything is checked). A change relayed from the same user's other device is
//!    checked against that device's binding.
//! 3. **The author's rights on this inspection** come from the server's record (assigned,
//!    team lead, the trust's lead once shared), and then the write policy
//!    ([`wardcheck_core::policy::check_change`]) holds every operation to the table, the
//!    schema and the stamps. The state used is the document's just before each change.
//! 4. **Photo references are earned**: the author uploaded the photo, or may already
//!    read it. A reference to a photo the server does not hold whole yet is taken (the
//!    author's own upload is likely under way) but counts for reading the photo only once
//!    the author has uploaded it whole ([`Earned::Claimed`]).

use std::collections::HashMap;
use std::sync::Arc;

use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use wardcheck_core::checklist::Checklist;
use wardcheck_core::inspection::{Signoff, State};
use wardcheck_core::policy::{Context, DocKind, Part, Writer, check_change};
use wardcheck_core::seal::Seal;

use crate::access;
use crate::limits;
use crate::storage::{ActorBinding, InspectionRecord, PhotoClaim, SERVER_AUTHOR, Storage, User};

/// What checking a document's changes needs to know about it and the sender.
#[derive(Debug, Clone)]
pub(crate) struct DocContext {
    pub kind: DocKind,
    pub record: InspectionRecord,
    /// The inspection's checklist, for inspection and review documents.
    pub checklist: Option<Arc<Checklist>>,
    /// The user whose connection (or API call) brought the changes.
    pub sender: String,
}

/// Why a change was refused, for the sender, the audit log and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// A stable code: the policy's (`forbidden`, `forged_author`, ...) or the binding's
    /// (`unknown_actor`, `foreign_actor`, `revoked_actor`).
    pub code: &'static str,
    pub message: String,
    pub change: ChangeHash,
    pub actor: ActorId,
    /// The user the actor is bound to, when it is.
    pub author: Option<String>,
}

impl Refused {
    /// What the audit log's detail says: never content.
    pub(crate) fn detail(&self) -> String {
        let mut m: String = self
            .message
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        if m.is_empty() {
            m = "-".into();
        }
        format!(
            "change {} actor {} author {}: {m}",
            self.change,
            self.actor.to_hex_string(),
            self.author.as_deref().unwrap_or("-")
        )
    }
}

/// Checks every change in `new` (in causal order, as Automerge lists them), applied in
/// `doc` on top of `before`. `state` is the inspection's state before the first.
/// Returns the photo references the changes make, with their authors and whether they
/// were earned, for the caller to record with the changes.
///
/// A change the server took once and then set aside in a rebuild (its row was damaged,
/// or what it depended on was lost) may come back from any device that holds it, its
/// author's or not: it is the same change, byte for byte (its hash says so). It is held
/// to the write policy as its author's, in the inspection's state now.
pub(crate) fn check(
    storage: &dyn Storage,
    authors_seen: &Authors,
    ctx: &DocContext,
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    new: &[Change],
    standing: Standing,
) -> Result<Checked, Box<Refused>> {
    let Standing {
        mut state,
        mut seal,
    } = standing;
    let mut heads: Vec<ChangeHash> = before.to_vec();
    let mut authors: HashMap<ActorId, (Writer, Option<User>)> = HashMap::new();
    let claims: std::cell::RefCell<Vec<PhotoClaim>> = Default::default();
    let mut indexed = false;
    let mut shared = false;
    let mut links = Vec::new();
    for change in new {
        let actor = change.actor_id().clone();
        let refused = |code: &'static str, message: String, author: Option<String>| {
            Box::new(Refused {
                code,
                message,
                change: change.hash(),
                actor: actor.clone(),
                author,
            })
        };
        // A change the server took once and a rebuild set aside is held to its own
        // author's rights, whoever relays it; any other to its sender's.
        let relayed;
        let found: &(Writer, Option<User>) = if authors.contains_key(&actor) {
            &authors[&actor]
        } else {
            match author(storage, authors_seen, ctx, &actor, false) {
                Ok(f) => {
                    authors.insert(actor.clone(), f);
                    &authors[&actor]
                }
                Err(e) if restored(storage, ctx, change) => {
                    indexed = true;
                    relayed = author(storage, authors_seen, ctx, &actor, true)
                        .map_err(|_| refused(e.0, e.1.clone(), e.2.clone()))?;
                    &relayed
                }
                Err((code, m, a)) => return Err(refused(code, m, a)),
            }
        };
        let (writer, user) = found;
        let earned = |hash: &str| {
            let e = earned(storage, user.as_ref(), hash);
            if let Some(u) = user
                && !matches!(e, Earned::No)
            {
                claims.borrow_mut().push(PhotoClaim {
                    sha256: hash.to_owned(),
                    user: u.name.clone(),
                    earned: matches!(e, Earned::Yes),
                });
            }
            !matches!(e, Earned::No)
        };
        let pctx = Context {
            kind: ctx.kind,
            checklist: ctx.checklist.as_deref(),
            state,
            earned: &earned,
            seal: &seal,
        };
        let checked = match check_change(&*doc, &heads, change, writer, &pctx) {
            Ok(c) => c,
            Err(r) => {
                return Err(refused(
                    r.code.as_str(),
                    r.message,
                    Some(writer.user.clone()),
                ));
            }
        };
        // What the record indexes (its state column, the photos it refers to) changes
        // only with these parts; the server's own changes may touch anything.
        indexed |= writer.role == wardcheck_core::policy::Role::Server
            || checked
                .parts
                .iter()
                .any(|p| matches!(p, Part::State | Part::Photo | Part::Shape));
        if ctx.kind == DocKind::Inspection
            && let Some(s) = checked.state
        {
            state = s;
            shared |= s == State::SharedWithTrust;
        }
        let before_change = heads.clone();
        heads.retain(|h| !change.deps().contains(h));
        heads.push(change.hash());
        if let Some(link) = checked.link {
            if let Err(m) = sealed_content(ctx, doc, &link, &before_change, &heads) {
                return Err(refused("frozen", m, Some(writer.user.clone())));
            }
            seal = seal.after(&link);
            links.push(Linked {
                hash: wardcheck_core::seal::link_hash(&link),
                link,
                change: change.hash(),
            });
        }
    }
    Ok(Checked {
        claims: claims.into_inner(),
        indexed,
        shared,
        links,
    })
}

/// Where the inspection stood before the first change: its state and its sign-off chain.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub state: State,
    pub seal: Seal,
}

/// A sign-off or reopening taken, for the audit log.
#[derive(Debug, Clone)]
pub(crate) struct Linked {
    pub link: Signoff,
    pub hash: String,
    pub change: ChangeHash,
}

/// That a link pins what it says. It is made on the heads the server holds just before
/// it (nothing it had not seen reached the server first: that would stand unsigned beside
/// the signature), and its content hash is the signed content's there. The change itself
/// changes no signed part, so that is the content once it is in: read in place when it is
/// the batch's last change (no replay of the history), else on a copy at its heads.
fn sealed_content(
    ctx: &DocContext,
    doc: &mut AutoCommit,
    link: &Signoff,
    before: &[ChangeHash],
    after: &[ChangeHash],
) -> Result<(), String> {
    let Some(checklist) = ctx.checklist.clone() else {
        return Err("the inspection's checklist is needed to check a sign-off".into());
    };
    let mut held: Vec<String> = before.iter().map(ChangeHash::to_string).collect();
    held.sort();
    if link.heads != held {
        return Err(
            "the sign-off was made on heads the server has moved past (another change \
             reached it first): sync, read the inspection again and sign again"
                .into(),
        );
    }
    let signed =
        wardcheck_core::seal::content_at(doc, after, checklist).map_err(|e| e.to_string())?;
    if link.content.as_deref() != Some(signed.as_str()) {
        return Err(format!(
            "the sign-off says it signs content {}, but the inspection at its heads hashes to {signed}",
            link.content.as_deref().unwrap_or("-")
        ));
    }
    Ok(())
}

/// What the checked changes need of the caller besides storing them.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The photo references they make ([`PhotoClaim`]), to record with them.
    pub claims: Vec<PhotoClaim>,
    /// Whether they may change what the record indexes (the inspection's state, the
    /// photos it refers to).
    pub indexed: bool,
    /// Whether one of them shared the inspection with its trust (even if a later one in
    /// the same batch closed it).
    pub shared: bool,
    /// The sign-offs and reopenings they add, for the audit log.
    pub links: Vec<Linked>,
}

type AuthorError = (&'static str, String, Option<String>);

/// Who each actor is bound to, and that user, as storage said at most
/// [`limits::DEVICE_RECHECK`] ago: two reads per change otherwise, through the one
/// connection every commit holds. A revocation (of a device, or a user disabled) reaches
/// the actor's changes within that time, as it reaches the device's open connections.
#[derive(Debug, Default)]
pub(crate) struct Authors(std::sync::Mutex<HashMap<Vec<u8>, (std::time::Instant, Seen)>>);

type Seen = (Option<ActorBinding>, Option<User>);

impl Authors {
    /// Entries kept at most: one a device's actor, cleared whole past this.
    const MAX: usize = 100_000;

    fn look_up(&self, storage: &dyn Storage, actor: &ActorId) -> crate::storage::Result<Seen> {
        let key = actor.to_bytes().to_vec();
        let now = std::time::Instant::now();
        {
            let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, seen)) = m.get(&key)
                && now.duration_since(*at) < limits::DEVICE_RECHECK
                // Only a live binding is kept: an unknown or revoked one is read again,
                // so a device that binds, or signs in again, is seen at once.
                && seen.0.as_ref().is_some_and(|b| !b.revoked)
            {
                return Ok(seen.clone());
            }
        }
        let binding = storage.actor_binding(&key)?;
        let user = match &binding {
            Some(b) => storage.user_by_name(&b.user)?,
            None => None,
        };
        let seen = (binding, user);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= Self::MAX {
            m.clear();
        }
        m.insert(key, (now, seen.clone()));
        Ok(seen)
    }
}

/// The writer an actor's changes are held to on this document, and their user.
///
/// `restoring`: the change is one the server took once (a rebuild set it aside), so it
/// may come from another user's device, and from a device revoked since.
fn author(
    storage: &dyn Storage,
    authors: &Authors,
    ctx: &DocContext,
    actor: &ActorId,
    restoring: bool,
) -> Result<(Writer, Option<User>), AuthorError> {
    let internal = |e: crate::storage::StorageError| ("unchecked", e.to_string(), None);
    let (binding, user) = authors.look_up(storage, actor).map_err(internal)?;
    let binding = binding.ok_or_else(|| {
        (
            "unknown_actor",
            format!(
                "actor {} is bound to no user: a device registers its actors when it signs in",
                actor.to_hex_string()
            ),
            None,
        )
    })?;
    let who = Some(binding.user.clone());
    if binding.user == SERVER_AUTHOR && (ctx.sender == SERVER_AUTHOR || restoring) {
        return Ok((access::server_writer(), None));
    }
    if binding.user != ctx.sender && !restoring {
        return Err((
            "foreign_actor",
            format!(
                "the change was written by another user's actor ({}); a device sends only its own user's changes",
                binding.user
            ),
            who,
        ));
    }
    if binding.revoked && !restoring {
        return Err((
            "revoked_actor",
            "the device that bound this actor was revoked, or its user disabled".into(),
            who,
        ));
    }
    let user = user.filter(|u| !u.disabled).ok_or_else(|| {
        (
            "revoked_actor",
            "the actor's user is disabled".into(),
            who.clone(),
        )
    })?;
    let writer = access::writer(&user, &ctx.record, ctx.kind).ok_or_else(|| {
        (
            "no_right",
            format!(
                "{} may not write this {} document",
                user.name,
                ctx.kind.as_str().replace('_', " ")
            ),
            who.clone(),
        )
    })?;
    Ok((writer, Some(user)))
}

/// Whether `change` is one the server took once and a rebuild set aside from this
/// document (looked up only for a change whose actor would otherwise be refused).
fn restored(storage: &dyn Storage, ctx: &DocContext, change: &Change) -> bool {
    let doc = match ctx.kind {
        DocKind::Inspection => ctx.record.id,
        DocKind::TrustResponse => ctx.record.response_doc,
        DocKind::Review => ctx.record.review_doc,
    };
    storage
        .was_set_aside(doc, &change.hash().0)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "looking for a set-aside change failed");
            false
        })
}

/// Whether a reference to a photo is earned.
enum Earned {
    /// The author uploaded it, or may already read it.
    Yes,
    /// The server does not hold it whole yet: only whoever holds the bytes knows the
    /// hash, and the author's own upload is likely under way (the field app syncs
    /// documents and uploads photos side by side). Taken, but the reference lets its
    /// document's readers read the photo only once the author has uploaded it whole
    /// (`Storage::add_photo_claims`): naming the hash of someone else's upload in
    /// progress gains nothing.
    Claimed,
    No,
}

/// Whether `user` may refer to the photo `hash` in a document.
fn earned(storage: &dyn Storage, user: Option<&User>, hash: &str) -> Earned {
    let Some(user) = user else { return Earned::Yes };
    let check = || -> crate::storage::Result<Earned> {
        if storage.blob_uploaded_by(hash, &user.name)? {
            return Ok(Earned::Yes);
        }
        match storage.blob_status(hash)? {
            Some(b) if b.complete => {}
            _ => return Ok(Earned::Claimed),
        }
        for doc in storage.photo_docs(hash)? {
            if let Some(a) = storage.doc_access(doc)?
                && access::doc_right(user, &a).can_read()
            {
                return Ok(Earned::Yes);
            }
        }
        Ok(Earned::No)
    };
    check().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "checking a photo reference failed; refused");
        Earned::No
    })
}
