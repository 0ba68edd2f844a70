//! The real server binary, started on a free loopback port with a fresh data folder,
//! and its admin command line on the same folder.
//!
//! The record is kept in the data folder's SQLite file, or in a PostgreSQL database of
//! the test's own ([`Server::start_postgres`]; every server a test starts, when
//! `WARDCHECK_TEST_BACKEND=postgres`). The database's connection string is kept in the
//! data folder ([`DATABASE_FILE`]), so that a restart and the command line on the same
//! folder find the same database.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wardcheck_server::storage::{PgStorage, SqliteStorage, Storage};

use crate::workspace_binary;

/// The password every test user gets (test data only).
pub const PASSWORD: &str = "correct horse battery staple";

/// A running `wardcheck-server serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    data: PathBuf,
    _scratch: Option<tempfile::TempDir>,
    /// What `serve` is started with besides `--listen` ([`Server::start_with`]).
    options: ServeOptions,
    /// e.g. `127.0.0.1:40123`.
    pub addr: String,
}

/// What a test server is started with besides its data folder and address.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// More arguments of `serve` (e.g. `--trusted-proxy 127.0.0.1`).
    pub args: Vec<String>,
    /// Environment variables set for it.
    pub env: Vec<(String, String)>,
    /// Where its standard error (its log) goes; the test's own by default.
    pub log: Option<PathBuf>,
}

/// The file in a test's data folder holding its PostgreSQL connection string.
pub const DATABASE_FILE: &str = "test-database.url";

/// Set to `postgres` to start every test server on PostgreSQL.
pub const BACKEND_ENV: &str = "WARDCHECK_TEST_BACKEND";

/// The database the server on `data` keeps its record in: the one recorded in the
/// folder, else (with [`BACKEND_ENV`] set to `postgres`) a fresh one, recorded; none
/// for SQLite.
pub fn database_for(data: &Path) -> Option<String> {
    let file = data.join(DATABASE_FILE);
    if let Ok(url) = std::fs::read_to_string(&file) {
        let url = url.trim();
        return (url != SQLITE).then(|| url.to_owned());
    }
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("postgres") => Some(use_postgres(data)),
        Ok("sqlite") | Ok("") | Err(_) => None,
        Ok(other) => panic!("{BACKEND_ENV}={other:?}: say sqlite or postgres"),
    }
}

/// Keeps the server on `data` on SQLite whatever [`BACKEND_ENV`] says: for tests of what
/// only SQLite has (its file damaged, its schemas of old).
pub fn use_sqlite(data: &Path) {
    std::fs::create_dir_all(data).expect("the data folder can be made");
    std::fs::write(data.join(DATABASE_FILE), SQLITE).expect("the backend is recorded");
}

/// What [`DATABASE_FILE`] says for a folder kept on SQLite.
const SQLITE: &str = "sqlite";

/// Gives the data folder a fresh PostgreSQL database; returns its connection string.
pub fn use_postgres(data: &Path) -> String {
    std::fs::create_dir_all(data).expect("the data folder can be made");
    let url = crate::pg::fresh_database();
    std::fs::write(data.join(DATABASE_FILE), &url).expect("the database is recorded");
    url
}

/// The storage of the server on `data` (SQLite in the folder, or its PostgreSQL
/// database), opened beside it.
pub fn open_storage(data: &Path) -> Arc<dyn Storage> {
    match database_for(data) {
        Some(url) => Arc::new(crate::off_runtime(|| {
            PgStorage::open(&url)
                .unwrap_or_else(|e| panic!("the server's PostgreSQL database opens: {e}"))
        })),
        None => Arc::new(
            SqliteStorage::open(data)
                .unwrap_or_else(|e| panic!("the data folder {} opens: {e}", data.display())),
        ),
    }
}

/// Document `id` as the storage of the server on `data` holds it, loaded and held to its
/// stored heads (core's one load-and-check path). Callable from async tests.
pub fn stored_doc(data: &Path, id: uuid::Uuid) -> automerge::AutoCommit {
    let s = crate::off_runtime(|| open_storage(data).load_doc(id))
        .unwrap()
        .expect("the document is stored");
    wardcheck_core::store::load_checked(
        id,
        &s.snapshot,
        s.changes.iter().map(Vec::as_slice),
        &s.heads,
    )
    .expect("the stored document loads and reaches its stored heads")
}

/// [`Server::sql`] on the database of the server on `data`, whether or not it runs.
pub fn sql_on(data: &Path, sql: &str) -> u64 {
    match database_for(data) {
        Some(url) => crate::pg::execute(&url, sql).expect("the statement runs"),
        None => rusqlite::Connection::open(data.join("wardcheck.db"))
            .and_then(|db| db.execute(sql, []))
            .expect("the statement runs") as u64,
    }
}

/// [`Server::sql_row`] on the database of the server on `data`.
pub fn sql_row_on(data: &Path, sql: &str) -> Option<Vec<Option<String>>> {
    match database_for(data) {
        Some(url) => crate::pg::first_row(&url, sql).expect("the query runs"),
        None => {
            use rusqlite::types::ValueRef;
            let db =
                rusqlite::Connection::open(data.join("wardcheck.db")).expect("the database opens");
            let mut stmt = db.prepare(sql).expect("the query is valid");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("the query runs");
            let row = rows.next().expect("the query runs")?;
            Some(
                (0..n)
                    .map(|i| match row.get_ref(i).expect("a column") {
                        ValueRef::Null => None,
                        ValueRef::Integer(v) => Some(v.to_string()),
                        ValueRef::Real(v) => Some(v.to_string()),
                        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    })
                    .collect(),
            )
        }
    }
}

/// Moves corrective action `action`'s due date to `days_ago` days before today behind the
/// server's back, in its row and in its raise step: the record as it would stand once the
/// date had passed (an action cannot be raised due in the past).
pub fn make_overdue(data: &Path, action: uuid::Uuid, days_ago: i64) {
    let before = (chrono::Utc::now() - chrono::Duration::days(days_ago))
        .date_naive()
        .to_string();
    let row = sql_row_on(
        data,
        &format!("SELECT steps FROM actions WHERE id = '{action}'"),
    )
    .expect("the action is stored");
    let mut steps: serde_json::Value =
        serde_json::from_str(row[0].as_deref().expect("its steps")).expect("steps are JSON");
    steps[0]["due"] = serde_json::json!(before);
    let changed = sql_on(
        data,
        &format!(
            "UPDATE actions SET due = '{before}', steps = '{}' WHERE id = '{action}'",
            steps.to_string().replace('\'', "''")
        ),
    );
    assert_eq!(changed, 1, "one action moved");
}

/// `wardcheck-server` with the data folder and its database set.
pub fn server_command(data: &Path) -> Command {
    let mut c = Command::new(workspace_binary("wardcheck-server"));
    c.arg("--data").arg(data).env_remove("WARDCHECK_DATABASE");
    if let Some(url) = database_for(data) {
        c.env("WARDCHECK_DATABASE", url);
    }
    c
}

impl Server {
    /// Starts a server keeping its record in a fresh PostgreSQL database.
    pub fn start_postgres() -> Server {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("data");
        use_postgres(&data);
        let mut s = Server::start_on(&data, "127.0.0.1:0");
        s._scratch = Some(scratch);
        s
    }

    /// Starts a server on a fresh data folder on SQLite, whatever [`BACKEND_ENV`] says.
    pub fn start_sqlite() -> Server {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("data");
        use_sqlite(&data);
        let mut s = Server::start_on(&data, "127.0.0.1:0");
        s._scratch = Some(scratch);
        s
    }

    /// Runs one SQL statement on the server's database behind its back (an attacker
    /// with the database, or time made to pass); returns the rows it changed. Values are
    /// written into the statement: test data only.
    pub fn sql(&self, sql: &str) -> u64 {
        sql_on(&self.data, sql)
    }

    /// `bytes` as a literal in the server's database's SQL.
    pub fn sql_bytes(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.database() {
            Some(_) => format!("'\\x{hex}'::bytea"),
            None => format!("X'{hex}'"),
        }
    }

    /// The first row of a query on the server's database, each column as text.
    pub fn sql_row(&self, sql: &str) -> Option<Vec<Option<String>>> {
        sql_row_on(&self.data, sql)
    }

    /// The PostgreSQL database the server keeps its record in, if not SQLite.
    pub fn database(&self) -> Option<String> {
        database_for(&self.data)
    }

    /// The server's storage, opened beside it on the same backend, to check what it holds.
    /// Its calls block: from an async test, make them in [`crate::off_runtime`].
    pub fn storage(&self) -> Arc<dyn Storage> {
        open_storage(&self.data)
    }

    /// Starts a server on a fresh data folder.
    pub fn start() -> Server {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("data");
        let mut s = Server::start_on(&data, "127.0.0.1:0");
        s._scratch = Some(scratch);
        s
    }

    /// Starts a server on `data` (kept by the caller) listening on `listen`.
    pub fn start_on(data: &Path, listen: &str) -> Server {
        Server::start_on_with(data, listen, ServeOptions::default())
    }

    /// Starts a server on a fresh data folder (on the backend [`BACKEND_ENV`] says) with
    /// `options`.
    pub fn start_with(options: ServeOptions) -> Server {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("data");
        let mut s = Server::start_on_with(&data, "127.0.0.1:0", options);
        s._scratch = Some(scratch);
        s
    }

    /// Starts a server on `data` (kept by the caller) listening on `listen`, with
    /// `options`.
    pub fn start_on_with(data: &Path, listen: &str, options: ServeOptions) -> Server {
        let (child, addr) = spawn(data, listen, &options).unwrap_or_else(|e| panic!("{e}"));
        Server {
            child: Some(child),
            data: data.to_path_buf(),
            _scratch: None,
            options,
            addr,
        }
    }

    /// Stops the server (SIGKILL: it commits what it acknowledges before it says so, so
    /// an outage loses nothing acknowledged), keeping its data folder and address for
    /// [`Server::restart`].
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same data folder and the same address, as after an
    /// outage: clients that knew it find it where it was. Stops it first if it runs.
    /// Retries for a while if the port is not free yet.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match spawn(&self.data, &self.addr, &self.options) {
                Ok((child, addr)) => {
                    assert_eq!(addr, self.addr, "the restarted server listens where it did");
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("the server did not start again on {}: {e}", self.addr)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/sync", self.addr)
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The server's process id (while it runs), e.g. to read its memory from /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asks the server to stop with SIGTERM (it writes the last-seen times and the
    /// refused-token counts it holds, then exits) and waits up to 30 s for it; returns
    /// whether it exited of itself, successfully (else it is killed).
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent && Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs the admin command line on this server's data folder; panics on failure.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let out = self.try_cli(args, stdin);
        assert!(out.0, "wardcheck-server {args:?} failed: {}", out.2);
        out.1
    }

    /// Runs the admin command line: (success, stdout, stderr).
    pub fn try_cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        cli(&self.data, args, stdin)
    }

    /// Adds a user with [`PASSWORD`]; `role` is inspector, reviewer, admin, or
    /// `trust-lead:RJ1`.
    pub fn add_user(&self, name: &str, role: &str) -> &Self {
        let mut args = vec!["user", "add", name];
        let (role, trust) = match role.split_once(':') {
            Some((r, t)) => (r, Some(t)),
            None => (role, None),
        };
        args.extend(["--role", role]);
        if let Some(t) = trust {
            args.extend(["--trust", t]);
        }
        self.cli(&args, &format!("{PASSWORD}\n"));
        self
    }

    /// Creates an inspection for `trust` assigned to `inspectors`; returns its id.
    pub fn create_inspection(&self, trust: &str, inspectors: &[&str]) -> uuid::Uuid {
        let mut args = vec!["inspection", "create", "--trust", trust];
        for i in inspectors {
            args.extend(["--assign", i]);
        }
        self.cli(&args, "")
            .trim()
            .parse()
            .expect("inspection create prints an id")
    }

    /// Waits until the server answers `/healthz`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server at {} never accepted a connection", self.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `wardcheck-server --data DATA serve --listen LISTEN` and reads where it
/// listens from its first line: (the process, e.g. `127.0.0.1:40123`).
fn spawn(data: &Path, listen: &str, options: &ServeOptions) -> Result<(Child, String), String> {
    let stderr = match &options.log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("opening the log {}: {e}", path.display()))?,
        ),
        None => Stdio::inherit(),
    };
    let mut command = server_command(data);
    // The access log (a line per request) only where a test reads the log: in the test's
    // own output it would bury what matters.
    if options.log.is_none() && std::env::var_os("RUST_LOG").is_none() {
        command.env(
            "RUST_LOG",
            "wardcheck_server=info,wardcheck_server::access=off,warn",
        );
    }
    let mut child = command
        .args(["serve", "--listen", listen])
        .args(&options.args)
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting wardcheck-server: {e}"))?;
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_owned);
    match (read, addr) {
        (Ok(_), Some(addr)) => Ok((child, addr)),
        (read, _) => {
            let _ = child.kill();
            let status = child.wait();
            Err(format!(
                "the server on {listen} did not say where it listens (first line {line:?}, \
                 read {read:?}, exit {status:?})"
            ))
        }
    }
}

/// Runs `wardcheck-server --data DATA ARGS` with `stdin`: (success, stdout, stderr).
pub fn cli(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = server_command(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wardcheck-server");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for wardcheck-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
