//! Inspections: listed, read, created, assigned, shared and moved through their life.
//!
//! Who may do what is [`crate::access`]; `docs/ACCESS.md` has the same rules per route.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::inspection::{InspectionView, Stamp, State, TeamRole};
use wardcheck_core::response::ResponseView;

use super::{Acting, Input, blocking, target};
use crate::error::AppError;
use crate::inspections::{self, CreateError, CreateInspection};
use crate::storage::{
    AsideRow, DocAccess, DocKind, InspectionQuery, InspectionRecord, Role, Storage, StorageError,
    User,
};
use crate::{access, limits};

/// What a listing asks for (`GET /api/v1/inspections`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    trust: Option<String>,
    state: Option<State>,
    after: Option<Uuid>,
    limit: Option<usize>,
}

/// One page of a listing; `next` is the `after` of the next page, null on the last.
#[derive(Debug, Serialize)]
pub struct Page {
    items: Vec<InspectionRecord>,
    next: Option<Uuid>,
}

/// An inspection as one caller may read it: the record, and each document the caller may
/// read.
#[derive(Debug, Serialize)]
pub struct Detail {
    record: InspectionRecord,
    /// The inspection document's view; null for a caller with no right to the document
    /// (admins).
    inspection: Option<InspectionView>,
    /// The trust response document's view; null for a caller with no right to it.
    trust_response: Option<ResponseView>,
    /// For reviewers: stored rows of the inspection's documents that no longer loaded and
    /// were set aside when the document was rebuilt (kept, never deleted). Absent for
    /// everyone else.
    #[serde(skip_serializing_if = "Option::is_none")]
    set_aside: Option<Vec<AsideRow>>,
}

/// `POST /api/v1/inspections/{id}/schedule`: a visit's new dates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    visit_start: chrono::NaiveDate,
    #[serde(default)]
    visit_end: Option<chrono::NaiveDate>,
}

/// A visit's dates as they now stand.
#[derive(Debug, Serialize)]
pub struct Dates {
    visit_start: chrono::NaiveDate,
    visit_end: Option<chrono::NaiveDate>,
}

/// Who joins an inspection's team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    user: String,
    /// `lead_inspector` or `inspector`; the first assigned leads when none is given.
    #[serde(default)]
    role: Option<TeamRole>,
}

/// The state an inspection moves to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeState {
    state: State,
}

/// `query` narrowed to what `user` may see; none when that is nothing (a trust lead
/// asking for another trust). The caller's scope goes into the query itself, so that a
/// page is full of what the caller may see rather than a page of everything filtered
/// afterwards.
pub(super) fn scope(user: &User, mut query: InspectionQuery) -> Option<InspectionQuery> {
    match &user.role {
        Role::Inspector => query.assignee = Some(user.name.clone()),
        Role::TrustLead(t) => {
            if query.trust.as_ref().is_some_and(|asked| asked != t) {
                return None;
            }
            query.trust = Some(t.clone());
            query.shared_only = true;
        }
        Role::Reviewer | Role::Admin => {}
    }
    Some(query)
}

/// Every inspection `user` may see (of `trust` only, if given), ids ascending, read a
/// page at a time.
pub(super) fn all_visible(
    storage: &dyn Storage,
    user: &User,
    trust: Option<String>,
) -> Result<Vec<InspectionRecord>, StorageError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let Some(query) = scope(
            user,
            InspectionQuery {
                trust: trust.clone(),
                state: None,
                assignee: None,
                shared_only: false,
                after,
                limit: limits::MAX_PAGE,
            },
        ) else {
            return Ok(out);
        };
        let page = storage.list_inspections(&query)?;
        let full = page.len() >= limits::MAX_PAGE;
        after = page.last().map(|r| r.id);
        out.extend(page.into_iter().filter(|r| access::can_see(user, r)));
        if !full {
            return Ok(out);
        }
    }
}

impl Acting<'_> {
    /// One page of the inspections the caller may see. `limit=1000000` is honoured as
    /// the largest page, not refused: a dashboard asking for "everything" gets a page and
    /// a cursor.
    pub async fn list(&self, q: ListQuery) -> Result<Page, AppError> {
        let user = &self.caller.user;
        let limit = q
            .limit
            .unwrap_or(limits::DEFAULT_PAGE)
            .clamp(1, limits::MAX_PAGE);
        let Some(query) = scope(
            user,
            InspectionQuery {
                trust: q.trust,
                state: q.state,
                assignee: None,
                shared_only: false,
                after: q.after,
                // One more than the page, to know whether there is a next page.
                limit: limit + 1,
            },
        ) else {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        };
        let storage = self.state.storage.clone();
        let mut items = blocking(move || Ok(storage.list_inspections(&query)?)).await?;
        // The query already holds the scope; this is the belt to its braces.
        items.retain(|r| access::can_see(user, r));
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The record of `id` and each of its documents the caller may read (each read
    /// audited).
    pub async fn detail(&self, id: &str) -> Result<Detail, AppError> {
        let user = &self.caller.user;
        let record = self.visible(id).await?;
        let read_response = access::doc_right(
            user,
            &DocAccess {
                doc: record.response_doc,
                kind: DocKind::TrustResponse,
                inspection: record.clone(),
            },
        )
        .can_read();
        let inspection = if access::can_read_view(user, &record) {
            Some(self.inspection_view(&record).await?)
        } else {
            None
        };
        let trust_response = if read_response {
            Some(self.response_view(&record).await?)
        } else {
            None
        };
        let set_aside = if matches!(user.role, Role::Reviewer) {
            let storage = self.state.storage.clone();
            let docs = [record.id, record.response_doc, record.review_doc];
            Some(
                blocking(move || {
                    let mut rows = Vec::new();
                    for d in docs {
                        rows.extend(storage.set_aside(d)?);
                    }
                    Ok(rows)
                })
                .await?,
            )
        } else {
            None
        };
        if inspection.is_some() {
            self.audit("doc_read", &record.id.to_string(), "ok").await;
        }
        if trust_response.is_some() {
            let doc = record.response_doc.to_string();
            self.audit("doc_read", &doc, "ok").await;
        }
        Ok(Detail {
            record,
            inspection,
            trust_response,
            set_aside,
        })
    }

    /// Creates an inspection (admins and reviewers).
    pub async fn create(
        &self,
        body: impl Input<CreateInspection>,
    ) -> Result<InspectionRecord, AppError> {
        if !access::can_manage(&self.caller.user) {
            return Err(self.forbidden("inspections", "create inspections").await);
        }
        let req = match body() {
            Ok(r) => r,
            Err(e) => return self.audited("inspections", "created", Err(e)).await,
        };
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        let by = self.caller.user.name.clone();
        let made = blocking(move || {
            inspections::create(&*storage, &*telemetry, &req, &by, chrono::Utc::now())
                .map_err(create_error)
        })
        .await;
        let rec = match made {
            Ok(rec) => rec,
            // A refused plan is audited with its code, as every refused write is.
            Err(e) => return self.audited("inspections", "created", Err(e)).await,
        };
        self.audit("doc_write", &target(rec.id), "created").await;
        Ok(rec)
    }

    /// Adds an inspector to the team of inspection `id`.
    pub async fn assign(
        &self,
        id: &str,
        body: impl Input<Assign>,
    ) -> Result<InspectionRecord, AppError> {
        if !access::can_manage(&self.caller.user) {
            return Err(self.forbidden("inspections", "assign inspections").await);
        }
        let rec = self.visible(id).await?;
        let Assign { user, role } = body()?;
        let storage = self.state.storage.clone();
        let id = rec.id;
        let role = role.unwrap_or(if rec.lead.is_none() {
            TeamRole::LeadInspector
        } else {
            TeamRole::Inspector
        });
        let rec = blocking(move || {
            let unprocessable = |code, message| {
                Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    message,
                ))
            };
            match storage.user_by_name(&user)? {
                Some(u) if u.role == Role::Inspector && !u.disabled => {}
                Some(_) => {
                    return unprocessable(
                        "not_an_inspector",
                        format!("{user:?} is not an inspector: only inspectors join a team"),
                    );
                }
                None => {
                    return unprocessable("unknown_user", format!("no user {user:?} to assign"));
                }
            }
            if role == TeamRole::Reviewer {
                return unprocessable(
                    "invalid_field",
                    "a team role is lead_inspector or inspector".into(),
                );
            }
            storage.assign(id, &user, role)?;
            storage.inspection(id)?.ok_or_else(AppError::not_found)
        })
        .await?;
        self.audit("assign", &target(id), "ok").await;
        // Open pages show the team.
        self.state.docs.tell_watchers(id);
        Ok(rec)
    }

    /// Shares an inspection with its trust: the reviewer's move of its state from
    /// submitted to shared with the trust, held to the write policy like any other (so a
    /// draft is never shared, and only a reviewer shares). The record's `shared_at`
    /// follows the state.
    pub async fn share(&self, id: &str) -> Result<InspectionRecord, AppError> {
        if !matches!(self.caller.user.role, Role::Reviewer) {
            return Err(self.forbidden("inspections", "share inspections").await);
        }
        let rec = self.visible(id).await?;
        let id = rec.id;
        let result = self.move_to(rec, State::SharedWithTrust).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code,
        };
        self.audit("share", &target(id), outcome).await;
        result
    }

    /// Moves a planned visit to new dates (reviewers and admins; a draft only): the
    /// server's change to the document, so every device that holds it gets the new dates
    /// at its next sync. Audited (`doc_write`, `reschedule`).
    pub async fn reschedule(
        &self,
        id: &str,
        body: impl Input<Reschedule>,
    ) -> Result<Dates, AppError> {
        if !matches!(self.caller.user.role, Role::Reviewer | Role::Admin) {
            return Err(self.forbidden("inspections", "reschedule visits").await);
        }
        let rec = self.visible(id).await?;
        let what = target(rec.id);
        let Reschedule {
            visit_start,
            visit_end,
        } = match body() {
            Ok(b) => b,
            Err(e) => return self.audited(&what, "reschedule", Err(e)).await,
        };
        let now = chrono::Utc::now();
        // Checked before anything is written (the server binds an actor for its change):
        // a refused reschedule leaves no trace but its audit event. The document checks
        // both again under its lock.
        if rec.state != State::Draft {
            let e = AppError::conflict(
                "wrong_state",
                "rescheduling needs the inspection to be a draft: its visit has begun",
            );
            return self.audited(&what, "reschedule", Err(e)).await;
        }
        if let Err(e) = wardcheck_core::inspection::validate_dates(
            Some(visit_start),
            visit_end,
            now.date_naive(),
        ) {
            return self
                .audited(
                    &what,
                    "reschedule",
                    Err(super::documents::inspection_error(e)),
                )
                .await;
        }
        let stamp = Stamp::new(crate::storage::SERVER_AUTHOR, now);
        let result = self
            .edit_inspection_as_server(&rec, move |insp| {
                insp.reschedule(visit_start, visit_end, &stamp)
            })
            .await
            .map(|()| Dates {
                visit_start,
                visit_end,
            });
        self.audited(&what, "reschedule", result).await
    }

    /// Calls a planned visit off (reviewers and admins; a draft only): the server's move
    /// of the document to `cancelled`, after which nothing in it changes; devices get the
    /// state by sync. Audited (`doc_write`, `cancel`).
    pub async fn cancel(&self, id: &str) -> Result<InspectionRecord, AppError> {
        if !matches!(self.caller.user.role, Role::Reviewer | Role::Admin) {
            return Err(self.forbidden("inspections", "cancel visits").await);
        }
        let rec = self.visible(id).await?;
        let what = target(rec.id);
        if rec.state != State::Draft {
            let e = AppError::conflict(
                "wrong_state",
                "only a planned visit (a draft) is cancelled: this one has begun",
            );
            return self.audited(&what, "cancel", Err(e)).await;
        }
        let stamp = Stamp::new(crate::storage::SERVER_AUTHOR, chrono::Utc::now());
        let id = rec.id;
        let result = self
            .edit_inspection_as_server(&rec, move |insp| insp.cancel(&stamp))
            .await;
        let result = match result {
            // The record follows the document when the change is indexed; set here too, so
            // the record never says draft of a cancelled document if that update failed.
            Ok(()) => {
                let storage = self.state.storage.clone();
                blocking(move || {
                    storage.set_state(id, State::Cancelled)?;
                    storage.inspection(id)?.ok_or_else(AppError::not_found)
                })
                .await
            }
            Err(e) => Err(e),
        };
        self.audited(&what, "cancel", result).await
    }

    /// Moves inspection `id` to another state, held to the write policy.
    pub async fn change_state(
        &self,
        id: &str,
        body: impl Input<ChangeState>,
    ) -> Result<InspectionRecord, AppError> {
        // Trust leads and admins never change a state: 403 before the id is looked up.
        if matches!(self.caller.user.role, Role::TrustLead(_) | Role::Admin) {
            return Err(self
                .forbidden("inspections", "change an inspection's state")
                .await);
        }
        let rec = self.visible(id).await?;
        if !access::can_change_state(&self.caller.user, &rec) {
            return Err(self
                .forbidden(&target(rec.id), "change this inspection's state")
                .await);
        }
        let ChangeState { state: to } = body()?;
        let what = target(rec.id);
        let result = self.move_to(rec, to).await;
        self.audited(&what, "ok", result).await
    }

    /// Makes the state change in the document, through the one write path: synced into
    /// the document the sync engine holds, so connected clients receive it and it is
    /// committed as their changes are; then the record as it now stands.
    async fn move_to(
        &self,
        rec: InspectionRecord,
        to: State,
    ) -> Result<InspectionRecord, AppError> {
        let stamp = Stamp::new(self.caller.user.name.clone(), chrono::Utc::now());
        let id = rec.id;
        self.edit_inspection(&rec, move |insp| insp.change_state(to, &stamp))
            .await?;
        let storage = self.state.storage.clone();
        blocking(move || storage.inspection(id)?.ok_or_else(AppError::not_found)).await
    }
}

fn create_error(e: CreateError) -> AppError {
    let unprocessable = |code, e: &dyn std::fmt::Display| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    };
    match e {
        CreateError::UnknownChecklist(_) => unprocessable("unknown_checklist", &e),
        CreateError::UnknownUser(_) => unprocessable("unknown_user", &e),
        CreateError::NotAnInspector(_) => unprocessable("not_an_inspector", &e),
        CreateError::Inspection(wardcheck_core::inspection::InspectionError::InvalidDates(
            ref m,
        )) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_dates",
            format!("visit dates: {m}"),
        ),
        CreateError::Inspection(ref inner) => unprocessable("invalid", inner),
        CreateError::Storage(s) => s.into(),
        other => AppError::internal(other),
    }
}
