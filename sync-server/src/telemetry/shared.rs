//! One import for every process: where several server processes share the record's
//! storage (PostgreSQL, [`Storage::shares_feeds`]), each imported feed file is kept there
//! too ([`Storage::put_feed`]), and every process imports it into its own `telemetry.db`
//! ([`TelemetryDb::catch_up`]) when it hears of it and when it starts. So the join gives
//! the same verdicts whichever process answers, and a machine added later holds the same
//! telemetry.
//!
//! What a process takes, for each kind (trusts first: the other feeds name them; the
//! secure configuration assessment after the endpoints it is merged into): of trusts,
//! every day kept that it lacks or holds in another version (the files are small, and
//! the other feeds name trusts of every day); of every other kind, each such day from its
//! own latest on, and a process that holds nothing of a kind takes the latest day kept.
//! Older days (a late backfill of history) it leaves: the join reads the latest day,
//! which every process holds alike. A day it imported itself after the file kept was
//! (a publish that failed) it keeps. An endpoint snapshot with the day's secure
//! configuration assessment merged in is known by the machine export beneath it, and an
//! assessment is merged only into the export it was kept with; a new export of the day
//! drops the day's assessment, here, in every process and in the database, as the
//! import does (it is imported again to be merged in). The database keeps one file per kind and day, the
//! last imported, and of every kind but trusts the newest
//! [`crate::storage::FEED_DAYS_KEPT`] days.
//!
//! A file refused here (bad rows, or bytes that no longer match the SHA-256 recorded
//! beside them) is audited and not fetched again by this process. The SHA-256 catches
//! bytes changed or lost in the database by accident, or by anyone who did not change
//! the recorded hash too; what the database says of a feed (its kind, day, format,
//! importer) is the database's, trusted as the record in it is.
//!
//! Catching up runs when news of a kept feed comes, when the news was cut, at start, and
//! every [`CATCH_UP_EVERY`] whatever happens, so that one that failed is tried again.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::store::TelemetryDb;
use super::{
    Format, ImportReport, ImportRequest, Kind, Outcome, Snapshot, TelemetryError, TelemetryStore,
};
use crate::storage::{Feed, Storage};

/// How often a process catches up even with no news.
pub const CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The order feeds are taken in.
const ORDER: [Kind; 5] = [
    Kind::Trusts,
    Kind::Endpoints,
    Kind::SecureConfig,
    Kind::Network,
    Kind::Alerts,
];

impl TelemetryDb {
    /// Shares this telemetry with the other processes of `storage`, if it keeps feeds:
    /// what is imported here is kept there, and [`TelemetryDb::catch_up`] takes what
    /// others imported. Set once; later calls change nothing.
    pub fn share_feeds_through(&self, storage: Arc<dyn Storage>) {
        if storage.shares_feeds() {
            let _ = self.shared.set(storage);
        }
    }

    /// Whether this telemetry is shared ([`TelemetryDb::share_feeds_through`]).
    pub fn is_shared(&self) -> bool {
        self.shared.get().is_some()
    }

    /// Keeps the file just imported (or found already imported) for the other
    /// processes. A failure here leaves the local import in place and is returned: the
    /// same file again is then "already imported" here, and kept there.
    pub(super) fn publish(
        &self,
        req: &ImportRequest<'_>,
        report: &ImportReport,
    ) -> Result<(), TelemetryError> {
        let Some(storage) = self.shared.get() else {
            return Ok(());
        };
        let snapshot = match &report.outcome {
            Outcome::Imported { snapshot, .. } | Outcome::AlreadyImported { snapshot } => snapshot,
            Outcome::Refused(_) => return Ok(()),
        };
        let feed = Feed {
            id: 0,
            kind: req.kind.name().to_owned(),
            format: req.format.name().to_owned(),
            as_of: snapshot.as_of,
            sha256: snapshot.sha256.clone(),
            bytes: snapshot.bytes,
            by: snapshot.imported_by.clone(),
            at: snapshot.imported_at,
        };
        storage.put_feed(&feed, req.path)?;
        Ok(())
    }

    /// Imports what other processes imported and this telemetry lacks (see the module
    /// doc); returns the imports made. One at a time; nothing when not shared. A feed
    /// that another replaced meanwhile is skipped (the news of its successor follows); a
    /// file refused here is audited and left; a feed that fails for another reason is
    /// logged, and the rest taken all the same (the first such error is returned).
    pub fn catch_up(&self) -> Result<Vec<ImportReport>, TelemetryError> {
        let Some(storage) = self.shared.get() else {
            return Ok(Vec::new());
        };
        let _one_at_a_time = self.catching_up.lock().unwrap_or_else(|p| p.into_inner());
        let kept = storage.feeds()?;
        let mut done = Vec::new();
        let mut first_error = None;
        for kind in ORDER {
            // Read afresh for each kind: an endpoint day imported sets aside that day's
            // secure configuration, taken again below.
            let held = self.snapshots()?;
            let exports = self.endpoint_exports()?;
            let mine: Vec<_> = held.iter().filter(|s| s.kind == kind).collect();
            let latest_here = mine.iter().map(|s| s.as_of).max();
            let theirs: Vec<&Feed> = kept.iter().filter(|f| f.kind == kind.name()).collect();
            let wanted: Vec<&Feed> = match (kind, latest_here) {
                (Kind::Trusts, _) => theirs,
                (_, Some(day)) => theirs.into_iter().filter(|f| f.as_of >= day).collect(),
                (_, None) => theirs
                    .into_iter()
                    .max_by_key(|f| f.as_of)
                    .into_iter()
                    .collect(),
            };
            for feed in wanted {
                let here = mine.iter().find(|s| s.as_of == feed.as_of);
                // The same file (of endpoints, the same machine export with the day's
                // assessment merged in), or one imported here after it was kept (its
                // publish failed): left as it is. Times are kept to the second: one
                // imported here in the second the kept file was is taken again (a
                // catch-up that read the kept feeds just before this process's newest
                // import was kept is undone by the news of it).
                // Of endpoints, the export beneath: its hash, and when it was imported.
                let export = |s: &Snapshot| match exports.get(&s.as_of) {
                    Some(e) if kind == Kind::Endpoints => (e.0.clone(), e.1),
                    _ => (s.sha256.clone(), s.imported_at),
                };
                if here.is_some_and(|s| {
                    let (sha, at) = export(s);
                    s.sha256 == feed.sha256 || sha == feed.sha256 || at > feed.at
                }) {
                    continue;
                }
                // An assessment is merged only into the machine export it was kept
                // with: with another here (not yet caught up, or imported here since),
                // it waits for that export's news.
                if kind == Kind::SecureConfig {
                    let kept_export = kept
                        .iter()
                        .find(|f| f.kind == Kind::Endpoints.name() && f.as_of == feed.as_of);
                    let held_export = exports.get(&feed.as_of).map(|e| &e.0);
                    if kept_export.is_none_or(|k| held_export != Some(&k.sha256)) {
                        continue;
                    }
                }
                if self.was_refused(feed.id) {
                    continue;
                }
                match self.take(&**storage, kind, feed) {
                    Ok(Some(report)) => done.push(report),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(feed = feed.id, kind = %kind, as_of = %feed.as_of, error = %e, "taking a kept feed failed: tried again later");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) if done.is_empty() => Err(e),
            _ => Ok(done),
        }
    }

    /// Per day, the machine export the endpoint snapshot held here was imported from
    /// (itself, or, with an assessment merged in, the export beneath): its SHA-256, and
    /// when it was imported.
    fn endpoint_exports(
        &self,
    ) -> Result<HashMap<NaiveDate, (String, DateTime<Utc>)>, TelemetryError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare(
                "SELECT as_of, coalesce(export_sha256, sha256),
                        coalesce(export_imported_at, imported_at)
                   FROM telemetry_snapshots WHERE kind = 'endpoints' ORDER BY id",
            )
            .map_err(crate::storage::StorageError::from)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(crate::storage::StorageError::from)?;
        let mut exports = HashMap::new();
        for row in rows {
            let (day, sha, at) = row.map_err(crate::storage::StorageError::from)?;
            if let (Ok(day), Ok(at)) = (day.parse::<NaiveDate>(), at.parse::<DateTime<Utc>>()) {
                exports.insert(day, (sha, at));
            }
        }
        Ok(exports)
    }

    fn was_refused(&self, feed: i64) -> bool {
        let refused = self.refused_feeds.lock().unwrap_or_else(|p| p.into_inner());
        refused.contains(&feed)
    }

    /// Audits feed `feed` as refused here, and does not fetch it again.
    fn refuse(&self, storage: &dyn Storage, feed: &Feed, why: &str) {
        let mut refused = self.refused_feeds.lock().unwrap_or_else(|p| p.into_inner());
        refused.insert(feed.id);
        drop(refused);
        audit_refused(storage, feed, why);
    }

    /// Fetches feed `feed` into the spool folder and imports it here (not kept again).
    fn take(
        &self,
        storage: &dyn Storage,
        kind: Kind,
        feed: &Feed,
    ) -> Result<Option<ImportReport>, TelemetryError> {
        let Some(format) = Format::from_name(&feed.format) else {
            tracing::warn!(feed = feed.id, format = %feed.format, "a kept feed of a format this build does not read was left");
            return Ok(None);
        };
        let spool =
            tempfile::NamedTempFile::new_in(&self.upload_dir).map_err(TelemetryError::Io)?;
        match storage.fetch_feed(feed.id, spool.path()) {
            Ok(()) => {}
            Err(crate::storage::StorageError::NotFound(_)) => return Ok(None),
            // One damaged feed holds up no other.
            Err(e @ crate::storage::StorageError::Corrupt(_)) => {
                tracing::error!(feed = feed.id, kind = %kind, as_of = %feed.as_of, error = %e, "a kept feed could not be read whole: not imported");
                self.refuse(storage, feed, "incomplete");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        // The bytes must be the file the feed names: what was changed in the database
        // behind the servers' backs is not imported.
        let sha256 = hash_file(spool.path()).map_err(TelemetryError::Io)?;
        if hex::encode(sha256) != feed.sha256 {
            tracing::error!(
                feed = feed.id,
                kind = %kind,
                as_of = %feed.as_of,
                "a kept feed's bytes do not match its SHA-256: not imported"
            );
            self.refuse(storage, feed, "hash_mismatch");
            return Ok(None);
        }
        let sha256 = Some(sha256);
        let req = ImportRequest {
            kind,
            as_of: feed.as_of,
            format,
            path: spool.path(),
            sha256,
            by: &feed.by,
            // Recorded as imported when it was, where it was: what is newer here than
            // the file kept is only what was imported here since.
            now: feed.at,
        };
        let report = super::import::import(self, &req, &mut |_| {})?;
        match &report.outcome {
            Outcome::Refused(r) => {
                tracing::warn!(
                    feed = feed.id,
                    kind = %kind,
                    as_of = %feed.as_of,
                    bad_rows = r.bad_row_count,
                    "a feed another process imported was refused here"
                );
                self.refuse(storage, feed, "bad_rows");
            }
            _ => tracing::info!(
                feed = feed.id,
                kind = %kind,
                as_of = %feed.as_of,
                "{}, as another process imported it",
                report.summary()
            ),
        }
        Ok(Some(report))
    }
}

/// Audits a kept feed this process would not import: its bytes were changed or lost in
/// the database, behind the servers' backs.
fn audit_refused(storage: &dyn Storage, feed: &Feed, why: &str) {
    let event = crate::storage::AuditEvent {
        at: Utc::now(),
        actor: "-".into(),
        device: None,
        action: "telemetry_feed_refused".into(),
        target: format!("feed:{} {} {}", feed.id, feed.kind, feed.as_of),
        from: "-".into(),
        outcome: why.into(),
        detail: Some(format!("sha256 {}, {} bytes", feed.sha256, feed.bytes)),
    };
    if let Err(e) = storage.audit(&event) {
        tracing::error!(error = %e, "auditing a refused feed failed");
    }
}

/// The SHA-256 of the file at `path`.
fn hash_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hash.finalize().into()),
            n => hash.update(&buf[..n]),
        }
    }
}
