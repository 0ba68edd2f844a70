//! The figures behind the trust's charts on the inspection page
//! (`GET /api/v1/inspections/{id}/telemetry-summary`): the OS support mix, SMBv1,
//! onboarding, and how fast the trust acknowledged cyber alerts, from the latest
//! snapshots.
//!
//! Endpoints are read from `endpoint_counts` (the importer's per-build counts), never
//! from the device rows, so a trust of 225,000 endpoints in a national snapshot of 2.5
//! million is a few dozen rows to read. Alerts are grouped inside SQLite through the
//! index on `alerts(snapshot, trust)`: what comes back is a handful of numbers whatever
//! the number of alerts.
//!
//! Definitions match the join's checks (`super`): an OS is judged by [`lifecycle`] on the
//! snapshot's day; an alert is late when it was acknowledged more than 48 hours after it
//! was issued, or is still unacknowledged 48 hours after issue by the end of the
//! snapshot's day.

use chrono::Duration;
use rusqlite::{Connection, params};
use serde::Serialize;

use super::lifecycle::{self, Support};
use super::query::{SnapshotRef, latest_snapshot};
use crate::limits;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustSummary {
    pub trust: String,
    /// The latest snapshot of each feed, or null when none was ever imported.
    pub snapshots: SummarySnapshots,
    /// Null when the trust has no rows in the latest endpoint snapshot.
    pub endpoints: Option<EndpointSummary>,
    /// Null when the trust has no rows in the latest alerts snapshot.
    pub alerts: Option<AlertSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummarySnapshots {
    pub endpoints: Option<SnapshotRef>,
    pub alerts: Option<SnapshotRef>,
}

/// Devices by whether their OS receives security updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SupportMix {
    pub supported: u64,
    pub unsupported: u64,
    /// Supported only with Extended Security Updates, which telemetry cannot show
    /// (Windows 10 22H2 after 14 Oct 2025).
    pub esu_only: u64,
    /// A platform, build or edition the lifecycle table cannot judge (e.g. build 19044
    /// with no edition: LTSC is supported, Enterprise is not).
    pub unknown: u64,
}

impl SupportMix {
    fn add(&mut self, support: Support, n: u64) {
        match support {
            Support::Supported => self.supported += n,
            Support::Unsupported => self.unsupported += n,
            Support::EsuOnly => self.esu_only += n,
            Support::Unknown => self.unknown += n,
        }
    }
}

/// One OS platform and build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsShare {
    pub os_platform: String,
    pub os_build: Option<i64>,
    /// The edition class, when the feed gives one.
    pub os_edition: Option<String>,
    pub devices: u64,
    pub support: &'static str,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Smb1 {
    pub enabled: u64,
    pub disabled: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Onboarding {
    /// Onboarded, sensor reporting.
    pub onboarded: u64,
    /// Onboarded, but the sensor has stopped reporting (inactive, impaired).
    pub inactive: u64,
    /// A sensor could run there but does not.
    pub not_onboarded: u64,
    /// Only discovered on the network (printers, IoT): no sensor can run there.
    pub discovered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointSummary {
    pub devices: u64,
    pub support: SupportMix,
    /// The largest (platform, build) groups, largest first, at most
    /// [`limits::TELEMETRY_SUMMARY_OS_GROUPS`].
    pub os: Vec<OsShare>,
    /// The devices of every group not listed in `os`, by support.
    pub os_other: SupportMix,
    pub smb1: Smb1,
    pub onboarding: Onboarding,
}

/// A range of hours to acknowledge an alert: more than `from_hours` (from 0 itself for
/// the first), up to and including `to_hours`, or open-ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckBucket {
    pub label: &'static str,
    pub from_hours: u32,
    pub to_hours: Option<u32>,
    pub alerts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    pub alerts: u64,
    pub acknowledged: u64,
    /// Acknowledged within 48 hours of issue.
    pub on_time: u64,
    /// Acknowledged more than 48 hours after issue.
    pub late: u64,
    /// Not acknowledged, and 48 hours have passed.
    pub open_overdue: u64,
    /// Not acknowledged, still within 48 hours.
    pub open_within_48h: u64,
    /// `late + open_overdue`: the join's `alerts.unacknowledged_48h`.
    pub overdue: u64,
    /// Median hours from issue to acknowledgement, over those acknowledged.
    pub median_hours_to_acknowledge: Option<f64>,
    /// Acknowledged alerts by hours to acknowledge.
    pub hours_to_acknowledge: Vec<AckBucket>,
}

/// The ranges of [`AlertSummary::hours_to_acknowledge`]: the 48-hour target split so
/// that a trust can see how close to it it runs, and late ones by how late.
const BUCKETS: &[(&str, u32, Option<u32>)] = &[
    ("under 4 hours", 0, Some(4)),
    ("4 to 12 hours", 4, Some(12)),
    ("12 to 24 hours", 12, Some(24)),
    ("24 to 48 hours", 24, Some(48)),
    ("2 to 7 days", 48, Some(168)),
    ("over 7 days", 168, None),
];

/// Hours from issue to acknowledgement, in SQL.
const HOURS: &str = "(julianday(acknowledged) - julianday(issued)) * 24.0";

/// The summary of `trust` in the latest snapshots, on `conn` (a connection that sees the
/// telemetry tables).
pub fn telemetry_summary(conn: &Connection, trust: &str) -> rusqlite::Result<TrustSummary> {
    let endpoints = latest_snapshot(conn, "endpoints")?;
    let alerts = latest_snapshot(conn, "alerts")?;
    Ok(TrustSummary {
        trust: trust.to_owned(),
        endpoints: match &endpoints {
            Some(s) => endpoint_summary(conn, s, trust)?,
            None => None,
        },
        alerts: match &alerts {
            Some(s) => alert_summary(conn, s, trust)?,
            None => None,
        },
        snapshots: SummarySnapshots { endpoints, alerts },
    })
}

fn endpoint_summary(
    conn: &Connection,
    snap: &SnapshotRef,
    trust: &str,
) -> rusqlite::Result<Option<EndpointSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT os_platform, os_build, os_edition, sum(devices),
                sum(CASE WHEN sensor = 'reporting' THEN smb1_enabled ELSE 0 END),
                sum(CASE WHEN sensor = 'reporting' THEN smb1_unknown ELSE devices END),
                sum(CASE WHEN sensor = 'reporting' THEN devices ELSE 0 END),
                sum(CASE WHEN sensor = 'inactive' THEN devices ELSE 0 END),
                sum(CASE WHEN sensor = 'can-onboard' THEN devices ELSE 0 END),
                sum(CASE WHEN sensor = 'discovered' THEN devices ELSE 0 END)
         FROM endpoint_counts WHERE snapshot = ?1 AND trust = ?2
         GROUP BY os_platform, os_build, os_edition",
    )?;
    let mut rows = stmt.query(params![snap.id, trust])?;
    let mut s = EndpointSummary {
        devices: 0,
        support: SupportMix::default(),
        os: Vec::new(),
        os_other: SupportMix::default(),
        smb1: Smb1::default(),
        onboarding: Onboarding::default(),
    };
    let mut groups = Vec::new();
    while let Some(r) = rows.next()? {
        let platform: String = r.get(0)?;
        let build: Option<i64> = r.get(1)?;
        let edition: Option<String> = r.get(2)?;
        let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        let (devices, smb1, smb1_unknown) = (n(3)?, n(4)?, n(5)?);
        let support = lifecycle::support(&platform, build, edition.as_deref(), snap.as_of);
        s.devices += devices;
        s.support.add(support, devices);
        // As in the join: a sensor that is not reporting gives no configuration.
        s.smb1.enabled += smb1;
        s.smb1.unknown += smb1_unknown;
        s.smb1.disabled += devices.saturating_sub(smb1 + smb1_unknown);
        s.onboarding.onboarded += n(6)?;
        s.onboarding.inactive += n(7)?;
        s.onboarding.not_onboarded += n(8)?;
        s.onboarding.discovered += n(9)?;
        groups.push((platform, build, edition, devices, support));
    }
    if s.devices == 0 {
        return Ok(None);
    }
    // Largest first; ties in a fixed order, so the page does not reshuffle.
    groups.sort_by(|a, b| {
        b.3.cmp(&a.3)
            .then_with(|| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)))
    });
    for (i, (platform, build, edition, devices, support)) in groups.into_iter().enumerate() {
        if i < limits::TELEMETRY_SUMMARY_OS_GROUPS {
            s.os.push(OsShare {
                os_platform: platform,
                os_build: build,
                os_edition: edition,
                devices,
                support: support.name(),
            });
        } else {
            s.os_other.add(support, devices);
        }
    }
    Ok(Some(s))
}

fn alert_summary(
    conn: &Connection,
    snap: &SnapshotRef,
    trust: &str,
) -> rusqlite::Result<Option<AlertSummary>> {
    // As in the join: an open alert is overdue once 48 hours have passed by the end of
    // the snapshot's day.
    let cutoff = format!(
        "{}T00:00:00Z",
        snap.as_of + Duration::days(1) - Duration::days(2)
    );
    let mut buckets = String::new();
    for (_, from, to) in BUCKETS {
        // Up to and including each bound, so that exactly 48 hours is on time, as the
        // join counts it. An acknowledgement stamped before its alert (a clock error in
        // the feed) counts as immediate rather than vanishing from the chart.
        let cond = match (from, to) {
            (0, Some(to)) => format!("{HOURS} <= {to}"),
            (from, Some(to)) => format!("{HOURS} > {from} AND {HOURS} <= {to}"),
            (from, None) => format!("{HOURS} > {from}"),
        };
        buckets.push_str(&format!(
            ", coalesce(sum(acknowledged IS NOT NULL AND {cond}), 0)"
        ));
    }
    let sql = format!(
        "SELECT count(*), count(acknowledged),
                coalesce(sum(acknowledged IS NOT NULL AND {HOURS} > 48.0), 0),
                coalesce(sum(acknowledged IS NULL AND issued < ?3), 0){buckets}
         FROM alerts WHERE snapshot = ?1 AND trust = ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let (alerts, acknowledged, late, open_overdue, counts) =
        stmt.query_row(params![snap.id, trust, cutoff], |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            let mut counts = Vec::with_capacity(BUCKETS.len());
            for i in 0..BUCKETS.len() {
                counts.push(n(4 + i)?);
            }
            Ok((n(0)?, n(1)?, n(2)?, n(3)?, counts))
        })?;
    if alerts == 0 {
        return Ok(None);
    }
    let median = if acknowledged == 0 {
        None
    } else {
        // The lower median: the middle one of an odd count, the lower middle of an even.
        conn.prepare_cached(&format!(
            "SELECT max({HOURS}, 0.0) AS h FROM alerts
             WHERE snapshot = ?1 AND trust = ?2 AND acknowledged IS NOT NULL
             ORDER BY h LIMIT 1 OFFSET ?3"
        ))?
        .query_row(
            params![snap.id, trust, (acknowledged as i64 - 1) / 2],
            |r| r.get::<_, f64>(0),
        )
        .map(|h| Some((h * 10.0).round() / 10.0))?
    };
    Ok(Some(AlertSummary {
        alerts,
        acknowledged,
        on_time: acknowledged.saturating_sub(late),
        late,
        open_overdue,
        open_within_48h: alerts.saturating_sub(acknowledged + open_overdue),
        overdue: late + open_overdue,
        median_hours_to_acknowledge: median,
        hours_to_acknowledge: BUCKETS
            .iter()
            .zip(counts)
            .map(|((label, from, to), alerts)| AckBucket {
                label,
                from_hours: *from,
                to_hours: *to,
                alerts,
            })
            .collect(),
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two snapshots (endpoints and alerts, 2026-11-29) of RJ1 and RTH.
    pub(crate) fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE telemetry_snapshots (id INTEGER PRIMARY KEY, kind TEXT, as_of TEXT,
                 sha256 TEXT, rows INTEGER, bytes INTEGER, imported_at TEXT, imported_by TEXT);
             INSERT INTO telemetry_snapshots VALUES
                 (1, 'endpoints', '2026-11-29', 'a', 0, 0, '', ''),
                 (2, 'alerts', '2026-11-29', 'b', 0, 0, '', '');
             CREATE TABLE endpoint_counts (snapshot, trust, site, os_platform, os_build,
                 os_edition, kind, sensor, devices, smb1_enabled, smb1_unknown);
             INSERT INTO endpoint_counts VALUES
                 (1, 'RJ1', 'RJ121', 'Windows10', 19045, NULL, 'end-user', 'reporting', 880, 10, 5),
                 (1, 'RJ1', 'RJ121', 'Windows10', 19045, NULL, 'end-user', 'inactive', 20, 3, 0),
                 (1, 'RJ1', 'RJ122', 'Windows10', 19045, NULL, 'end-user', 'reporting', 100, 0, 0),
                 (1, 'RJ1', 'RJ121', 'Windows10', 19044, 'ltsc', 'medical', 'reporting', 7, 0, 0),
                 (1, 'RJ1', 'RJ121', 'Windows10', 19044, NULL, 'end-user', 'reporting', 5, 0, 0),
                 (1, 'RJ1', 'RJ121', 'Windows7', 7601, NULL, 'medical', 'can-onboard', 40, 30, 0),
                 (1, 'RJ1', 'RJ121', 'Linux', NULL, NULL, 'server', 'discovered', 3, 0, 3),
                 (1, 'RTH', 'RTH08', 'Windows7', 7601, NULL, 'end-user', 'reporting', 999, 0, 0);
             CREATE TABLE alerts (snapshot, trust, alert_id, issued, acknowledged, closed);
             INSERT INTO alerts VALUES
                 (2, 'RJ1', 'a1', '2026-11-01T00:00:00Z', '2026-11-01T02:00:00Z', NULL),
                 (2, 'RJ1', 'a2', '2026-11-01T00:00:00Z', '2026-11-01T20:00:00Z', NULL),
                 (2, 'RJ1', 'a3', '2026-11-01T00:00:00Z', '2026-11-04T00:00:00Z', NULL),
                 (2, 'RJ1', 'a4', '2026-11-01T00:00:00Z', NULL, NULL),
                 (2, 'RJ1', 'a5', '2026-11-29T12:00:00Z', NULL, NULL),
                 (2, 'RTH', 'b1', '2026-11-01T00:00:00Z', NULL, NULL);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn endpoints_are_summed_by_build_and_judged_by_the_lifecycle_table() {
        let s = telemetry_summary(&db(), "RJ1").unwrap();
        let e = s.endpoints.expect("RJ1 has endpoints");
        assert_eq!(e.devices, 1055);
        assert_eq!(
            e.support,
            SupportMix {
                supported: 7,
                unsupported: 40,
                esu_only: 1000,
                unknown: 8
            },
            "22H2 is ESU-only; 19044 is supported as LTSC, unknown with no edition"
        );
        assert_eq!(e.os[0].devices, 1000, "the two sites' 19045 are one group");
        assert_eq!(e.os[0].support, "esu_only");
        assert_eq!(e.os[1].support, "unsupported");
        assert_eq!(
            e.smb1,
            Smb1 {
                enabled: 10,
                disabled: 977,
                unknown: 68
            },
            "a sensor that is not reporting gives no data"
        );
        assert_eq!(
            e.onboarding,
            Onboarding {
                onboarded: 992,
                inactive: 20,
                not_onboarded: 40,
                discovered: 3
            }
        );
    }

    #[test]
    fn alerts_are_bucketed_by_hours_to_acknowledge_and_late_ones_counted() {
        let a = telemetry_summary(&db(), "RJ1")
            .unwrap()
            .alerts
            .expect("RJ1 has alerts");
        assert_eq!((a.alerts, a.acknowledged), (5, 3));
        assert_eq!(a.late, 1, "72 hours is late");
        assert_eq!(a.open_overdue, 1, "open since the 1st");
        assert_eq!(a.open_within_48h, 1, "issued on the snapshot's day");
        assert_eq!(a.overdue, 2);
        assert_eq!(a.median_hours_to_acknowledge, Some(20.0));
        let counts: Vec<u64> = a.hours_to_acknowledge.iter().map(|b| b.alerts).collect();
        assert_eq!(counts, [1, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn a_trust_without_rows_has_no_figures() {
        let s = telemetry_summary(&db(), "RX2").unwrap();
        assert!(s.endpoints.is_none() && s.alerts.is_none());
        assert!(
            s.snapshots.endpoints.is_some(),
            "the snapshot is still named"
        );
    }
}
