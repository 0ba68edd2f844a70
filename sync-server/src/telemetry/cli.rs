//! `wardcheck-server telemetry ...`: import a feed file; list snapshots and trusts.
//!
//! On a terminal an import shows its progress on stderr (rows, rate, time left from the
//! bytes read), redrawn at most ten times a second; without one it prints no progress.
//! It always ends with one summary line: on stdout when the file was imported (or was
//! already), and otherwise each bad row on stderr as `FILE:LINE: reason` before the
//! error, with a non-zero exit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};

use super::{
    Format, ImportRequest, Kind, Outcome, Phase, Progress, TelemetryStore, parse_as_of, thousands,
    today,
};
use crate::limits;

#[derive(Debug, Subcommand)]
pub enum TelemetryCommand {
    /// Import a feed file as the snapshot of its kind for one day.
    ///
    /// The same file again changes nothing; another file for a day already imported
    /// replaces that day's snapshot. A file with any bad row is not imported at all: the
    /// bad rows are listed and the command exits non-zero.
    Import {
        #[arg(long, value_enum)]
        kind: KindArg,
        /// A CSV file with a header row (.csv) or JSON Lines (.jsonl).
        file: PathBuf,
        /// The day the file describes (YYYY-MM-DD); default: today (UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// How the file is written; default: from its extension.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
    /// List the snapshots held, oldest day first.
    Snapshots,
    /// Retention: remove the snapshots of days more than N days ago (their rows and
    /// counts), keeping the newest of each kind whatever its age (the join reads it).
    /// Trusts are never removed. Audited.
    Prune {
        #[arg(long, default_value_t = 90)]
        keep_days: u32,
    },
    /// List the trusts that telemetry rows may name.
    Trusts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Endpoints,
    Network,
    Alerts,
    Trusts,
    /// Defender's secure configuration assessment, merged into the same day's endpoints.
    SecureConfig,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Endpoints => Kind::Endpoints,
            KindArg::Network => Kind::Network,
            KindArg::Alerts => Kind::Alerts,
            KindArg::Trusts => Kind::Trusts,
            KindArg::SecureConfig => Kind::SecureConfig,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
    /// One JSON document, `{"value": [...]}` as Defender for Endpoint's API returns it.
    Json,
}

/// Runs a `telemetry` command. `audit(action, target)` records what was done.
pub fn run(
    storage: &dyn TelemetryStore,
    command: TelemetryCommand,
    audit: &mut dyn FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    match command {
        TelemetryCommand::Import {
            kind,
            file,
            as_of,
            format,
        } => import(storage, kind.into(), &file, as_of, format, audit),
        TelemetryCommand::Snapshots => {
            for s in storage.snapshots()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.kind,
                    s.as_of,
                    s.rows,
                    s.sha256,
                    s.imported_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    s.imported_by
                );
            }
            Ok(())
        }
        TelemetryCommand::Prune { keep_days } => {
            let gone = storage.prune_snapshots(keep_days, today())?;
            for s in &gone {
                println!(
                    "removed\t{}\t{}\t{}\t{} rows\t{}",
                    s.id, s.kind, s.as_of, s.rows, s.sha256
                );
            }
            println!(
                "{} snapshots older than {keep_days} days removed (the newest of each kind kept)",
                gone.len()
            );
            audit(
                "telemetry_prune",
                &format!("{} snapshots, keep {keep_days} days", gone.len()),
            )?;
            Ok(())
        }
        TelemetryCommand::Trusts => {
            for t in storage.trusts()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.ods_code,
                    t.trust_type,
                    if t.major_trauma_centre { "mtc" } else { "-" },
                    t.region,
                    t.name
                );
            }
            Ok(())
        }
    }
}

fn import(
    storage: &dyn TelemetryStore,
    kind: Kind,
    file: &std::path::Path,
    as_of: Option<String>,
    format: Option<FormatArg>,
    audit: &mut dyn FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    let format = match format {
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Jsonl) => Format::Jsonl,
        Some(FormatArg::Json) => Format::Json,
        None => Format::from_path(file).with_context(|| {
            format!(
                "cannot tell how {} is written from its extension: name it .csv, .jsonl or \
                 .json, or say --format csv|jsonl|json",
                file.display()
            )
        })?,
    };
    let as_of = match as_of {
        Some(s) => parse_as_of(&s, today()).map_err(anyhow::Error::msg)?,
        None => today(),
    };
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let mut display = ProgressLine::new(std::io::stderr().is_terminal());
    let report = storage
        .import_telemetry(
            &ImportRequest {
                kind,
                as_of,
                format,
                path: file,
                sha256: None,
                by: "cli",
                now: chrono::Utc::now(),
            },
            &mut |p| display.show(p),
        )
        .with_context(|| format!("importing {}", file.display()));
    display.clear();
    let report = report?;
    let target = format!("telemetry:{kind}@{as_of}");
    match &report.outcome {
        Outcome::Imported {
            replaced,
            warnings,
            warning_count,
            ..
        } => {
            let what = if replaced.is_some() {
                "replaced"
            } else {
                "imported"
            };
            audit("telemetry_import", &format!("{target} {what}"))?;
            let mut err = std::io::stderr().lock();
            for w in warnings {
                match w.line {
                    // About the file as a whole.
                    0 => writeln!(err, "{}: warning: {}", file.display(), w.reason)?,
                    n => writeln!(err, "{}:{n}: warning: {}", file.display(), w.reason)?,
                }
            }
            let listed = warnings.len() as u64;
            if *warning_count > listed {
                writeln!(
                    err,
                    "... and {} more warnings (the first {} are listed)",
                    thousands(*warning_count - listed),
                    limits::MAX_REPORTED_BAD_ROWS
                )?;
            }
            println!("{}", report.summary());
            println!("  steps: {}", report.steps_line());
            if let Some(done) = storage.wait_for_checkpoint() {
                println!("  then {}", done.summary());
            }
            Ok(())
        }
        Outcome::AlreadyImported { .. } => {
            println!("{}", report.summary());
            Ok(())
        }
        Outcome::Refused(r) => {
            let mut err = std::io::stderr().lock();
            for b in &r.bad_rows {
                writeln!(err, "{}:{}: {}", file.display(), b.line, b.reason)?;
            }
            let listed = r.bad_rows.len() as u64;
            if r.bad_row_count > listed {
                writeln!(
                    err,
                    "... and {} more bad rows (the first {} are listed)",
                    thousands(r.bad_row_count - listed),
                    limits::MAX_REPORTED_BAD_ROWS
                )?;
            }
            bail!("{}: {}", file.display(), report.summary())
        }
    }
}

/// The progress line on a terminal: redrawn in place, at most every
/// [`PROGRESS_INTERVAL`].
struct ProgressLine {
    on: bool,
    started: Instant,
    /// When reading rows began (about), for the rate.
    rows_since: Option<Instant>,
    last: Option<Instant>,
    drawn: bool,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl ProgressLine {
    fn new(on: bool) -> Self {
        ProgressLine {
            on,
            started: Instant::now(),
            rows_since: None,
            last: None,
            drawn: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        // Rows are read from when hashing ends (or from the start, when there was none).
        match p.phase {
            Phase::Hashing => self.rows_since = Some(now),
            _ => {
                self.rows_since.get_or_insert(self.started);
            }
        }
        let finishing = p.phase == Phase::Finishing;
        if !finishing && self.last.is_some_and(|t| now - t < PROGRESS_INTERVAL) {
            return;
        }
        self.last = Some(now);
        let percent = |b: u64| (b * 100).checked_div(p.total_bytes).unwrap_or(100);
        let text = match p.phase {
            Phase::Hashing => format!("hashing the file: {}%", percent(p.bytes)),
            Phase::Rows => {
                let since = self.rows_since.unwrap_or(self.started);
                let secs = (now - since).as_secs_f64();
                if secs < 0.25 {
                    // Too early for a rate that means anything.
                    return;
                }
                let left = if p.bytes > 0 && p.total_bytes > p.bytes {
                    let per_byte = secs / p.bytes as f64;
                    format!(
                        ", about {:.0} s left",
                        per_byte * (p.total_bytes - p.bytes) as f64
                    )
                } else {
                    String::new()
                };
                format!(
                    "{} rows, {} rows/s, {}%{left}",
                    thousands(p.rows),
                    thousands((p.rows as f64 / secs) as u64),
                    percent(p.bytes)
                )
            }
            Phase::Finishing => format!(
                "{} rows read; checking for duplicates, indexing and committing",
                thousands(p.rows)
            ),
        };
        let mut err = std::io::stderr().lock();
        // Carriage return and "erase line": the line is redrawn where it is.
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}
