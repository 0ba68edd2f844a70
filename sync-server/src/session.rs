//! `POST /api/v1/login`: a user name, a password and a device name in; a device
//! token out (and, for browsers, the same token as an HttpOnly cookie).

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use crate::auth::{self, Caller, TOKEN_COOKIE};
use crate::error::AppError;
use crate::storage::{AuditEvent, Role};
use crate::{AppState, limits};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/me", get(me))
        .route("/healthz", get(|| async { "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub device: String,
}

#[derive(Debug, Serialize)]
pub struct LoginOk {
    pub token: String,
    pub device_id: i64,
    pub user: String,
    pub display_name: String,
    pub role: Role,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body.map_err(|e| AppError::bad_request("bad_request", e.body_text()))?;
    let from = addr.ip().to_string();
    for (field, value, max) in [
        ("user", &req.user, limits::MAX_NAME_CHARS),
        ("device", &req.device, limits::MAX_NAME_CHARS),
    ] {
        if value.trim().is_empty()
            || value.chars().count() > max
            || value.chars().any(char::is_control)
        {
            return Err(AppError::bad_request(
                "bad_request",
                format!("{field} must be 1 to {max} printable characters"),
            ));
        }
    }
    if req.password.len() > limits::MAX_PASSWORD_BYTES {
        return Err(AppError::bad_request("bad_request", "password is too long"));
    }
    if let Some(wait) = state.logins.check(&req.user, &from) {
        state
            .audit(event(&req.user, None, "login", &from, "rate_limited"))
            .await;
        return Err(AppError::rate_limited(wait));
    }
    let storage = state.storage.clone();
    let name = req.user.clone();
    let user = tokio::task::spawn_blocking(move || storage.user_by_name(&name)).await??;
    let password = req.password.clone();
    // Verify against a real hash even for unknown users, so timing does not tell
    // which user names exist.
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc)).await?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            state.logins.record_failure(&req.user, &from);
            state
                .audit(event(&req.user, None, "login", &from, "denied"))
                .await;
            return Err(AppError::unauthorized(
                "wrong user name or password, or the account is disabled",
            ));
        }
    };
    state.logins.record_success(&req.user);
    let (token, hash) = auth::new_token();
    let storage = state.storage.clone();
    let (uid, device_name) = (user.id, req.device.clone());
    let device_id = tokio::task::spawn_blocking(move || {
        storage.add_device(uid, &device_name, &hash, chrono::Utc::now())
    })
    .await??;
    state
        .audit(event(&user.name, Some(device_id), "login", &from, "ok"))
        .await;
    let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut res = Json(LoginOk {
        token,
        device_id,
        user: user.name,
        display_name: user.display_name,
        role: user.role,
    })
    .into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(AppError::internal)?,
    );
    Ok(res)
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": caller.user.name,
        "display_name": caller.user.display_name,
        "role": caller.user.role,
        "device_id": caller.device.id,
    }))
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    auth::hash_password("not a real password, only for constant-time refusals")
        .expect("hashing a constant works")
});

pub(crate) fn event(
    actor: &str,
    device: Option<i64>,
    action: &str,
    from: &str,
    outcome: &str,
) -> AuditEvent {
    AuditEvent {
        at: chrono::Utc::now(),
        // Control characters (CR, LF) never reach the log.
        actor: actor
            .chars()
            .filter(|c| !c.is_control())
            .take(limits::MAX_NAME_CHARS)
            .collect(),
        device,
        action: action.into(),
        target: "-".into(),
        from: from.into(),
        outcome: outcome.into(),
    }
}
