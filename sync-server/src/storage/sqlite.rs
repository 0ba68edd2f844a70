//! The SQLite backend: one file under the data folder, WAL with `synchronous=FULL`.
//!
//! One connection behind a mutex: SQLite takes one writer at a time anyway, and the
//! statements here are short. Migrations run in one transaction at open.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;
use wardcheck_core::actions::Step;
use wardcheck_core::inspection::{State, TeamRole};

use super::audit_chain::{self, AuditRow, audit_link, link_of};
use super::columns::{self, role_columns, state_name, ts};
use super::group::{Append, all_failed};
use super::*;

/// Each runs once, in order, all pending ones in one transaction; `PRAGMA
/// user_version` counts them.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    trust TEXT,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_seen TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE inspections (
    id TEXT PRIMARY KEY,
    trust TEXT NOT NULL,
    sites TEXT NOT NULL,
    checklist_id TEXT NOT NULL,
    checklist_version TEXT NOT NULL,
    checklist_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    response_doc TEXT NOT NULL UNIQUE,
    shared_at TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX inspections_trust ON inspections(trust);
CREATE TABLE assignments (
    inspection TEXT NOT NULL REFERENCES inspections(id),
    user_name TEXT NOT NULL,
    PRIMARY KEY (inspection, user_name)
);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    inspection TEXT NOT NULL REFERENCES inspections(id),
    snapshot BLOB NOT NULL,
    heads BLOB NOT NULL
);
CREATE TABLE changes (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
CREATE TABLE sync_states (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    peer TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (doc_id, peer)
);
CREATE TABLE photo_refs (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    sha256 TEXT NOT NULL,
    PRIMARY KEY (doc_id, sha256)
);
CREATE INDEX photo_refs_sha ON photo_refs(sha256);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    mime TEXT
);
CREATE TABLE checklists (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    files TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    device INTEGER,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    outcome TEXT NOT NULL
);
",
    "
-- Who completed each photo upload: an uploader may read the photo back before any
-- document that refers to it has synced.
CREATE TABLE blob_uploaders (
    sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    PRIMARY KEY (sha256, user_name)
);
",
    "
-- When an incomplete upload last received bytes, so that uploads given up on can be
-- pruned (`Storage::prune_partial_blobs`). Uploads in progress now count from now.
ALTER TABLE blobs ADD COLUMN touched_at TEXT;
UPDATE blobs SET touched_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE complete = 0;
",
    "
-- The Automerge actors each user writes with: a change is accepted only from an actor
-- bound to a user allowed to make it. `device` is null for the server's own actors.
CREATE TABLE actors (
    actor BLOB PRIMARY KEY,
    user_name TEXT NOT NULL,
    device INTEGER REFERENCES devices(id),
    bound_at TEXT NOT NULL
);
CREATE INDEX actors_device ON actors(device);
-- The team: one lead inspector per inspection (the first assigned, for inspections
-- from before teams had roles).
ALTER TABLE assignments ADD COLUMN role TEXT NOT NULL DEFAULT 'inspector';
UPDATE assignments SET role = 'lead_inspector'
 WHERE rowid IN (SELECT min(rowid) FROM assignments GROUP BY inspection);
-- The review document (made for older inspections when the data folder opens), and
-- whether the inspection document's history still holds the comments moved out of it.
ALTER TABLE inspections ADD COLUMN review_doc TEXT;
ALTER TABLE inspections ADD COLUMN history_holds_comments INTEGER NOT NULL DEFAULT 0;
-- What a compaction replaced, kept until the next one: a damaged snapshot is rebuilt
-- from these.
ALTER TABLE documents ADD COLUMN prev_snapshot BLOB;
CREATE TABLE compacted (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);
-- Rows that no longer loaded, moved out of the way of a rebuild: never deleted.
CREATE TABLE set_aside (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER,
    bytes BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX set_aside_doc ON set_aside(doc_id);
ALTER TABLE audit ADD COLUMN detail TEXT;
-- The hashes of the changes each row holds: a rebuild takes from a row only those.
ALTER TABLE changes ADD COLUMN hashes BLOB;
ALTER TABLE compacted ADD COLUMN hashes BLOB;
",
    "
-- The actor the API writes with for each device, made at random on its first change:
-- one derived from the device's number could be bound by someone else first.
ALTER TABLE actors ADD COLUMN api INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX actors_api ON actors(device) WHERE api = 1;
-- Who referred to each photo in each document, and whether they had earned it then
-- (uploaded it, or could read it). A reference made before the photo was held whole
-- earns it once its author has uploaded it whole. A document with references recorded
-- here lets its readers read the photo only through an earned one.
CREATE TABLE photo_claims (
    doc_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    earned INTEGER NOT NULL,
    PRIMARY KEY (doc_id, sha256, user_name)
);
-- The changes a rebuild set aside, by hash: a peer that sends one of them again restores
-- it (the server took it once).
-- Each audit row's link in a chain: the SHA-256 of the row before's link and this row
-- (`audit_link`), so that a row changed, removed or inserted in the database afterwards
-- shows (`wardcheck-server audit verify`). Rows from before are linked at open.
ALTER TABLE audit ADD COLUMN hash BLOB;
-- Set once the rows from before were linked: never again, so that a link cleared later
-- is not silently made anew.
CREATE TABLE audit_linked (only INTEGER PRIMARY KEY CHECK (only = 1), at TEXT NOT NULL);
CREATE TABLE aside_changes (
    doc_id TEXT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
",
    "
-- `inspection verify` reads an inspection's audit rows (its sign-off links) by target.
CREATE INDEX audit_target ON audit(target);
",
    "
-- A device revoked with a wipe: its app deletes its data at its next contact, and says
-- when it has (`device revoke ID --wipe`).
ALTER TABLE devices ADD COLUMN wipe_requested TEXT;
ALTER TABLE devices ADD COLUMN wiped_at TEXT;
",
    "
-- A photo upload in progress is kept as its chunks, each appended as a row of its own
-- (before, each chunk rewrote the whole partial photo, so small chunks cost quadratic
-- writes). `received` is how many bytes have come; `started_by` the user who began it
-- (a user has at most `limits::MAX_PARTIAL_UPLOADS_PER_USER` in progress). A complete
-- photo's bytes stay in `blobs.bytes`.
CREATE TABLE blob_chunks (
    sha256 TEXT NOT NULL,
    at_byte INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (sha256, at_byte)
);
ALTER TABLE blobs ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN started_by TEXT;
CREATE INDEX blobs_in_progress ON blobs(started_by) WHERE complete = 0;
INSERT INTO blob_chunks (sha256, at_byte, bytes)
    SELECT sha256, 0, bytes FROM blobs WHERE complete = 0 AND length(bytes) > 0;
UPDATE blobs SET received = length(bytes);
UPDATE blobs SET bytes = x'' WHERE complete = 0;
",
    "
-- Issue 14: corrective actions, each its steps (JSON, oldest first, never changed: a
-- step is kept only where the record holds the steps before it, `step_count`), with
-- what listings filter on in columns of their own.
CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    trust TEXT NOT NULL,
    inspection TEXT NOT NULL REFERENCES inspections(id),
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    due TEXT NOT NULL,
    step_count INTEGER NOT NULL,
    steps TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_trust ON actions(trust, raised_at);
-- The evidence each action's progress reports name, so that a photo's readers are found
-- without reading every action.
CREATE TABLE action_evidence (
    sha256 TEXT NOT NULL,
    action TEXT NOT NULL REFERENCES actions(id),
    PRIMARY KEY (sha256, action)
) WITHOUT ROWID;
",
    "
-- Issue 14: the reports (PDF) the server made, each under its SHA-256, with whose
-- rights it was made under (what it may hold) and who made it.
CREATE TABLE reports (
    sha256 TEXT PRIMARY KEY,
    inspection TEXT NOT NULL REFERENCES inspections(id),
    audience TEXT NOT NULL,
    made_by TEXT NOT NULL,
    made_at TEXT NOT NULL,
    size INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    pdf BLOB NOT NULL
);
CREATE INDEX reports_inspection ON reports(inspection, made_at);
",
    "
-- Issue 14: one-time codes an admin gives a user to set their password (the code's
-- argon2 hash, never the code).
CREATE TABLE password_codes (
    user_name TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
",
    "
-- Issue 15: where each user has signed in from (an address, or an IPv6 /64), and when
-- last: from those, a user's right password works even while guesses from elsewhere
-- hold their name back (`logins.rs`).
CREATE TABLE login_addresses (
    user_name TEXT NOT NULL,
    addr TEXT NOT NULL,
    last_ok TEXT NOT NULL,
    PRIMARY KEY (user_name, addr)
) WITHOUT ROWID;
",
    "
-- Issue 15: when a device's sign-in expired for want of use (it was revoked then):
-- such a device's old token still shows it signed in as its user before; one revoked
-- by an admin, a sign-out or a password reset does not.
ALTER TABLE devices ADD COLUMN expired_at TEXT;
",
    "
-- Issue 15: packages of the field app offered as updates, each checked against the
-- release's public key before it was kept (`updates.rs`).
CREATE TABLE app_updates (
    platform TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    signature TEXT NOT NULL,
    notes TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL,
    package BLOB NOT NULL,
    PRIMARY KEY (platform, version)
);
CREATE INDEX app_updates_sha256 ON app_updates(sha256);
",
];

#[derive(Debug)]
pub struct SqliteStorage {
    /// The one connection that writes (SQLite takes one writer at a time).
    conn: Mutex<Connection>,
    /// Connections that only read: under WAL they read what is committed while the
    /// writer commits, so a read never waits for another request's fsync.
    readers: Readers,
    /// Received changes waiting to be committed together ([`super::group`]).
    appends: super::group::Group<Append>,
    /// Audit events waiting to be committed together, each linked to the one before.
    audits: super::group::Group<AuditEvent>,
}

impl SqliteStorage {
    /// Opens (or creates) `wardcheck.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Corrupt(format!("cannot create {}: {e}", dir.display())))?;
        let mut conn = Connection::open(dir.join("wardcheck.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        stable_plans(&conn)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StorageError::Corrupt(check));
        }
        let known = MIGRATIONS.len() as i64;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StorageError::NewerSchema { found, known });
        }
        if found < known {
            let tx = conn.transaction()?;
            for sql in &MIGRATIONS[found as usize..] {
                tx.execute_batch(sql)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
            tx.commit()?;
        }
        link_audit(&mut conn)?;
        Ok(SqliteStorage {
            readers: Readers::new(dir.join("wardcheck.db")),
            conn: Mutex::new(conn),
            appends: Default::default(),
            audits: Default::default(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (every
        // write is a transaction), so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for a read that needs nothing uncommitted, in a read transaction
    /// of its own until dropped: every statement of the read sees one snapshot, taken
    /// after every write that returned before the read began, so it sees them.
    fn reader(&self) -> Result<Reader<'_>> {
        let r = self.readers.take()?;
        r.execute_batch("BEGIN")?;
        Ok(r)
    }
}

/// Most connections reading at once; a read past them waits for one to be let go.
const MAX_READERS: usize = 8;

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pool = self.pool();
        f.debug_struct("Readers")
            .field("open", &pool.open)
            .field("idle", &pool.idle.len())
            .finish()
    }
}

/// The read-only connections, opened as needed up to [`MAX_READERS`] and kept.
struct Readers {
    path: std::path::PathBuf,
    pool: Mutex<ReaderPool>,
    freed: std::sync::Condvar,
}

#[derive(Default)]
struct ReaderPool {
    idle: Vec<Connection>,
    open: usize,
}

impl Readers {
    fn new(path: std::path::PathBuf) -> Self {
        Readers {
            path,
            pool: Mutex::default(),
            freed: std::sync::Condvar::new(),
        }
    }

    fn pool(&self) -> MutexGuard<'_, ReaderPool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        stable_plans(&conn)?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA temp_store = MEMORY;")?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Reader<'_>> {
        let mut pool = self.pool();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(Reader {
                    readers: self,
                    conn: Some(conn),
                });
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                return match self.open() {
                    Ok(conn) => Ok(Reader {
                        readers: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        // The read fails with this error; the next one tries again.
                        self.pool().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A reading connection, back to the pool when dropped.
struct Reader<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !conn.is_autocommit() {
            // The read transaction `reader` began: nothing to keep, so ending it
            // cannot lose anything; a connection where it fails is not used again.
            let _ = conn.execute_batch("COMMIT");
        }
        let mut pool = self.readers.pool();
        // Only a connection with no transaction left open is used again.
        if conn.is_autocommit() {
            pool.idle.push(conn);
        } else {
            pool.open -= 1;
        }
        self.readers.freed.notify_one();
    }
}

/// Commits a batch of audit events in one transaction, in order, each linked to the one
/// before. Nothing in one event can fail alone (no constraint it could break), so an
/// error is the transaction's, and fails the batch.
fn commit_audits(conn: &mut MutexGuard<'_, Connection>, events: &[AuditEvent]) -> Vec<Result<()>> {
    match write_audits(conn, events) {
        Ok(()) => events.iter().map(|_| Ok(())).collect(),
        Err(e) => all_failed(events.len(), &e),
    }
}

/// Appends audit events in one transaction, in order.
fn write_audits(conn: &mut Connection, events: &[AuditEvent]) -> Result<()> {
    // The previous link is read in the same write transaction: the CLI beside the
    // server appends to the same log.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for e in events {
        append_audit(&tx, e)?;
    }
    Ok(tx.commit()?)
}

/// Stores one row of a document's changes, after its last.
const APPEND_CHANGE: &str = "INSERT INTO changes (doc_id, seq, bytes, hashes)
     VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE doc_id = ?1), ?2, ?3)";

/// Commits a batch of appends in one transaction. The one thing that can fail for one
/// append alone, its document missing, is found before it writes anything, and leaves
/// the others to commit; any other error is the transaction's, and fails the batch.
fn commit_appends(conn: &mut MutexGuard<'_, Connection>, jobs: &[Append]) -> Vec<Result<()>> {
    let written = conn
        .transaction()
        .map_err(StorageError::from)
        .and_then(|tx| {
            let mut out = Vec::with_capacity(jobs.len());
            for j in jobs {
                let key = j.doc.to_string();
                let n = tx
                    .prepare_cached(
                        "UPDATE documents SET heads = ?2
                          WHERE doc_id = ?1 AND (?3 IS NULL OR heads = ?3)",
                    )?
                    .execute(params![key, j.heads, j.after])?;
                if n == 0 {
                    let exists = tx
                        .prepare_cached("SELECT 1 FROM documents WHERE doc_id = ?1")?
                        .query_row(params![key], |_| Ok(()))
                        .optional()?
                        .is_some();
                    out.push(Err(if exists {
                        StorageError::Stale(format!("document {}", j.doc))
                    } else {
                        not_found(format!("document {}", j.doc))
                    }));
                    continue;
                }
                tx.prepare_cached(APPEND_CHANGE)?
                    .execute(params![key, j.changes, j.hashes])?;
                out.push(Ok(()));
            }
            tx.commit()?;
            Ok(out)
        });
    written.unwrap_or_else(|e| all_failed(jobs.len(), &e))
}

/// Plans that do not depend on the values bound to a statement. Without this, SQLite
/// marks a statement whose plan looked at a bound value (for one, a sub-select of
/// `changes` by `doc_id` planned as `ORDER BY seq DESC LIMIT 1`, in the statement that
/// stores every received change) to be prepared again when that binding changes; and
/// rusqlite clears a cached statement's bindings each time it goes back into the cache,
/// which counts as a change: every reuse was prepared again (`BENCHMARKS.md`, issue 13).
/// What a plan made for one value could gain here is small: no `LIKE ?`, no statistics
/// gathered, and the few `LIMIT ?` reads have one sensible plan each. A query that
/// binds the value a partial index names (`actors.api = ?`) would not use that index:
/// write such values as literals.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    columns::parse_ts(s).map_err(bad)
}

fn bad<E: std::error::Error + Send + Sync + 'static>(e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

/// The audit event in columns `at..at+8` of a row (at, actor, device, action, target,
/// origin, outcome, detail).
fn audit_event_at(r: &Row<'_>, at: usize) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        at: parse_ts(&r.get::<_, String>(at)?)?,
        actor: r.get(at + 1)?,
        device: r.get(at + 2)?,
        action: r.get(at + 3)?,
        target: r.get(at + 4)?,
        from: r.get(at + 5)?,
        outcome: r.get(at + 6)?,
        detail: r.get(at + 7)?,
    })
}

fn report_row(r: &Row<'_>) -> rusqlite::Result<ReportMeta> {
    Ok(ReportMeta {
        sha256: r.get(0)?,
        inspection: r.get::<_, String>(1)?.parse().map_err(bad)?,
        audience: r.get(2)?,
        made_by: r.get(3)?,
        made_at: parse_ts(&r.get::<_, String>(4)?)?,
        size: r.get::<_, i64>(5)? as u64,
        pages: r.get(6)?,
    })
}

fn parse_state(s: &str) -> rusqlite::Result<State> {
    columns::parse_state(s).map_err(bad)
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get("role")?;
    let role = columns::parse_role(&role, r.get("trust")?).map_err(bad)?;
    Ok(User {
        id: r.get("id")?,
        name: r.get("name")?,
        display_name: r.get("display_name")?,
        role,
        disabled: r.get("disabled")?,
        password_hash: r.get("password_hash")?,
    })
}

fn device_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        user_name: r.get("user_name")?,
        name: r.get("name")?,
        created_at: parse_ts(&r.get::<_, String>("created_at")?)?,
        last_seen: r
            .get::<_, Option<String>>("last_seen")?
            .map(|s| parse_ts(&s))
            .transpose()?,
        revoked: r.get("revoked")?,
        wipe_requested: r
            .get::<_, Option<String>>("wipe_requested")?
            .map(|s| parse_ts(&s))
            .transpose()?,
        wiped_at: r
            .get::<_, Option<String>>("wiped_at")?
            .map(|s| parse_ts(&s))
            .transpose()?,
    })
}

const INSPECTION_COLUMNS: &str = "i.id, i.trust, i.sites, i.checklist_id, i.checklist_version,
    i.checklist_sha256, i.state, i.response_doc, i.shared_at, i.created_at, i.created_by,
    (SELECT group_concat(user_name, char(31)) FROM
        (SELECT user_name FROM assignments a WHERE a.inspection = i.id ORDER BY user_name))
    AS assignees,
    i.review_doc,
    (SELECT user_name FROM assignments a WHERE a.inspection = i.id AND a.role = 'lead_inspector')
    AS lead,
    i.history_holds_comments";

fn inspection_row(r: &Row<'_>) -> rusqlite::Result<InspectionRecord> {
    let id: String = r.get(0)?;
    let response: String = r.get(7)?;
    let assignees: Option<String> = r.get(11)?;
    Ok(InspectionRecord {
        id: id.parse().map_err(bad)?,
        trust: r.get(1)?,
        sites: serde_json::from_str(&r.get::<_, String>(2)?).map_err(bad)?,
        checklist_id: r.get(3)?,
        checklist_version: r.get(4)?,
        checklist_sha256: r.get(5)?,
        state: parse_state(&r.get::<_, String>(6)?)?,
        response_doc: response.parse().map_err(bad)?,
        shared_at: r
            .get::<_, Option<String>>(8)?
            .map(|s| parse_ts(&s))
            .transpose()?,
        created_at: parse_ts(&r.get::<_, String>(9)?)?,
        created_by: r.get(10)?,
        assignees: assignees
            .map(|s| s.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default(),
        // Null only between the schema migration and the document migration that runs
        // right after it when the data folder opens.
        review_doc: r
            .get::<_, Option<String>>(12)?
            .map(|s| s.parse().map_err(bad))
            .transpose()?
            .unwrap_or_else(Uuid::nil),
        lead: r.get(13)?,
        history_holds_comments: r.get(14)?,
    })
}

fn inspection_in(conn: &Connection, id: Uuid) -> Result<Option<InspectionRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i WHERE i.id = ?1"
        ))?
        .query_row(params![id.to_string()], inspection_row)
        .optional()?)
}

impl Storage for SqliteStorage {
    fn add_user(
        &self,
        name: &str,
        display_name: &str,
        role: &Role,
        password_hash: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        let (role, trust) = role_columns(role);
        let r = conn.execute(
            "INSERT INTO users (name, display_name, role, trust, password_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, display_name, role, trust, password_hash],
        );
        match r {
            Ok(_) => Ok(conn.last_insert_rowid()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(StorageError::Exists(format!("user {name:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        Ok(self
            .reader()?
            .prepare_cached("SELECT * FROM users WHERE name = ?1")?
            .query_row(params![name], user_row)
            .optional()?)
    }

    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE users SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        if n == 0 {
            return Err(not_found(format!("user {name:?}")));
        }
        Ok(())
    }

    fn put_password_code(&self, name: &str, code_hash: &str, expires: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO password_codes (user_name, code_hash, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_name) DO UPDATE SET code_hash = ?2, expires_at = ?3",
            params![name, code_hash, ts(expires)],
        )?;
        Ok(())
    }

    fn login_known(&self, user: &str, addr: &str, since: DateTime<Utc>) -> Result<bool> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT 1 FROM login_addresses WHERE user_name = ?1 AND addr = ?2 AND last_ok >= ?3",
                params![user, addr, ts(since)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn remember_login(&self, user: &str, addr: &str, at: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO login_addresses (user_name, addr, last_ok) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_name, addr) DO UPDATE SET last_ok = max(last_ok, ?3)",
            params![user, addr, ts(at)],
        )?;
        Ok(())
    }

    fn password_code(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT code_hash, expires_at FROM password_codes WHERE user_name = ?1",
                params![name],
                |r| Ok((r.get(0)?, parse_ts(&r.get::<_, String>(1)?)?)),
            )
            .optional()?)
    }

    fn use_password_code(
        &self,
        name: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let used = tx.execute(
            "DELETE FROM password_codes WHERE user_name = ?1 AND code_hash = ?2 AND expires_at > ?3",
            params![name, code_hash, ts(now)],
        )?;
        if used != 1 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![name, password_hash],
        )?;
        let revoked = tx.execute(
            "UPDATE devices SET revoked = 1
             WHERE revoked = 0 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![name],
        )?;
        // An expired device's old token no longer shows it signed in before.
        tx.execute(
            "UPDATE devices SET expired_at = NULL
             WHERE expired_at IS NOT NULL AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![name],
        )?;
        // Where the user signed in from is forgotten: after a break-in, the intruder's
        // address is not one the user signs in from.
        tx.execute(
            "DELETE FROM login_addresses WHERE user_name = ?1",
            params![name],
        )?;
        tx.commit()?;
        Ok(Some(revoked as u64))
    }

    fn list_users(&self) -> Result<Vec<User>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare("SELECT * FROM users ORDER BY name")?;
        let users = stmt
            .query_map([], user_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(users)
    }

    fn add_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO devices (user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, name, &token_hash[..], ts(now)],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Device, User)>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(
                "SELECT d.*, u.name AS user_name FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.token_hash = ?1 AND d.revoked = 0 AND u.disabled = 0",
            )?
            .query_row(params![&token_hash[..]], device_row)
            .optional()?;
        let Some(device) = found else { return Ok(None) };
        let user = conn
            .prepare_cached("SELECT * FROM users WHERE id = ?1")?
            .query_row(params![device.user_id], user_row)?;
        Ok(Some((device, user)))
    }

    fn touch_devices(&self, seen: &[(i64, DateTime<Utc>)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            // Never back in time: a batch may hold a time older than one a CLI wrote.
            let mut update = tx.prepare(
                "UPDATE devices SET last_seen = ?2
                 WHERE id = ?1 AND (last_seen IS NULL OR last_seen < ?2)",
            )?;
            for (id, at) in seen {
                update.execute(params![id, ts(*at)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn list_devices(&self) -> Result<Vec<Device>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT d.*, u.name AS user_name FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id",
        )?;
        let devices = stmt
            .query_map([], device_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(devices)
    }

    fn device_live(&self, id: i64) -> Result<bool> {
        let live = self
            .reader()?
            .prepare_cached(
                "SELECT 1 FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.id = ?1 AND d.revoked = 0 AND u.disabled = 0",
            )?
            .query_row(params![id], |_| Ok(()))
            .optional()?;
        Ok(live.is_some())
    }

    fn revoke_and_wipe(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE devices SET revoked = 1, expired_at = NULL,
                    wipe_requested = COALESCE(wipe_requested, ?2)
               WHERE id = ?1",
            params![id, ts(now)],
        )?;
        if n == 0 {
            return Err(not_found(format!("device {id}")));
        }
        Ok(())
    }

    fn device_to_wipe(&self, token_hash: &[u8; 32]) -> Result<Option<Device>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT d.*, u.name AS user_name FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.token_hash = ?1 AND d.revoked = 1 AND d.wipe_requested IS NOT NULL
                   AND d.wiped_at IS NULL",
                params![&token_hash[..]],
                device_row,
            )
            .optional()?)
    }

    fn expire_device(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "UPDATE devices SET revoked = 1, expired_at = ?2 WHERE id = ?1 AND revoked = 0",
            params![id, ts(at)],
        )?;
        Ok(())
    }

    fn token_owner(&self, token_hash: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT u.name FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.token_hash = ?1 AND (d.revoked = 0 OR d.expired_at IS NOT NULL)",
                params![&token_hash[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn mark_wiped(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE devices SET wiped_at = ?2
               WHERE id = ?1 AND wipe_requested IS NOT NULL AND wiped_at IS NULL",
            params![id, ts(now)],
        )?;
        Ok(n == 1)
    }

    fn revoke_device(&self, id: i64) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE devices SET revoked = 1, expired_at = NULL WHERE id = ?1",
            params![id],
        )?;
        if n == 0 {
            return Err(not_found(format!("device {id}")));
        }
        Ok(())
    }

    fn bind_actor(
        &self,
        actor: &[u8],
        user: &str,
        device: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let bound: Option<String> = tx
            .query_row(
                "SELECT user_name FROM actors WHERE actor = ?1",
                params![actor],
                |r| r.get(0),
            )
            .optional()?;
        match bound {
            Some(u) if u == user => {
                // The same user signing in again (after signing out, or on a new device
                // after the old one was revoked) with the actor their store writes with:
                // the binding moves to the device signing in, so the work it holds is
                // taken. Only the user can do this; a live device keeps its binding.
                if let Some(d) = device {
                    tx.execute(
                        "UPDATE actors SET device = ?2
                          WHERE actor = ?1 AND api = 0
                            AND (device IS NULL
                                 OR device IN (SELECT id FROM devices WHERE revoked = 1))",
                        params![actor, d],
                    )?;
                    tx.commit()?;
                }
                return Ok(());
            }
            Some(_) => return Err(bound_to_another(actor)),
            None => {}
        }
        if let Some(d) = device {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM actors WHERE device = ?1",
                params![d],
                |r| r.get(0),
            )?;
            if n as usize >= crate::limits::MAX_ACTORS_PER_DEVICE {
                return Err(too_many_actors());
            }
        }
        tx.execute(
            "INSERT INTO actors (actor, user_name, device, bound_at) VALUES (?1, ?2, ?3, ?4)",
            params![actor, user, device, ts(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn api_actor(
        &self,
        device: i64,
        user: &str,
        fresh: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let found: Option<Vec<u8>> = tx
            .query_row(
                "SELECT actor FROM actors WHERE device = ?1 AND api = 1",
                params![device],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(a) = found {
            return Ok(a);
        }
        tx.execute(
            "INSERT INTO actors (actor, user_name, device, bound_at, api) VALUES (?1, ?2, ?3, ?4, 1)",
            params![fresh, user, device, ts(now)],
        )?;
        tx.commit()?;
        Ok(fresh.to_vec())
    }

    fn actor_binding(&self, actor: &[u8]) -> Result<Option<ActorBinding>> {
        Ok(self
            .reader()?
            .prepare_cached(
                "SELECT a.user_name, a.device, a.bound_at,
                        coalesce(d.revoked, 0) OR coalesce(u.disabled, 0)
                   FROM actors a
                   LEFT JOIN devices d ON d.id = a.device
                   LEFT JOIN users u ON u.name = a.user_name
                  WHERE a.actor = ?1",
            )?
            .query_row(params![actor], |r| {
                Ok(ActorBinding {
                    actor: hex::encode(actor),
                    user: r.get(0)?,
                    device: r.get(1)?,
                    bound_at: parse_ts(&r.get::<_, String>(2)?)?,
                    revoked: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn create_inspection(
        &self,
        rec: &InspectionRecord,
        docs: &[(Uuid, DocKind, &StoredDoc)],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let r = tx.execute(
            "INSERT INTO inspections (id, trust, sites, checklist_id, checklist_version,
                checklist_sha256, state, response_doc, shared_at, created_at, created_by,
                review_doc, history_holds_comments)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                rec.id.to_string(),
                rec.trust,
                serde_json::to_string(&rec.sites).expect("sites serialise"),
                rec.checklist_id,
                rec.checklist_version,
                rec.checklist_sha256,
                state_name(rec.state),
                rec.response_doc.to_string(),
                rec.shared_at.map(ts),
                ts(rec.created_at),
                rec.created_by,
                rec.review_doc.to_string(),
                rec.history_holds_comments,
            ],
        );
        if let Err(e) = r {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                return Err(StorageError::Exists(format!("inspection {}", rec.id)));
            }
            return Err(e.into());
        }
        for (doc, kind, stored) in docs {
            tx.execute(
                "INSERT INTO documents (doc_id, kind, inspection, snapshot, heads) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![doc.to_string(), kind.as_str(), rec.id.to_string(), stored.snapshot, stored.heads],
            )?;
        }
        for user in &rec.assignees {
            let role = if rec.lead.as_deref() == Some(user.as_str()) {
                "lead_inspector"
            } else {
                "inspector"
            };
            tx.execute(
                "INSERT OR IGNORE INTO assignments (inspection, user_name, role) VALUES (?1, ?2, ?3)",
                params![rec.id.to_string(), user, role],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn inspection(&self, id: Uuid) -> Result<Option<InspectionRecord>> {
        inspection_in(&*self.reader()?, id)
    }

    fn list_inspections(&self, q: &InspectionQuery) -> Result<Vec<InspectionRecord>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {INSPECTION_COLUMNS} FROM inspections i
             WHERE (?1 IS NULL OR i.trust = ?1)
               AND (?2 IS NULL OR i.state = ?2)
               AND (?3 IS NULL OR EXISTS (SELECT 1 FROM assignments a WHERE a.inspection = i.id AND a.user_name = ?3))
               AND (?4 = 0 OR i.shared_at IS NOT NULL)
               AND (?5 IS NULL OR i.id > ?5)
             ORDER BY i.id LIMIT ?6"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    q.trust,
                    q.state.map(state_name),
                    q.assignee,
                    q.shared_only,
                    q.after.map(|u| u.to_string()),
                    q.limit as i64
                ],
                inspection_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn assign(&self, inspection: Uuid, user_name: &str, role: TeamRole) -> Result<()> {
        let mut conn = self.conn();
        if inspection_in(&conn, inspection)?.is_none() {
            return Err(not_found(format!("inspection {inspection}")));
        }
        let tx = conn.transaction()?;
        let id = inspection.to_string();
        let role = match role {
            TeamRole::LeadInspector => {
                tx.execute(
                    "UPDATE assignments SET role = 'inspector' WHERE inspection = ?1",
                    params![id],
                )?;
                "lead_inspector"
            }
            _ => "inspector",
        };
        tx.execute(
            "INSERT INTO assignments (inspection, user_name, role) VALUES (?1, ?2, ?3)
             ON CONFLICT (inspection, user_name) DO UPDATE SET
               role = CASE WHEN excluded.role = 'lead_inspector' THEN excluded.role ELSE role END",
            params![id, user_name, role],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn share(&self, inspection: Uuid, now: DateTime<Utc>) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE inspections SET shared_at = coalesce(shared_at, ?2) WHERE id = ?1",
            params![inspection.to_string(), ts(now)],
        )?;
        if n == 0 {
            return Err(not_found(format!("inspection {inspection}")));
        }
        Ok(())
    }

    fn set_state(&self, inspection: Uuid, state: State) -> Result<()> {
        write_state(&self.conn(), inspection, state)
    }

    fn index_at(
        &self,
        inspection: Uuid,
        heads: &[u8],
        state: Option<State>,
        photos: Option<&[String]>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let stored: Option<Vec<u8>> = tx
            .query_row(
                "SELECT heads FROM documents WHERE doc_id = ?1",
                params![inspection.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(stored) = stored else {
            return Err(not_found(format!("document {inspection}")));
        };
        if stored != heads {
            return Ok(false);
        }
        if let Some(state) = state {
            write_state(&tx, inspection, state)?;
        }
        if let Some(photos) = photos {
            write_photo_refs(&tx, inspection, photos)?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn doc_access(&self, doc: Uuid) -> Result<Option<DocAccess>> {
        let conn = self.reader()?;
        let row: Option<(String, String)> = conn
            .prepare_cached("SELECT kind, inspection FROM documents WHERE doc_id = ?1")?
            .query_row(params![doc.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((kind, inspection)) = row else {
            return Ok(None);
        };
        let kind = DocKind::parse(&kind)
            .ok_or_else(|| StorageError::Corrupt(format!("document kind {kind:?}")))?;
        let id: Uuid = inspection
            .parse()
            .map_err(|_| StorageError::Corrupt(format!("inspection id {inspection:?}")))?;
        let inspection = inspection_in(&conn, id)?
            .ok_or_else(|| StorageError::Corrupt(format!("document {doc} has no inspection")))?;
        Ok(Some(DocAccess {
            doc,
            kind,
            inspection,
        }))
    }

    fn load_doc(&self, doc: Uuid) -> Result<Option<StoredDoc>> {
        let conn = self.reader()?;
        let key = doc.to_string();
        let found: Option<(Vec<u8>, Vec<u8>)> = conn
            .prepare_cached("SELECT snapshot, heads FROM documents WHERE doc_id = ?1")?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((snapshot, heads)) = found else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT seq, bytes, hashes FROM changes WHERE doc_id = ?1 ORDER BY seq",
        )?;
        let rows: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> = stmt
            .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = StoredDoc::new(snapshot, heads);
        for (seq, bytes, hashes) in rows {
            out.change_seqs.push(seq);
            out.changes.push(bytes);
            out.change_hashes.push(hashes);
        }
        Ok(Some(out))
    }

    fn append_changes(&self, doc: Uuid, changes: &[u8], hashes: &[u8], heads: &[u8]) -> Result<()> {
        let job = Append {
            doc,
            changes: changes.to_vec(),
            hashes: hashes.to_vec(),
            heads: heads.to_vec(),
            after: None,
        };
        self.appends.submit(job, || self.conn(), commit_appends)
    }

    fn append_changes_after(
        &self,
        doc: Uuid,
        after: &[u8],
        changes: &[u8],
        hashes: &[u8],
        heads: &[u8],
    ) -> Result<()> {
        let job = Append {
            doc,
            changes: changes.to_vec(),
            hashes: hashes.to_vec(),
            heads: heads.to_vec(),
            after: Some(after.to_vec()),
        };
        self.appends.submit(job, || self.conn(), commit_appends)
    }

    fn compact(&self, doc: Uuid, snapshot: &[u8], heads: &[u8]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let key = doc.to_string();
        // Only over what the snapshot covers (the stored heads are its heads), as on
        // PostgreSQL, where another process may have stored changes since.
        let now: Option<Vec<u8>> = tx
            .query_row(
                "SELECT heads FROM documents WHERE doc_id = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        match now {
            None => return Err(not_found(format!("document {doc}"))),
            Some(now) if now != heads => return Ok(()),
            Some(_) => {}
        }
        tx.execute("DELETE FROM compacted WHERE doc_id = ?1", params![key])?;
        tx.execute(
            "INSERT INTO compacted (doc_id, seq, bytes, hashes) SELECT doc_id, seq, bytes, hashes FROM changes WHERE doc_id = ?1",
            params![key],
        )?;
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", params![key])?;
        let n = tx.execute(
            "UPDATE documents SET prev_snapshot = snapshot, snapshot = ?2, heads = ?3 WHERE doc_id = ?1",
            params![key, snapshot, heads],
        )?;
        if n == 0 {
            return Err(not_found(format!("document {doc}")));
        }
        tx.commit()?;
        Ok(())
    }

    fn previous_doc(&self, doc: Uuid) -> Result<PreviousDoc> {
        let conn = self.conn();
        let key = doc.to_string();
        let snapshot: Option<Vec<u8>> = conn
            .query_row(
                "SELECT prev_snapshot FROM documents WHERE doc_id = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let mut stmt =
            conn.prepare("SELECT bytes, hashes FROM compacted WHERE doc_id = ?1 ORDER BY seq")?;
        let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = stmt
            .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let (changes, change_hashes) = rows.into_iter().unzip();
        Ok(PreviousDoc {
            snapshot,
            changes,
            change_hashes,
        })
    }

    fn write_rebuilt(&self, doc: Uuid, rebuilt: &Rebuilt, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let key = doc.to_string();
        // Only over exactly what the rebuild read.
        let now_held: Option<(Vec<u8>, Option<i64>)> = tx
            .query_row(
                "SELECT heads, (SELECT max(seq) FROM changes WHERE doc_id = ?1)
                   FROM documents WHERE doc_id = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match now_held {
            None => return Err(not_found(format!("document {doc}"))),
            Some((heads, last)) if heads != rebuilt.read_heads || last != rebuilt.through_seq => {
                return Err(StorageError::Stale(format!("document {doc}")));
            }
            Some(_) => {}
        }
        for (kind, seq, bytes, reason) in &rebuilt.aside {
            tx.execute(
                "INSERT INTO set_aside (doc_id, kind, seq, bytes, reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key, kind, seq, bytes, reason, ts(now)],
            )?;
            // The hashes the row's changes had when they were taken (its bytes may no
            // longer say).
            let hashes: Option<Vec<u8>> = match seq {
                Some(seq) => tx
                    .query_row(
                        "SELECT hashes FROM changes WHERE doc_id = ?1 AND seq = ?2",
                        params![key, seq],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten(),
                None => None,
            };
            for h in hashes.iter().flat_map(|h| h.chunks(32)) {
                tx.execute(
                    "INSERT OR IGNORE INTO aside_changes (doc_id, hash) VALUES (?1, ?2)",
                    params![key, h],
                )?;
            }
        }
        if !rebuilt.aside.is_empty() {
            // A change the API made may be among those set aside, and peers may hold it:
            // the API's actors start afresh, so that no new change reuses its sequence
            // number (peers would refuse the document for good).
            tx.execute("UPDATE actors SET api = 0 WHERE api = 1", [])?;
        }
        // Everything that still loaded is inside the rebuilt snapshot.
        tx.execute("DELETE FROM changes WHERE doc_id = ?1", params![key])?;
        let n = tx.execute(
            "UPDATE documents SET snapshot = ?2, heads = ?3 WHERE doc_id = ?1",
            params![key, rebuilt.snapshot, rebuilt.heads],
        )?;
        if n == 0 {
            return Err(not_found(format!("document {doc}")));
        }
        tx.commit()?;
        Ok(())
    }

    fn was_set_aside(&self, doc: Uuid, hash: &[u8]) -> Result<bool> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT 1 FROM aside_changes WHERE doc_id = ?1 AND hash = ?2",
                params![doc.to_string(), hash],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn set_aside(&self, doc: Uuid) -> Result<Vec<AsideRow>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT kind, seq, length(bytes), reason, at FROM set_aside WHERE doc_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![doc.to_string()], |r| {
                Ok(AsideRow {
                    kind: r.get(0)?,
                    seq: r.get(1)?,
                    bytes: r.get::<_, i64>(2)? as usize,
                    reason: r.get(3)?,
                    at: parse_ts(&r.get::<_, String>(4)?)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn add_review_doc(
        &self,
        inspection: Uuid,
        review: Uuid,
        stored: &StoredDoc,
        inspection_changes: Option<(&[u8], &[u8])>,
        history_holds_comments: bool,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = inspection.to_string();
        tx.execute(
            "INSERT INTO documents (doc_id, kind, inspection, snapshot, heads) VALUES (?1, 'review', ?2, ?3, ?4)",
            params![review.to_string(), id, stored.snapshot, stored.heads],
        )?;
        if let Some((changes, heads)) = inspection_changes {
            tx.execute(
                "INSERT INTO changes (doc_id, seq, bytes)
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE doc_id = ?1), ?2)",
                params![id, changes],
            )?;
            tx.execute(
                "UPDATE documents SET heads = ?2 WHERE doc_id = ?1",
                params![id, heads],
            )?;
        }
        tx.execute(
            "UPDATE inspections SET review_doc = ?2, history_holds_comments = ?3 WHERE id = ?1",
            params![id, review.to_string(), history_holds_comments],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn without_review_doc(&self) -> Result<Vec<Uuid>> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare("SELECT id FROM inspections WHERE review_doc IS NULL ORDER BY id")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| StorageError::Corrupt(format!("inspection id {s:?}")))
            })
            .collect()
    }

    fn change_rows(&self, doc: Uuid) -> Result<i64> {
        Ok(self.reader()?.query_row(
            "SELECT count(*) FROM changes WHERE doc_id = ?1",
            params![doc.to_string()],
            |r| r.get(0),
        )?)
    }

    fn doc_heads(&self, docs: &[Uuid]) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")?;
        let mut out = Vec::with_capacity(docs.len());
        for id in docs {
            if let Some(h) = stmt
                .query_row(params![id.to_string()], |r| r.get(0))
                .optional()?
            {
                out.push((*id, h));
            }
        }
        Ok(out)
    }

    fn sync_state(&self, doc: Uuid, peer: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .reader()?
            .prepare_cached("SELECT state FROM sync_states WHERE doc_id = ?1 AND peer = ?2")?
            .query_row(params![doc.to_string(), peer], |r| r.get(0))
            .optional()?)
    }

    fn put_sync_states(&self, states: &[(Uuid, &str, &[u8])]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO sync_states (doc_id, peer, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (doc_id, peer) DO UPDATE SET state = excluded.state",
            )?;
            for (doc, peer, state) in states {
                put.execute(params![doc.to_string(), peer, state])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn reset_sync_state(&self, doc: Uuid, peer: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM sync_states WHERE doc_id = ?1 AND peer = ?2",
            params![doc.to_string(), peer],
        )?;
        Ok(())
    }

    fn set_photo_refs(&self, doc: Uuid, hashes: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        write_photo_refs(&tx, doc, hashes)?;
        tx.commit()?;
        Ok(())
    }

    fn photo_docs(&self, sha256: &str) -> Result<Vec<Uuid>> {
        let conn = self.reader()?;
        // A document counts through an earned reference: one earned when it was made,
        // or by an author who has since uploaded the photo whole. (Documents whose
        // references were never recorded are the server's own, or older than the record.)
        let mut stmt = conn.prepare(
            "SELECT r.doc_id FROM photo_refs r
              WHERE r.sha256 = ?1
                AND (NOT EXISTS (SELECT 1 FROM photo_claims c
                                  WHERE c.doc_id = r.doc_id AND c.sha256 = r.sha256)
                     OR EXISTS (SELECT 1 FROM photo_claims c
                                 WHERE c.doc_id = r.doc_id AND c.sha256 = r.sha256
                                   AND (c.earned = 1 OR c.user_name IN
                                        (SELECT user_name FROM blob_uploaders
                                          WHERE sha256 = r.sha256))))
              ORDER BY r.doc_id",
        )?;
        let ids: Vec<String> = stmt
            .query_map(params![sha256], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| StorageError::Corrupt(format!("document id {s:?}")))
            })
            .collect()
    }

    fn blob_status(&self, sha256: &str) -> Result<Option<BlobStatus>> {
        Ok(self
            .reader()?
            .prepare_cached(
                "SELECT CASE WHEN complete = 1 THEN length(bytes) ELSE received END, complete, mime,
                        started_by
                 FROM blobs WHERE sha256 = ?1",
            )?
            .query_row(params![sha256], |r| {
                Ok(BlobStatus {
                    sha256: sha256.to_owned(),
                    received: r.get::<_, i64>(0)? as u64,
                    complete: r.get(1)?,
                    mime: r.get(2)?,
                    started_by: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn append_blob(&self, sha256: &str, offset: u64, bytes: &[u8], by: &str) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<(i64, bool)> = tx
            .query_row(
                "SELECT received, complete FROM blobs WHERE sha256 = ?1",
                params![sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let received = match current {
            None => {
                let in_progress: i64 = tx.query_row(
                    "SELECT count(*) FROM blobs WHERE complete = 0 AND started_by = ?1",
                    params![by],
                    |r| r.get(0),
                )?;
                if in_progress >= crate::limits::MAX_PARTIAL_UPLOADS_PER_USER {
                    return Err(too_many_uploads(by, in_progress));
                }
                tx.execute(
                    "INSERT INTO blobs (sha256, bytes, received, started_by) VALUES (?1, x'', 0, ?2)",
                    params![sha256, by],
                )?;
                0
            }
            Some((_, true)) => return Err(StorageError::Exists(format!("photo {sha256}"))),
            Some((len, false)) => len as u64,
        };
        if offset != received {
            return Err(wrong_offset(sha256, received, offset));
        }
        // Appended as a row of its own: what came before is not rewritten.
        tx.execute(
            "INSERT INTO blob_chunks (sha256, at_byte, bytes) VALUES (?1, ?2, ?3)",
            params![sha256, offset as i64, bytes],
        )?;
        let now = received + bytes.len() as u64;
        tx.execute(
            "UPDATE blobs SET received = ?2, touched_at = ?3 WHERE sha256 = ?1",
            params![sha256, now as i64, ts(Utc::now())],
        )?;
        tx.commit()?;
        Ok(now)
    }

    fn prune_partial_blobs(&self, untouched_since: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let gone = "SELECT sha256 FROM blobs WHERE complete = 0 AND (touched_at IS NULL OR touched_at < ?1)";
        tx.execute(
            &format!("DELETE FROM blob_chunks WHERE sha256 IN ({gone})"),
            params![ts(untouched_since)],
        )?;
        let n = tx.execute(
            "DELETE FROM blobs WHERE complete = 0 AND (touched_at IS NULL OR touched_at < ?1)",
            params![ts(untouched_since)],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn partial_blob(&self, sha256: &str) -> Result<Vec<u8>> {
        let conn = self.reader()?;
        let received: i64 = conn
            .query_row(
                "SELECT received FROM blobs WHERE sha256 = ?1 AND complete = 0",
                params![sha256],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| not_found(format!("photo {sha256}")))?;
        let mut bytes = Vec::with_capacity(received.max(0) as usize);
        let mut stmt = conn
            .prepare("SELECT at_byte, bytes FROM blob_chunks WHERE sha256 = ?1 ORDER BY at_byte")?;
        let mut rows = stmt.query(params![sha256])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            if at as usize != bytes.len() {
                return Err(StorageError::Corrupt(format!(
                    "photo {sha256}: a chunk at byte {at} follows {} bytes",
                    bytes.len()
                )));
            }
            bytes.extend_from_slice(r.get_ref(1)?.as_blob().map_err(bad)?);
        }
        if bytes.len() as i64 != received {
            return Err(StorageError::Corrupt(format!(
                "photo {sha256}: {} bytes in its chunks, {received} received",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn complete_blob(&self, sha256: &str, bytes: &[u8], mime: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE blobs SET bytes = ?2, mime = ?3, complete = 1, received = length(?2)
             WHERE sha256 = ?1",
            params![sha256, bytes, mime],
        )?;
        if n == 0 {
            return Err(not_found(format!("photo {sha256}")));
        }
        tx.execute("DELETE FROM blob_chunks WHERE sha256 = ?1", params![sha256])?;
        tx.commit()?;
        Ok(())
    }

    fn discard_blob(&self, sha256: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM blobs WHERE sha256 = ?1 AND complete = 0",
            params![sha256],
        )?;
        if n > 0 {
            tx.execute("DELETE FROM blob_chunks WHERE sha256 = ?1", params![sha256])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn blob(&self, sha256: &str) -> Result<Option<(Vec<u8>, String)>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT bytes, mime FROM blobs WHERE sha256 = ?1 AND complete = 1",
                params![sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn add_photo_claims(&self, doc: Uuid, claims: &[PhotoClaim]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for c in claims {
            tx.execute(
                "INSERT INTO photo_claims (doc_id, sha256, user_name, earned) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (doc_id, sha256, user_name) DO UPDATE SET earned = max(earned, ?4)",
                params![doc.to_string(), c.sha256, c.user, c.earned],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn add_blob_uploader(&self, sha256: &str, user_name: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO blob_uploaders (sha256, user_name) VALUES (?1, ?2)",
            params![sha256, user_name],
        )?;
        Ok(())
    }

    fn blob_uploaded_by(&self, sha256: &str, user_name: &str) -> Result<bool> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT 1 FROM blob_uploaders WHERE sha256 = ?1 AND user_name = ?2",
                params![sha256, user_name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn add_action(&self, a: &Action) -> Result<()> {
        let r = self.conn().execute(
            "INSERT INTO actions (id, trust, inspection, status, priority, due, step_count,
                                  steps, raised_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                a.id.to_string(),
                a.trust,
                a.inspection.to_string(),
                a.status.as_str(),
                a.priority.as_str(),
                a.due.to_string(),
                a.steps.len() as i64,
                action_steps_json(a),
                ts(a.raised_at),
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(StorageError::Exists(format!("action {}", a.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn add_action_step(&self, a: &Action) -> Result<()> {
        let last = a.steps.last().expect("an action has steps");
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE actions SET status = ?2, step_count = ?3, steps = ?4, updated_at = ?5
             WHERE id = ?1 AND step_count = ?3 - 1",
            params![
                a.id.to_string(),
                a.status.as_str(),
                a.steps.len() as i64,
                action_steps_json(a),
                ts(last.at),
            ],
        )?;
        if n == 1 {
            if let Step::Progress(p) = &last.step {
                for sha in &p.evidence {
                    tx.execute(
                        "INSERT OR IGNORE INTO action_evidence (sha256, action) VALUES (?1, ?2)",
                        params![sha, a.id.to_string()],
                    )?;
                }
            }
            tx.commit()?;
            return Ok(());
        }
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM actions WHERE id = ?1)",
            params![a.id.to_string()],
            |r| r.get(0),
        )?;
        Err(if exists {
            StorageError::Stale(format!("action {}: another step was kept first", a.id))
        } else {
            StorageError::NotFound(format!("action {}", a.id))
        })
    }

    fn action(&self, id: Uuid) -> Result<Option<Action>> {
        let mut found = action_rows(
            &*self.reader()?,
            "SELECT id, trust, inspection, steps FROM actions WHERE id = ?1",
            params![id.to_string()],
        )?;
        Ok(found.pop())
    }

    fn actions(&self, trust: Option<&str>) -> Result<Vec<Action>> {
        action_rows(
            &*self.reader()?,
            "SELECT id, trust, inspection, steps FROM actions
             WHERE ?1 IS NULL OR trust = ?1 ORDER BY raised_at, id",
            params![trust],
        )
    }

    fn actions_naming(&self, sha256: &str) -> Result<Vec<Action>> {
        if !wardcheck_core::seal::is_hash(sha256) {
            return Ok(Vec::new());
        }
        let mut naming = action_rows(
            &*self.reader()?,
            "SELECT a.id, a.trust, a.inspection, a.steps
               FROM action_evidence e JOIN actions a ON a.id = e.action
              WHERE e.sha256 = ?1 ORDER BY a.raised_at, a.id",
            params![sha256],
        )?;
        naming.retain(|a| a.evidence().any(|e| e == sha256));
        Ok(naming)
    }

    fn add_report(&self, m: &ReportMeta, pdf: &[u8]) -> Result<()> {
        self.conn().execute(
            "INSERT INTO reports (sha256, inspection, audience, made_by, made_at, size, pages, pdf)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            params![
                m.sha256,
                m.inspection.to_string(),
                m.audience,
                m.made_by,
                ts(m.made_at),
                m.size as i64,
                m.pages,
                pdf
            ],
        )?;
        Ok(())
    }

    fn reports(
        &self,
        inspection: Uuid,
        audience: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReportMeta>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT sha256, inspection, audience, made_by, made_at, size, pages FROM reports
             WHERE inspection = ?1 AND (?2 IS NULL OR audience = ?2)
             ORDER BY made_at DESC, sha256 LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                inspection.to_string(),
                audience,
                i64::try_from(limit).unwrap_or(-1)
            ],
            report_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn report(&self, sha256: &str) -> Result<Option<ReportMeta>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT sha256, inspection, audience, made_by, made_at, size, pages
                 FROM reports WHERE sha256 = ?1",
                params![sha256],
                report_row,
            )
            .optional()?)
    }

    fn report_pdf(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT pdf FROM reports WHERE sha256 = ?1",
                params![sha256],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn add_app_update(&self, m: &AppUpdateMeta, package: &[u8]) -> Result<()> {
        let n = self.conn().execute(
            "INSERT INTO app_updates (platform, version, sha256, size, signature, notes,
                                      published_by, published_at, package)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            params![
                m.platform,
                m.version,
                m.sha256,
                m.size as i64,
                m.signature,
                m.notes,
                m.published_by,
                ts(m.published_at),
                package
            ],
        )?;
        if n == 0 {
            return Err(StorageError::Exists(format!(
                "{} {} is already published",
                m.platform, m.version
            )));
        }
        Ok(())
    }

    fn app_updates(&self, platform: Option<&str>) -> Result<Vec<AppUpdateMeta>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT platform, version, sha256, size, signature, notes, published_by, published_at
             FROM app_updates WHERE ?1 IS NULL OR platform = ?1",
        )?;
        let rows = stmt.query_map(params![platform], |r| {
            Ok(AppUpdateMeta {
                platform: r.get(0)?,
                version: r.get(1)?,
                sha256: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                signature: r.get(4)?,
                notes: r.get(5)?,
                published_by: r.get(6)?,
                published_at: parse_ts(&r.get::<_, String>(7)?)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn app_package(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT package FROM app_updates WHERE sha256 = ?1 LIMIT 1",
                params![sha256],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn remove_app_update(&self, platform: &str, version: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM app_updates WHERE platform = ?1 AND version = ?2",
            params![platform, version],
        )?;
        Ok(n > 0)
    }

    fn publish_checklist(&self, c: &PublishedChecklist) -> Result<()> {
        let r = self.conn().execute(
            "INSERT INTO checklists (id, version, sha256, files) VALUES (?1, ?2, ?3, ?4)",
            params![
                c.id,
                c.version,
                c.sha256,
                serde_json::to_string(&c.files).expect("files serialise")
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(StorageError::Exists(format!(
                    "checklist {}@{}",
                    c.id, c.version
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn checklist(&self, id: &str, version: &str) -> Result<Option<PublishedChecklist>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT id, version, sha256, files FROM checklists WHERE id = ?1 AND version = ?2",
                params![id, version],
                checklist_row,
            )
            .optional()?)
    }

    fn checklists(&self) -> Result<Vec<PublishedChecklist>> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare("SELECT id, version, sha256, files FROM checklists ORDER BY id, version")?;
        let rows = stmt
            .query_map([], checklist_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn audit(&self, e: &AuditEvent) -> Result<()> {
        self.audits.submit(e.clone(), || self.conn(), commit_audits)
    }

    fn audit_batch(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        write_audits(&mut self.conn(), events)
    }

    fn audit_verify(&self) -> Result<AuditVerdict> {
        let conn = self.conn();
        let mut stmt = conn.prepare(AuditRow::SELECT)?;
        let rows = stmt.query_map([], audit_row)?;
        Ok(audit_chain::verify(rows)?)
    }

    fn audit_about(&self, target: &str, actions: &[&str]) -> Result<Vec<(i64, AuditEvent)>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT seq, at, actor, device, action, target, origin, outcome, detail FROM audit
               WHERE target = ?1 ORDER BY seq",
        )?;
        let rows: Vec<(i64, AuditEvent)> = stmt
            .query_map(params![target], |r| Ok((r.get(0)?, audit_event_at(r, 1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows
            .into_iter()
            .filter(|(_, e)| actions.contains(&e.action.as_str()))
            .collect())
    }

    fn audit_search(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>> {
        let mut sql = String::from(
            "SELECT seq, at, actor, device, action, target, origin, outcome, detail FROM audit
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4)
               AND (?5 IS NULL OR seq < ?5)",
        );
        let mut values: Vec<rusqlite::types::Value> = vec![
            q.actor.clone().into(),
            q.action.clone().into(),
            q.from.map(ts).into(),
            q.to.map(ts).into(),
            q.before.into(),
        ];
        if !q.targets.is_empty() {
            // One parameter, a JSON array, however many targets: no expression grows
            // with them.
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(?6) WHERE instr(target, json_each.value) > 0)",
            );
            values.push(serde_json::to_string(&q.targets).unwrap_or_default().into());
        }
        sql.push_str(&format!(
            " ORDER BY seq DESC LIMIT {}",
            i64::try_from(q.limit).unwrap_or(i64::MAX)
        ));
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, audit_event_at(r, 1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT at, actor, device, action, target, origin, outcome, detail FROM
               (SELECT * FROM audit ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
        )?;
        let rows = stmt
            .query_map(params![n as i64], |r| {
                Ok(AuditEvent {
                    at: parse_ts(&r.get::<_, String>(0)?)?,
                    actor: r.get(1)?,
                    device: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    from: r.get(5)?,
                    outcome: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

/// One row of [`AuditRow::SELECT`], with its stored link.
fn audit_row(r: &Row<'_>) -> rusqlite::Result<(AuditRow, Option<Vec<u8>>)> {
    Ok((
        AuditRow {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            device: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            origin: r.get(6)?,
            outcome: r.get(7)?,
            detail: r.get(8)?,
        },
        r.get(9)?,
    ))
}

/// Links the audit rows written before rows were linked (once, at open).
fn link_audit(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let done: bool = tx.query_row("SELECT count(*) > 0 FROM audit_linked", [], |r| r.get(0))?;
    if done {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO audit_linked (only, at) VALUES (1, ?1)",
        params![ts(Utc::now())],
    )?;
    let rows: Vec<(AuditRow, Option<Vec<u8>>)> = {
        let mut stmt = tx.prepare(AuditRow::SELECT)?;
        stmt.query_map([], audit_row)?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut prev = [0u8; 32];
    for (row, stored) in rows {
        let link = match stored {
            Some(h) if h.len() == 32 => <[u8; 32]>::try_from(h.as_slice()).expect("32 bytes"),
            _ => {
                let l = audit_link(&prev, &row);
                tx.execute(
                    "UPDATE audit SET hash = ?2 WHERE seq = ?1",
                    params![row.seq, l.to_vec()],
                )?;
                l
            }
        };
        prev = link;
    }
    tx.commit()?;
    Ok(())
}

fn checklist_row(r: &Row<'_>) -> rusqlite::Result<PublishedChecklist> {
    Ok(PublishedChecklist {
        id: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        files: serde_json::from_str(&r.get::<_, String>(3)?).map_err(bad)?,
    })
}

/// Appends `e` to the audit log, linked to the row before it, in `tx`.
fn append_audit(tx: &Connection, e: &AuditEvent) -> Result<()> {
    let last: Option<(i64, Option<Vec<u8>>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, link_of(h)?),
        None => (1, [0; 32]),
    };
    let row = AuditRow::new(seq, e);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, device, action, target, origin, outcome, detail, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.seq,
        row.at,
        row.actor,
        row.device,
        row.action,
        row.target,
        row.origin,
        row.outcome,
        row.detail,
        audit_link(&prev, &row).to_vec()
    ])?;
    Ok(())
}

/// Sets an inspection's state column. Shared with the trust from the moment the state
/// moves there (and for good: the trust keeps what it was shown once the inspection
/// closes). Only that move shares: an inspection closed without ever being shared stays
/// unshared.
fn write_state(conn: &Connection, inspection: Uuid, state: State) -> Result<()> {
    let shared = state == State::SharedWithTrust;
    let n = conn.execute(
        "UPDATE inspections SET state = ?2,
                shared_at = CASE WHEN ?3 AND shared_at IS NULL THEN ?4 ELSE shared_at END
          WHERE id = ?1",
        params![
            inspection.to_string(),
            state_name(state),
            shared,
            ts(Utc::now())
        ],
    )?;
    if n == 0 {
        return Err(not_found(format!("inspection {inspection}")));
    }
    Ok(())
}

/// Replaces the photos a document refers to.
fn write_photo_refs(conn: &Connection, doc: Uuid, hashes: &[String]) -> Result<()> {
    conn.execute(
        "DELETE FROM photo_refs WHERE doc_id = ?1",
        params![doc.to_string()],
    )?;
    for h in hashes {
        conn.execute(
            "INSERT OR IGNORE INTO photo_refs (doc_id, sha256) VALUES (?1, ?2)",
            params![doc.to_string(), h],
        )?;
    }
    Ok(())
}

/// The actions a query of `id, trust, inspection, steps` finds, folded.
fn action_rows(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Action>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.iter()
        .map(|(id, trust, insp, steps)| action_from_row(id, trust, insp, steps))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Storing a document's changes again and again uses the one prepared statement:
    /// SQLite does not prepare it again each time (it did, for every reuse, until the
    /// connections asked for plans that do not depend on bound values).
    #[test]
    fn a_change_row_is_stored_without_preparing_its_statement_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        let doc = Uuid::new_v4();
        {
            let conn = s.conn();
            // A document row alone, without the inspection it would belong to.
            conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
            conn.execute(
                "INSERT INTO documents (doc_id, kind, inspection, snapshot, heads)
                 VALUES (?1, 'inspection', 'none', x'', x'00')",
                params![doc.to_string()],
            )
            .unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        }
        for round in 0..10u8 {
            let (after, heads) = ([round], [round + 1]);
            s.append_changes_after(doc, &after, &[round; 8], &[round; 32], &heads)
                .unwrap();
        }
        let conn = s.conn();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 10, "each append stores one row");
        let stmt = conn.prepare_cached(APPEND_CHANGE).unwrap();
        // The same statement that stored the rows, not a fresh one.
        let runs = stmt.get_status(rusqlite::StatementStatus::Run);
        assert_eq!(runs, 10, "the cached statement ran each append");
        let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(
            again, 0,
            "the change row's statement should be prepared once; it was prepared again {again} times"
        );
    }

    /// A data folder from before migration 8 (partial photos held whole in
    /// `blobs.bytes`): its upload in progress resumes where it was, and a complete photo
    /// is untouched.
    #[test]
    fn uploads_in_progress_survive_the_move_to_chunks() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("wardcheck.db")).unwrap();
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 7;
                 INSERT INTO blobs (sha256, bytes, complete, touched_at)
                     VALUES ('partial', CAST(x'00010203' AS BLOB), 0, '2026-12-06T10:00:00Z');
                 INSERT INTO blobs (sha256, bytes, complete, mime)
                     VALUES ('whole', x'ffd8ffd9', 1, 'image/jpeg');",
            )
            .unwrap();
        }
        let s = SqliteStorage::open(dir.path()).unwrap();
        let partial = s.blob_status("partial").unwrap().unwrap();
        assert_eq!((partial.received, partial.complete), (4, false));
        assert_eq!(s.partial_blob("partial").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(s.append_blob("partial", 4, &[4, 5], "ann").unwrap(), 6);
        assert_eq!(s.partial_blob("partial").unwrap(), vec![0, 1, 2, 3, 4, 5]);
        let whole = s.blob_status("whole").unwrap().unwrap();
        assert_eq!((whole.received, whole.complete), (4, true));
        assert_eq!(
            s.blob("whole").unwrap(),
            Some((vec![0xff, 0xd8, 0xff, 0xd9], "image/jpeg".to_owned()))
        );
        // A chunk at the wrong offset is refused and changes nothing.
        assert!(matches!(
            s.append_blob("partial", 3, &[9], "ann"),
            Err(StorageError::Corrupt(_))
        ));
        assert_eq!(s.partial_blob("partial").unwrap().len(), 6);
        s.discard_blob("partial").unwrap();
        assert!(s.blob_status("partial").unwrap().is_none());
        let left: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM blob_chunks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "a discarded upload leaves no chunk");
    }
}
