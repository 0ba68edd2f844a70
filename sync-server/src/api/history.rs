//! `GET /api/v1/inspections/{id}/history` ([`crate::service::history`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::history::{History, HistoryQuery};

pub(super) async fn get_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<History>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_query", e.body_text()))?;
    Ok(Json(state.acting(&caller).history(&id, q).await?))
}
