//! Reports and evidence packs ([`crate::service::reports`]):
//!
//! - `POST /api/v1/inspections/{id}/reports`: render and keep the PDF report;
//! - `GET /api/v1/inspections/{id}/reports`: the reports kept;
//! - `GET /api/v1/reports/{sha256}`: one report's PDF;
//! - `GET /api/v1/inspections/{id}/export.csv`: the inspection's answers and findings as
//!   one CSV (audited);
//! - `POST /api/v1/inspections/{id}/evidence-pack`, `POST /api/v1/trusts/{code}/evidence-pack`:
//!   a ZIP with a manifest of SHA-256s.
//!
//! Files go out as attachments, never sniffed or cached, with their SHA-256 in
//! `X-Content-SHA256`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::reports::{Download, ReportList};
use crate::storage::ReportMeta;

pub(super) async fn make(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ReportMeta>), AppError> {
    let made = state.acting(&caller).make_report(&id).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReportList>, AppError> {
    Ok(Json(state.acting(&caller).reports(&id).await?))
}

pub(super) async fn pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).report_pdf(&sha256).await?))
}

pub(super) async fn csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).inspection_csv(&id).await?))
}

pub(super) async fn inspection_pack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).inspection_pack(&id).await?))
}

pub(super) async fn trust_pack(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).trust_pack(&code).await?))
}

pub(super) fn file(d: Download) -> Response {
    let mut r = d.bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(d.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", d.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&d.sha256) {
        h.insert("x-content-sha256", v);
    }
    r
}
