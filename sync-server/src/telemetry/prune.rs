//! `telemetry prune --keep-days N`: retention. Snapshots whose day is more than N days
//! before today go (their rows, counts, and endpoint tables), except the newest of each
//! kind, which the join reads whatever its age; trusts are merged, never removed. One
//! transaction: a prune stopped half-way removes nothing. The file keeps its size (the
//! freed pages are reused by the next imports); `VACUUM` shrinks it, offline.
//!
//! The join reads only the latest snapshot of each feed, so a prune changes no verdict;
//! it shortens the national page's trend lines to the days kept. What a report showed
//! is kept in the report itself (its PDF, under its SHA-256).

use chrono::NaiveDate;
use rusqlite::params;

use super::store::{self, SNAPSHOT_COLUMNS, TelemetryDb, connect, snapshot_row};
use super::{Kind, Snapshot, TelemetryError};
use crate::limits;

impl TelemetryDb {
    /// Removes the snapshots older than `keep_days` before `today` (the newest of each
    /// kind stays); returns those removed, oldest first.
    pub fn prune(&self, keep_days: u32, today: NaiveDate) -> Result<Vec<Snapshot>, TelemetryError> {
        let cutoff = today - chrono::Days::new(u64::from(keep_days));
        let mut conn = connect(self.path())?;
        conn.busy_timeout(limits::TELEMETRY_IMPORT_WAIT)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let gone: Vec<Snapshot> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM telemetry_snapshots AS s
                 WHERE kind != 'trusts' AND as_of < ?1
                   AND id != (SELECT id FROM telemetry_snapshots AS n WHERE n.kind = s.kind
                              ORDER BY as_of DESC, id DESC LIMIT 1)
                 ORDER BY as_of, kind, id"
            ))?;
            stmt.query_map(params![cutoff.to_string()], snapshot_row)?
                .collect::<rusqlite::Result<_>>()?
        };
        for s in &gone {
            store::remove_snapshot(&tx, s.id, s.kind)?;
        }
        if gone.iter().any(|s| s.kind == Kind::Endpoints) {
            store::rebuild_endpoints_view(&tx)?;
        }
        tx.commit()?;
        Ok(gone)
    }
}
