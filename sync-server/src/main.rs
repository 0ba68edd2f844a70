//! wardcheck-server: the sync server and its admin command line.
//!
//! `serve` runs the server; the other commands work on the same data folder. Each
//! parses its arguments, calls the library, and prints. Passwords are read from a
//! prompt or standard input, never from an argument (arguments show in `ps`).

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;
use wardcheck_core::checklist;
use wardcheck_server::storage::{
    AuditEvent, InspectionQuery, PgStorage, PublishedChecklist, Role, SqliteStorage, Storage,
};
use wardcheck_server::telemetry::TelemetryDb;
use wardcheck_server::{AppState, auth, inspections, limits};

#[derive(Debug, Parser)]
#[command(name = "wardcheck-server", version, about)]
struct Cli {
    /// The data folder: the SQLite database and everything the server keeps.
    #[arg(
        long,
        global = true,
        default_value = "wardcheck-data",
        env = "WARDCHECK_DATA"
    )]
    data: PathBuf,
    /// Keep the record in PostgreSQL instead of the data folder's SQLite file: a libpq
    /// connection string (`host=/run/postgresql dbname=wardcheck`, or
    /// `postgres://user@host/db`). Several server processes may share one database
    /// (docs/DEPLOY.md, "Several processes"). Telemetry and uploads being spooled still
    /// live in the data folder.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "WARDCHECK_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Where to listen: loopback or a private address behind a TLS proxy
        /// (docs/DEPLOY.md).
        #[arg(long, default_value = "127.0.0.1:8080", env = "WARDCHECK_LISTEN")]
        listen: SocketAddr,
        /// A reverse proxy whose `X-Forwarded-For` gives the client's address (sign-in
        /// limits and the audit log use it); from any other peer the header is ignored.
        /// Repeat, or separate by commas in the variable.
        #[arg(
            long = "trusted-proxy",
            value_name = "IP",
            env = "WARDCHECK_TRUSTED_PROXY",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// The address users reach the server at, e.g. `https://wardcheck.example.nhs.uk`:
        /// only pages from it may write, and over https the cookie is `Secure` and
        /// `__Host-` and answers carry HSTS. Without it, the request's own host.
        #[arg(long, value_name = "URL", env = "WARDCHECK_PUBLIC_URL")]
        public_url: Option<String>,
        /// The built review dashboard (`npm run build` in `ui/` makes `ui/dist`), served
        /// at every path the API does not take. Default: `ui/dist` in the current
        /// folder, when it holds a build.
        #[arg(long, value_name = "DIR", env = "WARDCHECK_UI")]
        ui: Option<PathBuf>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signed-in devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage inspections.
    #[command(subcommand)]
    Inspection(InspectionCommand),
    /// Work with checklist files.
    #[command(subcommand)]
    Checklist(ChecklistCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Publish signed packages of the field app as updates devices can fetch
    /// (docs/RELEASE.md).
    #[command(subcommand)]
    AppUpdate(AppUpdateCommand),
    /// Import telemetry feeds (endpoints, network devices, alerts, trusts) and list them.
    #[command(subcommand)]
    Telemetry(wardcheck_server::telemetry::cli::TelemetryCommand),
    /// Back the data folder up into DEST (a new folder), while the server runs: a
    /// consistent copy of the record and the telemetry, and SHA256SUMS. Audited. A record
    /// in PostgreSQL is backed up with pg_dump (docs/DEPLOY.md): then only the telemetry.
    Backup { dest: PathBuf },
    /// Restore a backup into the data folder, which must hold no record yet: checks every
    /// file's SHA-256 and integrity and the audit log's chain; then start the server on
    /// the folder.
    Restore { src: PathBuf },
    /// Fill the data folder with demo data: telemetry for 20 trusts (imported through the
    /// telemetry importer), demo users and sample inspections. Skips what exists.
    DemoData {
        /// Endpoints to generate across the trusts (50,000 takes a few seconds; up to
        /// 2,500,000 for a national-scale estate).
        #[arg(long, default_value_t = wardcheck_server::demo::DEFAULT_ENDPOINTS)]
        endpoints: u64,
        /// Seed of the generator: the same seed and size give the same telemetry.
        #[arg(long, default_value_t = 2017)]
        seed: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Inspector,
    Reviewer,
    TrustLead,
    Admin,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is asked for, or read from the first line of stdin.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The trust's ODS code (trust leads only).
        #[arg(long)]
        trust: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Disable a user: their devices stop working at once.
    Disable { name: String },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// List devices and who they belong to.
    List,
    /// Revoke a device's token.
    Revoke {
        id: i64,
        /// Also delete Wardcheck's data on the device (its store and keychain entries) at
        /// its next contact: for a device lost or retired. The audit log records the wipe
        /// and how many changes the device still held unsynced.
        #[arg(long)]
        wipe: bool,
    },
}

#[derive(Debug, Subcommand)]
enum InspectionCommand {
    /// Create an inspection; prints its id.
    Create {
        /// The trust's ODS code, e.g. RJ1.
        #[arg(long)]
        trust: String,
        /// Site codes, e.g. RJ121 (repeat for several).
        #[arg(long = "site")]
        sites: Vec<String>,
        /// Checklist `id` or `id@version`.
        #[arg(long, default_value = "cqc-onsite-cyber")]
        checklist: String,
        /// Inspectors to assign (repeat for several): the first is the lead inspector.
        #[arg(long = "assign")]
        assign: Vec<String>,
        /// The visit's first day (YYYY-MM-DD).
        #[arg(long)]
        visit_start: Option<chrono::NaiveDate>,
        /// The visit's last day (YYYY-MM-DD).
        #[arg(long)]
        visit_end: Option<chrono::NaiveDate>,
    },
    /// Assign an inspector to an inspection's team (as its lead with `--lead`, or when
    /// it has none).
    Assign {
        id: Uuid,
        user: String,
        #[arg(long)]
        lead: bool,
    },
    /// Share an inspection with its trust.
    Share { id: Uuid },
    /// List inspections.
    List,
    /// Recompute an inspection's sign-off chain from storage: each link's content hash
    /// at its heads, its place in the chain, the audit log's record of it. Names every
    /// link that no longer matches (and exits non-zero); prints the last link.
    Verify {
        id: Uuid,
        /// The last link printed by an earlier verify, kept elsewhere: links taken off the
        /// end (with their audit rows) show only against it.
        #[arg(long)]
        expect_tip: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ChecklistCommand {
    /// Validate checklist files: print each one's pin, or every problem found.
    ///
    /// Exits non-zero if any file has a problem.
    Validate {
        /// Checklist or template files (a template's includes are read from its directory).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Publish a checklist (and, for a template, the files it includes) so inspections
    /// can pin it.
    Publish { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum AppUpdateCommand {
    /// Keep a package and offer it to devices of its platform: only when SIGNATURE
    /// verifies it under PUBLIC_KEY and binds VERSION (`tauri signer sign --app-version`).
    /// A refusal is audited and keeps nothing.
    Publish {
        /// `{target}-{arch}-{bundle}`: linux-x86_64-deb, windows-x86_64-msi, ...
        #[arg(long)]
        platform: String,
        /// The package's version (semantic, e.g. 0.2.0): newer than a device's is offered.
        #[arg(long)]
        version: String,
        /// The package (.deb, .AppImage, .msi or the NSIS setup .exe).
        #[arg(long)]
        file: PathBuf,
        /// Its `.sig` file (`tauri signer sign`); default: FILE.sig.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// The release's public key (the `.pub` file `tauri signer generate` writes; the
        /// one in src-tauri/tauri.conf.json).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Release notes shown on devices.
        #[arg(long, default_value = "")]
        notes: String,
        /// The release key was rotated: take a package signed with another key than the
        /// packages kept (docs/RELEASE.md). Without it, such a package is refused.
        #[arg(long)]
        new_key: bool,
    },
    /// List the packages kept, newest first per platform.
    List,
    /// Withdraw a package: no device is offered it again (e.g. one signed with a key
    /// that leaked, docs/RELEASE.md). Audited.
    Withdraw {
        #[arg(long)]
        platform: String,
        #[arg(long)]
        version: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the newest audit events, oldest first.
    Tail {
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Check the audit log's chain: every row linked to the one before. Names the first
    /// row changed, removed or inserted in the database; prints the last link, to keep
    /// elsewhere (a row taken off the end shows only against it).
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Checklist(ChecklistCommand::Validate { files }) = &cli.command {
        return validate(files);
    }
    // Before the data folder is opened (which would make a record in it).
    if let Command::Restore { src } = &cli.command {
        return match restore(src, &cli.data, cli.database.is_some()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// [`open_telemetry`], shared with the other processes of `storage` when it keeps feeds
/// for them (PostgreSQL): what is imported here reaches them.
fn shared_telemetry(data: &Path, storage: &Arc<dyn Storage>) -> Result<TelemetryDb> {
    let telemetry = open_telemetry(data)?;
    telemetry.share_feeds_through(storage.clone());
    Ok(telemetry)
}

/// The telemetry feeds, in `telemetry.db` in the data folder (whichever backend keeps the
/// record).
fn open_telemetry(data: &Path) -> Result<TelemetryDb> {
    TelemetryDb::open(data).with_context(|| {
        format!(
            "opening the telemetry in the data folder {}",
            data.display()
        )
    })
}

/// `restore SRC` into `data` (the record in SQLite only).
fn restore(src: &Path, data: &Path, postgres: bool) -> Result<()> {
    if postgres {
        bail!(
            "the record is in PostgreSQL: restore it with pg_restore (docs/DEPLOY.md); this \
             command restores a data folder's SQLite record"
        );
    }
    let (files, rows) = wardcheck_server::backup::restore(src, data)?;
    for c in &files {
        println!("{}\t{} bytes\t{}", c.file, c.bytes, c.sha256);
    }
    println!(
        "restored into {}: every file matches SHA256SUMS and SQLite's integrity check; the \
         audit log's chain holds ({rows} rows)",
        data.display()
    );
    Ok(())
}

/// Left in a data folder whose record is in PostgreSQL, so that a command given the
/// folder without the database is refused rather than run on an empty SQLite file.
const IN_POSTGRES: &str = "RECORD-IN-POSTGRESQL";

fn open(data: &Path, database: Option<&str>) -> Result<Arc<dyn Storage>> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("making the data folder {}", data.display()))?;
    let marker = data.join(IN_POSTGRES);
    let s: Arc<dyn Storage> = match database {
        // The connection string is never printed: it may hold a password.
        Some(url) => {
            let s = PgStorage::open(url).context("opening the PostgreSQL database")?;
            if !marker.exists() {
                std::fs::write(
                    &marker,
                    "This data folder's record (users, devices, inspections, the audit log) is \
                     in PostgreSQL: give wardcheck-server --database (or WARDCHECK_DATABASE).\n",
                )
                .with_context(|| format!("writing {}", marker.display()))?;
            }
            Arc::new(s)
        }
        None if marker.exists() => bail!(
            "the record of the data folder {} is in PostgreSQL ({}): give --database or \
             WARDCHECK_DATABASE",
            data.display(),
            marker.display()
        ),
        None => Arc::new(
            SqliteStorage::open(data)
                .with_context(|| format!("opening the data folder {}", data.display()))?,
        ),
    };
    // Documents from before this version are brought up to it (once).
    inspections::migrate(&*s, chrono::Utc::now()).context("migrating the documents")?;
    Ok(s)
}

fn run(cli: Cli) -> Result<()> {
    let storage = open(&cli.data, cli.database.as_deref())?;
    match cli.command {
        Command::Serve {
            listen,
            ui,
            trusted_proxies,
            public_url,
        } => {
            let web = wardcheck_server::web::Web::new(trusted_proxies, public_url.as_deref())
                .map_err(anyhow::Error::msg)?;
            if web.public_origin.is_none() && !listen.ip().is_loopback() {
                eprintln!(
                    "warning: listening on {listen} without --public-url: a page's origin is \
                     checked against the Host it sends, and the cookie is not Secure; give the \
                     address users reach (docs/DEPLOY.md)"
                );
            }
            serve(storage, listen, &cli.data, ui, web)
        }
        Command::User(c) => user(&*storage, c),
        Command::Device(DeviceCommand::List) => {
            for d in storage.list_devices()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.user_name,
                    d.name,
                    d.last_seen
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "never".into()),
                    match (d.revoked, d.wipe_requested, d.wiped_at) {
                        (_, _, Some(at)) =>
                            format!("wiped {} (as the device reported)", at.to_rfc3339()),
                        (_, Some(_), None) => "revoked, wipe pending".into(),
                        (true, None, None) => "revoked".into(),
                        (false, _, _) => "active".into(),
                    }
                );
            }
            Ok(())
        }
        Command::Device(DeviceCommand::Revoke { id, wipe }) => {
            if wipe {
                storage.revoke_and_wipe(id, chrono::Utc::now())?;
                audit(&*storage, "device_revoke_wipe", &id.to_string())?;
                println!("device {id} revoked; its app deletes its data at its next contact");
            } else {
                storage.revoke_device(id)?;
                audit(&*storage, "device_revoke", &id.to_string())?;
                println!("device {id} revoked");
            }
            Ok(())
        }
        Command::Inspection(c) => inspection(&*storage, &cli.data, c),
        Command::DemoData { endpoints, seed } => demo_data(&storage, &cli.data, endpoints, seed),
        Command::Checklist(ChecklistCommand::Publish { file }) => publish(&*storage, &file),
        Command::AppUpdate(c) => app_update(&*storage, c),
        Command::Checklist(ChecklistCommand::Validate { .. }) => unreachable!("handled in main"),
        Command::Restore { .. } => unreachable!("handled in main"),
        Command::Backup { dest } => {
            let record = cli.database.is_none();
            let copied = wardcheck_server::backup::backup(&cli.data, &dest, record)?;
            for c in &copied {
                println!("{}\t{} bytes\t{}", c.file, c.bytes, c.sha256);
            }
            if !record {
                println!(
                    "the record is in PostgreSQL: back it up with pg_dump --format=custom \
                     (docs/DEPLOY.md); only the telemetry was copied"
                );
            }
            println!(
                "backup in {} (sha256sum -c SHA256SUMS checks it)",
                dest.display()
            );
            let summary: Vec<String> = copied
                .iter()
                .map(|c| format!("{} {}", c.file, c.sha256))
                .collect();
            audit(
                &*storage,
                "backup",
                &format!("{}: {}", dest.display(), summary.join(", ")),
            )
        }
        Command::Telemetry(c) => {
            let telemetry = shared_telemetry(&cli.data, &storage)?;
            wardcheck_server::telemetry::cli::run(&telemetry, c, &mut |action, target| {
                audit(&*storage, action, target)
            })
        }
        Command::Audit(AuditCommand::Verify) => {
            let v = storage.audit_verify()?;
            if let Some((seq, why)) = v.broken {
                bail!(
                    "the audit log is broken at row {seq}: {why} ({} rows before it hold)",
                    v.rows
                );
            }
            println!(
                "the audit log holds: {} rows, each linked to the one before; last link {}",
                v.rows, v.head
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Tail { lines }) => {
            for e in storage.audit_tail(lines)? {
                // One event per line, tab-separated: every field is neutralised so
                // that nothing stored can start a line or a field of its own.
                // The detail, when there is one (a refusal's actor, change and reason;
                // what a rebuild set aside), is an eighth field.
                let detail = e
                    .detail
                    .as_deref()
                    .map(|d| format!("\t{}", one_field(d)))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}{detail}",
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    one_field(&e.actor),
                    e.device
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                    one_field(&e.action),
                    one_field(&e.target),
                    one_field(&e.from),
                    one_field(&e.outcome)
                );
            }
            Ok(())
        }
    }
}

/// `demo-data`: makes the demo, then prints who can sign in.
fn demo_data(storage: &Arc<dyn Storage>, data: &Path, endpoints: u64, seed: u64) -> Result<()> {
    use wardcheck_server::demo;
    let opts = demo::Options {
        endpoints,
        seed,
        as_of: chrono::Utc::now().date_naive(),
    };
    // Demo feeds stay in the folder they are made in: made beside a database that other
    // processes share, they never replace its real feeds.
    let telemetry = open_telemetry(data)?;
    let summary = demo::run(&**storage, &telemetry, data, &opts)?;
    audit(&**storage, "demo_data", &data.display().to_string())?;
    println!("{summary}");
    println!(
        "demo users (password {:?}, demo only): {}",
        demo::DEMO_PASSWORD,
        demo::users()
            .iter()
            .map(|(name, _, role)| match role {
                wardcheck_server::storage::Role::TrustLead(t) =>
                    format!("{name} (trust lead, {t})"),
                r => format!("{name} ({})", r.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "the seeded contradiction: GET /api/v1/inspections/{}/join (item {})",
        demo::CONTRADICTION_INSPECTION,
        demo::CONTRADICTION_ITEM
    );
    Ok(())
}

/// `text` with control characters (CR, LF, tab...) and Unicode line separators
/// written as escapes, so it stays within one field of one line.
fn one_field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Records an admin action taken from the command line. "Who" is the operating
/// system account that ran it (the CLI has no sign-in of its own: whoever can run it
/// can read the data folder anyway); "where" is `cli`.
fn audit(storage: &dyn Storage, action: &str, target: &str) -> Result<()> {
    audit_outcome(storage, action, target, "ok")
}

fn audit_outcome(storage: &dyn Storage, action: &str, target: &str, outcome: &str) -> Result<()> {
    let who = cli_user();
    storage
        .audit(&AuditEvent {
            at: chrono::Utc::now(),
            actor: format!("cli:{}", one_field(&who)),
            device: None,
            action: action.into(),
            target: one_field(target),
            from: "cli".into(),
            outcome: outcome.into(),
            detail: None,
        })
        .with_context(|| format!("{action} {target} was done, but writing the audit log failed"))
}

/// Who runs this command, as the audit log names them.
fn cli_user() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "-".into())
}

fn serve(
    storage: Arc<dyn Storage>,
    listen: SocketAddr,
    data: &Path,
    ui: Option<PathBuf>,
    web: wardcheck_server::web::Web,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wardcheck_server=info,warn".into()),
        )
        // Logs go to stderr; stdout carries only the "listening on" line. Colours only
        // on a terminal: never escape codes in journald or a log file.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let ui = dashboard_dir(ui)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find the port.
        println!(
            "wardcheck-server listening on http://{addr} (data in {})",
            data.display()
        );
        use std::io::Write;
        std::io::stdout().flush()?;
        let telemetry = Arc::new(shared_telemetry(data, &storage)?);
        let state = AppState::new(storage, telemetry).with_web(web);
        wardcheck_server::serve_with_dashboard(listener, state, ui).await?;
        Ok(())
    })
}

/// The folder to serve the review dashboard from: `--ui DIR` (an error if it holds no
/// build), else `ui/dist` in the current folder if it holds one, else none (logged).
fn dashboard_dir(ui: Option<PathBuf>) -> Result<Option<PathBuf>> {
    use wardcheck_server::dashboard::is_built;
    match ui {
        Some(dir) if is_built(&dir) => {
            tracing::info!(dir = %dir.display(), "serving the review dashboard");
            Ok(Some(dir))
        }
        Some(dir) => bail!(
            "--ui {}: no index.html there; build the dashboard with `npm ci && npm run build` in ui/",
            dir.display()
        ),
        None => {
            let dir = PathBuf::from("ui").join("dist");
            if is_built(&dir) {
                tracing::info!(dir = %dir.display(), "serving the review dashboard");
                Ok(Some(dir))
            } else {
                tracing::warn!(
                    "the review dashboard is not served: no ui/dist/index.html in the current \
                     folder (build it with `npm run build` in ui/, or pass --ui DIR); the API \
                     and sync work without it"
                );
                Ok(None)
            }
        }
    }
}

fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if let Some(why) = auth::bad_password(&password) {
        bail!("{why}");
    }
    Ok(password)
}

fn user(storage: &dyn Storage, c: UserCommand) -> Result<()> {
    match c {
        UserCommand::Add {
            name,
            role,
            trust,
            display_name,
        } => {
            if let Some(why) = auth::bad_user_name(&name) {
                bail!("{why}");
            }
            let role = match (role, trust) {
                (RoleArg::TrustLead, Some(t)) => {
                    wardcheck_core::inspection::validate_trust(&t)?;
                    Role::TrustLead(t)
                }
                (RoleArg::TrustLead, None) => bail!("a trust lead needs --trust ODS_CODE"),
                (_, Some(_)) => bail!("--trust is only for trust leads"),
                (RoleArg::Inspector, None) => Role::Inspector,
                (RoleArg::Reviewer, None) => Role::Reviewer,
                (RoleArg::Admin, None) => Role::Admin,
            };
            let display = display_name.unwrap_or_else(|| name.clone());
            if let Some(why) = auth::bad_display_name(&display) {
                bail!("{why}");
            }
            // Before asking for a password, so nobody types one for nothing; the
            // unique name in the database still decides a race.
            if storage.user_by_name(&name)?.is_some() {
                bail!("user {name:?} already exists");
            }
            let password = read_password()?;
            let hash = auth::hash_password(&password)?;
            let id = storage.add_user(&name, &display, &role, &hash)?;
            audit(storage, "user_add", &name)?;
            println!("user {name} added (id {id}, role {})", role.name());
        }
        UserCommand::Disable { name } => {
            storage.set_user_disabled(&name, true)?;
            audit(storage, "user_disable", &name)?;
            println!("user {name} disabled");
        }
        UserCommand::List => {
            for u in storage.list_users()? {
                let trust = match &u.role {
                    Role::TrustLead(t) => t.as_str(),
                    _ => "-",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.name,
                    u.role.name(),
                    trust,
                    u.display_name,
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
    }
    Ok(())
}

fn inspection(storage: &dyn Storage, data: &Path, c: InspectionCommand) -> Result<()> {
    match c {
        InspectionCommand::Create {
            trust,
            sites,
            checklist,
            assign,
            visit_start,
            visit_end,
        } => {
            let req = inspections::CreateInspection {
                trust,
                sites,
                checklist,
                assign,
                visit_start,
                visit_end,
            };
            let telemetry = open_telemetry(data)?;
            let rec =
                inspections::create(storage, &telemetry, &req, "admin-cli", chrono::Utc::now())?;
            audit(storage, "inspection_create", &rec.id.to_string())?;
            println!("{}", rec.id);
        }
        InspectionCommand::Assign { id, user, lead } => {
            match storage.user_by_name(&user)? {
                None => bail!("no user {user:?}"),
                Some(u) if u.role != Role::Inspector => {
                    bail!("{user:?} is not an inspector: only inspectors join a team")
                }
                Some(_) => {}
            }
            let rec = storage
                .inspection(id)?
                .with_context(|| format!("inspection {id} not found"))?;
            let role = if lead || rec.lead.is_none() {
                wardcheck_core::inspection::TeamRole::LeadInspector
            } else {
                wardcheck_core::inspection::TeamRole::Inspector
            };
            storage.assign(id, &user, role)?;
            audit(storage, "inspection_assign", &format!("{id} {user}"))?;
            println!("inspection {id} assigned to {user}");
        }
        InspectionCommand::Share { id } => {
            storage.share(id, chrono::Utc::now())?;
            audit(storage, "inspection_share", &id.to_string())?;
            println!("inspection {id} shared with its trust");
        }
        InspectionCommand::Verify { id, expect_tip } => {
            let mut v = wardcheck_server::sealed::verify(storage, id)?;
            if let Some(want) = expect_tip
                && !v
                    .links
                    .iter()
                    .any(|l| l.link.hash.as_deref() == Some(want.as_str()))
            {
                v.problems.push(format!(
                    "the chain no longer holds the link {want} you kept: links were taken off"
                ));
            }
            println!("inspection {id}: sign-off chain of {} links", v.links.len());
            for u in &v.unsealed {
                println!(
                    "  before the chain: {} by {} at {} (from before sign-offs were sealed: not verifiable)",
                    if u.role == wardcheck_core::inspection::SignoffRole::Reviewer {
                        "reviewer's sign-off"
                    } else {
                        "lead inspector's sign-off"
                    },
                    one_field(&u.by),
                    u.at.to_rfc3339()
                );
            }
            let mut bad = Vec::new();
            for (n, l) in v.links.iter().enumerate() {
                let name = wardcheck_server::sealed::describe(n + 1, &l.link);
                let verdict = if l.problems.is_empty() {
                    "matches".to_owned()
                } else {
                    bad.push(format!("{name}: {}", l.problems.join("; ")));
                    format!("DOES NOT MATCH: {}", l.problems.join("; "))
                };
                println!("  {}: {verdict}", one_field(&name));
                println!(
                    "    hash {} content {} prev {}",
                    l.link.hash.as_deref().unwrap_or("-"),
                    l.link.content.as_deref().unwrap_or("-"),
                    l.link.prev.as_deref().unwrap_or("-")
                );
                println!("    \"{}\"", one_field(&l.link.statement));
            }
            for p in &v.problems {
                println!("  PROBLEM: {}", one_field(p));
            }
            if !v.ok() {
                bad.extend(v.problems.iter().cloned());
                bail!(
                    "inspection {id}: the signed record does not match: {}",
                    one_field(&bad.join(" | "))
                );
            }
            println!(
                "the signed record holds; last link {}",
                v.tip.as_deref().unwrap_or("- (nothing signed yet)")
            );
        }
        InspectionCommand::List => {
            let mut after = None;
            loop {
                let page = storage.list_inspections(&InspectionQuery {
                    after,
                    limit: limits::MAX_PAGE,
                    ..Default::default()
                })?;
                for r in &page {
                    println!(
                        "{}\t{}\t{:?}\t{}@{}\t{}\t{}",
                        r.id,
                        r.trust,
                        r.state,
                        r.checklist_id,
                        r.checklist_version,
                        r.assignees.join(","),
                        if r.shared_at.is_some() { "shared" } else { "-" }
                    );
                }
                match page.last() {
                    Some(r) if page.len() == limits::MAX_PAGE => after = Some(r.id),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// `app-update publish`, `list` and `withdraw` ([`wardcheck_server::updates`]).
fn app_update(storage: &dyn Storage, c: AppUpdateCommand) -> Result<()> {
    use wardcheck_server::storage::AppUpdateMeta;
    use wardcheck_server::updates;
    match c {
        AppUpdateCommand::List => {
            let mut kept = storage.app_updates(None)?;
            kept.sort_by(|a, b| {
                a.platform.cmp(&b.platform).then_with(|| {
                    let v = |m: &AppUpdateMeta| updates::version(&m.version).ok();
                    v(b).cmp(&v(a))
                })
            });
            for m in kept {
                println!(
                    "{}\t{}\t{} bytes\t{}\t{}\t{}",
                    m.platform,
                    m.version,
                    m.size,
                    m.sha256,
                    m.published_at.to_rfc3339(),
                    m.published_by
                );
            }
            Ok(())
        }
        AppUpdateCommand::Withdraw { platform, version } => {
            let target = format!("app-update:{platform}@{version}");
            if !storage.remove_app_update(&platform, &version)? {
                bail!("{target}: no such package is published (`app-update list` shows them)");
            }
            audit(storage, "app_update_withdraw", &target)?;
            println!("{platform} {version} withdrawn: no device is offered it any more");
            Ok(())
        }
        AppUpdateCommand::Publish {
            platform,
            version,
            file,
            signature,
            public_key,
            notes,
            new_key,
        } => {
            let target = format!("app-update:{platform}@{version}");
            let sig_path = signature.unwrap_or_else(|| {
                let mut p = file.clone().into_os_string();
                p.push(".sig");
                PathBuf::from(p)
            });
            let checked = publish_update(
                storage,
                &Publishing {
                    platform: &platform,
                    version: &version,
                    file: &file,
                    sig_path: &sig_path,
                    public_key: &public_key,
                    notes: &notes,
                    new_key,
                },
            );
            match checked {
                Ok(meta) => {
                    audit(
                        storage,
                        "app_update_publish",
                        &format!("{target} {}", meta.sha256),
                    )?;
                    println!(
                        "{} {} published: {} bytes, SHA-256 {}",
                        meta.platform, meta.version, meta.size, meta.sha256
                    );
                    Ok(())
                }
                Err(e) => {
                    let e = e.context(format!("{target} was not published"));
                    // The refusal first, whatever becomes of its audit event.
                    if let Err(audit_failed) =
                        audit_outcome(storage, "app_update_publish", &target, "refused")
                    {
                        eprintln!("error: {e:#}");
                        return Err(audit_failed);
                    }
                    Err(e)
                }
            }
        }
    }
}

/// What `app-update publish` was given.
#[derive(Debug, Clone, Copy)]
struct Publishing<'a> {
    platform: &'a str,
    version: &'a str,
    file: &'a Path,
    sig_path: &'a Path,
    public_key: &'a Path,
    notes: &'a str,
    new_key: bool,
}

/// Checks a package for `app-update publish` and keeps it ([`wardcheck_server::updates`]).
fn publish_update(
    storage: &dyn Storage,
    p: &Publishing<'_>,
) -> Result<wardcheck_server::storage::AppUpdateMeta> {
    let Publishing {
        platform,
        version,
        file,
        sig_path,
        public_key,
        notes,
        new_key,
    } = *p;
    use sha2::Digest;
    use wardcheck_server::storage::AppUpdateMeta;
    use wardcheck_server::updates::{self, Platform};
    let platform = Platform::parse(platform)?;
    let version = updates::version(version)?;
    if notes.chars().count() > updates::MAX_NOTES_CHARS {
        return Err(updates::Refused::Notes.into());
    }
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > updates::MAX_PACKAGE_BYTES {
        return Err(updates::Refused::TooLarge(size).into());
    }
    let package = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let small = |p: &Path| -> Result<String> {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        if bytes.len() > updates::MAX_SIGNATURE_BYTES {
            bail!("{} is not a key or signature file: too large", p.display());
        }
        String::from_utf8(bytes).with_context(|| format!("{} is not text", p.display()))
    };
    let signature = small(sig_path)?;
    let key = small(public_key)?;
    let signature = updates::check(&platform, &version, &package, &signature, &key)?;
    if !new_key {
        let kept = storage.app_updates(None)?;
        updates::same_key(&signature, kept.iter().map(|m| m.signature.as_str()))?;
    }
    let meta = AppUpdateMeta {
        platform: platform.as_str().to_owned(),
        version: version.to_string(),
        sha256: hex::encode(sha2::Sha256::digest(&package)),
        size,
        signature,
        notes: notes.to_owned(),
        published_by: format!("cli:{}", one_field(&cli_user())),
        published_at: chrono::Utc::now(),
    };
    storage.add_app_update(&meta, &package)?;
    Ok(meta)
}

/// Stores a checklist and the files its template includes, after validating them.
fn publish(storage: &dyn Storage, file: &Path) -> Result<()> {
    let c = checklist::load_file(file).map_err(|errors| {
        // One line, like every other error; `validate` lists them all.
        let first = errors
            .iter()
            .next()
            .map(|e| e.to_string())
            .unwrap_or_default();
        anyhow::anyhow!(
            "{} has {} problem(s), so it was not published; the first: {}; \
             `checklist validate` lists them all",
            file.display(),
            errors.len(),
            first.lines().next().unwrap_or_default()
        )
    })?;
    let read = |p: &Path| -> Result<(String, String)> {
        let name = p
            .file_name()
            .context("a file name")?
            .to_string_lossy()
            .into_owned();
        Ok((
            name,
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ))
    };
    let mut files = vec![read(file)?];
    // A template's includes sit beside it; collect those it names, in order.
    let text = &files[0].1;
    let doc: toml::Table = text.parse().context("parsing the checklist")?;
    if let Some(includes) = doc.get("include").and_then(|i| i.as_array()) {
        let dir = file.parent().unwrap_or(Path::new("."));
        for inc in includes {
            if let Some(f) = inc.get("file").and_then(|f| f.as_str()) {
                files.push(read(&dir.join(f))?);
            }
        }
    }
    let published = PublishedChecklist {
        id: c.pin.id.clone(),
        version: c.pin.version.clone(),
        sha256: c.pin.sha256.clone(),
        files,
    };
    // Reloading from what is stored must give the same pin, or inspections could not
    // be read back.
    let again = checklist::load_files(&published.files).map_err(|e| anyhow::anyhow!("{e}"))?;
    if again.pin != c.pin {
        bail!("the published files do not reproduce the checklist's pin");
    }
    storage.publish_checklist(&published)?;
    audit(
        storage,
        "checklist_publish",
        &format!("{}@{}", c.pin.id, c.pin.version),
    )?;
    println!(
        "published {}@{} sha256 {}",
        c.pin.id, c.pin.version, c.pin.sha256
    );
    Ok(())
}

/// `ok` lines go to stdout; problems go to stderr as `file:line: field: message`.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    for file in files {
        match checklist::load_file(file) {
            Ok(c) => println!(
                "ok  {}  {}@{}  {} sections, {} items  sha256 {}",
                file.display(),
                c.id,
                c.version,
                c.sections.len(),
                c.items().count(),
                c.pin.sha256
            ),
            Err(errors) => {
                failed += 1;
                println!("FAIL  {}  {} problem(s)", file.display(), errors.len());
                eprintln!("{errors}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} of {} file(s) failed validation", files.len());
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// Every flag of `serve`, and every global one, can be set from the environment too
    /// (a systemd unit or a container sets variables, not arguments).
    #[test]
    fn every_serve_flag_is_also_an_environment_variable() {
        let cli = Cli::command();
        let serve = cli
            .get_subcommands()
            .find(|c| c.get_name() == "serve")
            .expect("serve");
        let mut seen = 0;
        for arg in cli.get_arguments().chain(serve.get_arguments()) {
            if arg.get_long().is_none() || ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            let env = arg.get_env().unwrap_or_else(|| {
                panic!("--{} has no environment variable", arg.get_long().unwrap())
            });
            assert!(env.to_string_lossy().starts_with("WARDCHECK_"));
            seen += 1;
        }
        assert!(seen >= 6, "{seen} flags");
    }

    /// The systemd unit in `deploy/` starts the server as written: its variables name
    /// real flags, and with its `ExecStart` they parse.
    #[test]
    fn the_systemd_unit_parses() {
        let unit = include_str!("../../deploy/wardcheck-server.service");
        let cli = Cli::command();
        let serve = cli
            .get_subcommands()
            .find(|c| c.get_name() == "serve")
            .expect("serve");
        let flags: Vec<(String, String)> = cli
            .get_arguments()
            .chain(serve.get_arguments())
            .filter_map(|a| {
                Some((
                    a.get_env()?.to_string_lossy().into_owned(),
                    a.get_long()?.to_owned(),
                ))
            })
            .collect();
        let mut argv = vec!["wardcheck-server".to_owned()];
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        argv.extend(exec.split_whitespace().skip(1).map(str::to_owned));
        let mut set = 0;
        for line in unit.lines() {
            let Some((name, value)) = line
                .strip_prefix("Environment=")
                .and_then(|kv| kv.split_once('='))
            else {
                continue;
            };
            if name == "RUST_LOG" {
                continue;
            }
            let (_, long) = flags
                .iter()
                .find(|(env, _)| env == name)
                .unwrap_or_else(|| panic!("{name} is no flag's variable"));
            argv.extend([format!("--{long}"), value.to_owned()]);
            set += 1;
        }
        assert!(set >= 5);
        let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let super::Command::Serve {
            trusted_proxies,
            public_url,
            ..
        } = parsed.command
        else {
            panic!("the unit runs serve")
        };
        let web = wardcheck_server::web::Web::new(trusted_proxies, public_url.as_deref()).unwrap();
        assert!(web.https(), "the unit's public address is https");
    }
}
