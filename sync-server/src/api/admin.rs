//! Administration ([`crate::service::admin`]), for admins:
//!
//! - `GET /api/v1/users`, `POST /api/v1/users` (answers with a one-time code);
//! - `POST /api/v1/users/{name}/disable`, `.../enable`, `.../password-code`;
//! - `GET /api/v1/devices`;
//! - `GET /api/v1/audit?user=&action=&inspection=&trust=&from=&to=&before=&limit=`, and
//!   the same search as CSV at `GET /api/v1/audit.csv`;
//! - `GET /api/v1/telemetry/imports`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::JsonBody;
use super::reports::file;
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::admin::{AuditPage, AuditParams, OneTimeCode, TelemetryImports, UserView};
use crate::storage::Device;

type AuditQuery = Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>;

fn parsed(q: AuditQuery) -> impl FnOnce() -> Result<AuditParams, AppError> {
    move || {
        q.map(|Query(q)| q)
            .map_err(|e| AppError::bad_request("bad_query", e.body_text()))
    }
}

pub(super) async fn users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, AppError> {
    Ok(Json(state.acting(&caller).users().await?))
}

pub(super) async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<OneTimeCode>), AppError> {
    let code = state.acting(&caller).add_user(|| body.parse()).await?;
    Ok((StatusCode::CREATED, Json(code)))
}

pub(super) async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(state.acting(&caller).set_disabled(&name, true).await?))
}

pub(super) async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(
        state.acting(&caller).set_disabled(&name, false).await?,
    ))
}

pub(super) async fn password_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<OneTimeCode>), AppError> {
    let code = state.acting(&caller).reset_password(&name).await?;
    Ok((StatusCode::CREATED, Json(code)))
}

pub(super) async fn devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Device>>, AppError> {
    Ok(Json(state.acting(&caller).devices().await?))
}

pub(super) async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    q: AuditQuery,
) -> Result<Json<AuditPage>, AppError> {
    Ok(Json(state.acting(&caller).audit_log(parsed(q)).await?))
}

pub(super) async fn audit_csv(
    State(state): State<AppState>,
    caller: Caller,
    q: AuditQuery,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).audit_export(parsed(q)).await?))
}

pub(super) async fn telemetry_imports(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TelemetryImports>, AppError> {
    Ok(Json(state.acting(&caller).telemetry_imports().await?))
}
