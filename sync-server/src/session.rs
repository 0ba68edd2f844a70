//! `POST /api/v1/login`: a user name, a password and a device name in; a device
//! token out (and, for browsers, the same token as an HttpOnly cookie).
//! `POST /api/v1/logout`: the token presented is revoked (its device signed out, on the
//! server, for every copy of the token) and the browser's cookie is cleared.
//! `POST /api/v1/actors`: binds an Automerge actor to the caller (user and device). A
//! sign-in may bind the device's actors at once (`actors` in the login body). Every
//! change the server takes is attributed to its actor's binding, never to what the
//! change says (`sync::guard`).

use axum::extract::{Extension, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Caller};
use crate::error::AppError;
use crate::logins;
use crate::storage::{AuditEvent, Role, StorageError};
use crate::web::ClientAddr;
use crate::{AppState, limits};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/me", get(me))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/actors", post(bind_actor))
        .route("/api/v1/devices/wiped", post(wiped))
        .route("/api/v1/password", post(set_password))
        .route("/api/v1/devices/{id}/revoke", post(revoke))
        .route("/healthz", get(|| async { "ok" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub device: String,
    /// The Automerge actors (hex) the device writes with, bound to the user at sign-in.
    #[serde(default)]
    pub actors: Vec<String>,
    /// The token this device held before (revoked, expired, or still good): a device
    /// that signed in as this user before is known, like an address they signed in
    /// from (`logins.rs`). Never a way in by itself.
    #[serde(default)]
    pub previous_token: Option<String>,
}

// By hand, so that no `{:?}` of a request can ever print the password.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("device", &self.device)
            .field("actors", &self.actors)
            .field(
                "previous_token",
                &self.previous_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Serialize)]
pub struct LoginOk {
    pub token: String,
    pub device_id: i64,
    pub user: String,
    pub display_name: String,
    pub role: Role,
    /// The actors bound at sign-in.
    pub actors: Vec<String>,
}

/// Most actors one sign-in may bind at once.
const MAX_ACTORS_AT_LOGIN: usize = 16;

/// An actor id as a client sends it: hex of 1 to 32 bytes (automerge-repo and the field
/// app use 16).
fn parse_actor(hex_id: &str) -> Result<Vec<u8>, AppError> {
    match hex::decode(hex_id) {
        Ok(b) if !b.is_empty() && b.len() <= 32 => Ok(b),
        _ => Err(AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "bad_actor",
            "an actor id is 1 to 32 bytes, in hex",
        )),
    }
}

fn bind_error(e: StorageError) -> AppError {
    match e {
        StorageError::Exists(m) => AppError::conflict("actor_bound", m),
        StorageError::Limit(m) => AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_actors",
            m,
        ),
        other => other.into(),
    }
}

/// An unreadable JSON body: 413 over the limit, like every other route; otherwise (not
/// JSON, missing or unknown fields, wrong types) 400.
fn json_refused(e: axum::extract::rejection::JsonRejection) -> AppError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large(e.body_text())
    } else {
        AppError::bad_request("bad_request", e.body_text())
    }
}

/// `POST /api/v1/password`: a one-time code an admin gave turns into a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    user: String,
    code: String,
    password: String,
}

/// Sets a password with a one-time code (anonymous: the code is the proof). Counted like
/// a failed sign-in against the address, and against the user's codes (not their
/// sign-ins); a wrong code never spends the right one; the user's devices are revoked.
/// 204, or 401 for any wrong user, code or an expired code alike.
async fn set_password(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    body: Result<Json<SetPassword>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body.map_err(json_refused)?;
    let from = addr.to_string();
    if let Some(why) = auth::bad_user_name(&req.user) {
        return Err(AppError::bad_request("bad_request", why));
    }
    if req.code.len() > 64 {
        return Err(AppError::bad_request(
            "bad_request",
            "a code is 16 characters",
        ));
    }
    if let Some(why) = auth::bad_password(&req.password) {
        return Err(AppError::bad_request("weak_password", why));
    }
    // Counted against the address as sign-ins are, but under a user key of its own: a
    // stranger's wrong codes never lock the user out of signing in with their password.
    let attempt =
        match begin_login(&state, logins::Attempted::Code, &req.user, &from, false).await? {
            Ok(a) => a,
            Err(wait) => {
                state
                    .audit_refusal(event(
                        &req.user,
                        None,
                        "password_set",
                        &from,
                        "rate_limited",
                    ))
                    .await;
                return Err(AppError::rate_limited(wait));
            }
        };
    let storage = state.storage.clone();
    let name = req.user.clone();
    let (user, code) = tokio::task::spawn_blocking(move || {
        Ok::<_, StorageError>((storage.user_by_name(&name)?, storage.password_code(&name)?))
    })
    .await??;
    let live = code
        .as_ref()
        .is_some_and(|(_, expires)| *expires > chrono::Utc::now());
    // Verify against a real hash even when there is no code, so timing does not tell.
    let phc = code.map_or_else(|| DUMMY_HASH.clone(), |(h, _)| h);
    let (given, stored) = (req.code.clone(), phc.clone());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&given, &stored)).await?;
    let user = match user {
        Some(u) if ok && live && !u.disabled => u,
        _ => {
            login_failed(&state, attempt).await;
            state
                .audit(event(&req.user, None, "password_set", &from, "denied"))
                .await;
            return Err(AppError::unauthorized(
                "wrong user name or code, the code has expired, or the account is disabled",
            ));
        }
    };
    // The code is spent and the password set in one transaction, only if the code is
    // still the one checked (not used, replaced or expired meanwhile). Every device the
    // user had is revoked: a reset is what follows a lost password or a break-in.
    let storage = state.storage.clone();
    let (name, password) = (user.name.clone(), req.password.clone());
    let set = tokio::task::spawn_blocking(move || -> Result<Option<u64>, AppError> {
        let hash = auth::hash_password(&password).map_err(AppError::internal)?;
        Ok(storage.use_password_code(&name, &phc, &hash, chrono::Utc::now())?)
    })
    .await??;
    let Some(revoked) = set else {
        login_failed(&state, attempt).await;
        state
            .audit(event(&req.user, None, "password_set", &from, "denied"))
            .await;
        return Err(AppError::unauthorized(
            "wrong user name or code, the code has expired, or the account is disabled",
        ));
    };
    login_succeeded(&state, attempt).await?;
    state
        .audit(AuditEvent {
            detail: Some(format!("{revoked} devices revoked")),
            ..event(&user.name, None, "password_set", &from, "ok")
        })
        .await;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn login(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body.map_err(json_refused)?;
    let from = addr.to_string();
    for (field, value, max) in [
        ("user", &req.user, limits::MAX_NAME_CHARS),
        ("device", &req.device, limits::MAX_NAME_CHARS),
    ] {
        if value.trim().is_empty()
            || value.chars().count() > max
            || value.chars().any(char::is_control)
        {
            // Refused before any password check, but still recorded: a user name with
            // CR/LF in it is someone probing the logs.
            // Counted past the first from an address in a minute (`activity.rs`).
            state
                .audit_refusal(event(&req.user, None, "login", &from, "bad_request"))
                .await;
            return Err(AppError::bad_request(
                "bad_request",
                format!("{field} must be 1 to {max} printable characters"),
            ));
        }
    }
    if req.password.len() > limits::MAX_PASSWORD_BYTES {
        return Err(AppError::bad_request("bad_request", "password is too long"));
    }
    if req.actors.len() > MAX_ACTORS_AT_LOGIN {
        return Err(AppError::bad_request(
            "bad_request",
            format!("a sign-in binds at most {MAX_ACTORS_AT_LOGIN} actors"),
        ));
    }
    let actors = req
        .actors
        .iter()
        .map(|a| parse_actor(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Counted as a failure from here until the password proves right, so concurrent
    // guesses cannot all slip past the limit.
    let known = known_address(&state, &req.user, &from).await?
        || known_device(&state, &req.user, req.previous_token.as_deref()).await?;
    let attempt =
        match begin_login(&state, logins::Attempted::Password, &req.user, &from, known).await? {
            Ok(a) => a,
            Err(wait) => {
                state
                    .audit_refusal(event(&req.user, None, "login", &from, "rate_limited"))
                    .await;
                return Err(AppError::rate_limited(wait));
            }
        };
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
        // The attempt stays counted as a failure, dated now.
        _ => {
            login_failed(&state, attempt).await;
            state
                .audit(event(&req.user, None, "login", &from, "denied"))
                .await;
            return Err(AppError::unauthorized(
                "wrong user name or password, or the account is disabled",
            ));
        }
    };
    login_succeeded(&state, attempt).await?;
    // From here on, this address is one the user signs in from.
    let storage = state.storage.clone();
    let (name, addr) = (user.name.clone(), logins::addr_key(&from));
    tokio::task::spawn_blocking(move || storage.remember_login(&name, &addr, chrono::Utc::now()))
        .await??;
    let (token, hash) = auth::new_token();
    let storage = state.storage.clone();
    let (uid, device_name) = (user.id, req.device.clone());
    let user_name = user.name.clone();
    let bound: Vec<String> = actors.iter().map(hex::encode).collect();
    let device_id = tokio::task::spawn_blocking(move || -> Result<i64, AppError> {
        // An actor already bound to someone else refuses the sign-in before any token
        // is made for it.
        for a in &actors {
            if let Some(b) = storage.actor_binding(a)?
                && b.user != user_name
            {
                return Err(AppError::conflict(
                    "actor_bound",
                    format!("actor {} is bound to another user", hex::encode(a)),
                ));
            }
        }
        let now = chrono::Utc::now();
        let device = storage.add_device(uid, &device_name, &hash, now)?;
        for a in &actors {
            storage
                .bind_actor(a, &user_name, Some(device), now)
                .map_err(bind_error)?;
        }
        Ok(device)
    })
    .await??;
    state
        .audit(event(&user.name, Some(device_id), "login", &from, "ok"))
        .await;
    let cookie = state.web.cookie(&token);
    let mut res = Json(LoginOk {
        token,
        device_id,
        user: user.name,
        display_name: user.display_name,
        role: user.role,
        actors: bound,
    })
    .into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(AppError::internal)?,
    );
    Ok(res)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindActor {
    actor: String,
}

/// `POST /api/v1/actors`: binds `actor` to the caller's user and device. Binding it again
/// changes nothing; an actor bound to someone else is 409 `actor_bound`.
async fn bind_actor(
    State(state): State<AppState>,
    caller: Caller,
    body: crate::api::JsonBody,
) -> Result<Json<serde_json::Value>, AppError> {
    let BindActor { actor } = body.parse()?;
    let bytes = parse_actor(&actor)?;
    let storage = state.storage.clone();
    let (user, device) = (caller.user.name.clone(), caller.device.id);
    let result = tokio::task::spawn_blocking(move || {
        storage
            .bind_actor(&bytes, &user, Some(device), chrono::Utc::now())
            .map_err(bind_error)
    })
    .await?;
    let outcome = match &result {
        Ok(()) => "ok",
        Err(e) => e.code,
    };
    state
        .audit(AuditEvent {
            target: format!("actor:{}", actor.to_ascii_lowercase()),
            ..event(
                &caller.user.name,
                Some(caller.device.id),
                "actor_bind",
                &caller.from,
                outcome,
            )
        })
        .await;
    result?;
    Ok(Json(serde_json::json!({
        "actor": actor.to_ascii_lowercase(),
        "user": caller.user.name,
        "device_id": caller.device.id,
    })))
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": caller.user.name,
        "display_name": caller.user.display_name,
        "role": caller.user.role,
        "device_id": caller.device.id,
    }))
}

/// Revokes the caller's device token, then tells the browser to drop its cookie. The
/// revocation is what signs out: a copy of the token kept anywhere stops working too.
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let storage = state.storage.clone();
    let device = caller.device.id;
    tokio::task::spawn_blocking(move || storage.revoke_device(device)).await??;
    state
        .audit(AuditEvent {
            target: format!("device:{device}"),
            ..event(
                &caller.user.name,
                Some(device),
                "logout",
                &caller.from,
                "ok",
            )
        })
        .await;
    let mut res = axum::http::StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&state.web.cookie("")).map_err(AppError::internal)?,
    );
    Ok(res)
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
        // Control characters (CR, LF, tab) never reach the log: they are written as
        // escapes (`\r`), so the attempt is still visible but cannot start a line or
        // a field of its own.
        actor: neutralise(actor, limits::MAX_NAME_CHARS),
        device,
        action: action.into(),
        target: "-".into(),
        from: from.into(),
        outcome: outcome.into(),
        detail: None,
    }
}

/// `text` with control characters and Unicode line/paragraph separators written as
/// escapes, cut to `max` characters: safe to put in one field of one log line.
pub(crate) fn neutralise(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.chars().take(max).collect()
}

/// A sign-in attempt counted as a failure until it proves right: by this process's
/// limiter, or (several processes on one database) in storage, where every process
/// counts alike. With the keys a right password forgets.
enum Counted {
    Here(logins::Attempt, Vec<String>),
    Shared(Vec<i64>, Vec<String>),
}

/// Counts an attempt at `name` (a password or a code: `what`) from `from` on its keys
/// ([`logins::keys`]), or says how many seconds to wait. `known`: the user has signed
/// in from that address before.
async fn begin_login(
    state: &AppState,
    what: logins::Attempted,
    name: &str,
    from: &str,
    known: bool,
) -> Result<Result<Counted, u64>, AppError> {
    let keys = logins::keys(what, name, from, known);
    let forget = logins::forgotten_on_success(what, name, from);
    if !state.storage.shares_logins() {
        return Ok(state.logins.begin(&keys).map(|a| Counted::Here(a, forget)));
    }
    let storage = state.storage.clone();
    let counted = tokio::task::spawn_blocking(move || {
        storage.begin_login(&keys, chrono::Utc::now(), limits::LOGIN_WINDOW)
    })
    .await??;
    Ok(counted.map(|records| Counted::Shared(records, forget)))
}

/// Whether `user` signed in from `from` within [`limits::LOGIN_KNOWN_FOR`].
async fn known_address(state: &AppState, user: &str, from: &str) -> Result<bool, AppError> {
    let storage = state.storage.clone();
    let (user, addr) = (user.to_owned(), logins::addr_key(from));
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(limits::LOGIN_KNOWN_FOR).unwrap_or_default();
    Ok(tokio::task::spawn_blocking(move || storage.login_known(&user, &addr, since)).await??)
}

/// Whether `previous` is a token once issued to `user` (on any device, revoked or not).
async fn known_device(
    state: &AppState,
    user: &str,
    previous: Option<&str>,
) -> Result<bool, AppError> {
    let Some(token) =
        previous.filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Ok(false);
    };
    let hash = auth::token_hash(token);
    let storage = state.storage.clone();
    let owner = tokio::task::spawn_blocking(move || storage.token_owner(&hash)).await??;
    Ok(owner.as_deref() == Some(user))
}

/// The attempt proved wrong: its failure is dated now ([`logins::LoginLimiter::failed`]).
/// A failure to do so is logged: the attempt stays counted either way.
async fn login_failed(state: &AppState, counted: Counted) {
    match counted {
        Counted::Here(attempt, _) => state.logins.failed(attempt),
        Counted::Shared(records, _) => {
            let storage = state.storage.clone();
            let done = tokio::task::spawn_blocking(move || {
                storage.login_failed(&records, chrono::Utc::now())
            })
            .await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::warn!(?done, "dating a failed sign-in failed");
            }
        }
    }
}

/// The attempt proved right: the pair's failures are forgotten, and it no longer counts
/// against the others.
async fn login_succeeded(state: &AppState, counted: Counted) -> Result<(), AppError> {
    match counted {
        Counted::Here(attempt, forget) => state.logins.succeeded(attempt, &forget),
        Counted::Shared(records, forget) => {
            let storage = state.storage.clone();
            tokio::task::spawn_blocking(move || storage.login_succeeded(&forget, &records))
                .await??;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_escapes_line_breaks_and_tabs() {
        assert_eq!(neutralise("ann\r\nroot\tok", 100), "ann\\r\\nroot\\tok");
        assert_eq!(neutralise("a\u{2028}b\u{1b}", 100), "a\\u{2028}b\\u{1b}");
        assert_eq!(neutralise("ann", 2), "an");
        assert!(!neutralise("x\n\r\u{85}", 100).chars().any(char::is_control));
    }
}

/// What an app whose device was revoked with a wipe reports once it has deleted its data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wiped {
    /// Changes it held that had not reached the server (lost with the wipe).
    unsynced_changes: u64,
    /// Photos likewise.
    unsynced_photos: u64,
}

/// Most changes or photos a report may say were lost: more is not a count a device holds.
const MAX_REPORTED: u64 = 10_000_000;

/// `POST /api/v1/devices/wiped`, with the revoked device's own token: the only call that
/// token is still good for, once. The audit records the wipe and what was lost with it.
async fn wiped(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let from = auth::remote(&parts);
    let token = auth::presented_token(&parts, state.web.cookie_name()).unwrap_or_default();
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    let hash = auth::token_hash(&token);
    let storage = state.storage.clone();
    let device = if well_formed {
        tokio::task::spawn_blocking(move || storage.device_to_wipe(&hash)).await??
    } else {
        None
    };
    let Some(device) = device else {
        state
            .audit_refusal(AuditEvent {
                target: "device:?".into(),
                ..event("-", None, "device_wiped", &from, "denied")
            })
            .await;
        return Err(AppError::unauthorized(
            "only a device revoked with a wipe reports one, once, with its own token",
        ));
    };
    if body.len() > 1024 {
        return Err(AppError::too_large("a wipe report is a few bytes"));
    }
    let report: Wiped = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request("bad_json", format!("the wipe report: {e}")))?;
    if report.unsynced_changes > MAX_REPORTED || report.unsynced_photos > MAX_REPORTED {
        return Err(AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "too_large",
            format!("a device reports at most {MAX_REPORTED} lost changes or photos"),
        ));
    }
    let storage = state.storage.clone();
    let id = device.id;
    let marked =
        tokio::task::spawn_blocking(move || storage.mark_wiped(id, chrono::Utc::now())).await??;
    if !marked {
        return Err(AppError::unauthorized("the wipe is already recorded"));
    }
    state
        .audit(AuditEvent {
            target: format!("device:{id}"),
            detail: Some(format!(
                "unsynced changes {}, unsynced photos {}",
                report.unsynced_changes, report.unsynced_photos
            )),
            ..event(&device.user_name, Some(id), "device_wiped", &from, "ok")
        })
        .await;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    /// Also delete the app's data on the device at its next contact.
    #[serde(default)]
    wipe: bool,
}

/// `POST /api/v1/devices/{id}/revoke` (admins): as `device revoke ID [--wipe]`.
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: crate::api::JsonBody,
) -> Result<Json<serde_json::Value>, AppError> {
    // The id as given, bounded, for the audit log (parsed below).
    let shown: String = id.chars().take(24).collect();
    if caller.user.role != Role::Admin {
        state
            .audit(AuditEvent {
                target: format!("device:{shown}"),
                ..event(
                    &caller.user.name,
                    Some(caller.device.id),
                    "device_revoke",
                    &caller.from,
                    "denied",
                )
            })
            .await;
        return Err(AppError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin revokes another device",
        ));
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(AppError::not_found());
    };
    let Revoke { wipe } = body.parse()?;
    if id == caller.device.id {
        return Err(AppError::conflict(
            "own_device",
            "this is the device you are using: sign out instead",
        ));
    }
    let storage = state.storage.clone();
    let done = tokio::task::spawn_blocking(move || {
        if wipe {
            storage.revoke_and_wipe(id, chrono::Utc::now())
        } else {
            storage.revoke_device(id)
        }
    })
    .await?;
    match done {
        Ok(()) => {}
        Err(StorageError::NotFound(_)) => return Err(AppError::not_found()),
        Err(e) => return Err(e.into()),
    }
    state
        .audit(AuditEvent {
            target: format!("device:{id}"),
            ..event(
                &caller.user.name,
                Some(caller.device.id),
                // As the command line records it.
                if wipe {
                    "device_revoke_wipe"
                } else {
                    "device_revoke"
                },
                &caller.from,
                "ok",
            )
        })
        .await;
    Ok(Json(
        serde_json::json!({ "id": id, "revoked": true, "wipe": wipe }),
    ))
}
