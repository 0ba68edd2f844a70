//! `wardcheck-server backup DEST` and `restore SRC` (issue 15, item 5).
//!
//! A backup is a folder: `wardcheck.db` (the record: users, devices, inspections, their
//! documents, photos, reports and the audit log), `telemetry.db` (the feeds), and
//! `SHA256SUMS` (`sha256sum -c SHA256SUMS` checks it). Each database is copied with
//! SQLite's `VACUUM INTO` from a read transaction: a consistent copy of what was
//! committed when it began, taken while the server runs and syncs (writers go on; under
//! WAL they do not wait for it). Every change the server acknowledged before the backup
//! began is in it. A record kept in PostgreSQL is backed up with PostgreSQL's tools
//! (`pg_dump`, docs/DEPLOY.md); this command then copies the telemetry only, and says so.
//!
//! A restore goes into a data folder that holds no record yet (never over a live one):
//! it checks every file against `SHA256SUMS`, checks each database's integrity, copies
//! them in, opens the record (bringing its schema up to date) and checks the audit
//! log's chain. Then start the server on that folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::storage::{SqliteStorage, Storage};

/// The record's file in a data folder and in a backup.
pub const RECORD_FILE: &str = "wardcheck.db";
/// The telemetry's file.
pub const TELEMETRY_FILE: &str = "telemetry.db";
/// The checksums of a backup's files, as `sha256sum` writes them.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// What a backup holds: each file, its SHA-256 and size.
#[derive(Debug, Clone)]
pub struct Copied {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

fn sha256_of(path: &Path) -> Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// A consistent copy of the SQLite database `from` in `to` (which must not exist).
fn vacuum_into(from: &Path, to: &Path) -> Result<()> {
    // Read-write without create: a missing file is an error, not a new empty database;
    // VACUUM INTO only reads it.
    let conn = Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", from.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = to
        .to_str()
        .context("the backup folder's path is not UTF-8")?;
    conn.execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Backs the data folder `data` up into `dest` (a new folder, or an empty one). `record`
/// is false when the record is kept in PostgreSQL (then only the telemetry is copied).
pub fn backup(data: &Path, dest: &Path, record: bool) -> Result<Vec<Copied>> {
    if dest.exists() {
        let empty = std::fs::read_dir(dest)
            .with_context(|| format!("reading {}", dest.display()))?
            .next()
            .is_none();
        ensure!(
            empty,
            "{} is not empty: back up into a new folder (a backup never overwrites another)",
            dest.display()
        );
    }
    std::fs::create_dir_all(dest).with_context(|| format!("making {}", dest.display()))?;
    let mut files = Vec::new();
    if record {
        files.push(RECORD_FILE);
    }
    if data.join(TELEMETRY_FILE).exists() {
        files.push(TELEMETRY_FILE);
    }
    let mut copied = Vec::new();
    for f in files {
        let to = dest.join(f);
        vacuum_into(&data.join(f), &to)?;
        let (sha256, bytes) = sha256_of(&to)?;
        copied.push(Copied {
            file: f.to_owned(),
            sha256,
            bytes,
        });
    }
    let mut sums = std::fs::File::create(dest.join(SUMS_FILE))?;
    for c in &copied {
        writeln!(sums, "{}  {}", c.sha256, c.file)?;
    }
    sums.sync_all()?;
    Ok(copied)
}

/// Checks the backup in `src` and restores it into the data folder `data`, which must
/// hold no record. Returns the files restored and the audit log's rows.
pub fn restore(src: &Path, data: &Path) -> Result<(Vec<Copied>, u64)> {
    let sums = std::fs::read_to_string(src.join(SUMS_FILE))
        .with_context(|| format!("{} has no {SUMS_FILE}: not a backup", src.display()))?;
    let mut checked = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, file) = line
            .split_once("  ")
            .with_context(|| format!("{SUMS_FILE}: a line that is not `HASH  FILE`: {line:?}"))?;
        ensure!(
            [RECORD_FILE, TELEMETRY_FILE].contains(&file),
            "{SUMS_FILE} names {file:?}, which no backup holds"
        );
        let path = src.join(file);
        let (got, bytes) = sha256_of(&path)?;
        ensure!(
            got == want,
            "{file} does not match its SHA-256 in {SUMS_FILE} (it was changed or damaged): \
             nothing was restored"
        );
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        ensure!(
            integrity == "ok",
            "{file} fails SQLite's integrity check ({integrity}): nothing was restored"
        );
        checked.push(Copied {
            file: file.to_owned(),
            sha256: got,
            bytes,
        });
    }
    ensure!(
        checked.iter().any(|c| c.file == RECORD_FILE),
        "the backup holds no record ({RECORD_FILE}): a PostgreSQL record is restored with \
         pg_restore"
    );
    if data.join(RECORD_FILE).exists() {
        bail!(
            "{} already holds a record: restore into a new data folder, then start the server \
             on it (a restore never overwrites a record)",
            data.display()
        );
    }
    std::fs::create_dir_all(data).with_context(|| format!("making {}", data.display()))?;
    let mut placed: Vec<PathBuf> = Vec::new();
    let mut copy_all = || -> Result<()> {
        for c in &checked {
            let to = data.join(&c.file);
            std::fs::copy(src.join(&c.file), &to)
                .with_context(|| format!("copying {} into {}", c.file, data.display()))?;
            placed.push(to.clone());
            std::fs::File::open(&to)?.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = copy_all() {
        for p in &placed {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    // Opened as the server opens it (its schema brought up to date), and its audit log's
    // chain checked.
    let storage = SqliteStorage::open(data).context("opening the restored record")?;
    let v = storage.audit_verify()?;
    if let Some((seq, why)) = v.broken {
        bail!(
            "the restored audit log is broken at row {seq}: {why} ({} rows before it hold)",
            v.rows
        );
    }
    Ok((checked, v.rows))
}
