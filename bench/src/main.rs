//! `sync-bench`: measures the sync server, and the JavaScript automerge-repo sync
//! server beside it, with the same client code, in one run.
//!
//! - **Edit latency**: client A changes one answer and syncs; the time until client
//!   B, connected to the same inspection, holds the change (A → server → B), over
//!   `--edits` edits on loopback.
//! - **Many clients**: `--clients` clients at once, each with its own inspection:
//!   connect, fetch the inspection (first sync), then change an answer and sync,
//!   `--edits-per-client` times, each edit waiting until the server acknowledges it.
//!   Throughput, p50/p99 latency and failures.
//! - **One shared inspection**: `--shared` clients all on one inspection, each making
//!   its edits as above, while every other client's edits reach it too.
//! - **A flood of bad tokens** (ours only, `--flood N`): N clients as in the many-clients
//!   test, alternately without and with `--flood-tasks` connections a time presenting
//!   tokens the server never issued, `--flood-pairs` times each, on fresh inspections.
//!
//! Both servers run as child processes on loopback with fresh data folders. Ours
//! gets its users, device tokens and inspections in its data folder before it
//! starts; the JS server (no authentication) gets the same inspections pushed by a
//! client, then restarts, so both serve them cold from storage.
//!
//! Build and run (release; the server binary is found beside this one):
//! `cargo build --release -p wardcheck-server -p wardcheck-bench && target/release/sync-bench`
//!
//! `--bombs` measures instead our server's memory under the largest message a client
//! may send, of chunks that inflate past every limit ([`bombs`]).

mod bombs;
mod client;
mod servers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use automerge::{ActorId, AutoCommit};
use chrono::Utc;
use clap::{Parser, ValueEnum};
use uuid::Uuid;
use wardcheck_core::checklist::{self, AnswerKind, Checklist, Scope};
use wardcheck_core::inspection::{Answer, Inspection, NewInspection, Stamp};

use crate::client::{Connection, Replica, doc_id};
use crate::servers::ServerProcess;

#[derive(Debug, Parser)]
#[command(name = "sync-bench", about)]
struct Args {
    /// Edits timed in the A → server → B latency test.
    #[arg(long, default_value_t = 200)]
    edits: usize,
    /// Client counts for the many-clients test (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000")]
    clients: Vec<usize>,
    /// Client counts for the shared test: that many clients on one inspection.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    shared: Vec<usize>,
    /// Also (ours only): this many clients with and without a flood of bad tokens.
    #[arg(long)]
    flood: Option<usize>,
    /// How many times each of the two flood runs is made, alternately.
    #[arg(long, default_value_t = 2)]
    flood_pairs: usize,
    /// Connection attempts with a bad token in flight at once during a flood.
    #[arg(long, default_value_t = 8)]
    flood_tasks: usize,
    /// Edits each client makes and syncs in the many-clients test.
    #[arg(long, default_value_t = 10)]
    edits_per_client: usize,
    /// Which servers to measure.
    #[arg(long, value_enum, default_value = "both")]
    servers: Which,
    /// Our server's record in this PostgreSQL database (a libpq connection string; it
    /// should be empty) instead of a fresh data folder's SQLite file.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Our server as this many processes on that database (`--database`), the clients
    /// spread over them in turn; the latency test's two clients on the first and the
    /// last, so that its propagation figure crosses processes.
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Our server binary (default: `wardcheck-server` beside this program).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The Node.js program that runs the JS server.
    #[arg(long, default_value = "node")]
    node: String,
    /// How long one sync may take before it counts as a failure, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Instead: our server's memory under the largest message a reader, and a writer,
    /// may send, of chunks that inflate past every limit (`bombs.rs`).
    #[arg(long)]
    bombs: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Ours,
    Js,
    Both,
}

/// Edits made before timing starts, so the first connection's costs are not counted.
const WARMUP_EDITS: usize = 5;

fn main() -> Result<()> {
    let args = Args::parse();
    if args.bombs {
        let bin = server_bin(&args)?;
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(bombs::run(&bin));
    }
    raise_open_files_limit(args.clients.iter().copied().max().unwrap_or(0));
    let checklist = Arc::new(
        checklist::bundled()
            .into_iter()
            .find(|c| c.id == servers::CHECKLIST)
            .context("the bundled checklist")?,
    );
    let items: Vec<String> = checklist
        .items()
        .filter(|(s, i)| s.scope == Scope::Inspection && matches!(i.answer, AnswerKind::Compliance))
        .map(|(_, i)| i.id.clone())
        .collect();
    if items.is_empty() {
        bail!("the checklist has no compliance items to answer");
    }
    let setup = Setup {
        checklist,
        items,
        limit: Duration::from_secs(args.timeout),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Other processes on this 2-core machine skew every figure: say how busy it was.
    let load_before = load_average();
    let mut results = Vec::new();
    if args.servers != Which::Js {
        results.push(rt.block_on(run_ours(&args, &setup))?);
    }
    if args.servers != Which::Ours {
        results.push(rt.block_on(run_js(&args, &setup))?);
    }
    report(&args, &results);
    println!();
    println!(
        "  load average (1 min) before {load_before}, after {}",
        load_average()
    );
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The soft limit on open files must cover every client socket (and the servers,
/// which inherit it); raise it to the hard limit when it is lower than needed.
fn raise_open_files_limit(clients: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = (clients as u64) * 2 + 256;
    let lim = getrlimit(Resource::Nofile);
    let soft = lim.current.unwrap_or(u64::MAX);
    if soft >= want {
        return;
    }
    let hard = lim.maximum;
    let new = Rlimit {
        current: Some(hard.map_or(want, |h| h.min(want.max(soft)))),
        maximum: hard,
    };
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => eprintln!(
            "raised the open-files limit from {soft} to {:?}",
            new.current
        ),
        Err(e) => {
            eprintln!("warning: open-files limit {soft} is below {want} and cannot be raised: {e}")
        }
    }
}

#[derive(Debug)]
struct Setup {
    checklist: Arc<Checklist>,
    items: Vec<String>,
    limit: Duration,
}

/// What a client needs to reach one inspection.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    token: Option<String>,
    /// The actor bound to the token's device (ours); the JS server binds nothing.
    actor: Option<ActorId>,
    /// Who the edits are stamped with: the token's user.
    user: String,
    doc_id: String,
}

#[derive(Debug)]
struct ServerResult {
    name: &'static str,
    latency: Latency,
    loads: Vec<Load>,
    /// Clients on one shared inspection.
    shared: Vec<Load>,
    /// Load runs without and with a flood of bad tokens, alternately.
    floods: Vec<Flooded>,
    peak_rss_kib: Option<u64>,
    cpu: Option<Duration>,
}

#[derive(Debug)]
struct Latency {
    /// A → server → B, per edit.
    propagation: Vec<Duration>,
    /// A → server → A (acknowledged), per edit.
    ack: Vec<Duration>,
}

#[derive(Debug)]
struct Load {
    clients: usize,
    wall: Duration,
    /// Connect + handshake + first sync of the inspection, per client.
    first: Vec<Duration>,
    /// Edit + sync until acknowledged, per edit.
    edits: Vec<Duration>,
    failures: Vec<String>,
}

/// A load run, and the bad-token attempts made meanwhile (none: no flood).
#[derive(Debug)]
struct Flooded {
    load: Load,
    attempts: Option<u64>,
}

impl Args {
    /// The clients our server needs an inspection and inspectors for, as groups that
    /// share one inspection, in the order the workload takes them: two for the latency
    /// test, one each for the many-clients and flood runs, and the shared ones.
    fn groups(&self, ours: bool) -> Vec<usize> {
        let single: usize = self.clients.iter().sum::<usize>()
            + if ours {
                self.flood.unwrap_or(0) * 2 * self.flood_pairs
            } else {
                0
            };
        let mut g = vec![2];
        g.extend(std::iter::repeat_n(1, single));
        g.extend(self.shared.iter().copied());
        g
    }
}

fn server_bin(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.server_bin {
        return Ok(p.clone());
    }
    let me = std::env::current_exe()?;
    let p = me
        .parent()
        .context("the bench's folder")?
        .join("wardcheck-server");
    if !p.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p wardcheck-server`, or pass --server-bin",
            p.display()
        );
    }
    Ok(p)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ lives in the workspace")
        .to_path_buf()
}

async fn run_ours(args: &Args, setup: &Setup) -> Result<ServerResult> {
    let bin = server_bin(args)?;
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let log = scratch.path().join("server.log");
    let groups = args.groups(true);
    let result = async {
        eprintln!(
            "ours: creating {} inspections and {} device tokens",
            groups.len(),
            groups.iter().sum::<usize>()
        );
        let made = {
            let data = data.clone();
            let database = args.database.clone();
            tokio::task::spawn_blocking(move || {
                servers::OurData::create(&data, &groups, database.as_deref())
            })
            .await??
        };
        if args.processes > 1 && args.database.is_none() {
            bail!("--processes needs --database: processes share a PostgreSQL database, never a SQLite file");
        }
        let servers = (0..args.processes.max(1))
            .map(|i| {
                servers::start_ours(
                    &bin,
                    &made.dir,
                    &log.with_extension(format!("{i}.log")),
                    args.database.as_deref(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut tokens = made
            .tokens
            .into_iter()
            .zip(made.actors)
            .zip(made.users)
            .map(|((t, a), u)| (Some(t), Some(a), u));
        let mut docs = made.inspections.iter().map(|id| doc_id(*id));
        run_workload("ours", &servers, args, setup, &mut docs, &mut tokens).await
    }
    .await;
    if result.is_err() {
        eprintln!("ours: server logs beside {}", log.display());
        let _ = scratch.keep();
    }
    result
}

async fn run_js(args: &Args, setup: &Setup) -> Result<ServerResult> {
    let root = workspace_root();
    if !root.join("tests/js/node_modules").is_dir() {
        bail!("tests/js/node_modules is missing: run scripts/setup (npm ci in tests/js)");
    }
    let script = root.join("bench/js-sync-server/server.mjs");
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let log = scratch.path().join("server.log");
    let needed: usize = args.groups(false).len();
    let result = async {
        eprintln!("js: pushing {needed} inspections to the JS server, then restarting it");
        let seeder = servers::start_js(&args.node, &script, &data, &log)?;
        let ids = seed(&seeder.ws_url, setup, needed).await?;
        seeder.stop()?;
        let server = servers::start_js(&args.node, &script, &data, &log)?;
        let mut tokens = std::iter::repeat((None, None, servers::USER.to_owned()));
        let mut docs = ids.iter().map(|id| doc_id(*id));
        run_workload(
            "js",
            std::slice::from_ref(&server),
            args,
            setup,
            &mut docs,
            &mut tokens,
        )
        .await
    }
    .await;
    if result.is_err() {
        eprintln!("js: server log: {}", log.display());
        let _ = scratch.keep();
    }
    result
}

/// Creates `n` inspections as a client would and pushes each to the server at `url`
/// until it acknowledges them (the JS server keeps any document a client syncs).
async fn seed(url: &str, setup: &Setup, n: usize) -> Result<Vec<Uuid>> {
    let mut conn = Connection::connect(url, None).await?;
    let stamp = Stamp::new("bench-setup", Utc::now());
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = Uuid::new_v4();
        let insp = Inspection::create(
            NewInspection {
                id,
                trust: servers::TRUST.into(),
                sites: vec![],
                team: vec![],
                visit_start: None,
                visit_end: None,
                org: None,
            },
            setup.checklist.clone(),
            ActorId::random(),
            &stamp,
        )?;
        let mut r = Replica::new(doc_id(id), insp);
        r.push(&mut conn).await?;
        r.sync_until(&mut conn, setup.limit, |r| r.server_has_ours())
            .await
            .context("seeding an inspection")?;
        ids.push(id);
    }
    conn.close().await;
    Ok(ids)
}

async fn run_workload(
    name: &'static str,
    servers: &[ServerProcess],
    args: &Args,
    setup: &Setup,
    docs: &mut dyn Iterator<Item = String>,
    tokens: &mut dyn Iterator<Item = (Option<String>, Option<ActorId>, String)>,
) -> Result<ServerResult> {
    let urls: Vec<String> = servers.iter().map(|s| s.ws_url.clone()).collect();
    let doc = docs.next().context("a document for the latency test")?;
    let (token, actor, user) = tokens.next().context("a token")?;
    let a = Target {
        url: urls[0].clone(),
        token,
        actor,
        user,
        doc_id: doc.clone(),
    };
    let (token, actor, user) = tokens.next().context("a token")?;
    let b = Target {
        token,
        actor,
        user,
        url: urls[urls.len() - 1].clone(),
        ..a.clone()
    };
    eprintln!("{name}: edit latency, {} edits", args.edits);
    let latency = latency(setup, &a, &b, args.edits).await?;
    let mut loads = Vec::new();
    for &n in &args.clients {
        eprintln!("{name}: {n} clients, {} edits each", args.edits_per_client);
        let targets = targets(&urls, n, tokens, || docs.next())?;
        loads.push(load(setup, targets, args.edits_per_client).await);
    }
    let mut floods = Vec::new();
    if let (Some(n), true) = (args.flood, name == "ours") {
        for pair in 0..args.flood_pairs {
            for flooding in [false, true] {
                eprintln!(
                    "{name}: {n} clients, {} edits each, {} bad tokens (pair {})",
                    args.edits_per_client,
                    if flooding { "with" } else { "without" },
                    pair + 1
                );
                let targets = targets(&urls, n, tokens, || docs.next())?;
                let flood = flooding.then(|| Flood::start(&urls[0], args.flood_tasks));
                let load = load(setup, targets, args.edits_per_client).await;
                let attempts = flood.map(Flood::stop);
                floods.push(Flooded { load, attempts });
            }
        }
    }
    let mut shared = Vec::new();
    for &n in &args.shared {
        eprintln!(
            "{name}: {n} clients on one inspection, {} edits each",
            args.edits_per_client
        );
        let doc = docs.next().context("a document")?;
        let targets = targets(&urls, n, tokens, || Some(doc.clone()))?;
        shared.push(load(setup, targets, args.edits_per_client).await);
    }
    Ok(ServerResult {
        name,
        latency,
        loads,
        shared,
        floods,
        // Of all the processes together.
        peak_rss_kib: servers.iter().map(|s| s.memory_kib().map(|m| m.0)).sum(),
        cpu: servers.iter().map(ServerProcess::cpu_time).sum(),
    })
}

/// `n` clients of the servers at `urls` (in turn), each with the next token and the
/// document `doc` gives.
fn targets(
    urls: &[String],
    n: usize,
    tokens: &mut dyn Iterator<Item = (Option<String>, Option<ActorId>, String)>,
    mut doc: impl FnMut() -> Option<String>,
) -> Result<Vec<Target>> {
    (0..n)
        .map(|i| {
            let (token, actor, user) = tokens.next().context("a token")?;
            Ok(Target {
                url: urls[i % urls.len()].clone(),
                token,
                actor,
                user,
                doc_id: doc().context("a document")?,
            })
        })
        .collect()
}

/// Connections presenting tokens the server never issued, `tasks` at a time, on a
/// thread and runtime of their own, until stopped.
struct Flood {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Flood {
    fn start(url: &str, tasks: usize) -> Flood {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let url = url.to_owned();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let attempts = Arc::new(AtomicU64::new(0));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the flood");
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for t in 0..tasks {
                    let (url, flag, attempts) = (url.clone(), flag.clone(), attempts.clone());
                    set.spawn(async move {
                        let mut k = 0u64;
                        while !flag.load(Ordering::Relaxed) {
                            k += 1;
                            // Well formed (64 hex digits), so the server looks each up.
                            let token = format!("{:032x}{:032x}", t as u128 + 1, k as u128);
                            // Refused at the upgrade: a failure is the expected answer.
                            if Connection::connect(&url, Some(&token)).await.is_ok() {
                                panic!("the server took a token it never issued");
                            }
                            attempts.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                while set.join_next().await.is_some() {}
            });
            attempts.load(Ordering::Relaxed)
        });
        Flood { stop, thread }
    }

    /// Stops the flood; returns how many attempts it made.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// Connects and fetches the inspection: the first sync.
async fn open(setup: &Setup, t: &Target) -> Result<(Connection, Replica<Inspection>)> {
    let mut conn = Connection::connect(&t.url, t.token.as_deref()).await?;
    let mut r = Replica::new(t.doc_id.clone(), AutoCommit::new());
    r.push(&mut conn).await?;
    r.sync_until(&mut conn, setup.limit, |r| r.has_theirs())
        .await
        .context("fetching the inspection")?;
    let checklist = setup.checklist.clone();
    let actor = t.actor.clone().unwrap_or_else(ActorId::random);
    let r = r.map(|doc| {
        let doc = doc.with_actor(actor);
        Ok(Inspection::from_doc(doc, checklist)?)
    })?;
    Ok((conn, r))
}

fn answer(k: usize) -> Answer {
    if k.is_multiple_of(2) {
        Answer::Met
    } else {
        Answer::NotMet
    }
}

async fn latency(setup: &Setup, a: &Target, b: &Target, edits: usize) -> Result<Latency> {
    let (mut ca, mut ra) = open(setup, a).await?;
    let (mut cb, mut rb) = open(setup, b).await?;
    let item = &setup.items[0];
    let mut out = Latency {
        propagation: Vec::with_capacity(edits),
        ack: Vec::with_capacity(edits),
    };
    for k in 0..WARMUP_EDITS + edits {
        let t0 = Instant::now();
        ra.doc
            .set_answer(item, answer(k), &Stamp::new(&a.user, Utc::now()))?;
        let head = ra.doc.heads()[0];
        ra.push(&mut ca).await?;
        let limit = setup.limit;
        let (acked, arrived) = tokio::join!(
            async {
                ra.sync_until(&mut ca, limit, |r| r.server_has_ours())
                    .await
                    .map(|()| t0.elapsed())
            },
            async {
                rb.sync_until(&mut cb, limit, |r| r.doc.has_change(&head))
                    .await
                    .map(|()| t0.elapsed())
            }
        );
        let (acked, arrived) = (acked.context("A's edit")?, arrived.context("B's copy")?);
        if k >= WARMUP_EDITS {
            out.ack.push(acked);
            out.propagation.push(arrived);
        }
    }
    ca.close().await;
    cb.close().await;
    Ok(out)
}

/// One client of the many-clients test.
async fn one_client(
    setup: Arc<Setup>,
    t: Target,
    edits: usize,
    seed: usize,
) -> Result<(Duration, Vec<Duration>)> {
    let t0 = Instant::now();
    let (mut conn, mut r) = open(&setup, &t).await?;
    let first = t0.elapsed();
    let mut lat = Vec::with_capacity(edits);
    for k in 0..edits {
        let t1 = Instant::now();
        let item = &setup.items[(seed + k) % setup.items.len()];
        r.doc
            .set_answer(item, answer(k), &Stamp::new(&t.user, Utc::now()))?;
        r.push(&mut conn).await?;
        r.sync_until(&mut conn, setup.limit, |r| r.server_has_ours())
            .await
            .with_context(|| format!("edit {k}"))?;
        lat.push(t1.elapsed());
    }
    conn.close().await;
    Ok((first, lat))
}

async fn load(setup: &Setup, targets: Vec<Target>, edits: usize) -> Load {
    let clients = targets.len();
    let setup = Arc::new(Setup {
        checklist: setup.checklist.clone(),
        items: setup.items.clone(),
        limit: setup.limit,
    });
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        set.spawn(one_client(setup.clone(), t, edits, i));
    }
    let mut out = Load {
        clients,
        wall: Duration::ZERO,
        first: Vec::with_capacity(clients),
        edits: Vec::with_capacity(clients * edits),
        failures: Vec::new(),
    };
    while let Some(res) = set.join_next().await {
        match res.map_err(|e| anyhow!("{e}")).and_then(|r| r) {
            Ok((first, lat)) => {
                out.first.push(first);
                out.edits.extend(lat);
            }
            Err(e) => out.failures.push(format!("{e:#}")),
        }
    }
    out.wall = t0.elapsed();
    out
}

/// The median of `v` (the mean of the middle two when even); NaN when empty.
fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The nearest-rank percentile `p` (0-100) of `v`, in milliseconds.
fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank - 1].as_secs_f64() * 1000.0
}

fn report(args: &Args, results: &[ServerResult]) {
    println!();
    println!(
        "Edit latency on loopback, {} edits (after {WARMUP_EDITS} warm-up), one answer changed per edit:",
        args.edits
    );
    println!(
        "  {:<6} {:>14} {:>14} {:>14} {:>14}",
        "server", "A→B p50 ms", "A→B p99 ms", "A ack p50 ms", "A ack p99 ms"
    );
    for r in results {
        println!(
            "  {:<6} {:>14.2} {:>14.2} {:>14.2} {:>14.2}",
            r.name,
            pct(&r.latency.propagation, 50.0),
            pct(&r.latency.propagation, 99.0),
            pct(&r.latency.ack, 50.0),
            pct(&r.latency.ack, 99.0),
        );
    }
    println!();
    println!(
        "Many clients at once, each: connect, first sync of its own inspection, {} edits each synced until acknowledged:",
        args.edits_per_client
    );
    println!(
        "  {:<6} {:>7} {:>9} {:>10} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "server",
        "clients",
        "wall s",
        "syncs/s",
        "first p50",
        "first p99",
        "edit p50",
        "edit p99",
        "failures"
    );
    let row = |name: &str, l: &Load| {
        let syncs = l.first.len() + l.edits.len();
        println!(
            "  {:<6} {:>7} {:>9.2} {:>10.0} {:>11.1} {:>11.1} {:>11.1} {:>11.1} {:>9}",
            name,
            l.clients,
            l.wall.as_secs_f64(),
            syncs as f64 / l.wall.as_secs_f64(),
            pct(&l.first, 50.0),
            pct(&l.first, 99.0),
            pct(&l.edits, 50.0),
            pct(&l.edits, 99.0),
            l.failures.len()
        );
    };
    for r in results {
        for l in &r.loads {
            row(r.name, l);
        }
    }
    println!("  (latencies in ms; syncs = first syncs + acknowledged edits)");
    if results.iter().any(|r| !r.shared.is_empty()) {
        println!();
        println!(
            "All on one shared inspection, each: connect, first sync, {} edits each synced until acknowledged:",
            args.edits_per_client
        );
        for r in results {
            for l in &r.shared {
                row(r.name, l);
            }
        }
    }
    let flooded: Vec<&Flooded> = results.iter().flat_map(|r| &r.floods).collect();
    if !flooded.is_empty() {
        println!();
        println!(
            "Ours, {} clients, without and with {} connections at a time presenting bad tokens:",
            flooded[0].load.clients, args.flood_tasks
        );
        for f in &flooded {
            let label = match f.attempts {
                None => "quiet".to_owned(),
                Some(n) => format!(
                    "flood ({n} bad tokens, {:.0}/s)",
                    n as f64 / f.load.wall.as_secs_f64()
                ),
            };
            println!(
                "  {:<34} edit p50 {:>7.1} ms, edit p99 {:>7.1} ms, failures {}",
                label,
                pct(&f.load.edits, 50.0),
                pct(&f.load.edits, 99.0),
                f.load.failures.len()
            );
        }
        let p99s = |flood: bool| -> Vec<f64> {
            flooded
                .iter()
                .filter(|f| f.attempts.is_some() == flood)
                .map(|f| pct(&f.load.edits, 99.0))
                .collect()
        };
        let (quiet, loud) = (p99s(false), p99s(true));
        let ratios: Vec<f64> = quiet.iter().zip(&loud).map(|(q, l)| l / q).collect();
        println!(
            "  edit p99 with the flood / without, pair by pair: {}; median {:.2}",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            median(&ratios)
        );
    }
    for r in results {
        let floods = r.floods.iter().map(|f| &f.load);
        for l in r.loads.iter().chain(&r.shared).chain(floods) {
            for f in l.failures.iter().take(5) {
                println!("  {} {} clients: failure: {f}", r.name, l.clients);
            }
        }
    }
    println!();
    for r in results {
        println!(
            "  {} server: peak RSS {} MiB, CPU {:.1} s over the whole run",
            r.name,
            r.peak_rss_kib
                .map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
            r.cpu.map_or(f64::NAN, |c| c.as_secs_f64())
        );
    }
    if let [ours, js] = results {
        println!();
        println!("Ratios, ours / JS (below 1 is faster for latency, above 1 is more throughput):");
        println!(
            "  A→B p50 {:.2}, p99 {:.2}",
            pct(&ours.latency.propagation, 50.0) / pct(&js.latency.propagation, 50.0),
            pct(&ours.latency.propagation, 99.0) / pct(&js.latency.propagation, 99.0)
        );
        let pairs = ours.loads.iter().zip(&js.loads).map(|p| ("", p));
        let shared = ours
            .shared
            .iter()
            .zip(&js.shared)
            .map(|p| ("on one inspection, ", p));
        for (what, (o, j)) in pairs.chain(shared) {
            let rate = |l: &Load| (l.first.len() + l.edits.len()) as f64 / l.wall.as_secs_f64();
            println!(
                "  {} clients {what}throughput {:.2}, edit p50 {:.2}, edit p99 {:.2}",
                o.clients,
                rate(o) / rate(j),
                pct(&o.edits, 50.0) / pct(&j.edits, 50.0),
                pct(&o.edits, 99.0) / pct(&j.edits, 99.0)
            );
        }
    }
}
