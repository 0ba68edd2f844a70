//! `GET /api/v1/inspections/{id}/join`: the inspection's answers beside the latest
//! telemetry for its trust ([`crate::join`]); and `.../telemetry-summary`, the figures
//! behind the trust's charts.
//!
//! Whoever may read the inspection document may read both: reviewers, the assigned
//! inspectors, and the trust's lead once the inspection is shared. Everyone else, admins
//! included (they hold no document rights), gets the 404 of an id that does not exist.

use axum::Json;
use axum::extract::{Path, State};
use uuid::Uuid;

use super::audit;
use crate::AppState;
use crate::access;
use crate::auth::Caller;
use crate::error::AppError;
use crate::inspections;
use crate::join::{Join, TrustSummary};
use crate::storage::InspectionRecord;

fn target(id: Uuid) -> String {
    format!("inspection:{id}")
}

/// The record of `id` if the caller may read its inspection document; else the 404 of a
/// missing id (and an audit event for the refusal).
async fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<InspectionRecord, AppError> {
    let storage = state.storage.clone();
    let found = match id.parse::<Uuid>() {
        Ok(id) => tokio::task::spawn_blocking(move || storage.inspection(id)).await??,
        Err(_) => None,
    };
    match found {
        Some(rec) => {
            if !access::can_read_view(&caller.user, &rec) {
                audit(state, Some(caller), "denied", &target(rec.id), "denied").await;
                return Err(AppError::not_found());
            }
            Ok(rec)
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

pub(super) async fn get_join(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Join>, AppError> {
    let rec = readable(&state, &caller, &id).await?;
    // The view carries the record's trust and sites: the join reads the telemetry of the
    // trust the server assigned the inspection to, whatever its document says.
    let view = super::documents::inspection_view(&state, &caller, &rec).await?;
    let storage = state.storage.clone();
    let r = rec.clone();
    let join = tokio::task::spawn_blocking(move || -> Result<Join, AppError> {
        let checklist = inspections::pinned_checklist(&*storage, &r).map_err(AppError::internal)?;
        Ok(storage.join_telemetry(&view, &checklist)?)
    })
    .await??;
    audit(&state, Some(&caller), "doc_read", &target(rec.id), "join").await;
    Ok(Json(join))
}

/// `GET /api/v1/inspections/{id}/telemetry-summary`: the figures behind the charts of the
/// inspection's trust ([`crate::join::telemetry_summary`]), under the same right as the join.
pub(super) async fn get_summary(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrustSummary>, AppError> {
    let rec = readable(&state, &caller, &id).await?;
    let storage = state.storage.clone();
    let trust = rec.trust.clone();
    let summary = tokio::task::spawn_blocking(move || storage.telemetry_summary(&trust)).await??;
    audit(
        &state,
        Some(&caller),
        "doc_read",
        &target(rec.id),
        "telemetry_summary",
    )
    .await;
    Ok(Json(summary))
}
