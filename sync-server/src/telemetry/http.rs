//! `POST /api/v1/telemetry/{kind}?as_of=YYYY-MM-DD`: a feed file as the body.
//!
//! Reviewers and admins only: anyone else signed in gets 403 before the body is read
//! (anonymous: 401). The body (`text/csv` or `application/x-ndjson`, at most
//! [`limits::MAX_TELEMETRY_BODY`]; a larger declared length is refused before reading)
//! is spooled to a file in the data folder and hashed as it arrives, then imported on
//! the blocking pool, one import at a time. The answer is the import's report: 200 for
//! imported, replaced or already imported; 422 `bad_rows` with the bad rows when nothing
//! was imported. Each import is audited as `telemetry_import`.
//!
//! The route has its own request timeout ([`limits::TELEMETRY_REQUEST_TIMEOUT`]) in
//! place of the server's: a large national file takes longer to send and import than
//! any other request.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::{
    Format, ImportRequest, Kind, Outcome, TelemetryError, TelemetryStore, parse_as_of, today,
};
use crate::audit;
use crate::auth::Caller;
use crate::error::AppError;
use crate::storage::Role;
use crate::{AppState, limits};

/// Imports in this process, one at a time: a second waits here rather than holding a
/// second spooled file and a second SQLite cache while it waits for the write lock.
static IMPORTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(1));

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/telemetry/{kind}", post(upload))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits::TELEMETRY_REQUEST_TIMEOUT,
        ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    as_of: Option<String>,
}

fn media_format(headers: &HeaderMap) -> Option<Format> {
    let mime = headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/csv" => Some(Format::Csv),
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Some(Format::Jsonl)
        }
        "application/json" => Some(Format::Json),
        _ => None,
    }
}

fn body_too_large() -> AppError {
    AppError::too_large(format!(
        "a telemetry file may be at most {} bytes",
        limits::MAX_TELEMETRY_BODY
    ))
}

/// The body written to a new file in `dir`, its SHA-256 and its length.
async fn spool(
    body: Body,
    dir: std::path::PathBuf,
) -> Result<(tempfile::NamedTempFile, [u8; 32]), AppError> {
    let spooled = tokio::task::spawn_blocking(move || {
        tempfile::Builder::new().prefix(".upload-").tempfile_in(dir)
    })
    .await?
    .map_err(AppError::internal)?;
    let mut file =
        tokio::fs::File::from_std(spooled.as_file().try_clone().map_err(AppError::internal)?);
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            AppError::bad_request("bad_request", "the request body could not be read")
        })?;
        received += chunk.len() as u64;
        if received > limits::MAX_TELEMETRY_BODY {
            return Err(body_too_large());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    file.flush().await.map_err(AppError::internal)?;
    Ok((spooled, hasher.finalize().into()))
}

async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    if !matches!(caller.user.role, Role::Reviewer | Role::Admin) {
        audit(&state, Some(&caller), "denied", "telemetry", "role").await;
        return Err(AppError::forbidden(format!(
            "{} may not import telemetry",
            caller.user.role.with_article()
        )));
    }
    let kind = Kind::from_name(&kind).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_kind",
            "no such telemetry feed: endpoints, network, alerts or trusts",
        )
    })?;
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_query", e.body_text()))?;
    let as_of = match q.as_of {
        Some(s) => parse_as_of(&s, today()).map_err(|m| AppError::bad_request("bad_query", m))?,
        None => today(),
    };
    let format = media_format(&headers).ok_or_else(|| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as Content-Type: text/csv or application/x-ndjson (JSON Lines)",
        )
    })?;
    let target = format!("telemetry:{kind}@{as_of}");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits::MAX_TELEMETRY_BODY) {
        audit(
            &state,
            Some(&caller),
            "telemetry_import",
            &target,
            "too_large",
        )
        .await;
        return Err(body_too_large());
    }

    let spooled = spool(body, state.telemetry.telemetry_upload_dir()).await;
    let (file, sha256) = match spooled {
        Ok(s) => s,
        Err(e) => {
            audit(&state, Some(&caller), "telemetry_import", &target, e.code).await;
            return Err(e);
        }
    };
    let _turn = IMPORTS.acquire().await.map_err(AppError::internal)?;
    let telemetry = state.telemetry.clone();
    let by = caller.user.name.clone();
    let result = tokio::task::spawn_blocking(move || {
        let report = telemetry.import_telemetry(
            &ImportRequest {
                kind,
                as_of,
                format,
                path: file.path(),
                sha256: Some(sha256),
                by: &by,
                now: chrono::Utc::now(),
            },
            &mut |_| {},
        );
        drop(file);
        report
    })
    .await?;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let err = match e {
                TelemetryError::Busy => AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    TelemetryError::Busy.to_string(),
                ),
                other => AppError::internal(other),
            };
            audit(&state, Some(&caller), "telemetry_import", &target, err.code).await;
            return Err(err);
        }
    };
    let (status, outcome) = match &report.outcome {
        Outcome::Imported { replaced: None, .. } => (StatusCode::OK, "imported"),
        Outcome::Imported { .. } => (StatusCode::OK, "replaced"),
        Outcome::AlreadyImported { .. } => (StatusCode::OK, "already_imported"),
        Outcome::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_rows"),
    };
    audit(&state, Some(&caller), "telemetry_import", &target, outcome).await;
    tracing::info!(outcome, steps = %report.steps_line(), "{}", report.summary());
    let mut body = serde_json::to_value(&report).map_err(AppError::internal)?;
    body["message"] = report.summary().into();
    if let Outcome::Refused(_) = report.outcome {
        body["error"] = serde_json::json!({ "code": "bad_rows", "message": report.summary() });
    }
    Ok((status, axum::Json(body)).into_response())
}
