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
//! It also fetches the other way: a photo another device took is in the inspection but
//! not on this device until [`fetch_missing`] gets it (`GET /api/v1/blobs/{sha256}`),
//! checks it (stored form, and its hash is its id), makes its thumbnail and stores it.
//! That runs whenever the worker stored changes from the server, on "Sync now", and every
//! [`limits::PHOTO_FETCH_RETRY`] while a photo is not on the server whole yet.
//!
//! [`Store::record_upload_progress`]: wardcheck_core::store::Store::record_upload_progress

use std::collections::HashSet;

use wardcheck_core::store::{Blob, PendingUpload};

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
    // Fetching photos from the server: due at the start, whenever the worker stored
    // changes from the server (which may refer to other devices' photos), on "Sync now",
    // and again later while some photo is not on the server whole yet.
    let mut received_rx = inner.received.subscribe();
    received_rx.borrow_and_update();
    let mut fetch_due = true;
    let mut photos_waiting = false;
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
        if !failed && fetch_due {
            match fetch_missing(&app, &session.settings.server, &session.token, &mut refused).await
            {
                Ok(waiting) => {
                    fetch_due = false;
                    photos_waiting = waiting;
                }
                Err(e) => {
                    tracing::info!("photo fetch: stopped ({e})");
                    failed = true;
                }
            }
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
            () = tokio::time::sleep(limits::PHOTO_FETCH_RETRY), if photos_waiting && !failed => {
                fetch_due = true;
            }
            r = changed_rx.changed() => if r.is_err() { return; },
            r = received_rx.changed() => {
                if r.is_err() { return; }
                received_rx.borrow_and_update();
                fetch_due = true;
            }
            r = now_rx.changed() => {
                if r.is_err() { return; }
                refused.clear();
                backoff.reset();
                fetch_due = true;
            }
            r = session_rx.changed() => {
                if r.is_err() { return; }
                backoff.reset();
                fetch_due = true;
            }
        }
    }
}

/// Fetches every photo the stored inspections refer to that is not on this device, one
/// at a time. Returns whether some photo is not on the server whole yet (to ask again
/// later). A photo that fails its checks (not stored form, or bytes that do not hash
/// to its id) goes into `refused` and is not asked for again until "Sync now" or a
/// restart; it stays shown as "on the server". Stops at the first transport error.
pub async fn fetch_missing(
    app: &App,
    server: &str,
    token: &str,
    refused: &mut HashSet<String>,
) -> Result<bool, RemoteError> {
    let missing = match on_pool(app, |local| local.missing_photos()).await {
        Ok(list) => list,
        Err(_) => return Ok(false),
    };
    let http = app.inner().http().clone();
    let mut waiting = false;
    let missing: Vec<String> = missing
        .into_iter()
        .filter(|s| !refused.contains(s))
        .collect();
    for sha in missing {
        let Some(bytes) = remote::download_photo(&http, server, token, &sha).await? else {
            waiting = true;
            continue;
        };
        let want = sha.clone();
        let stored = on_pool(app, move |local| {
            let blob = accept_fetched(&want, bytes)?;
            Ok(local.store.put_downloaded_blob(&blob, chrono::Utc::now())?)
        })
        .await;
        match stored {
            Ok(_) => app.inner().hub.photo_fetched(),
            Err(e) => {
                tracing::warn!("photo fetch: {sha} refused: {}", e.message);
                refused.insert(sha);
            }
        }
    }
    Ok(waiting)
}

/// A photo fetched as `sha256`, checked as a photo in stored form whose bytes hash to
/// that id, with its thumbnail made: ready to store.
fn accept_fetched(sha256: &str, bytes: Vec<u8>) -> Result<Blob, AppError> {
    let photo = wardcheck_core::photo::from_stored(bytes, &Default::default())
        .map_err(|e| AppError::invalid(format!("not a stored photo: {e}")))?;
    if photo.id != sha256 {
        return Err(AppError::invalid(format!(
            "its bytes hash to {}, not to its id",
            photo.id
        )));
    }
    Ok(Blob::from(photo))
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
    let http = app.inner().http();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small photo in stored form, as another device would have stored it.
    fn stored_photo() -> wardcheck_core::photo::ProcessedPhoto {
        let image =
            image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 90]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        wardcheck_core::photo::process(&jpeg, &Default::default()).unwrap()
    }

    #[test]
    fn a_fetched_photo_is_kept_only_if_it_is_a_stored_photo_under_its_own_id() {
        let photo = stored_photo();
        let blob = accept_fetched(&photo.id, photo.bytes.clone()).expect("the real thing");
        assert_eq!(blob.sha256, photo.id);
        assert_eq!(blob.bytes, photo.bytes, "kept byte for byte");
        assert_eq!((blob.width, blob.height), (48, 32));
        assert!(
            blob.thumbnail.starts_with(&[0xFF, 0xD8]),
            "a JPEG thumbnail"
        );

        // A real photo, but not the one asked for (a confused or hostile server).
        let other = "0".repeat(64);
        let err = accept_fetched(&other, photo.bytes.clone()).unwrap_err();
        assert!(err.message.contains("not to its id"), "{err:?}");
        // Not a photo at all, or one with bytes hidden after it.
        let err = accept_fetched(&photo.id, b"<html>a captive portal</html>".to_vec()).unwrap_err();
        assert!(err.message.contains("ot a stored photo"), "{err:?}");
        let mut tail = photo.bytes.clone();
        tail.extend_from_slice(b"PK\x03\x04");
        assert!(accept_fetched(&photo.id, tail).is_err());
    }
}
