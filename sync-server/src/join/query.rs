//! The telemetry side of the join: indexed aggregate queries over the latest snapshot of
//! each feed, for one trust. Rows are never brought into Rust one by one: the endpoint
//! query groups a trust's rows by (site, OS platform, OS build) inside SQLite (index
//! `endpoints(snapshot, trust, site)`), so what comes back is a few dozen groups whatever
//! the estate's size, and the lifecycle table is applied to the groups. Sampled devices
//! are looked up by host name (index `endpoints(snapshot, hostname_lower)`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{Duration, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use wardcheck_core::checklist::TelemetryCheck;

use super::lifecycle::{self, Support};

/// The snapshot figures come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SnapshotRef {
    pub id: i64,
    pub as_of: NaiveDate,
    /// The SHA-256 of the file imported: with `as_of`, what the figures depend on.
    #[serde(skip)]
    pub sha256: String,
}

/// Counts for one check over one scope (the trust, or one site).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows where the check finds the bad thing.
    pub count: u64,
    /// Rows in scope.
    pub total: u64,
    /// Rows the feed could not judge (field unknown, platform not in the lifecycle table).
    pub unknown: u64,
}

impl Counts {
    fn add(&mut self, bad: u64, total: u64, unknown: u64) {
        self.count += bad;
        self.total += total;
        self.unknown += unknown;
    }
}

/// One (platform, build) group of unsupported endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsGroup {
    pub os_platform: String,
    pub os_build: Option<i64>,
    pub count: u64,
}

/// Everything the join needs from one feed for one trust: counts per check, for the
/// trust and per site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFigures {
    /// By check name ([`TelemetryCheck::name`]).
    pub trust: BTreeMap<&'static str, Counts>,
    pub sites: BTreeMap<String, BTreeMap<&'static str, Counts>>,
}

impl FeedFigures {
    fn add(
        &mut self,
        site: Option<&str>,
        check: TelemetryCheck,
        bad: u64,
        total: u64,
        unknown: u64,
    ) {
        self.trust
            .entry(check.name())
            .or_default()
            .add(bad, total, unknown);
        if let Some(site) = site {
            self.sites
                .entry(site.to_owned())
                .or_default()
                .entry(check.name())
                .or_default()
                .add(bad, total, unknown);
        }
    }
}

/// What the latest snapshots say about one trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustTelemetry {
    pub endpoints: Option<SnapshotRef>,
    pub network: Option<SnapshotRef>,
    pub alerts: Option<SnapshotRef>,
    pub figures: FeedFigures,
    /// Unsupported endpoints by platform and build, largest first.
    pub unsupported: Vec<OsGroup>,
}

/// A sampled device's record in the endpoint snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    pub device_id: String,
    pub device_name: String,
    pub site: String,
    pub os_platform: String,
    pub os_version: Option<String>,
    pub os_build: Option<i64>,
    pub last_seen: String,
    pub onboarding_status: String,
    /// The configuration the device reported (NULL, `None`, when it reported none: e.g.
    /// not onboarded): what a device-scope item is judged on.
    pub missing_security_updates: Option<i64>,
    pub smb1_enabled: Option<bool>,
    pub bitlocker_on: Option<bool>,
    pub firewall_domain: Option<bool>,
    pub firewall_private: Option<bool>,
    pub firewall_public: Option<bool>,
    pub credential_guard_running: Option<bool>,
    pub secure_boot_on: Option<bool>,
}

/// The latest snapshot of a feed (`endpoints`, `network`, `alerts`): the newest day.
pub fn latest_snapshot(conn: &Connection, kind: &str) -> rusqlite::Result<Option<SnapshotRef>> {
    conn.prepare_cached(
        "SELECT id, as_of, sha256 FROM telemetry_snapshots WHERE kind = ?1
         ORDER BY as_of DESC, id DESC LIMIT 1",
    )?
    .query_row(params![kind], |r| {
        let as_of: String = r.get(1)?;
        Ok(SnapshotRef {
            id: r.get(0)?,
            as_of: NaiveDate::parse_from_str(&as_of, "%Y-%m-%d").map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            sha256: r.get(2)?,
        })
    })
    .optional()
}

/// The endpoint checks, with the `endpoint_counts` columns holding each one's bad and
/// unknown devices (see `telemetry::counts` for their definitions; "unknown" means the
/// feed does not know, never "off").
const ENDPOINT_CHECKS: &[(TelemetryCheck, &str, &str)] = &[
    (
        TelemetryCheck::EndpointsSmb1Enabled,
        "smb1_enabled",
        "smb1_unknown",
    ),
    (TelemetryCheck::EndpointsNotOnboarded, "not_onboarded", "0"),
    (
        TelemetryCheck::EndpointsMissingSecurityUpdates,
        "missing_updates",
        "missing_updates_unknown",
    ),
    (
        TelemetryCheck::EndpointsBitlockerOff,
        "bitlocker_off",
        "bitlocker_unknown",
    ),
    (
        TelemetryCheck::EndpointsSecureBootOff,
        "secure_boot_off",
        "secure_boot_unknown",
    ),
    (
        TelemetryCheck::EndpointsCredentialGuardOff,
        "credential_guard_off",
        "credential_guard_unknown",
    ),
    (
        TelemetryCheck::EndpointsFirewallProfileOff,
        "firewall_off",
        "firewall_unknown",
    ),
];

/// The per-site, per-build figures of a trust, read from `endpoint_counts`: the importer
/// counts every check's bad and unknown devices as it reads the file (with the same
/// definitions as the checks above), so a trust's figures are a few dozen rows rather
/// than a scan of every endpoint.
fn endpoint_sql() -> String {
    let mut cols = String::new();
    for (_, bad, unknown) in ENDPOINT_CHECKS {
        cols.push_str(&format!(
            ", coalesce(sum({bad}), 0), coalesce(sum({unknown}), 0)"
        ));
    }
    format!(
        "SELECT site, os_platform, os_build, sum(devices){cols} FROM endpoint_counts
         WHERE snapshot = ?1 AND trust = ?2 GROUP BY site, os_platform, os_build"
    )
}

/// What a trust's figures depend on: the three snapshots (by file hash and day) and the
/// trust. A snapshot's rows never change once imported (another file for the same day
/// is a new snapshot), so figures computed for a key stay right for ever.
type CacheKey = (
    Option<(String, NaiveDate)>,
    Option<(String, NaiveDate)>,
    Option<(String, NaiveDate)>,
    String,
);

/// Figures already computed, so that only the first join of a trust after an import
/// pays for the aggregate queries (a few hundred milliseconds for the largest trust of a
/// national snapshot; BENCHMARKS.md). Keyed by content, not by snapshot id, so two data
/// folders in one process never share an entry.
static CACHE: LazyLock<Mutex<HashMap<CacheKey, Arc<TrustTelemetry>>>> =
    LazyLock::new(Default::default);

/// Most trusts' figures kept: about four snapshots' worth of every NHS trust
/// (RELIABILITY §2: 209 trusts), each a few kilobytes. When full it is emptied.
const CACHE_ENTRIES: usize = 1024;

/// Counts every check for `trust` in the latest snapshots (from the cache when these
/// snapshots were counted before).
pub fn trust_telemetry(conn: &Connection, trust: &str) -> rusqlite::Result<Arc<TrustTelemetry>> {
    let endpoints = latest_snapshot(conn, "endpoints")?;
    let network = latest_snapshot(conn, "network")?;
    let alerts = latest_snapshot(conn, "alerts")?;
    let part = |s: &Option<SnapshotRef>| s.as_ref().map(|s| (s.sha256.clone(), s.as_of));
    let key = (
        part(&endpoints),
        part(&network),
        part(&alerts),
        trust.to_owned(),
    );
    let cache = || CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = cache().get(&key) {
        return Ok(t.clone());
    }
    let t = Arc::new(count_checks(conn, trust, endpoints, network, alerts)?);
    let mut c = cache();
    if c.len() >= CACHE_ENTRIES {
        c.clear();
    }
    c.insert(key, t.clone());
    Ok(t)
}

/// The aggregate queries behind [`trust_telemetry`].
pub fn count_checks(
    conn: &Connection,
    trust: &str,
    endpoints: Option<SnapshotRef>,
    network: Option<SnapshotRef>,
    alerts: Option<SnapshotRef>,
) -> rusqlite::Result<TrustTelemetry> {
    let mut t = TrustTelemetry {
        endpoints,
        network,
        alerts,
        ..Default::default()
    };

    if let Some(snap) = &t.endpoints {
        let mut unsupported: BTreeMap<(String, Option<i64>), u64> = BTreeMap::new();
        let mut stmt = conn.prepare_cached(&endpoint_sql())?;
        let mut rows = stmt.query(params![snap.id, trust])?;
        while let Some(r) = rows.next()? {
            let site: String = r.get(0)?;
            let platform: String = r.get(1)?;
            let build: Option<i64> = r.get(2)?;
            let n = r.get::<_, i64>(3)? as u64;
            let (bad, unknown) = match lifecycle::support(&platform, build, snap.as_of) {
                Support::Unsupported => (n, 0),
                Support::Supported => (0, 0),
                Support::Unknown => (0, n),
            };
            if bad > 0 {
                *unsupported.entry((platform.clone(), build)).or_default() += bad;
            }
            t.figures.add(
                Some(&site),
                TelemetryCheck::EndpointsUnsupportedOs,
                bad,
                n,
                unknown,
            );
            for (i, (check, _, _)) in ENDPOINT_CHECKS.iter().enumerate() {
                let bad = r.get::<_, i64>(4 + 2 * i)? as u64;
                let unknown = r.get::<_, i64>(5 + 2 * i)? as u64;
                t.figures.add(Some(&site), *check, bad, n, unknown);
            }
        }
        let mut groups: Vec<OsGroup> = unsupported
            .into_iter()
            .map(|((os_platform, os_build), count)| OsGroup {
                os_platform,
                os_build,
                count,
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        t.unsupported = groups;
    }

    if let Some(snap) = &t.network {
        // "More than 12 months old": reviewed before this day a year before the snapshot.
        // A firewall with no recorded review is overdue, not unknown: a review that left
        // no record is one an inspector cannot rely on (issue 12, "the checks fixed").
        let year_ago = (snap.as_of - Duration::days(365)).to_string();
        let mut stmt = conn.prepare_cached(
            "SELECT site, count(*),
                    coalesce(sum(vendor_supported = 0), 0),
                    coalesce(sum(admin_interface_exposed = 1), 0),
                    coalesce(sum(last_rule_review < ?3 OR last_rule_review IS NULL), 0),
                    0
             FROM network_devices WHERE snapshot = ?1 AND trust = ?2 GROUP BY site",
        )?;
        let mut rows = stmt.query(params![snap.id, trust, year_ago])?;
        while let Some(r) = rows.next()? {
            let site: String = r.get(0)?;
            let n = r.get::<_, i64>(1)? as u64;
            let get = |i| r.get::<_, i64>(i).map(|v| v as u64);
            let f = &mut t.figures;
            f.add(
                Some(&site),
                TelemetryCheck::FirewallsUnsupportedFirmware,
                get(2)?,
                n,
                0,
            );
            f.add(
                Some(&site),
                TelemetryCheck::FirewallsAdminInterfaceExposed,
                get(3)?,
                n,
                0,
            );
            f.add(
                Some(&site),
                TelemetryCheck::FirewallsRuleReviewOverdue,
                get(4)?,
                n,
                get(5)?,
            );
        }
    }

    if let Some(snap) = &t.alerts {
        // An alert still unacknowledged is late once 48 hours have passed by the end of
        // the snapshot's day; one acknowledged is late if that took more than 48 hours.
        let cutoff = format!(
            "{}T00:00:00Z",
            snap.as_of + Duration::days(1) - Duration::days(2)
        );
        let (n, late): (i64, i64) = conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(CASE
                     WHEN acknowledged IS NULL THEN issued < ?3
                     ELSE julianday(acknowledged) - julianday(issued) > 2.0 END), 0)
                 FROM alerts WHERE snapshot = ?1 AND trust = ?2",
            )?
            .query_row(params![snap.id, trust, cutoff], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        t.figures.add(
            None,
            TelemetryCheck::AlertsUnacknowledged48h,
            late as u64,
            n as u64,
            0,
        );
    }
    Ok(t)
}

/// The endpoint records of `trust` whose host name key (first DNS label, lower case) is
/// `key`, newest first.
pub fn device_records(
    conn: &Connection,
    snapshot: i64,
    trust: &str,
    key: &str,
) -> rusqlite::Result<Vec<DeviceRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, device_name, site, os_platform, os_version, os_build, last_seen,
                onboarding_status, missing_security_updates, smb1_enabled, bitlocker_on,
                firewall_domain, firewall_private, firewall_public, credential_guard_running,
                secure_boot_on
         FROM endpoints WHERE snapshot = ?1 AND hostname_lower = ?2 AND trust = ?3
         ORDER BY last_seen DESC",
    )?;
    stmt.query_map(params![snapshot, key, trust], |r| {
        Ok(DeviceRecord {
            device_id: r.get(0)?,
            device_name: r.get(1)?,
            site: r.get(2)?,
            os_platform: r.get(3)?,
            os_version: r.get(4)?,
            os_build: r.get(5)?,
            last_seen: r.get(6)?,
            onboarding_status: r.get(7)?,
            missing_security_updates: r.get(8)?,
            smb1_enabled: r.get(9)?,
            bitlocker_on: r.get(10)?,
            firewall_domain: r.get(11)?,
            firewall_private: r.get(12)?,
            firewall_public: r.get(13)?,
            credential_guard_running: r.get(14)?,
            secure_boot_on: r.get(15)?,
        })
    })?
    .collect()
}
