//! Importing a national endpoint snapshot (ARCHITECTURE "Speed": 2.5 million endpoint
//! rows in under 30 s).
//!
//! `cargo bench -p wardcheck-server --bench telemetry` generates a CSV of
//! `TELEMETRY_BENCH_ROWS` endpoint rows (default 2,500,000, about 500 MB) for 210 trusts
//! into a temporary folder, then imports it `TELEMETRY_BENCH_RUNS` times (default 3),
//! each into a fresh data folder, and prints each run's time, rows per second and peak
//! resident memory of the import (VmHWM, reset before each run) and CPU time, then the
//! medians. After the last run it times the same file again (already imported: hashing
//! only), another file for the same day (which replaces the snapshot) and the file as the
//! next day's snapshot (a second snapshot beside the first).
//!
//! Not a criterion benchmark: one run takes tens of seconds and its memory matters as
//! much as its time.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use wardcheck_server::telemetry::{
    Format, ImportReport, ImportRequest, Kind, Outcome, TelemetryDb, TelemetryStore, thousands,
};

const TRUSTS: usize = 210;
const SITES_PER_TRUST: usize = 6;

/// A small deterministic generator (xorshift64*): the same file every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn trust_code(i: usize) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    format!(
        "R{}{}",
        ALNUM[i / ALNUM.len() % ALNUM.len()] as char,
        ALNUM[i % ALNUM.len()] as char
    )
}

fn write_trusts(path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "ods_code,name,trust_type,major_trauma_centre,region")?;
    let types = ["acute", "ambulance", "mental-health", "community"];
    for i in 0..TRUSTS {
        writeln!(
            out,
            "{},Bench Trust {i},{},{},Region {}",
            trust_code(i),
            types[i % types.len()],
            i % 8 == 0,
            i % 7
        )?;
    }
    out.flush()
}

/// Writes `rows` endpoint rows; returns the file's size.
fn write_endpoints(path: &Path, rows: u64) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        out,
        "device_id,device_name,os_platform,os_version,os_build,first_seen,last_seen,\
         onboarding_status,health_status,exposure_level,missing_security_updates,smb1_enabled,\
         bitlocker_on,firewall_domain,firewall_private,firewall_public,credential_guard_running,\
         secure_boot_on,is_medical_device,trust,site"
    )?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let platforms = [
        ("Windows10", "22H2", 19045),
        ("Windows10", "21H2", 19044),
        ("Windows11", "23H2", 22631),
        ("Windows10", "1809", 17763),
        ("Windows7", "", 7601),
        ("WindowsServer2019", "1809", 17763),
        ("WindowsXP", "", 2600),
    ];
    let onboarding = [
        "onboarded",
        "onboarded",
        "onboarded",
        "CanBeOnboarded",
        "Unsupported",
    ];
    let health = [
        "Active",
        "Active",
        "Active",
        "Inactive",
        "ImpairedCommunication",
        "NoSensorData",
    ];
    let exposure = ["None", "Low", "Medium", "High"];
    let yes_no = |r: &mut Rng, p_yes: u64| {
        if r.below(100) < p_yes {
            "true"
        } else {
            "false"
        }
    };
    for i in 0..rows {
        let t = rng.below(TRUSTS as u64) as usize;
        let trust = trust_code(t);
        let site = rng.below(SITES_PER_TRUST as u64);
        // Mostly Windows 10, some Windows 7 and a few XP, as on a large NHS estate.
        let p = match rng.below(1000) {
            0..=699 => platforms[0],
            700..=799 => platforms[1],
            800..=899 => platforms[2],
            900..=939 => platforms[3],
            940..=979 => platforms[4],
            980..=994 => platforms[5],
            _ => platforms[6],
        };
        let onboarded = onboarding[rng.below(onboarding.len() as u64) as usize];
        let known = onboarded == "onboarded";
        let day = 1 + rng.below(28);
        write!(
            out,
            "{:016x}{:016x}{:08x},{trust}-{}-{:07}.{}.nhs.uk,{},{},{},2023-{:02}-{:02}T08:00:00Z,\
             2026-11-{day:02}T{:02}:{:02}:00Z,{onboarded},{},{},",
            rng.next(),
            rng.next(),
            i,
            if i % 3 == 0 { "WS" } else { "LT" },
            // Host names in no particular order, as in an export sorted by device id.
            rng.below(10_000_000),
            trust.to_ascii_lowercase(),
            p.0,
            p.1,
            p.2,
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            health[rng.below(health.len() as u64) as usize],
            exposure[rng.below(exposure.len() as u64) as usize],
        )?;
        if known {
            write!(
                out,
                "{},{},{},{},{},{},{},{}",
                rng.below(40),
                yes_no(&mut rng, 5),
                yes_no(&mut rng, 85),
                yes_no(&mut rng, 97),
                yes_no(&mut rng, 95),
                yes_no(&mut rng, 95),
                yes_no(&mut rng, 60),
                yes_no(&mut rng, 80),
            )?;
        } else {
            // Not onboarded: the configuration is not known.
            write!(out, ",,,,,,,")?;
        }
        writeln!(
            out,
            ",{},{trust},{trust}{:02}",
            yes_no(&mut rng, 2),
            1 + site
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The machine export's columns (REFERENCE §7.1), as a script writes the API's records
/// to CSV: no configuration columns (the export has none), the site in a machine tag.
const MACHINE_COLUMNS: [&str; 16] = [
    "id",
    "computerDnsName",
    "osPlatform",
    "version",
    "osBuild",
    "firstSeen",
    "lastSeen",
    "onboardingStatus",
    "healthStatus",
    "exposureLevel",
    "riskScore",
    "lastIpAddress",
    "lastExternalIpAddress",
    "rbacGroupName",
    "aadDeviceId",
    "machineTags",
];

/// `rows` machines in the export's shape, with the same mix as [`write_endpoints`].
fn write_machines(path: &Path, rows: u64) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{}", MACHINE_COLUMNS.join(","))?;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let platforms = [
        ("Windows10", "22H2", 19045),
        ("Windows10", "21H2", 19044),
        ("Windows11", "23H2", 22631),
        ("Windows10", "1809", 17763),
        ("Windows7", "", 7601),
        ("WindowsServer2019", "1809", 17763),
        ("WindowsXP", "", 2600),
    ];
    let onboarding = [
        "Onboarded",
        "Onboarded",
        "Onboarded",
        "CanBeOnboarded",
        "Unsupported",
    ];
    let health = [
        "Active",
        "Active",
        "Active",
        "Inactive",
        "ImpairedCommunication",
    ];
    let risk = ["None", "Informational", "Low", "Medium", "High"];
    let exposure = ["None", "Low", "Medium", "High"];
    for i in 0..rows {
        let t = rng.below(TRUSTS as u64) as usize;
        let trust = trust_code(t);
        let site = 1 + rng.below(SITES_PER_TRUST as u64);
        let p = match rng.below(1000) {
            0..=699 => platforms[0],
            700..=799 => platforms[1],
            800..=899 => platforms[2],
            900..=939 => platforms[3],
            940..=979 => platforms[4],
            980..=994 => platforms[5],
            _ => platforms[6],
        };
        let medical = if rng.below(100) < 2 {
            ";medical-device"
        } else {
            ""
        };
        writeln!(
            out,
            "{:016x}{:016x}{:08x},{trust}-{}-{:07}.{}.nhs.uk,{},{},{},2023-{:02}-{:02}T08:00:00Z,\
             2026-11-{:02}T{:02}:{:02}:00Z,{},{},{},{},10.{}.{}.{},81.2.{}.{},{trust} devices,\
             {:08x}-0000-4000-8000-{:012x},site:{trust}{site:02}{medical}",
            rng.next(),
            rng.next(),
            i,
            if i % 3 == 0 { "WS" } else { "LT" },
            rng.below(10_000_000),
            trust.to_ascii_lowercase(),
            p.0,
            p.1,
            p.2,
            1 + rng.below(12),
            1 + rng.below(28),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            onboarding[rng.below(onboarding.len() as u64) as usize],
            health[rng.below(health.len() as u64) as usize],
            exposure[rng.below(exposure.len() as u64) as usize],
            risk[rng.below(risk.len() as u64) as usize],
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(u32::MAX as u64),
            rng.below(1 << 48),
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The peer the import is measured against: the same file read with the same CSV
/// reader, every field inserted as text into a table with no index, no check and no
/// count, in one transaction, with the import's pragmas. What the import adds (checking
/// every field, counting, the duplicate check, two indexes) is the difference.
fn bare_insert(dir: &Path, csv_path: &Path) -> Duration {
    let t = Instant::now();
    let conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;",
    )
    .unwrap();
    let cols: Vec<String> = MACHINE_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\" TEXT"))
        .collect();
    conn.execute_batch(&format!("CREATE TABLE machines ({})", cols.join(", ")))
        .unwrap();
    let mut conn = conn;
    let tx = conn.transaction().unwrap();
    {
        let marks: Vec<String> = (1..=MACHINE_COLUMNS.len())
            .map(|i| format!("?{i}"))
            .collect();
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO machines VALUES ({})",
                marks.join(", ")
            ))
            .unwrap();
        let mut reader = csv::Reader::from_path(csv_path).unwrap();
        let mut rec = csv::ByteRecord::new();
        while reader.read_byte_record(&mut rec).unwrap() {
            let fields: Vec<&str> = rec
                .iter()
                .map(|f| std::str::from_utf8(f).unwrap())
                .collect();
            insert.execute(rusqlite::params_from_iter(fields)).unwrap();
        }
    }
    tx.commit().unwrap();
    t.elapsed()
}

/// The process's peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time this process has used (user and system, every thread), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses): utime is the 14th
    // field of the line, stime the 15th, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() > 12 {
        (f[11] + f[12]) / 100.0
    } else {
        f64::NAN
    }
}

/// Resets the peak so the next reading covers only what follows (Linux: writing 5 to
/// clear_refs resets VmHWM to the current RSS).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn import(
    storage: &TelemetryDb,
    kind: Kind,
    path: &Path,
    as_of: NaiveDate,
) -> (ImportReport, Duration) {
    let report = storage
        .import_telemetry(
            &ImportRequest {
                kind,
                as_of,
                format: Format::Csv,
                path,
                sha256: None,
                by: "bench",
                now: Utc::now(),
            },
            &mut |_| {},
        )
        .expect("the import runs");
    if let Outcome::Refused(r) = &report.outcome {
        panic!(
            "the bench file was refused: {:?}",
            &r.bad_rows[..r.bad_rows.len().min(5)]
        );
    }
    // The import returns once its rows are durable in the write-ahead log; the copy
    // into the database runs after, on a thread of its own. Waited for here, so that
    // it does not run into the next measurement, and printed.
    let checkpoint = storage.wait_for_checkpoint();
    if let Some(c) = checkpoint.filter(|c| !c.complete()) {
        println!("    the checkpoint after: {}", c.summary());
    }
    let checkpoint = checkpoint.map(|c| c.took).unwrap_or_default();
    (report, checkpoint)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rows = env_number("TELEMETRY_BENCH_ROWS", 2_500_000);
    let runs = env_number("TELEMETRY_BENCH_RUNS", 3).max(1);
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let trusts = scratch.path().join("trusts.csv");
    let endpoints = scratch.path().join("endpoints.csv");
    write_trusts(&trusts).unwrap();
    let t = Instant::now();
    let size = write_endpoints(&endpoints, rows).unwrap();
    println!(
        "telemetry import: {} endpoint rows, {:.0} MB of CSV (generated in {:.1} s)",
        thousands(rows),
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    // `TELEMETRY_BENCH_ONLY=machine`: only the machine export beside the bare insert.
    let only_machine = std::env::var("TELEMETRY_BENCH_ONLY").is_ok_and(|v| v == "machine");
    if only_machine {
        machine_shape(scratch.path(), &trusts, rows, runs, as_of);
        return;
    }

    let mut times: Vec<Duration> = Vec::new();
    let mut peaks = Vec::new();
    let mut last = None;
    for run in 1..=runs {
        let data = tempfile::tempdir_in(scratch.path()).unwrap();
        let storage = TelemetryDb::open(data.path()).unwrap();
        import(&storage, Kind::Trusts, &trusts, as_of);
        reset_peak_rss();
        let cpu = cpu_seconds();
        let (report, checkpoint) = import(&storage, Kind::Endpoints, &endpoints, as_of);
        let cpu = cpu_seconds() - cpu;
        let peak = peak_rss_mib();
        println!(
            "  run {run}: {:.2} s, {} rows/s, peak RSS {peak:.0} MiB, CPU {cpu:.1} s (both threads, \
             with the checkpoint after: {:.2} s)",
            report.elapsed.as_secs_f64(),
            thousands((rows as f64 / report.elapsed.as_secs_f64()) as u64),
            checkpoint.as_secs_f64()
        );
        println!("    steps: {}", report.steps_line());
        times.push(report.elapsed);
        peaks.push(peak);
        last = Some((data, storage));
    }
    times.sort();
    peaks.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "median {:.2} s, {} rows/s, peak RSS median {:.0} MiB (aim: under 30 s)",
        median.as_secs_f64(),
        thousands((rows as f64 / median.as_secs_f64()) as u64),
        peaks[peaks.len() / 2]
    );

    machine_shape(scratch.path(), &trusts, rows, runs, as_of);

    let (_data, storage) = last.expect("at least one run");
    let (again, _) = import(&storage, Kind::Endpoints, &endpoints, as_of);
    assert!(matches!(again.outcome, Outcome::AlreadyImported { .. }));
    println!(
        "same file again (already imported): {:.2} s",
        again.elapsed.as_secs_f64()
    );
    // Another file for the same day (the same rows but the last): replaces the snapshot.
    let other = scratch.path().join("endpoints-corrected.csv");
    write_endpoints(&other, rows - 1).unwrap();
    reset_peak_rss();
    let (replaced, _) = import(&storage, Kind::Endpoints, &other, as_of);
    assert!(matches!(
        replaced.outcome,
        Outcome::Imported {
            replaced: Some(_),
            ..
        }
    ));
    println!(
        "another file for the same day (replaces the snapshot): {:.2} s, peak RSS {:.0} MiB",
        replaced.elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    reset_peak_rss();
    let next_day = as_of.succ_opt().unwrap();
    let (second, _) = import(&storage, Kind::Endpoints, &endpoints, next_day);
    println!(
        "the next day's snapshot beside the first: {:.2} s, {} rows/s, peak RSS {:.0} MiB",
        second.elapsed.as_secs_f64(),
        thousands((rows as f64 / second.elapsed.as_secs_f64()) as u64),
        peak_rss_mib()
    );
    let db = _data.path().join("telemetry.db");
    println!(
        "telemetry.db with two snapshots: {:.0} MB",
        std::fs::metadata(db).map_or(0, |m| m.len()) as f64 / 1e6
    );
}

/// The machine export's shape (issue 12), each run beside a bare bulk insert of the same
/// rows, alternating, so both see the same machine.
fn machine_shape(scratch: &Path, trusts: &Path, rows: u64, runs: u64, as_of: NaiveDate) {
    let machines = scratch.join("machines.csv");
    let size = write_machines(&machines, rows).unwrap();
    println!(
        "machine export shape: {} rows, {:.0} MB of CSV",
        thousands(rows),
        size as f64 / 1e6
    );
    let mut shaped = Vec::new();
    let mut bare = Vec::new();
    let mut ratios = Vec::new();
    let mut whole_ratios = Vec::new();
    let mut checkpoints = Vec::new();
    for run in 1..=runs {
        let data = tempfile::tempdir_in(scratch).unwrap();
        let b = bare_insert(data.path(), &machines);
        let storage = TelemetryDb::open(data.path()).unwrap();
        import(&storage, Kind::Trusts, trusts, as_of);
        let (report, checkpoint) = import(&storage, Kind::Endpoints, &machines, as_of);
        let (i, b_s) = (report.elapsed.as_secs_f64(), b.as_secs_f64());
        let whole = i + checkpoint.as_secs_f64();
        println!(
            "  run {run}: import {i:.2} s ({} rows/s); bare bulk insert {b_s:.2} s; ratio {:.2}; \
             the checkpoint after, in the background, {:.2} s (import and checkpoint {whole:.2} s, \
             ratio {:.2})",
            thousands((rows as f64 / i) as u64),
            i / b_s,
            checkpoint.as_secs_f64(),
            whole / b_s
        );
        println!("    steps: {}", report.steps_line());
        ratios.push(i / b_s);
        whole_ratios.push(whole / b_s);
        shaped.push(report.elapsed);
        checkpoints.push(checkpoint);
        bare.push(b);
    }
    shaped.sort();
    bare.sort();
    checkpoints.sort();
    ratios.sort_by(f64::total_cmp);
    whole_ratios.sort_by(f64::total_cmp);
    let (m, b) = (shaped[shaped.len() / 2], bare[bare.len() / 2]);
    // The ratio that matters is each run's against the bare insert beside it: this
    // machine's speed drifts by a third between runs a minute apart. The bare insert's
    // commit checkpoints as it commits (SQLite's default); the import's checkpoint runs
    // after it returns, so both ratios are given.
    println!(
        "machine export median {:.2} s ({} rows/s), bare bulk insert median {:.2} s; \
         median of the runs' ratios {:.2} (aims: under 10 s, within 2x); the checkpoint after, \
         median {:.2} s; with it, median ratio {:.2}",
        m.as_secs_f64(),
        thousands((rows as f64 / m.as_secs_f64()) as u64),
        b.as_secs_f64(),
        ratios[ratios.len() / 2],
        checkpoints[checkpoints.len() / 2].as_secs_f64(),
        whole_ratios[whole_ratios.len() / 2]
    );
}
