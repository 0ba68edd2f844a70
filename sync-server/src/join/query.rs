//! The telemetry side of the join: indexed aggregate queries over the latest snapshot of
//! each feed, for one trust. Rows are never brought into Rust one by one: the endpoint
//! query groups a trust's rows by (site, OS platform, OS build) inside SQLite (index
//! `endpoints(snapshot, trust, site)`), so what comes back is a few dozen groups whatever
//! the estate's size, and the lifecycle table is applied to the groups. Sampled devices
//! are looked up by host name (index `endpoints(snapshot, hostname_lower)`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;
use wardcheck_core::checklist::TelemetryCheck;
use wardcheck_core::judge::{DeviceKind, Judge, Span, SpanUnit};

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

/// Counts for one check over one scope (the trust, or one site), after the item's judge
/// chose which devices count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Those where the check finds the bad thing.
    pub count: u64,
    /// Those counted: the devices (firewalls, alerts) the judge selects.
    pub total: u64,
    /// Those counted that give no data for the check (field unknown, sensor not
    /// reporting, an edition the lifecycle table needs but the feed does not give).
    pub unknown: u64,
    /// `endpoints.unsupported_os`: those supported only with ESU evidence (Windows 10
    /// 22H2 past its end), neither bad nor known good.
    #[serde(skip_serializing_if = "is_zero")]
    pub esu_only: u64,
    /// `endpoints.unsupported_os`: devices the judge selects on platforms the lifecycle
    /// table does not cover (Linux, macOS, mobile): not in `total`.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_judged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One (platform, build) group of unsupported endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsGroup {
    pub os_platform: String,
    pub os_build: Option<i64>,
    pub count: u64,
}

/// Where a device's sensor stands (`telemetry::counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensor {
    /// Onboarded and reporting: the only state whose configuration is data.
    Reporting,
    /// Onboarded, but the sensor has stopped reporting (inactive, impaired).
    Inactive,
    /// A sensor could run here but does not.
    CanOnboard,
    /// Only discovered on the network: no sensor can run on it.
    Discovered,
}

impl Sensor {
    fn from_name(s: &str) -> Sensor {
        match s {
            "reporting" => Sensor::Reporting,
            "inactive" => Sensor::Inactive,
            "can-onboard" => Sensor::CanOnboard,
            _ => Sensor::Discovered,
        }
    }

    /// From a device row's onboarding and health status (`telemetry::sensor_of`, the
    /// definition the counts use).
    pub fn of(onboarding: &str, health: &str) -> Sensor {
        Sensor::from_name(crate::telemetry::sensor_of(onboarding, health))
    }
}

/// One group of a trust's endpoints, as `endpoint_counts` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointGroup {
    pub site: String,
    pub os_platform: String,
    pub os_build: Option<i64>,
    pub os_edition: Option<String>,
    pub kind: DeviceKind,
    pub sensor: Sensor,
    pub devices: u64,
    /// (bad, unknown) for each of [`CONFIG_CHECKS`], in order.
    pub flags: [(u64, u64); 6],
}

impl EndpointGroup {
    /// Whether a judge counts this group's devices: its kind, and whether it counts
    /// devices Defender only discovered.
    fn selected_by(&self, judge: &Judge) -> bool {
        judge.devices.contains(&self.kind)
            && (judge.discovered || self.sensor != Sensor::Discovered)
    }
}

/// One firewall of the trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRow {
    pub site: String,
    pub vendor_supported: bool,
    pub admin_interface_exposed: bool,
    pub last_rule_review: Option<NaiveDate>,
}

/// One high-severity alert sent to the trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub issued: DateTime<Utc>,
    pub acknowledged: Option<DateTime<Utc>>,
    pub closed: Option<DateTime<Utc>>,
}

/// What the latest snapshots say about one trust: its endpoint groups, firewalls and
/// alerts, from which each item's figures are counted under its own judge
/// ([`TrustTelemetry::counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustTelemetry {
    pub endpoints: Option<SnapshotRef>,
    pub network: Option<SnapshotRef>,
    pub alerts: Option<SnapshotRef>,
    pub groups: Vec<EndpointGroup>,
    pub firewalls: Vec<FirewallRow>,
    pub alert_rows: Vec<AlertRow>,
}

/// The feed a check reads: `endpoints`, `network` or `alerts`.
pub(super) fn feed(check: TelemetryCheck) -> &'static str {
    match check.name().split('.').next() {
        Some("firewalls") => "network",
        Some("alerts") => "alerts",
        _ => "endpoints",
    }
}

/// The end of a snapshot's day, the moment its figures are judged at.
pub fn end_of_day(d: NaiveDate) -> DateTime<Utc> {
    (d + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
}

impl TrustTelemetry {
    /// Whether the trust has rows in the latest snapshot of the check's feed.
    pub fn has_rows(&self, check: TelemetryCheck) -> bool {
        match feed(check) {
            "network" => self.network.is_some() && !self.firewalls.is_empty(),
            "alerts" => self.alerts.is_some() && !self.alert_rows.is_empty(),
            _ => self.endpoints.is_some() && !self.groups.is_empty(),
        }
    }

    /// The check's figures for the trust (`site`: one of its sites) under `judge`;
    /// `None` when the trust has no rows in the feed's latest snapshot.
    pub fn counts(
        &self,
        check: TelemetryCheck,
        judge: &Judge,
        site: Option<&str>,
    ) -> Option<Counts> {
        if !self.has_rows(check) {
            return None;
        }
        let in_site = |s: &str| site.is_none_or(|x| x == s);
        let mut c = Counts::default();
        match feed(check) {
            "network" => {
                let as_of = self.network.as_ref()?.as_of;
                let window = judge.window.unwrap_or(Span::months(12));
                // Overdue when reviewed before the day a window before the snapshot's.
                let oldest = window
                    .before(as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                    .date_naive();
                for f in self.firewalls.iter().filter(|f| in_site(&f.site)) {
                    c.total += 1;
                    let bad = match check {
                        TelemetryCheck::FirewallsUnsupportedFirmware => !f.vendor_supported,
                        TelemetryCheck::FirewallsAdminInterfaceExposed => f.admin_interface_exposed,
                        // No recorded review is overdue, not unknown (issue 12).
                        _ => f.last_rule_review.is_none_or(|d| d < oldest),
                    };
                    c.count += u64::from(bad);
                }
            }
            "alerts" => {
                // Alerts have no site: the trust's figures stand for every site.
                let end = end_of_day(self.alerts.as_ref()?.as_of);
                let from = judge.window.map(|w| w.before(end));
                for a in &self.alert_rows {
                    if from.is_some_and(|f| a.issued < f) || a.issued >= end {
                        continue;
                    }
                    c.total += 1;
                    let (done, within) = match check {
                        TelemetryCheck::AlertsUnremediated => {
                            (a.closed, judge.deadline.unwrap_or(Span::days(14)))
                        }
                        _ => (
                            a.acknowledged,
                            Span {
                                amount: 48,
                                unit: SpanUnit::Hours,
                            },
                        ),
                    };
                    let due = within.after(a.issued);
                    let late = match done {
                        Some(t) => t > due,
                        None => due < end,
                    };
                    c.count += u64::from(late);
                }
            }
            _ => {
                let as_of = self.endpoints.as_ref()?.as_of;
                for g in self.groups.iter().filter(|g| in_site(&g.site)) {
                    if !g.selected_by(judge) {
                        continue;
                    }
                    let n = g.devices;
                    if check == TelemetryCheck::EndpointsUnsupportedOs
                        && !lifecycle::covers(&g.os_platform)
                    {
                        c.not_judged += n;
                        continue;
                    }
                    c.total += n;
                    match check {
                        TelemetryCheck::EndpointsUnsupportedOs => {
                            match lifecycle::support(
                                &g.os_platform,
                                g.os_build,
                                g.os_edition.as_deref(),
                                as_of,
                            ) {
                                Support::Unsupported => c.count += n,
                                Support::Supported => {}
                                Support::EsuOnly => c.esu_only += n,
                                Support::Unknown => c.unknown += n,
                            }
                        }
                        TelemetryCheck::EndpointsNotOnboarded => {
                            if g.sensor != Sensor::Reporting {
                                c.count += n;
                            }
                        }
                        _ => {
                            let i = CONFIG_CHECKS
                                .iter()
                                .position(|(k, _, _)| *k == check)
                                .expect("an endpoint configuration check");
                            if g.sensor == Sensor::Reporting {
                                c.count += g.flags[i].0;
                                c.unknown += g.flags[i].1;
                            } else {
                                // A sensor that is not reporting gives no configuration.
                                c.unknown += n;
                            }
                        }
                    }
                }
            }
        }
        Some(c)
    }

    /// Unsupported endpoints under `judge`, by platform and build, largest first.
    pub fn unsupported_groups(&self, judge: &Judge) -> Vec<OsGroup> {
        let Some(snap) = &self.endpoints else {
            return Vec::new();
        };
        let mut by: BTreeMap<(String, Option<i64>), u64> = BTreeMap::new();
        for g in &self.groups {
            if !g.selected_by(judge) {
                continue;
            }
            if lifecycle::support(
                &g.os_platform,
                g.os_build,
                g.os_edition.as_deref(),
                snap.as_of,
            ) == Support::Unsupported
            {
                *by.entry((g.os_platform.clone(), g.os_build)).or_default() += g.devices;
            }
        }
        let mut groups: Vec<OsGroup> = by
            .into_iter()
            .map(|((os_platform, os_build), count)| OsGroup {
                os_platform,
                os_build,
                count,
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        groups
    }
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
    pub health_status: String,
    /// The edition class, when the feed gives one.
    pub os_edition: Option<String>,
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
    Ok(newest_snapshots(conn, kind, 1)?.into_iter().next())
}

/// The newest `n` snapshots of a feed, newest first.
pub fn newest_snapshots(
    conn: &Connection,
    kind: &str,
    n: usize,
) -> rusqlite::Result<Vec<SnapshotRef>> {
    conn.prepare_cached(
        "SELECT id, as_of, sha256 FROM telemetry_snapshots WHERE kind = ?1
         ORDER BY as_of DESC, id DESC LIMIT ?2",
    )?
    .query_map(params![kind, n as i64], |r| {
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
    })?
    .collect()
}

/// The endpoint configuration checks, with the `endpoint_counts` columns holding each
/// one's bad and unknown devices (`telemetry::counts` has their definitions; "unknown"
/// means the feed does not know, never "off").
pub const CONFIG_CHECKS: [(TelemetryCheck, &str, &str); 6] = [
    (
        TelemetryCheck::EndpointsSmb1Enabled,
        "smb1_enabled",
        "smb1_unknown",
    ),
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

/// A trust's groups, read from `endpoint_counts` (the importer counts as it reads, so a
/// trust's figures are a few hundred rows rather than a scan of every endpoint).
fn endpoint_sql() -> String {
    let mut cols = String::new();
    for (_, bad, unknown) in CONFIG_CHECKS {
        cols.push_str(&format!(", {bad}, {unknown}"));
    }
    format!(
        "SELECT site, os_platform, os_build, os_edition, kind, sensor, devices{cols}
         FROM endpoint_counts WHERE snapshot = ?1 AND trust = ?2"
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

/// The queries behind [`trust_telemetry`]: the trust's endpoint groups, its firewalls
/// and its alerts, each through an index on (snapshot, trust).
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
    let conversion = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };

    if let Some(snap) = &t.endpoints {
        let mut stmt = conn.prepare_cached(&endpoint_sql())?;
        let mut rows = stmt.query(params![snap.id, trust])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(4)?;
            let mut flags = [(0u64, 0u64); 6];
            for (i, f) in flags.iter_mut().enumerate() {
                *f = (
                    r.get::<_, i64>(7 + 2 * i)? as u64,
                    r.get::<_, i64>(8 + 2 * i)? as u64,
                );
            }
            t.groups.push(EndpointGroup {
                site: r.get(0)?,
                os_platform: r.get(1)?,
                os_build: r.get(2)?,
                os_edition: r.get(3)?,
                kind: DeviceKind::from_name(&kind)
                    .ok_or_else(|| conversion(4, format!("unknown kind {kind}")))?,
                sensor: Sensor::from_name(&r.get::<_, String>(5)?),
                devices: r.get::<_, i64>(6)? as u64,
                flags,
            });
        }
    }

    if let Some(snap) = &t.network {
        let mut stmt = conn.prepare_cached(
            "SELECT site, vendor_supported, admin_interface_exposed, last_rule_review
             FROM network_devices WHERE snapshot = ?1 AND trust = ?2",
        )?;
        let mut rows = stmt.query(params![snap.id, trust])?;
        while let Some(r) = rows.next()? {
            let review: Option<String> = r.get(3)?;
            t.firewalls.push(FirewallRow {
                site: r.get(0)?,
                vendor_supported: r.get(1)?,
                admin_interface_exposed: r.get(2)?,
                last_rule_review: match review {
                    Some(d) => Some(
                        NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                            .map_err(|e| conversion(3, e.to_string()))?,
                    ),
                    None => None,
                },
            });
        }
    }

    if let Some(snap) = &t.alerts {
        let mut stmt = conn.prepare_cached(
            "SELECT issued, acknowledged, closed FROM alerts WHERE snapshot = ?1 AND trust = ?2",
        )?;
        let mut rows = stmt.query(params![snap.id, trust])?;
        let time = |i: usize, v: Option<String>| -> rusqlite::Result<Option<DateTime<Utc>>> {
            v.map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.to_utc())
                    .map_err(|e| conversion(i, e.to_string()))
            })
            .transpose()
        };
        while let Some(r) = rows.next()? {
            t.alert_rows.push(AlertRow {
                issued: time(0, Some(r.get(0)?))?.expect("given"),
                acknowledged: time(1, r.get(1)?)?,
                closed: time(2, r.get(2)?)?,
            });
        }
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
                secure_boot_on, health_status, os_edition
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
            health_status: r.get(16)?,
            os_edition: r.get(17)?,
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
