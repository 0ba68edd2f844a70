//! Editing from the review dashboard ([`crate::service::review`]):
//!
//! - `POST /api/v1/inspections/{id}/comments`: a reviewer's comment;
//! - `POST /api/v1/inspections/{id}/comments/{comment}/release`: a reviewer releases a
//!   comment to the trust;
//! - `POST /api/v1/inspections/{id}/signoffs`: a reviewer's sign-off;
//! - `POST /api/v1/inspections/{id}/reopen`: a reviewer reopens a signed inspection;
//! - `PUT /api/v1/inspections/{id}/responses/{finding}`: the trust lead's response to one
//!   finding; a second `PUT` replaces it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wardcheck_core::inspection::Comment;

use super::JsonBody;
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::review::Responded;

pub(super) async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let comment = state.acting(&caller).comment(&id, || body.parse()).await?;
    Ok((StatusCode::CREATED, Json(comment)).into_response())
}

pub(super) async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, comment)): Path<(String, String)>,
) -> Result<Json<Comment>, AppError> {
    Ok(Json(state.acting(&caller).release(&id, &comment).await?))
}

pub(super) async fn sign_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let signoff = state.acting(&caller).sign_off(&id, || body.parse()).await?;
    Ok((StatusCode::CREATED, Json(signoff)).into_response())
}

pub(super) async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, AppError> {
    let link = state.acting(&caller).reopen(&id, || body.parse()).await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

pub(super) async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, finding)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Responded>, AppError> {
    let acting = state.acting(&caller);
    Ok(Json(acting.respond(&id, &finding, || body.parse()).await?))
}
