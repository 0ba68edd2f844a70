//! `/api/v1/checklists`: the checklists the server holds, for devices
//! ([`crate::service::checklists`]).

use axum::Json;
use axum::extract::{Path, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::checklists::{ChecklistFiles, ChecklistList};

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ChecklistList>, AppError> {
    Ok(Json(state.acting(&caller).checklists().await?))
}

pub(super) async fn files(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<ChecklistFiles>, AppError> {
    Ok(Json(
        state.acting(&caller).checklist_files(&id, &version).await?,
    ))
}
