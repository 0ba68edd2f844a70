//! Where the server keeps everything: users, devices, inspections and their access
//! facts, Automerge documents (snapshot plus changes), sync states, photos and the
//! audit log.
//!
//! [`Storage`] is the interface, with two backends that answer alike (one suite of
//! tests runs against both):
//!
//! - [`SqliteStorage`]: one file in the data folder, zero set-up, one server process
//!   (the command line beside it may write too).
//! - [`PgStorage`]: a PostgreSQL database that several server processes may share, for
//!   running more than one behind a load balancer. Telemetry stays in the data folder's
//!   `telemetry.db` on either.
//!
//! Every method is blocking: async callers run them on the blocking pool. Every write
//! returns only after its transaction is committed durably (SQLite's
//! `synchronous=FULL`, PostgreSQL's `synchronous_commit`), because the sync protocol
//! tells a peer "I have your change" only after that. What the backends share is here
//! and beside them: how values are kept in columns (`columns`), the audit log's hash
//! chain (`audit_chain`), and group commit (`group`).

mod audit_chain;
mod columns;
pub(crate) mod group;
pub mod postgres;
pub mod sqlite;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::actions::{Action, Taken};
use wardcheck_core::inspection::{State, TeamRole};

pub use wardcheck_core::policy::DocKind;

pub use postgres::PgStorage;
pub use sqlite::SqliteStorage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0}")]
    Limit(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional write found that another process had written first
    /// ([`Storage::append_changes_after`]); nothing was written.
    #[error("{0} changed elsewhere since it was read")]
    Stale(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error(
        "the data folder was written by a newer version (schema {found}, this build knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", postgres_detail(.0))]
    Postgres(#[from] ::postgres::Error),
    /// No connection to PostgreSQL could be had in time: every one is busy, or the
    /// database cannot be reached.
    #[error("no database connection: {0}")]
    Pool(String),
    /// A write grouped with others (`group`) whose transaction did not commit.
    #[error("the commit failed: {0}")]
    Commit(String),
    /// A file of this machine's could not be read or written (a feed file,
    /// [`Storage::put_feed`]): not the database's fault.
    #[error("a local file: {0}")]
    Io(String),
}

impl From<r2d2::Error> for StorageError {
    fn from(e: r2d2::Error) -> Self {
        StorageError::Pool(e.to_string())
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A PostgreSQL error with what the database said (its code and message; never the
/// connection string): `postgres::Error` alone says only "db error".
fn postgres_detail(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        // Its own words already hold the cause (an I/O error, a refused connection).
        None => e.to_string(),
    }
}

// The answers both backends give alike.

fn not_found(what: impl std::fmt::Display) -> StorageError {
    StorageError::NotFound(what.to_string())
}

/// [`Storage::bind_actor`] of an actor bound to another user.
fn bound_to_another(actor: &[u8]) -> StorageError {
    StorageError::Exists(format!(
        "actor {} is bound to another user",
        hex::encode(actor)
    ))
}

/// [`Storage::bind_actor`] on a device with all the actors it may bind.
fn too_many_actors() -> StorageError {
    StorageError::Limit(format!(
        "a device may bind at most {} actors",
        crate::limits::MAX_ACTORS_PER_DEVICE
    ))
}

/// [`Storage::append_blob`] starting an upload for a user with all they may have.
fn too_many_uploads(by: &str, in_progress: i64) -> StorageError {
    StorageError::Limit(format!(
        "{by} has {in_progress} photo uploads in progress, the most a user may: \
         finish or give up one first (one untouched for 7 days is dropped)"
    ))
}

/// [`Storage::append_blob`] at another offset than the bytes received.
fn wrong_offset(sha256: &str, received: u64, offset: u64) -> StorageError {
    StorageError::Corrupt(format!(
        "upload of {sha256} continues at byte {received}, not {offset}"
    ))
}

/// What a user may do; see the access table in `access.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "trust", rename_all = "kebab-case")]
pub enum Role {
    Inspector,
    Reviewer,
    /// A trust's lead, with the trust's ODS code.
    TrustLead(String),
    Admin,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::Reviewer => "reviewer",
            Role::TrustLead(_) => "trust-lead",
            Role::Admin => "admin",
        }
    }

    /// The role's name with its article, for messages: "an inspector", "a reviewer".
    pub fn with_article(&self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// Argon2id PHC string; never serialised.
    #[serde(skip)]
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: Option<DateTime<Utc>>,
    pub revoked: bool,
    /// Revoked with a wipe: at its next contact the app deletes its data (set when asked).
    pub wipe_requested: Option<DateTime<Utc>>,
    /// When the app said it had deleted its data.
    pub wiped_at: Option<DateTime<Utc>>,
}

/// An inspection's facts that access decisions and listings need, kept in columns
/// so that a decision never loads a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectionRecord {
    pub id: Uuid,
    pub trust: String,
    pub sites: Vec<String>,
    pub checklist_id: String,
    pub checklist_version: String,
    pub checklist_sha256: String,
    pub state: State,
    pub response_doc: Uuid,
    /// The review document: comments between inspectors and reviewers (never the
    /// trust's).
    pub review_doc: Uuid,
    pub shared_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The inspectors assigned, by user name, sorted.
    pub assignees: Vec<String>,
    /// The assignee the team names as its lead inspector.
    pub lead: Option<String>,
    /// The inspection document's history still holds internal comments (kept in it
    /// before review documents existed, moved out by the migration): its trust lead reads
    /// it only through the API's views, never by sync.
    pub history_holds_comments: bool,
}

impl InspectionRecord {
    /// The user's place on the inspection's team, if assigned.
    pub fn team_role(&self, user: &str) -> Option<TeamRole> {
        if !self.assignees.iter().any(|a| a == user) {
            return None;
        }
        Some(if self.lead.as_deref() == Some(user) {
            TeamRole::LeadInspector
        } else {
            TeamRole::Inspector
        })
    }
}

/// Who an Automerge actor writes for: the user it is bound to, and the device that bound
/// it (none for the server's own, made on a user's behalf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorBinding {
    pub actor: String,
    pub user: String,
    pub device: Option<i64>,
    pub bound_at: DateTime<Utc>,
    /// The device was revoked, or the user disabled, since.
    pub revoked: bool,
}

/// The user name actors of the server's own changes (documents it makes, migrations)
/// are bound to. Not a valid user name, so no one can sign in as it.
pub const SERVER_AUTHOR: &str = "@server";

/// The user name the actors of documents from before actors were bound are bound to,
/// when their changes do not name one existing user: no one may write with them again.
pub const LEGACY_AUTHOR: &str = "@legacy";

/// What walking the audit log's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerdict {
    /// Rows whose links held, from the first.
    pub rows: u64,
    /// The last link that held (hex): write it down elsewhere to tell, later, that no
    /// row was taken off the end.
    pub head: String,
    /// The first row that breaks the chain, and why.
    pub broken: Option<(i64, String)>,
}

/// A stored row set aside because it could no longer be loaded: kept, never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsideRow {
    /// `snapshot`, `previous_snapshot`, `change` or `compacted`.
    pub kind: String,
    /// The row's place among the document's changes (none for a snapshot).
    pub seq: Option<i64>,
    pub bytes: usize,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A document's access facts: its kind and its inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocAccess {
    pub doc: Uuid,
    pub kind: DocKind,
    pub inspection: InspectionRecord,
}

/// A stored Automerge document: snapshot, then changes in order, and the heads of
/// all of it (sorted, 32 bytes each), checked after every load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub snapshot: Vec<u8>,
    pub changes: Vec<Vec<u8>>,
    /// Each change row's `seq`, in the order of `changes`.
    pub change_seqs: Vec<i64>,
    /// The hashes of the changes each row holds (32 bytes each), where recorded: a
    /// rebuild takes from a row only the changes that were stored in it.
    pub change_hashes: Vec<Option<Vec<u8>>>,
    pub heads: Vec<u8>,
}

impl StoredDoc {
    /// A new document: one snapshot and its heads.
    pub fn new(snapshot: Vec<u8>, heads: Vec<u8>) -> Self {
        StoredDoc {
            snapshot,
            changes: Vec::new(),
            change_seqs: Vec::new(),
            change_hashes: Vec::new(),
            heads,
        }
    }
}

/// What is kept of a document from before its last compaction, for rebuilding it when
/// the current snapshot is damaged: the previous snapshot and the change rows folded
/// into the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousDoc {
    pub snapshot: Option<Vec<u8>>,
    pub changes: Vec<Vec<u8>>,
    pub change_hashes: Vec<Option<Vec<u8>>>,
}

/// What a rebuild of a damaged document writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The rebuilt document, checked to load back to `heads`.
    pub snapshot: Vec<u8>,
    pub heads: Vec<u8>,
    /// Rows that no longer load, moved aside: (kind, seq, bytes, why).
    pub aside: Vec<(String, Option<i64>, Vec<u8>, String)>,
    /// What the rebuild read: the stored heads, and the last change row (none if it read
    /// none). The rebuild is written only if storage still holds exactly that: another
    /// process on the same database may have stored changes since, which the rebuilt
    /// snapshot lacks ([`StorageError::Stale`] then, and nothing is written).
    pub read_heads: Vec<u8>,
    pub through_seq: Option<i64>,
}

/// A reference to a photo in a document, as a change made it: by whom, and whether
/// they had earned it then (uploaded it, or could read it). One made before the photo
/// was held whole earns it once its author uploads it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoClaim {
    pub sha256: String,
    pub user: String,
    pub earned: bool,
}

/// A photo upload: complete once its bytes hash to its id and decode as an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobStatus {
    pub sha256: String,
    /// Bytes received so far (an interrupted upload continues from here).
    pub received: u64,
    pub complete: bool,
    pub mime: Option<String>,
    /// Who began the upload (of a partial one; `None` for one from before this was
    /// kept): only they continue or restart it.
    pub started_by: Option<String>,
}

/// Filter and page for listing inspections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectionQuery {
    pub trust: Option<String>,
    pub state: Option<State>,
    /// Only inspections assigned to this user name.
    pub assignee: Option<String>,
    /// Only inspections shared with their trust.
    pub shared_only: bool,
    /// Page after this id (ids ascending).
    pub after: Option<Uuid>,
    pub limit: usize,
}

/// An audit event's target as stored: control characters dropped (nothing can forge a
/// line in the log) and cut to 200 characters.
pub(crate) fn audit_target(target: &str) -> String {
    target
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// One audit event: who, what, when (UTC), from where. Never content, passwords or
/// tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// User name, or "-" when unknown.
    pub actor: String,
    pub device: Option<i64>,
    /// e.g. "login", "login_failed", "token_rejected", "doc_read", "doc_write",
    /// "photo_read", "photo_write", "denied".
    pub action: String,
    /// What was acted on: a document or inspection id, a photo hash, a route.
    pub target: String,
    /// Remote address.
    pub from: String,
    /// "ok", "denied", "error", or a short reason code.
    pub outcome: String,
    /// What more there is to say, never content: e.g. the actor and change a refusal
    /// was about, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What an audit search asks for ([`Storage::audit_search`]); every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// The actor's user name, exactly.
    pub actor: Option<String>,
    /// The action, exactly (`login`, `doc_write`, `export`...).
    pub action: Option<String>,
    /// Events whose target holds any of these (an inspection's or a document's id, a
    /// trust's code); empty: any target.
    pub targets: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Events before this sequence number (the next page, newest first).
    pub before: Option<i64>,
    pub limit: usize,
}

/// A report (PDF) the server made and keeps (issue 14, item 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportMeta {
    /// The SHA-256 of the PDF: its id.
    pub sha256: String,
    pub inspection: Uuid,
    /// Whose rights it was made under: `regulator` or `trust` ([`crate::report::Audience`]).
    pub audience: String,
    pub made_by: String,
    pub made_at: DateTime<Utc>,
    pub size: u64,
    pub pages: u32,
}

/// A package of the field app the server offers as an update (issue 15, item 4;
/// [`crate::updates`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppUpdateMeta {
    /// `{target}-{arch}-{bundle}`, e.g. `linux-x86_64-deb` ([`crate::updates::PLATFORMS`]).
    pub platform: String,
    /// A semantic version.
    pub version: String,
    /// The package's SHA-256 (hex): its id.
    pub sha256: String,
    pub size: u64,
    /// The `.sig` file's base64 text, as the updater takes it.
    pub signature: String,
    pub notes: String,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

/// A published checklist file, kept so inspections can pin it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedChecklist {
    pub id: String,
    pub version: String,
    pub sha256: String,
    /// The files, in the order the pin hashes them (a template first, then its includes).
    pub files: Vec<(String, String)>,
}

/// The server's storage of the record.
///
/// Telemetry (feeds, snapshots, trusts) is kept apart, in
/// `crate::telemetry::TelemetryDb`, whichever backend keeps the record.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    // users and devices
    fn add_user(
        &self,
        name: &str,
        display_name: &str,
        role: &Role,
        password_hash: &str,
    ) -> Result<i64>;
    fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()>;
    fn list_users(&self) -> Result<Vec<User>>;
    /// Keeps a one-time code's hash for a user (replacing any earlier one), good until
    /// `expires`.
    fn put_password_code(&self, name: &str, code_hash: &str, expires: DateTime<Utc>) -> Result<()>;
    /// A user's one-time code: its hash and expiry.
    fn password_code(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>>;
    /// Uses a user's one-time code, in one transaction: removes it if it is still the
    /// code whose hash is `code_hash` and has not expired at `now`, and only then sets
    /// the password, revokes every device of the user and forgets the addresses they
    /// signed in from ([`Storage::login_known`]). How many devices it revoked;
    /// `None` when the code was used, replaced or expired meanwhile (nothing changed).
    fn use_password_code(
        &self,
        name: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>>;
    /// Registers a device; only the SHA-256 of its token is stored.
    fn add_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<i64>;
    /// The live (not revoked) device and its enabled user for a token hash.
    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Device, User)>>;
    /// Sets each device's last-seen time, all in one transaction (the server keeps them
    /// in memory and writes them in batches: `activity.rs`).
    fn touch_devices(&self, seen: &[(i64, DateTime<Utc>)]) -> Result<()>;
    fn list_devices(&self) -> Result<Vec<Device>>;
    fn revoke_device(&self, id: i64) -> Result<()>;
    /// Revokes a device and asks its app to delete its data at its next contact.
    fn revoke_and_wipe(&self, id: i64, now: DateTime<Utc>) -> Result<()>;
    /// The device holding this token, if it is revoked with a wipe not yet done, and its
    /// user's name.
    fn device_to_wipe(&self, token_hash: &[u8; 32]) -> Result<Option<Device>>;
    /// Revokes a device whose sign-in expired for want of use, saying so: its old token
    /// still proves it signed in as its user before ([`Storage::token_owner`]). Nothing
    /// when it is revoked already.
    fn expire_device(&self, id: i64, at: DateTime<Utc>) -> Result<()>;
    /// The user a device token was issued to, if the device is live or its sign-in only
    /// expired: proof that a device signed in as that user before. A device revoked by
    /// an admin, a sign-out or a password reset proves nothing.
    fn token_owner(&self, token_hash: &[u8; 32]) -> Result<Option<String>>;
    /// Records that the device deleted its data; false if it was not waiting for a wipe.
    fn mark_wiped(&self, id: i64, now: DateTime<Utc>) -> Result<bool>;
    /// Binds an Automerge actor to the user it writes for (and the device that binds it,
    /// if any). Binding again to the same user changes nothing; an actor bound to another
    /// user is refused (`Exists`), and so is a device past
    /// [`crate::limits::MAX_ACTORS_PER_DEVICE`] (`Limit`).
    fn bind_actor(
        &self,
        actor: &[u8],
        user: &str,
        device: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    fn actor_binding(&self, actor: &[u8]) -> Result<Option<ActorBinding>>;
    /// The actor the API writes with for `device`: bound to `user` the first time (as
    /// `fresh`, which the caller makes at random), the same one afterwards.
    fn api_actor(
        &self,
        device: i64,
        user: &str,
        fresh: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>>;
    /// Whether the device is still signed in: not revoked, and its user not disabled.
    fn device_live(&self, id: i64) -> Result<bool>;

    // inspections and documents
    /// Stores a new inspection with its documents (each id, kind and data), in one
    /// transaction.
    fn create_inspection(
        &self,
        record: &InspectionRecord,
        docs: &[(Uuid, DocKind, &StoredDoc)],
    ) -> Result<()>;
    fn inspection(&self, id: Uuid) -> Result<Option<InspectionRecord>>;
    fn list_inspections(&self, query: &InspectionQuery) -> Result<Vec<InspectionRecord>>;
    /// Assigns a user to the inspection's team; as its lead, the previous lead stays
    /// on the team as an inspector.
    fn assign(&self, inspection: Uuid, user_name: &str, role: TeamRole) -> Result<()>;
    fn share(&self, inspection: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// Keeps the state column in step with the document.
    fn set_state(&self, inspection: Uuid, state: State) -> Result<()>;
    /// Writes what the record indexes of an inspection, as read from its document at
    /// `heads` (its state, its photo references; each only if given), only if `heads` are
    /// still the document's stored heads, in one transaction that holds the document as
    /// an append does. So a process whose copy is behind another's never writes over
    /// what the other indexed from later changes. Returns whether it wrote.
    fn index_at(
        &self,
        inspection: Uuid,
        heads: &[u8],
        state: Option<State>,
        photos: Option<&[String]>,
    ) -> Result<bool>;
    fn doc_access(&self, doc: Uuid) -> Result<Option<DocAccess>>;
    fn load_doc(&self, doc: Uuid) -> Result<Option<StoredDoc>>;
    /// Appends change chunks (with the hashes of the changes they hold) and records the
    /// new heads, in one transaction.
    fn append_changes(&self, doc: Uuid, changes: &[u8], hashes: &[u8], heads: &[u8]) -> Result<()>;
    /// The same, only if the document's stored heads are still `after` (the heads the
    /// caller's copy holds): with several processes on one database another may have
    /// stored changes since, and then nothing is written ([`StorageError::Stale`]). The
    /// stored heads are then always those of everything stored.
    fn append_changes_after(
        &self,
        doc: Uuid,
        after: &[u8],
        changes: &[u8],
        hashes: &[u8],
        heads: &[u8],
    ) -> Result<()>;
    /// Replaces the snapshot with one that covers the changes, in one transaction: the
    /// old snapshot and those changes are kept as the previous ones ([`PreviousDoc`]),
    /// replacing what was kept before. Only if the stored heads are `heads` (nothing was
    /// stored since the snapshot was made, by another process on the same database);
    /// otherwise nothing changes, and the next compaction takes it all.
    fn compact(&self, doc: Uuid, snapshot: &[u8], heads: &[u8]) -> Result<()>;
    fn previous_doc(&self, doc: Uuid) -> Result<PreviousDoc>;
    /// Writes a rebuilt document and sets aside the rows that no longer load.
    fn write_rebuilt(&self, doc: Uuid, rebuilt: &Rebuilt, now: DateTime<Utc>) -> Result<()>;
    /// The rows of a document set aside, oldest first.
    fn set_aside(&self, doc: Uuid) -> Result<Vec<AsideRow>>;
    /// Whether a change with this hash was in a row set aside by a rebuild: the server
    /// took it once, so a peer that sends it again restores it.
    fn was_set_aside(&self, doc: Uuid, hash: &[u8]) -> Result<bool>;
    /// Adds a review document to an inspection that had none (the migration), in one
    /// transaction with the change that moves the comments out of its inspection
    /// document.
    fn add_review_doc(
        &self,
        inspection: Uuid,
        review: Uuid,
        stored: &StoredDoc,
        inspection_changes: Option<(&[u8], &[u8])>,
        history_holds_comments: bool,
    ) -> Result<()>;
    /// Inspections with no review document yet (from before review documents).
    fn without_review_doc(&self) -> Result<Vec<Uuid>>;
    fn change_rows(&self, doc: Uuid) -> Result<i64>;
    /// The stored heads of each of `docs` that exists, in any order: what a figure
    /// worked out from a document and kept depends on.
    fn doc_heads(&self, docs: &[Uuid]) -> Result<Vec<(Uuid, Vec<u8>)>>;
    fn sync_state(&self, doc: Uuid, peer: &str) -> Result<Option<Vec<u8>>>;
    /// Writes peers' sync states (document, peer, state), all in one transaction.
    fn put_sync_states(&self, states: &[(Uuid, &str, &[u8])]) -> Result<()>;
    fn reset_sync_state(&self, doc: Uuid, peer: &str) -> Result<()>;
    /// Records which photos a document refers to (replacing the previous list).
    fn set_photo_refs(&self, doc: Uuid, hashes: &[String]) -> Result<()>;
    /// The documents that refer to a photo through an earned reference: one its author
    /// had earned when making it, or has since by uploading the photo whole.
    fn photo_docs(&self, sha256: &str) -> Result<Vec<Uuid>>;
    /// Records who referred to photos in a document and whether they had earned them
    /// then ([`PhotoClaim`]); an earned one stays earned.
    fn add_photo_claims(&self, doc: Uuid, claims: &[PhotoClaim]) -> Result<()>;

    // photos
    fn blob_status(&self, sha256: &str) -> Result<Option<BlobStatus>>;
    /// Appends bytes at `offset` (which must equal what was received), as a chunk of its
    /// own; returns the new received length. Starting an upload counts against `by`'s
    /// uploads in progress ([`crate::limits::MAX_PARTIAL_UPLOADS_PER_USER`]:
    /// [`StorageError::Limit`] past it).
    fn append_blob(&self, sha256: &str, offset: u64, bytes: &[u8], by: &str) -> Result<u64>;
    /// The bytes received so far for an incomplete upload.
    fn partial_blob(&self, sha256: &str) -> Result<Vec<u8>>;
    /// Drops incomplete uploads that received nothing since `untouched_since` (given up
    /// on: a client resumes within hours, not weeks); returns how many.
    fn prune_partial_blobs(&self, untouched_since: DateTime<Utc>) -> Result<u64>;
    /// Replaces the received bytes with the checked, stripped ones and marks the photo
    /// complete.
    fn complete_blob(&self, sha256: &str, bytes: &[u8], mime: &str) -> Result<()>;
    /// Drops an upload that failed its checks.
    fn discard_blob(&self, sha256: &str) -> Result<()>;
    fn blob(&self, sha256: &str) -> Result<Option<(Vec<u8>, String)>>;
    /// Records that `user_name` completed the upload of a photo (so they may read it
    /// back before a document that refers to it reaches the server).
    fn add_blob_uploader(&self, sha256: &str, user_name: &str) -> Result<()>;
    fn blob_uploaded_by(&self, sha256: &str, user_name: &str) -> Result<bool>;

    // checklists
    /// Keeps a newly raised corrective action (its one step); `Exists` if its id is.
    fn add_action(&self, action: &Action) -> Result<()>;
    /// Keeps `action` with one step more than the record holds: `Stale` if the record
    /// no longer holds one fewer (another step was kept meanwhile), `NotFound` if none.
    fn add_action_step(&self, action: &Action) -> Result<()>;
    fn action(&self, id: Uuid) -> Result<Option<Action>>;
    /// The actions of `trust` (of every trust with `None`), oldest raised first.
    fn actions(&self, trust: Option<&str>) -> Result<Vec<Action>>;
    /// The actions whose progress reports name evidence `sha256` (a SHA-256 in hex).
    fn actions_naming(&self, sha256: &str) -> Result<Vec<Action>>;

    /// Keeps a report the server made (the same PDF twice is kept once).
    fn add_report(&self, meta: &ReportMeta, pdf: &[u8]) -> Result<()>;
    /// An inspection's reports (made for `audience` only, if given), newest first, at
    /// most `limit`.
    fn reports(
        &self,
        inspection: Uuid,
        audience: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReportMeta>>;
    /// A report's record (not its PDF).
    fn report(&self, sha256: &str) -> Result<Option<ReportMeta>>;
    /// A report's PDF.
    fn report_pdf(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    /// Keeps an app package and its record: `Exists` if its platform already has that
    /// version.
    fn add_app_update(&self, meta: &AppUpdateMeta, package: &[u8]) -> Result<()>;
    /// Every package kept for `platform` (every platform with `None`), in no set order.
    fn app_updates(&self, platform: Option<&str>) -> Result<Vec<AppUpdateMeta>>;
    /// A package's bytes, by its SHA-256.
    fn app_package(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    /// Withdraws a package (no device is offered it again): whether one was kept.
    fn remove_app_update(&self, platform: &str, version: &str) -> Result<bool>;
    fn publish_checklist(&self, checklist: &PublishedChecklist) -> Result<()>;
    fn checklist(&self, id: &str, version: &str) -> Result<Option<PublishedChecklist>>;
    fn checklists(&self) -> Result<Vec<PublishedChecklist>>;

    // audit
    fn audit(&self, event: &AuditEvent) -> Result<()>;
    /// Appends every event, in order, in one transaction.
    fn audit_batch(&self, events: &[AuditEvent]) -> Result<()>;
    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>>;
    /// Audit events matching `q`, newest first, with their sequence numbers.
    fn audit_search(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>>;
    /// The audit rows about `target` with one of `actions`, oldest first, with their
    /// `seq`.
    fn audit_about(&self, target: &str, actions: &[&str]) -> Result<Vec<(i64, AuditEvent)>>;
    /// Walks the audit log's chain from its first row and says where it breaks, if it
    /// does: each row is linked to the one before (the SHA-256 of that row's link and
    /// its own fields).
    fn audit_verify(&self) -> Result<AuditVerdict>;

    // several processes
    /// Whether failed sign-ins are counted here ([`Storage::begin_login`]), for limits
    /// that hold across the processes sharing this storage; if not, each process counts
    /// its own (`logins::LoginLimiter`).
    fn shares_logins(&self) -> bool {
        false
    }
    /// Counts a sign-in attempt as a failure against each key at `now`, unless one of
    /// them holds it back ([`crate::logins::LoginKey::holds_back`], its failures within
    /// `window`): then the seconds to wait. Returns the attempt's records, for
    /// [`Storage::login_succeeded`]. The check and the count are one step for every
    /// process. Only where [`Storage::shares_logins`].
    fn begin_login(
        &self,
        keys: &[crate::logins::LoginKey],
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<std::result::Result<Vec<i64>, u64>> {
        let _ = (keys, now, window);
        Err(StorageError::Limit(
            "this storage does not count sign-ins".into(),
        ))
    }
    /// The attempt signed in: the failures of the keys `forget` go, and the attempt's
    /// records.
    fn login_succeeded(&self, forget: &[String], attempt: &[i64]) -> Result<()> {
        let _ = (forget, attempt);
        Ok(())
    }
    /// The attempt proved wrong: its records are dated `now` (when its answer goes out).
    fn login_failed(&self, attempt: &[i64], now: DateTime<Utc>) -> Result<()> {
        let _ = (attempt, now);
        Ok(())
    }
    /// Whether `user` signed in from `addr` (a [`crate::logins::addr_key`]) at or after
    /// `since`.
    fn login_known(&self, user: &str, addr: &str, since: DateTime<Utc>) -> Result<bool>;
    /// Remembers that `user` signed in from `addr` at `at`.
    fn remember_login(&self, user: &str, addr: &str, at: DateTime<Utc>) -> Result<()>;
    /// What other processes commit to the same database, told as they commit it
    /// ([`Elsewhere`]): for a backend that several server processes share. `None` for
    /// one that only this process writes (SQLite's file). Called once, by the server as
    /// it starts; blocking.
    fn changes_elsewhere(&self) -> Option<tokio::sync::mpsc::Receiver<Elsewhere>> {
        None
    }

    // telemetry feeds shared between processes
    /// Whether telemetry feed files are kept here for every process sharing this storage
    /// to import ([`Storage::put_feed`]); if not, each process's telemetry is its own.
    fn shares_feeds(&self) -> bool {
        false
    }
    /// Keeps the file at `file` as the feed `feed` describes (its `id` is ignored), in
    /// one transaction, replacing any other file kept for the same kind and day, and
    /// tells the other processes. The same file again (kind, day and SHA-256) is kept
    /// once. Of every kind but trusts, only the [`FEED_DAYS_KEPT`] newest days are kept.
    /// Returns the feed's id. Only where [`Storage::shares_feeds`].
    fn put_feed(&self, feed: &Feed, file: &std::path::Path) -> Result<i64> {
        let _ = (feed, file);
        Err(StorageError::Limit(
            "this storage does not keep telemetry feeds".into(),
        ))
    }
    /// Every feed kept, by kind and then day.
    fn feeds(&self) -> Result<Vec<Feed>> {
        Ok(Vec::new())
    }
    /// Writes the bytes of feed `id` to `to` (created or truncated); `NotFound` if it is
    /// no longer kept.
    fn fetch_feed(&self, id: i64, to: &std::path::Path) -> Result<()> {
        let _ = (id, to);
        Err(not_found(format!("feed {id}")))
    }
}

/// Days of each kind of feed kept for other processes ([`Storage::put_feed`]): a process
/// takes the newest day and those after its own latest; trusts are all kept (they are
/// small, and the other feeds name trusts of every day).
pub const FEED_DAYS_KEPT: i64 = 31;

/// A telemetry feed file kept in a storage several processes share
/// ([`Storage::shares_feeds`]), so that one import reaches every process's telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub id: i64,
    /// The feed's kind and format, as `crate::telemetry` names them (`endpoints`, `csv`).
    pub kind: String,
    pub format: String,
    /// The day the file is the snapshot of.
    pub as_of: chrono::NaiveDate,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Something another process committed ([`Storage::changes_elsewhere`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elsewhere {
    /// Changes to a document were stored (its heads moved, or it was rebuilt).
    Document(Uuid),
    /// An inspection's record changed: its team, state or sharing.
    Inspection(Uuid),
    /// A telemetry feed was kept ([`Storage::put_feed`]).
    Telemetry,
    /// The feed was cut and is back: anything may have changed meanwhile.
    Missed,
}

/// An action as kept: its steps, as JSON, folded again ([`Action::fold`]).
pub(crate) fn action_from_row(
    id: &str,
    trust: &str,
    inspection: &str,
    steps: &str,
) -> Result<Action> {
    let damaged = |why: String| StorageError::Corrupt(format!("action {id}: {why}"));
    let id: Uuid = id.parse().map_err(|_| damaged("its id".into()))?;
    let inspection: Uuid = inspection
        .parse()
        .map_err(|_| damaged("its inspection's id".into()))?;
    let steps: Vec<Taken> = serde_json::from_str(steps).map_err(|e| damaged(e.to_string()))?;
    Action::fold(id, trust, inspection, steps).map_err(|e| damaged(e.to_string()))
}

/// An action's steps as kept.
pub(crate) fn action_steps_json(action: &Action) -> String {
    serde_json::to_string(&action.steps).expect("steps serialise")
}
