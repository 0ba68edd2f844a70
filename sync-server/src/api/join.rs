//! `GET /api/v1/inspections/{id}/join` and `.../telemetry-summary`
//! ([`crate::service::join`]).

use axum::Json;
use axum::extract::{Path, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::join::{Join, TrustSummary};

pub(super) async fn get_join(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Join>, AppError> {
    Ok(Json(state.acting(&caller).join(&id).await?))
}

pub(super) async fn get_summary(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrustSummary>, AppError> {
    Ok(Json(state.acting(&caller).telemetry_summary(&id).await?))
}
