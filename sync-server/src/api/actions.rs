//! Corrective actions ([`crate::service::actions`]):
//!
//! - `POST /api/v1/inspections/{id}/actions`: an inspector of the inspection or a
//!   reviewer raises one from a finding or a failed item (201);
//! - `GET /api/v1/actions?trust=T`: the actions the caller may see;
//! - `GET /api/v1/actions/{id}`: one, with every step;
//! - `POST /api/v1/actions/{id}/steps`: the next step (`{"step": "propose" | "accept" |
//!   "send_back" | "progress" | "close", ...}`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::JsonBody;
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::actions::{ActionQuery, ActionView};

pub(super) async fn raise(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let action = state
        .acting(&caller)
        .raise_action(&id, || body.parse())
        .await?;
    Ok((StatusCode::CREATED, Json(action)).into_response())
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<ActionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ActionView>>, AppError> {
    let parse = || {
        q.map(|Query(q)| q)
            .map_err(|e| AppError::bad_request("bad_query", e.body_text()))
    };
    Ok(Json(state.acting(&caller).actions(parse).await?))
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionView>, AppError> {
    Ok(Json(state.acting(&caller).action(&id).await?))
}

pub(super) async fn step(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<ActionView>, AppError> {
    Ok(Json(
        state
            .acting(&caller)
            .step_action(&id, || body.parse())
            .await?,
    ))
}
