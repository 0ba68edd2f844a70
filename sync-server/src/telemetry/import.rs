//! One import: unless the file is already the day's snapshot, read, check and write every
//! row in one transaction that is committed only if no row was bad. The file is hashed
//! as it is read; first, on its own, only when the day holds a snapshot of its size (the
//! one case in which it may be the same file, answered without parsing it).
//!
//! The transaction runs on a connection of its own to `telemetry.db`, begun `IMMEDIATE`
//! (so a second import waits for the first). The import returns once the transaction is
//! committed to the write-ahead log and the log is synced; copying the snapshot from the
//! log into the database file (the checkpoint, as long again as the commit) is then done
//! on a thread of its own (`TelemetryDb::checkpoint_in_background`), readers finding the
//! rows in the log meanwhile.
//!
//! Two threads share the work: one reads and checks rows ([`Checker`]: CSV or JSON,
//! UTF-8, hashing, field parsing, trust codes, key hashes, the text forms stored) and
//! hands them over in batches through a bounded channel; the calling thread writes them
//! ([`Writer`]), holding the transaction, counts them, and hands each written batch back
//! to be freed on the thread that allocated it. Measured on 2 cores, the two threads are
//! about equally busy (moving the counts to the writer and the text forms to the checker
//! made them so). An endpoint snapshot is written into a table of its own with no index,
//! rows appended in file order, and indexed once every row is in: building an index from
//! sorted keys is several times faster than keeping two indexes up to date row by row in
//! random key order (measured: 2.5 million rows in 12 s instead of 38 s). Keys are checked
//! for duplicates at the end, from a compact list of key hashes and rowids (16 bytes a
//! row), each suspected duplicate confirmed against the stored rows.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, Statement, Transaction, params};
use sha2::{Digest, Sha256};

use super::counts::EndpointCounts;
use super::fields::{self, shown, stored_datetime};
use super::read::{self, ReadEnd, Sink};
use super::rows::{Alert, ConfigAssessment, Endpoint, NetworkDevice, Trust};
use super::store::{self, SNAPSHOT_COLUMNS, TelemetryDb, connect, snapshot_row};
use super::{
    BadRow, Format, ImportReport, ImportRequest, Kind, Outcome, Phase, Progress, Refusal, Snapshot,
    TelemetryError, TelemetryStore,
};
use crate::limits;

/// Bytes read at a time while hashing.
const HASH_CHUNK: usize = 1024 * 1024;
/// Rows handed from the checking thread to the writing one at a time.
const BATCH: usize = 2048;
/// Batches on their way at once: enough to keep the writer busy, few enough that memory
/// stays small (a few MB).
const BATCHES_IN_FLIGHT: usize = 4;

pub(crate) fn import(
    db: &TelemetryDb,
    req: &ImportRequest<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, TelemetryError> {
    let started = Instant::now();
    let mut steps = Steps::new(started);
    let total = std::fs::metadata(req.path)
        .map_err(TelemetryError::Io)?
        .len();
    let report = |outcome, steps: &Steps, sha: &str| ImportReport {
        kind: req.kind,
        as_of: req.as_of,
        sha256: sha.to_owned(),
        outcome,
        elapsed: started.elapsed(),
        steps: steps.done.clone(),
    };

    let mut conn = connect(db.path())?;
    conn.busy_timeout(limits::TELEMETRY_IMPORT_WAIT)?;
    // A bounded page cache; the index sorts spill to temporary files rather than
    // memory, with one helper thread (the CSV is read on another thread meanwhile). No
    // automatic checkpoint at commit: the committed rows are copied from the log into
    // the database on a thread of its own (`TelemetryDb::checkpoint_in_background`).
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{};
         PRAGMA journal_size_limit = {};
         PRAGMA temp_store = FILE;
         PRAGMA threads = 1;
         PRAGMA wal_autocheckpoint = 0;",
        limits::TELEMETRY_IMPORT_CACHE_KIB,
        limits::TELEMETRY_WAL_KEEP_BYTES
    ))?;

    // The file's hash, when it is known before the rows are read: given (an upload is
    // hashed as it is received), or taken here when the day has a snapshot of this size,
    // so that the same file again is answered "already imported" without parsing it
    // (and without waiting for the write lock). A file no snapshot of the day matches in
    // size cannot be one already imported: it is hashed as it is read, which saves
    // reading it twice.
    let mut sha = req.sha256;
    let mut hash_if_same_size =
        |day: &Option<Snapshot>, sha: &mut Option<[u8; 32]>, steps: &mut Steps| {
            if sha.is_none() && day.as_ref().is_some_and(|s| s.bytes == total) {
                *sha = Some(hash_file(req.path, total, progress)?);
                steps.done("hash");
            }
            Ok::<_, TelemetryError>(())
        };
    let same_file = |day: &Option<Snapshot>, sha: Option<[u8; 32]>| {
        let sha = sha.map(hex::encode)?;
        day.clone().filter(|s| s.sha256 == sha)
    };
    let day = day_snapshot(&conn, req)?;
    hash_if_same_size(&day, &mut sha, &mut steps)?;
    if let Some(snapshot) = same_file(&day, sha) {
        let sha_hex = snapshot.sha256.clone();
        return Ok(report(
            Outcome::AlreadyImported { snapshot },
            &steps,
            &sha_hex,
        ));
    }

    // The last import's checkpoint first: begun after it, this import writes the log
    // from its start, not after that import's frames. Held until this import's own
    // checkpoint has started, so that no other import of this process begins meanwhile.
    let _one_at_a_time = db.one_import_at_a_time();
    db.wait_for_checkpoint();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Again under the lock: another import of the same file may have finished while
    // this one waited for it.
    let previous = day_snapshot(&tx, req)?;
    hash_if_same_size(&previous, &mut sha, &mut steps)?;
    if let Some(snapshot) = same_file(&previous, sha) {
        let sha_hex = snapshot.sha256.clone();
        return Ok(report(
            Outcome::AlreadyImported { snapshot },
            &steps,
            &sha_hex,
        ));
    }
    // Not known yet: the file is hashed as it is read, and the hash recorded at the end
    // (this placeholder never leaves the transaction).
    let mut sha_hex = sha.map(hex::encode).unwrap_or_default();
    tx.execute(
        "INSERT INTO telemetry_snapshots (kind, as_of, sha256, rows, bytes, imported_at, imported_by)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
        params![
            req.kind.name(),
            req.as_of.to_string(),
            sha_hex,
            total as i64,
            stored_datetime(&req.now),
            req.by
        ],
    )?;
    let id = tx.last_insert_rowid();
    if req.kind == Kind::Endpoints {
        let held: i64 = tx.query_row(
            "SELECT count(*) FROM telemetry_snapshots WHERE kind = 'endpoints'",
            [],
            |r| r.get(0),
        )?;
        // The replaced snapshot (if any) is counted, and leaves with this import.
        if held - i64::from(previous.is_some()) > store::MAX_ENDPOINT_SNAPSHOTS {
            return Err(TelemetryError::TooManySnapshots(
                store::MAX_ENDPOINT_SNAPSHOTS,
            ));
        }
        store::create_endpoint_table(&tx, id)?;
    }
    let trusts: HashSet<String> = if req.kind == Kind::Trusts {
        HashSet::new()
    } else {
        let mut stmt = tx.prepare("SELECT ods_code FROM trusts")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let file = File::open(req.path).map_err(TelemetryError::Io)?;

    let (end, good, bad, counts, warnings) = std::thread::scope(|scope| {
        let (send, receive) = sync_channel(BATCHES_IN_FLIGHT);
        let (give_back, given_back) = channel();
        let (kind, format) = (req.kind, req.format);
        let checking = std::thread::Builder::new()
            .name("telemetry-check".into())
            .spawn_scoped(scope, move || {
                check_all(file, kind, format, trusts, send, given_back)
            })
            .map_err(TelemetryError::Io)?;
        let mut writer = Writer::new(&tx, req.kind, id, give_back)?;
        let written = writer.write_all(receive, total, progress);
        // The checker ends once the channel is gone (on a write error) or the file is.
        let checked = checking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written?;
        let (end, read_rows, mut bad, warnings) = checked?;
        progress(&Progress {
            phase: Phase::Finishing,
            bytes: end.bytes,
            total_bytes: total,
            rows: read_rows,
        });
        steps.done("rows");
        writer.check_duplicates(&mut bad)?;
        steps.done("duplicates");
        Ok::<_, TelemetryError>((end, writer.good, bad, writer.counts, warnings))
    })?;

    if good == 0 && bad.count == 0 {
        return Ok(report(
            Outcome::Refused(Refusal {
                bad_rows: vec![BadRow {
                    line: 1,
                    reason: "the file has a header but no rows: an empty export does not \
                         replace a snapshot"
                        .into(),
                }],
                bad_row_count: 1,
                stopped_early: false,
            }),
            &steps,
            &whole_file_hash(sha, &end, req.path, total)?,
        ));
    }
    if bad.count > 0 {
        // Dropping the transaction rolls it back: nothing was written.
        return Ok(report(
            Outcome::Refused(bad.refusal(end.stopped_early)),
            &steps,
            &whole_file_hash(sha, &end, req.path, total)?,
        ));
    }
    if sha.is_some_and(|s| s != end.sha256) || end.bytes != total {
        return Err(TelemetryError::FileChanged);
    }
    if sha.is_none() {
        // Hashed as it was read: the snapshot records the hash of exactly the bytes
        // whose rows it holds.
        // (The day's snapshot, read under the lock, differs in size: it cannot be this
        // file.)
        sha_hex = hex::encode(end.sha256);
        tx.execute(
            "UPDATE telemetry_snapshots SET sha256 = ?2 WHERE id = ?1",
            params![id, sha_hex],
        )?;
    }

    if req.kind == Kind::Endpoints {
        store::index_endpoint_table(&tx, id)?;
        steps.done("index");
        counts.write(&tx, id)?;
        steps.done("counts");
    }
    if let Some(old) = &previous {
        store::remove_snapshot(&tx, old.id, req.kind)?;
    }
    let mut warnings = warnings;
    if req.kind == Kind::SecureConfig {
        match merge_configuration(&tx, req, &sha_hex)? {
            // Dropping the transaction rolls it back: nothing was written.
            Err(refusal) => return Ok(report(Outcome::Refused(refusal), &steps, &sha_hex)),
            Ok(Some(reason)) => warnings.push(BadRow { line: 0, reason }),
            Ok(None) => {}
        }
    }
    if req.kind == Kind::Endpoints {
        // The day's secure configuration assessment was merged into the snapshot this
        // replaces: it is not carried over, and its record goes, so that importing it
        // again merges it into this one (rather than "already imported").
        let merged: Option<String> = tx
            .query_row(
                "SELECT sha256 FROM telemetry_snapshots WHERE kind = 'secure-config' AND as_of = ?1",
                params![req.as_of.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sha) = merged {
            tx.execute(
                "DELETE FROM telemetry_snapshots WHERE kind = 'secure-config' AND as_of = ?1",
                params![req.as_of.to_string()],
            )?;
            warnings.push(BadRow {
                line: 0,
                reason: format!(
                    "the day's secure configuration assessment (sha256 {sha}) was merged into \
                     the snapshot this replaces and is not carried over: import it again"
                ),
            });
        }
    }
    if matches!(req.kind, Kind::Endpoints | Kind::SecureConfig) {
        store::rebuild_endpoints_view(&tx)?;
    }
    tx.execute(
        "UPDATE telemetry_snapshots SET rows = ?2 WHERE id = ?1",
        params![id, good as i64],
    )?;
    let snapshot = tx.query_row(
        &format!("SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots WHERE id = ?1"),
        params![id],
        snapshot_row,
    )?;
    steps.done("replace");
    tx.commit()?;
    steps.done("commit");
    db.checkpoint_in_background();
    let warnings = warnings.refusal(false);
    Ok(report(
        Outcome::Imported {
            snapshot,
            replaced: previous,
            warnings: warnings.bad_rows,
            warning_count: warnings.bad_row_count,
        },
        &steps,
        &sha_hex,
    ))
}

/// How long each step of an import took.
struct Steps {
    last: Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Steps {
    fn new(started: Instant) -> Self {
        Self {
            last: started,
            done: Vec::new(),
        }
    }

    /// Step `name` ends now.
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push((name, now - self.last));
        self.last = now;
    }
}

/// The configurations the endpoint checks read from the secure configuration assessment,
/// with the column each sets (found with the search tools, Dec 2026, in public advanced
/// hunting queries that name them: scid-53/54 "Disable SMBv1 client driver / server",
/// scid-2090 "Encrypt all BitLocker-supported drives", scid-2071/2072/2073 "Secure
/// Microsoft Defender Firewall domain / private / public profile", scid-2080 "Turn on
/// Microsoft Defender Credential Guard", scid-2100 "Enable UEFI Secure Boot mode" (one
/// source only: check it against `DeviceTvmSecureConfigurationAssessmentKB`)).
pub(crate) const CONFIGURATIONS: &[(&str, &str)] = &[
    ("scid-53", "smb1_enabled"),
    ("scid-54", "smb1_enabled"),
    ("scid-2090", "bitlocker_on"),
    ("scid-2071", "firewall_domain"),
    ("scid-2072", "firewall_private"),
    ("scid-2073", "firewall_public"),
    ("scid-2080", "credential_guard_running"),
    ("scid-2100", "secure_boot_on"),
];

/// The secure configuration assessment, merged into the endpoint snapshot of its day: a
/// new endpoint snapshot (its hash that of the two files) with each device's SMBv1,
/// BitLocker, firewall profile, Credential Guard and Secure Boot flags taken from the
/// assessment where it assesses them (compliant: on, or for SMBv1 off; not applicable:
/// not known), the other values as they were; counted, indexed, and replacing the day's
/// snapshot, all in the import's transaction. `Err` when the day has no endpoint
/// snapshot to merge into.
fn merge_configuration(
    tx: &Transaction<'_>,
    req: &ImportRequest<'_>,
    sha_hex: &str,
) -> Result<Result<Option<String>, Refusal>, TelemetryError> {
    let old = tx
        .query_row(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots
                 WHERE kind = 'endpoints' AND as_of = ?1 ORDER BY id DESC LIMIT 1"
            ),
            params![req.as_of.to_string()],
            snapshot_row,
        )
        .optional()?;
    let Some(old) = old else {
        return Ok(Err(Refusal {
            bad_rows: vec![BadRow {
                line: 1,
                reason: format!(
                    "no endpoint snapshot for {}: import that day's machine export first; \
                     the assessment is merged into it",
                    req.as_of
                ),
            }],
            bad_row_count: 1,
            stopped_early: false,
        }));
    };
    let merged_sha = hex::encode(Sha256::digest(format!("{}+{sha_hex}", old.sha256)));
    tx.execute(
        "INSERT INTO telemetry_snapshots
             (kind, as_of, sha256, rows, bytes, imported_at, imported_by, export_sha256,
              export_imported_at)
         SELECT 'endpoints', ?1, ?2, ?3, ?4, ?5, ?6, coalesce(export_sha256, sha256),
                coalesce(export_imported_at, imported_at)
           FROM telemetry_snapshots WHERE id = ?7",
        params![
            req.as_of.to_string(),
            merged_sha,
            old.rows as i64,
            old.bytes as i64,
            stored_datetime(&req.now),
            req.by,
            old.id
        ],
    )?;
    let id = tx.last_insert_rowid();
    store::create_endpoint_table(tx, id)?;
    // Per device, for each column the assessment sets: whether the assessment speaks of
    // it at all (`<column>_assessed`), and its value: 1, 0, or NULL (not applicable). A
    // column the assessment does not speak of keeps the value it had; one it speaks of
    // takes the assessment's, NULL included (a second assessment of the day replaces the
    // first's word on what it assesses). SMBv1 is enabled if either of its two
    // configurations is not compliant, disabled only if both are compliant, else not
    // known (half the evidence is not "off").
    let mut pivot = String::from("CREATE TEMP TABLE secure_config_pivot AS SELECT device_id");
    let columns = [
        "smb1_enabled",
        "bitlocker_on",
        "firewall_domain",
        "firewall_private",
        "firewall_public",
        "credential_guard_running",
        "secure_boot_on",
    ];
    for column in columns {
        let ids: Vec<String> = CONFIGURATIONS
            .iter()
            .filter(|(_, c)| *c == column)
            .map(|(i, _)| format!("'{i}'"))
            .collect();
        let ids = ids.join(", ");
        let applicable = format!("applicable = 1 AND configuration_id IN ({ids})");
        let value = if column == "smb1_enabled" {
            format!(
                "CASE WHEN max(CASE WHEN {applicable} THEN 1 - compliant END) = 1 THEN 1
                      WHEN count(DISTINCT CASE WHEN {applicable} AND compliant = 1
                          THEN configuration_id END) = 2 THEN 0 END"
            )
        } else {
            format!("min(CASE WHEN {applicable} THEN compliant END)")
        };
        pivot.push_str(&format!(
            ", {value} AS {column},
             max(configuration_id IN ({ids})) AS {column}_assessed"
        ));
    }
    pivot.push_str(" FROM temp.secure_config_rows GROUP BY device_id");
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.secure_config_pivot;
         {pivot};
         CREATE INDEX temp.secure_config_pivot_device ON secure_config_pivot(device_id);"
    ))?;
    let t_new = store::endpoint_table(id);
    let t_old = store::endpoint_table(old.id);
    // Assessed devices the snapshot does not hold: said, not silently dropped; none
    // matched at all is a file for another estate.
    let (assessed, matched): (i64, i64) = tx.query_row(
        &format!(
            "SELECT count(*), count(e.device_id) FROM temp.secure_config_pivot p
             LEFT JOIN (SELECT DISTINCT device_id FROM {t_old}) e ON e.device_id = p.device_id"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if assessed > 0 && matched == 0 {
        return Ok(Err(Refusal {
            bad_rows: vec![BadRow {
                line: 1,
                reason: format!(
                    "none of the {assessed} devices assessed is in the endpoint snapshot for {}: \
                     an assessment of another estate or day",
                    req.as_of
                ),
            }],
            bad_row_count: 1,
            stopped_early: false,
        }));
    }
    let merged: Vec<String> = columns
        .iter()
        .map(|c| format!("CASE WHEN p.{c}_assessed = 1 THEN p.{c} ELSE e.{c} END"))
        .collect();
    tx.execute_batch(&format!(
        "INSERT INTO {t_new} SELECT e.line, e.trust, e.site, e.device_id, e.device_name,
            e.hostname_lower, e.os_platform, e.os_version, e.os_build, e.first_seen,
            e.last_seen, e.onboarding_status, e.health_status, e.exposure_level,
            e.missing_security_updates, {},
            e.is_medical_device, e.os_edition, e.risk_score, e.last_ip_address,
            e.last_external_ip_address, e.rbac_group_name, e.aad_device_id, e.machine_tags
         FROM {t_old} e LEFT JOIN temp.secure_config_pivot p ON p.device_id = e.device_id
         ORDER BY e.rowid;
         DROP TABLE temp.secure_config_pivot;
         DELETE FROM temp.secure_config_rows;",
        merged.join(",\n            ")
    ))?;
    store::index_endpoint_table(tx, id)?;
    tx.execute_batch(&store::count_endpoints_sql(id))?;
    tx.execute_batch(&format!("DROP TABLE {t_old}"))?;
    tx.execute(
        "DELETE FROM endpoint_counts WHERE snapshot = ?1",
        params![old.id],
    )?;
    tx.execute(
        "DELETE FROM telemetry_snapshots WHERE id = ?1",
        params![old.id],
    )?;
    Ok(Ok((assessed > matched).then(|| {
        format!(
            "{} of the {assessed} devices assessed are not in the endpoint snapshot for {}: \
             their assessment was not kept",
            assessed - matched,
            req.as_of
        )
    })))
}

/// The snapshot of the request's kind and day, if any.
fn day_snapshot(conn: &Connection, req: &ImportRequest<'_>) -> rusqlite::Result<Option<Snapshot>> {
    conn.query_row(
        &format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots WHERE kind = ?1 AND as_of = ?2
             ORDER BY id DESC LIMIT 1"
        ),
        params![req.kind.name(), req.as_of.to_string()],
        snapshot_row,
    )
    .optional()
}

/// The whole file's hash for a refusal's report: known before reading, or taken as it was
/// read when every byte was read; else (reading stopped at a record too long, say) taken
/// now.
fn whole_file_hash(
    known: Option<[u8; 32]>,
    end: &ReadEnd,
    path: &std::path::Path,
    total: u64,
) -> Result<String, TelemetryError> {
    Ok(hex::encode(match known {
        Some(h) => h,
        None if !end.stopped_early && end.bytes == total => end.sha256,
        None => hash_file(path, total, &mut |_| {})?,
    }))
}

fn hash_file(
    path: &std::path::Path,
    total: u64,
    progress: &mut dyn FnMut(&Progress),
) -> Result<[u8; 32], TelemetryError> {
    let mut f = File::open(path).map_err(TelemetryError::Io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut done = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TelemetryError::Io(e)),
        };
        h.update(&buf[..n]);
        done += n as u64;
        if done % (64 * HASH_CHUNK as u64) < n as u64 {
            progress(&Progress {
                phase: Phase::Hashing,
                bytes: done,
                total_bytes: total,
                rows: 0,
            });
        }
    }
    Ok(h.finalize().into())
}

/// The first bad rows by line, and how many there were.
#[derive(Debug, Default)]
struct BadRows {
    first: Vec<BadRow>,
    count: u64,
}

impl BadRows {
    fn push(&mut self, row: BadRow) {
        self.count += 1;
        self.first.push(row);
        if self.first.len() >= 2 * limits::MAX_REPORTED_BAD_ROWS {
            self.keep_first();
        }
    }

    fn keep_first(&mut self) {
        // Stable: two reasons for one line keep their order.
        self.first.sort_by_key(|b| b.line);
        self.first.truncate(limits::MAX_REPORTED_BAD_ROWS);
    }

    fn refusal(mut self, stopped_early: bool) -> Refusal {
        self.keep_first();
        Refusal {
            bad_rows: self.first,
            bad_row_count: self.count,
            stopped_early,
        }
    }
}

/// A row that passed every check, ready to write.
#[derive(Debug)]
// Every row of a file is of one kind, so a batch wastes nothing on the variants' sizes,
// and boxing the large one would cost an allocation a row.
#[allow(clippy::large_enum_variant)]
enum Row {
    Endpoint(Endpoint, EndpointText),
    Network(NetworkDevice),
    Alert(Alert),
    Trust(Trust),
    /// Only the configurations the checks read are kept; `None` for any other.
    Config(Option<ConfigAssessment>),
}

#[derive(Debug)]
struct Checked {
    line: u64,
    /// Hash of the row's key, for the duplicate check.
    key: u64,
    row: Row,
}

/// An endpoint's values that are stored as text made from its parsed ones, made on the
/// checking thread so that the writer only binds.
#[derive(Debug)]
struct EndpointText {
    hostname_key: String,
    first_seen: Option<String>,
    last_seen: String,
    last_ip_address: Option<String>,
    last_external_ip_address: Option<String>,
}

impl EndpointText {
    fn of(e: &Endpoint) -> Self {
        Self {
            hostname_key: fields::hostname_key(&e.device_name),
            first_seen: e.first_seen.as_ref().map(stored_datetime),
            last_seen: stored_datetime(&e.last_seen),
            last_ip_address: e.last_ip_address.map(fields::stored_ip),
            last_external_ip_address: e.last_external_ip_address.map(fields::stored_ip),
        }
    }
}

/// What the checking thread sends the writing one.
#[derive(Debug)]
enum Message {
    Rows(Vec<Checked>),
    Progress { bytes: u64, rows: u64 },
}

/// Reads the whole file on the checking thread: (how the reading ended, rows read, bad
/// rows).
fn check_all(
    file: File,
    kind: Kind,
    format: Format,
    trusts: HashSet<String>,
    send: SyncSender<Message>,
    given_back: Receiver<Vec<Checked>>,
) -> Result<(ReadEnd, u64, BadRows, BadRows), TelemetryError> {
    let mut checker = Checker {
        warnings: BadRows::default(),
        kind,
        trusts,
        trust_lines: HashMap::new(),
        hasher: std::hash::RandomState::new(),
        batch: Vec::with_capacity(BATCH),
        send,
        given_back,
        bad: BadRows::default(),
        read: 0,
    };
    let end = read::read(file, format, &kind.shape(), &mut checker)?;
    checker.flush()?;
    Ok((end, checker.read, checker.bad, checker.warnings))
}

/// The [`Sink`] on the checking thread: parses and checks each row.
struct Checker {
    kind: Kind,
    /// Trust codes rows may name (every kind but `trusts`).
    trusts: HashSet<String>,
    /// For `trusts`, each code and its line (a few hundred rows: kept exactly).
    trust_lines: HashMap<String, u64>,
    hasher: std::hash::RandomState,
    batch: Vec<Checked>,
    send: SyncSender<Message>,
    /// Batches the writer has written, handed back to be freed here: the rows' strings
    /// were allocated on this thread, and freeing them here keeps that work off the
    /// writer.
    given_back: Receiver<Vec<Checked>>,
    bad: BadRows,
    read: u64,
    /// Values kept as `other` (a vocabulary value this build does not know), by line.
    warnings: BadRows,
}

/// The writer has stopped (it failed, and says why): reading stops too.
fn writer_gone() -> TelemetryError {
    TelemetryError::Io(std::io::Error::other("the writing thread stopped"))
}

impl Checker {
    fn flush(&mut self) -> Result<(), TelemetryError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // A written batch, emptied here, is the next one's buffer.
        let mut next = None;
        while let Ok(mut written) = self.given_back.try_recv() {
            written.clear();
            next = Some(written);
        }
        let next = next.unwrap_or_else(|| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.batch, next);
        self.send
            .send(Message::Rows(batch))
            .map_err(|_| writer_gone())
    }

    fn known_trust(&self, trust: &str) -> Result<(), String> {
        if self.trusts.contains(trust) {
            Ok(())
        } else {
            Err(format!(
                "trust: {trust} is not a known trust (import it with the trusts feed first)"
            ))
        }
    }

    /// Parses and checks one row: the row and its key's hash, or why it is bad.
    fn check(&mut self, line: u64, f: &[&str]) -> Result<(u64, Row), String> {
        Ok(match self.kind {
            Kind::Endpoints => {
                let (e, warnings) = Endpoint::parse_with_warnings(f)?;
                self.known_trust(&e.trust)?;
                for reason in warnings {
                    self.warnings.push(BadRow { line, reason });
                }
                let text = EndpointText::of(&e);
                (self.hasher.hash_one(&e.device_id), Row::Endpoint(e, text))
            }
            Kind::Network => {
                let n = NetworkDevice::parse(f)?;
                self.known_trust(&n.trust)?;
                (self.hasher.hash_one(&n.device_id), Row::Network(n))
            }
            Kind::Alerts => {
                let a = Alert::parse(f)?;
                self.known_trust(&a.trust)?;
                (self.hasher.hash_one((&a.alert_id, &a.trust)), Row::Alert(a))
            }
            Kind::SecureConfig => {
                let a = ConfigAssessment::parse(f)?;
                let key = self.hasher.hash_one((&a.device_id, &a.configuration_id));
                let kept = CONFIGURATIONS
                    .iter()
                    .any(|(id, _)| *id == a.configuration_id);
                (key, Row::Config(kept.then_some(a)))
            }
            Kind::Trusts => {
                let t = Trust::parse(f)?;
                if let Some(first) = self.trust_lines.get(&t.ods_code) {
                    return Err(format!(
                        "ods_code: duplicate trust {} (first on line {first})",
                        t.ods_code
                    ));
                }
                self.trust_lines.insert(t.ods_code.clone(), line);
                (0, Row::Trust(t))
            }
        })
    }
}

impl Sink for Checker {
    fn record(&mut self, line: u64, f: &[&str]) -> Result<(), TelemetryError> {
        self.read += 1;
        match self.check(line, f) {
            Ok((key, row)) => {
                self.batch.push(Checked { line, key, row });
                if self.batch.len() == BATCH {
                    self.flush()?;
                }
            }
            Err(reason) => self.bad.push(BadRow { line, reason }),
        }
        Ok(())
    }

    fn bad(&mut self, row: BadRow) {
        self.read += 1;
        self.bad.push(row);
    }

    fn progress(&mut self, bytes: u64) {
        // A writer that has gone is noticed at the next batch.
        let _ = self.flush();
        let _ = self.send.send(Message::Progress {
            bytes,
            rows: self.read,
        });
    }
}

/// Writes checked rows, on the thread that holds the transaction.
struct Writer<'t> {
    tx: &'t Transaction<'t>,
    kind: Kind,
    snapshot: i64,
    insert: Statement<'t>,
    /// Written batches go back to the checking thread, to be freed there.
    give_back: Sender<Vec<Checked>>,
    /// For endpoints, the counts written beside the rows (counted here rather than on
    /// the checking thread, which is the busier of the two).
    counts: EndpointCounts,
    /// Each written row's key hash and rowid.
    keys: Vec<(u64, i64)>,
    good: u64,
}

impl<'t> Writer<'t> {
    fn new(
        tx: &'t Transaction<'t>,
        kind: Kind,
        snapshot: i64,
        give_back: Sender<Vec<Checked>>,
    ) -> rusqlite::Result<Self> {
        let endpoints = format!(
            "INSERT INTO {} (line, trust, site, device_id, device_name,
                hostname_lower, os_platform, os_version, os_build, first_seen, last_seen,
                onboarding_status, health_status, exposure_level, missing_security_updates,
                smb1_enabled, bitlocker_on, firewall_domain, firewall_private, firewall_public,
                credential_guard_running, secure_boot_on, is_medical_device, os_edition,
                risk_score, last_ip_address, last_external_ip_address, rbac_group_name,
                aad_device_id, machine_tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
            store::endpoint_table(snapshot)
        );
        let sql = match kind {
            Kind::Endpoints => endpoints.as_str(),
            Kind::Network => {
                "INSERT INTO network_devices (snapshot, line, trust, site, device_id, vendor, model,
                    firmware, vendor_supported, last_rule_review, admin_interface_exposed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            }
            Kind::Alerts => {
                "INSERT INTO alerts (snapshot, line, trust, alert_id, issued, acknowledged, closed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            }
            Kind::SecureConfig => {
                tx.execute_batch(
                    "CREATE TEMP TABLE IF NOT EXISTS secure_config_rows (line INTEGER NOT NULL,
                        device_id TEXT NOT NULL, configuration_id TEXT NOT NULL,
                        applicable INTEGER NOT NULL, compliant INTEGER NOT NULL);
                     DELETE FROM temp.secure_config_rows;",
                )?;
                "INSERT INTO temp.secure_config_rows (line, device_id, configuration_id,
                    applicable, compliant) VALUES (?1, ?2, ?3, ?4, ?5)"
            }
            Kind::Trusts => {
                "INSERT INTO trusts (ods_code, name, trust_type, major_trauma_centre, region, snapshot)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (ods_code) DO UPDATE SET name = excluded.name,
                    trust_type = excluded.trust_type,
                    major_trauma_centre = excluded.major_trauma_centre,
                    region = excluded.region, snapshot = excluded.snapshot"
            }
        };
        Ok(Writer {
            tx,
            kind,
            snapshot,
            insert: tx.prepare(sql)?,
            give_back,
            counts: EndpointCounts::default(),
            keys: Vec::new(),
            good: 0,
        })
    }

    /// Writes every row the checking thread sends, until it has sent them all.
    fn write_all(
        &mut self,
        receive: Receiver<Message>,
        total: u64,
        progress: &mut dyn FnMut(&Progress),
    ) -> rusqlite::Result<()> {
        for message in receive {
            match message {
                Message::Rows(batch) => {
                    for c in &batch {
                        self.write(c)?;
                    }
                    if let Err(back) = self.give_back.send(batch) {
                        // The checker has finished: freed here.
                        drop(back.0);
                    }
                }
                Message::Progress { bytes, rows } => progress(&Progress {
                    phase: Phase::Rows,
                    bytes,
                    total_bytes: total,
                    rows,
                }),
            }
        }
        Ok(())
    }

    fn write(&mut self, c: &Checked) -> rusqlite::Result<()> {
        let line = c.line as i64;
        let time = |t: &Option<chrono::DateTime<chrono::Utc>>| t.as_ref().map(stored_datetime);
        match &c.row {
            Row::Endpoint(e, text) => {
                self.counts.add(e);
                self.insert.execute(params![
                    line,
                    e.trust,
                    e.site,
                    e.device_id,
                    e.device_name,
                    text.hostname_key,
                    e.os_platform.as_str(),
                    e.os_version,
                    e.os_build,
                    text.first_seen,
                    text.last_seen,
                    e.onboarding_status.as_str(),
                    e.health_status.as_str(),
                    e.exposure_level.as_str(),
                    e.missing_security_updates,
                    e.smb1_enabled,
                    e.bitlocker_on,
                    e.firewall_domain,
                    e.firewall_private,
                    e.firewall_public,
                    e.credential_guard_running,
                    e.secure_boot_on,
                    e.is_medical_device,
                    e.os_edition,
                    e.risk_score.map(|r| r.as_str()),
                    text.last_ip_address,
                    text.last_external_ip_address,
                    e.rbac_group_name,
                    e.aad_device_id,
                    e.machine_tags,
                ])?
            }
            Row::Network(n) => self.insert.execute(params![
                self.snapshot,
                line,
                n.trust,
                n.site,
                n.device_id,
                n.vendor,
                n.model,
                n.firmware,
                n.vendor_supported,
                n.last_rule_review.map(|d| d.to_string()),
                n.admin_interface_exposed,
            ])?,
            Row::Alert(a) => self.insert.execute(params![
                self.snapshot,
                line,
                a.trust,
                a.alert_id,
                stored_datetime(&a.issued),
                time(&a.acknowledged),
                time(&a.closed),
            ])?,
            Row::Trust(t) => self.insert.execute(params![
                t.ods_code,
                t.name,
                t.trust_type.as_str(),
                t.major_trauma_centre,
                t.region,
                self.snapshot,
            ])?,
            Row::Config(None) => {
                // A configuration no check reads: counted, not kept.
                self.good += 1;
                return Ok(());
            }
            Row::Config(Some(a)) => self.insert.execute(params![
                line,
                a.device_id,
                a.configuration_id,
                a.applicable,
                a.compliant,
            ])?,
        };
        if self.kind != Kind::Trusts {
            self.keys.push((c.key, self.tx.last_insert_rowid()));
        }
        self.good += 1;
        Ok(())
    }

    /// Adds to `bad` every row whose key an earlier row already had. Hash-equal keys
    /// are read back from the rows written and compared exactly.
    fn check_duplicates(&mut self, bad: &mut BadRows) -> rusqlite::Result<()> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let mut keys = std::mem::take(&mut self.keys);
        keys.sort_unstable();
        let (key_columns, what) = match self.kind {
            Kind::Endpoints | Kind::Network => ("device_id, NULL", "device_id"),
            Kind::Alerts => ("alert_id, trust", "alert_id"),
            Kind::SecureConfig => ("device_id, configuration_id", "device_id"),
            Kind::Trusts => return Ok(()),
        };
        let table = match self.kind {
            Kind::Endpoints => store::endpoint_table(self.snapshot),
            other => other.table().to_owned(),
        };
        let sql = format!("SELECT line, {key_columns} FROM {table} WHERE rowid = ?1");
        for group in keys.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
            let mut fetch = self.tx.prepare_cached(&sql)?;
            let mut rows: Vec<(i64, String, Option<String>)> = Vec::with_capacity(group.len());
            for (_, rowid) in group {
                rows.push(
                    fetch.query_row(params![rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?,
                );
            }
            // Same key, exactly: every row after the first is a duplicate.
            rows.sort_by(|a, b| (&a.1, &a.2, a.0).cmp(&(&b.1, &b.2, b.0)));
            for same in rows.chunk_by(|a, b| a.1 == b.1 && a.2 == b.2) {
                let first = same[0].0;
                for (line, key, trust) in &same[1..] {
                    let reason = match trust {
                        Some(c) if self.kind == Kind::SecureConfig => format!(
                            "{what}: duplicate assessment of {c} for device {} (first on line {first})",
                            shown(key)
                        ),
                        Some(t) => format!(
                            "{what}: duplicate alert {} for trust {t} (first on line {first})",
                            shown(key)
                        ),
                        None => format!("{what}: duplicate {} (first on line {first})", shown(key)),
                    };
                    bad.push(BadRow {
                        line: *line as u64,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}
