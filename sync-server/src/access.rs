//! Who may do what. Every route and every sync message asks here, before any byte of
//! a document is loaded or sent.
//!
//! | role | inspection document | trust response document | review document | inspection records |
//! |---|---|---|---|---|
//! | inspector | read, write: if assigned | read: if assigned | read, write: if assigned | list, get: if assigned |
//! | reviewer | read, write: all | read: all | read, write: all | list, get, create, assign, share, change state, comment, sign off: all |
//! | trust lead (trust T) | read: T's, once shared | read, write: T's, once shared | none | list, get: T's, once shared; respond to findings: T's, once shared |
//! | admin | none | none | none | list, get, create, assign, share |
//!
//! A denied document and a missing one get the same answer. Which *changes* a writer may
//! make inside a document is the write policy (`wardcheck_core::policy`), applied to every
//! change by its author ([`writer`]). A trust lead syncs the inspection document only if
//! its history holds no internal comment (an inspection from before review documents
//! may: they read it through the API's views).

use wardcheck_core::inspection::TeamRole;
use wardcheck_core::policy::{self, Writer};

use crate::storage::{DocAccess, DocKind, InspectionRecord, Role, SERVER_AUTHOR, User};

/// What a caller may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocRight {
    None,
    Read,
    ReadWrite,
}

impl DocRight {
    pub fn can_read(self) -> bool {
        self != DocRight::None
    }
    pub fn can_write(self) -> bool {
        self == DocRight::ReadWrite
    }
}

fn assigned(user: &User, rec: &InspectionRecord) -> bool {
    rec.assignees.iter().any(|a| a == &user.name)
}

fn shared_with(trust: &str, rec: &InspectionRecord) -> bool {
    rec.trust == trust && rec.shared_at.is_some()
}

pub fn doc_right(user: &User, doc: &DocAccess) -> DocRight {
    let rec = &doc.inspection;
    match (&user.role, doc.kind) {
        (Role::Inspector, DocKind::Inspection) if assigned(user, rec) => DocRight::ReadWrite,
        (Role::Inspector, DocKind::TrustResponse) if assigned(user, rec) => DocRight::Read,
        (Role::Inspector, DocKind::Review) if assigned(user, rec) => DocRight::ReadWrite,
        (Role::Reviewer, DocKind::Inspection | DocKind::Review) => DocRight::ReadWrite,
        (Role::Reviewer, DocKind::TrustResponse) => DocRight::Read,
        (Role::TrustLead(t), DocKind::Inspection)
            if shared_with(t, rec) && !rec.history_holds_comments =>
        {
            DocRight::Read
        }
        (Role::TrustLead(t), DocKind::TrustResponse) if shared_with(t, rec) => DocRight::ReadWrite,
        _ => DocRight::None,
    }
}

/// Whether a trust lead reads the inspection document's view through the API (its
/// history may still hold internal comments, so not by sync: [`doc_right`]).
pub fn can_read_view(user: &User, rec: &InspectionRecord) -> bool {
    match &user.role {
        Role::TrustLead(t) => shared_with(t, rec),
        _ => doc_right(
            user,
            &DocAccess {
                doc: rec.id,
                kind: DocKind::Inspection,
                inspection: rec.clone(),
            },
        )
        .can_read(),
    }
}

/// The author a change by `user` has on a document of `rec`, for the write policy; none
/// when the user may not write that document at all. The team role comes from the
/// server's record, never from the document.
pub fn writer(user: &User, rec: &InspectionRecord, kind: DocKind) -> Option<Writer> {
    let right = doc_right(
        user,
        &DocAccess {
            doc: rec.id,
            kind,
            inspection: rec.clone(),
        },
    );
    if !right.can_write() {
        return None;
    }
    Some(Writer::new(user.name.clone(), policy_role(user, rec)?))
}

/// The role `user` has on inspection `rec` for the write policy: an inspector's from the
/// team in the server's record (none when not assigned), every other user's their own.
pub fn policy_role(user: &User, rec: &InspectionRecord) -> Option<policy::Role> {
    Some(match &user.role {
        Role::Inspector => match rec.team_role(&user.name)? {
            TeamRole::LeadInspector => policy::Role::LeadInspector,
            _ => policy::Role::Inspector,
        },
        Role::Reviewer => policy::Role::Reviewer,
        Role::TrustLead(_) => policy::Role::TrustLead,
        Role::Admin => policy::Role::Admin,
    })
}

/// The author of the server's own changes.
pub fn server_writer() -> Writer {
    Writer::new(SERVER_AUTHOR, policy::Role::Server)
}

/// Whether a caller may see an inspection's record (list and get).
pub fn can_see(user: &User, rec: &InspectionRecord) -> bool {
    match &user.role {
        Role::Inspector => assigned(user, rec),
        Role::Reviewer | Role::Admin => true,
        Role::TrustLead(t) => shared_with(t, rec),
    }
}

/// Whether a caller may create, assign and share inspections.
pub fn can_manage(user: &User) -> bool {
    matches!(user.role, Role::Reviewer | Role::Admin)
}

/// Whether a caller may change an inspection's state through the API.
pub fn can_change_state(user: &User, rec: &InspectionRecord) -> bool {
    match user.role {
        Role::Reviewer => true,
        Role::Inspector => assigned(user, rec),
        _ => false,
    }
}

/// Whether a caller's role may write review fields (comments and a reviewer's sign-off)
/// through the API. Reviewers write every inspection document, so no record is needed.
pub fn can_review(user: &User) -> bool {
    matches!(user.role, Role::Reviewer)
}

/// Whether a caller's role may ever write a trust response through the API: only a
/// trust lead, and then only for their own trust's shared inspections ([`doc_right`] on
/// the response document decides which).
pub fn can_respond(user: &User) -> bool {
    matches!(user.role, Role::TrustLead(_))
}
