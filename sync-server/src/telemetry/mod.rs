//! Telemetry: NHS Digital's central device feeds, imported as dated snapshots, for the
//! join that sets them beside what inspectors saw (ARCHITECTURE "Telemetry" and "The
//! join"; REFERENCE §7; RELIABILITY B10, L1).
//!
//! # Feeds
//!
//! Four kinds of file ([`Kind`]), each CSV with a header row (`.csv`), JSON Lines, one
//! object per line (`.jsonl`), or one JSON document of records (`.json`). The columns (CSV header names, JSON keys; lower case) are
//! those of the row types, every one required in a CSV header, in any order; a value may
//! be empty (JSON: null or absent) only where the type says `Option`:
//!
//! - `endpoints` ([`Endpoint`]): the endpoint inventory, after Defender for Endpoint's
//!   machine export: device id and name, OS platform, version and build, first and last
//!   seen, onboarding and health status, exposure level, missing security updates,
//!   device checks (SMBv1, BitLocker, the three firewall profiles, Credential Guard,
//!   Secure Boot), whether it is a medical device, and its trust and site; optionally the
//!   Windows edition and Defender's risk score, last and last external IP address, device
//!   group (`rbacGroupName`), Entra device id and machine tags.
//!
//!   **Defender's own shapes are read as they are** (issue 12): the API's JSON document
//!   (`.json`, `{"value": [...]}`, read as a stream; a record's "line" is its position in
//!   the list), JSON lines or CSV with the machine entity's camelCase names (REFERENCE
//!   §7.1: `id`, `computerDnsName`, `osPlatform`, `osBuild`, `lastSeen`,
//!   `onboardingStatus`, `healthStatus`, `riskScore`, `lastIpAddress`,
//!   `lastExternalIpAddress`, `rbacGroupName`, `aadDeviceId`, `machineTags` ...;
//!   [`Endpoint::ALIASES`], in any case); fields nothing judges by are read and not kept
//!   ([`Endpoint::IGNORED`]). The configuration columns, which the machine export does
//!   not carry, may be left out (unknown, never off). Trust, site, the medical flag and
//!   the edition may come from machine tags instead of columns: `site:<ODS site code>`
//!   (the trust is its first three characters), `medical-device`, `edition:<EditionID>`.
//!   A vocabulary value this build does not know (a new platform, health or onboarding
//!   status, exposure level, risk score) is kept as `other` with a warning naming its
//!   line, not refused.
//! - `network` ([`NetworkDevice`]): firewalls: vendor, model, firmware, vendor support,
//!   last rule review, admin interface exposed.
//! - `alerts` ([`Alert`]): each trust's response to each NHS cyber alert: issued,
//!   acknowledged, closed.
//! - `trusts` ([`Trust`]): the trusts the other feeds may name: ODS code, name, type,
//!   major trauma centre, region.
//!
//! Parsing is strict (`fields.rs`): booleans are true/false, 1/0 or yes/no; dates are
//! `YYYY-MM-DD` or RFC 3339; vocabularies take their documented spellings in any case;
//! a site code starts with its trust's code. A UTF-8 byte-order mark is skipped; a CSV
//! field may be quoted and hold line breaks.
//!
//! # Snapshots
//!
//! Each import is one file of one kind, dated by the day it describes (`as_of`). A
//! snapshot is known by (kind, as_of, SHA-256 of the file's bytes):
//!
//! - the same file again for the same day changes nothing ([`Outcome::AlreadyImported`],
//!   found from the hash before a row is parsed: a file is hashed on its own first
//!   only when the day holds a snapshot of its size, otherwise as it is read);
//! - a different file for a day already imported replaces that day's snapshot, in the
//!   same transaction as the new rows ([`Outcome::Imported`] with `replaced`);
//! - a file is imported whole or not at all: one transaction, committed only when every
//!   row is good. Otherwise every bad row is reported with its line (the record's first
//!   line) and reason, the first [`limits::MAX_REPORTED_BAD_ROWS`] of them listed and all
//!   counted, and nothing is written ([`Outcome::Refused`]). Bad rows are: wrong number
//!   of fields, bad UTF-8, a field over [`limits::MAX_TELEMETRY_FIELD`] bytes, a record
//!   over [`limits::MAX_TELEMETRY_RECORD`] bytes (refused without reading it into
//!   memory), a value that does not parse, a trust not in `trusts`, a site outside its
//!   trust, a key seen twice (device id; alert id and trust; trust code). A file with no
//!   rows is refused: an empty export must not replace a day's snapshot.
//!
//! `trusts` is reference data, so its rows are merged, not replaced: an import adds the
//! trusts it names and updates those already known; it never removes one (older
//! snapshots of the other feeds still name them). Its snapshots are recorded all the
//! same, for idempotence.
//!
//! Imports are serialised: one writes at a time (others wait up to
//! [`limits::TELEMETRY_IMPORT_WAIT`]).
//!
//! # Several processes
//!
//! Each process reads its own `telemetry.db`. Where the record is in PostgreSQL, every
//! file imported through one process is kept there too and imported by the others
//! (`shared.rs`, [`TelemetryDb::catch_up`]), so the join answers alike whichever process
//! serves it.
//!
//! # Where it is kept (for the join)
//!
//! In `telemetry.db`, a SQLite file of its own beside `wardcheck.db` in the data folder
//! (WAL, `synchronous=FULL`), so that a long import never holds the write lock of the
//! file that sync, sign-in and the audit log write to, and the size of national feeds
//! never slows the integrity check of that file. The server's main connection ATTACHes
//! it as `telemetry`, so queries on that connection see these tables by their plain
//! names; [`TelemetryDb::reader`] is a connection of its own for reads that should not
//! wait on the main one.
//!
//! ```text
//! telemetry_snapshots(id INTEGER PRIMARY KEY, kind TEXT, as_of TEXT 'YYYY-MM-DD',
//!     sha256 TEXT hex, rows INTEGER, bytes INTEGER, imported_at TEXT, imported_by TEXT)
//!     -- one per (kind, as_of); ids only grow
//! trusts(ods_code TEXT PRIMARY KEY, name, trust_type, major_trauma_centre 0/1, region,
//!     snapshot) -- snapshot: the trusts import that last wrote the row
//! endpoints(snapshot, line, trust, site, device_id, device_name, hostname_lower,
//!     os_platform, os_version, os_build, first_seen, last_seen, onboarding_status,
//!     health_status, exposure_level, missing_security_updates, smb1_enabled,
//!     bitlocker_on, firewall_domain, firewall_private, firewall_public,
//!     credential_guard_running, secure_boot_on, is_medical_device)
//!     -- a VIEW: one table per snapshot, endpoints_<id>(line, trust, ...), each with
//!     -- INDEX (hostname_lower, trust) (snapshots imported before December 2026:
//!     -- INDEX (trust, site) and INDEX (hostname_lower)); the view adds `snapshot`
//! endpoint_counts(snapshot, trust, site, os_platform, os_build, devices,
//!     medical_devices, not_onboarded, smb1_enabled, smb1_unknown, missing_updates,
//!     missing_updates_unknown, bitlocker_off, bitlocker_unknown, secure_boot_off,
//!     secure_boot_unknown, credential_guard_off, credential_guard_unknown,
//!     firewall_off, firewall_unknown)
//!     INDEX (snapshot, trust, site) -- one row per group, written with the snapshot
//! network_devices(snapshot, line, trust, site, device_id, vendor, model, firmware,
//!     vendor_supported, last_rule_review, admin_interface_exposed)
//!     INDEX (snapshot, trust, site)
//! alerts(snapshot, line, trust, alert_id, issued, acknowledged, closed)
//!     INDEX (snapshot, trust)
//! ```
//!
//! - `snapshot` is `telemetry_snapshots.id`; `line` is the row's line in its file (for
//!   citing evidence).
//! - Endpoints are partitioned by snapshot: each endpoint snapshot is a table of its own,
//!   `endpoints_<id>`, filled with no index and indexed once loaded, and replaced or
//!   dropped whole (a national snapshot is 2.5 million rows: building its indexes at once
//!   and dropping a table are each many times faster than maintaining or deleting rows of
//!   one shared table). The view `endpoints` is `UNION ALL` of them, each arm with its id
//!   as `snapshot`, rebuilt by each import. SQLite pushes `snapshot = ?` into every arm
//!   and skips the arms it rules out, so `WHERE snapshot = ?1 AND hostname_lower = ?2
//!   AND trust = ?3` (a sampled device) reads one table through its host index. A
//!   trust's figures come from `endpoint_counts`, so no query reads a trust's device
//!   rows, and the (trust, site) index is no longer built (it was a fifth of a national
//!   import). At most 400 endpoint snapshots are held (SQLite allows 500 arms).
//! - Booleans are 0/1, and NULL where the feed did not know (a device that is not
//!   onboarded reports no configuration): NULL is "no telemetry", never "off".
//! - Vocabularies are stored in their documented spelling ([`OsPlatform`] etc.).
//! - Dates and times are text of one fixed width, so they compare as text: dates
//!   `YYYY-MM-DD`, times `YYYY-MM-DDTHH:MM:SSZ` (UTC).
//! - `hostname_lower` is the device name's first DNS label in lower case
//!   (`GSTT-LT-0042.gstt.nhs.uk` → `gstt-lt-0042`): match a sampled device by the lower
//!   case of the host name the inspector read.
//!
//! - `endpoint_counts` holds, per snapshot, trust, site, OS platform and build, how many
//!   devices there are and, for each endpoint check, how many are bad and how many
//!   unknown (`counts.rs` has the definitions). The import counts as it reads, so a
//!   trust's endpoint figures are a few dozen rows rather than a scan of its devices:
//!   225,000 rows for a large trust.
//!
//! For the join, take the latest snapshot of each kind ([`TelemetryStore::latest_snapshot`]:
//! the newest `as_of`) and query within it, always with `snapshot = ?`; each of these
//! uses an index:
//!
//! ```sql
//! SELECT os_platform, os_build, sum(devices), sum(smb1_enabled), sum(smb1_unknown)
//!   FROM endpoint_counts WHERE snapshot = ?1 AND trust = ?2
//!  GROUP BY os_platform, os_build;
//! SELECT device_name, os_build, last_seen FROM endpoints
//!  WHERE snapshot = ?1 AND trust = ?2 AND hostname_lower = lower(?3);
//! ```
//!
//! A query that must read many device rows of one snapshot is faster on the snapshot's
//! own table ([`endpoint_table`]: `endpoints_<id>`, the same columns without `snapshot`)
//! than through the view, which passes every column of every row through a
//! co-routine (measured: 0.49 s against 0.74 s for 500,000 rows).

mod counts;
pub use counts::sensor_of;
mod fields;
mod import;
mod prune;
mod read;
mod rows;
mod shared;
pub use shared::CATCH_UP_EVERY;
mod store;

pub mod cli;
mod http;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use fields::{ExposureLevel, HealthStatus, OnboardingStatus, OsPlatform, TrustType};
pub(crate) use http::routes;
pub use rows::{Alert, ConfigAssessment, Endpoint, NetworkDevice, Trust};
pub use store::{Checkpoint, TelemetryDb, endpoint_table};

use crate::limits;
use crate::storage::StorageError;

/// A kind of feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Endpoints,
    Network,
    Alerts,
    Trusts,
    /// Defender's secure configuration assessment: merged into the same day's endpoint
    /// snapshot (see `import.rs`, "The secure configuration assessment").
    SecureConfig,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Endpoints,
        Kind::Network,
        Kind::Alerts,
        Kind::Trusts,
        Kind::SecureConfig,
    ];

    /// The name in commands, routes and `telemetry_snapshots.kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Endpoints => "endpoints",
            Kind::Network => "network",
            Kind::Alerts => "alerts",
            Kind::Trusts => "trusts",
            Kind::SecureConfig => "secure-config",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The table its rows go to.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Endpoints => "endpoints",
            Kind::Network => "network_devices",
            Kind::Alerts => "alerts",
            Kind::Trusts => "trusts",
            Kind::SecureConfig => "temp.secure_config_rows",
        }
    }

    /// What its files may hold: columns, other names, ignored names, optional columns.
    pub(crate) fn shape(self) -> read::Shape {
        match self {
            Kind::Endpoints => read::Shape {
                columns: Endpoint::COLUMNS,
                aliases: Endpoint::ALIASES,
                ignored: Endpoint::IGNORED,
                optional: Endpoint::OPTIONAL,
            },
            Kind::SecureConfig => read::Shape {
                columns: ConfigAssessment::COLUMNS,
                aliases: ConfigAssessment::ALIASES,
                ignored: ConfigAssessment::IGNORED,
                optional: ConfigAssessment::OPTIONAL,
            },
            other => read::Shape::strict(other.columns()),
        }
    }

    /// Its columns, in the order its row type's parser takes them.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Endpoints => Endpoint::COLUMNS,
            Kind::Network => NetworkDevice::COLUMNS,
            Kind::Alerts => Alert::COLUMNS,
            Kind::Trusts => Trust::COLUMNS,
            Kind::SecureConfig => ConfigAssessment::COLUMNS,
        }
    }

    /// What one row is, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Endpoints => "endpoint",
            Kind::Network => "network device",
            Kind::Alerts => "alert",
            Kind::Trusts => "trust",
            Kind::SecureConfig => "configuration assessment",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    /// One JSON document: `{"value": [records]}` as Defender for Endpoint's API returns
    /// machines, or a bare list of records.
    Json,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Json => "json",
        }
    }

    pub fn from_name(s: &str) -> Option<Format> {
        [Format::Csv, Format::Jsonl, Format::Json]
            .into_iter()
            .find(|f| f.name() == s)
    }

    /// From the file name's extension: `.csv` or `.jsonl` (any case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("csv") {
            Some(Format::Csv)
        } else if ext.eq_ignore_ascii_case("jsonl") {
            Some(Format::Jsonl)
        } else if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// One imported snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: i64,
    pub kind: Kind,
    pub as_of: NaiveDate,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub rows: u64,
    pub bytes: u64,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
}

/// A row that was refused: the line its record starts on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest<'a> {
    pub kind: Kind,
    pub as_of: NaiveDate,
    pub format: Format,
    pub path: &'a Path,
    /// The file's SHA-256 when the caller already has it (an upload hashes as it
    /// arrives); otherwise the import hashes it as it reads it, and first, on its own,
    /// when the day holds a snapshot of its size (which it may then be).
    pub sha256: Option<[u8; 32]>,
    /// Who imports, for the snapshot record: a user name, or `cli`.
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The file is now the snapshot of its kind for its day; `replaced` is the snapshot
    /// it replaced, if the day had one.
    Imported {
        snapshot: Snapshot,
        replaced: Option<Snapshot>,
        /// Values kept as `other` (a vocabulary value this build does not know), the
        /// first by line: the file was imported, and these say what to look at.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<BadRow>,
        warning_count: u64,
    },
    /// This very file is already the day's snapshot: nothing changed.
    AlreadyImported { snapshot: Snapshot },
    /// Bad rows: nothing was written.
    Refused(Refusal),
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The first bad rows by line, at most [`limits::MAX_REPORTED_BAD_ROWS`].
    pub bad_rows: Vec<BadRow>,
    /// Every bad row found.
    pub bad_row_count: u64,
    /// The reading stopped before the end of the file (a bad header, or a record too
    /// long to read), so rows after that point were not checked.
    pub stopped_early: bool,
}

/// An import's outcome and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    pub kind: Kind,
    pub as_of: NaiveDate,
    pub sha256: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// How long each step took, in order (`hash` when the file was hashed on its own,
    /// `rows`, `duplicates`, `index`, `counts`, `replace`, `commit`; only those the import
    /// reached): for the log and the benchmark, not the response.
    #[serde(skip)]
    pub steps: Vec<(&'static str, Duration)>,
}

impl ImportReport {
    /// The steps' times on one line, e.g. `rows 8.12 s, duplicates 0.10 s, index 2.03 s`.
    pub fn steps_line(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(name, took)| format!("{name} {:.2} s", took.as_secs_f64()))
            .collect();
        steps.join(", ")
    }

    /// One line that says what happened, e.g. `imported 2,500,000 endpoint rows for
    /// 2026-11-29 in 21.4 s (116,800 rows/s)`.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        match &self.outcome {
            Outcome::Imported {
                snapshot,
                replaced,
                warning_count,
                ..
            } => {
                let rate = if secs > 0.0 {
                    snapshot.rows as f64 / secs
                } else {
                    0.0
                };
                let mut line = format!(
                    "imported {} {} row{} for {} in {secs:.1} s ({} rows/s)",
                    thousands(snapshot.rows),
                    self.kind.noun(),
                    if snapshot.rows == 1 { "" } else { "s" },
                    self.as_of,
                    thousands(rate.round() as u64),
                );
                if let Some(old) = replaced {
                    line.push_str(&format!(
                        "; this replaced the {} snapshot for {} imported before \
                         ({}, sha256 {})",
                        self.kind,
                        self.as_of,
                        rows(old.rows),
                        old.sha256
                    ));
                }
                if *warning_count > 0 {
                    line.push_str(&format!(
                        "; {} value{} this build does not know kept as 'other' (see the warnings)",
                        thousands(*warning_count),
                        if *warning_count == 1 { "" } else { "s" }
                    ));
                }
                line
            }
            Outcome::AlreadyImported { snapshot } => format!(
                "already imported: this file is the {} snapshot for {} ({}, imported {} by {}); \
                 nothing changed",
                self.kind,
                self.as_of,
                rows(snapshot.rows),
                snapshot
                    .imported_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                snapshot.imported_by
            ),
            Outcome::Refused(r) => format!(
                "{} bad row{}{}; nothing imported",
                thousands(r.bad_row_count),
                if r.bad_row_count == 1 { "" } else { "s" },
                if r.stopped_early {
                    " (reading stopped at a problem that leaves the rest of the file unreadable)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// `1 row`, `2,500,000 rows`.
fn rows(n: u64) -> String {
    format!("{} row{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// `2500000` as `2,500,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// What an import is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the file once to hash it, to know whether it is already imported (only
    /// when the day holds a snapshot of its size).
    Hashing,
    /// Reading, checking and writing rows.
    Rows,
    /// Checking for duplicate keys, replacing the old snapshot, committing.
    Finishing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub bytes: u64,
    pub total_bytes: u64,
    /// Rows read (good and bad) so far.
    pub rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("reading the file: {0}")]
    Io(#[source] std::io::Error),
    #[error(
        "another telemetry import is still running after {} s of waiting; try again when it has finished",
        limits::TELEMETRY_IMPORT_WAIT.as_secs()
    )]
    Busy,
    #[error("the file changed while it was being imported; nothing was imported")]
    FileChanged,
    #[error(
        "{0} endpoint snapshots are held, the most there may be; delete old ones before importing another"
    )]
    TooManySnapshots(i64),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for TelemetryError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            TelemetryError::Busy
        } else {
            TelemetryError::Storage(StorageError::Sqlite(e))
        }
    }
}

/// The server's telemetry ([`TelemetryDb`], `telemetry.db` in the data folder), kept
/// apart from the record ([`crate::storage::Storage`]) whichever backend keeps that.
/// Every method blocks.
pub trait TelemetryStore: Send + Sync {
    /// Imports one file as the snapshot of its kind for its day; see the module doc.
    /// `progress` is called every few thousand rows.
    fn import_telemetry(
        &self,
        req: &ImportRequest<'_>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<ImportReport, TelemetryError>;
    /// Waits for the copy of the last import from the write-ahead log into the database,
    /// which runs after the import returns, and says what it did (`None`: none was
    /// running, or it failed, and a later checkpoint copies the rows). The command line
    /// waits before it exits, and the benchmark before its next run.
    fn wait_for_checkpoint(&self) -> Option<Checkpoint>;
    /// The snapshot of `kind` with the newest `as_of`.
    fn latest_snapshot(&self, kind: Kind) -> Result<Option<Snapshot>, StorageError>;
    /// Every snapshot, oldest day first.
    fn snapshots(&self) -> Result<Vec<Snapshot>, StorageError>;
    /// Rows of `kind` held, across all its snapshots.
    fn telemetry_rows(&self, kind: Kind) -> Result<u64, StorageError>;
    fn trust(&self, code: &str) -> Result<Option<Trust>, StorageError>;
    /// Every trust, by code.
    fn trusts(&self) -> Result<Vec<Trust>, StorageError>;
    /// Where uploads are spooled before they are imported: on the data folder's disk,
    /// not in a temporary folder that may be memory.
    fn telemetry_upload_dir(&self) -> PathBuf;
    /// Removes snapshots older than `keep_days` before `today`, keeping the newest of
    /// each kind (`telemetry prune`); returns those removed.
    fn prune_snapshots(
        &self,
        keep_days: u32,
        today: NaiveDate,
    ) -> Result<Vec<Snapshot>, TelemetryError>;
}

/// Today in UTC: the default `as_of`.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Checks an `as_of` date: `YYYY-MM-DD`, and not after tomorrow (UTC), which leaves room
/// for a feed dated in a time zone ahead of UTC.
pub fn parse_as_of(s: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| format!("as_of {s:?} is not a date (YYYY-MM-DD)"))?;
    if d > today + chrono::Days::new(1) {
        return Err(format!("as_of {d} is in the future"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_date_not_in_the_future() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(parse_as_of("2026-11-29", today), Ok(today));
        assert!(parse_as_of("2026-11-30", today).is_ok());
        assert!(
            parse_as_of("2026-12-01", today)
                .unwrap_err()
                .contains("future")
        );
        assert!(parse_as_of("29-11-2026", today).is_err());
        assert!(parse_as_of("2026-1-9", today).is_err());
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(2_500_000), "2,500,000");
    }

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("b.jsonl")), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("b.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
        assert_eq!(Format::from_path(Path::new("b")), None);
    }
}
