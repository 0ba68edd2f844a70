//! The server's HTTP API, as the app uses it: sign-in, the list of this user's
//! inspections, and resumable photo uploads (`sync-server/src/blobs.rs`).

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, HeaderMap};
use serde::Deserialize;
use uuid::Uuid;

use super::limits;
use crate::error::{AppError, ErrorCode};

/// The code of a 401 that tells a device revoked with a wipe to delete its data.
pub const WIPED_CODE: &str = "device_wiped";

/// Why a request to the server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// Not reached: no route, refused, timed out, or the connection broke.
    #[error("the server cannot be reached: {0}")]
    Offline(String),
    /// 401: a wrong password, or a revoked token.
    #[error("{0}")]
    Unauthorized(String),
    /// 401 `device_wiped`: the device was revoked with a wipe; the app deletes its data.
    #[error("{0}")]
    Wiped(String),
    /// Any other refusal, with the server's stable code (empty when the body was not
    /// the server's `{"error": {...}}`, so not in a Wardcheck server's words).
    #[error("the server answered {status}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that is not what a Wardcheck server sends: unreadable, too large, or
    /// with fields out of bounds.
    #[error("the server's answer could not be used: {0}")]
    BadAnswer(String),
    /// TLS refused the server's certificate (untrusted, expired, or for another name).
    /// Not transient: trying again gives the same answer until someone acts.
    #[error("the server's certificate is not trusted: {0}")]
    Untrusted(String),
}

impl RemoteError {
    /// Whether waiting and trying again may mend it: not reached, a server error
    /// (5xx), or "too many requests" (429) or "request timeout" (408).
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Offline(_) => true,
            RemoteError::Refused { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            _ => false,
        }
    }
}

impl From<RemoteError> for AppError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Offline(m) => AppError::new(
                ErrorCode::Offline,
                format!("The server cannot be reached ({m}): check the address and the network"),
            ),
            RemoteError::Unauthorized(m) | RemoteError::Wiped(m) => {
                AppError::new(ErrorCode::Unauthorized, m)
            }
            RemoteError::Refused {
                status: 429,
                message,
                ..
            } => AppError::new(
                ErrorCode::Unauthorized,
                format!("Too many failed sign-ins: {message}"),
            ),
            RemoteError::Refused { status, .. } if status >= 500 => AppError::new(
                ErrorCode::Offline,
                format!("The server had a problem (HTTP {status}): try again in a minute"),
            ),
            // A refusal in the server's own words: a Wardcheck server, saying why.
            RemoteError::Refused { code, message, .. } if !code.is_empty() => {
                AppError::new(ErrorCode::Invalid, format!("The server refused: {message}"))
            }
            RemoteError::Refused { status, .. } => AppError::new(
                ErrorCode::Invalid,
                format!(
                    "The address does not answer like a Wardcheck server (HTTP {status}): \
                     check the address"
                ),
            ),
            RemoteError::Untrusted(why) => AppError::new(
                ErrorCode::Invalid,
                format!(
                    "This device does not trust the server's certificate ({why}). Check the \
                     address; if it is right, the device needs the certificate authority \
                     that signed the server's certificate (ask your IT team)"
                ),
            ),
            RemoteError::BadAnswer(why) => AppError::new(
                ErrorCode::Invalid,
                format!(
                    "The address does not answer like a Wardcheck server ({why}): check \
                     the address"
                ),
            ),
        }
    }
}

fn transport(e: reqwest::Error) -> RemoteError {
    if e.is_timeout() {
        return RemoteError::Offline("no answer in time".into());
    }
    // The innermost cause is the one a person can read ("Connection refused").
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    if is_certificate_refusal(&text) {
        return RemoteError::Untrusted(text);
    }
    RemoteError::Offline(text)
}

/// Whether a TLS failure's text is the platform refusing the server's certificate, in
/// the words of OpenSSL ("certificate verify failed"), SChannel ("The certificate chain
/// was issued by an authority that is not trusted") or Security.framework. A broken
/// connection mid-handshake is not one: that is offline, and retried.
pub(crate) fn is_certificate_refusal(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("certificate") || text.contains("cert_") || text.contains("x509")
}

/// An HTTP client with the app's timeouts, TLS 1.2 or later, and no redirects followed:
/// a redirect could take the password or the device token to another address (or from
/// https to http), so a 3xx is an answer the app refuses, never a hop it takes.
pub fn client() -> reqwest::Client {
    client_with(limits::REQUEST_TIMEOUT)
}

/// [`client`], with `timeout` for the whole of each request instead of the app's
/// default (a package download takes longer than an API call).
pub fn client_with(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(limits::CONNECT_TIMEOUT)
        .timeout(timeout)
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with timeouts builds")
}

/// The WebSocket's TLS: the platform's trust store, TLS 1.2 or later.
pub fn ws_tls() -> Result<native_tls::TlsConnector, native_tls::Error> {
    native_tls::TlsConnector::builder()
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .build()
}

/// The server address as typed, checked and normalised: `https://host[:port]`, or
/// `http://` for a server on this machine only, with no path, query or credentials and
/// no trailing slash. The password, the device token and every inspection cross the
/// network to the server, so they do so under TLS, verified against the platform's
/// trust store; plain `http` stays for a server on the same device (a demo, the tests).
pub fn normalise_server(typed: &str) -> Result<String, AppError> {
    let bad = |why: &str| {
        AppError::invalid(format!(
            "The server address {typed:?} {why}: type it like https://wardcheck.example.nhs.uk"
        ))
    };
    let typed = typed.trim();
    if typed.is_empty() || typed.chars().count() > limits::MAX_SERVER_URL_CHARS {
        return Err(bad("is empty or too long"));
    }
    let url = reqwest::Url::parse(typed).map_err(|_| bad("is not an address"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(bad("must start with https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.scheme() == "http" && !is_this_machine(&url) {
        return Err(AppError::invalid(format!(
            "The server address {typed:?} is not encrypted: the password and the \
             inspections would cross the network readable by anyone on it. Type its \
             https:// address (http:// is only for a server on this device)"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not hold a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(bad("must be the server alone, with no path"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether the address is this device: `localhost`, or a loopback IP address.
fn is_this_machine(url: &reqwest::Url) -> bool {
    // The parser gives hosts lower-cased, and IPv6 addresses in brackets.
    url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// The sync endpoint of a server address.
pub fn ws_url(server: &str) -> String {
    let rest = server
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| server.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| server.to_owned());
    format!("{rest}/api/v1/sync")
}

/// The server's error body, `{"error": {"code", "message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Reads a body of at most `cap` bytes, a chunk at a time: a server that sends more
/// (or never ends) is refused once past the cap, without holding more than it.
async fn read_capped(mut res: reqwest::Response, cap: usize) -> Result<Vec<u8>, RemoteError> {
    if res.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > cap {
            return Err(too_large(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(cap: usize) -> RemoteError {
    RemoteError::BadAnswer(format!("an answer larger than {} KiB", cap / 1024))
}

async fn refusal(res: reqwest::Response) -> RemoteError {
    let status = res.status();
    // An error body is a few hundred bytes; whatever is past the cap is not read.
    let body = read_capped(res, limits::MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (
            String::new(),
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    if status == StatusCode::UNAUTHORIZED {
        if code == WIPED_CODE {
            return RemoteError::Wiped(message);
        }
        return RemoteError::Unauthorized(message);
    }
    RemoteError::Refused {
        status: status.as_u16(),
        code,
        message,
    }
}

async fn json<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    cap: usize,
) -> Result<T, RemoteError> {
    let bytes = read_capped(res, cap).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RemoteError::BadAnswer(format!("an answer that is not the expected JSON ({e})"))
    })
}

/// `GET url` with the device's token: the answer's JSON, read up to `cap` bytes; a
/// status other than success is the server's refusal.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    cap: usize,
) -> Result<T, RemoteError> {
    let res = http
        .get(url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .map_err(transport)?;
    if !res.status().is_success() {
        return Err(refusal(res).await);
    }
    json(res, cap).await
}

/// What a sign-in returns. Its Debug output leaves out the token.
#[derive(Clone, Deserialize)]
pub struct LoginOk {
    pub token: String,
    pub device_id: i64,
    pub user: String,
    pub display_name: String,
    pub role: RoleAnswer,
}

impl std::fmt::Debug for LoginOk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOk")
            .field("token", &"(hidden)")
            .field("device_id", &self.device_id)
            .field("user", &self.user)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .finish()
    }
}

impl LoginOk {
    /// Refuses an answer whose fields a Wardcheck server would never send: a token
    /// that is empty, over [`limits::MAX_TOKEN_BYTES`] or not printable ASCII (it
    /// goes in an `Authorization` header), names over their caps, or control
    /// characters in them.
    fn check(&self) -> Result<(), RemoteError> {
        let bad = |why: &str| Err(RemoteError::BadAnswer(why.to_owned()));
        let t = &self.token;
        if t.is_empty() || t.len() > limits::MAX_TOKEN_BYTES {
            return bad("a sign-in token of the wrong length");
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("a sign-in token that is not printable text");
        }
        let name_ok = |s: &str, max: usize| {
            !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
        };
        if !name_ok(&self.user, limits::MAX_NAME_CHARS) {
            return bad("a user name out of bounds");
        }
        if !name_ok(&self.display_name, limits::MAX_DISPLAY_NAME_CHARS) {
            return bad("a display name out of bounds");
        }
        if !name_ok(&self.role.role, limits::MAX_NAME_CHARS) {
            return bad("a role out of bounds");
        }
        Ok(())
    }
}

/// The server's role, `{"role": "inspector"}` or `{"role": "trust-lead", "trust": "RJ1"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleAnswer {
    pub role: String,
}

/// `POST /api/v1/login`, binding `actor` (hex: the Automerge actor this device writes
/// with) to the user: the server takes changes only from bound actors. `previous` is
/// the token this device held before, if any (even revoked or expired): it tells the
/// server this device signed in as the user before, so guesses at the user's password
/// from elsewhere never hold this device back.
pub async fn login(
    http: &reqwest::Client,
    server: &str,
    user: &str,
    password: &str,
    device: &str,
    actor: &str,
    previous: Option<&str>,
) -> Result<LoginOk, RemoteError> {
    let res = http
        .post(format!("{server}/api/v1/login"))
        .json(
            &serde_json::json!({ "user": user, "password": password, "device": device,
            "actors": [actor], "previous_token": previous }),
        )
        .send()
        .await
        .map_err(transport)?;
    if !res.status().is_success() {
        return Err(match refusal(res).await {
            RemoteError::Unauthorized(_) => RemoteError::Unauthorized(
                "Wrong user name or password, or the account is disabled".into(),
            ),
            e => e,
        });
    }
    let ok: LoginOk = json(res, limits::MAX_LOGIN_ANSWER).await?;
    ok.check()?;
    Ok(ok)
}

#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<Record>,
    next: Option<Uuid>,
}

/// One inspection the server lists for this user: what the app needs of its record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Listed {
    pub id: Uuid,
    /// Its review document (comments between inspectors and reviewers). Absent from a
    /// server older than review documents.
    #[serde(default)]
    pub review_doc: Option<Uuid>,
    /// The team's lead inspector.
    #[serde(default)]
    pub lead: Option<String>,
    /// The trust inspected (absent from a server older than corrective actions).
    #[serde(default)]
    pub trust: Option<String>,
    /// Its state as the server records it (`draft`, `in_progress`, ...).
    #[serde(default)]
    pub state: Option<String>,
}

type Record = Listed;

/// `POST /api/v1/actors`: binds this device's actor (again: binding is idempotent), for
/// a device that signed in before sign-ins bound actors.
pub async fn bind_actor(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    actor: &str,
) -> Result<(), RemoteError> {
    let res = http
        .post(format!("{server}/api/v1/actors"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&serde_json::json!({ "actor": actor }))
        .send()
        .await
        .map_err(transport)?;
    if !res.status().is_success() {
        return Err(refusal(res).await);
    }
    Ok(())
}

/// `GET /api/v1/inspections`, every page: the inspections the server lets this user see.
pub async fn inspection_ids(
    http: &reqwest::Client,
    server: &str,
    token: &str,
) -> Result<Vec<Listed>, RemoteError> {
    let mut ids = Vec::new();
    let mut after: Option<Uuid> = None;
    for _ in 0..limits::MAX_LIST_PAGES {
        let url = match after {
            Some(a) => format!("{server}/api/v1/inspections?limit=200&after={a}"),
            None => format!("{server}/api/v1/inspections?limit=200"),
        };
        let page: Page = get_json(http, &url, token, limits::MAX_JSON_ANSWER).await?;
        if ids.len() + page.items.len() > limits::MAX_LISTED_INSPECTIONS {
            return Err(RemoteError::BadAnswer(format!(
                "a list of more than {} inspections",
                limits::MAX_LISTED_INSPECTIONS
            )));
        }
        ids.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(ids)
}

/// A checklist the server holds, by its pin.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldChecklist {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
struct HeldChecklists {
    checklists: Vec<HeldChecklist>,
}

#[derive(Debug, Deserialize)]
struct ChecklistFile {
    name: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct ChecklistFiles {
    files: Vec<ChecklistFile>,
}

/// `GET /api/v1/checklists`: the checklists the server holds.
pub async fn checklists(
    http: &reqwest::Client,
    server: &str,
    token: &str,
) -> Result<Vec<HeldChecklist>, RemoteError> {
    let url = format!("{server}/api/v1/checklists");
    let held: HeldChecklists = get_json(http, &url, token, limits::MAX_JSON_ANSWER).await?;
    if held.checklists.len() > limits::MAX_HELD_CHECKLISTS {
        return Err(RemoteError::BadAnswer(format!(
            "more than {} checklists",
            limits::MAX_HELD_CHECKLISTS
        )));
    }
    Ok(held.checklists)
}

/// `GET /api/v1/checklists/{id}/{version}`: a checklist's files, in the order its pin
/// hashes them. The caller checks that they hash to the pin it wants.
pub async fn checklist_files(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    id: &str,
    version: &str,
) -> Result<Vec<(String, String)>, RemoteError> {
    let clean = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    };
    if !clean(id) || !clean(version) {
        return Err(RemoteError::BadAnswer(format!(
            "{id:?}@{version:?} is not a checklist's id and version"
        )));
    }
    let url = format!("{server}/api/v1/checklists/{id}/{version}");
    let got: ChecklistFiles = get_json(http, &url, token, limits::MAX_JSON_ANSWER).await?;
    Ok(got.files.into_iter().map(|f| (f.name, f.text)).collect())
}

/// `GET /api/v1/actions?trust=T`: the corrective actions of trust `t` the server lets
/// this user see (for an inspector, those carried over to a visit they are on).
pub async fn trust_actions<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    trust: &str,
) -> Result<Vec<T>, RemoteError> {
    // A trust's ODS code: three letters and digits, nothing to escape in a URL.
    if wardcheck_core::inspection::validate_trust(trust).is_err() {
        return Err(RemoteError::BadAnswer(format!(
            "{trust:?} is not a trust's ODS code"
        )));
    }
    let url = format!("{server}/api/v1/actions?trust={trust}");
    let list: Vec<T> = get_json(http, &url, token, limits::MAX_JSON_ANSWER).await?;
    if list.len() > limits::MAX_CARRIED_ACTIONS {
        return Err(RemoteError::BadAnswer(format!(
            "more than {} actions for one trust",
            limits::MAX_CARRIED_ACTIONS
        )));
    }
    Ok(list)
}

/// `POST /api/v1/actions/{id}/steps` with `step` (a JSON object with its `step` name).
pub async fn action_step(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    action: uuid::Uuid,
    step: &serde_json::Value,
) -> Result<(), RemoteError> {
    let res = http
        .post(format!("{server}/api/v1/actions/{action}/steps"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(step)
        .send()
        .await
        .map_err(transport)?;
    if !res.status().is_success() {
        return Err(refusal(res).await);
    }
    Ok(())
}

/// What the server holds of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobState {
    /// Bytes received (the offset to continue from).
    pub received: u64,
    pub complete: bool,
}

fn blob_state(headers: &HeaderMap) -> Option<BlobState> {
    let received = headers
        .get("upload-offset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let complete = headers.get("upload-complete")?.to_str().ok()? == "?1";
    Some(BlobState { received, complete })
}

/// `GET /api/v1/blobs/{sha256}`: a photo another device took, at most
/// [`limits::MAX_PHOTO_BYTES`] (the largest the server stores). `Ok(None)` when the
/// server does not have it whole yet (404: the other device is still uploading it).
pub async fn download_photo(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    sha256: &str,
) -> Result<Option<Vec<u8>>, RemoteError> {
    let res = http
        .get(format!("{server}/api/v1/blobs/{sha256}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .map_err(transport)?;
    if res.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !res.status().is_success() {
        return Err(refusal(res).await);
    }
    read_capped(res, limits::MAX_PHOTO_BYTES).await.map(Some)
}

/// `HEAD /api/v1/blobs/{sha256}`: how much of a photo the server holds.
pub async fn blob_status(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    sha256: &str,
) -> Result<BlobState, RemoteError> {
    let res = http
        .head(format!("{server}/api/v1/blobs/{sha256}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .map_err(transport)?;
    if res.status() == StatusCode::NOT_FOUND {
        return Ok(BlobState {
            received: 0,
            complete: false,
        });
    }
    if !res.status().is_success() {
        return Err(refusal(res).await);
    }
    Ok(blob_state(res.headers()).unwrap_or(BlobState {
        received: 0,
        complete: false,
    }))
}

/// `PUT /api/v1/blobs/{sha256}` of the bytes `start..start+chunk.len()` of a photo of
/// `total` bytes. A 409 is not an error: it says where the server stands, and the
/// caller continues from there.
pub async fn put_chunk(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    sha256: &str,
    start: u64,
    chunk: Vec<u8>,
    total: u64,
) -> Result<BlobState, RemoteError> {
    let end = start + chunk.len() as u64 - 1;
    let res = http
        .put(format!("{server}/api/v1/blobs/{sha256}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_RANGE, format!("bytes {start}-{end}/{total}"))
        .body(chunk)
        .send()
        .await
        .map_err(transport)?;
    let status = res.status();
    if (status.is_success() || status == StatusCode::CONFLICT)
        && let Some(s) = blob_state(res.headers())
    {
        return Ok(s);
    }
    Err(refusal(res).await)
}

/// `POST /api/v1/devices/wiped`: tells the server this device deleted its data, and what
/// it held that the server never had.
pub async fn report_wiped(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    unsynced_changes: u64,
    unsynced_photos: u64,
) -> Result<(), RemoteError> {
    let res = http
        .post(format!("{server}/api/v1/devices/wiped"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&serde_json::json!({
            "unsynced_changes": unsynced_changes,
            "unsynced_photos": unsynced_photos,
        }))
        .send()
        .await
        .map_err(|e| RemoteError::Offline(e.to_string()))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(refusal(res).await)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_redirect_is_never_followed() {
        // A server that answers every request with a redirect to another address.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://203.0.113.9/steal\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let res = client()
            .post(format!("http://{addr}/api/v1/login"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 307, "answered, not followed");
    }

    use super::*;

    #[test]
    fn server_addresses_are_checked_and_normalised() {
        assert_eq!(
            normalise_server(" http://127.0.0.1:8080/ ").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalise_server("HTTPS://Wardcheck.Example.NHS.uk:8443/").unwrap(),
            "https://wardcheck.example.nhs.uk:8443"
        );
        for here in [
            "http://localhost:8080",
            "http://127.0.0.2",
            "http://[::1]:9000",
        ] {
            assert!(normalise_server(here).is_ok(), "{here:?} is this device");
        }
        // Plain http to another machine would send the password in the clear.
        for there in [
            "http://wardcheck.example.nhs.uk",
            "http://10.0.0.5:8080",
            "http://[fe80::1]",
            "http://localhost.example.org",
        ] {
            let e = normalise_server(there).unwrap_err();
            assert!(e.message.contains("not encrypted"), "{there:?}: {e:?}");
        }
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x",
            "https://u:p@x",
            "https://x/api",
            "https://x/?a=1",
            "https://",
        ] {
            assert!(normalise_server(bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!(
            ws_url("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080/api/v1/sync"
        );
        assert_eq!(ws_url("https://x"), "wss://x/api/v1/sync");
    }

    #[test]
    fn certificate_refusals_are_told_apart_from_a_lost_network() {
        for refusal in [
            "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate \
             verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)",
            "The certificate chain was issued by an authority that is not trusted.",
        ] {
            assert!(is_certificate_refusal(refusal), "{refusal}");
        }
        for lost in ["Connection refused (os error 111)", "unexpected EOF"] {
            assert!(!is_certificate_refusal(lost), "{lost}");
        }
        let e = AppError::from(RemoteError::Untrusted("self-signed certificate".into()));
        assert!(
            e.message
                .contains("does not trust the server's certificate"),
            "{e:?}"
        );
        assert!(!RemoteError::Untrusted(String::new()).is_transient());
    }
}
