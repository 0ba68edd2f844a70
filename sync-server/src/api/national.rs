//! The national picture ([`crate::service::national`]):
//!
//! - `GET /api/v1/national?region=R&trust_type=T`: every trust the caller sees, with its
//!   latest inspection, actions, contradicted items and telemetry headlines and trends;
//! - `GET /api/v1/trusts/{code}`: one trust's page (no inspection needed).

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::national::{National, NationalQuery, TrustPage};

pub(super) async fn national(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<NationalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<National>, AppError> {
    let parse = || {
        q.map(|Query(q)| q)
            .map_err(|e| AppError::bad_request("bad_query", e.body_text()))
    };
    Ok(Json(state.acting(&caller).national(parse).await?))
}

pub(super) async fn trust(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<TrustPage>, AppError> {
    Ok(Json(state.acting(&caller).trust_page(&code).await?))
}
