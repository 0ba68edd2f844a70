//! `/api/v1/inspections`: list, read, create, assign, share, change state.
//!
//! Who may do what is [`crate::access`]; `docs/ACCESS.md` has the same rules per route.
//! A caller who may not see an inspection gets the same 404 as for an id that does not
//! exist. A role that may never do an operation (an inspector creating an inspection, a
//! trust lead changing a state) gets 403 before the id is even looked up, so a 403 never
//! tells that an id exists.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::inspection::{InspectionView, Stamp, TeamRole};
use wardcheck_core::response::ResponseView;

use super::documents::{blocking, edit_inspection, inspection_view, response_view};
use super::{JsonBody, audit};
use crate::auth::Caller;
use crate::error::AppError;
use crate::inspections::{self, CreateError, CreateInspection};
use crate::storage::{AsideRow, DocAccess, DocKind, InspectionQuery, InspectionRecord, Role};
use crate::{AppState, access, limits};

/// `GET /api/v1/inspections` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    trust: Option<String>,
    state: Option<wardcheck_core::inspection::State>,
    after: Option<Uuid>,
    limit: Option<usize>,
}

/// One page of a listing; `next` is the `after` of the next page, null on the last.
#[derive(Debug, Serialize)]
pub(super) struct Page {
    items: Vec<InspectionRecord>,
    next: Option<Uuid>,
}

/// `GET /api/v1/inspections/{id}`: the record, and each document the caller may read.
#[derive(Debug, Serialize)]
pub(super) struct Detail {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    user: String,
    /// `lead_inspector` or `inspector`; the first assigned leads when none is given.
    #[serde(default)]
    role: Option<TeamRole>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateBody {
    state: wardcheck_core::inspection::State,
}

pub(super) fn target(id: Uuid) -> String {
    format!("inspection:{id}")
}

/// The record of `id` if the caller may see it; else the 404 of a missing id (and an
/// audit event for the refusal).
pub(super) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<InspectionRecord, AppError> {
    let found = match id.parse::<Uuid>() {
        Ok(id) => {
            let storage = state.storage.clone();
            blocking(move || Ok(storage.inspection(id)?)).await?
        }
        Err(_) => None,
    };
    match found {
        Some(rec) if access::can_see(&caller.user, &rec) => Ok(rec),
        Some(rec) => {
            audit(state, Some(caller), "denied", &target(rec.id), "denied").await;
            Err(AppError::not_found())
        }
        None => {
            let what = id
                .parse::<Uuid>()
                .map_or("inspection:(malformed)".into(), target);
            audit(state, Some(caller), "denied", &what, "not_found").await;
            Err(AppError::not_found())
        }
    }
}

pub(super) async fn forbidden(
    state: &AppState,
    caller: &Caller,
    what: &str,
    action: &str,
) -> AppError {
    audit(state, Some(caller), "denied", what, "role").await;
    AppError::forbidden(format!("a {} may not {action}", caller.user.role.name()))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_query", e.body_text()))?;
    // `limit=1000000` is honoured as the largest page, not refused: a dashboard asking
    // for "everything" gets a page and a cursor.
    let limit = q
        .limit
        .unwrap_or(limits::DEFAULT_PAGE)
        .clamp(1, limits::MAX_PAGE);
    let mut query = InspectionQuery {
        trust: q.trust,
        state: q.state,
        assignee: None,
        shared_only: false,
        after: q.after,
        // One more than the page, to know whether there is a next page.
        limit: limit + 1,
    };
    // The caller's scope goes into the query itself, so that a page is full of what the
    // caller may see rather than a page of everything filtered afterwards.
    match &caller.user.role {
        Role::Inspector => query.assignee = Some(caller.user.name.clone()),
        Role::TrustLead(t) => {
            if query.trust.as_ref().is_some_and(|asked| asked != t) {
                return Ok(Json(Page {
                    items: vec![],
                    next: None,
                }));
            }
            query.trust = Some(t.clone());
            query.shared_only = true;
        }
        Role::Reviewer | Role::Admin => {}
    }
    let storage = state.storage.clone();
    let mut items = blocking(move || Ok(storage.list_inspections(&query)?)).await?;
    // The query already holds the scope; this is the belt to its braces.
    items.retain(|r| access::can_see(&caller.user, r));
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(Page { items, next }))
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Detail>, AppError> {
    let record = visible(&state, &caller, &id).await?;
    let read_inspection = access::can_read_view(&caller.user, &record);
    let read_response = access::doc_right(
        &caller.user,
        &DocAccess {
            doc: record.response_doc,
            kind: DocKind::TrustResponse,
            inspection: record.clone(),
        },
    )
    .can_read();
    let inspection = if read_inspection {
        Some(inspection_view(&state, &caller, &record).await?)
    } else {
        None
    };
    let trust_response = if read_response {
        Some(response_view(&state, &record).await?)
    } else {
        None
    };
    let set_aside = if matches!(caller.user.role, Role::Reviewer) {
        let storage = state.storage.clone();
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
        audit(
            &state,
            Some(&caller),
            "doc_read",
            &record.id.to_string(),
            "ok",
        )
        .await;
    }
    if trust_response.is_some() {
        let doc = record.response_doc.to_string();
        audit(&state, Some(&caller), "doc_read", &doc, "ok").await;
    }
    Ok(Json(Detail {
        record,
        inspection,
        trust_response,
        set_aside,
    }))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, AppError> {
    if !access::can_manage(&caller.user) {
        return Err(forbidden(&state, &caller, "inspections", "create inspections").await);
    }
    let req: CreateInspection = body.parse()?;
    let storage = state.storage.clone();
    let by = caller.user.name.clone();
    let rec = blocking(move || {
        inspections::create(&*storage, &req, &by, chrono::Utc::now()).map_err(create_error)
    })
    .await?;
    audit(
        &state,
        Some(&caller),
        "doc_write",
        &target(rec.id),
        "created",
    )
    .await;
    let mut res = (StatusCode::CREATED, Json(&rec)).into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/inspections/{}", rec.id))
            .map_err(AppError::internal)?,
    );
    Ok(res)
}

pub(super) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<InspectionRecord>, AppError> {
    if !access::can_manage(&caller.user) {
        return Err(forbidden(&state, &caller, "inspections", "assign inspections").await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let AssignBody { user, role } = body.parse()?;
    let storage = state.storage.clone();
    let id = rec.id;
    let role = role.unwrap_or(if rec.lead.is_none() {
        TeamRole::LeadInspector
    } else {
        TeamRole::Inspector
    });
    let rec = blocking(move || {
        match storage.user_by_name(&user)? {
            Some(u) if u.role == Role::Inspector => {}
            Some(_) => {
                return Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_an_inspector",
                    format!("{user:?} is not an inspector: only inspectors join a team"),
                ));
            }
            None => {
                return Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_user",
                    format!("no user {user:?} to assign"),
                ));
            }
        }
        if role == TeamRole::Reviewer {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "a team role is lead_inspector or inspector",
            ));
        }
        storage.assign(id, &user, role)?;
        storage.inspection(id)?.ok_or_else(AppError::not_found)
    })
    .await?;
    audit(&state, Some(&caller), "assign", &target(id), "ok").await;
    // Open pages show the team.
    state.docs.tell_watchers(id);
    Ok(Json(rec))
}

/// Shares an inspection with its trust: the reviewer's move of its state from submitted
/// to shared with the trust, held to the write policy like any other (so a draft is
/// never shared, and only a reviewer shares). The record's `shared_at` follows the state.
pub(super) async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InspectionRecord>, AppError> {
    if !matches!(caller.user.role, Role::Reviewer) {
        return Err(forbidden(&state, &caller, "inspections", "share inspections").await);
    }
    let rec = visible(&state, &caller, &id).await?;
    let id = rec.id;
    let result = change_state_in_doc(
        &state,
        &caller,
        rec,
        wardcheck_core::inspection::State::SharedWithTrust,
    )
    .await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    audit(&state, Some(&caller), "share", &target(id), outcome).await;
    result.map(Json)
}

pub(super) async fn change_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<InspectionRecord>, AppError> {
    // Trust leads and admins never change a state: 403 before the id is looked up.
    if matches!(caller.user.role, Role::TrustLead(_) | Role::Admin) {
        return Err(forbidden(
            &state,
            &caller,
            "inspections",
            "change an inspection's state",
        )
        .await);
    }
    let rec = visible(&state, &caller, &id).await?;
    if !access::can_change_state(&caller.user, &rec) {
        return Err(forbidden(
            &state,
            &caller,
            &target(rec.id),
            "change this inspection's state",
        )
        .await);
    }
    let StateBody { state: to } = body.parse()?;
    let id = rec.id;
    let result = change_state_in_doc(&state, &caller, rec, to).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    audit(&state, Some(&caller), "doc_write", &target(id), outcome).await;
    result.map(Json)
}

/// Makes the state change in the document, through the API's one write path
/// ([`super::edit`]): synced into the document the sync engine holds, so connected
/// clients receive it and it is committed as their changes are.
async fn change_state_in_doc(
    state: &AppState,
    caller: &Caller,
    rec: InspectionRecord,
    to: wardcheck_core::inspection::State,
) -> Result<InspectionRecord, AppError> {
    let stamp = Stamp::new(caller.user.name.clone(), chrono::Utc::now());
    let id = rec.id;
    edit_inspection(state, caller, &rec, move |insp| {
        insp.change_state(to, &stamp)
    })
    .await?;
    let storage = state.storage.clone();
    blocking(move || storage.inspection(id)?.ok_or_else(AppError::not_found)).await
}

fn create_error(e: CreateError) -> AppError {
    let unprocessable = |code, e: &dyn std::fmt::Display| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    };
    match e {
        CreateError::UnknownChecklist(_) => unprocessable("unknown_checklist", &e),
        CreateError::UnknownUser(_) => unprocessable("unknown_user", &e),
        CreateError::Inspection(ref inner) => unprocessable("invalid", inner),
        CreateError::Storage(s) => s.into(),
        other => AppError::internal(other),
    }
}
