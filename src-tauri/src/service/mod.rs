//! The field app's service layer: everything the Tauri commands do, with no Tauri in it,
//! so that tests drive it without a window (src-tauri/tests/).
//!
//! [`App`] holds the keystore, the open store ([`local::Local`]), who is signed in, and
//! the [`status::StatusHub`]. Its methods are the commands of docs/APP-IPC.md; the ones
//! that touch the store block (SQLite with `synchronous=FULL`) and the shell runs them on
//! the blocking pool. [`App::run_worker`] is the background sync: documents over the
//! WebSocket ([`worker`]) and photos over HTTP ([`uploads`]).
//!
//! Start-up ([`App::open`]): the keystore gives the store's key (made on first run);
//! without a keystore the app opens **no** store and every data command fails with
//! `no_keychain`. The signed-in user is `settings.json` beside the store plus the device
//! token in the keystore: both must be there.

pub mod actions;
pub mod checklists;
pub mod keystore;
pub mod limits;
pub mod local;
pub mod remote;
pub mod settings;
pub mod status;
pub mod uploads;
pub mod views;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::{
    Answer, CommentTarget, FieldRef, InspectionView, NewFinding, Observation, PhotoRef,
    SignoffRole, Stamp, State, TeamRole,
};
use wardcheck_core::photo;
use wardcheck_core::policy::{Role as PolicyRole, Writer};
use wardcheck_core::store::{Blob, PendingUpload, Store};

use crate::error::{AppError, ErrorCode};
use keystore::{Keystore, KeystoreChoice, KeystoreKind};
use local::{Local, Unopenable};
use settings::Settings;
use status::{StatusHub, SyncStatus};
use views::{AppStatus, InspectionSummary, OpenInspection, PhotoAdded, SignedIn};

/// The store's file name inside the app's data folder.
pub const STORE_FILE: &str = "wardcheck.db";
/// What the app says after a wipe the server asked for ([`views::Wiped`]).
pub const WIPED_FILE: &str = "wiped.json";

/// What the app starts with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The app's data folder (Tauri's `app_data_dir`, under `$XDG_DATA_HOME` on Linux).
    pub data_dir: PathBuf,
    pub keystore: KeystoreChoice,
    /// The name this device signs in as (shown in the server's device list).
    pub device_name: String,
    /// Longest silence on the sync connection before it is taken for dead
    /// ([`limits::SILENCE_TIMEOUT`]; shorter in tests).
    pub silence_timeout: std::time::Duration,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, keystore: KeystoreChoice) -> Self {
        Config {
            data_dir: data_dir.into(),
            keystore,
            device_name: device_name(),
            silence_timeout: limits::SILENCE_TIMEOUT,
        }
    }
}

/// "Wardcheck on HOSTNAME", cut to what the server accepts.
pub fn device_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "a field device".into());
    let name: String = format!("Wardcheck on {host}")
        .chars()
        .filter(|c| !c.is_control())
        .take(limits::MAX_NAME_CHARS)
        .collect();
    name
}

/// Who is signed in: the settings record and the token from the keystore. Its Debug
/// output leaves out the token.
#[derive(Clone)]
pub(crate) struct Session {
    pub settings: Settings,
    pub token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("settings", &self.settings)
            .field("token", &"(hidden)")
            .finish()
    }
}

/// The field app's state; cheap to clone (one shared inner).
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub data_dir: PathBuf,
    pub device_name: String,
    pub silence_timeout: std::time::Duration,
    pub keystore: Option<Keystore>,
    pub keystore_kind: KeystoreKind,
    pub keystore_error: Option<String>,
    /// Why the store did not open, when the keystore did.
    pub store_error: Option<AppError>,
    pub local: Mutex<Option<Local>>,
    pub session: RwLock<Option<Session>>,
    /// Bumped on every sign-in and sign-out, so the worker drops its connection.
    pub session_gen: watch::Sender<u64>,
    /// Bumped on every local write: the worker sends it (and the uploader looks for
    /// new photos). A watch, so that both loops see every bump.
    pub changed: watch::Sender<u64>,
    /// Bumped by `sync_now`: both loops try at once, whatever their back-off.
    pub sync_now: watch::Sender<u64>,
    /// Bumped when the worker has stored changes from the server (or a new inspection):
    /// the uploader looks for photos other devices took.
    pub received: watch::Sender<u64>,
    pub hub: StatusHub,
    /// Inspections the server lists that this device cannot open yet (their checklist
    /// could not be had), with why: listed, never left off silently.
    pub unavailable: Mutex<std::collections::BTreeMap<Uuid, views::Unavailable>>,
    /// Checklists the server holds that this device could not have, by `id@version`,
    /// with why (the last time it tried).
    pub checklist_problems: Mutex<std::collections::BTreeMap<String, String>>,
    /// Held while corrective actions are exchanged with the server ([`actions::spawn`]):
    /// one exchange at a time, in its own task.
    pub exchanging: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Made on first use ([`Inner::http`]), not at start: with TLS built in, making it
    /// reads the platform's trust store (OpenSSL parses every root certificate), which
    /// cost the window about 80 ms when it was done while the app opened.
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Inner {
    /// Why inspection `id` cannot be opened here, if the worker found it so.
    pub fn unavailable_of(&self, id: Uuid) -> Option<views::Unavailable> {
        self.unavailable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Forgets what the server listed for the user signed in (sign-out, wipe): the next
    /// user never sees the last one's rows.
    pub fn forget_listed(&self) {
        self.unavailable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.checklist_problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn unavailable_all(&self) -> Vec<(Uuid, views::Unavailable)> {
        self.unavailable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

impl Inner {
    /// The HTTP client, with the app's timeouts.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(remote::client)
    }
}

impl App {
    /// Opens the keystore and, when it works, the store. Never fails: what went wrong
    /// shows in [`App::app_status`] and in the errors of the commands.
    pub fn open(config: Config) -> App {
        let keystore = config.keystore.open();
        App::open_with(config, keystore)
    }

    /// [`App::open`] with a given keystore (`config.keystore` is not used), e.g. one
    /// that fails, to test what the app does without a keychain.
    pub fn open_with(config: Config, keystore: Keystore) -> App {
        let store_path = config.data_dir.join(STORE_FILE);
        let (keystore, kind, keystore_error, local, store_error) =
            match keystore.store_key(&store_path) {
                Err(e @ keystore::KeystoreError::Unavailable(_)) => (
                    None,
                    KeystoreKind::Unavailable,
                    Some(e.to_string()),
                    None,
                    None,
                ),
                Err(e) => {
                    let kind = keystore.kind();
                    let err = AppError::new(ErrorCode::Storage, e.to_string());
                    (Some(keystore), kind, None, None, Some(err))
                }
                Ok(key) => {
                    let kind = keystore.kind();
                    let opened = std::fs::create_dir_all(&config.data_dir)
                        .map_err(|e| {
                            AppError::new(
                                ErrorCode::Storage,
                                format!(
                                    "The data folder {} cannot be made: {e}",
                                    config.data_dir.display()
                                ),
                            )
                        })
                        .and_then(|()| Store::open(&store_path, &key).map_err(AppError::from));
                    match opened {
                        Ok(store) => {
                            checklists::load_kept(&store);
                            (Some(keystore), kind, None, Some(Local::new(store)), None)
                        }
                        Err(e) => (Some(keystore), kind, None, None, Some(e)),
                    }
                }
            };
        let session = match (&keystore, settings::load(&config.data_dir)) {
            (Some(ks), Some(settings)) => match ks.token() {
                Ok(Some(token)) => Some(Session { settings, token }),
                _ => None,
            },
            _ => None,
        };
        let hub = StatusHub::new(
            session.is_some(),
            session.as_ref().and_then(|s| s.settings.last_synced_at),
        );
        let app = App {
            inner: Arc::new(Inner {
                data_dir: config.data_dir,
                device_name: config.device_name,
                silence_timeout: config.silence_timeout,
                keystore,
                keystore_kind: kind,
                keystore_error,
                store_error,
                local: Mutex::new(local),
                session: RwLock::new(session),
                session_gen: watch::Sender::new(0),
                changed: watch::Sender::new(0),
                sync_now: watch::Sender::new(0),
                received: watch::Sender::new(0),
                hub,
                unavailable: Mutex::default(),
                checklist_problems: Mutex::default(),
                exchanging: Default::default(),
                http: std::sync::OnceLock::new(),
            }),
        };
        app.refresh_pending();
        app
    }

    /// The worker has stored changes from the server: the screens (through the status)
    /// and the uploader (looking for other devices' photos) are told.
    pub(crate) fn received_from_server(&self) {
        self.inner.received.send_modify(|n| *n += 1);
        self.inner.hub.changes_received();
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Status updates, for the shell to forward as `sync-status` events.
    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.inner.hub.subscribe()
    }

    pub(crate) fn session(&self) -> Option<Session> {
        self.inner
            .session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn signed_in(&self) -> Result<Session, AppError> {
        self.keystore()?;
        self.session().ok_or_else(AppError::not_signed_in)
    }

    fn keystore(&self) -> Result<&Keystore, AppError> {
        self.inner.keystore.as_ref().ok_or_else(|| {
            AppError::new(
                ErrorCode::NoKeychain,
                self.inner
                    .keystore_error
                    .clone()
                    .unwrap_or_else(|| "No keychain is available".into()),
            )
        })
    }

    /// The open store, or why there is none.
    pub(crate) fn local(&self) -> Result<LocalGuard<'_>, AppError> {
        self.keystore()?;
        let guard = match self.inner.local.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // Something panicked while holding the store: a loaded document may
                // be half-changed. Drop every loaded copy; the store has what was
                // saved.
                tracing::error!("the local data lock was poisoned: reloading from the store");
                let mut guard = poisoned.into_inner();
                if let Some(local) = guard.as_mut() {
                    local.clear_cache();
                }
                self.inner.local.clear_poison();
                guard
            }
        };
        if guard.is_none() {
            return Err(self.inner.store_error.clone().unwrap_or_else(|| {
                AppError::new(ErrorCode::Storage, "The local data is not open")
            }));
        }
        Ok(LocalGuard(guard))
    }

    /// The peer name sync states are kept under: the server's address.
    fn peer(&self) -> Option<String> {
        self.session().map(|s| s.settings.server)
    }

    /// Recounts what is only on this device and reports it.
    pub(crate) fn refresh_pending(&self) {
        let Some(peer) = self.peer() else { return };
        let Ok(mut local) = self.local() else { return };
        let changes = local.pending_total(&peer);
        let (photos, bytes) = local.pending_photos();
        let checks = actions::waiting_count(&local);
        let damaged = damage_report(&local);
        self.report_refused(&local);
        drop(local);
        self.inner.hub.set_pending_checks(checks);
        self.inner.hub.set_damaged(damaged);
        self.report_pending(changes, photos, bytes);
    }

    /// Tells the status which documents' changes the server refused.
    pub(crate) fn report_refused(&self, local: &Local) {
        let refused = local
            .refusals()
            .into_iter()
            .map(|(id, r)| status::RefusedDoc {
                document: id,
                inspection: local.inspection_of(id),
                code: r.code,
                message: r.message,
            })
            .collect();
        self.inner.hub.set_refused(refused);
    }

    /// Tells the status which stored inspections do not open (as `local` last found).
    pub(crate) fn report_damaged(&self, local: &Local) {
        self.inner.hub.set_damaged(damage_report(local));
    }

    pub(crate) fn report_pending(&self, changes: u64, photos: u64, bytes: u64) {
        let a = self.inner.hub.set_pending_changes(changes);
        let b = self.inner.hub.set_pending_photos(photos, bytes);
        if a || b {
            self.remember_synced();
        }
    }

    /// Keeps "last synced at" across restarts.
    pub(crate) fn remember_synced(&self) {
        let at = self.inner.hub.current().last_synced_at;
        let mut session = self
            .inner
            .session
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = session.as_mut() {
            s.settings.last_synced_at = at;
            if let Err(e) = settings::save(&self.inner.data_dir, &s.settings) {
                tracing::warn!("could not keep the last sync time: {e}");
            }
        }
    }

    // ----- start-up and sign-in -----

    pub fn app_status(&self) -> AppStatus {
        AppStatus {
            version: env!("CARGO_PKG_VERSION"),
            keystore: self.inner.keystore_kind,
            keystore_error: self.inner.keystore_error.clone(),
            signed_in: self.session().map(|s| SignedIn {
                server: s.settings.server,
                user: s.settings.user,
                display_name: s.settings.display_name,
                role: s.settings.role,
                device_id: s.settings.device_id,
            }),
            wiped: std::fs::read(self.inner.data_dir.join(WIPED_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        }
    }

    /// Deletes this device's Wardcheck data because the server asked (the device was
    /// revoked with a wipe). What was only here is counted first; then the session and
    /// the store go (nothing more is read or written), the store's files, its key and the
    /// settings are deleted, and `wiped.json` says why. A fresh, empty store is opened so
    /// the app can be signed in again. Then the server is told the counts; the token, the
    /// only thing left, goes once it has heard (or refused for good). If it cannot be
    /// reached, the token stays for one purpose: the report is tried again at the next
    /// start ([`App::retry_wipe_report`]).
    pub(crate) async fn wipe(&self, reason: &str) {
        let session = self.session();
        let (changes, photos) = match (self.peer(), self.local()) {
            (Some(peer), Ok(mut local)) => (local.pending_total(&peer), local.pending_photos().0),
            _ => (0, 0),
        };
        // Nothing more is read or written: the session goes (every command needs it), then
        // the store. The screens hear of it once the server has been told (below), so
        // that they show the whole notice.
        *self
            .inner
            .session
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
        // The store closes when it is dropped; then its files go.
        *self.inner.local.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let store_path = self.inner.data_dir.join(STORE_FILE);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = self.inner.data_dir.join(format!("{STORE_FILE}{suffix}"));
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::error!("deleting {}: {e}", path.display());
            }
        }
        if let Some(ks) = &self.inner.keystore
            && let Err(e) = ks.delete_store_key()
        {
            tracing::error!("deleting the store's key from the keychain: {e}");
        }
        let _ = std::fs::remove_file(settings::path(&self.inner.data_dir));
        let mut notice = views::Wiped {
            at: Utc::now(),
            reason: reason.to_owned(),
            unsynced_changes: changes,
            unsynced_photos: photos,
            reported: false,
            server: session.as_ref().map(|s| s.settings.server.clone()),
        };
        self.write_wiped(&notice);
        // A fresh, empty store (a new key): the device may be signed in again.
        if let Some(ks) = &self.inner.keystore
            && !store_path.exists()
        {
            match ks
                .store_key(&store_path)
                .map_err(|e| e.to_string())
                .and_then(|key| Store::open(&store_path, &key).map_err(|e| e.to_string()))
            {
                Ok(store) => {
                    *self.inner.local.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Local::new(store));
                }
                Err(e) => tracing::error!("opening a fresh store after the wipe: {e}"),
            }
        }
        tracing::warn!(
            "this device's Wardcheck data was deleted at the server's request ({changes} changes, {photos} photos not yet on the server)"
        );
        if let Some(s) = session {
            notice.reported = self
                .report_wipe(&s.settings.server, &s.token, changes, photos)
                .await;
            self.write_wiped(&notice);
        }
        // The fetched checklists went with the store: fetched again into the new one.
        local::clear_fetched();
        self.inner.forget_listed();
        self.inner.hub.set_signed_in(false);
        self.inner.session_gen.send_modify(|g| *g += 1);
    }

    /// Tells the server the wipe is done; deletes the token once it has heard or refused
    /// for good, and keeps it (for the next start) while the server cannot be reached.
    async fn report_wipe(&self, server: &str, token: &str, changes: u64, photos: u64) -> bool {
        let mut outcome = None;
        for _ in 0..3 {
            match remote::report_wiped(self.inner.http(), server, token, changes, photos).await {
                Ok(()) => {
                    outcome = Some(true);
                    break;
                }
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::warn!("the server did not take the wipe report: {e}");
                    outcome = Some(false);
                    break;
                }
            }
        }
        if outcome.is_some()
            && let Some(ks) = &self.inner.keystore
            && let Err(e) = ks.delete_token()
        {
            tracing::error!("deleting the device token from the keychain: {e}");
        }
        outcome == Some(true)
    }

    /// A wipe whose report did not reach the server: tried again at start.
    pub(crate) async fn retry_wipe_report(&self) {
        let Some(mut notice) = self.app_status().wiped else {
            return;
        };
        if notice.reported || self.session().is_some() {
            return;
        }
        let (Some(server), Some(ks)) = (notice.server.clone(), &self.inner.keystore) else {
            return;
        };
        let Ok(Some(token)) = ks.token() else { return };
        notice.reported = self
            .report_wipe(
                &server,
                &token,
                notice.unsynced_changes,
                notice.unsynced_photos,
            )
            .await;
        self.write_wiped(&notice);
    }

    fn write_wiped(&self, notice: &views::Wiped) {
        if let Ok(json) = serde_json::to_vec_pretty(notice)
            && let Err(e) = std::fs::write(self.inner.data_dir.join(WIPED_FILE), json)
        {
            tracing::error!("writing {WIPED_FILE}: {e}");
        }
    }

    /// Signs in on the server; the token goes to the keystore, who and where to
    /// `settings.json`. Needs the network; nothing after it does.
    pub async fn sign_in(
        &self,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<AppStatus, AppError> {
        let keystore = self.keystore()?;
        let server = remote::normalise_server(server)?;
        let user = user.trim();
        if user.is_empty() || user.chars().count() > limits::MAX_NAME_CHARS {
            return Err(AppError::invalid(format!(
                "Type your user name (1 to {} characters)",
                limits::MAX_NAME_CHARS
            )));
        }
        if password.is_empty() || password.len() > limits::MAX_PASSWORD_BYTES {
            return Err(AppError::invalid("Type your password"));
        }
        // Before the server is asked (no device token is made for nothing), and again
        // with the user name as the server spells it.
        self.check_owner(&server, user, false)?;
        // The actor this device writes with, bound to the user as it signs in.
        let actor = self.local()?.store.actor().to_hex_string();
        // The token this device held before, if any: it proves this device signed in
        // before (the server's throttling never holds a known device back).
        let previous = keystore.token().ok().flatten();
        let ok = remote::login(
            self.inner.http(),
            &server,
            user,
            password,
            &self.inner.device_name,
            &actor,
            previous.as_deref(),
        )
        .await?;
        self.check_owner(&server, &ok.user, true)?;
        keystore
            .set_token(&ok.token)
            .map_err(|e| AppError::new(ErrorCode::NoKeychain, e.to_string()))?;
        let previous = self.session().map(|s| s.settings);
        let last_synced_at = previous
            .filter(|p| p.server == server && p.user == ok.user)
            .and_then(|p| p.last_synced_at);
        let settings = Settings {
            server: server.clone(),
            user: ok.user,
            display_name: ok.display_name,
            role: ok.role.role,
            device_id: ok.device_id,
            last_synced_at,
        };
        settings::save(&self.inner.data_dir, &settings).map_err(|e| {
            AppError::new(
                ErrorCode::Storage,
                format!("The sign-in could not be saved: {e}"),
            )
        })?;
        *self
            .inner
            .session
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Session {
            settings,
            token: ok.token,
        });
        if let Ok(mut local) = self.local() {
            local.reset_counts();
        }
        // Signed in afresh: the notice of an earlier wipe has been read.
        let _ = std::fs::remove_file(self.inner.data_dir.join(WIPED_FILE));
        self.inner.hub.set_signed_in(true);
        self.inner.session_gen.send_modify(|g| *g += 1);
        self.refresh_pending();
        Ok(self.app_status())
    }

    /// Refuses a sign-in as anyone but the owner of the inspections this device
    /// holds: the one who last signed in (`settings.json`, kept after a sign-out), on
    /// the same server. A device holding nothing takes anyone. `exact`: the user name
    /// as the server spells it; otherwise compared without regard to case.
    fn check_owner(&self, server: &str, user: &str, exact: bool) -> Result<(), AppError> {
        let Some(owner) = settings::load(&self.inner.data_dir) else {
            return Ok(());
        };
        let same_user = if exact {
            owner.user == user
        } else {
            owner.user.eq_ignore_ascii_case(user)
        };
        if owner.server == server && same_user {
            return Ok(());
        }
        let holds = match self.local() {
            Ok(local) => !local.ids()?.is_empty() || !local.store.pending_uploads()?.is_empty(),
            Err(_) => false,
        };
        if !holds {
            return Ok(());
        }
        Err(AppError::invalid(format!(
            "This device holds inspections of {} on {}. Sign in as them, or ask your \
             Wardcheck administrator to clear this device's Wardcheck data before \
             another inspector uses it",
            owner.user, owner.server
        )))
    }

    /// Signs out: the token leaves the keystore; local data stays. With changes or
    /// photos not yet on the server it refuses (`invalid`) unless `force`.
    pub fn sign_out(&self, force: bool) -> Result<AppStatus, AppError> {
        let keystore = self.keystore()?;
        if !force
            && let Some(peer) = self.peer()
            && let Ok(mut local) = self.local()
        {
            let changes = local.pending_total(&peer);
            let (photos, _) = local.pending_photos();
            let checks = actions::waiting_count(&local);
            drop(local);
            if changes > 0 || photos > 0 {
                return Err(AppError::invalid(format!(
                    "{} and {} are not yet on the server: sync before signing out",
                    plural(changes, "change"),
                    plural(photos, "photo"),
                )));
            }
            if checks > 0 {
                return Err(AppError::invalid(format!(
                    "{} of corrective actions {} not yet on the server: sync before signing out",
                    plural(checks, "check"),
                    if checks == 1 { "is" } else { "are" },
                )));
            }
        }
        keystore
            .delete_token()
            .map_err(|e| AppError::new(ErrorCode::NoKeychain, e.to_string()))?;
        *self
            .inner
            .session
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.inner.forget_listed();
        self.inner.hub.set_signed_in(false);
        self.inner.session_gen.send_modify(|g| *g += 1);
        Ok(self.app_status())
    }

    // ----- inspections -----

    /// The inspections that open, and those whose checklist this device could not have
    /// (listed with which and why, not opened); a damaged one is left out, but the sync
    /// status turns to `error` and its message names it (so the rest stay usable).
    pub fn list_inspections(&self) -> Result<Vec<InspectionSummary>, AppError> {
        self.signed_in()?;
        let mut local = self.local()?;
        let mut out = Vec::new();
        for id in local.ids()? {
            match local.try_doc(id) {
                Ok(insp) => {
                    let view = insp.view()?;
                    out.push(InspectionSummary::of(&view, insp.checklist()));
                }
                // Stored, but its checklist is not on this device: shown, with why.
                Err(Unopenable::Checklist(e)) => {
                    tracing::warn!("inspection {id} cannot be opened: {}", e.message);
                    let known = self.inner.unavailable_of(id);
                    let u = known.unwrap_or(views::Unavailable {
                        trust: String::new(),
                        state: wardcheck_core::inspection::State::Draft,
                        checklist: "?".into(),
                        why: e.message.clone(),
                    });
                    out.push(views::InspectionSummary::unavailable(id, &u));
                }
                // Gone since the ids were read.
                Err(Unopenable::Missing(_)) => {}
                Err(Unopenable::Damaged(e)) => {
                    tracing::error!("inspection {id} is damaged: {}", e.message);
                }
            }
        }
        self.report_damaged(&local);
        drop(local);
        // Listed by the server, never stored here: its checklist could not be had.
        for (id, u) in self.inner.unavailable_all() {
            if !out.iter().any(|s| s.id == id) {
                out.push(views::InspectionSummary::unavailable(id, &u));
            }
        }
        out.sort_by(|a, b| {
            (b.visit_start, b.created_at, b.id).cmp(&(a.visit_start, a.created_at, a.id))
        });
        Ok(out)
    }

    pub fn open_inspection(&self, id: Uuid) -> Result<OpenInspection, AppError> {
        self.signed_in()?;
        let mut local = self.local()?;
        let insp = match local.try_doc(id) {
            Ok(insp) => insp,
            Err(e) => {
                self.report_damaged(&local);
                return Err(e.into());
            }
        };
        let mut view = insp.view()?;
        let mut checklist = views::ChecklistForApp::of(insp.checklist());
        // The sections this inspection holds: an inspection-scope section only if its
        // items are in the document (the server leaves out those that do not apply to
        // the trust: an acute trust's inspection has no ambulance section).
        checklist.sections.retain(|s| {
            s.scope == wardcheck_core::checklist::Scope::Device
                || s.items.iter().any(|i| view.responses.contains_key(&i.id))
        });
        view.comments = local.comments(id);
        Ok(OpenInspection { view, checklist })
    }

    /// Every value the fields of one item, finding or device of inspection `id` held,
    /// from this device's copy (so it works with no network): each with the author its
    /// value names, which the server held to the change's actor binding when it took it.
    pub fn history(
        &self,
        id: Uuid,
        subject: views::HistorySubject,
    ) -> Result<views::History, AppError> {
        self.signed_in()?;
        let subject = subject.into_core()?;
        let mut local = self.local()?;
        let insp = match local.try_doc(id) {
            Ok(insp) => insp,
            Err(e) => {
                self.report_damaged(&local);
                return Err(e.into());
            }
        };
        let (entries, truncated) = insp.history(&subject, views::MAX_HISTORY);
        Ok(views::History { entries, truncated })
    }

    /// The signed-in user as the write policy knows them on inspection `id`: their role,
    /// and for an inspector their place on its team (from the server's list, or the team
    /// the inspection was made with, before any list).
    fn writer(&self, local: &mut Local, session: &Session, id: Uuid) -> Writer {
        let user = session.settings.user.clone();
        let role = match session.settings.role.as_str() {
            "reviewer" => PolicyRole::Reviewer,
            "trust-lead" => PolicyRole::TrustLead,
            "admin" => PolicyRole::Admin,
            _ => {
                let lead = match local.record(id).lead {
                    Some(lead) => lead == user,
                    None => local
                        .try_doc(id)
                        .ok()
                        .and_then(|i| i.view().ok())
                        .is_some_and(|v| {
                            v.meta
                                .team
                                .iter()
                                .any(|m| m.user == user && m.role == TeamRole::LeadInspector)
                        }),
                };
                if lead {
                    PolicyRole::LeadInspector
                } else {
                    PolicyRole::Inspector
                }
            }
        };
        Writer::new(user, role)
    }

    /// Runs one operation as the signed-in user, saves it, and tells the worker. The
    /// operation is held to the write policy for the user: what the server would refuse
    /// is refused here, before anything is written.
    fn edit(
        &self,
        id: Uuid,
        op: impl FnOnce(&mut wardcheck_core::inspection::Inspection, &Stamp) -> Result<(), AppError>,
    ) -> Result<InspectionView, AppError> {
        let session = self.signed_in()?;
        let stamp = Stamp::new(session.settings.user.clone(), Utc::now());
        let mut local = self.local()?;
        let writer = self.writer(&mut local, &session, id);
        let view = local.write(id, |insp| {
            insp.set_writer(writer);
            op(insp, &stamp)?;
            Ok(insp.view()?)
        });
        let view = view.map(|mut v| {
            v.comments = local.comments(id);
            v
        });
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                self.report_damaged(&local);
                return Err(e);
            }
        };
        local.recount(id, &session.settings.server);
        let changes = local.pending_total(&session.settings.server);
        drop(local);
        self.inner.hub.set_pending_changes(changes);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(view)
    }

    pub fn set_answer(
        &self,
        id: Uuid,
        item: &str,
        answer: Answer,
    ) -> Result<InspectionView, AppError> {
        self.edit(id, |insp, stamp| Ok(insp.set_answer(item, answer, stamp)?))
    }

    pub fn edit_note(&self, id: Uuid, item: &str, text: &str) -> Result<InspectionView, AppError> {
        self.edit(id, |insp, stamp| Ok(insp.edit_note(item, text, stamp)?))
    }

    /// Processes a photo (metadata stripped, re-encoded), stores it encrypted, attaches
    /// it to the item and queues it for upload. The processing runs before the store is
    /// locked.
    pub fn add_photo(
        &self,
        id: Uuid,
        item: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<PhotoAdded, AppError> {
        let session = self.signed_in()?;
        check_photo_size(bytes.len())?;
        let processed = photo::process(bytes, &photo::Limits::default())?;
        let caption: String = name.chars().take(200).collect();
        let blob = Blob::from(processed);
        let size = blob.bytes.len() as u64;
        let now = Utc::now();
        let stamp = Stamp::new(session.settings.user.clone(), now);
        let mut local = self.local()?;
        // The photo first: a document never refers to bytes the store does not hold.
        local.store.put_blob(&blob, id, now)?;
        let photo_ref = PhotoRef {
            hash: blob.sha256.clone(),
            size,
            width: blob.width,
            height: blob.height,
            mime: blob.mime.clone(),
            caption,
            captured_at: None,
        };
        let writer = self.writer(&mut local, &session, id);
        let view = local.write(id, |insp| {
            insp.set_writer(writer);
            insp.attach_photo(item, photo_ref, &stamp)?;
            Ok(insp.view()?)
        })?;
        local.recount(id, &session.settings.server);
        let changes = local.pending_total(&session.settings.server);
        let (photos, photo_bytes) = local.pending_photos();
        drop(local);
        self.report_pending(changes, photos, photo_bytes);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(PhotoAdded {
            sha256: blob.sha256,
            bytes: size,
            view,
        })
    }

    /// A `data:image/jpeg;base64,...` URL of a photo's thumbnail.
    pub fn photo_thumbnail(&self, sha256: &str) -> Result<String, AppError> {
        use base64::Engine;
        self.signed_in()?;
        let local = self.local()?;
        let thumb = local.store.thumbnail(sha256)?;
        Ok(format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(thumb)
        ))
    }

    pub fn add_device(
        &self,
        id: Uuid,
        hostname: &str,
        build_seen: &str,
    ) -> Result<InspectionView, AppError> {
        self.edit(id, |insp, stamp| {
            Ok(insp.add_device(Uuid::new_v4(), hostname, build_seen, stamp)?)
        })
    }

    pub fn record_observation(
        &self,
        id: Uuid,
        device: Uuid,
        item: &str,
        answer: Answer,
        note: &str,
    ) -> Result<InspectionView, AppError> {
        let observation = Observation {
            answer,
            note: note.to_owned(),
        };
        self.edit(id, |insp, stamp| {
            Ok(insp.record_observation(device, item, observation, stamp)?)
        })
    }

    pub fn add_finding(
        &self,
        id: Uuid,
        severity: Severity,
        text: &str,
        items: Vec<String>,
        recommendation: &str,
    ) -> Result<InspectionView, AppError> {
        let finding = NewFinding {
            id: Uuid::new_v4(),
            severity,
            text: text.to_owned(),
            items,
            recommendation: recommendation.to_owned(),
        };
        self.edit(id, |insp, stamp| Ok(insp.add_finding(finding, stamp)?))
    }

    pub fn add_comment(
        &self,
        id: Uuid,
        target: CommentTarget,
        text: &str,
    ) -> Result<InspectionView, AppError> {
        // Comments live in the inspection's review document, which the trust never reads.
        let session = self.signed_in()?;
        let stamp = Stamp::new(session.settings.user.clone(), Utc::now());
        let mut local = self.local()?;
        let writer = self.writer(&mut local, &session, id);
        let state = local
            .try_doc(id)
            .map_err(AppError::from)?
            .state()?
            .current()
            .value;
        let checklist = local
            .try_doc(id)
            .map_err(AppError::from)?
            .checklist()
            .clone();
        let review_doc = local.record(id).review_doc;
        local.write_review(id, |review| {
            review.set_writer(writer, state);
            review
                .comment(Uuid::new_v4(), target, text, Some(&checklist), &stamp)
                .map_err(|e| match e {
                    wardcheck_core::review::ReviewError::Refused(r) => {
                        AppError::from(wardcheck_core::inspection::InspectionError::Refused(r))
                    }
                    other => AppError::invalid(other.to_string()),
                })
        })?;
        if let Some(doc) = review_doc {
            local.recount(doc, &session.settings.server);
        }
        let changes = local.pending_total(&session.settings.server);
        let mut view = local.try_doc(id).map_err(AppError::from)?.view()?;
        view.comments = local.comments(id);
        drop(local);
        self.inner.hub.set_pending_changes(changes);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(view)
    }

    pub fn resolve_conflict(
        &self,
        id: Uuid,
        field: &FieldRef,
        candidate: &str,
    ) -> Result<InspectionView, AppError> {
        self.edit(id, |insp, stamp| Ok(insp.resolve(field, candidate, stamp)?))
    }

    /// Submits the inspection; a draft passes through "in progress" on the way, as the
    /// core's state machine requires.
    pub fn submit_inspection(&self, id: Uuid) -> Result<InspectionView, AppError> {
        self.edit(id, |insp, stamp| {
            if insp.state()?.current().value == State::Draft {
                insp.change_state(State::InProgress, stamp)?;
            }
            Ok(insp.change_state(State::Submitted, stamp)?)
        })
    }

    /// Sets this device's copy of a document the server refused a change to aside (kept
    /// in the store, never deleted) and takes the server's copy on the next sync.
    pub fn take_servers_copy(&self, document: Uuid) -> Result<SyncStatus, AppError> {
        self.signed_in()?;
        let mut local = self.local()?;
        if !local.refusals().contains_key(&document) {
            return Err(AppError::new(
                ErrorCode::NotFound,
                "The server has refused no change to that document",
            ));
        }
        local.take_servers_copy(document)?;
        self.report_refused(&local);
        drop(local);
        self.refresh_pending();
        self.inner.sync_now.send_modify(|n| *n += 1);
        Ok(self.inner.hub.current())
    }

    /// Signs off a submitted inspection: as the reviewer for a reviewer, else as the
    /// lead inspector.
    pub fn sign_off(&self, id: Uuid, statement: &str) -> Result<InspectionView, AppError> {
        let role = match self.session().map(|s| s.settings.role) {
            Some(r) if r == "reviewer" => SignoffRole::Reviewer,
            _ => SignoffRole::LeadInspector,
        };
        self.edit(id, |insp, stamp| {
            Ok(insp.sign_off(Uuid::new_v4(), role, statement, stamp)?)
        })
    }

    // ----- sync -----

    /// Photos still to upload (the store's queue), oldest first.
    pub fn pending_uploads(&self) -> Result<Vec<PendingUpload>, AppError> {
        Ok(self.local()?.store.pending_uploads()?)
    }

    pub fn sync_status(&self) -> SyncStatus {
        self.inner.hub.current()
    }

    /// Wakes the worker (and ends its back-off); never waits for the network.
    pub fn sync_now(&self) -> SyncStatus {
        self.inner.sync_now.send_modify(|n| *n += 1);
        self.inner.hub.current()
    }

    /// The background sync: runs until the future is dropped.
    pub async fn run_worker(self) {
        tokio::join!(worker::run(self.clone()), uploads::run(self.clone()));
    }
}

/// Refuses a photo over [`limits::MAX_PHOTO_BYTES`] before anything reads it.
pub fn check_photo_size(len: usize) -> Result<(), AppError> {
    if len > limits::MAX_PHOTO_BYTES {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!(
                "The photo is {:.1} MB: at most {} MB is allowed",
                len as f64 / (1024.0 * 1024.0),
                limits::MAX_PHOTO_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(())
}

/// "1 change", "3 photos".
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// One message naming the stored inspections that do not open, or `None`.
fn damage_report(local: &Local) -> Option<String> {
    let damaged = local.damaged();
    let first = damaged.values().next()?;
    let more = damaged.len() - 1;
    let tail = "What is already on the server is safe there; tell your Wardcheck \
                administrator before changing anything else on this device";
    Some(if more == 0 {
        format!("{first} {tail}.")
    } else {
        let ids: Vec<String> = damaged.keys().map(Uuid::to_string).collect();
        format!(
            "{} inspections on this device cannot be opened ({}). The first: {first} {tail}.",
            damaged.len(),
            ids.join(", ")
        )
    })
}

/// The store, locked and known to be open.
pub(crate) struct LocalGuard<'a>(MutexGuard<'a, Option<Local>>);

impl std::ops::Deref for LocalGuard<'_> {
    type Target = Local;
    fn deref(&self) -> &Local {
        self.0.as_ref().expect("checked open when locked")
    }
}

impl std::ops::DerefMut for LocalGuard<'_> {
    fn deref_mut(&mut self) -> &mut Local {
        self.0.as_mut().expect("checked open when locked")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wardcheck_core::checklist;
    use wardcheck_core::inspection::{Inspection, NewInspection};

    use super::*;

    fn app(dir: &Path) -> App {
        App::open(Config::new(
            dir.join("data"),
            KeystoreChoice::TestDir(dir.join("keys")),
        ))
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let session = Session {
            settings: Settings {
                server: "http://x".into(),
                user: "ann".into(),
                display_name: "Ann".into(),
                role: "inspector".into(),
                device_id: 1,
                last_synced_at: None,
            },
            token: "s3cr3t-t0ken".into(),
        };
        let text = format!("{session:?}");
        assert!(
            !text.contains("s3cr3t-t0ken") && text.contains("ann"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        *app.inner.session.write().unwrap() = Some(session);
        let text = format!("{app:?}");
        assert!(!text.contains("s3cr3t-t0ken"), "{text}");

        let ok: remote::LoginOk = serde_json::from_value(serde_json::json!({
            "token": "s3cr3t-t0ken", "device_id": 1, "user": "ann",
            "display_name": "Ann", "role": {"role": "inspector"}
        }))
        .unwrap();
        let text = format!("{ok:?}");
        assert!(
            !text.contains("s3cr3t-t0ken") && text.contains("ann"),
            "{text}"
        );
    }

    #[test]
    fn a_poisoned_store_lock_drops_every_loaded_document() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let checklist = Arc::new(checklist::bundled().into_iter().next().unwrap());
        let actor = app.local().unwrap().store.actor();
        let insp = Inspection::create(
            NewInspection {
                id: Uuid::new_v4(),
                trust: "RJ1".into(),
                sites: vec![],
                team: vec![],
                visit_start: None,
                visit_end: None,
                org: None,
            },
            checklist,
            actor,
            &Stamp::new("ann", Utc::now()),
        )
        .unwrap();
        app.local().unwrap().insert(insp).unwrap();
        assert_eq!(app.local().unwrap().loaded(), 1);
        // Something panics while holding the store (a half-changed document, maybe).
        let held = app.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.local().unwrap();
            panic!("a panic under the store lock (test)");
        })
        .join();
        assert!(app.inner.local.is_poisoned());
        let local = app.local().expect("the store is still usable");
        assert_eq!(local.loaded(), 0, "no loaded copy survives the panic");
        drop(local);
        assert!(!app.inner.local.is_poisoned(), "the poison is cleared");
    }
}
