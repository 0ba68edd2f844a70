//! The PostgreSQL backend: the record in a database that several server processes may
//! share, so that more than one can run behind a load balancer.
//!
//! It answers every [`Storage`] call as [`super::SqliteStorage`] does; what differs is
//! how it keeps those answers true when it is not the only writer.
//!
//! # Columns
//!
//! Ids and times are text in the forms SQLite keeps them (`columns`), so that
//! the audit log's links hash the very same strings (`audit_chain`) and a
//! record moves between the backends as it is. Text that is sorted or compared by order
//! (names, ids, times) is `COLLATE "C"`: byte order, as SQLite compares, whatever locale
//! the database was made with. Bytes are `BYTEA`, flags `BOOLEAN`, numbers `BIGINT`;
//! an inspection's sites are a `TEXT[]`.
//!
//! # Connections
//!
//! An r2d2 pool of up to `MAX_CONNECTIONS` for ordinary calls, each checked with an
//! empty query as it is taken (so a database restart costs no failed call), and one
//! connection of its own for each of the two grouped writes, appends and audit rows
//! (`group`): the group's lock is that connection's, as SQLite's is its one
//! writing connection. Such a connection that was closed is replaced before its next
//! batch. A read of more than one statement (a document and its changes; a photo's
//! chunks) is one `REPEATABLE READ` transaction, so that it sees one moment, as a SQLite
//! read transaction does.
//!
//! # Several writers
//!
//! Under `READ COMMITTED`, each statement sees what was committed before it began.
//! Where SQLite's single writer made an answer true by going one at a time, this takes
//! a lock first, and the statements after it see everything committed before the lock
//! was granted:
//!
//! - A document's changes: every write to them first locks the document's row (an
//!   append updates its heads; a compaction, a rebuild and photo references lock it
//!   outright), so `max(seq) + 1` is always read after the last append committed, and
//!   each document's changes are numbered 1, 2, 3... with no gap or repeat. A batch of
//!   appends locks its documents in id order, so that two batches cannot deadlock.
//! - The audit log is one chain whoever writes: every transaction that appends to it
//!   first takes the advisory lock `AUDIT_LOCK`, then reads the last row's link.
//! - Races for one key (a user's name, an actor, an inspection id, a checklist version)
//!   are settled by `INSERT ... ON CONFLICT DO NOTHING`, which waits for the other
//!   transaction and then says whether it won; the loser answers as it would have had
//!   it come second ([`StorageError::Exists`], or the other's binding).
//! - Counted limits are counted under a lock: a device's actors under its row's lock, a
//!   user's uploads in progress under an advisory lock on their name.
//! - An inspection's team changes under its row's lock, so that two new leads at once
//!   cannot leave two.
//!
//! Every write commits before it returns, with `synchronous_commit` on (turned on for
//! this server's connections if the database has it off): the sync protocol tells a
//! peer "I have your change" only after that.
//!
//! # Schema
//!
//! One list of migrations of its own (`MIGRATIONS`; the first is SQLite's final
//! schema, without SQLite's history), counted in the table `wardcheck_schema` and
//! applied at open in one transaction under the advisory lock `MIGRATION_LOCK`, so
//! that processes starting together apply them once.
//!
//! Telemetry stays in `telemetry.db` in each data folder, as with SQLite; the feed files
//! imported are kept here too (`telemetry_feeds`), so that every process imports what
//! one imported (`crate::telemetry`, `shared.rs`).
//!
//! # Where it differs
//!
//! - PostgreSQL's text holds no NUL character: a call with one in a text value fails
//!   with [`StorageError::Postgres`], where SQLite would store it. The server refuses
//!   control characters in names before they get here; an audit row's are escaped
//!   (`storable`), so that one event never fails the others of its batch.
//! - Numbers from a `BIGSERIAL` (users, devices) may skip one that a failed insert took;
//!   SQLite's do not. Nothing relies on them being dense.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config, GenericClient, IsolationLevel, NoTls, Row, Transaction};
use chrono::{DateTime, Utc};
use r2d2_postgres::PostgresConnectionManager;
use uuid::Uuid;
use wardcheck_core::actions::Step;
use wardcheck_core::inspection::{State, TeamRole};

use super::audit_chain::{self, AuditRow, audit_link, link_of};
use super::columns::{self, role_columns, state_name, ts};
use super::group::{Append, Group, all_failed};
use super::*;

/// Each runs once, in order, all pending ones in one transaction; the one row of
/// `wardcheck_schema` counts them. The first is the schema SQLite's migrations arrive at
/// (see `sqlite.rs` for why each table and column is there).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE \"C\" NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    trust TEXT,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE devices (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_seen TEXT COLLATE \"C\",
    revoked BOOLEAN NOT NULL DEFAULT false,
    wipe_requested TEXT,
    wiped_at TEXT
);
CREATE TABLE inspections (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    trust TEXT NOT NULL,
    sites TEXT[] NOT NULL,
    checklist_id TEXT NOT NULL,
    checklist_version TEXT NOT NULL,
    checklist_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    response_doc TEXT COLLATE \"C\" NOT NULL UNIQUE,
    -- Null only for an inspection from before review documents (never made here, but
    -- `Storage::add_review_doc` and `without_review_doc` keep their meaning).
    review_doc TEXT COLLATE \"C\",
    history_holds_comments BOOLEAN NOT NULL DEFAULT false,
    shared_at TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX inspections_trust ON inspections(trust);
CREATE TABLE assignments (
    inspection TEXT COLLATE \"C\" NOT NULL REFERENCES inspections(id),
    user_name TEXT COLLATE \"C\" NOT NULL,
    role TEXT NOT NULL DEFAULT 'inspector',
    PRIMARY KEY (inspection, user_name)
);
CREATE TABLE documents (
    doc_id TEXT COLLATE \"C\" PRIMARY KEY,
    kind TEXT NOT NULL,
    inspection TEXT COLLATE \"C\" NOT NULL REFERENCES inspections(id),
    snapshot BYTEA NOT NULL,
    heads BYTEA NOT NULL,
    prev_snapshot BYTEA
);
CREATE TABLE changes (
    doc_id TEXT COLLATE \"C\" NOT NULL REFERENCES documents(doc_id),
    seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    hashes BYTEA,
    PRIMARY KEY (doc_id, seq)
);
CREATE TABLE compacted (
    doc_id TEXT COLLATE \"C\" NOT NULL REFERENCES documents(doc_id),
    seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    hashes BYTEA,
    PRIMARY KEY (doc_id, seq)
);
CREATE TABLE set_aside (
    id BIGSERIAL PRIMARY KEY,
    doc_id TEXT COLLATE \"C\" NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT,
    bytes BYTEA NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX set_aside_doc ON set_aside(doc_id);
CREATE TABLE aside_changes (
    doc_id TEXT COLLATE \"C\" NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
CREATE TABLE sync_states (
    doc_id TEXT COLLATE \"C\" NOT NULL REFERENCES documents(doc_id),
    peer TEXT NOT NULL,
    state BYTEA NOT NULL,
    PRIMARY KEY (doc_id, peer)
);
CREATE TABLE photo_refs (
    doc_id TEXT COLLATE \"C\" NOT NULL REFERENCES documents(doc_id),
    sha256 TEXT NOT NULL,
    PRIMARY KEY (doc_id, sha256)
);
CREATE INDEX photo_refs_sha ON photo_refs(sha256);
CREATE TABLE photo_claims (
    doc_id TEXT COLLATE \"C\" NOT NULL,
    sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    earned BOOLEAN NOT NULL,
    PRIMARY KEY (doc_id, sha256, user_name)
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    -- A complete photo's bytes; empty while it is uploaded as chunks (`blob_chunks`).
    bytes BYTEA NOT NULL,
    complete BOOLEAN NOT NULL DEFAULT false,
    mime TEXT,
    touched_at TEXT COLLATE \"C\",
    received BIGINT NOT NULL DEFAULT 0,
    started_by TEXT
);
CREATE INDEX blobs_in_progress ON blobs(started_by) WHERE NOT complete;
CREATE TABLE blob_chunks (
    sha256 TEXT NOT NULL,
    at_byte BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (sha256, at_byte)
);
-- Photos are compressed already: kept out of line without trying to compress them again.
ALTER TABLE blobs ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE blob_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE TABLE blob_uploaders (
    sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    PRIMARY KEY (sha256, user_name)
);
CREATE TABLE checklists (
    id TEXT COLLATE \"C\" NOT NULL,
    version TEXT COLLATE \"C\" NOT NULL,
    sha256 TEXT NOT NULL,
    -- The files as JSON, `[[name, text], ...]`, in the order the pin hashes them.
    files TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE actors (
    actor BYTEA PRIMARY KEY,
    user_name TEXT NOT NULL,
    device BIGINT REFERENCES devices(id),
    bound_at TEXT NOT NULL,
    api BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX actors_device ON actors(device);
CREATE UNIQUE INDEX actors_api ON actors(device) WHERE api;
-- Numbered by the writer, under the advisory lock on the log (no sequence: a number
-- taken by a transaction that rolled back would leave a gap, which reads as a row
-- removed).
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    device BIGINT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_target ON audit(target);
",
    "
-- Sign-in attempts counted as failures, by key (a user name, an address), in every
-- process's view alike: the limits on failed sign-ins hold across processes
-- (`Storage::begin_login`). `at` is in milliseconds since 1970 (UTC).
CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    key TEXT COLLATE \"C\" NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(key, at);
CREATE INDEX login_failures_at ON login_failures(at);
",
    "
-- Telemetry feed files, kept so that every process imports into its own telemetry what
-- one of them imported (`Storage::put_feed`): one file for each kind and day (a second
-- replaces the first), its bytes in chunks.
CREATE TABLE telemetry_feeds (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT COLLATE \"C\" NOT NULL,
    format TEXT NOT NULL,
    as_of TEXT COLLATE \"C\" NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (kind, as_of)
);
CREATE TABLE telemetry_feed_chunks (
    feed BIGINT NOT NULL REFERENCES telemetry_feeds(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (feed, n)
);
",
    "
-- Issue 14: corrective actions, each its steps (JSON, oldest first, never changed: a
-- step is kept only where the record holds the steps before it, `step_count`), with
-- what listings filter on in columns of their own.
CREATE TABLE actions (
    id TEXT COLLATE \"C\" PRIMARY KEY,
    trust TEXT NOT NULL,
    inspection TEXT COLLATE \"C\" NOT NULL REFERENCES inspections(id),
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    due TEXT NOT NULL,
    step_count INTEGER NOT NULL,
    steps TEXT NOT NULL,
    raised_at TEXT COLLATE \"C\" NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_trust ON actions(trust, raised_at);
-- The evidence each action's progress reports name, so that a photo's readers are found
-- without reading every action.
CREATE TABLE action_evidence (
    sha256 TEXT COLLATE \"C\" NOT NULL,
    action TEXT COLLATE \"C\" NOT NULL REFERENCES actions(id),
    PRIMARY KEY (sha256, action)
);
",
    "
-- Issue 14: the reports (PDF) the server made, each under its SHA-256, with whose
-- rights it was made under (what it may hold) and who made it.
CREATE TABLE reports (
    sha256 TEXT COLLATE \"C\" PRIMARY KEY,
    inspection TEXT COLLATE \"C\" NOT NULL REFERENCES inspections(id),
    audience TEXT NOT NULL,
    made_by TEXT NOT NULL,
    made_at TEXT COLLATE \"C\" NOT NULL,
    size BIGINT NOT NULL,
    pages INTEGER NOT NULL,
    pdf BYTEA NOT NULL
);
CREATE INDEX reports_inspection ON reports(inspection, made_at);
",
    "
-- Issue 14: one-time codes an admin gives a user to set their password (the code's
-- argon2 hash, never the code).
CREATE TABLE password_codes (
    user_name TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    expires_at TEXT COLLATE \"C\" NOT NULL
);
",
    "
-- Issue 15: where each user has signed in from (an address, or an IPv6 /64), and when
-- last: from those, a user's right password works even while guesses from elsewhere
-- hold their name back (`logins.rs`).
CREATE TABLE login_addresses (
    user_name TEXT COLLATE \"C\" NOT NULL,
    addr TEXT COLLATE \"C\" NOT NULL,
    last_ok TEXT COLLATE \"C\" NOT NULL,
    PRIMARY KEY (user_name, addr)
);
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
    platform TEXT COLLATE \"C\" NOT NULL,
    version TEXT COLLATE \"C\" NOT NULL,
    sha256 TEXT COLLATE \"C\" NOT NULL,
    size BIGINT NOT NULL,
    signature TEXT NOT NULL,
    notes TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT COLLATE \"C\" NOT NULL,
    package BYTEA NOT NULL,
    PRIMARY KEY (platform, version)
);
CREATE INDEX app_updates_sha256 ON app_updates(sha256);
",
];

// Advisory lock keys. They share one space with anything else in the database that
// takes advisory locks, so they start with "wardchk" in ASCII; the two-key form (a
// class and a key) is a space of its own.

/// Held while migrations are applied: processes starting together apply them once.
const MIGRATION_LOCK: i64 = 0x7761_7264_6368_6b01;
/// With a key's hash, held while a sign-in attempt is counted against that key: two
/// attempts at once cannot both pass a limit one of them reaches.
const LOGIN_LOCK: i32 = 0x7764_6302;
/// Held by every transaction that appends to the audit log, from before it reads the
/// last row's link until it commits: the log stays one chain.
const AUDIT_LOCK: i64 = 0x7761_7264_6368_6b02;
/// The class of the locks held while a telemetry feed is kept, keyed by a hash of its
/// kind and day: one file for a kind and day at a time.
const FEEDS_CLASS: i32 = 0x7764_6303;
/// Bytes of a feed file in one row of `telemetry_feed_chunks`.
const FEED_CHUNK: usize = 4 << 20;

/// The class of the locks on a user's uploads (keyed by a hash of their name), held
/// while one is started: the count of their uploads in progress holds.
const UPLOADS_LOCK: i32 = 0x7764_6301;

/// Most connections one server process holds in its pool. The two grouped writers hold
/// one more each. Reads are short; calls past this wait for a connection (up to
/// [`CONNECT_TIMEOUT`]). Several processes on one database each hold this many, within
/// PostgreSQL's `max_connections` (100 by default).
const MAX_CONNECTIONS: u32 = 16;
/// Connections kept open while idle, so that a call after a quiet spell does not wait
/// for a connection to be made.
const MIN_IDLE: u32 = 2;
/// How long a call waits for a connection, and a connection attempt for the server,
/// before failing with [`StorageError::Pool`] (the server answers 503): long enough for
/// a busy moment, short enough that a caller is not left hanging when the database is
/// gone. A connection string that sets `connect_timeout` keeps its own.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Manager = PostgresConnectionManager<NoTls>;
type Pooled = r2d2::PooledConnection<Manager>;

/// The server's record in a PostgreSQL database (see the module doc): open it with
/// [`PgStorage::open`].
pub struct PgStorage {
    /// Connections for everything but the grouped writes. An option only so that
    /// `drop` can take it (see there).
    pool: Option<r2d2::Pool<Manager>>,
    /// Received changes waiting to be committed together, on their own connection.
    appends: Group<Append>,
    append_writer: Writer,
    /// Audit events waiting to be committed together, each linked to the one before.
    audits: Group<AuditEvent>,
    audit_writer: Writer,
    /// How to connect: for the listener ([`Storage::changes_elsewhere`]).
    config: Config,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection string: it may hold a password.
        let state = self.pool.as_ref().map(|p| p.state());
        f.debug_struct("PgStorage")
            .field("connections", &state.as_ref().map(|s| s.connections))
            .field("idle", &state.as_ref().map(|s| s.idle_connections))
            .field("appends", &self.appends)
            .field("audits", &self.audits)
            .finish_non_exhaustive()
    }
}

/// Writes a batch of a group's jobs in one transaction and answers each (`Err` for
/// all if the transaction fails).
type WriteBatch<J> = fn(&mut Client, &[J]) -> Result<Vec<Result<()>>>;

/// The connection one group of writes goes through ([`super::group`]): its lock is the
/// group's writer lock, held by one batch at a time.
struct Writer {
    config: Config,
    client: Mutex<Option<Client>>,
}

impl Writer {
    fn new(config: Config, client: Option<Client>) -> Self {
        Writer {
            config,
            client: Mutex::new(client),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        // A panic while a batch held it leaves the database consistent (its transaction
        // rolls back when the connection is dropped or closed), so the lock is taken over.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits `job` with whatever else of its group is queued: `write` writes a batch in
    /// one transaction on the writer's connection and answers each job.
    fn submit<J>(&self, group: &Group<J>, job: J, write: WriteBatch<J>) -> Result<()> {
        group.submit(
            job,
            || self.lock(),
            |slot, jobs| {
                connected(slot, &self.config)
                    .and_then(|client| write(client, jobs))
                    .unwrap_or_else(|e| all_failed(jobs.len(), &e))
            },
        )
    }
}

/// The writer's connection, made afresh if it has none or the one it had was closed (a
/// database restart, a network failure). An empty query finds a connection the server
/// closed while it sat idle, before anything of the batch is sent on it, as the pool
/// checks its own.
fn connected<'a>(slot: &'a mut Option<Client>, config: &Config) -> Result<&'a mut Client> {
    let alive = match slot {
        Some(c) => !c.is_closed() && c.simple_query("").is_ok(),
        None => false,
    };
    if !alive {
        *slot = None;
        *slot = Some(config.connect(NoTls)?);
    }
    Ok(slot.as_mut().expect("connected above"))
}

impl PgStorage {
    /// Connects to the database `url` names (a libpq connection string,
    /// `host=/run/postgresql dbname=wardcheck`, or a `postgres://` URL), brings its
    /// schema up to date.
    pub fn open(url: &str) -> Result<Self> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("wardcheck-server");
        }
        // A process that stops answering (paused, cut off) while it holds a lock every
        // other process needs (the audit log's, a document's row) would hold it until its
        // connection is found dead: the database ends a transaction left idle for
        // `IDLE_IN_TRANSACTION`, and finds a silent peer by keepalives within a minute.
        config.keepalives_idle(Duration::from_secs(30));
        let session = format!(
            "-c idle_in_transaction_session_timeout={}s -c tcp_keepalives_idle=30 \
             -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
            IDLE_IN_TRANSACTION.as_secs()
        );
        let options = match config.get_options() {
            Some(o) => format!("{o} {session}"),
            None => session,
        };
        config.options(&options);
        // The first connection says at once, with PostgreSQL's own words, when the
        // database cannot be reached (the pool would only time out).
        let mut first = config.connect(NoTls)?;
        let commit: String = first
            .query_one("SHOW synchronous_commit", &[])?
            .try_get(0)?;
        if commit == "off" {
            // A commit must be durable before a write returns. Any other setting is
            // (`local`, or stronger ones that wait for standbys too), and is kept.
            let options = match config.get_options() {
                Some(o) => format!("{o} -c synchronous_commit=on"),
                None => "-c synchronous_commit=on".to_owned(),
            };
            config.options(&options);
            first = config.connect(NoTls)?;
        }
        migrate(&mut first)?;
        let pool = r2d2::Pool::builder()
            .max_size(MAX_CONNECTIONS)
            .min_idle(Some(MIN_IDLE))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(PostgresConnectionManager::new(config.clone(), NoTls))?;
        Ok(PgStorage {
            pool: Some(pool),
            appends: Group::default(),
            append_writer: Writer::new(config.clone(), Some(first)),
            audits: Group::default(),
            audit_writer: Writer::new(config.clone(), None),
            config,
        })
    }

    /// A connection from the pool, back to it when dropped.
    fn conn(&self) -> Result<Pooled> {
        Ok(self
            .pool
            .as_ref()
            .expect("the pool is taken only by drop")
            .get()?)
    }

    /// Runs `f` in a transaction, committed if it returns `Ok` (and rolled back if not).
    fn write<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read-only transaction that sees one moment: every write that
    /// returned before it began, and nothing committed while it runs.
    fn read<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        // A `postgres::Client` blocks on a small runtime of its own, even to close, and
        // blocking panics on a thread that drives async tasks, which is where the server
        // lets go of its state when it stops. So the connections are closed on a thread
        // of their own.
        let pool = self.pool.take();
        let writers = [
            self.append_writer.lock().take(),
            self.audit_writer.lock().take(),
        ];
        let closing = std::thread::Builder::new()
            .name("wardcheck-pg-close".into())
            .spawn(move || drop((pool, writers)));
        if let Ok(t) = closing {
            let _ = t.join();
        }
    }
}

/// Applies the migrations this database has not had, in one transaction; refuses a
/// database written by a newer build.
fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS wardcheck_schema (
             only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
             version BIGINT NOT NULL
         );
         INSERT INTO wardcheck_schema (version) VALUES (0) ON CONFLICT DO NOTHING;",
    )?;
    let found: i64 = tx
        .query_one("SELECT version FROM wardcheck_schema", &[])?
        .try_get(0)?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StorageError::NewerSchema { found, known });
    }
    if found < known {
        for sql in &MIGRATIONS[found.max(0) as usize..] {
            tx.batch_execute(sql)?;
        }
        tx.execute("UPDATE wardcheck_schema SET version = $1", &[&known])?;
    }
    tx.commit()?;
    Ok(())
}

fn corrupt(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {e}"))
}

fn unique_violation(e: &::postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A `LIMIT` for a count: the largest means no limit, as SQLite's `LIMIT -1` does.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn time(r: &Row, i: usize) -> Result<DateTime<Utc>> {
    let s: &str = r.try_get(i)?;
    columns::parse_ts(s).map_err(|e| corrupt(format!("time {s:?}"), e))
}

fn time_opt(r: &Row, i: usize) -> Result<Option<DateTime<Utc>>> {
    let s: Option<&str> = r.try_get(i)?;
    s.map(|s| columns::parse_ts(s).map_err(|e| corrupt(format!("time {s:?}"), e)))
        .transpose()
}

fn report_row(r: &Row) -> Result<ReportMeta> {
    Ok(ReportMeta {
        sha256: r.try_get(0)?,
        inspection: parse_id(r.try_get(1)?, "report's inspection")?,
        audience: r.try_get(2)?,
        made_by: r.try_get(3)?,
        made_at: time(r, 4)?,
        size: r.try_get::<_, i64>(5)? as u64,
        pages: r.try_get::<_, i32>(6)? as u32,
    })
}

fn parse_id(s: &str, what: &str) -> Result<Uuid> {
    s.parse()
        .map_err(|_| StorageError::Corrupt(format!("{what} id {s:?}")))
}

fn id(r: &Row, i: usize, what: &str) -> Result<Uuid> {
    parse_id(r.try_get(i)?, what)
}

const USER_COLUMNS: &str =
    "u.id, u.name, u.display_name, u.role, u.trust, u.password_hash, u.disabled";

/// The user in the seven columns of [`USER_COLUMNS`] from `at`.
fn user_at(r: &Row, at: usize) -> Result<User> {
    let role: &str = r.try_get(at + 3)?;
    Ok(User {
        id: r.try_get(at)?,
        name: r.try_get(at + 1)?,
        display_name: r.try_get(at + 2)?,
        role: columns::parse_role(role, r.try_get(at + 4)?)?,
        password_hash: r.try_get(at + 5)?,
        disabled: r.try_get(at + 6)?,
    })
}

/// A device and its user's name, from `devices d JOIN users u`.
const DEVICE_COLUMNS: &str =
    "d.id, d.user_id, u.name, d.name, d.created_at, d.last_seen, d.revoked,
    d.wipe_requested, d.wiped_at";

fn device_row(r: &Row) -> Result<Device> {
    Ok(Device {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        user_name: r.try_get(2)?,
        name: r.try_get(3)?,
        created_at: time(r, 4)?,
        last_seen: time_opt(r, 5)?,
        revoked: r.try_get(6)?,
        wipe_requested: time_opt(r, 7)?,
        wiped_at: time_opt(r, 8)?,
    })
}

const INSPECTION_COLUMNS: &str = "i.id, i.trust, i.sites, i.checklist_id, i.checklist_version,
    i.checklist_sha256, i.state, i.response_doc, i.shared_at, i.created_at, i.created_by,
    ARRAY(SELECT a.user_name FROM assignments a WHERE a.inspection = i.id ORDER BY a.user_name)
    AS assignees,
    i.review_doc,
    (SELECT a.user_name FROM assignments a
      WHERE a.inspection = i.id AND a.role = 'lead_inspector'
      ORDER BY a.user_name LIMIT 1) AS lead,
    i.history_holds_comments";

fn inspection_row(r: &Row) -> Result<InspectionRecord> {
    let state: &str = r.try_get(6)?;
    let review: Option<&str> = r.try_get(12)?;
    Ok(InspectionRecord {
        id: id(r, 0, "inspection")?,
        trust: r.try_get(1)?,
        sites: r.try_get(2)?,
        checklist_id: r.try_get(3)?,
        checklist_version: r.try_get(4)?,
        checklist_sha256: r.try_get(5)?,
        state: columns::parse_state(state).map_err(|e| corrupt(format!("state {state:?}"), e))?,
        response_doc: id(r, 7, "document")?,
        shared_at: time_opt(r, 8)?,
        created_at: time(r, 9)?,
        created_by: r.try_get(10)?,
        assignees: r.try_get(11)?,
        // Null only for an inspection from before review documents, until the document
        // migration at open adds one.
        review_doc: review
            .map(|s| parse_id(s, "document"))
            .transpose()?
            .unwrap_or_else(Uuid::nil),
        lead: r.try_get(13)?,
        history_holds_comments: r.try_get(14)?,
    })
}

fn inspection_in(c: &mut impl GenericClient, id: Uuid) -> Result<Option<InspectionRecord>> {
    c.query_opt(
        &format!("SELECT {INSPECTION_COLUMNS} FROM inspections i WHERE i.id = $1"),
        &[&id.to_string()],
    )?
    .map(|r| inspection_row(&r))
    .transpose()
}

fn audit_event(r: &Row, at: usize) -> Result<AuditEvent> {
    Ok(AuditEvent {
        at: time(r, at)?,
        actor: r.try_get(at + 1)?,
        device: r.try_get(at + 2)?,
        action: r.try_get(at + 3)?,
        target: r.try_get(at + 4)?,
        from: r.try_get(at + 5)?,
        outcome: r.try_get(at + 6)?,
        detail: r.try_get(at + 7)?,
    })
}

fn checklist_row(r: &Row) -> Result<PublishedChecklist> {
    let id: String = r.try_get(0)?;
    let files: &str = r.try_get(3)?;
    Ok(PublishedChecklist {
        files: serde_json::from_str(files).map_err(|e| corrupt(format!("checklist {id}"), e))?,
        version: r.try_get(1)?,
        sha256: r.try_get(2)?,
        id,
    })
}

/// The channel on which processes tell each other what they committed
/// ([`Storage::changes_elsewhere`]).
const FEED: &str = "wardcheck_changes";

/// How long the listener waits for a notification before it checks its connection.
const FEED_CHECK: Duration = Duration::from_secs(10);

/// The longest a transaction may sit idle holding its locks before the database ends it
/// (a process paused or cut off mid-transaction): no transaction of this server waits
/// on anything but the database while open.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(30);

/// Notifications waiting for the server to take them; past this they are dropped and the
/// server is told it missed some (`listen`).
const FEED_QUEUE: usize = 4096;

fn feed_row(r: &Row) -> Result<Feed> {
    let as_of: String = r.get(3);
    let at: String = r.get(7);
    Ok(Feed {
        id: r.get(0),
        kind: r.get(1),
        format: r.get(2),
        as_of: as_of
            .parse()
            .map_err(|e| StorageError::Corrupt(format!("feed day {as_of:?}: {e}")))?,
        sha256: r.get(4),
        bytes: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
        by: r.get(6),
        at: columns::parse_ts(&at)
            .map_err(|e| StorageError::Corrupt(format!("feed time {at:?}: {e}")))?,
    })
}

/// This process, as its notifications name it: it skips its own.
fn origin() -> &'static str {
    static ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// Tells every process listening, when the transaction commits (and not if it does
/// not), that `id` changed: `kind` is `d` for a document's changes, `i` for an
/// inspection's record.
fn tell(tx: &mut impl GenericClient, kind: char, id: &str) -> Result<()> {
    let payload = format!("{} {kind} {id}", origin());
    tx.execute("SELECT pg_notify($1, $2)", &[&FEED, &payload])?;
    Ok(())
}

/// What a notification says, unless it is this process's own or not understood.
fn heard(payload: &str) -> Option<Elsewhere> {
    let mut parts = payload.split(' ');
    let (from, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
    if from == origin() || parts.next().is_some() {
        return None;
    }
    if kind == "t" {
        return Some(Elsewhere::Telemetry);
    }
    let id: Uuid = id.parse().ok()?;
    match kind {
        "d" => Some(Elsewhere::Document(id)),
        "i" => Some(Elsewhere::Inspection(id)),
        _ => None,
    }
}

/// Listens on [`FEED`] on a connection of its own, for as long as the server takes what
/// it hears. A lost connection is made again (every second until it is).
///
/// It never waits for the server: a listener that stopped reading would hold back
/// PostgreSQL's notification queue for every process, until commits that notify fail.
/// When the server falls behind, what does not fit is dropped and the server is told it
/// missed something ([`Elsewhere::Missed`]), as it is after every (re)connection, since
/// changes made before `LISTEN` took effect are not heard.
fn listen(config: Config, feed: tokio::sync::mpsc::Sender<Elsewhere>) {
    // Whether something was dropped (or may have been missed) and not yet said.
    let mut missed;
    loop {
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                if feed.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "listening for other processes' changes: cannot connect; trying again");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {FEED}")) {
            tracing::warn!(error = %e, "listening for other processes' changes failed; trying again");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        missed = true;
        if !pass(&feed, None, &mut missed) {
            return;
        }
        loop {
            let mut lost = false;
            {
                let mut notes = client.notifications();
                let mut iter = notes.timeout_iter(FEED_CHECK);
                loop {
                    match iter.next() {
                        Ok(Some(n)) => {
                            if let Some(e) = heard(n.payload())
                                && !pass(&feed, Some(e), &mut missed)
                            {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "the connection listening for other processes' changes failed");
                            lost = true;
                            break;
                        }
                    }
                }
            }
            // Quiet for a while: say what was dropped, and is the connection still there?
            if !pass(&feed, None, &mut missed) {
                return;
            }
            if lost || feed.is_closed() || client.simple_query("").is_err() {
                break;
            }
        }
        if feed.is_closed() {
            return;
        }
    }
}

/// Hands the server `news` without waiting: first that something was missed, if it was
/// and has not been said; what does not fit is dropped and counted as missed. False once
/// the server no longer listens.
fn pass(
    feed: &tokio::sync::mpsc::Sender<Elsewhere>,
    news: Option<Elsewhere>,
    missed: &mut bool,
) -> bool {
    use tokio::sync::mpsc::error::TrySendError;
    if *missed {
        match feed.try_send(Elsewhere::Missed) {
            Ok(()) => *missed = false,
            // Still full: what comes now is missed too, and said later.
            Err(TrySendError::Full(_)) => return true,
            Err(TrySendError::Closed(_)) => return false,
        }
    }
    let Some(news) = news else { return true };
    match feed.try_send(news) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            *missed = true;
            true
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

/// Sets an inspection's state column, and tells the other processes. Shared with the
/// trust from the moment the state moves there (and for good: the trust keeps what it
/// was shown once the inspection closes). Only that move shares: an inspection closed
/// without ever being shared stays unshared.
fn write_state(tx: &mut Transaction<'_>, inspection: Uuid, state: State) -> Result<()> {
    let shared = state == State::SharedWithTrust;
    let id = inspection.to_string();
    let n = tx.execute(
        "UPDATE inspections SET state = $2,
                shared_at = CASE WHEN $3::boolean AND shared_at IS NULL THEN $4::text
                                 ELSE shared_at END
          WHERE id = $1",
        &[&id, &state_name(state), &shared, &ts(Utc::now())],
    )?;
    if n == 0 {
        return Err(not_found(format!("inspection {inspection}")));
    }
    tell(tx, 'i', &id)
}

/// Replaces the photos document `key` refers to (its row held by the caller).
fn write_photo_refs(tx: &mut Transaction<'_>, key: &str, hashes: &[String]) -> Result<()> {
    tx.execute("DELETE FROM photo_refs WHERE doc_id = $1", &[&key])?;
    let insert = tx.prepare(
        "INSERT INTO photo_refs (doc_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )?;
    for h in hashes {
        tx.execute(&insert, &[&key, h])?;
    }
    Ok(())
}

/// Locks a document's row until the transaction ends; false if there is no such
/// document. Every write to a document's changes takes this lock (an append takes it by
/// updating the heads), so each sees the changes of every one before it.
fn lock_doc(tx: &mut Transaction<'_>, key: &str) -> Result<bool> {
    // `NO KEY`: inserting a row that refers to the document (a change) is not held up.
    Ok(tx
        .query_opt(
            "SELECT 1 FROM documents WHERE doc_id = $1 FOR NO KEY UPDATE",
            &[&key],
        )?
        .is_some())
}

/// Writes a batch of appends in one transaction. The one thing that can fail for one
/// append alone, its document missing, is found before it writes anything, and leaves
/// the others to commit; any other error is the transaction's, and fails the batch.
fn write_appends(client: &mut Client, jobs: &[Append]) -> Result<Vec<Result<()>>> {
    let mut tx = client.transaction()?;
    // Every document of the batch locked first, in id order: another process's batch
    // locks them in the same order, so the two wait for each other and never deadlock.
    let mut keys: Vec<String> = jobs.iter().map(|j| j.doc.to_string()).collect();
    keys.sort_unstable();
    keys.dedup();
    // With their stored heads: a conditional append goes ahead only if no other process
    // stored changes since its copy was read (updated below as the batch writes).
    let mut stored: HashMap<String, Vec<u8>> = tx
        .query(
            "SELECT doc_id, heads FROM documents WHERE doc_id = ANY($1) ORDER BY doc_id
               FOR NO KEY UPDATE",
            &[&keys],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, ::postgres::Error>>()?;
    let heads = tx.prepare("UPDATE documents SET heads = $2 WHERE doc_id = $1")?;
    // Read after the lock: every earlier append of this document has committed, and
    // this statement sees it.
    let insert = tx.prepare(
        "INSERT INTO changes (doc_id, seq, bytes, hashes)
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE doc_id = $1), $2, $3)",
    )?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut told = HashSet::new();
    for j in jobs {
        let key = j.doc.to_string();
        let Some(now) = stored.get_mut(&key) else {
            out.push(Err(not_found(format!("document {}", j.doc))));
            continue;
        };
        if j.after.as_ref().is_some_and(|after| after != now) {
            out.push(Err(StorageError::Stale(format!("document {}", j.doc))));
            continue;
        }
        tx.execute(&heads, &[&key, &j.heads])?;
        tx.execute(&insert, &[&key, &j.changes, &j.hashes])?;
        now.clone_from(&j.heads);
        if told.insert(key.clone()) {
            tell(&mut tx, 'd', &key)?;
        }
        out.push(Ok(()));
    }
    tx.commit()?;
    Ok(out)
}

/// Appends audit events in one transaction, in order, each linked to the one before.
/// Nothing in one event can fail alone (no constraint it could break), so an error is
/// the transaction's, and fails them all.
fn write_audits(client: &mut Client, events: &[AuditEvent]) -> Result<()> {
    let mut tx = client.transaction()?;
    // Before reading the last link: another process appending now waits here until
    // this commits, then links to its last row.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
    let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (mut seq, mut prev) = match last {
        Some(r) => (r.try_get::<_, i64>(0)?, link_of(r.try_get(1)?)?),
        None => (0, [0; 32]),
    };
    let insert = tx.prepare(
        "INSERT INTO audit (seq, at, actor, device, action, target, origin, outcome, detail, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )?;
    for e in events {
        seq += 1;
        let row = storable(AuditRow::new(seq, e));
        let link = audit_link(&prev, &row);
        tx.execute(
            &insert,
            &[
                &row.seq,
                &row.at,
                &row.actor,
                &row.device,
                &row.action,
                &row.target,
                &row.origin,
                &row.outcome,
                &row.detail,
                &&link[..],
            ],
        )?;
        prev = link;
    }
    tx.commit()?;
    Ok(())
}

/// An audit row PostgreSQL can hold. Its text holds no NUL character, so one in an
/// event is written as the escape `\u{0}` (as `session::neutralise` writes control
/// characters), rather than failing every event of the batch it is in. The server's own
/// callers escape control characters before they get here; this is for any that do not.
/// The link covers the row as stored, so the chain holds.
fn storable(mut row: AuditRow) -> AuditRow {
    let escape = |s: &mut String| {
        if s.contains('\0') {
            *s = s.replace('\0', "\\u{0}");
        }
    };
    for s in [
        &mut row.at,
        &mut row.actor,
        &mut row.action,
        &mut row.target,
        &mut row.origin,
        &mut row.outcome,
    ] {
        escape(s);
    }
    if let Some(d) = &mut row.detail {
        escape(d);
    }
    row
}

/// A photo upload's bytes received and whether it is complete, its row locked until the
/// transaction ends (so that two requests for one photo go one after the other).
fn upload_progress(tx: &mut Transaction<'_>, sha256: &str) -> Result<Option<(i64, bool)>> {
    tx.query_opt(
        "SELECT received, complete FROM blobs WHERE sha256 = $1 FOR UPDATE",
        &[&sha256],
    )?
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .transpose()
}

/// The user an actor is bound to, if it is.
fn bound_user(tx: &mut Transaction<'_>, actor: &[u8]) -> Result<Option<String>> {
    tx.query_opt("SELECT user_name FROM actors WHERE actor = $1", &[&actor])?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
}

/// The actor the API writes with for a device, if it has one.
fn api_actor_of(tx: &mut Transaction<'_>, device: i64) -> Result<Option<Vec<u8>>> {
    tx.query_opt(
        "SELECT actor FROM actors WHERE device = $1 AND api",
        &[&device],
    )?
    .map(|r| Ok(r.try_get(0)?))
    .transpose()
}

impl Storage for PgStorage {
    fn add_user(
        &self,
        name: &str,
        display_name: &str,
        role: &Role,
        password_hash: &str,
    ) -> Result<i64> {
        let (role, trust) = role_columns(role);
        let added = self.conn()?.query_opt(
            "INSERT INTO users (name, display_name, role, trust, password_hash)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&name, &display_name, &role, &trust, &password_hash],
        )?;
        match added {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(StorageError::Exists(format!("user {name:?}"))),
        }
    }

    fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.conn()?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"),
                &[&name],
            )?
            .map(|r| user_at(&r, 0))
            .transpose()
    }

    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let n = self.conn()?.execute(
            "UPDATE users SET disabled = $2 WHERE name = $1",
            &[&name, &disabled],
        )?;
        if n == 0 {
            return Err(not_found(format!("user {name:?}")));
        }
        Ok(())
    }

    fn put_password_code(&self, name: &str, code_hash: &str, expires: DateTime<Utc>) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO password_codes (user_name, code_hash, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_name) DO UPDATE SET code_hash = $2, expires_at = $3",
            &[&name, &code_hash, &ts(expires)],
        )?;
        Ok(())
    }

    fn password_code(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        self.conn()?
            .query_opt(
                "SELECT code_hash, expires_at FROM password_codes WHERE user_name = $1",
                &[&name],
            )?
            .map(|r| Ok((r.try_get(0)?, time(&r, 1)?)))
            .transpose()
    }

    fn use_password_code(
        &self,
        name: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let used = tx.execute(
            "DELETE FROM password_codes WHERE user_name = $1 AND code_hash = $2 AND expires_at > $3",
            &[&name, &code_hash, &ts(now)],
        )?;
        if used != 1 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            &[&name, &password_hash],
        )?;
        let revoked = tx.execute(
            "UPDATE devices SET revoked = true
             WHERE NOT revoked AND user_id = (SELECT id FROM users WHERE name = $1)",
            &[&name],
        )?;
        // An expired device's old token no longer shows it signed in before.
        tx.execute(
            "UPDATE devices SET expired_at = NULL
             WHERE expired_at IS NOT NULL AND user_id = (SELECT id FROM users WHERE name = $1)",
            &[&name],
        )?;
        // Where the user signed in from is forgotten: after a break-in, the intruder's
        // address is not one the user signs in from.
        tx.execute("DELETE FROM login_addresses WHERE user_name = $1", &[&name])?;
        tx.commit()?;
        Ok(Some(revoked))
    }

    fn list_users(&self) -> Result<Vec<User>> {
        self.conn()?
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"),
                &[],
            )?
            .iter()
            .map(|r| user_at(r, 0))
            .collect()
    }

    fn add_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let added = self.conn()?.query_one(
            "INSERT INTO devices (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&user_id, &name, &&token_hash[..], &ts(now)],
        );
        match added {
            Ok(r) => Ok(r.try_get(0)?),
            // Tokens are random, so only a bug gets here; said plainly all the same.
            Err(e) if unique_violation(&e) => {
                Err(StorageError::Exists("a device with this token".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Device, User)>> {
        let found = self.conn()?.query_opt(
            &format!(
                "SELECT {DEVICE_COLUMNS}, {USER_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id
                  WHERE d.token_hash = $1 AND NOT d.revoked AND NOT u.disabled"
            ),
            &[&&token_hash[..]],
        )?;
        found
            .map(|r| Ok((device_row(&r)?, user_at(&r, 9)?)))
            .transpose()
    }

    fn touch_devices(&self, seen: &[(i64, DateTime<Utc>)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        // In id order: another process's batch updates them in the same order, so the
        // two wait for each other and never deadlock. (Order within the batch does not
        // matter: a time only ever moves forward.)
        let mut seen = seen.to_vec();
        seen.sort_by_key(|(id, _)| *id);
        self.write(|tx| {
            // Never back in time: a batch may hold a time older than one another wrote.
            let update = tx.prepare(
                "UPDATE devices SET last_seen = $2
                  WHERE id = $1 AND (last_seen IS NULL OR last_seen < $2)",
            )?;
            for (id, at) in &seen {
                tx.execute(&update, &[id, &ts(*at)])?;
            }
            Ok(())
        })
    }

    fn list_devices(&self) -> Result<Vec<Device>> {
        self.conn()?
            .query(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id"
                ),
                &[],
            )?
            .iter()
            .map(device_row)
            .collect()
    }

    fn revoke_device(&self, id: i64) -> Result<()> {
        let n = self.conn()?.execute(
            "UPDATE devices SET revoked = true, expired_at = NULL WHERE id = $1",
            &[&id],
        )?;
        if n == 0 {
            return Err(not_found(format!("device {id}")));
        }
        Ok(())
    }

    fn revoke_and_wipe(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let n = self.conn()?.execute(
            "UPDATE devices SET revoked = true, expired_at = NULL,
                    wipe_requested = coalesce(wipe_requested, $2)
              WHERE id = $1",
            &[&id, &ts(now)],
        )?;
        if n == 0 {
            return Err(not_found(format!("device {id}")));
        }
        Ok(())
    }

    fn device_to_wipe(&self, token_hash: &[u8; 32]) -> Result<Option<Device>> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices d JOIN users u ON u.id = d.user_id
                      WHERE d.token_hash = $1 AND d.revoked AND d.wipe_requested IS NOT NULL
                        AND d.wiped_at IS NULL"
                ),
                &[&&token_hash[..]],
            )?
            .map(|r| device_row(&r))
            .transpose()
    }

    fn expire_device(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.conn()?.execute(
            "UPDATE devices SET revoked = true, expired_at = $2 WHERE id = $1 AND NOT revoked",
            &[&id, &ts(at)],
        )?;
        Ok(())
    }

    fn token_owner(&self, token_hash: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT u.name FROM devices d JOIN users u ON u.id = d.user_id
                  WHERE d.token_hash = $1 AND (NOT d.revoked OR d.expired_at IS NOT NULL)",
                &[&&token_hash[..]],
            )?
            .map(|r| r.get(0)))
    }

    fn mark_wiped(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET wiped_at = $2
              WHERE id = $1 AND wipe_requested IS NOT NULL AND wiped_at IS NULL",
            &[&id, &ts(now)],
        )?;
        Ok(n == 1)
    }

    fn bind_actor(
        &self,
        actor: &[u8],
        user: &str,
        device: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            if let Some(d) = device {
                // One bind for a device at a time: two at once cannot both pass the limit.
                tx.query_opt(
                    "SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE",
                    &[&d],
                )?;
            }
            let mut bound = bound_user(tx, actor)?;
            if bound.is_none() {
                if let Some(d) = device {
                    let n: i64 = tx
                        .query_one("SELECT count(*) FROM actors WHERE device = $1", &[&d])?
                        .try_get(0)?;
                    if n as usize >= crate::limits::MAX_ACTORS_PER_DEVICE {
                        return Err(too_many_actors());
                    }
                }
                let n = tx.execute(
                    "INSERT INTO actors (actor, user_name, device, bound_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (actor) DO NOTHING",
                    &[&actor, &user, &device, &ts(now)],
                )?;
                if n == 1 {
                    return Ok(());
                }
                // Bound by another process between the look above and the insert, which
                // waited for it to commit: its binding stands, and this bind is answered
                // as if it had come second.
                bound = bound_user(tx, actor)?;
            }
            match bound {
                Some(u) if u == user => {
                    // The same user signing in again (after signing out, or on a new
                    // device after the old one was revoked) with the actor their store
                    // writes with: the binding moves to the device signing in, so the
                    // work it holds is taken. Only the user can do this; a live device
                    // keeps its binding.
                    if let Some(d) = device {
                        tx.execute(
                            "UPDATE actors SET device = $2
                              WHERE actor = $1 AND NOT api
                                AND (device IS NULL
                                     OR device IN (SELECT id FROM devices WHERE revoked))",
                            &[&actor, &d],
                        )?;
                    }
                    Ok(())
                }
                Some(_) => Err(bound_to_another(actor)),
                None => Err(StorageError::Commit(format!(
                    "actor {} was bound and unbound while it was being bound",
                    hex::encode(actor)
                ))),
            }
        })
    }

    fn actor_binding(&self, actor: &[u8]) -> Result<Option<ActorBinding>> {
        self.conn()?
            .query_opt(
                "SELECT a.user_name, a.device, a.bound_at,
                        coalesce(d.revoked, false) OR coalesce(u.disabled, false)
                   FROM actors a
                   LEFT JOIN devices d ON d.id = a.device
                   LEFT JOIN users u ON u.name = a.user_name
                  WHERE a.actor = $1",
                &[&actor],
            )?
            .map(|r| {
                Ok(ActorBinding {
                    actor: hex::encode(actor),
                    user: r.try_get(0)?,
                    device: r.try_get(1)?,
                    bound_at: time(&r, 2)?,
                    revoked: r.try_get(3)?,
                })
            })
            .transpose()
    }

    fn api_actor(
        &self,
        device: i64,
        user: &str,
        fresh: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        self.write(|tx| {
            if let Some(a) = api_actor_of(tx, device)? {
                return Ok(a);
            }
            let made = tx.execute(
                "INSERT INTO actors (actor, user_name, device, bound_at, api)
                 VALUES ($1, $2, $3, $4, true)
                 ON CONFLICT (device) WHERE api DO NOTHING",
                &[&fresh, &user, &device, &ts(now)],
            );
            match made {
                Ok(1) => Ok(fresh.to_vec()),
                // Another process made the device's first meanwhile: that one it is.
                Ok(_) => api_actor_of(tx, device)?.ok_or_else(|| {
                    StorageError::Commit(format!(
                        "the API's actor for device {device} was made and dropped meanwhile"
                    ))
                }),
                // `fresh` (made at random) is bound already.
                Err(e) if unique_violation(&e) => Err(StorageError::Exists(format!(
                    "actor {}",
                    hex::encode(fresh)
                ))),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn device_live(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM devices d JOIN users u ON u.id = d.user_id
                  WHERE d.id = $1 AND NOT d.revoked AND NOT u.disabled",
                &[&id],
            )?
            .is_some())
    }

    fn create_inspection(
        &self,
        rec: &InspectionRecord,
        docs: &[(Uuid, DocKind, &StoredDoc)],
    ) -> Result<()> {
        self.write(|tx| {
            let id = rec.id.to_string();
            // No conflict target: the id and the response document's id are both unique,
            // and either taken means the inspection exists.
            let n = tx.execute(
                "INSERT INTO inspections (id, trust, sites, checklist_id, checklist_version,
                    checklist_sha256, state, response_doc, shared_at, created_at, created_by,
                    review_doc, history_holds_comments)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT DO NOTHING",
                &[
                    &id,
                    &rec.trust,
                    &rec.sites,
                    &rec.checklist_id,
                    &rec.checklist_version,
                    &rec.checklist_sha256,
                    &state_name(rec.state),
                    &rec.response_doc.to_string(),
                    &rec.shared_at.map(ts),
                    &ts(rec.created_at),
                    &rec.created_by,
                    &rec.review_doc.to_string(),
                    &rec.history_holds_comments,
                ],
            )?;
            if n == 0 {
                return Err(StorageError::Exists(format!("inspection {}", rec.id)));
            }
            for (doc, kind, stored) in docs {
                tx.execute(
                    "INSERT INTO documents (doc_id, kind, inspection, snapshot, heads)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &doc.to_string(),
                        &kind.as_str(),
                        &id,
                        &stored.snapshot,
                        &stored.heads,
                    ],
                )?;
            }
            for user in &rec.assignees {
                let role = if rec.lead.as_deref() == Some(user.as_str()) {
                    "lead_inspector"
                } else {
                    "inspector"
                };
                tx.execute(
                    "INSERT INTO assignments (inspection, user_name, role) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&id, user, &role],
                )?;
            }
            Ok(())
        })
    }

    fn inspection(&self, id: Uuid) -> Result<Option<InspectionRecord>> {
        inspection_in(&mut *self.conn()?, id)
    }

    fn list_inspections(&self, q: &InspectionQuery) -> Result<Vec<InspectionRecord>> {
        self.conn()?
            .query(
                &format!(
                    "SELECT {INSPECTION_COLUMNS} FROM inspections i
                      WHERE ($1::text IS NULL OR i.trust = $1)
                        AND ($2::text IS NULL OR i.state = $2)
                        AND ($3::text IS NULL OR EXISTS
                             (SELECT 1 FROM assignments a WHERE a.inspection = i.id AND a.user_name = $3))
                        AND (NOT $4::boolean OR i.shared_at IS NOT NULL)
                        AND ($5::text IS NULL OR i.id > $5)
                      ORDER BY i.id LIMIT $6"
                ),
                &[
                    &q.trust,
                    &q.state.map(state_name),
                    &q.assignee,
                    &q.shared_only,
                    &q.after.map(|u| u.to_string()),
                    &limit(q.limit),
                ],
            )?
            .iter()
            .map(inspection_row)
            .collect()
    }

    fn assign(&self, inspection: Uuid, user_name: &str, role: TeamRole) -> Result<()> {
        self.write(|tx| {
            let id = inspection.to_string();
            // The team changes one assignment at a time: two new leads at once would
            // otherwise each demote the lead they saw, and leave two.
            if tx
                .query_opt(
                    "SELECT 1 FROM inspections WHERE id = $1 FOR NO KEY UPDATE",
                    &[&id],
                )?
                .is_none()
            {
                return Err(not_found(format!("inspection {inspection}")));
            }
            let role = match role {
                TeamRole::LeadInspector => {
                    tx.execute(
                        "UPDATE assignments SET role = 'inspector' WHERE inspection = $1",
                        &[&id],
                    )?;
                    "lead_inspector"
                }
                _ => "inspector",
            };
            tx.execute(
                "INSERT INTO assignments (inspection, user_name, role) VALUES ($1, $2, $3)
                 ON CONFLICT (inspection, user_name) DO UPDATE SET
                   role = CASE WHEN excluded.role = 'lead_inspector' THEN excluded.role
                               ELSE assignments.role END",
                &[&id, &user_name, &role],
            )?;
            tell(tx, 'i', &id)?;
            Ok(())
        })
    }

    fn share(&self, inspection: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let id = inspection.to_string();
            let n = tx.execute(
                "UPDATE inspections SET shared_at = coalesce(shared_at, $2) WHERE id = $1",
                &[&id, &ts(now)],
            )?;
            if n == 0 {
                return Err(not_found(format!("inspection {inspection}")));
            }
            tell(tx, 'i', &id)
        })
    }

    fn set_state(&self, inspection: Uuid, state: State) -> Result<()> {
        self.write(|tx| write_state(tx, inspection, state))
    }

    fn index_at(
        &self,
        inspection: Uuid,
        heads: &[u8],
        state: Option<State>,
        photos: Option<&[String]>,
    ) -> Result<bool> {
        self.write(|tx| {
            let key = inspection.to_string();
            // Held as an append holds it: no append commits between the check and the
            // writes.
            let stored: Vec<u8> = tx
                .query_opt(
                    "SELECT heads FROM documents WHERE doc_id = $1 FOR NO KEY UPDATE",
                    &[&key],
                )?
                .ok_or_else(|| not_found(format!("document {inspection}")))?
                .get(0);
            if stored != heads {
                return Ok(false);
            }
            if let Some(state) = state {
                write_state(tx, inspection, state)?;
            }
            if let Some(photos) = photos {
                write_photo_refs(tx, &key, photos)?;
            }
            Ok(true)
        })
    }

    fn doc_access(&self, doc: Uuid) -> Result<Option<DocAccess>> {
        // One statement, so one moment; the foreign key makes every document's
        // inspection exist.
        let row = self.conn()?.query_opt(
            &format!(
                "SELECT {INSPECTION_COLUMNS}, d.kind
                   FROM documents d JOIN inspections i ON i.id = d.inspection
                  WHERE d.doc_id = $1"
            ),
            &[&doc.to_string()],
        )?;
        let Some(r) = row else { return Ok(None) };
        let kind: &str = r.try_get(15)?;
        let kind = DocKind::parse(kind)
            .ok_or_else(|| StorageError::Corrupt(format!("document kind {kind:?}")))?;
        Ok(Some(DocAccess {
            doc,
            kind,
            inspection: inspection_row(&r)?,
        }))
    }

    fn load_doc(&self, doc: Uuid) -> Result<Option<StoredDoc>> {
        // One moment: the heads and the changes they cover.
        self.read(|tx| {
            let key = doc.to_string();
            let Some(r) = tx.query_opt(
                "SELECT snapshot, heads FROM documents WHERE doc_id = $1",
                &[&key],
            )?
            else {
                return Ok(None);
            };
            let mut out = StoredDoc::new(r.try_get(0)?, r.try_get(1)?);
            for r in tx.query(
                "SELECT seq, bytes, hashes FROM changes WHERE doc_id = $1 ORDER BY seq",
                &[&key],
            )? {
                out.change_seqs.push(r.try_get(0)?);
                out.changes.push(r.try_get(1)?);
                out.change_hashes.push(r.try_get(2)?);
            }
            Ok(Some(out))
        })
    }

    fn append_changes(&self, doc: Uuid, changes: &[u8], hashes: &[u8], heads: &[u8]) -> Result<()> {
        let job = Append {
            doc,
            changes: changes.to_vec(),
            hashes: hashes.to_vec(),
            heads: heads.to_vec(),
            after: None,
        };
        self.append_writer.submit(&self.appends, job, write_appends)
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
        self.append_writer.submit(&self.appends, job, write_appends)
    }

    fn compact(&self, doc: Uuid, snapshot: &[u8], heads: &[u8]) -> Result<()> {
        self.write(|tx| {
            let key = doc.to_string();
            // Locked first: an append committed between copying the changes and
            // deleting them would be in neither.
            if !lock_doc(tx, &key)? {
                return Err(not_found(format!("document {doc}")));
            }
            // Only over what the snapshot covers: if another process stored changes since
            // (the heads moved), this snapshot lacks them, and compaction waits for a
            // later turn; nothing is lost by waiting.
            let now: Vec<u8> = tx
                .query_one("SELECT heads FROM documents WHERE doc_id = $1", &[&key])?
                .try_get(0)?;
            if now != heads {
                return Ok(());
            }
            tx.execute("DELETE FROM compacted WHERE doc_id = $1", &[&key])?;
            tx.execute(
                "INSERT INTO compacted (doc_id, seq, bytes, hashes)
                 SELECT doc_id, seq, bytes, hashes FROM changes WHERE doc_id = $1",
                &[&key],
            )?;
            tx.execute("DELETE FROM changes WHERE doc_id = $1", &[&key])?;
            tx.execute(
                "UPDATE documents SET prev_snapshot = snapshot, snapshot = $2, heads = $3
                  WHERE doc_id = $1",
                &[&key, &snapshot, &heads],
            )?;
            Ok(())
        })
    }

    fn previous_doc(&self, doc: Uuid) -> Result<PreviousDoc> {
        self.read(|tx| {
            let key = doc.to_string();
            let snapshot: Option<Vec<u8>> = tx
                .query_opt(
                    "SELECT prev_snapshot FROM documents WHERE doc_id = $1",
                    &[&key],
                )?
                .map(|r| r.try_get(0))
                .transpose()?
                .flatten();
            let mut prev = PreviousDoc {
                snapshot,
                ..PreviousDoc::default()
            };
            for r in tx.query(
                "SELECT bytes, hashes FROM compacted WHERE doc_id = $1 ORDER BY seq",
                &[&key],
            )? {
                prev.changes.push(r.try_get(0)?);
                prev.change_hashes.push(r.try_get(1)?);
            }
            Ok(prev)
        })
    }

    fn write_rebuilt(&self, doc: Uuid, rebuilt: &Rebuilt, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let key = doc.to_string();
            // Locked first: what is set aside and deleted is what no append adds to
            // meanwhile.
            if !lock_doc(tx, &key)? {
                return Err(not_found(format!("document {doc}")));
            }
            // Only over exactly what the rebuild read: another process may have stored
            // changes since (then the rebuilt snapshot lacks them).
            let held = tx.query_one(
                "SELECT heads, (SELECT max(seq) FROM changes WHERE doc_id = $1)
                   FROM documents WHERE doc_id = $1",
                &[&key],
            )?;
            let (heads, last): (Vec<u8>, Option<i64>) = (held.try_get(0)?, held.try_get(1)?);
            if heads != rebuilt.read_heads || last != rebuilt.through_seq {
                return Err(StorageError::Stale(format!("document {doc}")));
            }
            for (kind, seq, bytes, reason) in &rebuilt.aside {
                tx.execute(
                    "INSERT INTO set_aside (doc_id, kind, seq, bytes, reason, at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&key, kind, seq, bytes, reason, &ts(now)],
                )?;
                // The hashes the row's changes had when they were taken (its bytes may
                // no longer say).
                let hashes: Option<Vec<u8>> = match seq {
                    Some(seq) => tx
                        .query_opt(
                            "SELECT hashes FROM changes WHERE doc_id = $1 AND seq = $2",
                            &[&key, seq],
                        )?
                        .map(|r| r.try_get(0))
                        .transpose()?
                        .flatten(),
                    None => None,
                };
                for h in hashes.iter().flat_map(|h| h.chunks(32)) {
                    tx.execute(
                        "INSERT INTO aside_changes (doc_id, hash) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&key, &h],
                    )?;
                }
            }
            if !rebuilt.aside.is_empty() {
                // A change the API made may be among those set aside, and peers may hold
                // it: the API's actors start afresh, so that no new change reuses its
                // sequence number (peers would refuse the document for good).
                tx.execute("UPDATE actors SET api = false WHERE api", &[])?;
            }
            // Everything that still loaded is inside the rebuilt snapshot.
            tx.execute("DELETE FROM changes WHERE doc_id = $1", &[&key])?;
            tx.execute(
                "UPDATE documents SET snapshot = $2, heads = $3 WHERE doc_id = $1",
                &[&key, &rebuilt.snapshot, &rebuilt.heads],
            )?;
            tell(tx, 'd', &key)
        })
    }

    fn set_aside(&self, doc: Uuid) -> Result<Vec<AsideRow>> {
        self.conn()?
            .query(
                "SELECT kind, seq, octet_length(bytes)::bigint, reason, at FROM set_aside
                  WHERE doc_id = $1 ORDER BY id",
                &[&doc.to_string()],
            )?
            .iter()
            .map(|r| {
                Ok(AsideRow {
                    kind: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    bytes: r.try_get::<_, i64>(2)? as usize,
                    reason: r.try_get(3)?,
                    at: time(r, 4)?,
                })
            })
            .collect()
    }

    fn was_set_aside(&self, doc: Uuid, hash: &[u8]) -> Result<bool> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM aside_changes WHERE doc_id = $1 AND hash = $2",
                &[&doc.to_string(), &hash],
            )?
            .is_some())
    }

    fn add_review_doc(
        &self,
        inspection: Uuid,
        review: Uuid,
        stored: &StoredDoc,
        inspection_changes: Option<(&[u8], &[u8])>,
        history_holds_comments: bool,
    ) -> Result<()> {
        self.write(|tx| {
            let id = inspection.to_string();
            tx.execute(
                "INSERT INTO documents (doc_id, kind, inspection, snapshot, heads)
                 VALUES ($1, 'review', $2, $3, $4)",
                &[&review.to_string(), &id, &stored.snapshot, &stored.heads],
            )?;
            if let Some((changes, heads)) = inspection_changes {
                // The heads first: that locks the document's row, so the change is
                // numbered after every other append to it (see `write_appends`).
                tx.execute(
                    "UPDATE documents SET heads = $2 WHERE doc_id = $1",
                    &[&id, &heads],
                )?;
                tx.execute(
                    "INSERT INTO changes (doc_id, seq, bytes)
                     VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE doc_id = $1), $2)",
                    &[&id, &changes],
                )?;
            }
            tx.execute(
                "UPDATE inspections SET review_doc = $2, history_holds_comments = $3 WHERE id = $1",
                &[&id, &review.to_string(), &history_holds_comments],
            )?;
            tell(tx, 'd', &id)?;
            tell(tx, 'i', &id)
        })
    }

    fn without_review_doc(&self) -> Result<Vec<Uuid>> {
        self.conn()?
            .query(
                "SELECT id FROM inspections WHERE review_doc IS NULL ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| id(r, 0, "inspection"))
            .collect()
    }

    fn change_rows(&self, doc: Uuid) -> Result<i64> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT count(*) FROM changes WHERE doc_id = $1",
                &[&doc.to_string()],
            )?
            .try_get(0)?)
    }

    fn doc_heads(&self, docs: &[Uuid]) -> Result<Vec<(Uuid, Vec<u8>)>> {
        let keys: Vec<String> = docs.iter().map(Uuid::to_string).collect();
        let rows = self.conn()?.query(
            "SELECT doc_id, heads FROM documents WHERE doc_id = ANY($1)",
            &[&keys],
        )?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                let id = id
                    .parse()
                    .map_err(|e| StorageError::Corrupt(format!("document id {id}: {e}")))?;
                Ok((id, r.try_get(1)?))
            })
            .collect()
    }

    fn sync_state(&self, doc: Uuid, peer: &str) -> Result<Option<Vec<u8>>> {
        self.conn()?
            .query_opt(
                "SELECT state FROM sync_states WHERE doc_id = $1 AND peer = $2",
                &[&doc.to_string(), &peer],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn put_sync_states(&self, states: &[(Uuid, &str, &[u8])]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        // In key order, so that two batches at once cannot deadlock; a stable sort keeps
        // the last of a key's states last, and it is the one that stays.
        let mut states = states.to_vec();
        states.sort_by_key(|(doc, peer, _)| (*doc, *peer));
        self.write(|tx| {
            let put = tx.prepare(
                "INSERT INTO sync_states (doc_id, peer, state) VALUES ($1, $2, $3)
                 ON CONFLICT (doc_id, peer) DO UPDATE SET state = excluded.state",
            )?;
            for (doc, peer, state) in &states {
                tx.execute(&put, &[&doc.to_string(), peer, state])?;
            }
            Ok(())
        })
    }

    fn reset_sync_state(&self, doc: Uuid, peer: &str) -> Result<()> {
        self.conn()?.execute(
            "DELETE FROM sync_states WHERE doc_id = $1 AND peer = $2",
            &[&doc.to_string(), &peer],
        )?;
        Ok(())
    }

    fn set_photo_refs(&self, doc: Uuid, hashes: &[String]) -> Result<()> {
        self.write(|tx| {
            let key = doc.to_string();
            // One replacement at a time: two at once would otherwise leave both lists.
            // (No document: nothing to lock, and an insert fails on its foreign key, as
            // with SQLite.)
            lock_doc(tx, &key)?;
            write_photo_refs(tx, &key, hashes)
        })
    }

    fn photo_docs(&self, sha256: &str) -> Result<Vec<Uuid>> {
        // A document counts through an earned reference: one earned when it was made,
        // or by an author who has since uploaded the photo whole. (Documents whose
        // references were never recorded are the server's own, or older than the record.)
        self.conn()?
            .query(
                "SELECT r.doc_id FROM photo_refs r
                  WHERE r.sha256 = $1
                    AND (NOT EXISTS (SELECT 1 FROM photo_claims c
                                      WHERE c.doc_id = r.doc_id AND c.sha256 = r.sha256)
                         OR EXISTS (SELECT 1 FROM photo_claims c
                                     WHERE c.doc_id = r.doc_id AND c.sha256 = r.sha256
                                       AND (c.earned OR c.user_name IN
                                            (SELECT user_name FROM blob_uploaders
                                              WHERE sha256 = r.sha256))))
                  ORDER BY r.doc_id",
                &[&sha256],
            )?
            .iter()
            .map(|r| id(r, 0, "document"))
            .collect()
    }

    fn add_photo_claims(&self, doc: Uuid, claims: &[PhotoClaim]) -> Result<()> {
        // In key order, so that two at once cannot deadlock (the outcome does not depend
        // on the order: an earned claim stays earned).
        let mut claims: Vec<&PhotoClaim> = claims.iter().collect();
        claims.sort_by(|a, b| (&a.sha256, &a.user).cmp(&(&b.sha256, &b.user)));
        self.write(|tx| {
            let key = doc.to_string();
            let upsert = tx.prepare(
                "INSERT INTO photo_claims (doc_id, sha256, user_name, earned) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (doc_id, sha256, user_name)
                 DO UPDATE SET earned = photo_claims.earned OR excluded.earned",
            )?;
            for c in claims {
                tx.execute(&upsert, &[&key, &c.sha256, &c.user, &c.earned])?;
            }
            Ok(())
        })
    }

    fn blob_status(&self, sha256: &str) -> Result<Option<BlobStatus>> {
        self.conn()?
            .query_opt(
                "SELECT CASE WHEN complete THEN octet_length(bytes)::bigint ELSE received END,
                        complete, mime, started_by
                   FROM blobs WHERE sha256 = $1",
                &[&sha256],
            )?
            .map(|r| {
                Ok(BlobStatus {
                    sha256: sha256.to_owned(),
                    received: r.try_get::<_, i64>(0)? as u64,
                    complete: r.try_get(1)?,
                    mime: r.try_get(2)?,
                    started_by: r.try_get(3)?,
                })
            })
            .transpose()
    }

    fn append_blob(&self, sha256: &str, offset: u64, bytes: &[u8], by: &str) -> Result<u64> {
        self.write(|tx| {
            let progress = match upload_progress(tx, sha256)? {
                Some(p) => p,
                None => {
                    // A user's uploads start one at a time, so that their count holds.
                    tx.execute(
                        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                        &[&UPLOADS_LOCK, &by],
                    )?;
                    let started = tx.execute(
                        "INSERT INTO blobs (sha256, bytes, received, started_by)
                         VALUES ($1, '', 0, $2) ON CONFLICT (sha256) DO NOTHING",
                        &[&sha256, &by],
                    )?;
                    if started == 1 {
                        let others: i64 = tx
                            .query_one(
                                "SELECT count(*) - 1 FROM blobs WHERE NOT complete AND started_by = $1",
                                &[&by],
                            )?
                            .try_get(0)?;
                        if others >= crate::limits::MAX_PARTIAL_UPLOADS_PER_USER {
                            return Err(too_many_uploads(by, others));
                        }
                        (0, false)
                    } else {
                        // Started by another request meanwhile (the insert waited for it
                        // to commit): this continues from where that one left it.
                        upload_progress(tx, sha256)?.ok_or_else(|| {
                            StorageError::Commit(format!(
                                "the upload of {sha256} was started and dropped meanwhile"
                            ))
                        })?
                    }
                }
            };
            let received = match progress {
                (_, true) => return Err(StorageError::Exists(format!("photo {sha256}"))),
                (len, false) => len as u64,
            };
            if offset != received {
                return Err(wrong_offset(sha256, received, offset));
            }
            // Appended as a row of its own: what came before is not rewritten.
            tx.execute(
                "INSERT INTO blob_chunks (sha256, at_byte, bytes) VALUES ($1, $2, $3)",
                &[&sha256, &(offset as i64), &bytes],
            )?;
            let now = received + bytes.len() as u64;
            tx.execute(
                "UPDATE blobs SET received = $2, touched_at = $3 WHERE sha256 = $1",
                &[&sha256, &(now as i64), &ts(Utc::now())],
            )?;
            Ok(now)
        })
    }

    fn partial_blob(&self, sha256: &str) -> Result<Vec<u8>> {
        // One moment: the count received and the chunks that make it.
        self.read(|tx| {
            let received: i64 = tx
                .query_opt(
                    "SELECT received FROM blobs WHERE sha256 = $1 AND NOT complete",
                    &[&sha256],
                )?
                .ok_or_else(|| not_found(format!("photo {sha256}")))?
                .try_get(0)?;
            let mut bytes = Vec::with_capacity(received.max(0) as usize);
            // Row by row: a photo's chunks are not all held twice.
            let mut rows = tx.query_raw(
                "SELECT at_byte, bytes FROM blob_chunks WHERE sha256 = $1 ORDER BY at_byte",
                [&sha256],
            )?;
            while let Some(r) = rows.next()? {
                let at: i64 = r.try_get(0)?;
                if at as usize != bytes.len() {
                    return Err(StorageError::Corrupt(format!(
                        "photo {sha256}: a chunk at byte {at} follows {} bytes",
                        bytes.len()
                    )));
                }
                bytes.extend_from_slice(r.try_get::<_, &[u8]>(1)?);
            }
            if bytes.len() as i64 != received {
                return Err(StorageError::Corrupt(format!(
                    "photo {sha256}: {} bytes in its chunks, {received} received",
                    bytes.len()
                )));
            }
            Ok(bytes)
        })
    }

    fn prune_partial_blobs(&self, untouched_since: DateTime<Utc>) -> Result<u64> {
        self.write(|tx| {
            // The uploads first: the delete locks each, and skips one that an append
            // touched while it waited; then the chunks of those it took.
            let gone: Vec<String> = tx
                .query(
                    "DELETE FROM blobs
                      WHERE NOT complete AND (touched_at IS NULL OR touched_at < $1)
                      RETURNING sha256",
                    &[&ts(untouched_since)],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            tx.execute("DELETE FROM blob_chunks WHERE sha256 = ANY($1)", &[&gone])?;
            Ok(gone.len() as u64)
        })
    }

    fn complete_blob(&self, sha256: &str, bytes: &[u8], mime: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE blobs SET bytes = $2, mime = $3, complete = true, received = $4
                  WHERE sha256 = $1",
                &[&sha256, &bytes, &mime, &(bytes.len() as i64)],
            )?;
            if n == 0 {
                return Err(not_found(format!("photo {sha256}")));
            }
            tx.execute("DELETE FROM blob_chunks WHERE sha256 = $1", &[&sha256])?;
            Ok(())
        })
    }

    fn discard_blob(&self, sha256: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM blobs WHERE sha256 = $1 AND NOT complete",
                &[&sha256],
            )?;
            if n > 0 {
                tx.execute("DELETE FROM blob_chunks WHERE sha256 = $1", &[&sha256])?;
            }
            Ok(())
        })
    }

    fn blob(&self, sha256: &str) -> Result<Option<(Vec<u8>, String)>> {
        self.conn()?
            .query_opt(
                "SELECT bytes, mime FROM blobs WHERE sha256 = $1 AND complete",
                &[&sha256],
            )?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn add_blob_uploader(&self, sha256: &str, user_name: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO blob_uploaders (sha256, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha256, &user_name],
        )?;
        Ok(())
    }

    fn blob_uploaded_by(&self, sha256: &str, user_name: &str) -> Result<bool> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM blob_uploaders WHERE sha256 = $1 AND user_name = $2",
                &[&sha256, &user_name],
            )?
            .is_some())
    }

    fn add_report(&self, m: &ReportMeta, pdf: &[u8]) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO reports (sha256, inspection, audience, made_by, made_at, size, pages, pdf)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &m.sha256,
                &m.inspection.to_string(),
                &m.audience,
                &m.made_by,
                &ts(m.made_at),
                &(m.size as i64),
                &(m.pages as i32),
                &pdf,
            ],
        )?;
        Ok(())
    }

    fn reports(
        &self,
        inspection: Uuid,
        audience: Option<&str>,
        n: usize,
    ) -> Result<Vec<ReportMeta>> {
        self.conn()?
            .query(
                "SELECT sha256, inspection, audience, made_by, made_at, size, pages FROM reports
                 WHERE inspection = $1 AND ($2::TEXT IS NULL OR audience = $2::TEXT)
                 ORDER BY made_at DESC, sha256 LIMIT $3",
                &[&inspection.to_string(), &audience, &limit(n)],
            )?
            .iter()
            .map(report_row)
            .collect()
    }

    fn report(&self, sha256: &str) -> Result<Option<ReportMeta>> {
        self.conn()?
            .query_opt(
                "SELECT sha256, inspection, audience, made_by, made_at, size, pages
                 FROM reports WHERE sha256 = $1",
                &[&sha256],
            )?
            .map(|r| report_row(&r))
            .transpose()
    }

    fn report_pdf(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.conn()?
            .query_opt("SELECT pdf FROM reports WHERE sha256 = $1", &[&sha256])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn add_app_update(&self, m: &AppUpdateMeta, package: &[u8]) -> Result<()> {
        let n = self.conn()?.execute(
            "INSERT INTO app_updates (platform, version, sha256, size, signature, notes,
                                      published_by, published_at, package)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            &[
                &m.platform,
                &m.version,
                &m.sha256,
                &(m.size as i64),
                &m.signature,
                &m.notes,
                &m.published_by,
                &ts(m.published_at),
                &package,
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
        self.conn()?
            .query(
                "SELECT platform, version, sha256, size, signature, notes, published_by,
                        published_at
                 FROM app_updates WHERE $1::TEXT IS NULL OR platform = $1::TEXT",
                &[&platform],
            )?
            .iter()
            .map(|r| {
                Ok(AppUpdateMeta {
                    platform: r.try_get(0)?,
                    version: r.try_get(1)?,
                    sha256: r.try_get(2)?,
                    size: r.try_get::<_, i64>(3)? as u64,
                    signature: r.try_get(4)?,
                    notes: r.try_get(5)?,
                    published_by: r.try_get(6)?,
                    published_at: time(r, 7)?,
                })
            })
            .collect()
    }

    fn app_package(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.conn()?
            .query_opt(
                "SELECT package FROM app_updates WHERE sha256 = $1 LIMIT 1",
                &[&sha256],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn remove_app_update(&self, platform: &str, version: &str) -> Result<bool> {
        let n = self.conn()?.execute(
            "DELETE FROM app_updates WHERE platform = $1 AND version = $2",
            &[&platform, &version],
        )?;
        Ok(n > 0)
    }

    fn publish_checklist(&self, c: &PublishedChecklist) -> Result<()> {
        let n = self.conn()?.execute(
            "INSERT INTO checklists (id, version, sha256, files) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[
                &c.id,
                &c.version,
                &c.sha256,
                &serde_json::to_string(&c.files).expect("files serialise"),
            ],
        )?;
        if n == 0 {
            return Err(StorageError::Exists(format!(
                "checklist {}@{}",
                c.id, c.version
            )));
        }
        Ok(())
    }

    fn add_action(&self, a: &Action) -> Result<()> {
        let n = self.conn()?.execute(
            "INSERT INTO actions (id, trust, inspection, status, priority, due, step_count,
                                  steps, raised_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
            &[
                &a.id.to_string(),
                &a.trust,
                &a.inspection.to_string(),
                &a.status.as_str(),
                &a.priority.as_str(),
                &a.due.to_string(),
                &(a.steps.len() as i32),
                &action_steps_json(a),
                &ts(a.raised_at),
            ],
        )?;
        if n == 0 {
            return Err(StorageError::Exists(format!("action {}", a.id)));
        }
        Ok(())
    }

    fn add_action_step(&self, a: &Action) -> Result<()> {
        let last = a.steps.last().expect("an action has steps");
        let id = a.id.to_string();
        let kept = self.write(|tx| {
            let n = tx.execute(
                "UPDATE actions SET status = $2, step_count = $3, steps = $4, updated_at = $5
                 WHERE id = $1 AND step_count = $3::INTEGER - 1",
                &[
                    &id,
                    &a.status.as_str(),
                    &(a.steps.len() as i32),
                    &action_steps_json(a),
                    &ts(last.at),
                ],
            )?;
            if n == 1
                && let Step::Progress(p) = &last.step
            {
                for sha in &p.evidence {
                    tx.execute(
                        "INSERT INTO action_evidence (sha256, action) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[sha, &id],
                    )?;
                }
            }
            Ok(n == 1)
        })?;
        if kept {
            return Ok(());
        }
        let exists: bool = self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM actions WHERE id = $1)",
                &[&id],
            )?
            .get(0);
        Err(if exists {
            StorageError::Stale(format!("action {}: another step was kept first", a.id))
        } else {
            StorageError::NotFound(format!("action {}", a.id))
        })
    }

    fn action(&self, id: Uuid) -> Result<Option<Action>> {
        self.conn()?
            .query_opt(
                "SELECT id, trust, inspection, steps FROM actions WHERE id = $1",
                &[&id.to_string()],
            )?
            .map(|r| action_from_row(r.get(0), r.get(1), r.get(2), r.get(3)))
            .transpose()
    }

    fn actions(&self, trust: Option<&str>) -> Result<Vec<Action>> {
        self.conn()?
            .query(
                "SELECT id, trust, inspection, steps FROM actions
                 WHERE $1::TEXT IS NULL OR trust = $1::TEXT ORDER BY raised_at, id",
                &[&trust],
            )?
            .iter()
            .map(|r| action_from_row(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    fn actions_naming(&self, sha256: &str) -> Result<Vec<Action>> {
        if !wardcheck_core::seal::is_hash(sha256) {
            return Ok(Vec::new());
        }
        let rows = self.conn()?.query(
            "SELECT a.id, a.trust, a.inspection, a.steps
               FROM action_evidence e JOIN actions a ON a.id = e.action
              WHERE e.sha256 = $1 ORDER BY a.raised_at, a.id",
            &[&sha256],
        )?;
        let mut naming = Vec::new();
        for r in &rows {
            let a = action_from_row(r.get(0), r.get(1), r.get(2), r.get(3))?;
            if a.evidence().any(|e| e == sha256) {
                naming.push(a);
            }
        }
        Ok(naming)
    }

    fn checklist(&self, id: &str, version: &str) -> Result<Option<PublishedChecklist>> {
        self.conn()?
            .query_opt(
                "SELECT id, version, sha256, files FROM checklists WHERE id = $1 AND version = $2",
                &[&id, &version],
            )?
            .map(|r| checklist_row(&r))
            .transpose()
    }

    fn checklists(&self) -> Result<Vec<PublishedChecklist>> {
        self.conn()?
            .query(
                "SELECT id, version, sha256, files FROM checklists ORDER BY id, version",
                &[],
            )?
            .iter()
            .map(checklist_row)
            .collect()
    }

    fn audit(&self, e: &AuditEvent) -> Result<()> {
        self.audit_writer
            .submit(&self.audits, e.clone(), |client, events| {
                write_audits(client, events).map(|()| events.iter().map(|_| Ok(())).collect())
            })
    }

    fn audit_batch(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        write_audits(&mut conn, events)
    }

    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        self.conn()?
            .query(
                "SELECT at, actor, device, action, target, origin, outcome, detail FROM
                   (SELECT * FROM audit ORDER BY seq DESC LIMIT $1) AS last ORDER BY seq",
                &[&limit(n)],
            )?
            .iter()
            .map(|r| audit_event(r, 0))
            .collect()
    }

    fn audit_about(&self, target: &str, actions: &[&str]) -> Result<Vec<(i64, AuditEvent)>> {
        self.conn()?
            .query(
                "SELECT seq, at, actor, device, action, target, origin, outcome, detail FROM audit
                  WHERE target = $1 AND action = ANY($2) ORDER BY seq",
                &[&target, &actions],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, audit_event(r, 1)?)))
            .collect()
    }

    fn audit_search(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>> {
        let from = q.from.map(ts);
        let to = q.to.map(ts);
        let mut sql = String::from(
            "SELECT seq, at, actor, device, action, target, origin, outcome, detail FROM audit
             WHERE ($1::TEXT IS NULL OR actor = $1::TEXT) AND ($2::TEXT IS NULL OR action = $2::TEXT)
               AND ($3::TEXT IS NULL OR at >= $3::TEXT) AND ($4::TEXT IS NULL OR at < $4::TEXT)
               AND ($5::BIGINT IS NULL OR seq < $5::BIGINT)",
        );
        let mut params: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
            vec![&q.actor, &q.action, &from, &to, &q.before];
        if !q.targets.is_empty() {
            // One parameter, an array, however many targets.
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM unnest($6::TEXT[]) AS t(v) WHERE strpos(target, t.v) > 0)",
            );
            params.push(&q.targets);
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", limit(q.limit)));
        self.conn()?
            .query(&sql, &params)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, audit_event(r, 1)?)))
            .collect()
    }

    fn audit_verify(&self) -> Result<AuditVerdict> {
        // One statement, so one moment; its rows are read as they come, not all held.
        let mut conn = self.conn()?;
        let rows = conn
            .query_raw(AuditRow::SELECT, std::iter::empty::<&str>())?
            .iterator()
            .map(|r| r.map_err(StorageError::from).and_then(|r| audit_row(&r)));
        audit_chain::verify(rows)
    }

    fn shares_logins(&self) -> bool {
        true
    }

    fn shares_feeds(&self) -> bool {
        true
    }

    fn put_feed(&self, feed: &Feed, file: &std::path::Path) -> Result<i64> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        let io = |e: std::io::Error| StorageError::Io(format!("reading the feed file: {e}"));
        let as_of = feed.as_of.to_string();
        let same = "SELECT id FROM telemetry_feeds WHERE kind = $1 AND as_of = $2 AND sha256 = $3";
        // Already kept: answered without a lock or a read of the file.
        if let Some(row) = self
            .conn()?
            .query_opt(same, &[&feed.kind, &as_of, &feed.sha256])?
        {
            return Ok(row.get(0));
        }
        let mut reader = std::fs::File::open(file).map_err(io)?;
        self.write(|tx| {
            // One file for a kind and day at a time; other kinds and days go ahead. A
            // wait longer than a large upload takes is an error, not a hang.
            tx.batch_execute("SET LOCAL lock_timeout = '300s'")?;
            let lock = i32::from_ne_bytes(
                Sha256::digest(format!("{} {as_of}", feed.kind).as_bytes())[..4]
                    .try_into()
                    .expect("four bytes"),
            );
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&FEEDS_CLASS, &lock],
            )?;
            if let Some(row) = tx.query_opt(same, &[&feed.kind, &as_of, &feed.sha256])? {
                return Ok(row.get(0));
            }
            tx.execute(
                "DELETE FROM telemetry_feeds WHERE kind = $1 AND as_of = $2",
                &[&feed.kind, &as_of],
            )?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO telemetry_feeds
                         (kind, format, as_of, sha256, bytes, imported_by, imported_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &feed.kind,
                        &feed.format,
                        &as_of,
                        &feed.sha256,
                        &i64::try_from(feed.bytes).unwrap_or(i64::MAX),
                        &feed.by,
                        &ts(feed.at),
                    ],
                )?
                .get(0);
            let insert = tx
                .prepare("INSERT INTO telemetry_feed_chunks (feed, n, data) VALUES ($1, $2, $3)")?;
            let (mut hash, mut total, mut n) = (Sha256::new(), 0u64, 0i32);
            let mut chunk = vec![0u8; FEED_CHUNK];
            loop {
                let mut filled = 0;
                while filled < chunk.len() {
                    match reader.read(&mut chunk[filled..]).map_err(io)? {
                        0 => break,
                        k => filled += k,
                    }
                }
                if filled == 0 {
                    break;
                }
                hash.update(&chunk[..filled]);
                total += filled as u64;
                tx.execute(&insert, &[&id, &n, &&chunk[..filled]])?;
                n += 1;
            }
            // The file must be the one the feed names: nothing else is kept under it.
            if hex::encode(hash.finalize()) != feed.sha256 || total != feed.bytes {
                return Err(StorageError::Corrupt(format!(
                    "the {} feed of {as_of} changed while it was kept: not kept",
                    feed.kind
                )));
            }
            // A day's assessment was merged into the machine export this replaces: it
            // goes with it, as it does from the telemetry of the process that imported
            // this, and is imported again (then kept again) to be merged into this one.
            if feed.kind == "endpoints" {
                tx.execute(
                    "DELETE FROM telemetry_feeds WHERE kind = 'secure-config' AND as_of = $1",
                    &[&as_of],
                )?;
            }
            // Of every kind but trusts, the newest days only.
            if feed.kind != "trusts" {
                tx.execute(
                    "DELETE FROM telemetry_feeds WHERE kind = $1 AND as_of NOT IN
                       (SELECT as_of FROM telemetry_feeds WHERE kind = $1
                         ORDER BY as_of DESC LIMIT $2)",
                    &[&feed.kind, &FEED_DAYS_KEPT],
                )?;
            }
            tell(tx, 't', &id.to_string())?;
            Ok(id)
        })
    }

    fn feeds(&self) -> Result<Vec<Feed>> {
        self.conn()?
            .query(
                "SELECT id, kind, format, as_of, sha256, bytes, imported_by, imported_at
                   FROM telemetry_feeds ORDER BY kind, as_of",
                &[],
            )?
            .iter()
            .map(feed_row)
            .collect()
    }

    fn fetch_feed(&self, id: i64, to: &std::path::Path) -> Result<()> {
        use std::io::Write;
        let io = |e: std::io::Error| StorageError::Io(format!("writing the feed file: {e}"));
        // One snapshot of the database: a feed replaced meanwhile is read whole or not
        // at all.
        self.read(|tx| {
            let bytes: i64 = tx
                .query_opt("SELECT bytes FROM telemetry_feeds WHERE id = $1", &[&id])?
                .ok_or_else(|| not_found(format!("feed {id}")))?
                .get(0);
            let mut out = std::io::BufWriter::new(std::fs::File::create(to).map_err(io)?);
            let mut rows = tx.query_raw(
                "SELECT data FROM telemetry_feed_chunks WHERE feed = $1 ORDER BY n",
                [id],
            )?;
            let mut total = 0i64;
            while let Some(row) = rows.next()? {
                let data: &[u8] = row.get(0);
                total += data.len() as i64;
                out.write_all(data).map_err(io)?;
            }
            out.flush().map_err(io)?;
            if total != bytes {
                return Err(StorageError::Corrupt(format!(
                    "feed {id} holds {total} bytes of its {bytes}"
                )));
            }
            Ok(())
        })
    }

    fn begin_login(
        &self,
        keys: &[crate::logins::LoginKey],
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<std::result::Result<Vec<i64>, u64>> {
        let now_ms = now.timestamp_millis();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(window_ms);
        let ago = |at: i64| Duration::from_millis(u64::try_from(now_ms - at).unwrap_or(0));
        self.write(|tx| {
            let mut sorted: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
            sorted.sort_unstable();
            for key in &sorted {
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&LOGIN_LOCK, key],
                )?;
            }
            // What has left the window is forgotten (every key's: none is kept longer).
            tx.execute("DELETE FROM login_failures WHERE at < $1", &[&cutoff])?;
            let mut wait: Option<Duration> = None;
            for k in keys {
                let row = tx.query_one(
                    "SELECT count(*), min(at), max(at) FROM login_failures WHERE key = $1",
                    &[&k.key],
                )?;
                let n: i64 = row.try_get(0)?;
                let (oldest, latest): (Option<i64>, Option<i64>) =
                    (row.try_get(1)?, row.try_get(2)?);
                if let (Some(oldest), Some(latest)) = (oldest, latest)
                    && let Some(w) =
                        k.holds_back(usize::try_from(n).unwrap_or(0), ago(oldest), ago(latest))
                {
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
            if let Some(w) = wait {
                return Ok(Err(crate::logins::whole_seconds(w)));
            }
            let mut ids = Vec::with_capacity(keys.len());
            for k in keys {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO login_failures (key, at) VALUES ($1, $2) RETURNING id",
                        &[&k.key, &now_ms],
                    )?
                    .try_get(0)?;
                ids.push(id);
            }
            Ok(Ok(ids))
        })
    }

    fn login_succeeded(&self, forget: &[String], attempt: &[i64]) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM login_failures WHERE key = ANY($1)", &[&forget])?;
            tx.execute("DELETE FROM login_failures WHERE id = ANY($1)", &[&attempt])?;
            Ok(())
        })
    }

    fn login_failed(&self, attempt: &[i64], now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE login_failures SET at = $2 WHERE id = ANY($1)",
                &[&attempt, &now.timestamp_millis()],
            )?;
            Ok(())
        })
    }

    fn login_known(&self, user: &str, addr: &str, since: DateTime<Utc>) -> Result<bool> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT 1 FROM login_addresses WHERE user_name = $1 AND addr = $2 AND last_ok >= $3",
                &[&user, &addr, &ts(since)],
            )?
            .is_some())
    }

    fn remember_login(&self, user: &str, addr: &str, at: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO login_addresses (user_name, addr, last_ok) VALUES ($1, $2, $3)
                 ON CONFLICT (user_name, addr) DO UPDATE SET last_ok = GREATEST(login_addresses.last_ok, $3)",
                &[&user, &addr, &ts(at)],
            )?;
            Ok(())
        })
    }

    fn changes_elsewhere(&self) -> Option<tokio::sync::mpsc::Receiver<Elsewhere>> {
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_QUEUE);
        let config = self.config.clone();
        let started = std::thread::Builder::new()
            .name("wardcheck-pg-listen".into())
            .spawn(move || listen(config, tx));
        match started {
            Ok(_) => Some(rx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start listening for other processes' changes");
                None
            }
        }
    }
}

/// One row of [`AuditRow::SELECT`], with its stored link.
fn audit_row(r: &Row) -> Result<(AuditRow, Option<Vec<u8>>)> {
    Ok((
        AuditRow {
            seq: r.try_get(0)?,
            at: r.try_get(1)?,
            actor: r.try_get(2)?,
            device: r.try_get(3)?,
            action: r.try_get(4)?,
            target: r.try_get(5)?,
            origin: r.try_get(6)?,
            outcome: r.try_get(7)?,
            detail: r.try_get(8)?,
        },
        r.try_get(9)?,
    ))
}

/// What only this backend has: several processes on one database (here, several
/// storages on it at once), its migrations, lost connections, and being let go of on an
/// async thread. What both backends answer alike is checked through the trait by
/// `tests/tests/storage_backends.rs`.
///
/// They need PostgreSQL, and say how to get one when there is none: `scripts/test` starts
/// a throwaway cluster and sets `WARDCHECK_TEST_PG`; by hand, `scripts/pg-cluster start
/// $d/pg` (README, "The server"), then `WARDCHECK_TEST_PG=$d/pg cargo test -p
/// wardcheck-server --lib storage::postgres`. Each test makes a database of its own in
/// that cluster (as `tests/src/pg.rs` does).
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn notifications_are_read_strictly_and_this_process_skips_its_own() {
        let id = Uuid::new_v4();
        assert_eq!(
            heard(&format!("other d {id}")),
            Some(Elsewhere::Document(id))
        );
        assert_eq!(
            heard(&format!("other i {id}")),
            Some(Elsewhere::Inspection(id))
        );
        assert_eq!(heard(&format!("{} d {id}", origin())), None, "its own");
        assert_eq!(heard(&format!("other q {id}")), None);
        assert_eq!(heard("other d not-an-id"), None);
        assert_eq!(heard(&format!("other d {id} more")), None);
        assert_eq!(heard(""), None);
    }

    #[test]
    fn the_listener_never_waits_and_says_what_it_dropped() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut missed = false;
        assert!(pass(&tx, Some(Elsewhere::Document(a)), &mut missed));
        // Full: dropped, not waited for, and remembered.
        assert!(pass(&tx, Some(Elsewhere::Document(b)), &mut missed));
        assert!(missed);
        assert_eq!(rx.try_recv().unwrap(), Elsewhere::Document(a));
        // Room again: the server hears that it missed something.
        assert!(pass(&tx, None, &mut missed));
        assert!(!missed);
        assert_eq!(rx.try_recv().unwrap(), Elsewhere::Missed);
        drop(rx);
        assert!(
            !pass(&tx, Some(Elsewhere::Document(a)), &mut missed),
            "no one listens"
        );
    }

    /// The cluster's socket folder.
    fn cluster() -> String {
        std::env::var("WARDCHECK_TEST_PG").unwrap_or_else(|_| {
            panic!(
                "set WARDCHECK_TEST_PG to a cluster's socket folder \
                 (scripts/pg-cluster start DIR prints it as host=DIR)"
            )
        })
    }

    /// An empty database of its own, and its connection string.
    fn fresh_database() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "unit_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = format!("host={} user=wardcheck dbname=wardcheck", cluster());
        Client::connect(&admin, NoTls)
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        format!("host={} user=wardcheck dbname={name}", cluster())
    }

    /// One server process's storage on `url`.
    struct Process {
        storage: Arc<PgStorage>,
    }

    fn process(url: &str) -> Process {
        Process {
            storage: Arc::new(PgStorage::open(url).unwrap()),
        }
    }

    fn sql(url: &str, sql: &str) {
        Client::connect(url, NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap();
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
    }

    fn event(actor: &str, target: &str) -> AuditEvent {
        AuditEvent {
            at: Utc::now(),
            actor: actor.into(),
            device: Some(7),
            action: "doc_read".into(),
            target: target.into(),
            from: "127.0.0.1".into(),
            outcome: "ok".into(),
            detail: None,
        }
    }

    /// Stores an inspection with its three documents; returns it.
    fn inspection(s: &dyn Storage, assignees: &[&str]) -> InspectionRecord {
        let rec = InspectionRecord {
            id: Uuid::new_v4(),
            trust: "RJ1".into(),
            sites: vec!["Main site".into(), "Annexe".into()],
            checklist_id: "cqc-onsite-cyber".into(),
            checklist_version: "2026.1".into(),
            checklist_sha256: "ab".repeat(32),
            state: State::Draft,
            response_doc: Uuid::new_v4(),
            review_doc: Uuid::new_v4(),
            shared_at: None,
            created_at: at(0),
            created_by: "admin".into(),
            assignees: assignees.iter().map(|a| a.to_string()).collect(),
            lead: assignees.first().map(|a| a.to_string()),
            history_holds_comments: false,
        };
        let doc = StoredDoc::new(b"snapshot".to_vec(), vec![1; 32]);
        s.create_inspection(
            &rec,
            &[
                (rec.id, DocKind::Inspection, &doc),
                (rec.response_doc, DocKind::TrustResponse, &doc),
                (rec.review_doc, DocKind::Review, &doc),
            ],
        )
        .unwrap();
        rec
    }

    /// Runs `f(i, storage)` on `n` threads at once, the threads taking turns among the
    /// processes; returns their answers in thread order.
    fn at_once<T: Send>(
        processes: &[&Process],
        n: usize,
        f: impl Fn(usize, &PgStorage) -> T + Sync,
    ) -> Vec<T> {
        let barrier = std::sync::Barrier::new(n);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let storage = processes[i % processes.len()].storage.clone();
                    let (f, barrier) = (&f, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        f(i, &storage)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn one_process_round_trips_what_it_stores() {
        let p = process(&fresh_database());
        let s = &*p.storage;

        let ann = s
            .add_user("ann", "Ann", &Role::TrustLead("RJ1".into()), "$argon2id$x")
            .unwrap();
        assert!(matches!(
            s.add_user("ann", "Ann again", &Role::Admin, "x"),
            Err(StorageError::Exists(_))
        ));
        let found = s.user_by_name("ann").unwrap().unwrap();
        assert_eq!((found.id, found.role), (ann, Role::TrustLead("RJ1".into())));

        let tablet = s.add_device(ann, "tablet", &[1; 32], at(1)).unwrap();
        let (d, u) = s.device_by_token(&[1; 32]).unwrap().unwrap();
        assert_eq!(
            (d.id, d.created_at, d.user_name.as_str()),
            (tablet, at(1), "ann")
        );
        assert_eq!(u.name, "ann");
        assert!(matches!(
            s.add_device(ann, "copy", &[1; 32], at(2)),
            Err(StorageError::Exists(_))
        ));

        let rec = inspection(s, &["ann"]);
        assert_eq!(s.inspection(rec.id).unwrap().unwrap(), rec);
        s.append_changes(rec.id, b"c1", &[5; 32], &[6; 32]).unwrap();
        let loaded = s.load_doc(rec.id).unwrap().unwrap();
        assert_eq!(
            (
                loaded.snapshot,
                loaded.changes,
                loaded.change_seqs,
                loaded.heads
            ),
            (
                b"snapshot".to_vec(),
                vec![b"c1".to_vec()],
                vec![1],
                vec![6; 32]
            )
        );

        s.bind_actor(b"actor", "ann", Some(tablet), at(3)).unwrap();
        s.bind_actor(b"actor", "ann", Some(tablet), at(4)).unwrap();
        assert!(matches!(
            s.bind_actor(b"actor", "bob", None, at(5)),
            Err(StorageError::Exists(_))
        ));
        assert_eq!(s.actor_binding(b"actor").unwrap().unwrap().bound_at, at(3));

        let sha = "ab".repeat(32);
        assert_eq!(s.append_blob(&sha, 0, b"hello ", "ann").unwrap(), 6);
        assert_eq!(s.append_blob(&sha, 6, b"world", "ann").unwrap(), 11);
        assert_eq!(s.partial_blob(&sha).unwrap(), b"hello world");
        s.complete_blob(&sha, b"stripped", "image/jpeg").unwrap();
        assert_eq!(
            s.blob(&sha).unwrap().unwrap(),
            (b"stripped".to_vec(), "image/jpeg".to_owned())
        );
        assert!(matches!(
            s.partial_blob(&sha),
            Err(StorageError::NotFound(_))
        ));
    }

    /// Two processes appending to one document at once: its changes are numbered 1..N
    /// with no gap or repeat, each thread's in the order it made them.
    #[test]
    fn appends_from_two_processes_are_numbered_in_turn() {
        let url = fresh_database();
        let (a, b) = (process(&url), process(&url));
        let rec = inspection(&*a.storage, &["ann"]);
        let other = inspection(&*b.storage, &["ann"]);
        at_once(&[&a, &b], 8, |t, s| {
            for i in 0..25u8 {
                // Two documents in both orders: batches that lock both must not deadlock.
                let (first, second) = if t % 2 == 0 {
                    (rec.id, other.id)
                } else {
                    (other.id, rec.id)
                };
                s.append_changes(first, &[t as u8, i], &[0; 32], &[t as u8; 32])
                    .unwrap();
                s.append_changes(second, &[t as u8, i], &[0; 32], &[t as u8; 32])
                    .unwrap();
            }
        });
        for doc in [rec.id, other.id] {
            let loaded = a.storage.load_doc(doc).unwrap().unwrap();
            assert_eq!(
                loaded.change_seqs,
                (1..=200).collect::<Vec<i64>>(),
                "numbered 1..200 with no gap or repeat"
            );
            for t in 0..8u8 {
                let mine: Vec<u8> = loaded
                    .changes
                    .iter()
                    .filter(|c| c[0] == t)
                    .map(|c| c[1])
                    .collect();
                assert_eq!(
                    mine,
                    (0..25).collect::<Vec<u8>>(),
                    "thread {t}'s in its order"
                );
            }
        }
    }

    /// Audit rows from two processes at once, singly and in batches: one chain.
    #[test]
    fn audit_rows_from_two_processes_make_one_chain() {
        let url = fresh_database();
        let (a, b) = (process(&url), process(&url));
        at_once(&[&a, &b], 8, |t, s| {
            for i in 0..40 {
                let e = event(&format!("user{t}"), &format!("doc-{i}"));
                if i % 10 == 0 {
                    s.audit_batch(&[e.clone(), e]).unwrap();
                } else {
                    s.audit(&e).unwrap();
                }
            }
        });
        // An event with a NUL (PostgreSQL's text holds none) is stored escaped, and fails
        // no one else's.
        let mut nul = event("mal\0lory", "doc-\0");
        nul.detail = Some("\0".into());
        a.storage.audit(&nul).unwrap();
        let stored = &a.storage.audit_tail(1).unwrap()[0];
        assert_eq!(
            (
                stored.actor.as_str(),
                stored.target.as_str(),
                stored.detail.as_deref()
            ),
            ("mal\\u{0}lory", "doc-\\u{0}", Some("\\u{0}"))
        );
        let v = b.storage.audit_verify().unwrap();
        assert_eq!((v.rows, v.broken), (8 * 44 + 1, None));
        assert_eq!(a.storage.audit_verify().unwrap().head, v.head);
        // And the chain would show damage (the walk is the one SQLite's uses).
        sql(&url, "UPDATE audit SET actor = 'mallory' WHERE seq = 100");
        let v = a.storage.audit_verify().unwrap();
        assert_eq!((v.rows, v.broken.map(|b| b.0)), (99, Some(100)));
    }

    /// Races for one key, from two processes: one winner, and the others told as they
    /// would be had they come second.
    #[test]
    fn races_across_processes_are_answered_as_if_in_turn() {
        let url = fresh_database();
        let (a, b) = (process(&url), process(&url));
        let s = &*a.storage;

        // One actor, eight users.
        let won = at_once(&[&a, &b], 8, |i, s| {
            s.bind_actor(b"contested", &format!("racer{i}"), None, at(1))
        });
        assert_eq!(won.iter().filter(|r| r.is_ok()).count(), 1, "{won:?}");
        assert!(
            won.iter()
                .all(|r| matches!(r, Ok(()) | Err(StorageError::Exists(_)))),
            "{won:?}"
        );

        // One actor, one user, eight devices: all bind it (the first's binding stands).
        let ann = s.add_user("ann", "Ann", &Role::Inspector, "x").unwrap();
        let devices: Vec<i64> = (0..8u8)
            .map(|i| s.add_device(ann, "d", &[i + 10; 32], at(0)).unwrap())
            .collect();
        let same = at_once(&[&a, &b], 8, |i, s| {
            s.bind_actor(b"anns", "ann", Some(devices[i]), at(1))
        });
        assert!(same.iter().all(Result::is_ok), "{same:?}");

        // A device one short of its limit: one more actor is bound, the rest refused.
        let max = crate::limits::MAX_ACTORS_PER_DEVICE;
        let full = s.add_device(ann, "full", &[99; 32], at(0)).unwrap();
        for i in 0..max - 1 {
            s.bind_actor(format!("many-{i}").as_bytes(), "ann", Some(full), at(2))
                .unwrap();
        }
        let last = at_once(&[&a, &b], 8, |i, s| {
            s.bind_actor(format!("last-{i}").as_bytes(), "ann", Some(full), at(3))
        });
        assert_eq!(last.iter().filter(|r| r.is_ok()).count(), 1, "{last:?}");
        assert!(
            last.iter()
                .all(|r| matches!(r, Ok(()) | Err(StorageError::Limit(_)))),
            "{last:?}"
        );

        // The API's actor for a device: made once.
        let api = at_once(&[&a, &b], 8, |i, s| {
            s.api_actor(devices[1], "ann", format!("api-{i}").as_bytes(), at(4))
                .unwrap()
        });
        assert!(
            api.windows(2).all(|w| w[0] == w[1]),
            "one API actor: {api:?}"
        );

        // A user one short of their uploads: one more starts, the rest are refused.
        let most = crate::limits::MAX_PARTIAL_UPLOADS_PER_USER;
        for i in 1..most {
            s.append_blob(&format!("{i:064x}"), 0, b"x", "ann").unwrap();
        }
        let uploads = at_once(&[&a, &b], 8, |i, s| {
            s.append_blob(&format!("{:064x}", 1000 + i), 0, b"x", "ann")
        });
        assert_eq!(
            uploads.iter().filter(|r| r.is_ok()).count(),
            1,
            "{uploads:?}"
        );
        assert!(
            uploads
                .iter()
                .all(|r| matches!(r, Ok(_) | Err(StorageError::Limit(_)))),
            "{uploads:?}"
        );

        // One upload started by eight requests at once: one starts it, the others find it
        // started (and are told where it continues).
        let one = at_once(&[&a, &b], 8, |i, s| {
            s.append_blob(&"cd".repeat(32), 0, b"abc", &format!("user{i}"))
        });
        assert_eq!(one.iter().filter(|r| r.is_ok()).count(), 1, "{one:?}");
        assert!(
            one.iter()
                .all(|r| matches!(r, Ok(3) | Err(StorageError::Corrupt(_)))),
            "{one:?}"
        );

        // New leads at once: the inspection ends with one.
        let rec = inspection(s, &["ann"]);
        at_once(&[&a, &b], 8, |i, s| {
            s.assign(rec.id, &format!("lead{i}"), TeamRole::LeadInspector)
                .unwrap()
        });
        let got = s.inspection(rec.id).unwrap().unwrap();
        assert_eq!(got.assignees.len(), 9);
        let mut c = Client::connect(&url, NoTls).unwrap();
        let leads: i64 = c
            .query_one(
                "SELECT count(*) FROM assignments WHERE inspection = $1 AND role = 'lead_inspector'",
                &[&rec.id.to_string()],
            )
            .unwrap()
            .get(0);
        assert_eq!(leads, 1, "one lead");

        // One inspection created twice at once.
        let twice = inspection(s, &[]);
        let again = at_once(&[&a, &b], 4, |_, s| s.create_inspection(&twice, &[]));
        assert!(
            again
                .iter()
                .all(|r| matches!(r, Err(StorageError::Exists(_)))),
            "{again:?}"
        );
    }

    /// Processes starting together migrate once; a database from a newer build is
    /// refused.
    #[test]
    fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let url = fresh_database();
        let opened = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let url = &url;
                    scope.spawn(move || PgStorage::open(url).map(drop))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(opened.iter().all(Result::is_ok), "{opened:?}");
        let mut c = Client::connect(&url, NoTls).unwrap();
        let version: i64 = c
            .query_one("SELECT version FROM wardcheck_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(version, MIGRATIONS.len() as i64);
        // Opened again: nothing to do, nothing lost.
        let p = process(&url);
        p.storage.add_user("ann", "Ann", &Role::Admin, "x").unwrap();
        drop(p);
        let p = process(&url);
        assert!(p.storage.user_by_name("ann").unwrap().is_some());
        drop(p);

        sql(&url, "UPDATE wardcheck_schema SET version = version + 1");
        let known = MIGRATIONS.len() as i64;
        assert!(matches!(
            PgStorage::open(&url),
            Err(StorageError::NewerSchema { found, known: k }) if found == known + 1 && k == known
        ));
    }

    /// Every connection dropped by the server (a restart, a network failure): the next
    /// calls reconnect, and none fails.
    #[test]
    fn connections_lost_cost_no_call() {
        let url = fresh_database();
        let p = process(&url);
        let s = &*p.storage;
        let rec = inspection(s, &["ann"]);
        s.append_changes(rec.id, b"one", &[0; 32], &[1; 32])
            .unwrap();
        s.audit(&event("ann", "before")).unwrap();
        sql(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        s.append_changes(rec.id, b"two", &[0; 32], &[2; 32])
            .unwrap();
        s.audit(&event("ann", "after")).unwrap();
        assert_eq!(s.load_doc(rec.id).unwrap().unwrap().change_seqs, [1, 2]);
        assert_eq!(s.audit_verify().unwrap().rows, 2);
    }

    /// A database with `synchronous_commit` off: this server's connections turn it on.
    #[test]
    fn commits_are_durable_even_where_the_database_says_otherwise() {
        let url = fresh_database();
        let name = url.rsplit("dbname=").next().unwrap().to_owned();
        sql(
            &url,
            &format!("ALTER DATABASE {name} SET synchronous_commit = off"),
        );
        let p = process(&url);
        let setting: String = p
            .storage
            .conn()
            .unwrap()
            .query_one("SHOW synchronous_commit", &[])
            .unwrap()
            .get(0);
        assert_eq!(setting, "on");
        let mut w = p.storage.append_writer.lock();
        let setting: String = connected(&mut w, &p.storage.append_writer.config)
            .unwrap()
            .query_one("SHOW synchronous_commit", &[])
            .unwrap()
            .get(0);
        assert_eq!(setting, "on", "the writers' too");
    }

    /// Let go of where the server lets go of it, on a thread that drives async tasks:
    /// no panic, and its connections close.
    #[test]
    fn it_can_be_dropped_on_an_async_thread() {
        let url = fresh_database();
        let p = process(&url);
        p.storage.audit(&event("ann", "x")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let Process { storage } = p;
        rt.block_on(async move {
            tokio::spawn(async move { drop(storage) }).await.unwrap();
        });
        let mut c = Client::connect(&url, NoTls).unwrap();
        // A closed connection's server process takes a moment to go.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let left = loop {
            let left: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .unwrap()
                .get(0);
            if left == 0 || std::time::Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(left, 0, "every connection closed");
    }
}
