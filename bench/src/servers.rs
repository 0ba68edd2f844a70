//! The two servers under test, each a child process on a free loopback port with a
//! fresh data folder: ours (`wardcheck-server serve`) and the JavaScript
//! automerge-repo sync server (`bench/js-sync-server/server.mjs` on Node).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use uuid::Uuid;
use wardcheck_server::auth;
use wardcheck_server::inspections::{self, CreateInspection};
use wardcheck_server::storage::{PgStorage, Role, SqliteStorage, Storage};
use wardcheck_server::telemetry::TelemetryDb;

/// The trust every benchmark inspection belongs to.
pub const TRUST: &str = "RJ1";
/// The checklist every benchmark inspection pins (bundled).
pub const CHECKLIST: &str = "cqc-onsite-cyber";
/// The user whose devices the benchmark clients sign in as.
pub const USER: &str = "bench";

/// A running server, stopped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `ws://127.0.0.1:PORT/...`: where clients connect.
    pub ws_url: String,
    graceful: bool,
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak and current resident memory in KiB (VmHWM, VmRSS), on Linux.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let get = |key: &str| -> Option<u64> {
            status
                .lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some((get("VmHWM:")?, get("VmRSS:")?))
    }

    /// CPU time (user + system) the process has used so far, on Linux.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name (which may hold spaces) start after ") ".
        let rest = stat.rsplit_once(") ")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on every Linux this runs on.
        Some(Duration::from_millis(ticks * 10))
    }

    /// Stops the server: SIGTERM and a wait (the JS server flushes its storage on
    /// SIGTERM), or SIGKILL for ours, whose writes are durable when acknowledged.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        if self.graceful {
            let pid = rustix::process::Pid::from_child(&self.child);
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Starts `program args`, with `env`, and waits for the line that holds its port.
fn spawn(
    mut cmd: Command,
    log: &Path,
    port_of: impl Fn(&str) -> Option<String>,
    path: &str,
    graceful: bool,
) -> Result<ServerProcess> {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(line) => {
                if let Some(p) = port_of(&line?) {
                    break p;
                }
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                bail!("{cmd:?} exited before listening:\n{tail}");
            }
        }
    };
    // Keep reading stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(ServerProcess {
        child,
        ws_url: format!("ws://127.0.0.1:{port}{path}"),
        graceful,
    })
}

/// Our server's data: one inspector per client (each with one device token and one
/// bound actor, as a field device has), and inspections, made in the data folder before
/// the server starts. `groups` says how many inspectors share each inspection, in the
/// order the workload takes them: the tokens come group by group. One user per client,
/// as in the field: a user may hold only a few sync connections at once
/// (`limits::MAX_CONNECTIONS_PER_USER`).
#[derive(Debug)]
pub struct OurData {
    pub dir: PathBuf,
    pub tokens: Vec<String>,
    /// The actor bound to each token's device: the server takes changes only from
    /// bound actors.
    pub actors: Vec<automerge::ActorId>,
    /// The user each token signs in as.
    pub users: Vec<String>,
    /// One a group.
    pub inspections: Vec<Uuid>,
}

impl OurData {
    /// Creates one inspection for each group, and as many inspectors as the group
    /// holds, each with a device, all assigned to it.
    pub fn create(dir: &Path, groups: &[usize], database: Option<&str>) -> Result<OurData> {
        let storage: Arc<dyn Storage> = match database {
            Some(url) => Arc::new(PgStorage::open(url)?),
            None => Arc::new(SqliteStorage::open(dir)?),
        };
        let telemetry = TelemetryDb::open(dir)?;
        let now = Utc::now();
        let hash = auth::hash_password("benchmark password, never used to sign in")?;
        let tokens: usize = groups.iter().sum();
        let mut out = OurData {
            dir: dir.to_path_buf(),
            tokens: Vec::with_capacity(tokens),
            actors: Vec::with_capacity(tokens),
            users: Vec::with_capacity(tokens),
            inspections: Vec::with_capacity(groups.len()),
        };
        for &members in groups {
            let mut assign = Vec::with_capacity(members);
            for _ in 0..members {
                let k = out.users.len();
                let user = format!("{USER}-{k}");
                let uid = storage.add_user(&user, "Benchmark", &Role::Inspector, &hash)?;
                let (token, token_hash) = auth::new_token();
                let device = storage.add_device(uid, &format!("bench-{k}"), &token_hash, now)?;
                let actor = automerge::ActorId::random();
                storage.bind_actor(actor.to_bytes(), &user, Some(device), now)?;
                out.tokens.push(token);
                out.actors.push(actor);
                out.users.push(user.clone());
                assign.push(user);
            }
            let req = CreateInspection {
                trust: TRUST.into(),
                sites: vec![],
                checklist: CHECKLIST.into(),
                assign,
                visit_start: None,
                visit_end: None,
            };
            let rec = inspections::create(&*storage, &telemetry, &req, "bench-setup", now)?;
            out.inspections.push(rec.id);
        }
        Ok(out)
    }
}

/// Starts `wardcheck-server serve` on `data`, logging warnings only (to `log`).
pub fn start_ours(
    bin: &Path,
    data: &Path,
    log: &Path,
    database: Option<&str>,
) -> Result<ServerProcess> {
    let mut cmd = Command::new(bin);
    cmd.env_remove("WARDCHECK_DATABASE");
    if let Some(url) = database {
        cmd.env("WARDCHECK_DATABASE", url);
    }
    cmd.arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    spawn(
        cmd,
        log,
        |line| {
            line.split("http://127.0.0.1:")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .map(str::to_owned)
        },
        "/api/v1/sync",
        false,
    )
}

/// Starts the JavaScript sync server on `data` with Node.
pub fn start_js(node: &str, script: &Path, data: &Path, log: &Path) -> Result<ServerProcess> {
    let mut cmd = Command::new(node);
    cmd.arg(script).env("PORT", "0").env("DATA_DIR", data);
    spawn(
        cmd,
        log,
        |line| {
            line.strip_prefix("listening on ")
                .map(|p| p.trim().to_owned())
        },
        "",
        true,
    )
}
