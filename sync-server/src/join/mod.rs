//! The join: each telemetry check of an inspection's checklist, computed for its trust
//! from the latest telemetry snapshots, set beside the inspector's answer; and each
//! sampled device matched with its telemetry record.
//!
//! # Checks (what each counts, in the latest snapshot of its feed, for the trust)
//!
//! | check | counts | total |
//! |---|---|---|
//! | `endpoints.unsupported_os` | endpoints whose OS platform and build are out of support on the snapshot's day ([`lifecycle`]: XP, Vista, 7, 8, 8.1, Server 2003-2012 R2; Windows 10 builds other than 19044/19045 and the long-term servicing 14393/17763; old Windows 11 releases) | endpoints |
//! | `endpoints.smb1_enabled` | SMBv1 enabled | endpoints |
//! | `endpoints.not_onboarded` | `onboarding_status` other than `onboarded` | endpoints |
//! | `endpoints.missing_security_updates` | one or more security updates missing | endpoints |
//! | `endpoints.bitlocker_off` | BitLocker off | endpoints |
//! | `endpoints.secure_boot_off` | Secure Boot off | endpoints |
//! | `endpoints.credential_guard_off` | Credential Guard not running | endpoints |
//! | `endpoints.firewall_profile_off` | any of the domain, private, public profiles off | endpoints |
//! | `firewalls.unsupported_firmware` | firmware not supported by the vendor | firewalls |
//! | `firewalls.admin_interface_exposed` | admin interface reachable from the internet | firewalls |
//! | `firewalls.rule_review_overdue` | last rule review more than 365 days before the snapshot, or none recorded | firewalls |
//! | `alerts.unacknowledged_48h` | alerts acknowledged more than 48 hours after issue, or not acknowledged 48 hours after issue by the end of the snapshot's day | alerts |
//!
//! A field the feed does not know (NULL: e.g. no configuration from a device that is not
//! onboarded, a platform the lifecycle table does not cover) is counted as `unknown`,
//! never as bad. Each check is computed for the whole trust; when the inspection names
//! sites, the figures for each named site are given beside (alerts have no site).
//!
//! # Verdicts
//!
//! See [`verdict()`]: 'met' beside a count above zero is **contradicted**, beside zero
//! **corroborated**; 'not met' or 'partly met' beside a count above zero is corroborated,
//! beside zero **telemetry_silent** (a problem the telemetry does not see: never a
//! contradiction); no answer or 'not applicable'
//! gives the figures with `unanswered`; a trust with no rows in the feed's latest snapshot
//! (or no snapshot at all) gives **no_telemetry**.
//!
//! A device-scope item (answered once per sampled device, the `w10-*` items) is judged
//! **device by device**: each sampled device's answer beside its own telemetry record
//! (matched by host name, below), by the same table ([`DeviceJudgement`]). The item is
//! contradicted if any device's record contradicts its answer, else corroborated if any
//! agrees; a device the telemetry does not know is `unmanaged` and never judged by the
//! estate; a record that does not report the field (e.g. not onboarded) does not say.
//! The trust's figures stay beside it as context, never as the verdict: one bad device
//! among 100,000 does not contradict three clean sampled ones (issue 12, "device-scope
//! verdicts from the device").
//!
//! # Sampled devices
//!
//! Matched by host name: the first DNS label, case-insensitive (`GSTT-WS-0042` matches
//! `gstt-ws-0042.gstt.nhs.uk`), among the trust's rows of the latest endpoint snapshot:
//! - `unmanaged`: no record (a device on site that central telemetry does not know);
//! - `build_differs`: the build read on screen (e.g. "build 17763.6414") differs from the
//!   record's `os_build`;
//! - `stale`: the record was last seen more than 30 days before the snapshot's day;
//! - `matched`: otherwise;
//! - `no_telemetry`: the trust has no rows in the endpoint feed.
//!
//! # Speed
//!
//! Three aggregate queries per trust, each over the trust's rows through the index on
//! (snapshot, trust, site), grouped in SQLite, and one indexed look-up per sampled
//! device. The aggregates scan every row of the trust (about 1.5 µs a row here: 360 ms
//! for a 225,000-endpoint trust), so their result is kept in memory by snapshot content
//! and trust ([`trust_telemetry`]): only the first join of a trust after an import pays
//! for them, and the rest take a few milliseconds. `cargo bench -p wardcheck-server
//! --bench join` measures both (BENCHMARKS.md, "Telemetry").

mod headline;
pub mod lifecycle;
mod query;
#[cfg(test)]
mod scenarios;
pub(crate) mod summary;
mod verdict;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::Connection;
use serde::Serialize;
use uuid::Uuid;
use wardcheck_core::checklist::{Checklist, Scope, TelemetryCheck};
use wardcheck_core::inspection::InspectionView;
use wardcheck_core::judge::{DeviceKind, Judge, trim_float};

use lifecycle::Support;

pub use crate::telemetry::thousands;
pub use headline::{AlertPoint, EndpointPoint, Headlines, Trend, headlines};
use query::feed;
pub use query::{
    Counts, DeviceRecord, OsGroup, Sensor, SnapshotRef, TrustTelemetry, count_checks,
    latest_snapshot, trust_telemetry,
};
pub use summary::{
    AckBucket, AlertSummary, EndpointSummary, Onboarding, OsShare, Smb1, SummarySnapshots,
    SupportMix, TrustSummary, telemetry_summary,
};
pub use verdict::{Compliance, Verdict, judge, verdict};

/// A record last seen this many days or more before its snapshot is stale.
pub const STALE_AFTER_DAYS: i64 = 30;

/// Most (platform, build) groups listed beside `endpoints.unsupported_os`.
const MAX_OS_GROUPS: usize = 8;

/// The join of one inspection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Join {
    pub inspection: Uuid,
    pub trust: String,
    pub sites: Vec<String>,
    /// The latest snapshot of each feed, or null when none was ever imported.
    pub snapshots: Snapshots,
    /// How many items have each verdict.
    pub totals: BTreeMap<&'static str, usize>,
    /// Every checklist item that carries a telemetry check, in checklist order.
    pub items: Vec<ItemJoin>,
    pub devices: Vec<DeviceMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshots {
    pub endpoints: Option<SnapshotRef>,
    pub network: Option<SnapshotRef>,
    pub alerts: Option<SnapshotRef>,
}

/// One item's telemetry check beside its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemJoin {
    pub item: String,
    pub section: String,
    pub scope: Scope,
    pub check: TelemetryCheck,
    pub verdict: Verdict,
    /// The answer judged: the item's, or for a device-scope item the worst of its
    /// sampled devices'.
    pub answer: Option<Compliance>,
    /// How many sampled devices answered a device-scope item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices_answered: Option<usize>,
    /// A device-scope item: each answering device's answer beside its own record. The
    /// item's verdict is theirs; the counts are the estate's, shown as context.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub judged_devices: Vec<DeviceJudgement>,
    /// Null with `no_telemetry`: the bad ones, those counted, those with no data.
    pub count: Option<u64>,
    pub total: Option<u64>,
    pub unknown: Option<u64>,
    /// `endpoints.unsupported_os`: devices supported only with ESU evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esu_only: Option<u64>,
    /// `endpoints.unsupported_os`: devices on platforms the lifecycle table does not
    /// cover (Linux, macOS, mobile), not in `total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<u64>,
    /// The share (percent) of those counted that give data.
    pub coverage: Option<f64>,
    /// How the check judges this item (the checklist's `judge`, or the check's default).
    pub judge: Judge,
    /// The judge in words: "end-user devices that can carry a sensor; tolerance 1%; ...".
    pub rule: String,
    /// The figures in words, e.g. "3 of 4,250 end-user devices have BitLocker off
    /// (0.07% of those with data, tolerance 1%)".
    pub summary: String,
    /// Why the verdict is what it is, in one sentence.
    pub reason: String,
    /// The snapshot the figures come from.
    pub snapshot: Option<SnapshotRef>,
    /// The same check for each site the inspection names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteCounts>,
    /// For `endpoints.unsupported_os`: the unsupported endpoints by platform and build.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breakdown: Vec<OsGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteCounts {
    pub site: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// How a sampled device stands against its telemetry record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Matched,
    Unmanaged,
    BuildDiffers,
    Stale,
    NoTelemetry,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceMatch {
    pub device: Uuid,
    pub hostname: String,
    pub build_seen: String,
    /// The build number read from `build_seen`, if it holds one.
    pub observed_build: Option<i64>,
    pub status: DeviceStatus,
    /// Whether the record is stale, whatever the status.
    pub stale: bool,
    /// The record matched (the most recently seen, if the host name appears twice).
    pub telemetry: Option<DeviceRecord>,
    pub summary: String,
}

/// One sampled device's answer to a device-scope item beside its own telemetry record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceJudgement {
    pub device: Uuid,
    pub hostname: String,
    pub answer: Compliance,
    /// `None` for a device the telemetry does not know (`unmanaged`): it is never judged
    /// by the estate.
    pub verdict: Option<Verdict>,
    /// In words, e.g. "met; its record has BitLocker on".
    pub reason: String,
}

/// Whether a device's own record shows the problem a check counts, or why it does not
/// say (a field the device did not report, a sensor that is not reporting, a platform,
/// build or edition the lifecycle table cannot judge). Alerts and firewalls are not
/// devices' checks.
fn device_shows(check: TelemetryCheck, r: &DeviceRecord, as_of: NaiveDate) -> Result<bool, String> {
    use TelemetryCheck::*;
    let unreported = || Err("the device did not report it".to_owned());
    let sensor = Sensor::of(&r.onboarding_status, &r.health_status);
    match check {
        EndpointsUnsupportedOs => {
            match lifecycle::support(&r.os_platform, r.os_build, r.os_edition.as_deref(), as_of) {
                Support::Supported => Ok(false),
                Support::Unsupported => Ok(true),
                Support::EsuOnly => Err(
                    "its build is supported only with Extended Security Updates, which telemetry cannot show: the answer stands on the licence the inspector saw".to_owned(),
                ),
                Support::Unknown => Err(match &r.os_edition {
                    None => "its support depends on the edition, which the feed does not give".to_owned(),
                    Some(_) => "the lifecycle table does not judge its platform, build and edition".to_owned(),
                }),
            }
        }
        EndpointsNotOnboarded => Ok(sensor != Sensor::Reporting),
        _ if sensor != Sensor::Reporting => Err(format!(
            "its sensor is not reporting (onboarding {}, health {}): no configuration data",
            r.onboarding_status, r.health_status
        )),
        EndpointsSmb1Enabled => r.smb1_enabled.map_or_else(unreported, Ok),
        EndpointsMissingSecurityUpdates => r
            .missing_security_updates
            .map_or_else(unreported, |n| Ok(n > 0)),
        EndpointsBitlockerOff => r.bitlocker_on.map_or_else(unreported, |on| Ok(!on)),
        EndpointsSecureBootOff => r.secure_boot_on.map_or_else(unreported, |on| Ok(!on)),
        EndpointsCredentialGuardOff => r
            .credential_guard_running
            .map_or_else(unreported, |on| Ok(!on)),
        EndpointsFirewallProfileOff => {
            match (r.firewall_domain, r.firewall_private, r.firewall_public) {
                (Some(d), Some(p), Some(u)) => Ok(!(d && p && u)),
                (d, p, u) if [d, p, u].contains(&Some(false)) => Ok(true),
                _ => unreported(),
            }
        }
        _ => Err("not a device's check".to_owned()),
    }
}

/// One sampled device's answer beside its own record.
fn judge_device(
    check: TelemetryCheck,
    answer: Compliance,
    m: &DeviceMatch,
    as_of: Option<NaiveDate>,
) -> DeviceJudgement {
    let (_, what) = phrase(check);
    let said = match answer {
        Compliance::Met => "met",
        Compliance::PartlyMet => "partly met",
        Compliance::NotMet => "not met",
        Compliance::NotApplicable => "not applicable",
    };
    let (verdict, reason) = match (&m.telemetry, as_of, m.status) {
        (_, _, DeviceStatus::Unmanaged) => (
            None,
            format!("{said}; no telemetry record: unmanaged, not judged by the estate"),
        ),
        (Some(r), Some(as_of), _) => match device_shows(check, r, as_of) {
            Err(why) => (
                Some(Verdict::NoTelemetry),
                format!("{said}; its record does not say: {why}"),
            ),
            Ok(bad) => {
                let v = verdict(Some(answer), Some(u64::from(bad)));
                let record = if bad {
                    format!("its record shows it {}", singular(what))
                } else {
                    format!("its record shows nothing wrong ({})", m.summary)
                };
                (Some(v), format!("{said}; {record}"))
            }
        },
        _ => (
            Some(Verdict::NoTelemetry),
            format!("{said}; no endpoint telemetry for the trust"),
        ),
    };
    DeviceJudgement {
        device: m.device,
        hostname: m.hostname.clone(),
        answer,
        verdict,
        reason,
    }
}

/// "have BitLocker off" said of one device: "has BitLocker off".
fn singular(what: &str) -> String {
    if let Some(rest) = what.strip_prefix("have ") {
        format!("has {rest}")
    } else if let Some(rest) = what.strip_prefix("are ") {
        format!("is {rest}")
    } else if let Some(rest) = what.strip_prefix("do not run ") {
        format!("does not run {rest}")
    } else if let Some(rest) = what.strip_prefix("run ") {
        format!("runs {rest}")
    } else {
        what.to_owned()
    }
}

/// A device-scope item's verdict from its devices': contradicted if any device's record
/// contradicts its answer, else corroborated if any corroborates it, else telemetry silent
/// if a record shows nothing of a problem reported; with no device judged (all unmanaged,
/// or records that do not say), no telemetry; no answer at all, unanswered.
fn device_verdict(answer: Option<Compliance>, judged: &[DeviceJudgement]) -> Verdict {
    let is = |v: Verdict| judged.iter().any(|j| j.verdict == Some(v));
    match answer {
        None | Some(Compliance::NotApplicable) => Verdict::Unanswered,
        Some(_) if is(Verdict::Contradicted) => Verdict::Contradicted,
        Some(_) if is(Verdict::Corroborated) => Verdict::Corroborated,
        Some(_) if is(Verdict::TelemetrySilent) => Verdict::TelemetrySilent,
        Some(_) => Verdict::NoTelemetry,
    }
}

/// "2 of 3 sampled devices' records agree; 1 contradicts; 1 unmanaged".
fn devices_summary(judged: &[DeviceJudgement]) -> String {
    let n = |v: Option<Verdict>| judged.iter().filter(|j| j.verdict == v).count();
    let mut parts = vec![format!(
        "{} of {} sampled devices' own records agree with their answers",
        n(Some(Verdict::Corroborated)),
        judged.len()
    )];
    for (v, one, many) in [
        (
            Some(Verdict::Contradicted),
            "contradicts its answer",
            "contradict theirs",
        ),
        (
            Some(Verdict::TelemetrySilent),
            "shows nothing of the problem reported",
            "show nothing of the problems reported",
        ),
        (Some(Verdict::NoTelemetry), "does not say", "do not say"),
        (
            None,
            "is unmanaged (not judged)",
            "are unmanaged (not judged)",
        ),
    ] {
        match n(v) {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            k => parts.push(format!("{k} {many}")),
        }
    }
    parts.join("; ")
}

/// What a check counts, as the end of "N of M ...".
fn phrase(check: TelemetryCheck) -> (&'static str, &'static str) {
    use TelemetryCheck::*;
    match check {
        EndpointsUnsupportedOs => ("endpoints", "run an unsupported OS"),
        EndpointsSmb1Enabled => ("endpoints", "have SMBv1 enabled"),
        EndpointsNotOnboarded => ("endpoints", "are not onboarded to Defender for Endpoint"),
        EndpointsMissingSecurityUpdates => ("endpoints", "are missing security updates"),
        EndpointsBitlockerOff => ("endpoints", "have BitLocker off"),
        EndpointsSecureBootOff => ("endpoints", "have Secure Boot off"),
        EndpointsCredentialGuardOff => ("endpoints", "do not run Credential Guard"),
        EndpointsFirewallProfileOff => ("endpoints", "have a Windows firewall profile off"),
        FirewallsUnsupportedFirmware => ("firewalls", "run firmware out of vendor support"),
        FirewallsAdminInterfaceExposed => {
            ("firewalls", "expose their admin interface to the internet")
        }
        FirewallsRuleReviewOverdue => (
            "firewalls",
            "have no recorded rule review within the review period",
        ),
        AlertsUnacknowledged48h => ("cyber alerts", "were not acknowledged within 48 hours"),
        AlertsUnremediated => ("cyber alerts", "were not closed (remediated) in time"),
    }
}

fn snapshot_of(t: &TrustTelemetry, check: TelemetryCheck) -> Option<&SnapshotRef> {
    match feed(check) {
        "network" => t.network.as_ref(),
        "alerts" => t.alerts.as_ref(),
        _ => t.endpoints.as_ref(),
    }
}

/// What the judge counts, as a noun: "end-user devices", "firewalls", "cyber alerts".
fn noun(check: TelemetryCheck, rule: &Judge) -> String {
    let (noun, _) = phrase(check);
    if !wardcheck_core::judge::counts_endpoints(check)
        || rule.devices.len() == DeviceKind::ALL.len()
    {
        return noun.to_owned();
    }
    let names: Vec<&str> = rule.devices.iter().map(|k| k.plural()).collect();
    match names.as_slice() {
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => noun.to_owned(),
    }
}

/// The figures in words: "3 of 4,250 end-user devices have BitLocker off (0.07%,
/// tolerance 1%); 120 give no data (coverage 97%, the check needs 80%)".
fn summary(check: TelemetryCheck, rule: &Judge, counts: &Counts, groups: &[OsGroup]) -> String {
    let (_, what) = phrase(check);
    let known = verdict::known(counts);
    let mut s = format!(
        "{} of {} {} {what} ({} of those with data, tolerance {})",
        thousands(counts.count),
        thousands(counts.total),
        noun(check, rule),
        verdict::share(counts.count, known),
        rule.tolerance
    );
    if let Some(w) = rule.window {
        s.push_str(&match check {
            TelemetryCheck::FirewallsRuleReviewOverdue => format!(" (review due every {w})"),
            _ => format!(" (issued in the last {w})"),
        });
    }
    if !groups.is_empty() {
        let list: Vec<String> = groups
            .iter()
            .map(|g| match g.os_build {
                Some(b) => format!("{} {} build {b}", thousands(g.count), g.os_platform),
                None => format!("{} {}", thousands(g.count), g.os_platform),
            })
            .collect();
        s.push_str(&format!(": {}", list.join(", ")));
    }
    if counts.esu_only > 0 {
        s.push_str(&format!(
            "; {} are Windows 10 22H2, supported only with ESU evidence telemetry cannot show",
            thousands(counts.esu_only)
        ));
    }
    if counts.unknown > 0 {
        s.push_str(&format!(
            "; {} {} no data",
            thousands(counts.unknown),
            if counts.unknown == 1 { "gives" } else { "give" },
        ));
    }
    if counts.unknown + counts.esu_only > 0 {
        s.push_str(&format!(
            " (coverage {}",
            verdict::share(known, counts.total)
        ));
        if rule.coverage > 0.0 {
            s.push_str(&format!(", the check needs {}%", trim_float(rule.coverage)));
        }
        s.push(')');
    }
    if counts.not_judged > 0 {
        s.push_str(&format!(
            "; {} on platforms the lifecycle table does not cover (Linux, macOS, mobile) are not counted",
            thousands(counts.not_judged)
        ));
    }
    s
}

/// Why the verdict is what it is, in one sentence.
fn reason(
    check: TelemetryCheck,
    rule: &Judge,
    answer: Option<Compliance>,
    counts: Option<&Counts>,
    verdict: Verdict,
) -> String {
    let (_, what) = phrase(check);
    let said = match answer {
        Some(Compliance::Met) => "met",
        Some(Compliance::PartlyMet) => "partly met",
        Some(Compliance::NotMet) => "not met",
        Some(Compliance::NotApplicable) => "not applicable",
        None => "no answer",
    };
    let Some(c) = counts else {
        return "no telemetry for the trust in this feed".to_owned();
    };
    let known = verdict::known(c);
    let n = noun(check, rule);
    match verdict {
        Verdict::Contradicted => format!(
            "answered met, but {} of {} {n} with data {what}: more than the tolerance ({})",
            thousands(c.count),
            thousands(known),
            rule.tolerance
        ),
        Verdict::Corroborated if answer == Some(Compliance::Met) && c.count == 0 => {
            format!(
                "answered met, and none of the {} {n} with data {what}",
                thousands(known)
            )
        }
        Verdict::Corroborated if answer == Some(Compliance::Met) => format!(
            "answered met, and {} of {} {n} with data {what}: within the tolerance ({})",
            thousands(c.count),
            thousands(known),
            rule.tolerance
        ),
        Verdict::Corroborated => format!(
            "answered {said}, and telemetry sees it: {} of {} {n} with data {what}",
            thousands(c.count),
            thousands(known)
        ),
        Verdict::TelemetrySilent => format!(
            "answered {said}; telemetry sees none of the {} {n} with data that {what}: a problem it cannot see, never a contradiction",
            thousands(known)
        ),
        Verdict::InsufficientCoverage => {
            let mut r = format!(
                "answered {said}; only {} of the {} {n} give data telemetry can judge ({})",
                thousands(known),
                thousands(c.total),
                verdict::share(known, c.total),
            );
            if rule.coverage > 0.0 {
                r.push_str(&format!(
                    ", below the {}% the check needs",
                    trim_float(rule.coverage)
                ));
            }
            if c.esu_only > 0 {
                r.push_str(&format!(
                    "; {} are Windows 10 22H2, supported only with ESU licences telemetry cannot show: ask for them (slmgr /dlv)",
                    thousands(c.esu_only)
                ));
            }
            r.push_str(": a clean count over so few says nothing");
            r
        }
        Verdict::Unanswered => format!("{said}: the figures are shown, not judged"),
        Verdict::NoTelemetry => {
            format!("answered {said}; telemetry holds no {n} of the trust for this check")
        }
    }
}

/// The join of an inspection (its typed view, and the checklist it pins) with the
/// latest telemetry on `conn` (a connection that sees the telemetry tables).
pub fn join(
    conn: &Connection,
    view: &InspectionView,
    checklist: &Checklist,
) -> rusqlite::Result<Join> {
    let trust = view.meta.trust.as_str();
    let t = trust_telemetry(conn, trust)?;

    let has_endpoints = t.has_rows(TelemetryCheck::EndpointsUnsupportedOs);
    let mut devices = Vec::new();
    for d in &view.devices {
        let hostname = d.hostname.current().value.clone();
        let build_seen = d.build_seen.current().value.clone();
        let observed_build = lifecycle::build_in_text(&build_seen);
        let (status, stale, record, summary) = match (&t.endpoints, has_endpoints) {
            (Some(snap), true) => {
                let key = hostname_key(&hostname);
                let record = query::device_records(conn, snap.id, trust, &key)?
                    .into_iter()
                    .next();
                match record {
                    None => (
                        DeviceStatus::Unmanaged,
                        false,
                        None,
                        format!(
                            "no endpoint named {key} in {trust}'s telemetry of {}: unmanaged",
                            snap.as_of
                        ),
                    ),
                    Some(r) => {
                        let (status, stale, summary) = match_record(&r, observed_build, snap.as_of);
                        (status, stale, Some(r), summary)
                    }
                }
            }
            (snap, _) => (
                DeviceStatus::NoTelemetry,
                false,
                None,
                match snap {
                    Some(s) => format!(
                        "no endpoint rows for {trust} in the snapshot of {}",
                        s.as_of
                    ),
                    None => "no endpoint telemetry has been imported".to_owned(),
                },
            ),
        };
        devices.push(DeviceMatch {
            device: d.id,
            hostname,
            build_seen,
            observed_build,
            status,
            stale,
            telemetry: record,
            summary,
        });
    }

    let mut items = Vec::new();
    for (section, item) in checklist.items() {
        let Some(check) = item.telemetry else {
            continue;
        };
        if !section.applies(view.meta.org.as_ref()) {
            continue;
        }
        let (answer, devices_answered) = match section.scope {
            Scope::Inspection => (
                view.responses
                    .get(&item.id)
                    .and_then(|r| r.answer.as_ref())
                    .and_then(|a| Compliance::of(&a.current().value)),
                None,
            ),
            Scope::Device => {
                let answers: Vec<Compliance> = view
                    .devices
                    .iter()
                    .filter_map(|d| d.observations.get(&item.id))
                    .filter_map(|o| Compliance::of(&o.current().value.answer))
                    .collect();
                (
                    Compliance::worst(answers.iter().copied()),
                    Some(answers.len()),
                )
            }
        };
        // A device-scope item is judged device by device, each sampled device's answer
        // beside its own telemetry record; the estate's figures are context.
        let judged: Vec<DeviceJudgement> = if section.scope == Scope::Device {
            view.devices
                .iter()
                .filter_map(|d| {
                    let answer = d
                        .observations
                        .get(&item.id)
                        .and_then(|o| Compliance::of(&o.current().value.answer))?;
                    let m = devices.iter().find(|m| m.device == d.id)?;
                    let as_of = t.endpoints.as_ref().map(|s| s.as_of);
                    Some(judge_device(check, answer, m, as_of))
                })
                .collect()
        } else {
            Vec::new()
        };
        let rule = item
            .judge
            .clone()
            .unwrap_or_else(|| Judge::default_for(check));
        let snapshot = snapshot_of(&t, check).cloned();
        let counts = t.counts(check, &rule, None);
        let verdict = if section.scope == Scope::Device && counts.is_some() {
            device_verdict(answer, &judged)
        } else {
            verdict::judge(answer, counts.as_ref(), &rule)
        };
        let groups: Vec<OsGroup> = if check == TelemetryCheck::EndpointsUnsupportedOs {
            let mut g = t.unsupported_groups(&rule);
            g.truncate(MAX_OS_GROUPS);
            g
        } else {
            Vec::new()
        };
        let summary = match (&counts, &snapshot) {
            (Some(c), _) if section.scope == Scope::Device => format!(
                "{}; across the trust (context, not the verdict): {}",
                devices_summary(&judged),
                summary(check, &rule, c, &groups)
            ),
            (Some(c), _) => summary(check, &rule, c, &groups),
            (None, Some(s)) => format!(
                "no {} rows for {trust} in the {} snapshot of {}",
                feed(check),
                feed(check),
                s.as_of
            ),
            (None, None) => format!("no {} telemetry has been imported", feed(check)),
        };
        let reason = if section.scope == Scope::Device && counts.is_some() {
            format!("judged device by device: {}", devices_summary(&judged))
        } else {
            reason(check, &rule, answer, counts.as_ref(), verdict)
        };
        let sites = if counts.is_some() && feed(check) != "alerts" {
            view.meta
                .sites
                .iter()
                .map(|site| SiteCounts {
                    site: site.clone(),
                    counts: t.counts(check, &rule, Some(site)).unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        items.push(ItemJoin {
            item: item.id.clone(),
            section: section.id.clone(),
            scope: section.scope,
            check,
            verdict,
            answer,
            devices_answered,
            judged_devices: judged,
            count: counts.map(|c| c.count),
            total: counts.map(|c| c.total),
            unknown: counts.map(|c| c.unknown),
            esu_only: counts.map(|c| c.esu_only).filter(|n| *n > 0),
            not_judged: counts.map(|c| c.not_judged).filter(|n| *n > 0),
            coverage: counts
                .filter(|c| c.total > 0)
                .map(|c| (verdict::coverage(&c) * 10.0).round() / 10.0),
            rule: rule.describe(check),
            judge: rule,
            summary,
            reason,
            snapshot,
            sites,
            breakdown: if counts.is_some() { groups } else { Vec::new() },
        });
    }

    let mut totals = BTreeMap::new();
    for v in Verdict::ALL {
        totals.insert(v.name(), 0);
    }
    for i in &items {
        *totals.entry(i.verdict.name()).or_default() += 1;
    }

    Ok(Join {
        inspection: view.id,
        trust: trust.to_owned(),
        sites: view.meta.sites.clone(),
        snapshots: Snapshots {
            endpoints: t.endpoints.clone(),
            network: t.network.clone(),
            alerts: t.alerts.clone(),
        },
        totals,
        items,
        devices,
    })
}

/// The status of a device found in telemetry: build first (a screen and a record that
/// disagree is the stronger signal), then staleness.
fn match_record(
    r: &DeviceRecord,
    observed: Option<i64>,
    as_of: NaiveDate,
) -> (DeviceStatus, bool, String) {
    let seen = r
        .last_seen
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let days = seen.map(|d| (as_of - d).num_days());
    let stale = days.is_some_and(|d| d > STALE_AFTER_DAYS);
    let record_build = match r.os_build {
        Some(b) => format!("{} build {b}", r.os_platform),
        None => format!("{} (no build recorded)", r.os_platform),
    };
    let seen_text = match (seen, days) {
        (Some(s), Some(d)) => format!(
            "last seen {s}, {d} day{} before the snapshot",
            if d == 1 { "" } else { "s" }
        ),
        _ => format!("last seen {}", r.last_seen),
    };
    match (observed, r.os_build) {
        (Some(o), Some(b)) if o != b => (
            DeviceStatus::BuildDiffers,
            stale,
            format!(
                "build {o} seen on screen; telemetry has {record_build} ({})",
                r.device_name
            ),
        ),
        _ if stale => (
            DeviceStatus::Stale,
            true,
            format!(
                "{} in telemetry ({record_build}), {seen_text}",
                r.device_name
            ),
        ),
        _ => (
            DeviceStatus::Matched,
            false,
            format!(
                "{} in telemetry: {record_build}, {seen_text}",
                r.device_name
            ),
        ),
    }
}

/// The key a sampled device is matched by: the first DNS label in lower case, as the
/// importer stores it in `endpoints.hostname_lower` (an IP address whole).
pub fn hostname_key(name: &str) -> String {
    let name = name.trim();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_ascii_lowercase();
    }
    name.split('.').next().unwrap_or(name).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(build: Option<i64>, last_seen: &str) -> DeviceRecord {
        DeviceRecord {
            device_id: "d".into(),
            device_name: "rj1-ws-1.gstt.nhs.uk".into(),
            site: "RJ121".into(),
            os_platform: "Windows10".into(),
            os_version: Some("22H2".into()),
            os_build: build,
            last_seen: last_seen.into(),
            onboarding_status: "onboarded".into(),
            health_status: "Active".into(),
            os_edition: None,
            missing_security_updates: Some(0),
            smb1_enabled: Some(false),
            bitlocker_on: Some(true),
            firewall_domain: Some(true),
            firewall_private: Some(true),
            firewall_public: Some(true),
            credential_guard_running: Some(true),
            secure_boot_on: Some(true),
        }
    }

    #[test]
    fn a_device_is_matched_unless_its_build_differs_or_its_record_is_stale() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let fresh = "2026-11-28T10:00:00Z";
        let old = "2026-10-15T10:00:00Z";
        assert_eq!(
            match_record(&record(Some(19045), fresh), Some(19045), as_of).0,
            DeviceStatus::Matched
        );
        assert_eq!(
            match_record(&record(Some(19045), fresh), Some(19044), as_of).0,
            DeviceStatus::BuildDiffers
        );
        assert_eq!(
            match_record(&record(Some(19045), old), Some(19045), as_of).0,
            DeviceStatus::Stale
        );
        assert_eq!(
            match_record(&record(Some(19045), fresh), None, as_of).0,
            DeviceStatus::Matched,
            "a build that cannot be read is not a difference"
        );
        let (status, stale, _) = match_record(&record(Some(19045), old), Some(17763), as_of);
        assert_eq!((status, stale), (DeviceStatus::BuildDiffers, true));
    }

    fn matched(r: DeviceRecord) -> DeviceMatch {
        DeviceMatch {
            device: Uuid::from_u128(1),
            hostname: "RJ1-WS-1".into(),
            build_seen: "build 19045".into(),
            observed_build: Some(19045),
            status: DeviceStatus::Matched,
            stale: false,
            telemetry: Some(r),
            summary: "rj1-ws-1.gstt.nhs.uk in telemetry".into(),
        }
    }

    /// Each row: the check, the device's answer, what its record says, the device's verdict.
    #[test]
    fn a_sampled_device_is_judged_by_its_own_record() {
        use Compliance::*;
        use TelemetryCheck::*;
        let as_of = Some(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        let fresh = "2026-11-28T10:00:00Z";
        let clean = record(Some(19045), fresh);
        let mut bitlocker_off = clean.clone();
        bitlocker_off.bitlocker_on = Some(false);
        let mut unreported = clean.clone();
        unreported.bitlocker_on = None;
        unreported.firewall_public = None;
        let mut one_profile_off = unreported.clone();
        one_profile_off.firewall_domain = Some(false);
        let win7 = DeviceRecord {
            os_platform: "Windows7".into(),
            os_build: Some(7601),
            ..clean.clone()
        };
        let mut inactive = bitlocker_off.clone();
        inactive.health_status = "Inactive".into();
        let win11 = DeviceRecord {
            os_platform: "Windows11".into(),
            os_build: Some(26200),
            ..clean.clone()
        };
        let rows: [(TelemetryCheck, Compliance, &DeviceRecord, Option<Verdict>); 12] = [
            (
                EndpointsBitlockerOff,
                Met,
                &inactive,
                Some(Verdict::NoTelemetry),
            ),
            (
                EndpointsNotOnboarded,
                Met,
                &inactive,
                Some(Verdict::Contradicted),
            ),
            (
                EndpointsBitlockerOff,
                Met,
                &clean,
                Some(Verdict::Corroborated),
            ),
            (
                EndpointsBitlockerOff,
                Met,
                &bitlocker_off,
                Some(Verdict::Contradicted),
            ),
            (
                EndpointsBitlockerOff,
                NotMet,
                &bitlocker_off,
                Some(Verdict::Corroborated),
            ),
            (
                EndpointsBitlockerOff,
                NotMet,
                &clean,
                Some(Verdict::TelemetrySilent),
            ),
            (
                EndpointsBitlockerOff,
                Met,
                &unreported,
                Some(Verdict::NoTelemetry),
            ),
            (
                EndpointsFirewallProfileOff,
                Met,
                &unreported,
                Some(Verdict::NoTelemetry),
            ),
            (
                EndpointsFirewallProfileOff,
                Met,
                &one_profile_off,
                Some(Verdict::Contradicted),
            ),
            (
                EndpointsUnsupportedOs,
                Met,
                &win7,
                Some(Verdict::Contradicted),
            ),
            (
                EndpointsUnsupportedOs,
                Met,
                &clean,
                Some(Verdict::NoTelemetry),
            ),
            (
                EndpointsUnsupportedOs,
                Met,
                &win11,
                Some(Verdict::Corroborated),
            ),
        ];
        for (check, answer, r, want) in rows {
            let j = judge_device(check, answer, &matched(r.clone()), as_of);
            assert_eq!(j.verdict, want, "{check:?} {answer:?}: {}", j.reason);
        }
        let mut unmanaged = matched(clean.clone());
        unmanaged.status = DeviceStatus::Unmanaged;
        unmanaged.telemetry = None;
        let j = judge_device(EndpointsBitlockerOff, Met, &unmanaged, as_of);
        assert_eq!(j.verdict, None);
        assert!(
            j.reason.contains("unmanaged, not judged by the estate"),
            "{}",
            j.reason
        );
        let j = judge_device(EndpointsBitlockerOff, Met, &matched(bitlocker_off), as_of);
        assert_eq!(j.reason, "met; its record shows it has BitLocker off");
    }

    #[test]
    fn a_device_item_takes_its_verdict_from_its_devices_not_the_estate() {
        use Compliance::*;
        let j = |v: Option<Verdict>| DeviceJudgement {
            device: Uuid::nil(),
            hostname: String::new(),
            answer: Met,
            verdict: v,
            reason: String::new(),
        };
        let ok = j(Some(Verdict::Corroborated));
        let bad = j(Some(Verdict::Contradicted));
        let silent = j(Some(Verdict::NoTelemetry));
        let unmanaged = j(None);
        assert_eq!(
            device_verdict(Some(Met), &[ok.clone(), ok.clone()]),
            Verdict::Corroborated
        );
        assert_eq!(
            device_verdict(Some(Met), &[ok.clone(), bad]),
            Verdict::Contradicted
        );
        assert_eq!(
            device_verdict(Some(Met), &[unmanaged.clone(), silent.clone()]),
            Verdict::NoTelemetry,
            "no device judged: never the estate's verdict"
        );
        assert_eq!(device_verdict(None, &[]), Verdict::Unanswered);
        assert_eq!(
            devices_summary(&[ok, silent, unmanaged]),
            "1 of 3 sampled devices' own records agree with their answers; 1 does not say; 1 is unmanaged (not judged)"
        );
    }

    #[test]
    fn host_names_match_by_their_first_label_in_any_case() {
        assert_eq!(hostname_key("GSTT-WS-0042.gstt.nhs.uk"), "gstt-ws-0042");
        assert_eq!(hostname_key(" gstt-ws-0042 "), "gstt-ws-0042");
        assert_eq!(hostname_key("10.1.2.3"), "10.1.2.3");
    }
}
