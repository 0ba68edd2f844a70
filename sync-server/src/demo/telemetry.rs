//! Demo telemetry: endpoint inventory, firewalls, cyber alert responses and the trust
//! list, written as the files NHS Digital's feeds would send, for the importer to read.
//!
//! The distributions are meant to look like an NHS estate in late 2026 (RELIABILITY §2,
//! REFERENCE §3-§5, §7): most devices on Windows 10 22H2, the LTSC builds and Windows 11;
//! a pocket of Windows 7 and XP in each trust's imaging and pathology segments (the
//! WannaCry lesson), larger at RJ1 (the seeded contradiction); some SMBv1 on those
//! pockets; a few devices not onboarded to Defender, some not seen for weeks; a few
//! firewalls on firmware out of vendor support or with the admin interface exposed; most
//! high-severity alerts acknowledged within 48 hours and some not.
//!
//! Everything is drawn from one seeded generator, so the same `--seed` and size give the
//! same files. Device names do not depend on the seed, and each trust has a few fixed
//! *anchor* devices ([`anchors`]) that the demo inspections sample.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::Options;
use super::progress::Progress;
use super::trusts::{DemoTrust, TRUSTS, TrustType};
use crate::join::thousands;
use crate::telemetry::TelemetryStore;
use crate::telemetry::{Alert, Endpoint, NetworkDevice, Trust};
use crate::telemetry::{Format, ImportRequest, Kind, Outcome};

/// The devices a demo inspection samples at a trust, by hostname.
#[derive(Debug, Clone, Copy)]
pub struct Anchors {
    pub domain: &'static str,
    /// In telemetry, on the build the inspector also sees.
    pub matched: &'static str,
    pub matched_build_text: &'static str,
    /// Not in telemetry at all (an unmanaged device).
    pub unmanaged: &'static str,
    /// In telemetry on Windows 10 22H2 (19045); the inspector sees 21H2 (19044).
    pub differs: &'static str,
    pub differs_seen: &'static str,
    /// In telemetry, last seen 45 days before the snapshot.
    pub stale: &'static str,
}

/// The anchor devices of a trust (every demo trust has them).
pub fn anchors(trust: &str) -> Anchors {
    let t = TRUSTS
        .iter()
        .find(|t| t.code == trust)
        .expect("anchors are asked for demo trusts only");
    // Leaked once per trust and call: a handful of short strings in a CLI run.
    let name = |suffix: &str| -> &'static str {
        Box::leak(format!("{}-{suffix}", t.code).into_boxed_str())
    };
    Anchors {
        domain: t.domain,
        matched: name("WS-900001"),
        matched_build_text: "Windows 10 Enterprise 22H2, build 19045.5011",
        unmanaged: name("LAB-PC07"),
        differs: name("WS-900002"),
        differs_seen: "Windows 10 Enterprise 21H2, build 19044.3086",
        stale: name("WS-900003"),
    }
}

/// How many endpoints each trust gets out of `total`: its share, rounded, with the
/// remainder on the largest trust so the sum is exact.
pub fn endpoint_counts(total: u64) -> Vec<(&'static DemoTrust, u64)> {
    let mut counts: Vec<(&DemoTrust, u64)> = TRUSTS
        .iter()
        .map(|t| (t, total * u64::from(t.share) / 1000))
        .collect();
    let assigned: u64 = counts.iter().map(|(_, n)| n).sum();
    counts[0].1 += total - assigned;
    counts
}

/// One endpoint row, written in the importer's column order ([`Endpoint::COLUMNS`]).
#[derive(Debug, Clone)]
struct Row<'a> {
    device_id: String,
    name: String,
    trust: &'a str,
    site: &'a str,
    platform: &'static str,
    version: &'static str,
    build: u32,
    first_seen: NaiveDate,
    last_seen: NaiveDate,
    onboarding: &'static str,
    health: &'static str,
    exposure: &'static str,
    missing_kbs: u32,
    smb1: bool,
    bitlocker: bool,
    secure_boot: bool,
    credential_guard: bool,
    firewall_on: bool,
    medical: bool,
    segment: &'static str,
}

impl Row<'_> {
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let b = |v: bool| if v { "true" } else { "false" };
        // A device not onboarded reports no configuration: those fields are empty. So
        // does a platform without them: Linux has no SMBv1 setting, BitLocker, Credential
        // Guard or Windows firewall profiles to report.
        let known = self.onboarding == "onboarded";
        let windows = self.platform.starts_with("Windows");
        let k = |v: bool| if known { b(v) } else { "" };
        let w = |v: bool| if known && windows { b(v) } else { "" };
        let build = if self.build == 0 {
            String::new()
        } else {
            self.build.to_string()
        };
        let kbs = if known {
            self.missing_kbs.to_string()
        } else {
            String::new()
        };
        writeln!(
            out,
            "{},{},{},{},{build},{}T06:00:00Z,{}T{:02}:{:02}:00Z,{},{},{},{kbs},{},{},{},{},{},{},{},{},{},{},{}",
            self.device_id,
            self.name,
            self.platform,
            self.version,
            self.first_seen,
            self.last_seen,
            self.build % 24,
            self.missing_kbs % 60,
            self.onboarding,
            self.health,
            self.exposure,
            w(self.smb1),
            w(self.bitlocker),
            w(true),
            w(true),
            w(self.firewall_on),
            w(self.credential_guard),
            k(self.secure_boot),
            b(self.medical),
            self.trust,
            self.site,
            edition(self.platform, self.build, self.medical),
        )
    }
}

/// The `EditionID` a demo device reports: long-term servicing where a build is only
/// serviced as LTSC (1809 desktops; 21H2 medical devices as IoT LTSC), general
/// availability otherwise, so 21H2 office desktops show as the unsupported Enterprise
/// release they are (issue 12); none for platforms without one.
fn edition(platform: &str, build: u32, medical: bool) -> &'static str {
    match (platform, build) {
        ("Windows10", 17763 | 14393) => "EnterpriseS",
        ("Windows10", 19044) if medical => "IoTEnterpriseS",
        ("Windows10" | "Windows11", _) => "Enterprise",
        (p, _) if p.starts_with("WindowsServer") => "ServerStandard",
        _ => "",
    }
}

/// An operating system a device may run: platform, version, build, share in 10,000ths.
type Os = (&'static str, &'static str, u32, u32);

/// The corporate estate, late 2026 (see the lifecycle table in `join`).
const CORPORATE: &[Os] = &[
    ("Windows10", "22H2", 19045, 5200),
    ("Windows10", "1809", 17763, 550),
    ("Windows10", "21H2", 19044, 500),
    ("Windows11", "24H2", 26100, 2300),
    ("Windows11", "25H2", 26200, 600),
    ("Windows11", "23H2", 22631, 120),
    ("Windows10", "1909", 18363, 60),
    ("Windows10", "20H2", 19042, 90),
    ("WindowsServer2019", "1809", 17763, 230),
    ("WindowsServer2022", "21H2", 20348, 200),
    ("WindowsServer2016", "1607", 14393, 80),
    ("WindowsServer2012R2", "6.3", 9600, 40),
    ("WindowsServer2008R2", "6.1", 7601, 10),
    ("Linux", "5.15", 0, 20),
];

/// The imaging and pathology pockets: modality consoles and analysers on old Windows.
const LEGACY: &[Os] = &[
    ("Windows7", "6.1", 7601, 7800),
    ("WindowsXP", "5.1", 2600, 1400),
    ("Windows10", "1607", 14393, 800),
];

fn pick(rng: &mut SmallRng, table: &[Os]) -> Os {
    let total: u32 = table.iter().map(|o| o.3).sum();
    let mut r = rng.random_range(0..total);
    for os in table {
        if r < os.3 {
            return *os;
        }
        r -= os.3;
    }
    table[0]
}

fn device_id(rng: &mut SmallRng) -> String {
    let (a, b, c): (u64, u64, u32) = (rng.random(), rng.random(), rng.random());
    format!("{a:016x}{b:016x}{c:08x}")
}

/// Writes the endpoint file: `total` rows over the demo trusts, as of `as_of`, with
/// `legacy_pct` percent of each trust's usual share of legacy devices.
pub fn write_endpoints(
    path: &Path,
    total: u64,
    seed: u64,
    as_of: NaiveDate,
    legacy_pct: u32,
) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    // Our own columns up to the edition: Defender's optional machine fields are left out
    // (the header may omit them).
    let through_edition = Endpoint::COLUMNS
        .iter()
        .position(|c| *c == "os_edition")
        .expect("an edition column")
        + 1;
    writeln!(out, "{}", Endpoint::COLUMNS[..through_edition].join(","))?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut progress = Progress::new("writing endpoints", total);
    let mut written = 0u64;
    for (trust, count) in endpoint_counts(total) {
        let anchors = anchors(trust.code);
        let mut batch = 0;
        for i in 0..count {
            let site = trust.sites[(i as usize) % trust.sites.len()].0;
            let legacy = rng.random_range(0..1000) < trust.legacy_per_mille * legacy_pct / 100;
            let mut e = endpoint(&mut rng, trust, site, i, legacy, as_of);
            // The anchors take the first rows' places, so totals stay exact.
            match i {
                0 => {
                    e.name = format!("{}.{}", anchors.matched, trust.domain).to_lowercase();
                    set_os(&mut e, ("Windows10", "22H2", 19045, 0));
                    e.last_seen = as_of - Duration::days(1);
                }
                1 => {
                    e.name = format!("{}.{}", anchors.differs, trust.domain).to_lowercase();
                    set_os(&mut e, ("Windows10", "22H2", 19045, 0));
                    e.last_seen = as_of;
                }
                2 => {
                    e.name = format!("{}.{}", anchors.stale, trust.domain).to_lowercase();
                    set_os(&mut e, ("Windows10", "22H2", 19045, 0));
                    e.last_seen = as_of - Duration::days(45);
                }
                _ => {}
            }
            e.write(&mut out)?;
            written += 1;
            batch += 1;
            if batch == 10_000 {
                progress.add(batch);
                batch = 0;
            }
        }
        progress.add(batch);
    }
    out.flush()?;
    progress.finish();
    Ok(written)
}

fn set_os(e: &mut Row<'_>, os: Os) {
    e.platform = os.0;
    e.version = os.1;
    e.build = os.2;
    e.medical = false;
    e.segment = "corporate";
    e.onboarding = "onboarded";
    e.health = "Active";
    e.smb1 = false;
    e.first_seen = e.last_seen.min(e.first_seen) - Duration::days(400);
}

fn endpoint<'a>(
    rng: &mut SmallRng,
    trust: &'a DemoTrust,
    site: &'a str,
    i: u64,
    legacy: bool,
    as_of: NaiveDate,
) -> Row<'a> {
    let (platform, version, build, _) = if legacy {
        pick(rng, LEGACY)
    } else {
        pick(rng, CORPORATE)
    };
    let server = platform.starts_with("WindowsServer") || platform == "Linux";
    let (kind, segment) = if legacy {
        if rng.random_bool(0.7) {
            ("IMG", "imaging")
        } else {
            ("PATH", "pathology")
        }
    } else if server {
        ("SRV", "datacentre")
    } else if trust.kind == TrustType::Ambulance && rng.random_bool(0.4) {
        ("MDT", "vehicle")
    } else if rng.random_bool(0.35) {
        ("LT", "corporate")
    } else {
        ("WS", "corporate")
    };
    let name = format!("{}-{kind}-{:06}.{}", trust.code, i + 1, trust.domain).to_lowercase();
    let onboarding = match platform {
        "WindowsXP" => "Unsupported",
        // The MMA-based agent Windows 7 needed was retired in Aug 2024 (REFERENCE §8.4):
        // most Windows 7 devices are not onboarded, and those that are report nothing.
        "Windows7" if rng.random_bool(0.85) => "CanBeOnboarded",
        _ => match rng.random_range(0..1000) {
            0..970 => "onboarded",
            970..990 => "CanBeOnboarded",
            _ => "InsufficientInfo",
        },
    };
    let seen_days = match rng.random_range(0..100) {
        0..92 => rng.random_range(0..2),
        92..97 => rng.random_range(2..30),
        _ => rng.random_range(31..120),
    };
    let health = match (onboarding, seen_days) {
        ("onboarded", _) if platform == "Windows7" => "Inactive",
        ("onboarded", 0..7) => "Active",
        ("onboarded", _) => "Inactive",
        _ => "NoSensorData",
    };
    let missing_kbs = if legacy {
        rng.random_range(20..140)
    } else {
        match rng.random_range(0..100) {
            0..80 => 0,
            80..97 => rng.random_range(1..4),
            _ => rng.random_range(4..20),
        }
    };
    let smb1 = if legacy {
        rng.random_bool(0.7)
    } else {
        rng.random_bool(0.004)
    };
    let exposure = match (legacy, missing_kbs) {
        (true, _) => "High",
        (false, 0) => "Low",
        (false, 1..4) => "Medium",
        _ => "High",
    };
    Row {
        device_id: device_id(rng),
        name,
        trust: trust.code,
        site,
        platform,
        version,
        build,
        first_seen: as_of - Duration::days(seen_days + rng.random_range(30..2000)),
        last_seen: as_of - Duration::days(seen_days),
        onboarding,
        health,
        exposure,
        missing_kbs,
        smb1,
        bitlocker: !legacy && !rng.random_bool(if server { 0.15 } else { 0.03 }),
        secure_boot: !legacy && !rng.random_bool(0.02),
        credential_guard: !legacy && platform != "Linux" && rng.random_bool(0.72),
        firewall_on: !rng.random_bool(if legacy { 0.2 } else { 0.015 }),
        medical: legacy,
        segment,
    }
}

/// The end of vendor support of a firmware train, where it was confirmed (Dec 2026, with
/// the search tools, from endoflife.date's copies of the vendors' pages: PAN-OS 10.2 ended
/// 27 Aug 2025, FortiOS 7.2 on 30 Sep 2026, REFERENCE §8.5). Check Point and Cisco dates
/// were not found: `None`.
fn firmware_end(vendor: &str, firmware: &str) -> Option<NaiveDate> {
    let train: String = firmware.split('.').take(2).collect::<Vec<_>>().join(".");
    let (y, m, d) = match (vendor, train.as_str()) {
        ("Palo Alto Networks", "9.0") => (2022, 3, 1),
        ("Palo Alto Networks", "10.2") => (2025, 8, 27),
        ("Palo Alto Networks", "11.1") => (2027, 5, 3),
        ("Palo Alto Networks", "11.2") => (2027, 5, 2),
        ("Fortinet", "6.0") => (2022, 9, 29),
        ("Fortinet", "7.2") => (2026, 9, 30),
        ("Fortinet", "7.4") => (2028, 11, 11),
        ("Fortinet", "7.6") => (2030, 1, 25),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Writes the firewalls: two at each trust's data centre and one at each site, with a few
/// on unsupported firmware (always RTH's Horton site, for the demo's corroboration) and a
/// few with the admin interface reachable from the internet.
pub fn write_network(path: &Path, seed: u64, as_of: NaiveDate) -> Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{}", NetworkDevice::COLUMNS.join(","))?;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x6669_7265);
    let models = [
        (
            "Palo Alto Networks",
            "PA-3220",
            "11.2.4",
            "PA-850",
            "9.0.16",
        ),
        (
            "Fortinet",
            "FortiGate 600E",
            "7.4.8",
            "FortiGate 100D",
            "6.0.18",
        ),
        ("Cisco", "Firepower 2130", "7.4.1", "ASA 5516-X", "9.8.4"),
        ("Check Point", "6600", "R81.20", "5400", "R80.10"),
    ];
    let mut n = 0;
    for (t_index, trust) in TRUSTS.iter().enumerate() {
        let (vendor, model, firmware, old_model, old_firmware) = models[t_index % models.len()];
        let mut sites: Vec<&str> = vec![trust.sites[0].0, trust.sites[0].0];
        sites.extend(trust.sites.iter().map(|s| s.0));
        for (i, site) in sites.iter().enumerate() {
            let forced_old = trust.code == "RTH" && *site == "RTH05";
            let old = forced_old || (trust.code != "RJ1" && rng.random_bool(0.04));
            let (m, f) = if old {
                (old_model, old_firmware)
            } else {
                (model, firmware)
            };
            // Judged at the demo's date where the vendor's end of support is known; the
            // feed's own flag otherwise (the old firmware is long out of support).
            let supported = firmware_end(vendor, f).map_or(!old, |end| as_of <= end);
            let review = as_of - Duration::days(rng.random_range(20..500));
            let exposed = trust.code != "RJ1" && rng.random_bool(0.05);
            writeln!(
                out,
                "{}-fw-{:02},{},{site},{vendor},{m},{f},{supported},{review},{exposed}",
                trust.code.to_lowercase(),
                i + 1,
                trust.code,
            )?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// Writes a year of high-severity NHS cyber alerts (those to acknowledge within 48 hours,
/// DSPT 6.3.2) and each trust's responses. RJ1 acknowledged two late and has one open
/// past 48 hours; RTH and RV5 were always on time; elsewhere about one in twelve
/// acknowledgements is late.
pub fn write_alerts(path: &Path, seed: u64, as_of: NaiveDate) -> Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{}", Alert::COLUMNS.join(","))?;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x616c_6572);
    // The alerts NHS Digital issued this year: id, days before the snapshot.
    let issued: Vec<(String, i64)> = (0..26)
        .map(|i| (format!("CC-{}", 4400 + i * 7), 360 - i * 14))
        .collect();
    let mut n = 0;
    for trust in TRUSTS {
        let punctual = matches!(trust.code, "RTH" | "RV5");
        let mut late_high = 0;
        for (id, days) in &issued {
            let at = (as_of - Duration::days(*days))
                .and_hms_opt(rng.random_range(8..17), rng.random_range(0..60), 0)
                .expect("a time");
            let late = if punctual {
                false
            } else if trust.code == "RJ1" && late_high < 2 {
                late_high += 1;
                true
            } else {
                rng.random_bool(0.08)
            };
            let hours = if late {
                rng.random_range(60..200)
            } else {
                rng.random_range(1..40)
            };
            let acked = at + Duration::hours(hours);
            let closed = acked + Duration::days(rng.random_range(3..30));
            let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let closed = if closed.date() <= as_of {
                fmt(closed)
            } else {
                String::new()
            };
            writeln!(
                out,
                "{id},{},{},{},{closed}",
                trust.code,
                fmt(at),
                fmt(acked)
            )?;
            n += 1;
        }
        if trust.code == "RJ1" {
            // Issued three days ago and not acknowledged yet.
            let at = (as_of - Duration::days(3))
                .and_hms_opt(10, 0, 0)
                .expect("a time");
            writeln!(out, "CC-4590,RJ1,{},,", at.format("%Y-%m-%dT%H:%M:%SZ"))?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// Writes the trust list: code, name, type, whether it runs a major trauma centre, region.
pub fn write_trusts(path: &Path) -> Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{}", Trust::COLUMNS.join(","))?;
    for t in TRUSTS {
        writeln!(
            out,
            "{},\"{}\",{},{},{}",
            t.code,
            t.name,
            t.kind.name(),
            t.trauma_centre.is_some(),
            t.region
        )?;
    }
    out.flush()?;
    Ok(TRUSTS.len() as u64)
}

/// Largest demo estate that also gets the two earlier endpoint snapshots.
pub const HISTORY_MAX_ENDPOINTS: u64 = 250_000;

/// Imports one demo file with the telemetry importer, printing its summary.
fn import_file(
    storage: &dyn TelemetryStore,
    kind: Kind,
    as_of: NaiveDate,
    path: &Path,
    rows: u64,
) -> Result<()> {
    let mut progress = Progress::new(format!("importing {kind}"), rows);
    let mut last = 0;
    let report = storage
        .import_telemetry(
            &ImportRequest {
                kind,
                as_of,
                format: Format::Csv,
                path,
                sha256: None,
                by: "demo-data",
                now: Utc::now(),
            },
            &mut |p| {
                progress.add(p.rows.saturating_sub(last));
                last = p.rows;
            },
        )
        .with_context(|| format!("importing the demo {kind} feed"))?;
    progress.finish();
    if let Outcome::Refused(r) = &report.outcome {
        let first: Vec<String> = r
            .bad_rows
            .iter()
            .take(5)
            .map(|b| format!("line {}: {}", b.line, b.reason))
            .collect();
        anyhow::bail!(
            "the importer refused the demo {kind} feed ({}): {}",
            report.summary(),
            first.join("; ")
        );
    }
    println!("  telemetry {kind} of {as_of}: {}", report.summary());
    Ok(())
}

/// Writes the four feeds into a scratch folder inside `data` and imports each with the
/// telemetry importer (trusts first: the other feeds name them). A kind that already has
/// a snapshot is skipped, so a second run adds nothing. Returns what was done, in words.
pub fn import_all(storage: &dyn TelemetryStore, data: &Path, opts: &Options) -> Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("demo-telemetry-")
        .tempdir_in(data)
        .context("making a scratch folder for the demo feeds")?;
    let mut done = Vec::new();
    for kind in [Kind::Trusts, Kind::Endpoints, Kind::Network, Kind::Alerts] {
        if let Some(s) = storage.latest_snapshot(kind)? {
            println!(
                "  telemetry {kind}: a snapshot exists ({}, {} rows), skipped",
                s.as_of,
                thousands(s.rows)
            );
            done.push(format!("{} {kind} (existing)", thousands(s.rows)));
            continue;
        }
        // Two earlier snapshots of endpoints and alerts, four and eight weeks before, so
        // the national page has trends to draw: more legacy devices then (one and a half
        // and one and a quarter times as many), improving since. Not for a national-size
        // estate, whose benches measure one snapshot.
        let history: &[(i64, u32)] = match kind {
            Kind::Endpoints if opts.endpoints <= HISTORY_MAX_ENDPOINTS => &[(56, 150), (28, 125)],
            Kind::Alerts => &[(56, 100), (28, 100)],
            _ => &[],
        };
        let mut rows = 0;
        for &(weeks_ago, legacy_pct) in history.iter().chain(&[(0, 100)]) {
            let day = opts.as_of - Duration::days(weeks_ago);
            let path = scratch.path().join(format!("{kind}-{day}.csv"));
            rows = match kind {
                Kind::Trusts => write_trusts(&path)?,
                Kind::Endpoints => {
                    write_endpoints(&path, opts.endpoints, opts.seed, day, legacy_pct)?
                }
                Kind::Network => write_network(&path, opts.seed, day)?,
                Kind::Alerts => write_alerts(&path, opts.seed + weeks_ago as u64, day)?,
                // The demo's endpoint file carries its configuration itself.
                Kind::SecureConfig => continue,
            };
            import_file(storage, kind, day, &path, rows)?;
        }
        if kind != Kind::SecureConfig {
            done.push(format!("{} {kind}", thousands(rows)));
        }
    }
    Ok(format!("telemetry: {}", done.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_to_the_total_asked_for() {
        for total in [0, 1, 999, 50_000, 2_500_000] {
            let sum: u64 = endpoint_counts(total).iter().map(|(_, n)| n).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn the_contradiction_trust_has_hundreds_of_windows_7_devices_at_the_default_size() {
        let dir = std::env::temp_dir().join(format!("wardcheck-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("endpoints.csv");
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        write_endpoints(&path, 50_000, 7, as_of, 100).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let win7 = text
            .lines()
            .filter(|l| l.contains(",RJ1,") && l.contains(",Windows7,"))
            .count();
        assert!((200..700).contains(&win7), "RJ1 has {win7} Windows 7 rows");
        assert_eq!(text.lines().count(), 50_001, "a header and every row");
        assert!(
            text.contains("rj1-ws-900001.gstt.nhs.uk"),
            "the anchors are there"
        );
        assert!(
            !text.to_lowercase().contains("rj1-lab-pc07"),
            "the unmanaged device is not"
        );
    }
}
