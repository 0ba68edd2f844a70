//! The encrypted local store: one SQLite file, encrypted with SQLCipher.
//!
//! "Saved" means it survives a power cut: the database runs in WAL mode with
//! `synchronous=FULL`, so every write below returns only after its transaction is
//! committed and the WAL is synced.
//!
//! # Tables
//! - `documents`: one row per Automerge document: the last compacted snapshot and the
//!   heads of everything stored for it (snapshot plus changes).
//! - `changes`: incremental change chunks written since the snapshot, in order.
//!   Saving writes only what is new since the stored heads (`save_after`), never the
//!   whole history (see SYNC-NOTES: `save_incremental` after a load emits it all).
//!   Past [`COMPACT_AFTER`] rows, the document is compacted: one snapshot replaces
//!   the snapshot and its changes, in one transaction.
//! - `sync_states`: the Automerge sync state per document and peer, so a reconnect
//!   does not pay for the Bloom filter of the whole history.
//! - `blobs`: photos (already stripped and re-encoded by [`crate::photo`]) and their
//!   thumbnails, keyed by the SHA-256 of the stored bytes, which is checked on write.
//! - `upload_queue`: photos still to send to the server, with how far an upload got.
//!
//! # Opening
//! The key is supplied by the caller (the app keeps it in the OS keychain). It is the
//! first statement on the connection, then a read proves it: a wrong key fails there,
//! before anything is written, and the file is left as it was. Then the pragmas, a
//! quick integrity check, and pending migrations in one transaction.
//!
//! Loading a document checks that its heads are the heads stored beside it: Automerge
//! skips unreadable chunks on incremental load without an error, so the heads are
//! what tells a damaged document from a good one.

use std::path::Path;
use std::sync::Arc;

use automerge::{ActorId, AutoCommit, ChangeHash};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use uuid::Uuid;

use crate::checklist::Checklist;
use crate::inspection::{Inspection, InspectionError};
use crate::policy::DocKind;

/// Incremental change rows a document may gather before it is compacted. Loading
/// applies each row in turn, so fewer rows load faster; compacting rewrites the
/// whole document, so it should not happen on every save.
pub const COMPACT_AFTER: i64 = 200;
/// Waiting for another connection's lock before giving up, in milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Each migration runs once, in order; all pending ones run in one transaction.
/// `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE documents (
        doc_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        snapshot BLOB NOT NULL,
        heads BLOB NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE changes (
        doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (doc_id, seq)
    );
    CREATE TABLE sync_states (
        doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
        peer TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (doc_id, peer)
    );
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        mime TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        thumbnail BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE upload_queue (
        sha256 TEXT PRIMARY KEY REFERENCES blobs(sha256),
        doc_id TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        uploaded_bytes INTEGER NOT NULL DEFAULT 0
    );",
    // 2: copies of documents set aside (a change the server refused): kept, never
    // deleted.
    "CREATE TABLE set_aside (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        bytes BLOB NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );",
];

/// A document the store keeps: an inspection, or its review document.
pub trait Persisted {
    fn heads(&mut self) -> Vec<ChangeHash>;
    fn save(&mut self) -> Vec<u8>;
    fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8>;
}

impl Persisted for Inspection {
    fn heads(&mut self) -> Vec<ChangeHash> {
        Inspection::heads(self)
    }
    fn save(&mut self) -> Vec<u8> {
        Inspection::save(self)
    }
    fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        Inspection::save_after(self, heads)
    }
}

impl Persisted for crate::review::Review {
    fn heads(&mut self) -> Vec<ChangeHash> {
        crate::review::Review::heads(self)
    }
    fn save(&mut self) -> Vec<u8> {
        crate::review::Review::save(self)
    }
    fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        crate::review::Review::save_after(self, heads)
    }
}

/// A 256-bit key for the store. Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StoreKey(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot unlock local data: the key does not open {0}")]
    WrongKey(String),
    #[error("local data failed its integrity check: {0}")]
    Corrupt(String),
    #[error("document {doc} is damaged: stored heads {stored:?}, loaded heads {loaded:?}")]
    HeadsMismatch {
        doc: Uuid,
        stored: Vec<String>,
        loaded: Vec<String>,
    },
    #[error("no document {0}")]
    UnknownDocument(Uuid),
    #[error("document {0} already exists")]
    DocumentExists(Uuid),
    #[error("blob bytes hash to {actual}, not {claimed}")]
    HashMismatch { claimed: String, actual: String },
    #[error("no blob {0}")]
    UnknownBlob(String),
    #[error(
        "the database was written by a newer version (schema {found}, this build knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("storage is full: {0}")]
    Full(String),
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error(transparent)]
    Inspection(#[from] InspectionError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A photo as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
    pub thumbnail: Vec<u8>,
}

impl From<crate::photo::ProcessedPhoto> for Blob {
    /// A photo as processed (taken here) or checked (fetched), ready to store.
    fn from(p: crate::photo::ProcessedPhoto) -> Self {
        Blob {
            sha256: p.id,
            mime: p.mime.to_owned(),
            width: p.width,
            height: p.height,
            bytes: p.bytes,
            thumbnail: p.thumbnail,
        }
    }
}

/// A photo waiting to go to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub sha256: String,
    pub doc_id: Uuid,
    pub size: u64,
    /// Bytes the server has confirmed, so an upload resumes where it stopped.
    pub uploaded_bytes: u64,
}

/// The encrypted local store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    actor: ActorId,
}

impl Store {
    /// Opens (or creates) the store at `path` with `key`.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Store> {
        let conn = Connection::open(path)?;
        // The key must be the first statement on the connection. Keying sets up
        // SQLCipher's crypto provider the first time in a process; two threads doing that
        // at once have been seen to fail ("PRAGMA key requires a key of one or more
        // characters"), so stores are keyed one at a time (they are opened rarely).
        static KEYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let keyed = {
            let _one = KEYING.lock().unwrap_or_else(|p| p.into_inner());
            conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key.0)))
                .and_then(|()| {
                    // Prove the key with a read, before any statement that could write.
                    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
        };
        if let Err(e) = keyed {
            return Err(match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => StoreError::WrongKey(path.display().to_string()),
                _ => e.into(),
            });
        }
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA temp_store = MEMORY;
             PRAGMA foreign_keys = ON;",
        )?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt(check));
        }
        let mut store = Store {
            conn,
            actor: ActorId::random(),
        };
        store.migrate()?;
        store.actor = store.device_actor()?;
        Ok(store)
    }

    /// This device's Automerge actor: made once per store and reused for every
    /// document, since each actor takes space in a document forever.
    pub fn actor(&self) -> ActorId {
        self.actor.clone()
    }

    /// The full `PRAGMA integrity_check` (slower than the check at open).
    pub fn integrity_check(&self) -> Result<()> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if rows == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Corrupt(rows.join("; ")))
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        if found == known {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for sql in &MIGRATIONS[found as usize..] {
            tx.execute_batch(sql)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
        tx.commit()?;
        Ok(())
    }

    fn device_actor(&mut self) -> Result<ActorId> {
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'actor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(bytes) = existing {
            return Ok(ActorId::from(bytes));
        }
        let actor = ActorId::random();
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('actor', ?1)",
            params![actor.to_bytes()],
        )?;
        Ok(actor)
    }

    // ----- documents -----

    /// Stores a new inspection as a snapshot.
    pub fn insert_inspection(&mut self, insp: &mut Inspection, now: DateTime<Utc>) -> Result<()> {
        let id = insp.id()?;
        self.insert_doc(id, DocKind::Inspection, insp, now)
    }

    /// Durably stores every change of `insp` not yet stored. Returns only after the
    /// transaction is committed. Compacts past [`COMPACT_AFTER`] change rows.
    pub fn save_inspection(&mut self, insp: &mut Inspection, now: DateTime<Utc>) -> Result<()> {
        let id = insp.id()?;
        self.save_doc(id, insp, now)
    }

    /// Replaces a document's snapshot and changes with one new snapshot.
    pub fn compact_inspection(&mut self, insp: &mut Inspection, now: DateTime<Utc>) -> Result<()> {
        let id = insp.id()?;
        self.compact_doc(id, insp, now)
    }

    /// Stores a new document (of any kind) as a snapshot.
    pub fn insert_doc(
        &mut self,
        id: Uuid,
        kind: DocKind,
        doc: &mut dyn Persisted,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let heads = doc.heads();
        let snapshot = doc.save();
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE doc_id = ?1)",
            params![id.to_string()],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::DocumentExists(id));
        }
        tx.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id.to_string(),
                kind.as_str(),
                snapshot,
                encode_heads(&heads),
                now.to_rfc3339()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Durably stores every change of document `id` not yet stored.
    pub fn save_doc(
        &mut self,
        id: Uuid,
        doc: &mut dyn Persisted,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = id.to_string();
        let (stored_heads, rows): (Vec<u8>, i64) = self
            .conn
            .query_row(
                "SELECT heads, (SELECT count(*) FROM changes WHERE doc_id = ?1)
                 FROM documents WHERE doc_id = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::UnknownDocument(id))?;
        let heads = doc.heads();
        if encode_heads(&heads) == stored_heads {
            return Ok(());
        }
        if rows >= COMPACT_AFTER {
            return self.compact_doc(id, doc, now);
        }
        let stored = decode_heads(&stored_heads)?;
        let bytes = doc.save_after(&stored);
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO changes (doc_id, seq, bytes)
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE doc_id = ?1), ?2)",
            params![key, bytes],
        )?;
        tx.execute(
            "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE doc_id = ?1",
            params![key, encode_heads(&heads), now.to_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn compact_doc(&mut self, id: Uuid, doc: &mut dyn Persisted, now: DateTime<Utc>) -> Result<()> {
        let key = id.to_string();
        let heads = doc.heads();
        let snapshot = doc.save();
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", params![key])?;
        let n = tx.execute(
            "UPDATE documents SET snapshot = ?2, heads = ?3, updated_at = ?4 WHERE doc_id = ?1",
            params![key, snapshot, encode_heads(&heads), now.to_rfc3339()],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownDocument(id));
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a document aside: its stored data is kept in `set_aside` (never deleted, so
    /// nothing written on this device is lost) and the document, its changes and sync
    /// states leave the store, so the next sync fetches the server's copy afresh.
    pub fn set_aside_doc(&mut self, id: Uuid, reason: &str, now: DateTime<Utc>) -> Result<()> {
        let key = id.to_string();
        let doc = self.load_doc(id)?.save();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO set_aside (doc_id, bytes, reason, at) VALUES (?1, ?2, ?3, ?4)",
            params![key, doc, reason, now.to_rfc3339()],
        )?;
        tx.execute("DELETE FROM sync_states WHERE doc_id = ?1", params![key])?;
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", params![key])?;
        tx.execute("DELETE FROM documents WHERE doc_id = ?1", params![key])?;
        tx.commit()?;
        Ok(())
    }

    /// How many copies of document `id` were set aside.
    pub fn set_aside_count(&self, id: Uuid) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM set_aside WHERE doc_id = ?1",
            params![id.to_string()],
            |r| r.get(0),
        )?)
    }

    /// A small value kept beside the documents (what the app knows of records, refusals).
    pub fn put_setting(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn delete_setting(&mut self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", params![key])?;
        Ok(())
    }

    /// Every setting whose key starts with `prefix`.
    pub fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )?;
        let rows = stmt
            .query_map(params![prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Loads an inspection, checks its heads against the stored ones and its pin
    /// against `checklist`.
    pub fn load_inspection(&self, id: Uuid, checklist: Arc<Checklist>) -> Result<Inspection> {
        let doc = self.load_doc(id)?;
        Ok(Inspection::from_doc(doc, checklist)?)
    }

    /// The raw stored document, heads verified.
    pub fn load_doc(&self, id: Uuid) -> Result<AutoCommit> {
        let key = id.to_string();
        let (snapshot, stored_heads): (Vec<u8>, Vec<u8>) = self
            .conn
            .query_row(
                "SELECT snapshot, heads FROM documents WHERE doc_id = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::UnknownDocument(id))?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
        let changes: Vec<Vec<u8>> = stmt
            .query_map(params![key], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let doc = load_checked(
            id,
            &snapshot,
            changes.iter().map(Vec::as_slice),
            &stored_heads,
        )?;
        Ok(doc.with_actor(self.actor.clone()))
    }

    /// The ids of every stored inspection.
    pub fn inspection_ids(&self) -> Result<Vec<Uuid>> {
        self.doc_ids(DocKind::Inspection)
    }

    /// The kind of a stored document, if it is stored.
    pub fn doc_kind(&self, id: Uuid) -> Result<Option<DocKind>> {
        let kind: Option<String> = self
            .conn
            .query_row(
                "SELECT kind FROM documents WHERE doc_id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(kind.and_then(|k| DocKind::parse(&k)))
    }

    /// The ids of every stored document of `kind`.
    pub fn doc_ids(&self, kind: DocKind) -> Result<Vec<Uuid>> {
        let mut stmt = self
            .conn
            .prepare("SELECT doc_id FROM documents WHERE kind = ?1 ORDER BY doc_id")?;
        let ids: Vec<String> = stmt
            .query_map(params![kind.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| StoreError::Corrupt(format!("document id {s:?} is not a UUID")))
            })
            .collect()
    }

    /// How many incremental change rows a document has (compaction resets it).
    pub fn change_rows(&self, id: Uuid) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM changes WHERE doc_id = ?1",
            params![id.to_string()],
            |r| r.get(0),
        )?)
    }

    // ----- sync states -----

    pub fn put_sync_state(&mut self, doc: Uuid, peer: &str, state: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_states (doc_id, peer, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (doc_id, peer) DO UPDATE SET state = excluded.state",
            params![doc.to_string(), peer, state],
        )?;
        Ok(())
    }

    pub fn sync_state(&self, doc: Uuid, peer: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM sync_states WHERE doc_id = ?1 AND peer = ?2",
                params![doc.to_string(), peer],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn reset_sync_state(&mut self, doc: Uuid, peer: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM sync_states WHERE doc_id = ?1 AND peer = ?2",
            params![doc.to_string(), peer],
        )?;
        Ok(())
    }

    // ----- blobs and uploads -----

    /// Stores a photo and queues it for upload, in one transaction. The hash is
    /// checked against the bytes; storing the same photo twice is a no-op.
    pub fn put_blob(&mut self, blob: &Blob, doc: Uuid, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction()?;
        if insert_blob(&tx, blob, now)? {
            tx.execute(
                "INSERT OR IGNORE INTO upload_queue (sha256, doc_id, queued_at) VALUES (?1, ?2, ?3)",
                params![blob.sha256, doc.to_string(), now.to_rfc3339()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a photo fetched from the server (another device took it): as
    /// [`Store::put_blob`], but never queued for upload, since the server has it.
    /// Returns whether it was new here.
    pub fn put_downloaded_blob(&mut self, blob: &Blob, now: DateTime<Utc>) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let inserted = insert_blob(&tx, blob, now)?;
        tx.commit()?;
        Ok(inserted)
    }

    pub fn blob(&self, sha256: &str) -> Result<Blob> {
        self.conn
            .query_row(
                "SELECT sha256, mime, width, height, bytes, thumbnail FROM blobs WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(Blob {
                        sha256: r.get(0)?,
                        mime: r.get(1)?,
                        width: r.get(2)?,
                        height: r.get(3)?,
                        bytes: r.get(4)?,
                        thumbnail: r.get(5)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownBlob(sha256.to_owned()))
    }

    /// A photo's thumbnail alone (a JPEG), without reading the photo's own bytes.
    pub fn thumbnail(&self, sha256: &str) -> Result<Vec<u8>> {
        self.conn
            .query_row(
                "SELECT thumbnail FROM blobs WHERE sha256 = ?1",
                params![sha256],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownBlob(sha256.to_owned()))
    }

    pub fn has_blob(&self, sha256: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?1)",
            params![sha256],
            |r| r.get(0),
        )?)
    }

    /// Photos not yet on the server, oldest first.
    pub fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        let mut stmt = self.conn.prepare(
            "SELECT q.sha256, q.doc_id, length(b.bytes), q.uploaded_bytes
             FROM upload_queue q JOIN blobs b ON b.sha256 = q.sha256
             ORDER BY q.queued_at, q.sha256",
        )?;
        let rows: Vec<(String, String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(sha256, doc, size, up)| {
                Ok(PendingUpload {
                    sha256,
                    doc_id: doc.parse().map_err(|_| {
                        StoreError::Corrupt(format!("upload queue doc id {doc:?} is not a UUID"))
                    })?,
                    size: size as u64,
                    uploaded_bytes: up as u64,
                })
            })
            .collect()
    }

    /// Records how many bytes of a photo the server has confirmed.
    pub fn record_upload_progress(&mut self, sha256: &str, uploaded_bytes: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE upload_queue SET uploaded_bytes = ?2 WHERE sha256 = ?1",
            params![sha256, uploaded_bytes as i64],
        )?;
        Ok(())
    }

    /// Removes a photo from the queue once the server has it whole.
    pub fn mark_uploaded(&mut self, sha256: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM upload_queue WHERE sha256 = ?1",
            params![sha256],
        )?;
        Ok(())
    }
}

/// Loads a stored document, a snapshot and then change rows in order, and checks that it
/// reaches the heads stored beside it: the one load-and-check path of this store and of
/// the server's. Automerge skips change chunks it cannot read on an incremental load
/// without an error, so the heads are what tells a damaged document from a good one.
pub fn load_checked<'a>(
    id: Uuid,
    snapshot: &[u8],
    changes: impl IntoIterator<Item = &'a [u8]>,
    stored_heads: &[u8],
) -> Result<AutoCommit> {
    let mut doc = AutoCommit::load(snapshot)?;
    for bytes in changes {
        doc.load_incremental(bytes)?;
    }
    let stored = decode_heads(stored_heads)?;
    let mut loaded = doc.get_heads();
    let mut expected = stored.clone();
    loaded.sort();
    expected.sort();
    if loaded != expected {
        return Err(StoreError::HeadsMismatch {
            doc: id,
            stored: stored.iter().map(ToString::to_string).collect(),
            loaded: loaded.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(doc)
}

/// Heads as stored beside a document: sorted, 32 bytes each, so equal sets of heads
/// always compare equal as bytes.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

/// The inverse of [`encode_heads`].
pub fn decode_heads(bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(format!(
            "stored heads are {} bytes, not a multiple of 32",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| ChangeHash(c.try_into().expect("32-byte chunk")))
        .collect())
}

/// Inserts a photo unless it is there; checks the hash against the bytes first.
/// Returns whether it was inserted.
fn insert_blob(tx: &rusqlite::Transaction<'_>, blob: &Blob, now: DateTime<Utc>) -> Result<bool> {
    let actual = crate::photo::sha256_hex(&blob.bytes);
    if actual != blob.sha256 {
        return Err(StoreError::HashMismatch {
            claimed: blob.sha256.clone(),
            actual,
        });
    }
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO blobs (sha256, mime, width, height, bytes, thumbnail, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            blob.sha256,
            blob.mime,
            blob.width,
            blob.height,
            blob.bytes,
            blob.thumbnail,
            now.to_rfc3339()
        ],
    )?;
    Ok(inserted == 1)
}
