//! How the service reads and changes documents: through the one owner of live documents
//! ([`crate::sync::Documents`]), never around it.
//!
//! - **Changes** are made with a typed core operation, held to the write policy for the
//!   caller ([`crate::access::writer`]), on a fork of the live document and on the
//!   caller's device's API actor; the change then takes exactly the path a peer's change
//!   takes (the guard, the round trip through the stored form, the commit) before the
//!   call returns, and connected clients receive it at once.
//! - **Reads** build views from the live document (loaded, and rebuilt if damaged, once),
//!   with the facts the server decides (trust, sites, checklist pin, team) taken from the
//!   record, never from the document, and the comments from the review document: all of
//!   them for inspectors and reviewers, only those released for a trust lead.

use std::sync::Arc;

use automerge::{ActorId, AutoCommit};
use axum::http::StatusCode;
use uuid::Uuid;
use wardcheck_core::checklist::Checklist;
use wardcheck_core::inspection::{Inspection, InspectionError, InspectionView, TeamMember};
use wardcheck_core::policy::{Code, DocKind, Refusal, Writer};
use wardcheck_core::response::{ResponseError, ResponseView, TrustResponse};
use wardcheck_core::review::{Review, ReviewError, ReviewView};

use super::{Acting, blocking};
use crate::access;
use crate::error::AppError;
use crate::inspections;
use crate::storage::{AuditEvent, InspectionRecord, Role, Storage};
use crate::sync::{DocContext, Failure};

pub(super) fn checklist_of(
    storage: &dyn Storage,
    rec: &InspectionRecord,
) -> Result<Arc<Checklist>, AppError> {
    inspections::pinned_checklist(storage, rec).map_err(AppError::internal)
}

/// What a change the caller asked for answers when the server's checks refuse it.
fn failure(f: Failure) -> AppError {
    match f {
        Failure::Policy(r) => {
            let status = match r.code {
                "wrong_state" | "illegal_transition" | "frozen" => StatusCode::CONFLICT,
                "too_long" | "malformed_change" => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::FORBIDDEN,
            };
            AppError::new(status, r.code, r.message)
        }
        Failure::TooLarge { size, max } => AppError::too_large(format!(
            "the document would grow to {size} bytes, more than the {max} the server keeps"
        )),
        // Another server process changed the document at the same moment: nothing was
        // stored, and the same request again goes through.
        Failure::Stale(_) => AppError::new(
            StatusCode::CONFLICT,
            "changed_elsewhere",
            "the inspection changed at the same moment through another server; nothing was \
             stored: send the request again",
        ),
        other => AppError::internal(format!("{other:?}")),
    }
}

/// The policy's refusal of a typed operation, as an answer.
pub(super) fn refusal(r: Refusal) -> AppError {
    let status = match r.code {
        Code::WrongState | Code::IllegalTransition => StatusCode::CONFLICT,
        Code::TooLong | Code::Malformed => StatusCode::UNPROCESSABLE_ENTITY,
        Code::Frozen => StatusCode::CONFLICT,
        Code::Forbidden | Code::ForgedAuthor | Code::UnearnedPhoto => StatusCode::FORBIDDEN,
    };
    AppError::new(status, r.code.as_str(), r.message)
}

impl Acting<'_> {
    /// Makes one change to document `doc` (of kind `kind`) of `rec` for the caller.
    async fn change<R: Send + 'static>(
        &self,
        rec: &InspectionRecord,
        kind: DocKind,
        doc: Uuid,
        make: impl FnOnce(
            AutoCommit,
            Writer,
            Option<Arc<Checklist>>,
        ) -> (Option<Vec<u8>>, Result<R, AppError>)
        + Send
        + 'static,
    ) -> Result<R, AppError> {
        self.change_by(rec, kind, doc, false, make).await
    }

    /// [`Self::change`], or with `as_server` the server's own change (on an actor bound
    /// to the server, under the server's rights), made for the caller.
    async fn change_by<R: Send + 'static>(
        &self,
        rec: &InspectionRecord,
        kind: DocKind,
        doc: Uuid,
        as_server: bool,
        make: impl FnOnce(
            AutoCommit,
            Writer,
            Option<Arc<Checklist>>,
        ) -> (Option<Vec<u8>>, Result<R, AppError>)
        + Send
        + 'static,
    ) -> Result<R, AppError> {
        let (state, caller) = (self.state, self.caller);
        let writer = if as_server {
            access::server_writer()
        } else {
            access::writer(&caller.user, rec, kind).ok_or_else(|| {
                AppError::forbidden(format!(
                    "{} may not change this document",
                    caller.user.role.with_article()
                ))
            })?
        };
        let storage = state.storage.clone();
        let (r, user, device) = (rec.clone(), caller.user.name.clone(), caller.device.id);
        // The actor the API writes with for this device: one per device, so each dashboard
        // adds one actor to a document, not one per change; made at random (so no one can
        // bind it first), and used under the document's lock, so its sequence numbers never
        // collide. The server's own changes take a fresh actor bound to the server.
        let (actor, checklist) = blocking(move || {
            let fresh = ActorId::random();
            let actor = if as_server {
                storage
                    .bind_actor(
                        fresh.to_bytes(),
                        crate::storage::SERVER_AUTHOR,
                        None,
                        chrono::Utc::now(),
                    )
                    .map_err(AppError::internal)?;
                fresh.to_bytes().to_vec()
            } else {
                storage
                    .api_actor(device, &user, fresh.to_bytes(), chrono::Utc::now())
                    .map_err(AppError::internal)?
            };
            let checklist = match kind {
                DocKind::TrustResponse => None,
                _ => Some(checklist_of(&*storage, &r)?),
            };
            Ok((ActorId::from(actor.as_slice()), checklist))
        })
        .await?;
        let ctx = DocContext {
            kind,
            record: rec.clone(),
            checklist: checklist.clone(),
            sender: if as_server {
                crate::storage::SERVER_AUTHOR.to_owned()
            } else {
                caller.user.name.clone()
            },
        };
        let handle = state.docs.hold(doc);
        let result = state
            .docs
            .edit(&handle, ctx, move |fork| {
                make(fork.with_actor(actor), writer, checklist)
            })
            .await;
        let result = match result {
            Ok(r) => r,
            Err(f) => {
                // A change the server's checks refused (typed operations refuse first, so
                // this is rare): audited as a refused sync change is, with its actor.
                if let Failure::Policy(r) = &f {
                    state
                        .audit(AuditEvent {
                            at: chrono::Utc::now(),
                            actor: caller.user.name.clone(),
                            device: Some(caller.device.id),
                            action: "change_refused".into(),
                            target: doc.to_string(),
                            from: caller.from.clone(),
                            outcome: r.code.into(),
                            detail: Some(r.detail()),
                        })
                        .await;
                }
                return Err(failure(f));
            }
        };
        state.docs.notify_others(&handle);
        result
    }

    /// Applies `op` to the inspection document of `rec`, for the caller.
    pub(super) async fn edit_inspection(
        &self,
        rec: &InspectionRecord,
        op: impl FnOnce(&mut Inspection) -> Result<(), InspectionError> + Send + 'static,
    ) -> Result<(), AppError> {
        self.edit_inspection_by(rec, false, op).await
    }

    /// A change to the inspection document that is the server's (its dates), made for
    /// the caller once the service has decided they may ask for it.
    pub(super) async fn edit_inspection_as_server(
        &self,
        rec: &InspectionRecord,
        op: impl FnOnce(&mut Inspection) -> Result<(), InspectionError> + Send + 'static,
    ) -> Result<(), AppError> {
        self.edit_inspection_by(rec, true, op).await
    }

    async fn edit_inspection_by(
        &self,
        rec: &InspectionRecord,
        as_server: bool,
        op: impl FnOnce(&mut Inspection) -> Result<(), InspectionError> + Send + 'static,
    ) -> Result<(), AppError> {
        self.change_by(
            rec,
            DocKind::Inspection,
            rec.id,
            as_server,
            move |fork, writer, checklist| {
                let checklist = checklist.expect("inspection documents have a checklist");
                let mut insp = match Inspection::from_doc(fork, checklist) {
                    Ok(i) => i,
                    Err(e) => return (None, Err(AppError::internal(e))),
                };
                insp.set_writer(writer);
                let before = insp.heads();
                match op(&mut insp) {
                    Ok(()) => (Some(insp.save_after(&before)), Ok(())),
                    Err(e) => (None, Err(inspection_error(e))),
                }
            },
        )
        .await
    }

    /// Applies `op` to the trust response document of `rec`, for the caller.
    pub(super) async fn edit_response(
        &self,
        rec: &InspectionRecord,
        op: impl FnOnce(&mut TrustResponse) -> Result<(), ResponseError> + Send + 'static,
    ) -> Result<(), AppError> {
        let inspection_state = rec.state;
        self.change(
            rec,
            DocKind::TrustResponse,
            rec.response_doc,
            move |fork, writer, _| {
                let mut resp = match TrustResponse::from_doc(fork) {
                    Ok(r) => r,
                    Err(e) => return (None, Err(AppError::internal(e))),
                };
                resp.set_writer(writer, inspection_state);
                let before = resp.heads();
                match op(&mut resp) {
                    Ok(()) => (Some(resp.save_after(&before)), Ok(())),
                    Err(e) => (None, Err(response_error(e))),
                }
            },
        )
        .await
    }

    /// Applies `op` to the review document of `rec`, for the caller (`op` gets the checklist).
    pub(super) async fn edit_review(
        &self,
        rec: &InspectionRecord,
        op: impl FnOnce(&mut Review, &Checklist) -> Result<(), ReviewError> + Send + 'static,
    ) -> Result<(), AppError> {
        let inspection_state = rec.state;
        self.change(
            rec,
            DocKind::Review,
            rec.review_doc,
            move |fork, writer, checklist| {
                let checklist =
                    checklist.expect("review documents are checked against the checklist");
                let mut review = match Review::from_doc(fork) {
                    Ok(r) => r,
                    Err(e) => return (None, Err(AppError::internal(e))),
                };
                review.set_writer(writer, inspection_state);
                let before = review.heads();
                match op(&mut review, &checklist) {
                    Ok(()) => (Some(review.save_after(&before)), Ok(())),
                    Err(e) => (None, Err(review_error(e))),
                }
            },
        )
        .await
    }

    /// The review document's view.
    pub(super) async fn review_view(&self, rec: &InspectionRecord) -> Result<ReviewView, AppError> {
        let state = self.state;
        let handle = state.docs.hold(rec.review_doc);
        state
            .docs
            .read(&handle, |doc| {
                Review::from_doc(doc.clone()).and_then(|r| r.view())
            })
            .await
            .map_err(read_failure)?
            .map_err(AppError::internal)
    }

    /// The trust response document's view.
    pub(super) async fn response_view(
        &self,
        rec: &InspectionRecord,
    ) -> Result<ResponseView, AppError> {
        let state = self.state;
        let handle = state.docs.hold(rec.response_doc);
        state
            .docs
            .read(&handle, |doc| {
                TrustResponse::from_doc(doc.clone()).and_then(|r| r.view())
            })
            .await
            .map_err(read_failure)?
            .map_err(AppError::internal)
    }

    /// The inspection document's view for the caller: the record's facts, and the comments
    /// the caller may read.
    pub(super) async fn inspection_view(
        &self,
        rec: &InspectionRecord,
    ) -> Result<InspectionView, AppError> {
        let (state, caller) = (self.state, self.caller);
        let storage = state.storage.clone();
        let r = rec.clone();
        let (checklist, team) =
            blocking(move || Ok((checklist_of(&*storage, &r)?, team(&*storage, &r)?))).await?;
        let handle = state.docs.hold(rec.id);
        let mut view = state
            .docs
            .read(&handle, move |doc| {
                Inspection::read_in(doc, checklist, |i| i.view())
            })
            .await
            .map_err(read_failure)?
            .and_then(|v| v)
            .map_err(AppError::internal)?;
        drop(handle);
        // What the server decides is the server's: the record's, whatever the document says.
        view.meta.trust = rec.trust.clone();
        view.meta.sites = rec.sites.clone();
        view.meta.checklist.id = rec.checklist_id.clone();
        view.meta.checklist.version = rec.checklist_version.clone();
        view.meta.checklist.sha256 = rec.checklist_sha256.clone();
        view.meta.team = team;
        let review = self.review_view(rec).await?;
        view.comments = match caller.user.role {
            Role::TrustLead(_) => review.released(),
            _ => review.comments,
        };
        Ok(view)
    }
}

pub(super) fn read_failure(f: Failure) -> AppError {
    AppError::internal(format!("reading a document: {f:?}"))
}

/// The team as the record holds it, with each member's display name.
fn team(storage: &dyn Storage, rec: &InspectionRecord) -> Result<Vec<TeamMember>, AppError> {
    use wardcheck_core::inspection::TeamRole;
    let mut out = Vec::new();
    for user in &rec.assignees {
        let name = storage
            .user_by_name(user)?
            .map(|u| u.display_name)
            .unwrap_or_else(|| user.clone());
        out.push(TeamMember {
            user: user.clone(),
            name,
            role: rec.team_role(user).unwrap_or(TeamRole::Inspector),
        });
    }
    // The lead first.
    out.sort_by_key(|m| (m.role != TeamRole::LeadInspector, m.user.clone()));
    Ok(out)
}

/// What a refused inspection operation answers: the caller's input (422), the
/// inspection's state (409), or the policy's refusal, with core's message.
pub(super) fn inspection_error(e: InspectionError) -> AppError {
    let unprocessable = |code, e: &InspectionError| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    };
    match e {
        InspectionError::Refused(r) => refusal(r),
        InspectionError::IllegalTransition { .. } => {
            AppError::conflict("illegal_transition", e.to_string())
        }
        InspectionError::WrongState(..) | InspectionError::Closed => {
            AppError::conflict("wrong_state", e.to_string())
        }
        InspectionError::TooLong { .. } => unprocessable("too_long", &e),
        InspectionError::Empty(_) => unprocessable("empty", &e),
        InspectionError::InvalidDates(_) => unprocessable("invalid_dates", &e),
        InspectionError::UnknownItem(_)
        | InspectionError::UnknownFinding(_)
        | InspectionError::UnknownDevice(_) => unprocessable("unknown_target", &e),
        other => AppError::internal(other),
    }
}

fn response_error(e: ResponseError) -> AppError {
    match e {
        ResponseError::Refused(r) => refusal(r),
        ResponseError::TooLong { .. } => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_long", e.to_string())
        }
        ResponseError::Empty(_) => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty", e.to_string())
        }
        other => AppError::internal(other),
    }
}

fn review_error(e: ReviewError) -> AppError {
    match e {
        ReviewError::Refused(r) => refusal(r),
        ReviewError::TooLong { .. } => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_long", e.to_string())
        }
        ReviewError::Empty(_) => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty", e.to_string())
        }
        ReviewError::UnknownItem(_) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_target",
            e.to_string(),
        ),
        ReviewError::UnknownComment(_) => {
            AppError::new(StatusCode::NOT_FOUND, "unknown_comment", e.to_string())
        }
        other => AppError::internal(other),
    }
}
