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
    SignoffRole, Stamp, State,
};
use wardcheck_core::photo;
use wardcheck_core::store::{Blob, PendingUpload, Store};

use crate::error::{AppError, ErrorCode};
use keystore::{Keystore, KeystoreChoice, KeystoreKind};
use local::Local;
use settings::Settings;
use status::{StatusHub, SyncStatus};
use views::{AppStatus, InspectionSummary, OpenInspection, PhotoAdded, SignedIn};

/// The store's file name inside the app's data folder.
pub const STORE_FILE: &str = "wardcheck.db";

/// What the app starts with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The app's data folder (Tauri's `app_data_dir`, under `$XDG_DATA_HOME` on Linux).
    pub data_dir: PathBuf,
    pub keystore: KeystoreChoice,
    /// The name this device signs in as (shown in the server's device list).
    pub device_name: String,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, keystore: KeystoreChoice) -> Self {
        Config {
            data_dir: data_dir.into(),
            keystore,
            device_name: device_name(),
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

/// Who is signed in: the settings record and the token from the keystore.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub settings: Settings,
    pub token: String,
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
    pub hub: StatusHub,
    pub http: reqwest::Client,
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
                        Ok(store) => (Some(keystore), kind, None, Some(Local::new(store)), None),
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
                keystore,
                keystore_kind: kind,
                keystore_error,
                store_error,
                local: Mutex::new(local),
                session: RwLock::new(session),
                session_gen: watch::Sender::new(0),
                changed: watch::Sender::new(0),
                sync_now: watch::Sender::new(0),
                hub,
                http: remote::client(),
            }),
        };
        app.refresh_pending();
        app
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
        let guard = self.inner.local.lock().unwrap_or_else(|p| p.into_inner());
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
        drop(local);
        self.report_pending(changes, photos, bytes);
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
        let ok = remote::login(
            &self.inner.http,
            &server,
            user,
            password,
            &self.inner.device_name,
        )
        .await?;
        keystore
            .set_token(&ok.token)
            .map_err(|e| AppError::new(ErrorCode::NoKeychain, e.to_string()))?;
        let previous = self.session().map(|s| s.settings);
        let settings = Settings {
            server: server.clone(),
            user: ok.user,
            display_name: ok.display_name,
            role: ok.role.role,
            device_id: ok.device_id,
            last_synced_at: previous
                .filter(|p| p.server == server)
                .and_then(|p| p.last_synced_at),
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
        self.inner.hub.set_signed_in(true);
        self.inner.session_gen.send_modify(|g| *g += 1);
        self.refresh_pending();
        Ok(self.app_status())
    }

    /// Signs out: the token leaves the keystore; local data stays.
    pub fn sign_out(&self) -> Result<AppStatus, AppError> {
        let keystore = self.keystore()?;
        keystore
            .delete_token()
            .map_err(|e| AppError::new(ErrorCode::NoKeychain, e.to_string()))?;
        *self
            .inner
            .session
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.inner.hub.set_signed_in(false);
        self.inner.session_gen.send_modify(|g| *g += 1);
        Ok(self.app_status())
    }

    // ----- inspections -----

    pub fn list_inspections(&self) -> Result<Vec<InspectionSummary>, AppError> {
        self.signed_in()?;
        let mut local = self.local()?;
        let mut out = Vec::new();
        for id in local.ids()? {
            match local.doc(id) {
                Ok(insp) => {
                    let view = insp.view()?;
                    out.push(InspectionSummary::of(&view, insp.checklist()));
                }
                // Listed only once it can be opened (a checklist this build lacks).
                Err(e) => tracing::warn!("inspection {id} is not listed: {}", e.message),
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
        let insp = local.doc(id)?;
        Ok(OpenInspection {
            view: insp.view()?,
            checklist: views::ChecklistForApp::of(insp.checklist()),
        })
    }

    /// Runs one operation as the signed-in user, saves it, and tells the worker.
    fn edit(
        &self,
        id: Uuid,
        op: impl FnOnce(&mut wardcheck_core::inspection::Inspection, &Stamp) -> Result<(), AppError>,
    ) -> Result<InspectionView, AppError> {
        let session = self.signed_in()?;
        let stamp = Stamp::new(session.settings.user.clone(), Utc::now());
        let mut local = self.local()?;
        let view = local.write(id, |insp| {
            op(insp, &stamp)?;
            Ok(insp.view()?)
        })?;
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
        let blob = Blob {
            sha256: processed.id.clone(),
            mime: processed.mime.to_owned(),
            width: processed.width,
            height: processed.height,
            bytes: processed.bytes,
            thumbnail: processed.thumbnail,
        };
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
        let view = local.write(id, |insp| {
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
        self.edit(id, |insp, stamp| {
            Ok(insp.comment(Uuid::new_v4(), target, text, stamp)?)
        })
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
