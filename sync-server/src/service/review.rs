//! Editing from the review dashboard: reviewers' comments, releases, sign-offs and
//! reopenings on the inspection's documents, and trust leads' responses to findings in
//! the trust response document.
//!
//! - a comment on the inspection, one of its items, findings or sampled devices, in the
//!   review document (the trust never reads it); a reviewer releases a comment to the
//!   trust, whose lead then reads it (and only the released ones);
//! - a reviewer's sign-off of a submitted inspection (moving it on, to the trust or back
//!   to the inspector, is a state change), or its reopening with a reason;
//! - the trust lead's response to one finding; a second replaces it.
//!
//! Each is one core operation (`Review::comment`, `Inspection::sign_off`,
//! [`TrustResponse::respond`]), stamped with the caller and made through the one write
//! path (`super::documents`), so connected sync clients receive it. A role that may never
//! make the edit gets 403 before the id is looked up; an inspection the caller may not see
//! gets the 404 of a missing one. Text is held to core's limit ([`MAX_TEXT_CHARS`]
//! characters; 422 `too_long` past it). Every write, and every refusal, is audited.
//!
//! [`TrustResponse::respond`]: wardcheck_core::response::TrustResponse::respond

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::inspection::{
    Comment, CommentTarget, LinkKind, MAX_TEXT_CHARS, Signoff, SignoffRole, Stamp,
};
use wardcheck_core::response::ResponseView;

use super::{Acting, Input, target};
use crate::access;
use crate::error::AppError;
use crate::storage::{DocAccess, DocKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// `{"kind": "inspection"}`, or `{"kind": "item" | "finding" | "device", "id": ...}`.
    target: CommentTarget,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSignoff {
    statement: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResponse {
    text: String,
}

/// `PUT .../responses/{finding}`: the response document as it now stands.
#[derive(Debug, Serialize)]
pub struct Responded {
    finding: Uuid,
    trust_response: ResponseView,
}

/// A reopening's reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reopen {
    reason: String,
}

/// The id of the link a reopening added to the sign-off chain.
#[derive(Debug, Serialize)]
pub struct Reopened {
    id: Uuid,
}

fn response_target(doc: Uuid) -> String {
    format!("trust_response:{doc}")
}

fn unprocessable(code: &'static str, message: String) -> AppError {
    AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

impl Acting<'_> {
    /// A reviewer's comment, in the review document. The review document names findings
    /// and devices of the inspection document: they must be there (an item is checked
    /// against the checklist by core).
    pub async fn comment(
        &self,
        id: &str,
        body: impl Input<NewComment>,
    ) -> Result<Comment, AppError> {
        if !access::can_review(&self.caller.user) {
            return Err(self
                .forbidden("inspections", "comment on inspections")
                .await);
        }
        let rec = self.visible(id).await?;
        let NewComment {
            target: about,
            text,
        } = body()?;
        let what = target(rec.id);
        if matches!(about, CommentTarget::Finding(_) | CommentTarget::Device(_)) {
            let view = self.inspection_view(&rec).await?;
            let known = match &about {
                CommentTarget::Finding(f) => view.findings.iter().any(|x| x.id == *f),
                CommentTarget::Device(d) => view.devices.iter().any(|x| x.id == *d),
                _ => true,
            };
            if !known {
                let e = unprocessable("unknown_target", format!("the inspection has no {about:?}"));
                return self.audited(&what, "comment", Err(e)).await;
            }
        }
        let comment = Comment {
            id: Uuid::new_v4(),
            target: about,
            text,
            by: self.caller.user.name.clone(),
            at: chrono::Utc::now(),
            released: None,
        };
        let c = comment.clone();
        let result = self
            .edit_review(&rec, move |review, checklist| {
                let stamp = Stamp::new(c.by, c.at);
                review.comment(c.id, c.target, &c.text, Some(checklist), &stamp)
            })
            .await;
        self.audited(&what, "comment", result).await?;
        Ok(comment)
    }

    /// A reviewer releases comment `comment` to the trust: the comment as it now stands
    /// (with who released it). One the review document does not hold is 404
    /// `unknown_comment`.
    pub async fn release(&self, id: &str, comment: &str) -> Result<Comment, AppError> {
        if !access::can_review(&self.caller.user) {
            return Err(self
                .forbidden("inspections", "release comments to a trust")
                .await);
        }
        let rec = self.visible(id).await?;
        let what = target(rec.id);
        let unknown = || {
            let message = format!("the inspection has no comment {comment:?}");
            AppError::new(StatusCode::NOT_FOUND, "unknown_comment", message)
        };
        let Ok(cid) = comment.parse::<Uuid>() else {
            return self.audited(&what, "release", Err(unknown())).await;
        };
        let stamp = Stamp::new(self.caller.user.name.clone(), chrono::Utc::now());
        let result = self
            .edit_review(&rec, move |review, _| review.release(cid, &stamp))
            .await;
        self.audited(&what, "release", result).await?;
        // The trust's lead reads released comments through the inspection's view, and
        // does not follow the review document: pages following the inspection hear of it.
        self.state.docs.tell_watchers(rec.id);
        let view = self.review_view(&rec).await?;
        view.comments
            .into_iter()
            .find(|c| c.id == cid)
            .ok_or_else(unknown)
    }

    /// A reviewer's sign-off of a submitted inspection (a link of its sign-off chain).
    pub async fn sign_off(
        &self,
        id: &str,
        body: impl Input<NewSignoff>,
    ) -> Result<Signoff, AppError> {
        if !access::can_review(&self.caller.user) {
            return Err(self.forbidden("inspections", "sign off inspections").await);
        }
        let rec = self.visible(id).await?;
        let NewSignoff { statement } = body()?;
        let signoff = Signoff {
            id: Uuid::new_v4(),
            role: SignoffRole::Reviewer,
            kind: LinkKind::SignOff,
            statement,
            by: self.caller.user.name.clone(),
            at: chrono::Utc::now(),
            heads: Vec::new(),
            content: None,
            prev: None,
            hash: None,
        };
        let s = signoff.clone();
        let result = self
            .edit_inspection(&rec, move |insp| {
                insp.sign_off(s.id, s.role, &s.statement, &Stamp::new(s.by, s.at))
            })
            .await;
        self.audited(&target(rec.id), "sign_off", result).await?;
        Ok(signoff)
    }

    /// A reviewer reopens a signed inspection, with a reason (a link of the sign-off
    /// chain and the move back to in progress, in one change); a new sign-off is then
    /// needed.
    pub async fn reopen(&self, id: &str, body: impl Input<Reopen>) -> Result<Reopened, AppError> {
        if !access::can_review(&self.caller.user) {
            return Err(self.forbidden("inspections", "reopen inspections").await);
        }
        let rec = self.visible(id).await?;
        let Reopen { reason } = body()?;
        let link = Uuid::new_v4();
        let by = self.caller.user.name.clone();
        let result = self
            .edit_inspection(&rec, move |insp| {
                insp.reopen(link, &reason, &Stamp::new(by, chrono::Utc::now()))
            })
            .await;
        self.audited(&target(rec.id), "reopen", result).await?;
        Ok(Reopened { id: link })
    }

    /// The trust lead's response to finding `finding`; a second replaces it. The
    /// inspection must hold the finding: a response to nothing would show nowhere.
    pub async fn respond(
        &self,
        id: &str,
        finding: &str,
        body: impl Input<NewResponse>,
    ) -> Result<Responded, AppError> {
        let user = &self.caller.user;
        if !access::can_respond(user) {
            return Err(self
                .forbidden("trust responses", "respond to findings for a trust")
                .await);
        }
        let rec = self.visible(id).await?;
        let right = access::doc_right(
            user,
            &DocAccess {
                doc: rec.response_doc,
                kind: DocKind::TrustResponse,
                inspection: rec.clone(),
            },
        );
        if !right.can_write() {
            return Err(self.hidden(rec.id).await);
        }
        let NewResponse { text } = body()?;
        let what = response_target(rec.response_doc);
        // Checked before the document is touched, so that a refusal costs nothing.
        let len = text.chars().count();
        if len > MAX_TEXT_CHARS {
            let message =
                format!("response is {len} characters, more than the {MAX_TEXT_CHARS} allowed");
            return self
                .audited(&what, "respond", Err(unprocessable("too_long", message)))
                .await;
        }
        let finding_id = match finding.parse::<Uuid>() {
            Ok(f) => {
                let view = self.inspection_view(&rec).await?;
                view.findings.iter().any(|x| x.id == f).then_some(f)
            }
            Err(_) => None,
        };
        let Some(finding_id) = finding_id else {
            let message = format!("the inspection has no finding {finding:?}");
            let e = AppError::new(StatusCode::NOT_FOUND, "unknown_finding", message);
            return self.audited(&what, "respond", Err(e)).await;
        };
        let stamp = Stamp::new(user.name.clone(), chrono::Utc::now());
        let result = match self
            .edit_response(&rec, move |r| r.respond(finding_id, &text, &stamp))
            .await
        {
            Ok(()) => self.response_view(&rec).await,
            Err(e) => Err(e),
        };
        let view = self.audited(&what, "respond", result).await?;
        Ok(Responded {
            finding: finding_id,
            trust_response: view,
        })
    }
}
