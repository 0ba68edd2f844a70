//! `telemetry.db`: the tables, their migrations, and [`TelemetryStore`] for
//! [`SqliteStorage`]. The layout is documented in the module doc of `telemetry`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::counts::{KIND_SQL, SENSOR_SQL};
use super::fields::TrustType;
use super::{
    ImportReport, ImportRequest, Kind, Progress, Snapshot, TelemetryError, TelemetryStore, Trust,
};
use crate::storage::StorageError;

/// The file, in the data folder.
pub(crate) const DB_FILE: &str = "telemetry.db";
/// The folder uploads are spooled to, in the data folder.
const UPLOAD_DIR: &str = "telemetry-uploads";

/// Each runs once, in order, all pending ones in one transaction; `PRAGMA user_version`
/// counts them. Separate from `wardcheck.db`'s list: this is another file.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE telemetry_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    as_of TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL
);
-- One per (kind, as_of): kept so by the import, which replaces a day's snapshot in
-- the transaction that writes the new one.
CREATE INDEX telemetry_snapshots_day ON telemetry_snapshots(kind, as_of);
CREATE TABLE trusts (
    ods_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    trust_type TEXT NOT NULL,
    major_trauma_centre INTEGER NOT NULL,
    region TEXT NOT NULL,
    snapshot INTEGER NOT NULL
) WITHOUT ROWID;
-- Endpoints are kept one table per snapshot (`endpoints_<id>`, made by the import
-- from ENDPOINT_TABLE below) and read through the view `endpoints`, which the import
-- rebuilds. Until a snapshot exists the view reads this table, which never holds rows,
-- so the view and its columns are always there.
CREATE TABLE endpoints_none (
    line INTEGER NOT NULL,
    trust TEXT NOT NULL,
    site TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    hostname_lower TEXT NOT NULL,
    os_platform TEXT NOT NULL,
    os_version TEXT,
    os_build INTEGER,
    first_seen TEXT,
    last_seen TEXT NOT NULL,
    onboarding_status TEXT NOT NULL,
    health_status TEXT NOT NULL,
    exposure_level TEXT NOT NULL,
    missing_security_updates INTEGER,
    smb1_enabled INTEGER,
    bitlocker_on INTEGER,
    firewall_domain INTEGER,
    firewall_private INTEGER,
    firewall_public INTEGER,
    credential_guard_running INTEGER,
    secure_boot_on INTEGER,
    is_medical_device INTEGER NOT NULL
);
CREATE VIEW endpoints AS SELECT CAST(NULL AS INTEGER) AS snapshot, * FROM endpoints_none;
CREATE TABLE network_devices (
    snapshot INTEGER NOT NULL,
    line INTEGER NOT NULL,
    trust TEXT NOT NULL,
    site TEXT NOT NULL,
    device_id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    model TEXT NOT NULL,
    firmware TEXT NOT NULL,
    vendor_supported INTEGER NOT NULL,
    last_rule_review TEXT,
    admin_interface_exposed INTEGER NOT NULL
);
CREATE INDEX network_devices_trust ON network_devices(snapshot, trust, site);
CREATE TABLE alerts (
    snapshot INTEGER NOT NULL,
    line INTEGER NOT NULL,
    trust TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    issued TEXT NOT NULL,
    acknowledged TEXT,
    closed TEXT
);
CREATE INDEX alerts_trust ON alerts(snapshot, trust);
",
    "
-- Per endpoint snapshot, per (trust, site, os_platform, os_build): devices, and each
-- device check's bad and unknown devices (see counts.rs), written by the import.
CREATE TABLE endpoint_counts (
    snapshot INTEGER NOT NULL,
    trust TEXT NOT NULL,
    site TEXT NOT NULL,
    os_platform TEXT NOT NULL,
    os_build INTEGER,
    devices INTEGER NOT NULL,
    medical_devices INTEGER NOT NULL,
    not_onboarded INTEGER NOT NULL,
    smb1_enabled INTEGER NOT NULL,
    smb1_unknown INTEGER NOT NULL,
    missing_updates INTEGER NOT NULL,
    missing_updates_unknown INTEGER NOT NULL,
    bitlocker_off INTEGER NOT NULL,
    bitlocker_unknown INTEGER NOT NULL,
    secure_boot_off INTEGER NOT NULL,
    secure_boot_unknown INTEGER NOT NULL,
    credential_guard_off INTEGER NOT NULL,
    credential_guard_unknown INTEGER NOT NULL,
    firewall_off INTEGER NOT NULL,
    firewall_unknown INTEGER NOT NULL
);
CREATE INDEX endpoint_counts_trust ON endpoint_counts(snapshot, trust, site);
",
    "
-- Issue 12: each check declares which devices it counts (kind; with a sensor or only
-- discovered), and the lifecycle table needs the Windows edition. Endpoint tables get
-- `os_edition` (the edition class, NULL when the feed did not say; added to each
-- snapshot's table by `open`), and the counts are grouped by edition, kind and sensor
-- state too (recounted from the rows by `open`).
ALTER TABLE endpoints_none ADD COLUMN os_edition TEXT;
DROP TABLE endpoint_counts;
CREATE TABLE endpoint_counts (
    snapshot INTEGER NOT NULL,
    trust TEXT NOT NULL,
    site TEXT NOT NULL,
    os_platform TEXT NOT NULL,
    os_build INTEGER,
    os_edition TEXT,
    kind TEXT NOT NULL,
    sensor TEXT NOT NULL,
    devices INTEGER NOT NULL,
    smb1_enabled INTEGER NOT NULL,
    smb1_unknown INTEGER NOT NULL,
    missing_updates INTEGER NOT NULL,
    missing_updates_unknown INTEGER NOT NULL,
    bitlocker_off INTEGER NOT NULL,
    bitlocker_unknown INTEGER NOT NULL,
    secure_boot_off INTEGER NOT NULL,
    secure_boot_unknown INTEGER NOT NULL,
    credential_guard_off INTEGER NOT NULL,
    credential_guard_unknown INTEGER NOT NULL,
    firewall_off INTEGER NOT NULL,
    firewall_unknown INTEGER NOT NULL
);
CREATE INDEX endpoint_counts_trust ON endpoint_counts(snapshot, trust, site);
",
    "
-- Issue 12: Defender for Endpoint's machine fields, when the feed has them (added to
-- each snapshot's table by `open`, as `MACHINE_COLUMNS`).
ALTER TABLE endpoints_none ADD COLUMN risk_score TEXT;
ALTER TABLE endpoints_none ADD COLUMN last_ip_address TEXT;
ALTER TABLE endpoints_none ADD COLUMN last_external_ip_address TEXT;
ALTER TABLE endpoints_none ADD COLUMN rbac_group_name TEXT;
ALTER TABLE endpoints_none ADD COLUMN aad_device_id TEXT;
ALTER TABLE endpoints_none ADD COLUMN machine_tags TEXT;
",
    "
-- Of an endpoint snapshot with the day's secure configuration assessment merged in, the
-- SHA-256 of the machine export beneath and when that was imported (NULL: the snapshot is
-- the file of `sha256`), so that a process catching up with shared feeds knows the export
-- it holds.
ALTER TABLE telemetry_snapshots ADD COLUMN export_sha256 TEXT;
ALTER TABLE telemetry_snapshots ADD COLUMN export_imported_at TEXT;
",
];

/// The columns migration 4 added to every endpoint table, in order.
const MACHINE_COLUMNS: &[&str] = &[
    "risk_score",
    "last_ip_address",
    "last_external_ip_address",
    "rbac_group_name",
    "aad_device_id",
    "machine_tags",
];

/// The table of one endpoint snapshot: the columns of `endpoints_none`, rows in file
/// order (rowid), no index until every row is in ([`index_endpoint_table`]).
pub(crate) fn create_endpoint_table(conn: &Connection, snapshot: i64) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE {t} (
            line INTEGER NOT NULL,
            trust TEXT NOT NULL,
            site TEXT NOT NULL,
            device_id TEXT NOT NULL,
            device_name TEXT NOT NULL,
            hostname_lower TEXT NOT NULL,
            os_platform TEXT NOT NULL,
            os_version TEXT,
            os_build INTEGER,
            first_seen TEXT,
            last_seen TEXT NOT NULL,
            onboarding_status TEXT NOT NULL,
            health_status TEXT NOT NULL,
            exposure_level TEXT NOT NULL,
            missing_security_updates INTEGER,
            smb1_enabled INTEGER,
            bitlocker_on INTEGER,
            firewall_domain INTEGER,
            firewall_private INTEGER,
            firewall_public INTEGER,
            credential_guard_running INTEGER,
            secure_boot_on INTEGER,
            is_medical_device INTEGER NOT NULL,
            os_edition TEXT,
            risk_score TEXT,
            last_ip_address TEXT,
            last_external_ip_address TEXT,
            rbac_group_name TEXT,
            aad_device_id TEXT,
            machine_tags TEXT
        )",
        t = endpoint_table(snapshot)
    ))
}

/// Removes snapshot `id` of `kind`: its rows (an endpoint snapshot's table and counts)
/// and its record. Trusts are merged, never removed (their rows stay); an assessment's
/// rows live only in the endpoint snapshot it was merged into. The endpoints view is the
/// caller's to rebuild. Used by an import replacing a day, and by `telemetry prune`.
pub(crate) fn remove_snapshot(conn: &Connection, id: i64, kind: Kind) -> rusqlite::Result<()> {
    match kind {
        Kind::Endpoints => {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", endpoint_table(id)))?;
            conn.execute(
                "DELETE FROM endpoint_counts WHERE snapshot = ?1",
                params![id],
            )?;
        }
        Kind::Network | Kind::Alerts => {
            conn.execute(
                &format!("DELETE FROM {} WHERE snapshot = ?1", kind.table()),
                params![id],
            )?;
        }
        Kind::Trusts | Kind::SecureConfig => {}
    }
    conn.execute("DELETE FROM telemetry_snapshots WHERE id = ?1", params![id])?;
    Ok(())
}

/// The table that holds endpoint snapshot `snapshot`'s rows (the view `endpoints` reads
/// through all of them; a query that scans many rows of one snapshot is faster here).
pub fn endpoint_table(snapshot: i64) -> String {
    format!("endpoints_{snapshot}")
}

/// Indexes a loaded endpoint snapshot. Built from all its rows at once (SQLite sorts the
/// keys, then writes each index in order), which is several times faster than keeping
/// the indexes up to date row by row in random key order.
pub(crate) fn index_endpoint_table(conn: &Connection, snapshot: i64) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE INDEX {t}_host ON {t}(hostname_lower, trust);",
        t = endpoint_table(snapshot)
    ))
}

/// Fills `endpoint_counts` for endpoint snapshot `snapshot` from its rows: the same counts
/// the import makes as it reads (`counts.rs`; a test holds them equal), for snapshots
/// imported before the table existed.
pub(crate) fn count_endpoints_sql(snapshot: i64) -> String {
    // `coalesce(sum(..), 0)`: a sum over no non-NULL value is NULL. A firewall is
    // unknown when no profile is off and one is NULL, which is when the OR is NULL.
    format!(
        "INSERT INTO endpoint_counts
         SELECT {snapshot}, trust, site, os_platform, os_build, os_edition, {KIND_SQL},
            {SENSOR_SQL}, count(*),
            coalesce(sum(smb1_enabled = 1), 0), coalesce(sum(smb1_enabled IS NULL), 0),
            coalesce(sum(missing_security_updates > 0), 0),
            coalesce(sum(missing_security_updates IS NULL), 0),
            coalesce(sum(bitlocker_on = 0), 0), coalesce(sum(bitlocker_on IS NULL), 0),
            coalesce(sum(secure_boot_on = 0), 0), coalesce(sum(secure_boot_on IS NULL), 0),
            coalesce(sum(credential_guard_running = 0), 0),
            coalesce(sum(credential_guard_running IS NULL), 0),
            coalesce(sum(firewall_domain = 0 OR firewall_private = 0 OR firewall_public = 0), 0),
            coalesce(sum((firewall_domain = 0 OR firewall_private = 0 OR firewall_public = 0)
                IS NULL), 0)
         FROM {} GROUP BY trust, site, os_platform, os_build, os_edition, 7, 8",
        endpoint_table(snapshot)
    )
}

/// Most endpoint snapshots kept: the view `endpoints` has one arm per snapshot, and
/// SQLite allows at most 500 arms in a compound SELECT.
pub(crate) const MAX_ENDPOINT_SNAPSHOTS: i64 = 400;

/// Rebuilds the view `endpoints` over the endpoint snapshots `telemetry_snapshots`
/// lists, each arm with its snapshot id as the `snapshot` column.
pub(crate) fn rebuild_endpoints_view(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare("SELECT id FROM telemetry_snapshots WHERE kind = 'endpoints' ORDER BY id")?;
    let ids: Vec<i64> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut sql = String::from(
        "DROP VIEW endpoints;
         CREATE VIEW endpoints AS SELECT CAST(NULL AS INTEGER) AS snapshot, * FROM endpoints_none",
    );
    for id in ids {
        sql.push_str(&format!(
            "\n    UNION ALL SELECT {id}, * FROM {}",
            endpoint_table(id)
        ));
    }
    conn.execute_batch(&sql)
}

/// `telemetry.db` in a data folder: where it is, and a connection for reads.
///
/// Imports open a connection of their own for their one long transaction
/// (`import.rs`), so that reads here never wait for one.
#[derive(Debug)]
pub struct TelemetryDb {
    path: PathBuf,
    pub(super) upload_dir: PathBuf,
    read: Mutex<Connection>,
    /// The record's storage, when it keeps feeds for every process (`shared.rs`).
    pub(super) shared: std::sync::OnceLock<std::sync::Arc<dyn crate::storage::Storage>>,
    /// Held while catching up with the feeds kept there: one at a time.
    pub(super) catching_up: Mutex<()>,
    /// Feeds kept there that this process refused (bad rows, bytes that do not match
    /// their SHA-256), by id: not fetched again (a replacement has another id).
    pub(super) refused_feeds: Mutex<std::collections::HashSet<i64>>,
    /// The checkpoint after the last import, running on a thread of its own
    /// ([`TelemetryDb::checkpoint_in_background`]).
    checkpoint: Mutex<Option<std::thread::JoinHandle<Option<Checkpoint>>>>,
    /// Held by an import from just before it waits for the last import's checkpoint
    /// until its own is started: imports in this process one at a time, each beginning
    /// on a log the one before has been copied out of (an import from another process,
    /// the command line's beside a running server, is not covered, and may only find
    /// the log longer).
    imports: Mutex<()>,
}

/// What the checkpoint after an import did (`PRAGMA wal_checkpoint`'s answer, timed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub took: std::time::Duration,
    /// Another checkpoint was running (another process's): nothing was copied.
    pub busy: bool,
    /// Frames in the log.
    pub log_frames: i64,
    /// Frames of it now in the database file: all of them, unless a reader still reading
    /// an older state held some back (a later checkpoint copies those).
    pub copied_frames: i64,
}

impl Checkpoint {
    /// Whether every frame of the log is in the database file.
    pub fn complete(&self) -> bool {
        !self.busy && self.log_frames >= 0 && self.copied_frames == self.log_frames
    }

    /// How it is reported, after "then".
    pub fn summary(&self) -> String {
        if self.busy || self.log_frames < 0 {
            "not copied from the write-ahead log into telemetry.db: another checkpoint was \
             running (a later one copies it)"
                .to_owned()
        } else if self.complete() {
            format!(
                "copied from the write-ahead log into telemetry.db: {:.2} s",
                self.took.as_secs_f64()
            )
        } else {
            format!(
                "copied {} of {} frames of the write-ahead log into telemetry.db in {:.2} s \
                 (a reader held the rest back; the next checkpoint copies them)",
                self.copied_frames,
                self.log_frames,
                self.took.as_secs_f64()
            )
        }
    }
}

/// Opens a connection to `telemetry.db` with the pragmas every connection to it uses.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // 16 KiB pages for a new database (an existing one keeps its size): a snapshot's
    // table is written and read whole, and larger pages made the import's index build
    // and commit faster (BENCHMARKS.md). Set before WAL, which fixes it.
    conn.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

impl TelemetryDb {
    /// Opens (or creates) `telemetry.db` in `dir` and brings its tables up to date.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(DB_FILE);
        let upload_dir = dir.join(UPLOAD_DIR);
        std::fs::create_dir_all(&upload_dir).map_err(|e| {
            StorageError::Corrupt(format!("cannot create {}: {e}", upload_dir.display()))
        })?;
        let mut conn = connect(&path)?;
        let known = MIGRATIONS.len() as i64;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StorageError::NewerSchema { found, known });
        }
        if found < known {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Another process may have migrated while this one waited for the lock.
            let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            for sql in &MIGRATIONS[found.min(known) as usize..] {
                tx.execute_batch(sql)?;
            }
            if (1..4).contains(&found) {
                // Migrations 3 and 4 added columns to the endpoint tables (`os_edition`;
                // Defender's machine fields), and 2 and 3 made and regrouped
                // `endpoint_counts`: give each snapshot's table the columns it lacks, in
                // order, and count the snapshots imported before the regrouping.
                let mut stmt =
                    tx.prepare("SELECT id FROM telemetry_snapshots WHERE kind = 'endpoints'")?;
                let ids: Vec<i64> = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                drop(stmt);
                let mut added: Vec<&str> = Vec::new();
                if found < 3 {
                    added.push("os_edition");
                }
                added.extend(MACHINE_COLUMNS);
                for id in ids {
                    for column in &added {
                        tx.execute_batch(&format!(
                            "ALTER TABLE {} ADD COLUMN {column} TEXT",
                            endpoint_table(id)
                        ))?;
                    }
                    if found < 3 {
                        tx.execute_batch(&count_endpoints_sql(id))?;
                    }
                }
                rebuild_endpoints_view(&tx)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
            tx.commit()?;
        }
        Ok(TelemetryDb {
            path,
            upload_dir,
            read: Mutex::new(conn),
            shared: std::sync::OnceLock::new(),
            catching_up: Mutex::new(()),
            refused_feeds: Mutex::default(),
            checkpoint: Mutex::default(),
            imports: Mutex::default(),
        })
    }

    /// Copies a committed import from the write-ahead log into `telemetry.db`, on a
    /// thread of its own, so that the import returns once its rows are durable (the log
    /// is synced at commit: `synchronous = FULL`) rather than after writing them a second
    /// time. Imports turn SQLite's automatic checkpoint off on their connection for this,
    /// and the next import waits for this one's checkpoint before it begins
    /// ([`TelemetryStore::wait_for_checkpoint`]), so that it writes the log from its start
    /// rather than after the last import's frames (the log would grow by one snapshot
    /// per import otherwise). The checkpoint is `PASSIVE`, as the automatic one is: it
    /// does not wait for readers; what a reader still reading an older state holds back,
    /// a later checkpoint copies. Reads meanwhile find the rows in the log. It competes
    /// with the server's other work for the disk, as the automatic one did.
    pub(crate) fn checkpoint_in_background(&self) {
        let path = self.path.clone();
        let mut slot = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        // Called by an import under `one_import_at_a_time`, after it waited for the last
        // checkpoint: none is running.
        debug_assert!(
            slot.is_none(),
            "a checkpoint after an import is still running"
        );
        let spawned = std::thread::Builder::new()
            .name("telemetry-checkpoint".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                // Never creates the file (a data folder being removed stays removed).
                let done = Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(5))?;
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                });
                match done {
                    Ok((busy, log_frames, copied_frames)) => {
                        let done = Checkpoint {
                            took: started.elapsed(),
                            busy: busy != 0,
                            log_frames,
                            copied_frames,
                        };
                        tracing::info!(
                            busy,
                            log_frames,
                            copied_frames,
                            seconds = done.took.as_secs_f64(),
                            "telemetry.db checkpointed after an import"
                        );
                        Some(done)
                    }
                    Err(e) => {
                        // Nothing is lost: the rows stay in the log, and the next
                        // checkpoint (or the last connection's close) copies them.
                        tracing::warn!("telemetry.db checkpoint after an import failed: {e}");
                        None
                    }
                }
            });
        match spawned {
            Ok(handle) => *slot = Some(handle),
            // The rows stay in the log until a later checkpoint copies them.
            Err(e) => tracing::warn!("no thread for the checkpoint after an import: {e}"),
        }
    }

    /// Taken by an import for its whole run (see the field `imports`).
    pub(crate) fn one_import_at_a_time(&self) -> MutexGuard<'_, ()> {
        // An import that panicked left nothing half done that this lock guards.
        self.imports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches `telemetry.db` to `conn` as `telemetry`: its tables are then visible on
    /// `conn` by their plain names (no table of `wardcheck.db` has one of them).
    pub fn attach(&self, conn: &Connection) -> rusqlite::Result<()> {
        let path = self
            .path
            .to_str()
            .ok_or_else(|| rusqlite::Error::InvalidPath(self.path.clone()))?;
        conn.execute("ATTACH DATABASE ?1 AS telemetry", params![path])?;
        Ok(())
    }

    /// A connection for reading telemetry, not shared with the rest of the server.
    pub fn reader(&self) -> MutexGuard<'_, Connection> {
        // Reads leave nothing half done, so a poisoned lock is safe to take over.
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn bad(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn corrupt(what: String) -> rusqlite::Error {
    bad(StorageError::Corrupt(what))
}

pub(crate) const SNAPSHOT_COLUMNS: &str =
    "id, kind, as_of, sha256, rows, bytes, imported_at, imported_by";

pub(crate) fn snapshot_row(r: &Row<'_>) -> rusqlite::Result<Snapshot> {
    let kind: String = r.get(1)?;
    let as_of: String = r.get(2)?;
    let at: String = r.get(6)?;
    Ok(Snapshot {
        id: r.get(0)?,
        kind: Kind::from_name(&kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        as_of: NaiveDate::parse_from_str(&as_of, "%Y-%m-%d").map_err(bad)?,
        sha256: r.get(3)?,
        rows: r.get::<_, i64>(4)? as u64,
        bytes: r.get::<_, i64>(5)? as u64,
        imported_at: DateTime::parse_from_rfc3339(&at)
            .map_err(bad)?
            .with_timezone(&Utc),
        imported_by: r.get(7)?,
    })
}

fn trust_row(r: &Row<'_>) -> rusqlite::Result<Trust> {
    let t: String = r.get(2)?;
    Ok(Trust {
        ods_code: r.get(0)?,
        name: r.get(1)?,
        trust_type: TrustType::parse(&t).map_err(corrupt)?,
        major_trauma_centre: r.get(3)?,
        region: r.get(4)?,
    })
}

impl Drop for TelemetryDb {
    /// The checkpoint after an import ends before its data folder may be removed or
    /// copied.
    fn drop(&mut self) {
        self.wait_for_checkpoint();
    }
}

impl TelemetryStore for TelemetryDb {
    fn wait_for_checkpoint(&self) -> Option<Checkpoint> {
        let handle = self
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        handle.join().ok().flatten()
    }
    fn prune_snapshots(
        &self,
        keep_days: u32,
        today: NaiveDate,
    ) -> Result<Vec<Snapshot>, TelemetryError> {
        self.prune(keep_days, today)
    }

    fn import_telemetry(
        &self,
        req: &ImportRequest<'_>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<ImportReport, TelemetryError> {
        let report = super::import::import(self, req, progress)?;
        self.publish(req, &report)?;
        Ok(report)
    }

    fn latest_snapshot(&self, kind: Kind) -> Result<Option<Snapshot>, StorageError> {
        Ok(self
            .reader()
            .query_row(
                &format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots WHERE kind = ?1
                     ORDER BY as_of DESC, id DESC LIMIT 1"
                ),
                params![kind.name()],
                snapshot_row,
            )
            .optional()?)
    }

    fn snapshots(&self) -> Result<Vec<Snapshot>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots ORDER BY as_of, kind, id"
        ))?;
        let all = stmt
            .query_map([], snapshot_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(all)
    }

    fn telemetry_rows(&self, kind: Kind) -> Result<u64, StorageError> {
        let n: i64 = self.reader().query_row(
            &format!("SELECT count(*) FROM {}", kind.table()),
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn trust(&self, code: &str) -> Result<Option<Trust>, StorageError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT ods_code, name, trust_type, major_trauma_centre, region FROM trusts WHERE ods_code = ?1",
                params![code],
                trust_row,
            )
            .optional()?)
    }

    fn trusts(&self) -> Result<Vec<Trust>, StorageError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT ods_code, name, trust_type, major_trauma_centre, region FROM trusts ORDER BY ods_code",
        )?;
        let all = stmt
            .query_map([], trust_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(all)
    }

    fn telemetry_upload_dir(&self) -> PathBuf {
        self.upload_dir.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An import returns once its rows are committed to the write-ahead log, where every
    /// connection reads them; they are copied into the database file after, on a thread
    /// of its own; and the next import waits for that copy, so that the log does not
    /// grow by one snapshot per import.
    #[test]
    fn an_imports_rows_are_copied_into_the_database_after_it_and_the_log_does_not_pile_up() {
        use super::super::Outcome;
        use super::super::counts::tests::{
            endpoints_csv, import_file, import_file_on, store_with_one_trust,
        };
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_one_trust(dir.path());
        assert!(db.wait_for_checkpoint().expect("it ran").complete());
        let endpoints = dir.path().join("e.csv");
        std::fs::write(&endpoints, endpoints_csv()).unwrap();
        let Outcome::Imported { snapshot, .. } = import_file(&db, Kind::Endpoints, &endpoints)
        else {
            panic!("the endpoints import");
        };
        assert!(snapshot.rows > 40);
        let path = dir.path().join(DB_FILE);
        let count = |conn: &Connection| -> u64 {
            conn.query_row(
                &format!("SELECT count(*) FROM {}", endpoint_table(snapshot.id)),
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as u64
        };
        // Read by a connection the import did not use, whether or not copied yet.
        assert_eq!(count(&connect(&path).unwrap()), snapshot.rows);
        let done = db.wait_for_checkpoint().expect("the checkpoint ran");
        assert!(done.complete() && done.log_frames > 0, "{done:?}");
        assert!(db.wait_for_checkpoint().is_none(), "one per import");
        // The database file alone (read as if there were no log) holds every row.
        let file_only = || {
            Connection::open_with_flags(
                format!("file:{}?immutable=1", path.display()),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap()
        };
        assert_eq!(count(&file_only()), snapshot.rows);

        // Three more days at once, none waited for by the caller: each import begins
        // after the one before it is copied, and writes the log from its start.
        for day in 1..=3 {
            let day = NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
            let outcome = import_file_on(&db, Kind::Endpoints, &endpoints, day);
            assert!(matches!(outcome, Outcome::Imported { .. }));
        }
        let last = db.wait_for_checkpoint().expect("the last checkpoint ran");
        assert!(last.complete(), "{last:?}");
        assert!(
            last.log_frames < done.log_frames * 3 / 2,
            "the log holds the last import's frames, not several imports': {} frames after \
             four imports, {} after one",
            last.log_frames,
            done.log_frames
        );
        drop(db);
        // Dropping the store waited for the last copy.
        assert_eq!(
            file_only()
                .query_row(
                    "SELECT count(*) FROM telemetry_snapshots WHERE kind = 'endpoints'",
                    [],
                    |r| r.get::<_, i64>(0)
                )
                .unwrap(),
            4
        );
    }

    #[test]
    fn the_main_connection_sees_the_tables_once_attached() {
        let dir = tempfile::tempdir().unwrap();
        let db = TelemetryDb::open(dir.path()).unwrap();
        let again = TelemetryDb::open(dir.path()).unwrap();
        drop(again);
        let main = Connection::open(dir.path().join("main.db")).unwrap();
        db.attach(&main).unwrap();
        let n: i64 = main
            .query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
