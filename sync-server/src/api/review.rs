//! Editing from the review dashboard: reviewers' comments and sign-offs on the inspection
//! document, and trust leads' responses to findings in the trust response document.
//!
//! - `POST /api/v1/inspections/{id}/comments`: a reviewer's comment on the inspection,
//!   one of its items, findings or sampled devices, in the review document (the trust
//!   never reads it);
//! - `POST /api/v1/inspections/{id}/comments/{comment}/release`: a reviewer releases a
//!   comment to the trust, whose lead then reads it (and only the released ones).
//! - `POST /api/v1/inspections/{id}/signoffs`: a reviewer's sign-off of a submitted
//!   inspection (moving it on, to the trust or back to the inspector, is `.../state`).
//! - `PUT /api/v1/inspections/{id}/responses/{finding}`: the trust lead's response to one
//!   finding; a second `PUT` replaces it.
//!
//! Each is one core operation (`Inspection::comment`, `Inspection::sign_off`,
//! [`TrustResponse::respond`]), stamped with the caller and made through the API's one
//! write path ([`super::edit`]), so connected sync clients receive it. A role that may
//! never make the edit gets 403 before the id is looked up; an inspection the caller may
//! not see gets the 404 of a missing one. Text is held to core's limit
//! ([`MAX_TEXT_CHARS`] characters; 422 `too_long` past it) inside the JSON body limit
//! (413 past it). Every write, and every refusal, is audited.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::inspection::{
    Comment, CommentTarget, LinkKind, MAX_TEXT_CHARS, Signoff, SignoffRole, Stamp,
};
use wardcheck_core::response::ResponseView;

use super::documents::{
    edit_inspection, edit_response, edit_review, inspection_view, response_view,
};
use super::inspections::{forbidden, target, visible};
use super::{JsonBody, audit};
use crate::auth::Caller;
use crate::error::AppError;
use crate::storage::{DocAccess, DocKind};
use crate::{AppState, access};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommentBody {
    /// `{"kind": "inspection"}`, or `{"kind": "item" | "finding" | "device", "id": ...}`.
    target: CommentTarget,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignoffBody {
    statement: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResponseBody {
    text: String,
}

/// `PUT .../responses/{finding}`: the response document as it now stands.
#[derive(Debug, Serialize)]
pub(super) struct Responded {
    finding: Uuid,
    trust_response: ResponseView,
}

/// Audits a write's outcome (its operation, or the error code) and passes the result on.
async fn audited<T>(
    state: &AppState,
    caller: &Caller,
    what: &str,
    op: &str,
    result: Result<T, AppError>,
) -> Result<T, AppError> {
    let outcome = match &result {
        Ok(_) => op,
        Err(e) => e.code,
    };
    audit(state, Some(caller), "doc_write", what, outcome).await;
    result
}

pub(super) async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    if !access::can_review(&caller.user) {
        return Err(forbidden(&state, &caller, "inspections", "comment on inspections").await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let CommentBody {
        target: about,
        text,
    } = body.parse()?;
    let what = target(rec.id);
    // The review document names findings and devices of the inspection document: they
    // must be there (an item is checked against the checklist by core).
    if matches!(about, CommentTarget::Finding(_) | CommentTarget::Device(_)) {
        let view = inspection_view(&state, &caller, &rec).await?;
        let known = match &about {
            CommentTarget::Finding(f) => view.findings.iter().any(|x| x.id == *f),
            CommentTarget::Device(d) => view.devices.iter().any(|x| x.id == *d),
            _ => true,
        };
        if !known {
            let e = AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_target",
                format!("the inspection has no {about:?}"),
            );
            return audited(&state, &caller, &what, "comment", Err(e)).await;
        }
    }
    let comment = Comment {
        id: Uuid::new_v4(),
        target: about,
        text,
        by: caller.user.name.clone(),
        at: chrono::Utc::now(),
        released: None,
    };
    let c = comment.clone();
    let result = edit_review(&state, &caller, &rec, move |review, checklist| {
        review.comment(
            c.id,
            c.target,
            &c.text,
            Some(checklist),
            &Stamp::new(c.by, c.at),
        )
    })
    .await;
    audited(&state, &caller, &what, "comment", result).await?;
    Ok((StatusCode::CREATED, Json(comment)).into_response())
}

pub(super) async fn sign_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    if !access::can_review(&caller.user) {
        return Err(forbidden(&state, &caller, "inspections", "sign off inspections").await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let SignoffBody { statement } = body.parse()?;
    let what = target(rec.id);
    let signoff = Signoff {
        id: Uuid::new_v4(),
        role: SignoffRole::Reviewer,
        kind: LinkKind::SignOff,
        statement,
        by: caller.user.name.clone(),
        at: chrono::Utc::now(),
        heads: Vec::new(),
        content: None,
        prev: None,
        hash: None,
    };
    let s = signoff.clone();
    let result = edit_inspection(&state, &caller, &rec, move |insp| {
        insp.sign_off(s.id, s.role, &s.statement, &Stamp::new(s.by, s.at))
    })
    .await;
    audited(&state, &caller, &what, "sign_off", result).await?;
    Ok((StatusCode::CREATED, Json(signoff)).into_response())
}

/// A reviewer reopens a signed inspection, with a reason (a link of the sign-off chain and
/// the move back to in progress, in one change); a new sign-off is then needed.
pub(super) async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    if !access::can_review(&caller.user) {
        return Err(forbidden(&state, &caller, "inspections", "reopen inspections").await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let ReopenBody { reason } = body.parse()?;
    let what = target(rec.id);
    let link = Uuid::new_v4();
    let by = caller.user.name.clone();
    let result = edit_inspection(&state, &caller, &rec, move |insp| {
        insp.reopen(link, &reason, &Stamp::new(by, chrono::Utc::now()))
    })
    .await;
    audited(&state, &caller, &what, "reopen", result).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": link }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReopenBody {
    reason: String,
}

pub(super) async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, finding)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Responded>, AppError> {
    if !access::can_respond(&caller.user) {
        return Err(forbidden(
            &state,
            &caller,
            "trust responses",
            "respond to findings for a trust",
        )
        .await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let right = access::doc_right(
        &caller.user,
        &DocAccess {
            doc: rec.response_doc,
            kind: DocKind::TrustResponse,
            inspection: rec.clone(),
        },
    );
    if !right.can_write() {
        audit(&state, Some(&caller), "denied", &target(rec.id), "denied").await;
        return Err(AppError::not_found());
    }
    let ResponseBody { text } = body.parse()?;
    // Checked before the document is touched, so that a refusal costs nothing.
    let len = text.chars().count();
    if len > MAX_TEXT_CHARS {
        let e = AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
            format!("response is {len} characters, more than the {MAX_TEXT_CHARS} allowed"),
        );
        return audited(
            &state,
            &caller,
            &response_target(rec.response_doc),
            "respond",
            Err(e),
        )
        .await;
    }
    let what = response_target(rec.response_doc);
    let unknown_finding = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_finding",
            format!("the inspection has no finding {finding:?}"),
        )
    };
    // The inspection must hold the finding: a response to nothing would show nowhere.
    let finding_id = match finding.parse::<Uuid>() {
        Ok(f) => {
            let view = inspection_view(&state, &caller, &rec).await?;
            view.findings.iter().any(|x| x.id == f).then_some(f)
        }
        Err(_) => None,
    };
    let Some(finding_id) = finding_id else {
        return audited(&state, &caller, &what, "respond", Err(unknown_finding())).await;
    };
    let stamp = Stamp::new(caller.user.name.clone(), chrono::Utc::now());
    let result = match edit_response(&state, &caller, &rec, move |r| {
        r.respond(finding_id, &text, &stamp)
    })
    .await
    {
        Ok(()) => response_view(&state, &rec).await,
        Err(e) => Err(e),
    };
    let view = audited(&state, &caller, &what, "respond", result).await?;
    Ok(Json(Responded {
        finding: finding_id,
        trust_response: view,
    }))
}

/// `POST .../comments/{comment}/release`: the comment as it now stands (with who released
/// it). Reviewers only; a comment the review document does not hold is 404
/// `unknown_comment`.
pub(super) async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, comment)): Path<(String, String)>,
) -> Result<Json<Comment>, AppError> {
    if !access::can_review(&caller.user) {
        return Err(forbidden(
            &state,
            &caller,
            "inspections",
            "release comments to a trust",
        )
        .await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let what = target(rec.id);
    let unknown = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_comment",
            format!("the inspection has no comment {comment:?}"),
        )
    };
    let Ok(cid) = comment.parse::<Uuid>() else {
        return audited(&state, &caller, &what, "release", Err(unknown())).await;
    };
    let stamp = Stamp::new(caller.user.name.clone(), chrono::Utc::now());
    let result = edit_review(&state, &caller, &rec, move |review, _| {
        review.release(cid, &stamp)
    })
    .await;
    audited(&state, &caller, &what, "release", result).await?;
    // The trust's lead reads released comments through the inspection's view, and does
    // not follow the review document: pages following the inspection hear of it.
    state.docs.tell_watchers(rec.id);
    let view = super::documents::review_view(&state, &rec).await?;
    view.comments
        .into_iter()
        .find(|c| c.id == cid)
        .map(Json)
        .ok_or_else(unknown)
}

fn response_target(doc: Uuid) -> String {
    format!("trust_response:{doc}")
}
