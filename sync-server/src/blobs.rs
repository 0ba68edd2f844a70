//! Photos: `PUT`, `HEAD` and `GET /api/v1/blobs/{sha256}`.
//!
//! A photo never travels inside a document: the document holds its SHA-256 (the id,
//! 64 lowercase hex digits) and the bytes come here. Field devices upload over poor
//! networks, so an upload is **resumable** and **idempotent**:
//!
//! - The client sends the file whole (no `Content-Range`, or `bytes 0-(n-1)/n`) or in
//!   chunks of at most [`limits::MAX_PHOTO_CHUNK`] bytes, each with `Content-Range:
//!   bytes START-END/TOTAL`. The server appends a chunk only when START is exactly what it
//!   already holds; otherwise it answers 409 with that offset (JSON and an
//!   `Upload-Offset` header) and the client resumes from there. `HEAD` tells the offset
//!   too, so an interrupted client asks before it resumes.
//! - TOTAL over [`limits::MAX_PHOTO_BYTES`] and a chunk over the chunk limit are refused
//!   with 413 before the body is read.
//! - When the last byte arrives, the server checks the SHA-256 of the whole against the
//!   id (a mismatch discards the upload: 422 `hash_mismatch`) and that the bytes are an
//!   image under the same limits as the app ([`photo::Limits::default`]): anything else
//!   (HTML, SVG, an executable, an image bomb) is discarded with a 422 naming what it is.
//! - A photo already complete answers 200 and changes nothing, whatever the body.
//! - An upload in progress is its uploader's: another user's chunk for it, or a restart
//!   with another total, is refused (409 `upload_in_progress`, audited), so that someone
//!   who read the photo's hash in a document cannot spoil or discard it.
//!
//! # Metadata, and why the id can differ from the stored bytes' hash
//! The app strips metadata on the device ([`photo::process`]), so what arrives is
//! normally in the stored form that [`photo::verify`] accepts: JPEG or PNG with only the
//! segments that describe pixels and nothing after the end of the image. Those bytes are
//! kept exactly, so their hash stays the id. Anything else that decodes (a camera JPEG
//! with EXIF and GPS, a PNG with text chunks, a WebP from another client) is stripped again
//! here by re-encoding its pixels ([`photo::process`]); the stored bytes then hash to
//! something else, but the photo **keeps the client's id**, because documents already
//! refer to the photo by it. The id therefore names "the photo the client took", and the
//! server guarantees that what it serves under that id carries no metadata.
//!
//! # Who may do what
//! Inspectors, reviewers and trust leads (evidence of a corrective action's progress)
//! upload (`PUT`) and ask what the server holds (`HEAD`); admins get 403. Reading (`GET`)
//! is decided through the documents that refer to the photo (`photo_refs`) and the
//! corrective actions whose progress names it: a caller who may read any of them may read
//! the photo, and so may the user who uploaded it (the photo may arrive before what refers
//! to it). Everyone else gets the same 404 as for a photo that does not exist.

use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::Semaphore;
use wardcheck_core::photo::{self, PhotoError};

use crate::auth::Caller;
use crate::error::{AppError, is_length_limit};
use crate::storage::{Role, StorageError};
use crate::{AppState, access, audit, limits};

/// Offset the server holds for an upload (the tus and IETF resumable-upload header name).
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// `?1` when the upload is complete, `?0` when more bytes are expected (a structured-field
/// boolean, as in the IETF resumable uploads draft).
pub const UPLOAD_COMPLETE: &str = "upload-complete";

/// Photo checks (decode, maybe re-encode) running at once. Each may allocate up to
/// `photo::MAX_ALLOC` (256 MiB) and re-encoding uses every core, so more than two at a
/// time on a 2-core server only adds memory, not speed; the rest wait their turn.
const CONCURRENT_PHOTO_CHECKS: usize = 2;

static PHOTO_CHECKS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(CONCURRENT_PHOTO_CHECKS));

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/blobs/{sha256}",
        put(upload)
            .head(status)
            .get(download)
            // A chunk may be larger than a JSON body; the handler reads at most this much
            // and refuses a declared length over it before reading anything.
            .layer(DefaultBodyLimit::max(limits::MAX_PHOTO_CHUNK)),
    )
}

/// What the server holds of a photo.
#[derive(Debug, Serialize)]
struct UploadStatus {
    sha256: String,
    /// Bytes received. Once `complete`, the size of the stored photo, which is smaller
    /// than what was sent when the server stripped metadata: a client checks `complete`.
    received: u64,
    complete: bool,
}

/// Whether `s` is a photo id: 64 lowercase hex digits. Anything else never reaches
/// storage, so no name from a client becomes a key or a path.
fn valid_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_sha(s: &str) -> Result<(), AppError> {
    if valid_sha(s) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "bad_hash",
            "a photo id is its SHA-256: 64 lowercase hex digits",
        ))
    }
}

/// Inspectors and reviewers take photos and upload them; trust leads upload photos as
/// evidence of a corrective action's progress; admins never do.
fn may_upload(role: &Role) -> bool {
    matches!(role, Role::Inspector | Role::Reviewer | Role::TrustLead(_))
}

async fn refuse_role(state: &AppState, caller: &Caller, sha: &str) -> AppError {
    audit(
        state,
        Some(caller),
        "denied",
        &format!("photo:{}", short(sha)),
        "role",
    )
    .await;
    AppError::forbidden(format!(
        "a {} does not upload photos or ask for uploads",
        caller.user.role.name()
    ))
}

/// The target written to the audit log: the id when it is one, else a marker (a
/// malformed id from a client is never logged as it came).
fn short(sha: &str) -> &str {
    if valid_sha(sha) { sha } else { "(malformed)" }
}

/// `Content-Range: bytes START-END/TOTAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    end: u64,
    total: u64,
}

fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let num = |t: &str| -> Option<u64> {
        if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let r = ContentRange {
        start: num(start)?,
        end: num(end)?,
        total: num(total)?,
    };
    (r.start <= r.end && r.end < r.total).then_some(r)
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, AppError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| AppError::bad_request("bad_request", "malformed Content-Length")),
    }
}

fn with_upload_headers(mut res: Response, offset: u64, complete: bool) -> Response {
    let h = res.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    h.insert(
        UPLOAD_COMPLETE,
        HeaderValue::from_static(if complete { "?1" } else { "?0" }),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn answer(status: StatusCode, sha: &str, received: u64, complete: bool) -> Response {
    let body = UploadStatus {
        sha256: sha.to_owned(),
        received,
        complete,
    };
    with_upload_headers((status, Json(body)).into_response(), received, complete)
}

/// 409: the chunk does not start where the upload stands; resume from `received`.
fn offset_conflict(sha: &str, received: u64, message: String) -> Response {
    let body = serde_json::json!({
        "error": { "code": "offset_mismatch", "message": message },
        "sha256": sha,
        "received": received,
        "complete": false,
    });
    with_upload_headers(
        (StatusCode::CONFLICT, Json(body)).into_response(),
        received,
        false,
    )
}

fn photo_refused(e: &PhotoError) -> AppError {
    let code = match e {
        PhotoError::UnsupportedFormat { .. } => "not_an_image",
        PhotoError::InputTooLarge { .. }
        | PhotoError::TooLarge { .. }
        | PhotoError::MemoryLimit { .. } => "image_too_large",
        PhotoError::Encode { .. } => return AppError::internal(e),
        _ => "bad_image",
    };
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!("the photo was refused and discarded: {e}"),
    )
}

/// Checks a whole upload is an image and returns the bytes to store and their type:
/// the bytes as sent when already in stored form, else re-encoded from their pixels.
fn check_photo(bytes: Vec<u8>) -> Result<(Vec<u8>, &'static str), PhotoError> {
    let limits = photo::Limits::default();
    match photo::verify(&bytes, &limits) {
        Ok((_, _, mime)) => Ok((bytes, mime)),
        Err(PhotoError::NotStoredForm { .. }) => {
            let p = photo::process(&bytes, &limits)?;
            Ok((p.bytes, p.mime))
        }
        Err(e) => Err(e),
    }
}

async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    if !may_upload(&caller.user.role) {
        return Err(refuse_role(&state, &caller, &sha).await);
    }
    check_sha(&sha)?;

    // Everything that can be refused from the headers is refused before the body is read.
    let declared = content_length(&headers)?;
    if declared.is_some_and(|n| n > limits::MAX_PHOTO_CHUNK as u64) {
        audit(&state, Some(&caller), "photo_write", &sha, "too_large").await;
        return Err(AppError::too_large(format!(
            "one request may carry at most {} bytes of a photo: send it in chunks with Content-Range",
            limits::MAX_PHOTO_CHUNK
        )));
    }
    let range = match headers.get(header::CONTENT_RANGE) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(parse_content_range)
                .ok_or_else(|| {
                    AppError::bad_request(
                        "bad_range",
                        "Content-Range must be `bytes START-END/TOTAL` with START <= END < TOTAL",
                    )
                })?,
        ),
    };
    if let Some(r) = range {
        if r.total > limits::MAX_PHOTO_BYTES {
            audit(&state, Some(&caller), "photo_write", &sha, "too_large").await;
            return Err(AppError::too_large(format!(
                "the photo is {} bytes, more than the {} allowed",
                r.total,
                limits::MAX_PHOTO_BYTES
            )));
        }
        if declared.is_some_and(|n| n != r.end - r.start + 1) {
            return Err(AppError::bad_request(
                "bad_range",
                "Content-Length differs from the length Content-Range gives",
            ));
        }
        // Every chunk but the last carries at least the minimum: each is a row and a
        // commit, so tiny ones would cost the server writes out of proportion.
        if r.end + 1 < r.total && r.end - r.start + 1 < limits::MIN_PHOTO_CHUNK {
            audit(
                &state,
                Some(&caller),
                "photo_write",
                &sha,
                "chunk_too_small",
            )
            .await;
            return Err(AppError::bad_request(
                "chunk_too_small",
                format!(
                    "a chunk of a photo other than its last must carry at least {} bytes; \
                     this one carries {}",
                    limits::MIN_PHOTO_CHUNK,
                    r.end - r.start + 1
                ),
            ));
        }
    }

    let storage = state.storage.clone();
    let key = sha.clone();
    let current = tokio::task::spawn_blocking(move || storage.blob_status(&key)).await??;
    let received = match current {
        Some(s) if s.complete => {
            // Idempotent: the photo is here; the body is not even read.
            return Ok(answer(StatusCode::OK, &sha, s.received, true));
        }
        // Another user's upload in progress is theirs: nobody else appends to it or
        // makes it start again (anyone who read its hash in a document could otherwise
        // spoil or discard it).
        Some(s)
            if s.started_by
                .as_ref()
                .is_some_and(|u| *u != caller.user.name) =>
        {
            audit(
                &state,
                Some(&caller),
                "photo_upload",
                &format!("photo:{}", short(&sha)),
                "in_progress_elsewhere",
            )
            .await;
            return Err(AppError::conflict(
                "upload_in_progress",
                "another user is uploading this photo; it can be read once their upload is \
                 whole (an abandoned upload is removed after a week)",
            ));
        }
        Some(s) => s.received,
        None => 0,
    };
    let start = range.map_or(0, |r| r.start);
    if let Some(r) = range
        && received > r.total
    {
        // What the server holds cannot belong to this file: start again.
        let storage = state.storage.clone();
        let key = sha.clone();
        tokio::task::spawn_blocking(move || storage.discard_blob(&key)).await??;
        return Ok(offset_conflict(
            &sha,
            0,
            format!(
                "the server held {received} bytes of this photo, more than its declared {} bytes; the partial upload was discarded: start again at byte 0",
                r.total
            ),
        ));
    }
    if start != received {
        return Ok(offset_conflict(
            &sha,
            received,
            format!("the upload continues at byte {received}, not {start}"),
        ));
    }

    let bytes = to_bytes(body, limits::MAX_PHOTO_CHUNK).await.map_err(|e| {
        if is_length_limit(&e) {
            AppError::too_large(format!(
                "one request may carry at most {} bytes of a photo",
                limits::MAX_PHOTO_CHUNK
            ))
        } else {
            AppError::bad_request("bad_request", "the request body could not be read")
        }
    })?;
    let total = match range {
        Some(r) => {
            if bytes.len() as u64 != r.end - r.start + 1 {
                return Err(AppError::bad_request(
                    "bad_range",
                    format!(
                        "Content-Range announces {} bytes but the body has {}",
                        r.end - r.start + 1,
                        bytes.len()
                    ),
                ));
            }
            r.total
        }
        None => {
            if bytes.len() as u64 > limits::MAX_PHOTO_BYTES {
                return Err(AppError::too_large("the photo is too large"));
            }
            bytes.len() as u64
        }
    };
    if bytes.is_empty() {
        return Err(AppError::bad_request("bad_range", "the body is empty"));
    }

    let storage = state.storage.clone();
    let key = sha.clone();
    let by = caller.user.name.clone();
    let appended =
        tokio::task::spawn_blocking(move || storage.append_blob(&key, start, &bytes, &by)).await?;
    let received = match appended {
        Ok(n) => n,
        Err(StorageError::Limit(why)) => {
            audit(
                &state,
                Some(&caller),
                "photo_write",
                &sha,
                "too_many_uploads",
            )
            .await;
            return Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                why,
            ));
        }
        Err(StorageError::Exists(_)) => {
            // Completed by a concurrent request meanwhile.
            let storage = state.storage.clone();
            let key = sha.clone();
            let s = tokio::task::spawn_blocking(move || storage.blob_status(&key)).await??;
            return Ok(answer(
                StatusCode::OK,
                &sha,
                s.map_or(0, |s| s.received),
                true,
            ));
        }
        Err(StorageError::Corrupt(_)) => {
            // Another request for the same photo appended first: say where it stands.
            let storage = state.storage.clone();
            let key = sha.clone();
            let s = tokio::task::spawn_blocking(move || storage.blob_status(&key)).await??;
            let now = s.map_or(0, |s| s.received);
            return Ok(offset_conflict(
                &sha,
                now,
                format!("the upload continues at byte {now}, not {start}"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if received < total {
        audit(&state, Some(&caller), "photo_write", &sha, "partial").await;
        return Ok(answer(StatusCode::OK, &sha, received, false));
    }
    complete(&state, &caller, &sha).await
}

/// The last byte is in: check the hash and the image, then store the stripped bytes.
async fn complete(state: &AppState, caller: &Caller, sha: &str) -> Result<Response, AppError> {
    let _permit = PHOTO_CHECKS.acquire().await.map_err(AppError::internal)?;
    let storage = state.storage.clone();
    let key = sha.to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let bytes = storage.partial_blob(&key)?;
        if photo::sha256_hex(&bytes) != key {
            storage.discard_blob(&key)?;
            return Ok(Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "the bytes received do not hash to the photo's id; the upload was discarded: upload it again from byte 0",
            )));
        }
        match check_photo(bytes) {
            Ok((stored, mime)) => {
                storage.complete_blob(&key, &stored, mime)?;
                Ok(Ok(stored.len() as u64))
            }
            Err(e) => {
                storage.discard_blob(&key)?;
                Ok(Err(photo_refused(&e)))
            }
        }
    })
    .await?;
    let outcome: Result<u64, AppError> = outcome.map_err(|e: StorageError| AppError::from(e))?;
    match outcome {
        Ok(size) => {
            let storage = state.storage.clone();
            let (key, user) = (sha.to_owned(), caller.user.name.clone());
            tokio::task::spawn_blocking(move || storage.add_blob_uploader(&key, &user)).await??;
            audit(state, Some(caller), "photo_write", sha, "ok").await;
            Ok(answer(StatusCode::CREATED, sha, size, true))
        }
        Err(e) => {
            audit(state, Some(caller), "photo_write", sha, e.code).await;
            Err(e)
        }
    }
}

async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha): Path<String>,
) -> Result<Response, AppError> {
    if !may_upload(&caller.user.role) {
        return Err(refuse_role(&state, &caller, &sha).await);
    }
    check_sha(&sha)?;
    let storage = state.storage.clone();
    let key = sha.clone();
    let found = tokio::task::spawn_blocking(move || storage.blob_status(&key)).await??;
    let Some(s) = found else {
        return Err(AppError::not_found());
    };
    let mut res = with_upload_headers(StatusCode::OK.into_response(), s.received, s.complete);
    if s.complete {
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(s.received));
    }
    Ok(res)
}

async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha): Path<String>,
) -> Result<Response, AppError> {
    check_sha(&sha)?;
    let storage = state.storage.clone();
    let (key, user) = (sha.clone(), caller.user.clone());
    let allowed = tokio::task::spawn_blocking(move || -> Result<bool, StorageError> {
        for doc in storage.photo_docs(&key)? {
            if let Some(d) = storage.doc_access(doc)?
                && access::doc_right(&user, &d).can_read()
            {
                return Ok(true);
            }
        }
        if storage.blob_uploaded_by(&key, &user.name)? {
            return Ok(true);
        }
        // Evidence of a corrective action the caller may see (looked for only when
        // the photo is held whole).
        if !storage.blob_status(&key)?.is_some_and(|b| b.complete) {
            return Ok(false);
        }
        for action in storage.actions_naming(&key)? {
            if crate::service::actions::may_see(&*storage, &user, &action)? {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await??;
    if !allowed {
        audit(
            &state,
            Some(&caller),
            "denied",
            &format!("photo:{sha}"),
            "denied",
        )
        .await;
        return Err(AppError::not_found());
    }
    let storage = state.storage.clone();
    let key = sha.clone();
    let Some((bytes, mime)) = tokio::task::spawn_blocking(move || storage.blob(&key)).await??
    else {
        audit(&state, Some(&caller), "photo_read", &sha, "not_found").await;
        return Err(AppError::not_found());
    };
    // Only the two types the server stores are ever named; anything else in the column
    // is served as opaque bytes.
    let (mime, ext) = match mime.as_str() {
        "image/jpeg" => ("image/jpeg", "jpg"),
        "image/png" => ("image/png", "png"),
        _ => ("application/octet-stream", "bin"),
    };
    audit(&state, Some(&caller), "photo_read", &sha, "ok").await;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // The file name is built from the validated id alone (RFC 6266, no user text).
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("inline; filename=\"{sha}.{ext}\""))
            .map_err(AppError::internal)?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // Evidence photos: kept by no shared cache; a browser revalidates each time, so a
    // withdrawn access takes effect at once.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            parse_content_range("bytes 0-9/10"),
            Some(ContentRange {
                start: 0,
                end: 9,
                total: 10
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/100").map(|r| r.start),
            Some(5)
        );
        for bad in [
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes */10",
            "bytes 0-9/*",
            "bytes -1-9/10",
            "bytes 0-9/10 extra",
            "items 0-9/10",
            "bytes +0-9/10",
            "bytes 0-99999999999999999999/99999999999999999999",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?} should be refused");
        }
    }

    #[test]
    fn only_lowercase_hex_ids_are_photo_ids() {
        assert!(valid_sha(&"a".repeat(64)));
        assert!(!valid_sha(&"A".repeat(64)), "uppercase");
        assert!(!valid_sha(&"a".repeat(63)));
        assert!(!valid_sha("../../etc/passwd"));
        assert!(!valid_sha(&format!("{}%2e", "a".repeat(61))));
    }
}
