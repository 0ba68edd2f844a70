//! One import for every process: where several server processes share the record's
//! storage (PostgreSQL, [`Storage::shares_feeds`]), each imported feed file is kept there
//! too ([`Storage::put_feed`]), and every process imports it into its own `telemetry.db`
//! ([`TelemetryDb::catch_up`]) when it hears of it and when it starts. So the join gives
//! the same verdicts whichever process answers, and a machine added later holds the same
//! telemetry.
//!
//! What a process takes, for each kind (trusts first: the other feeds name them; the
//! secure configuration assessment after the endpoints it is merged into): each day it
//! lacks, or holds in another version, from its own latest day on; a process that holds
//! nothing of a kind takes the latest day kept. Days older than what it holds (a late
//! backfill of history) it leaves: the join reads the latest day, which every process
//! holds alike. The database keeps one file per kind and day, the last imported.

use std::sync::Arc;

use chrono::Utc;

use super::store::TelemetryDb;
use super::{Format, ImportReport, ImportRequest, Kind, Outcome, TelemetryError, TelemetryStore};
use crate::storage::{Feed, Storage};

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
    /// file refused here is reported in the log and left.
    pub fn catch_up(&self) -> Result<Vec<ImportReport>, TelemetryError> {
        let Some(storage) = self.shared.get() else {
            return Ok(Vec::new());
        };
        let _one_at_a_time = self.catching_up.lock().unwrap_or_else(|p| p.into_inner());
        let kept = storage.feeds()?;
        let held = self.snapshots()?;
        let mut done = Vec::new();
        for kind in ORDER {
            let mine: Vec<_> = held.iter().filter(|s| s.kind == kind).collect();
            let latest_here = mine.iter().map(|s| s.as_of).max();
            let theirs: Vec<&Feed> = kept.iter().filter(|f| f.kind == kind.name()).collect();
            let wanted: Vec<&Feed> = match latest_here {
                Some(day) => theirs.into_iter().filter(|f| f.as_of >= day).collect(),
                None => theirs
                    .into_iter()
                    .max_by_key(|f| f.as_of)
                    .into_iter()
                    .collect(),
            };
            for feed in wanted {
                if mine
                    .iter()
                    .any(|s| s.as_of == feed.as_of && s.sha256 == feed.sha256)
                {
                    continue;
                }
                if let Some(report) = self.take(&**storage, kind, feed)? {
                    done.push(report);
                }
            }
        }
        Ok(done)
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
                refused(storage, feed, "incomplete");
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
            refused(storage, feed, "hash_mismatch");
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
            now: Utc::now(),
        };
        let report = super::import::import(self, &req, &mut |_| {})?;
        match &report.outcome {
            Outcome::Refused(r) => tracing::warn!(
                feed = feed.id,
                kind = %kind,
                as_of = %feed.as_of,
                bad_rows = r.bad_row_count,
                "a feed another process imported was refused here"
            ),
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
fn refused(storage: &dyn Storage, feed: &Feed, why: &str) {
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
