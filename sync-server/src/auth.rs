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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

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

pub const TOKEN_COOKIE: &str = "wardcheck_token";

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

/// The remote address, as text for the audit log.
pub fn remote(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

/// The token a request carries, from the header, the cookie, or (upgrade only) the
/// query.
pub(crate) fn presented_token(parts: &Parts) -> Option<String> {
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
                    .strip_prefix(TOKEN_COOKIE)
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
        let Some(token) = presented_token(parts) else {
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
        // Written at once the first time since the server started, then in batches
        // (`activity.rs`), not once a request.
        let now = chrono::Utc::now();
        if state.activity.seen(device.id, now) {
            let storage = state.storage.clone();
            let id = device.id;
            tokio::task::spawn_blocking(move || storage.touch_devices(&[(id, now)])).await??;
        }
        Ok(Caller { user, device, from })
    }
}

/// Failed sign-ins in a sliding window, per user name and per address.
///
/// [`LoginLimiter::begin`] counts an attempt as a failure *before* its password is
/// checked, and [`LoginLimiter::succeeded`] takes it back: checking first and recording
/// after the (slow, by design) Argon2 verification would let a burst of concurrent
/// guesses all pass the check before any failure was recorded.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// A sign-in attempt that [`LoginLimiter::begin`] let through, counted as a failure
/// until [`LoginLimiter::succeeded`].
#[derive(Debug)]
#[must_use = "a successful sign-in must be reported with LoginLimiter::succeeded"]
pub struct Attempt {
    user: String,
    addr: String,
    at: Instant,
}

pub(crate) fn user_key(user: &str) -> String {
    format!("u:{user}")
}

/// The per-address key. An IPv6 client usually holds a whole /64, so its addresses
/// share one budget; anything that is not an IP address is used as it is.
pub(crate) fn addr_key(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => format!("a:{}", v6.to_ipv4_mapped().expect("mapped")),
        _ => format!("a:{addr}"),
    }
}

impl LoginLimiter {
    /// Seconds to wait if `user` or `addr` has failed too often, else `None`.
    pub fn check(&self, user: &str, addr: &str) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::wait(&mut map, user, addr, Instant::now())
    }

    fn wait(
        map: &mut HashMap<String, VecDeque<Instant>>,
        user: &str,
        addr: &str,
        now: Instant,
    ) -> Option<u64> {
        let mut wait = None;
        for (key, max) in [
            (user_key(user), limits::LOGIN_FAILURES_PER_USER),
            (addr_key(addr), limits::LOGIN_FAILURES_PER_ADDR),
        ] {
            if let Some(q) = map.get_mut(&key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > limits::LOGIN_WINDOW)
                {
                    q.pop_front();
                }
                if q.len() >= max {
                    let oldest = *q.front().expect("non-empty");
                    let left = limits::LOGIN_WINDOW.saturating_sub(now.duration_since(oldest));
                    // Rounded up, so a client that waits exactly this long is let in.
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    wait = Some(wait.unwrap_or(0).max(secs.max(1)));
                }
            }
        }
        wait
    }

    /// Lets an attempt go ahead, counted as a failure until it is reported as a
    /// success; or the seconds to wait if `user` or `addr` has failed too often.
    /// The check and the count happen under one lock.
    pub fn begin(&self, user: &str, addr: &str) -> Result<Attempt, u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = Self::wait(&mut map, user, addr, now) {
            return Err(wait);
        }
        Self::push(&mut map, user, addr, now);
        Ok(Attempt {
            user: user.to_owned(),
            addr: addr.to_owned(),
            at: now,
        })
    }

    /// The attempt signed in: the user's failures are forgotten, and the attempt no
    /// longer counts against its address.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&user_key(&attempt.user));
        if let Some(q) = map.get_mut(&addr_key(&attempt.addr))
            && let Some(i) = q.iter().position(|t| *t == attempt.at)
        {
            q.remove(i);
        }
    }

    pub fn record_failure(&self, user: &str, addr: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::push(&mut map, user, addr, Instant::now());
    }

    fn push(map: &mut HashMap<String, VecDeque<Instant>>, user: &str, addr: &str, now: Instant) {
        // Bound memory: forget everything stale when the map grows large.
        if map.len() > 100_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < limits::LOGIN_WINDOW)
            });
        }
        for key in [user_key(user), addr_key(addr)] {
            map.entry(key).or_default().push_back(now);
        }
    }

    pub fn record_success(&self, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&user_key(user));
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

    #[test]
    fn the_limiter_blocks_after_too_many_failures_per_user() {
        let l = LoginLimiter::default();
        for _ in 0..limits::LOGIN_FAILURES_PER_USER {
            assert_eq!(l.check("ann", "1.2.3.4"), None);
            l.record_failure("ann", "1.2.3.4");
        }
        assert!(
            l.check("ann", "5.6.7.8").is_some(),
            "per user, whatever the address"
        );
        assert_eq!(
            l.check("bob", "5.6.7.8"),
            None,
            "other users are unaffected"
        );
    }

    #[test]
    fn begin_counts_an_attempt_before_it_is_judged() {
        let l = LoginLimiter::default();
        // Attempts in flight at once: only the allowed number get through.
        let through: Vec<Attempt> = (0..limits::LOGIN_FAILURES_PER_USER * 2)
            .filter_map(|_| l.begin("ann", "1.2.3.4").ok())
            .collect();
        assert_eq!(through.len(), limits::LOGIN_FAILURES_PER_USER);
        let wait = l.begin("ann", "1.2.3.4").unwrap_err();
        assert!(
            wait > 0 && wait <= limits::LOGIN_WINDOW.as_secs(),
            "wait {wait}"
        );
        // One of them turns out to be right: the user's budget comes back.
        let mut through = through.into_iter();
        l.succeeded(through.next().unwrap());
        assert!(l.begin("ann", "1.2.3.4").is_ok());
    }

    #[test]
    fn a_success_gives_back_only_its_own_count_on_the_address() {
        let l = LoginLimiter::default();
        let a = l.begin("ann", "1.2.3.4").unwrap();
        for i in 0..limits::LOGIN_FAILURES_PER_ADDR - 1 {
            let _ = l.begin(&format!("u{i}"), "1.2.3.4").unwrap();
        }
        assert!(
            l.begin("zed", "1.2.3.4").is_err(),
            "the address is at its limit"
        );
        l.succeeded(a);
        assert!(
            l.begin("zed", "1.2.3.4").is_ok(),
            "ann's success no longer counts against the address"
        );
        assert!(l.begin("zed2", "1.2.3.4").is_err(), "the others still do");
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_budget() {
        let l = LoginLimiter::default();
        for i in 0..limits::LOGIN_FAILURES_PER_ADDR {
            let _ = l
                .begin(&format!("u{i}"), &format!("2001:db8:1:2::{i:x}"))
                .unwrap();
        }
        assert!(l.begin("zed", "2001:db8:1:2:ffff::1").is_err());
        assert!(
            l.begin("zed", "2001:db8:1:3::1").is_ok(),
            "another /64 is another client"
        );
        assert_eq!(addr_key("::ffff:10.0.0.1"), "a:10.0.0.1");
    }
}
