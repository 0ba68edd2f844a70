//! `/api/v1/app/…`: updates of the field app ([`crate::service::updates`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::reports::file;
use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;

pub(super) async fn check(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((target, arch, bundle, current)): Path<(String, String, String, String)>,
) -> Result<Response, AppError> {
    let origin = origin(&state, &headers);
    let found = state
        .acting(&caller)
        .app_update(&target, &arch, &bundle, &current, &origin)
        .await?;
    let mut res = match found {
        Some(m) => Json(m).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    // Each answer is for its caller (the URL comes from their request): never cached.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

pub(super) async fn package(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    Ok(file(state.acting(&caller).app_package(&sha256).await?))
}

/// Where the device reached the server: `--public-url` when set, else the request's
/// `Host` over plain HTTP (a laptop, the tests).
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(o) = &state.web.public_origin {
        return o.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
