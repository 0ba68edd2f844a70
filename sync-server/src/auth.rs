//! Sign-in and device tokens.
//!
//! Passwords are hashed with Argon2id. A device token is 32 random bytes, given to
//! the client once (hex) and stored only as its SHA-256, so a copy of the database
//! holds no usable token. Every request and every WebSocket upgrade looks the token
//! up; a revoked device or a disabled user fails there.
//!
//! How a client presents its token:
//! - native clients: `Authorization: Bearer <token>`;
//! - browsers: the `wardcheck_token` cookie set by `POST /api/v1/login` (HttpOnly,
//!   SameSite=Strict), which the browser also sends on the WebSocket upgrade;
//! - a WebSocket client that can set neither (e.g. a browser-style WebSocket in
//!   Node): `?access_token=<token>` on the upgrade URL only. Query strings are never
//!   logged.

use std::net::SocketAddr;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use rand::RngExt;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;
use crate::limits;
use crate::storage::{AuditEvent, Device, User};

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Why `name` cannot be a user name, if it cannot: 1 to [`limits::MAX_NAME_CHARS`]
/// characters, no spaces or control characters, not starting with `@` (kept for the
/// server's own names).
pub fn bad_user_name(name: &str) -> Option<String> {
    (name.trim().is_empty()
        || name.chars().count() > limits::MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
        || name.starts_with('@'))
    .then(|| {
        format!(
            "a user name is 1 to {} characters with no spaces, not starting with @ (kept for \
             the server's own names)",
            limits::MAX_NAME_CHARS
        )
    })
}

/// Why `display` cannot be a display name, if it cannot.
pub fn bad_display_name(display: &str) -> Option<String> {
    (display.trim().is_empty()
        || display.chars().count() > limits::MAX_NAME_CHARS
        || display.chars().any(char::is_control))
    .then(|| {
        format!(
            "a display name is 1 to {} characters, with no tabs or line breaks",
            limits::MAX_NAME_CHARS
        )
    })
}

/// Why `password` cannot be a password, if it cannot.
pub fn bad_password(password: &str) -> Option<String> {
    if password.chars().count() < limits::MIN_PASSWORD_CHARS {
        return Some(format!(
            "the password must have at least {} characters",
            limits::MIN_PASSWORD_CHARS
        ));
    }
    (password.len() > limits::MAX_PASSWORD_BYTES).then(|| "the password is too long".into())
}

/// A one-time code to set a password with: 16 base58 characters (about 94 bits).
pub fn new_password_code() -> String {
    // Bitcoin's base58 alphabet: no 0, O, I or l to misread when a code is read out.
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A new device token (hex, 256 bits) and the hash that is stored.
pub fn new_token() -> (String, [u8; 32]) {
    let bytes: [u8; 32] = rand::rng().random();
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// An authenticated caller: the user, the device they signed in on, and where from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub device: Device,
    pub from: String,
}

/// The client's address ([`crate::web::front`] decides it, behind a trusted proxy too),
/// as text for the audit log.
pub fn remote(parts: &Parts) -> String {
    if let Some(c) = parts.extensions.get::<crate::web::ClientAddr>() {
        return c.0.to_string();
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

/// The token a request carries, from the header, the cookie named `cookie` (the one the
/// server sets: [`crate::web::Web::cookie_name`]), or (upgrade only) the query.
pub(crate) fn presented_token(parts: &Parts, cookie: &str) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        return v.to_str().ok().and_then(|s| {
            let (scheme, token) = s.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    }
    for v in parts.headers.get_all(header::COOKIE) {
        if let Ok(s) = v.to_str() {
            for c in s.split(';') {
                if let Some(t) = c
                    .trim()
                    .strip_prefix(cookie)
                    .and_then(|r| r.strip_prefix('='))
                {
                    return Some(t.to_owned());
                }
            }
        }
    }
    if is_websocket_upgrade(parts) {
        return parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("access_token="))
                .map(str::to_owned)
        });
    }
    None
}

/// A WebSocket opening handshake (RFC 6455 §4.1): a GET with `Upgrade: websocket` and
/// a `Sec-WebSocket-Key`. Only these may carry the token in the query, because a
/// browser-style WebSocket cannot set headers; anywhere else a token in a URL would
/// end up in histories and proxy logs.
fn is_websocket_upgrade(parts: &Parts) -> bool {
    parts.method == axum::http::Method::GET
        && parts.headers.contains_key(header::SEC_WEBSOCKET_KEY)
        && parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let from = remote(parts);
        let Some(token) = presented_token(parts, state.web.cookie_name()) else {
            return Err(AppError::unauthorized(
                "sign in first: no device token was presented",
            ));
        };
        // A token is 64 hex digits; anything else cannot match and is not looked up.
        let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
        let hash = token_hash(&token);
        let storage = state.storage.clone();
        // A device revoked with a wipe is told so, until its app says it has deleted its
        // data: that is how the app learns to. Both looked up in one trip to storage.
        let (found, to_wipe) = if well_formed {
            tokio::task::spawn_blocking(move || match storage.device_by_token(&hash)? {
                Some(found) => Ok::<_, crate::storage::StorageError>((Some(found), None)),
                None => Ok((None, storage.device_to_wipe(&hash)?)),
            })
            .await??
        } else {
            (None, None)
        };
        let Some((device, user)) = found else {
            // Audited at once the first time a minute per address (per device for a wiped
            // one), and counted after that (`activity.rs`): a flood of bad tokens costs
            // no write each.
            let seen = state
                .audit_refusal_counting(AuditEvent {
                    at: chrono::Utc::now(),
                    actor: to_wipe.as_ref().map_or("-".into(), |d| d.user_name.clone()),
                    device: to_wipe.as_ref().map(|d| d.id),
                    action: "token_rejected".into(),
                    target: parts.uri.path().to_owned(),
                    from: from.clone(),
                    outcome: if to_wipe.is_some() { "wipe" } else { "denied" }.into(),
                    detail: None,
                })
                .await;
            // A wiped device is told at once; a flood of bad tokens waits.
            if to_wipe.is_some() {
                return Err(AppError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "device_wiped",
                    "this device was reported lost or retired: Wardcheck deletes its data on it",
                ));
            }
            state.hold_refusal(seen).await;
            return Err(AppError::unauthorized(
                "the device token is not valid: it may have been revoked; sign in again",
            ));
        };
        let now = chrono::Utc::now();
        // A token unused for longer than TOKEN_IDLE has expired: the device is signed out
        // (revoked, so the token never works again) and told to sign in. Each use renews
        // it (its last-seen time).
        let idle_since = device.last_seen.unwrap_or(device.created_at);
        if now.signed_duration_since(idle_since)
            > chrono::Duration::from_std(limits::TOKEN_IDLE).unwrap_or(chrono::TimeDelta::MAX)
        {
            let storage = state.storage.clone();
            let id = device.id;
            tokio::task::spawn_blocking(move || storage.expire_device(id, now)).await??;
            state
                .audit(AuditEvent {
                    at: now,
                    actor: user.name.clone(),
                    device: Some(device.id),
                    action: "token_expired".into(),
                    target: parts.uri.path().to_owned(),
                    from: from.clone(),
                    outcome: "revoked".into(),
                    detail: Some(format!("last used {}", idle_since.to_rfc3339())),
                })
                .await;
            return Err(AppError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                format!(
                    "this device's sign-in expired: it was not used for {} days; sign in again \
                     (changes made on the device are kept and sent once signed in)",
                    limits::TOKEN_IDLE.as_secs() / 86_400
                ),
            ));
        }
        // Written at once the first time since the server started, then in batches
        // (`activity.rs`), not once a request.
        if state.activity.seen(device.id, now) {
            let storage = state.storage.clone();
            let id = device.id;
            tokio::task::spawn_blocking(move || storage.touch_devices(&[(id, now)])).await??;
        }
        Ok(Caller { user, device, from })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a), ha);
    }
}
