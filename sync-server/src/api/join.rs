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
use wardcheck_core::inspection::Inspection;

use super::audit;
use crate::AppState;
use crate::access;
use crate::auth::Caller;
use crate::error::AppError;
use crate::inspections::{self, encode_heads};
use crate::join::{Join, TrustSummary};
use crate::storage::{DocAccess, DocKind, InspectionRecord, StorageError};

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
            let right = access::doc_right(
                &caller.user,
                &DocAccess {
                    doc: rec.id,
                    kind: DocKind::Inspection,
                    inspection: rec.clone(),
                },
            );
            if !right.can_read() {
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
    let storage = state.storage.clone();
    let r = rec.clone();
    let join = tokio::task::spawn_blocking(move || -> Result<Join, AppError> {
        let stored = storage.load_doc(r.id)?.ok_or_else(|| {
            AppError::internal(format!("document {} has a record but no data", r.id))
        })?;
        let mut doc = automerge::AutoCommit::load(&stored.snapshot).map_err(AppError::internal)?;
        for change in &stored.changes {
            doc.load_incremental(change).map_err(AppError::internal)?;
        }
        if encode_heads(&doc.get_heads()) != stored.heads {
            return Err(AppError::internal(StorageError::Corrupt(format!(
                "document {} does not reach its stored heads",
                r.id
            ))));
        }
        let checklist = inspections::pinned_checklist(&*storage, &r).map_err(AppError::internal)?;
        let view = Inspection::from_doc(doc, checklist.clone())
            .and_then(|i| i.view())
            .map_err(AppError::internal)?;
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
