//! wardcheck-server: the sync server.
//!
//! - [`storage`]: everything the server keeps, behind the [`storage::Storage`] trait
//!   (SQLite for now).
//! - [`auth`] and [`access`]: sign-in, device tokens, and who may do what.
//! - `sync`: the automerge-repo WebSocket protocol, document by document.
//! - `blobs`: resumable, idempotent photo uploads.
//! - `service`: one method per operation of the JSON API on the server's state, each
//!   with its access check, its work and its audit event; `api` holds the HTTP handlers
//!   that extract, call it and convert, and the OpenAPI document.
//! - [`telemetry`]: NHS Digital's device feeds, imported as dated snapshots for the join.
//! - [`join`]: each telemetry check of an inspection beside the inspector's answer, and
//!   each sampled device matched with its telemetry record.
//! - [`sealed`]: the signed record: sign-off links audited as taken, `inspection verify`.
//! - [`demo`]: `demo-data`, a believable data folder (telemetry, users, inspections).
//! - [`dashboard`]: the review dashboard's built files (`ui/dist`), with strict headers.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener.
//! Tests bind `127.0.0.1:0` and start the real binary.

pub mod access;
pub mod activity;
pub mod auth;
pub mod backup;
pub mod error;
pub mod limits;
pub mod logins;
pub mod report;
pub mod storage;

mod api;
mod blobs;
pub mod dashboard;
pub mod demo;
pub mod inspections;
pub mod join;
pub mod sealed;
mod service;
mod session;
pub mod sync;
pub mod telemetry;
pub mod updates;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;

use crate::storage::{AuditEvent, Storage};

/// This process's limit on open files (the soft one), from `/proc/self/limits`; `None`
/// where that cannot be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many refused answers may be held at once: a quarter of the open-files limit (each
/// holds a connection's socket, and valid users need the rest), at most
/// [`limits::MAX_HELD_REFUSALS`], at least 16; 256 if the limit is unknown.
fn held_refusals_cap(open_files: Option<u64>) -> usize {
    open_files.map_or(256, |n| {
        usize::try_from(n / 4)
            .unwrap_or(usize::MAX)
            .clamp(16, limits::MAX_HELD_REFUSALS)
    })
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The record: users, devices, inspections, documents, the audit log.
    pub storage: Arc<dyn Storage>,
    /// NHS Digital's telemetry feeds, for the join ([`telemetry`]).
    pub telemetry: Arc<telemetry::TelemetryDb>,
    pub logins: Arc<logins::LoginLimiter>,
    pub docs: Arc<sync::Documents>,
    /// Open sync connections per user ([`limits::MAX_CONNECTIONS_PER_USER`]).
    pub connections: Arc<sync::ConnectionCounts>,
    /// Last-seen times and refused tokens, written in batches ([`activity`]).
    pub activity: Arc<activity::Activity>,
    /// Open event streams per user ([`limits::MAX_EVENT_STREAMS_PER_USER`]).
    pub streams: Arc<sync::ConnectionCounts>,
    /// Answers to refused tokens held back now ([`AppState::hold_refusal`]).
    pub held_refusals: Arc<tokio::sync::Semaphore>,
    /// The verdict counts of the national page's inspections ([`service::national`]).
    pub verdicts: Arc<service::national::VerdictMemo>,
    /// Searches running ([`limits::SEARCHES_AT_ONCE`]).
    pub searches: Arc<tokio::sync::Semaphore>,
    /// Reports and evidence packs being made ([`limits::EXPORTS_AT_ONCE`]).
    pub exports: Arc<tokio::sync::Semaphore>,
    /// How the server is reached: trusted proxies, its public address ([`web`]).
    pub web: Arc<web::Web>,
    /// Set once the process is asked to stop: sync connections close with a reason and
    /// event streams end ([`serve_with_dashboard`]).
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Sync connections open now: axum's graceful shutdown does not wait for upgraded
    /// connections, so a stopping server waits for this to reach zero.
    pub live_sync: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    pub fn new(storage: Arc<dyn Storage>, telemetry: Arc<telemetry::TelemetryDb>) -> Self {
        AppState {
            telemetry,
            docs: Arc::new(sync::Documents::new(storage.clone())),
            storage,
            logins: Arc::new(logins::LoginLimiter::default()),
            connections: Arc::default(),
            streams: Arc::default(),
            activity: Arc::default(),
            verdicts: Arc::default(),
            searches: Arc::new(tokio::sync::Semaphore::new(limits::SEARCHES_AT_ONCE)),
            exports: Arc::new(tokio::sync::Semaphore::new(limits::EXPORTS_AT_ONCE)),
            web: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            live_sync: Arc::default(),
            held_refusals: Arc::new(tokio::sync::Semaphore::new(held_refusals_cap(
                open_files_limit(),
            ))),
        }
    }

    /// The same, reached as `web` says (trusted proxies, public address).
    pub fn with_web(mut self, web: web::Web) -> Self {
        self.web = Arc::new(web);
        self
    }

    /// Audits a refusal anyone can cause without signing in, at once or counted
    /// ([`activity`]): a flood of them writes a bounded number of rows a minute.
    pub async fn audit_refusal(&self, event: AuditEvent) {
        self.audit_refusal_counting(event).await;
    }

    /// The same; returns how many refusals of its kind its address has had this minute,
    /// this one too.
    pub async fn audit_refusal_counting(&self, mut event: AuditEvent) -> u64 {
        let (audit, seen) = self.activity.refused_counting(&mut event);
        if audit {
            self.audit(event).await;
        }
        seen
    }

    /// Holds back the answer to a refused token when its address has had more than
    /// [`limits::FREE_REFUSALS_PER_MINUTE`] refusals this minute: a flood of bad tokens
    /// from a few connections then makes a few attempts a second, not thousands. At most
    /// a quarter of the open-files limit (and [`limits::MAX_HELD_REFUSALS`]) are held at
    /// once, so held sockets never crowd out valid users; past that they go at once.
    pub async fn hold_refusal(&self, seen: u64) {
        if seen <= limits::FREE_REFUSALS_PER_MINUTE {
            return;
        }
        if let Ok(_held) = self.held_refusals.clone().try_acquire_owned() {
            tokio::time::sleep(limits::REFUSAL_DELAY).await;
        }
    }

    /// Writes what is held in memory between flushes: peers' sync states
    /// ([`sync::Documents::flush_sync_states`]), and what [`activity`] holds: last-seen
    /// times, and the counts of refusals of minutes gone by (of every minute, the current
    /// one too, when `all`). What a failed write took is put back for the next; one
    /// flush at a time.
    pub async fn flush_activity(&self, all: bool) {
        let _one_at_a_time = self.activity.flushing.lock().await;
        let docs = self.docs.clone();
        match tokio::task::spawn_blocking(move || docs.flush_sync_states()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "writing peers' sync states failed: kept for the next flush")
            }
            Err(e) => tracing::error!(error = %e, "writing peers' sync states failed"),
        }
        let (seen, rows) = self.activity.take(chrono::Utc::now(), all);
        if seen.is_empty() && rows.is_empty() {
            return;
        }
        let count = rows.len();
        let storage = self.storage.clone();
        let res = tokio::task::spawn_blocking(move || {
            let written = storage
                .touch_devices(&seen)
                .and_then(|()| storage.audit_batch(&rows));
            (written, seen, rows)
        })
        .await;
        match res {
            Ok((Ok(()), _, _)) => {}
            Ok((Err(e), seen, rows)) => {
                tracing::error!(error = %e, rows = count, "writing last-seen times and refusal counts failed: kept for the next flush");
                self.activity.put_back(seen, rows);
            }
            Err(e) => {
                tracing::error!(error = %e, rows = count, "writing last-seen times and refusal counts failed: they are lost")
            }
        }
    }

    /// Writes an audit event; a failure to write is logged, never shown to a client.
    pub async fn audit(&self, event: AuditEvent) {
        let storage = self.storage.clone();
        let res = tokio::task::spawn_blocking(move || storage.audit(&event)).await;
        if !matches!(res, Ok(Ok(()))) {
            tracing::error!(?res, "writing the audit log failed");
        }
    }
}

/// Writes one audit event for `caller` (or an unknown caller), with what more there is
/// to say (never content).
pub(crate) async fn audit_detail(
    state: &AppState,
    caller: Option<&auth::Caller>,
    action: &str,
    target: &str,
    outcome: &str,
    detail: Option<String>,
) {
    state
        .audit(AuditEvent {
            at: chrono::Utc::now(),
            actor: caller.map_or_else(|| "-".to_owned(), |c| c.user.name.clone()),
            device: caller.map(|c| c.device.id),
            action: action.to_owned(),
            target: storage::audit_target(target),
            from: caller.map_or_else(|| "-".to_owned(), |c| c.from.clone()),
            outcome: outcome.to_owned(),
            detail,
        })
        .await;
}

/// Writes one audit event for `caller` (or an unknown caller).
pub(crate) async fn audit(
    state: &AppState,
    caller: Option<&auth::Caller>,
    action: &str,
    target: &str,
    outcome: &str,
) {
    // Targets are ids the server validated or built; control characters are dropped all
    // the same (`audit_target`), so nothing can forge a line in the log.
    audit_detail(state, caller, action, target, outcome, None).await;
}

/// The whole HTTP and WebSocket surface.
pub fn app(state: AppState) -> Router {
    app_with_dashboard(state, None)
}

fn routes(state: AppState) -> Router {
    Router::new()
        .merge(session::routes())
        .merge(api::routes())
        .merge(blobs::routes())
        .merge(sync::routes())
        .layer(DefaultBodyLimit::max(limits::MAX_JSON_BODY))
        // A request (its body included) that takes longer than this is cut off, so a
        // slow-drip upload cannot hold a connection forever. A WebSocket answers its
        // upgrade at once and is not affected.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits::REQUEST_TIMEOUT,
        ))
        // After the layers above, so that they do not apply: telemetry uploads have their
        // own body limit and a longer timeout (`telemetry::routes`).
        .merge(telemetry::routes())
        .with_state(state)
}

/// Serves `app(state)` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    serve_with_dashboard(listener, state, None).await
}

/// [`app`], with the review dashboard's files from `ui` (a built `ui/dist`) for every
/// path no route takes: [`dashboard::service`].
pub fn app_with_dashboard(state: AppState, ui: Option<&std::path::Path>) -> Router {
    let app = routes(state.clone());
    let app = match ui {
        Some(dir) => app.fallback_service(dashboard::service(dir)),
        None => app,
    };
    // Outermost: every request, the dashboard's files too ([`web::front`]).
    app.layer(axum::middleware::from_fn_with_state(state, web::front))
}

/// Drops photo uploads given up on: nothing received for [`limits::PARTIAL_UPLOAD_TTL`].
async fn prune_partial_uploads(storage: &Arc<dyn Storage>) {
    let s = storage.clone();
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(limits::PARTIAL_UPLOAD_TTL).unwrap_or_default();
    match tokio::task::spawn_blocking(move || s.prune_partial_blobs(cutoff)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(uploads = n, "dropped photo uploads given up on"),
        Ok(Err(e)) => tracing::warn!(error = %e, "pruning partial photo uploads failed"),
        Err(e) => tracing::warn!(error = %e, "pruning partial photo uploads failed"),
    }
}

/// With several server processes on one database, what the others commit reaches this
/// one's connections and event streams as if it had been made here: a document another
/// process changed is loaded again and pushed to the peers following it here; an
/// inspection whose record changed is told to its event streams.
async fn follow_other_processes(state: &AppState) {
    let storage = state.storage.clone();
    // Blocking: it connects.
    let feed = match tokio::task::spawn_blocking(move || storage.changes_elsewhere()).await {
        Ok(Some(feed)) => feed,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "starting to follow other processes' changes failed");
            return;
        }
    };
    let docs = state.docs.clone();
    let telemetry = follow_telemetry(state);
    tokio::spawn(async move {
        let mut feed = feed;
        while let Some(news) = feed.recv().await {
            match news {
                storage::Elsewhere::Telemetry => telemetry.notify_one(),
                storage::Elsewhere::Document(id) => {
                    // Each on its own: one waiting for a busy document holds up no other.
                    let docs = docs.clone();
                    tokio::spawn(async move { docs.refresh(id).await });
                }
                storage::Elsewhere::Inspection(id) => docs.tell_watchers(id),
                storage::Elsewhere::Missed => {
                    // At every (re)connection of the listener, and when news came faster
                    // than it was taken.
                    telemetry.notify_one();
                    let n = docs.refresh_all().await;
                    if n > 0 {
                        tracing::info!(
                            told = n,
                            "news of other processes' changes may have been missed; the documents followed here will be loaded afresh"
                        );
                    }
                }
            }
        }
    });
}

/// Imports the telemetry feeds other processes imported ([`telemetry::TelemetryDb::catch_up`])
/// now, and again each time the returned signal is given: one catch-up at a time, news
/// that comes during one bringing one more after it. Nothing when telemetry is not shared.
fn follow_telemetry(state: &AppState) -> Arc<tokio::sync::Notify> {
    let signal = Arc::new(tokio::sync::Notify::new());
    if !state.telemetry.is_shared() {
        return signal;
    }
    let telemetry = state.telemetry.clone();
    let waiting = signal.clone();
    tokio::spawn(async move {
        loop {
            let t = telemetry.clone();
            match tokio::task::spawn_blocking(move || t.catch_up()).await {
                Ok(Ok(done)) if !done.is_empty() => {
                    tracing::info!(
                        imports = done.len(),
                        "telemetry caught up with other processes' imports"
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "catching up with other processes' telemetry imports failed: tried again at the next news")
                }
                Err(e) => tracing::error!(error = %e, "catching up with telemetry imports failed"),
            }
            tokio::select! {
                () = waiting.notified() => {}
                () = tokio::time::sleep(telemetry::CATCH_UP_EVERY) => {}
            }
        }
    });
    signal
}

/// Serves [`app_with_dashboard`] on `listener` until the process ends.
pub async fn serve_with_dashboard(
    listener: TcpListener,
    state: AppState,
    ui: Option<std::path::PathBuf>,
) -> std::io::Result<()> {
    let docs = state.docs.clone();
    tokio::spawn(async move { docs.evict_idle_forever().await });
    follow_other_processes(&state).await;
    // Once before taking requests (so no client sees an upload about to go), then
    // in the background.
    prune_partial_uploads(&state.storage).await;
    let storage = state.storage.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(
            tokio::time::Instant::now() + limits::PRUNE_EVERY,
            limits::PRUNE_EVERY,
        );
        loop {
            every.tick().await;
            prune_partial_uploads(&storage).await;
        }
    });
    let flushing = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(limits::ACTIVITY_FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            flushing.flush_activity(false).await;
        }
    });
    // Stopped with SIGTERM or Ctrl-C: no new connection is taken; requests being
    // answered finish (a change being stored is committed and acknowledged); sync
    // connections are closed with a reason between messages (1001, "going away") and
    // event streams end; then what is held in memory is written and the process ends.
    // What is still open after STOP_GRACE is cut off.
    let asked = state.clone();
    let shutdown = async move {
        stopped().await;
        tracing::info!(
            "stopping: taking no new connections, finishing requests, closing sync connections"
        );
        asked.stopping.send_replace(true);
    };
    let watchdog = state.clone();
    tokio::spawn(async move {
        let mut stop = watchdog.stopping.subscribe();
        if stop.wait_for(|s| *s).await.is_ok() {
            tokio::time::sleep(limits::STOP_GRACE).await;
            tracing::warn!(
                grace = ?limits::STOP_GRACE,
                "stopping: connections still open after the grace period are cut off"
            );
            finish(&watchdog).await;
        }
    });
    axum::serve(
        listener,
        app_with_dashboard(state.clone(), ui.as_deref())
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // The HTTP side is done; sync connections (upgraded, so not waited for above) close
    // between messages once told: wait for the last (the watchdog bounds the wait).
    while state.live_sync.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    finish(&state).await
}

/// Writes what is held in memory (bounded: a stuck disk does not keep the process from
/// stopping), then ends the process.
async fn finish(state: &AppState) -> ! {
    let flushed =
        tokio::time::timeout(limits::ACTIVITY_FLUSH_EVERY, state.flush_activity(true)).await;
    match flushed {
        Ok(()) => {
            tracing::info!("stopped: sync states, last-seen times and refusal counts written")
        }
        Err(_) => {
            tracing::error!(
                "stopping: writing sync states, last-seen times and refusal counts timed out"
            )
        }
    }
    std::process::exit(0)
}

/// Resolves when the process is asked to stop (SIGTERM, or Ctrl-C).
async fn stopped() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_refusals_leave_most_open_files_to_valid_users() {
        assert_eq!(
            held_refusals_cap(Some(1024)),
            256,
            "Debian's default soft limit"
        );
        assert_eq!(held_refusals_cap(Some(40)), 16, "never fewer than 16");
        assert_eq!(held_refusals_cap(Some(1 << 20)), limits::MAX_HELD_REFUSALS);
        assert_eq!(held_refusals_cap(None), 256);
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0), "read on Linux");
        }
    }
}
