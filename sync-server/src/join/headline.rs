//! Telemetry headline figures of every trust across snapshots, for the national page and
//! the trust page (`GET /api/v1/national`, `GET /api/v1/trusts/{code}`): the share of
//! devices on an unsupported OS, SMBv1, onboarding to Defender for Endpoint and alert
//! response, for each of the newest endpoint and alert snapshots, so that trends can be
//! drawn.
//!
//! The definitions are the trust summary's ([`super::telemetry_summary`]), so the newest
//! point of a trust equals its summary: endpoints are read from the importer's
//! `endpoint_counts` (grouped by snapshot, trust, platform, build and edition, each group
//! judged by [`lifecycle`] on its snapshot's day); alerts are counted inside SQLite,
//! grouped by snapshot and trust. What comes back does not grow with the size of a
//! snapshot: a few dozen groups per trust and snapshot.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::lifecycle::{self, Support};
use super::query::{SnapshotRef, newest_snapshots};

/// One trust's endpoint figures in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EndpointPoint {
    pub as_of: NaiveDate,
    pub devices: u64,
    /// Devices whose OS no longer receives security updates ([`lifecycle`]).
    pub unsupported: u64,
    /// `unsupported / devices`, 0 to 1.
    pub unsupported_share: f64,
    /// Devices with SMBv1 enabled, among those whose sensor reports.
    pub smb1_enabled: u64,
    /// Devices that could run a sensor (onboarded, sensor inactive, not onboarded).
    pub onboardable: u64,
    /// Onboarded with the sensor reporting.
    pub onboarded: u64,
    /// `onboarded / onboardable`, 0 to 1; null when no device could run a sensor.
    pub onboarded_share: Option<f64>,
}

/// One trust's NHS cyber alert figures in one snapshot (as the trust summary counts them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AlertPoint {
    pub as_of: NaiveDate,
    pub alerts: u64,
    /// Acknowledged within 48 hours of issue.
    pub on_time: u64,
    /// Acknowledged late, or still open 48 hours after issue.
    pub overdue: u64,
    /// `on_time / (on_time + overdue)`: of the alerts whose 48 hours have passed, the
    /// share acknowledged in time; null when none has.
    pub on_time_share: Option<f64>,
}

/// One trust's points, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trend {
    pub endpoints: Vec<EndpointPoint>,
    pub alerts: Vec<AlertPoint>,
}

impl Trend {
    /// The newest endpoint point, if that is of the newest endpoint snapshot.
    pub fn latest_endpoints(&self, newest: Option<&SnapshotRef>) -> Option<&EndpointPoint> {
        self.endpoints
            .last()
            .filter(|p| newest.is_some_and(|s| s.as_of == p.as_of))
    }

    /// The newest alert point, if that is of the newest alerts snapshot.
    pub fn latest_alerts(&self, newest: Option<&SnapshotRef>) -> Option<&AlertPoint> {
        self.alerts
            .last()
            .filter(|p| newest.is_some_and(|s| s.as_of == p.as_of))
    }
}

/// Every trust's trend over the newest `points` snapshots of each feed (of `trust` only,
/// if given), by trust code; and the snapshots read, oldest first.
#[derive(Debug)]
pub struct Headlines {
    pub endpoint_snapshots: Vec<SnapshotRef>,
    pub alert_snapshots: Vec<SnapshotRef>,
    pub trusts: BTreeMap<String, Trend>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The newest `points` snapshots of `kind`, oldest first.
fn newest(conn: &Connection, kind: &str, points: usize) -> rusqlite::Result<Vec<SnapshotRef>> {
    let mut out = newest_snapshots(conn, kind, points)?;
    out.reverse();
    Ok(out)
}

/// `?1, ?2, …` for `n` values, after `skip` others.
fn placeholders(skip: usize, n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{}", i + skip))
        .collect::<Vec<_>>()
        .join(", ")
}

/// See [`Headlines`].
pub fn headlines(
    conn: &Connection,
    trust: Option<&str>,
    points: usize,
) -> rusqlite::Result<Headlines> {
    let endpoint_snapshots = newest(conn, "endpoints", points)?;
    let alert_snapshots = newest(conn, "alerts", points)?;
    let mut trusts: BTreeMap<String, Trend> = BTreeMap::new();
    let only = trust.map_or(String::new(), |_| "AND trust = ?1".into());
    let first = usize::from(trust.is_some());

    if !endpoint_snapshots.is_empty() {
        let sql = format!(
            "SELECT snapshot, trust, os_platform, os_build, os_edition, sum(devices),
                    sum(CASE WHEN sensor = 'reporting' THEN smb1_enabled ELSE 0 END),
                    sum(CASE WHEN sensor = 'reporting' THEN devices ELSE 0 END),
                    sum(CASE WHEN sensor IN ('reporting', 'inactive', 'can-onboard')
                             THEN devices ELSE 0 END)
             FROM endpoint_counts WHERE snapshot IN ({}) {only}
             GROUP BY snapshot, trust, os_platform, os_build, os_edition",
            placeholders(first, endpoint_snapshots.len())
        );
        let mut stmt = conn.prepare(&sql)?;
        let values = trust
            .map(|t| rusqlite::types::Value::from(t.to_owned()))
            .into_iter()
            .chain(endpoint_snapshots.iter().map(|s| s.id.into()));
        let mut rows = stmt.query(params_from_iter(values))?;
        // (trust, snapshot) → sums, in the snapshots' order.
        let mut sums: BTreeMap<(String, usize), [u64; 5]> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let snapshot: i64 = r.get(0)?;
            let Some(at) = endpoint_snapshots.iter().position(|s| s.id == snapshot) else {
                continue;
            };
            let platform: String = r.get(2)?;
            let build: Option<i64> = r.get(3)?;
            let edition: Option<String> = r.get(4)?;
            let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            let devices = n(5)?;
            let support = lifecycle::support(
                &platform,
                build,
                edition.as_deref(),
                endpoint_snapshots[at].as_of,
            );
            let s = sums.entry((r.get(1)?, at)).or_default();
            s[0] += devices;
            if support == Support::Unsupported {
                s[1] += devices;
            }
            s[2] += n(6)?;
            s[3] += n(7)?;
            s[4] += n(8)?;
        }
        for ((code, at), [devices, unsupported, smb1, onboarded, onboardable]) in sums {
            if devices == 0 {
                continue;
            }
            trusts
                .entry(code)
                .or_default()
                .endpoints
                .push(EndpointPoint {
                    as_of: endpoint_snapshots[at].as_of,
                    devices,
                    unsupported,
                    unsupported_share: unsupported as f64 / devices as f64,
                    smb1_enabled: smb1,
                    onboardable,
                    onboarded,
                    onboarded_share: share(onboarded, onboardable),
                });
        }
    }

    if !alert_snapshots.is_empty() {
        // As the trust summary counts them: late is acknowledged more than 48 hours after
        // issue; open and overdue is unacknowledged and issued before the end of the
        // snapshot's day less 48 hours.
        let hours = "(julianday(a.acknowledged) - julianday(a.issued)) * 24.0";
        let sql = format!(
            "SELECT a.snapshot, a.trust, count(*), count(a.acknowledged),
                    coalesce(sum(a.acknowledged IS NOT NULL AND {hours} > 48.0), 0),
                    coalesce(sum(a.acknowledged IS NULL
                                 AND a.issued < date(s.as_of, '-1 day') || 'T00:00:00Z'), 0)
             FROM alerts a JOIN telemetry_snapshots s ON s.id = a.snapshot
             WHERE a.snapshot IN ({}) {}
             GROUP BY a.snapshot, a.trust",
            placeholders(first, alert_snapshots.len()),
            only.replace("trust", "a.trust")
        );
        let mut stmt = conn.prepare(&sql)?;
        let values = trust
            .map(|t| rusqlite::types::Value::from(t.to_owned()))
            .into_iter()
            .chain(alert_snapshots.iter().map(|s| s.id.into()));
        let mut rows = stmt.query(params_from_iter(values))?;
        let mut points: BTreeMap<(String, usize), AlertPoint> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let snapshot: i64 = r.get(0)?;
            let Some(at) = alert_snapshots.iter().position(|s| s.id == snapshot) else {
                continue;
            };
            let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            let (alerts, acknowledged, late, open_overdue) = (n(2)?, n(3)?, n(4)?, n(5)?);
            let on_time = acknowledged.saturating_sub(late);
            let overdue = late + open_overdue;
            points.insert(
                (r.get(1)?, at),
                AlertPoint {
                    as_of: alert_snapshots[at].as_of,
                    alerts,
                    on_time,
                    overdue,
                    on_time_share: share(on_time, on_time + overdue),
                },
            );
        }
        for ((code, _), p) in points {
            trusts.entry(code).or_default().alerts.push(p);
        }
    }
    Ok(Headlines {
        endpoint_snapshots,
        alert_snapshots,
        trusts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::telemetry_summary;

    /// The trust summary's tests' data, with an older endpoint snapshot (id 3).
    fn db() -> Connection {
        let conn = crate::join::summary::tests::db();
        conn.execute_batch(
            "INSERT INTO telemetry_snapshots VALUES (3, 'endpoints', '2026-10-01', 'c', 0, 0, '', '');
             INSERT INTO endpoint_counts VALUES
                 (3, 'RJ1', 'RJ121', 'Windows10', 19045, NULL, 'end-user', 'reporting', 500, 50, 0),
                 (3, 'RJ1', 'RJ121', 'Windows7', 7601, NULL, 'medical', 'can-onboard', 100, 30, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn every_trust_gets_a_point_per_snapshot_oldest_first() {
        let h = headlines(&db(), None, 12).unwrap();
        assert_eq!(h.endpoint_snapshots.len(), 2);
        let rj1 = &h.trusts["RJ1"];
        let days: Vec<String> = rj1.endpoints.iter().map(|p| p.as_of.to_string()).collect();
        assert_eq!(days, ["2026-10-01", "2026-11-29"]);
        let old = rj1.endpoints[0];
        assert_eq!(
            (old.devices, old.unsupported, old.smb1_enabled),
            (600, 100, 50)
        );
        assert_eq!((old.onboarded, old.onboardable), (500, 600));
        assert_eq!(
            h.trusts["RTH"].endpoints.len(),
            1,
            "RTH only in the newer one"
        );
        let one = headlines(&db(), None, 1).unwrap();
        assert_eq!(one.trusts["RJ1"].endpoints.len(), 1, "only the newest");
    }

    #[test]
    fn the_newest_point_equals_the_trust_summary() {
        let conn = db();
        let h = headlines(&conn, Some("RJ1"), 12).unwrap();
        assert_eq!(h.trusts.len(), 1, "one trust asked for");
        let p = h.trusts["RJ1"]
            .latest_endpoints(h.endpoint_snapshots.last())
            .unwrap();
        let s = telemetry_summary(&conn, "RJ1").unwrap();
        let e = s.endpoints.unwrap();
        assert_eq!(p.devices, e.devices);
        assert_eq!(p.unsupported, e.support.unsupported);
        assert_eq!(p.smb1_enabled, e.smb1.enabled);
        assert_eq!(p.onboarded, e.onboarding.onboarded);
        assert_eq!(
            p.onboardable,
            e.onboarding.onboarded + e.onboarding.inactive + e.onboarding.not_onboarded
        );
        let a = h.trusts["RJ1"]
            .latest_alerts(h.alert_snapshots.last())
            .unwrap();
        let sa = s.alerts.unwrap();
        assert_eq!(
            (a.alerts, a.on_time, a.overdue),
            (sa.alerts, sa.on_time, sa.overdue)
        );
        assert_eq!(a.on_time_share, Some(2.0 / 4.0));
    }
}
