//! The photo uploader: every photo in the store's upload queue goes to
//! `PUT /api/v1/blobs/{sha256}` in chunks of [`limits::UPLOAD_CHUNK`] bytes with
//! `Content-Range`, resumably (`sync-server/src/blobs.rs`).
//!
//! Before a photo's first chunk the uploader asks the server what it holds (`HEAD`):
//! after a crash or a lost connection it continues from there, not from byte 0, and a
//! photo the server already has is not sent again. After each chunk the offset the
//! server confirmed is recorded in the store ([`Store::record_upload_progress`]), so the
//! progress shown after a restart is what the server holds; a photo leaves the queue
//! only once the server has it whole. The photo itself was stored before it was queued,
//! so killing the app mid-upload loses nothing.
//!
//! [`Store::record_upload_progress`]: wardcheck_core::store::Store::record_upload_progress

use std::collections::HashSet;

use wardcheck_core::store::PendingUpload;

use super::local::Local;
use super::remote::{self, RemoteError};
use super::status::UploadProgress;
use super::worker::Backoff;
use super::{App, limits};
use crate::error::AppError;

/// Runs store work (SQLite reads of a photo of up to 25 MiB, writes with fsync) on the
/// blocking pool, not on the async runtime's threads.
async fn on_pool<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut Local) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut local = app.local()?;
        f(&mut local)
    })
    .await
    .map_err(AppError::internal)?
}

/// [`App::refresh_pending`] on the blocking pool.
async fn refresh_pending(app: &App) {
    let app = app.clone();
    let _ = tokio::task::spawn_blocking(move || app.refresh_pending()).await;
}

/// What one photo's upload did, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadReport {
    /// Where the first chunk started (the server's offset when the upload began).
    pub first_offset: u64,
    /// PUT requests sent.
    pub requests: usize,
}

/// Runs the uploader until the future is dropped.
pub(crate) async fn run(app: App) {
    let inner = app.inner();
    let mut session_rx = inner.session_gen.subscribe();
    let mut changed_rx = inner.changed.subscribe();
    let mut now_rx = inner.sync_now.subscribe();
    let mut backoff = Backoff::default();
    // Photos the server refused (not an image, a hash mismatch): not retried until the
    // app restarts or sync_now, so one bad photo does not stop the others.
    let mut refused: HashSet<String> = HashSet::new();
    loop {
        if app.local().is_err() {
            // No store (no keychain, or it failed to open): nothing to do, ever.
            return;
        }
        session_rx.borrow_and_update();
        changed_rx.borrow_and_update();
        now_rx.borrow_and_update();
        let Some(session) = app.session() else {
            if session_rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        let pending = match on_pool(&app, |local| Ok(local.store.pending_uploads()?)).await {
            Ok(list) => list,
            Err(e) if e.code == crate::error::ErrorCode::Storage => Vec::new(),
            Err(_) => return,
        };
        let pending: Vec<PendingUpload> = pending
            .into_iter()
            .filter(|p| !refused.contains(&p.sha256))
            .collect();
        let mut failed = false;
        if !pending.is_empty() {
            let mut progress = UploadProgress {
                done_photos: 0,
                total_photos: pending.len() as u64,
                done_bytes: pending.iter().map(|p| p.uploaded_bytes).sum(),
                total_bytes: pending.iter().map(|p| p.size).sum(),
            };
            inner.hub.set_upload(Some(progress));
            for p in &pending {
                let base = progress.done_bytes - p.uploaded_bytes.min(progress.done_bytes);
                let result = upload_one(&app, &session.settings.server, &session.token, p, |at| {
                    let mut shown = progress;
                    shown.done_bytes = base + at;
                    inner.hub.set_upload(Some(shown));
                })
                .await;
                match result {
                    Ok(_) => {
                        progress.done_photos += 1;
                        progress.done_bytes = base + p.size;
                        inner.hub.set_upload(Some(progress));
                        refresh_pending(&app).await;
                    }
                    Err(RemoteError::Refused {
                        status: 400 | 413 | 422,
                        message,
                        ..
                    }) => {
                        tracing::warn!("upload: photo {} refused: {message}", p.sha256);
                        inner.hub.set_note(Some(format!(
                            "The server refused a photo ({message}); it stays on this device"
                        )));
                        refused.insert(p.sha256.clone());
                    }
                    Err(e) => {
                        tracing::info!("upload: stopped ({e})");
                        failed = true;
                        break;
                    }
                }
            }
            inner.hub.set_upload(None);
        }
        if !failed {
            backoff.reset();
            if !pending.is_empty() {
                continue; // look again: photos may have been added meanwhile
            }
        }
        let wait = backoff.next_wait();
        tokio::select! {
            () = tokio::time::sleep(wait), if failed => {}
            r = changed_rx.changed() => if r.is_err() { return; },
            r = now_rx.changed() => {
                if r.is_err() { return; }
                refused.clear();
                backoff.reset();
            }
            r = session_rx.changed() => {
                if r.is_err() { return; }
                backoff.reset();
            }
        }
    }
}

/// Uploads one photo from where the server stands, recording progress after each chunk;
/// removes it from the queue once the server has it whole. `progress` is told the bytes
/// the server holds after each chunk.
pub async fn upload_one(
    app: &App,
    server: &str,
    token: &str,
    pending: &PendingUpload,
    mut progress: impl FnMut(u64),
) -> Result<UploadReport, RemoteError> {
    let http = &app.inner().http;
    let sha = &pending.sha256;
    let stored = |e: crate::error::AppError| RemoteError::Refused {
        status: 0,
        code: "storage".into(),
        message: e.message,
    };
    let state = remote::blob_status(http, server, token, sha).await?;
    if state.complete {
        let sha = sha.clone();
        on_pool(app, move |local| Ok(local.store.mark_uploaded(&sha)?))
            .await
            .map_err(stored)?;
        return Ok(UploadReport {
            first_offset: pending.size,
            requests: 0,
        });
    }
    let bytes = {
        let (sha, uploaded) = (sha.clone(), pending.uploaded_bytes);
        on_pool(app, move |local| {
            if state.received != uploaded {
                // The server is the truth: it may have lost a partial upload, or taken
                // a chunk whose answer never arrived.
                local.store.record_upload_progress(&sha, state.received)?;
            }
            Ok(local.store.blob(&sha)?.bytes)
        })
        .await
        .map_err(stored)?
    };
    let total = bytes.len() as u64;
    let mut offset = state.received.min(total);
    let first_offset = offset;
    progress(offset);
    let mut requests = 0;
    let mut stalled = 0;
    loop {
        let end = (offset as usize + limits::UPLOAD_CHUNK).min(bytes.len());
        let chunk = bytes[offset as usize..end].to_vec();
        let answer = remote::put_chunk(http, server, token, sha, offset, chunk, total).await?;
        requests += 1;
        if answer.complete {
            break;
        }
        if answer.received <= offset {
            // A 409 that does not move us on: give up after a few, rather than loop.
            stalled += 1;
            if stalled > 3 {
                return Err(RemoteError::Refused {
                    status: 409,
                    code: "offset_mismatch".into(),
                    message: "the upload does not move forward".into(),
                });
            }
        } else {
            stalled = 0;
        }
        offset = answer.received.min(total);
        let at = offset;
        let id = sha.clone();
        on_pool(app, move |local| {
            Ok(local.store.record_upload_progress(&id, at)?)
        })
        .await
        .map_err(stored)?;
        progress(offset);
    }
    let id = sha.clone();
    on_pool(app, move |local| Ok(local.store.mark_uploaded(&id)?))
        .await
        .map_err(stored)?;
    progress(total);
    Ok(UploadReport {
        first_offset,
        requests,
    })
}
