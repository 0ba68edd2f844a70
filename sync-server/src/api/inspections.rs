//! `/api/v1/inspections`: list, read, create, assign, reschedule, cancel, share, change
//! state
//! ([`crate::service::inspections`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::JsonBody;
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::inspections::{Dates, Detail, ListQuery, Page};
use crate::storage::InspectionRecord;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_query", e.body_text()))?;
    Ok(Json(state.acting(&caller).list(q).await?))
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Detail>, AppError> {
    Ok(Json(state.acting(&caller).detail(&id).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, AppError> {
    let rec = state.acting(&caller).create(|| body.parse()).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/inspections/{}", rec.id))
        .map_err(AppError::internal)?;
    let mut res = (StatusCode::CREATED, Json(&rec)).into_response();
    res.headers_mut().insert(header::LOCATION, location);
    Ok(res)
}

pub(super) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<InspectionRecord>, AppError> {
    Ok(Json(
        state.acting(&caller).assign(&id, || body.parse()).await?,
    ))
}

pub(super) async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InspectionRecord>, AppError> {
    Ok(Json(state.acting(&caller).share(&id).await?))
}

pub(super) async fn change_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<InspectionRecord>, AppError> {
    let acting = state.acting(&caller);
    Ok(Json(acting.change_state(&id, || body.parse()).await?))
}

pub(super) async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Dates>, AppError> {
    let dates = state
        .acting(&caller)
        .reschedule(&id, || body.parse())
        .await?;
    Ok(Json(dates))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InspectionRecord>, AppError> {
    Ok(Json(state.acting(&caller).cancel(&id).await?))
}
