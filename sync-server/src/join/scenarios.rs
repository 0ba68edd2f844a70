//! The verdict scenario table, `docs/VERDICTS.md`, held as a test: each row's telemetry
//! is built as the trust's groups, firewalls and alerts (the shapes the import and the
//! queries produce; `tests/tests/join.rs` covers that path end to end), judged with the
//! row's judge, and its verdict and reason compared with the row's.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;
use wardcheck_core::checklist::TelemetryCheck;
use wardcheck_core::judge::{DeviceKind, Judge, Span, Tolerance};

use super::query::{AlertRow, EndpointGroup, FirewallRow, Sensor, SnapshotRef, TrustTelemetry};
use super::*;

const TABLE: &str = include_str!("../../../docs/VERDICTS.md");

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn snap(id: i64) -> Option<SnapshotRef> {
    Some(SnapshotRef {
        id,
        as_of: as_of(),
        sha256: String::new(),
    })
}

/// `N kind sensor platform-build[/edition] field=value...` (N absent for a device).
fn group(words: &[&str]) -> (EndpointGroup, Vec<(String, String)>) {
    let [kind, sensor, os, fields @ ..] = words else {
        panic!("an endpoint entry: {words:?}");
    };
    let (os, edition) = match os.split_once('/') {
        Some((o, e)) => (o, Some(e.to_owned())),
        None => (*os, None),
    };
    let (platform, build) = os.split_once('-').expect("platform-build");
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').expect("field=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let g = EndpointGroup {
        site: "RJ121".into(),
        os_platform: platform.into(),
        os_build: build.parse().ok().filter(|b| *b > 0),
        os_edition: edition,
        kind: DeviceKind::from_name(kind).expect("a kind"),
        sensor: match *sensor {
            "reporting" => Sensor::Reporting,
            "inactive" => Sensor::Inactive,
            "can-onboard" => Sensor::CanOnboard,
            "discovered" => Sensor::Discovered,
            other => panic!("sensor {other}"),
        },
        devices: 0,
        flags: [(0, 0); 6],
    };
    (g, fields)
}

const FIELDS: [&str; 6] = [
    "smb1",
    "updates",
    "bitlocker",
    "secureboot",
    "credguard",
    "firewall",
];

fn telemetry(text: &str) -> TrustTelemetry {
    let mut t = TrustTelemetry {
        endpoints: snap(1),
        network: snap(2),
        alerts: snap(3),
        ..Default::default()
    };
    if text == "none" {
        return t;
    }
    let day = |w: &str| -> DateTime<Utc> {
        let n: i64 = w.trim_end_matches('d').parse().unwrap();
        (as_of() - Duration::days(n))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    };
    for entry in text.split(';').map(str::trim) {
        let words: Vec<&str> = entry.split_whitespace().collect();
        let n: u64 = words[0].parse().expect("a count");
        match words[1] {
            "fw" => {
                for _ in 0..n {
                    let mut f = FirewallRow {
                        site: "RJ121".into(),
                        vendor_supported: true,
                        admin_interface_exposed: false,
                        last_rule_review: Some(as_of() - Duration::days(30)),
                    };
                    for w in &words[2..] {
                        match *w {
                            "unsupported" => f.vendor_supported = false,
                            "exposed" => f.admin_interface_exposed = true,
                            "review=none" => f.last_rule_review = None,
                            r => f.last_rule_review = Some(day(&r["review=".len()..]).date_naive()),
                        }
                    }
                    t.firewalls.push(f);
                }
            }
            "alert" => {
                for _ in 0..n {
                    let mut a = AlertRow {
                        issued: as_of().and_hms_opt(0, 0, 0).unwrap().and_utc(),
                        acknowledged: None,
                        closed: None,
                    };
                    for w in &words[2..] {
                        let (k, v) = w.split_once('=').unwrap();
                        match k {
                            "issued" => a.issued = day(v),
                            "ack" => {
                                let h: i64 = v.trim_end_matches('h').parse().unwrap();
                                a.acknowledged = Some(a.issued + Duration::hours(h));
                            }
                            "closed" => {
                                let d: i64 = v.trim_end_matches('d').parse().unwrap();
                                a.closed = Some(a.issued + Duration::days(d));
                            }
                            other => panic!("alert field {other}"),
                        }
                    }
                    t.alert_rows.push(a);
                }
            }
            _ => {
                let (mut g, fields) = group(&words[1..]);
                g.devices = n;
                for (k, v) in fields {
                    let i = FIELDS.iter().position(|f| *f == k).expect("a field");
                    // SMBv1 is bad "on"; the rest "off" (updates off: some missing).
                    let bad = if i == 0 { v == "on" } else { v == "off" };
                    if v == "?" {
                        g.flags[i].1 = n;
                    } else if bad {
                        g.flags[i].0 = n;
                    }
                }
                t.groups.push(g);
            }
        }
    }
    t
}

/// The sampled device's record, from `device: kind sensor platform-build field=value`.
fn record(text: &str) -> DeviceRecord {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (g, fields) = group(&words);
    let get = |name: &str| -> Option<bool> {
        match fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
        {
            Some("?") => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            _ => Some(name != "smb1"),
        }
    };
    let (onboarding, health) = match g.sensor {
        Sensor::Reporting => ("onboarded", "Active"),
        Sensor::Inactive => ("onboarded", "Inactive"),
        Sensor::CanOnboard => ("CanBeOnboarded", "Unknown"),
        Sensor::Discovered => ("Unsupported", "Unknown"),
    };
    let firewall = get("firewall");
    DeviceRecord {
        device_id: "d".into(),
        device_name: "rj1-ws-1.gstt.nhs.uk".into(),
        site: g.site,
        os_platform: g.os_platform,
        os_version: None,
        os_build: g.os_build,
        last_seen: "2026-11-28T10:00:00Z".into(),
        onboarding_status: onboarding.into(),
        health_status: health.into(),
        os_edition: g.os_edition,
        missing_security_updates: match get("updates") {
            None => None,
            Some(true) => Some(0),
            Some(false) => Some(3),
        },
        smb1_enabled: get("smb1"),
        bitlocker_on: get("bitlocker"),
        firewall_domain: Some(true),
        firewall_private: Some(true),
        firewall_public: firewall,
        credential_guard_running: get("credguard"),
        secure_boot_on: get("secureboot"),
    }
}

fn judge_of(check: TelemetryCheck, text: &str) -> Judge {
    let mut j = Judge::default_for(check);
    if text == "-" || text == "device" {
        return j;
    }
    for part in text.split(';').map(str::trim) {
        let (k, v) = part.split_once('=').expect("key=value");
        match k {
            "devices" => {
                j.devices = v
                    .split(',')
                    .map(|n| DeviceKind::from_name(n).expect("a kind"))
                    .collect()
            }
            "discovered" => j.discovered = v == "true",
            "tolerance" => {
                j.tolerance = match v.parse() {
                    Ok(n) => Tolerance::Count(n),
                    Err(_) => Tolerance::parse_share(v).unwrap(),
                }
            }
            "coverage" => j.coverage = wardcheck_core::judge::percent(v).unwrap(),
            "window" => j.window = Some(Span::parse(v).unwrap()),
            "deadline" => j.deadline = Some(Span::parse(v).unwrap()),
            other => panic!("judge field {other}"),
        }
    }
    j
}

fn answer_of(text: &str) -> Option<Compliance> {
    match text {
        "met" => Some(Compliance::Met),
        "partly" => Some(Compliance::PartlyMet),
        "not" => Some(Compliance::NotMet),
        "n/a" => Some(Compliance::NotApplicable),
        "none" => None,
        other => panic!("answer {other}"),
    }
}

#[test]
fn every_scenario_in_the_verdict_table_holds() {
    let mut rows = 0;
    let mut checks = std::collections::BTreeSet::new();
    let mut verdicts = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for line in TABLE
        .lines()
        .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [n, check, judge_text, telemetry_text, answer, want, contains] = cells[..] else {
            panic!("seven cells: {line}");
        };
        rows += 1;
        let check = TelemetryCheck::from_name(check).expect("a check");
        checks.insert(check.name());
        verdicts.insert(want.to_owned());
        let rule = judge_of(check, judge_text);
        let answer = answer_of(answer);
        let (got, text) = if let Some(device) = telemetry_text.strip_prefix("device:") {
            let device = device.trim();
            let m = DeviceMatch {
                device: Uuid::nil(),
                hostname: "RJ1-WS-1".into(),
                build_seen: String::new(),
                observed_build: None,
                status: if device == "unmanaged" {
                    DeviceStatus::Unmanaged
                } else {
                    DeviceStatus::Matched
                },
                stale: false,
                telemetry: (device != "unmanaged").then(|| record(device)),
                summary: "rj1-ws-1.gstt.nhs.uk in telemetry".into(),
            };
            let j = judge_device(check, answer.expect("a device answer"), &m, Some(as_of()));
            (
                j.verdict.map_or("unmanaged", Verdict::name).to_owned(),
                j.reason,
            )
        } else {
            let t = telemetry(telemetry_text);
            let counts = t.counts(check, &rule, None);
            let v = verdict::judge(answer, counts.as_ref(), &rule);
            let groups = t.unsupported_groups(&rule);
            let summary = counts
                .as_ref()
                .map(|c| summary(check, &rule, c, &groups))
                .unwrap_or_default();
            let reason = reason(check, &rule, answer, counts.as_ref(), v);
            (v.name().to_owned(), format!("{summary} | {reason}"))
        };
        if got != want || !text.contains(contains) {
            failures.push(format!(
                "#{n} {check}: want {want} with \"{contains}\"; got {got}: {text}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rows >= 40, "at least 40 scenarios: {rows}");
    for check in TelemetryCheck::ALL {
        assert!(checks.contains(check.name()), "{check} has a scenario");
    }
    for v in Verdict::ALL {
        assert!(verdicts.contains(v.name()), "{} has a scenario", v.name());
    }
}
