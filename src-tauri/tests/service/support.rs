//! The real server binary on a free loopback port, its admin command line, and an app
//! service on temporary folders with the test keystore.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::task::JoinHandle;
use wardcheck_app_lib::service::keystore::{Keystore, KeystoreChoice};
use wardcheck_app_lib::service::settings::{self, Settings};
use wardcheck_app_lib::service::{App, Config};

/// The password every test user gets (test data only).
pub const PASSWORD: &str = "correct horse battery staple";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("src-tauri lives inside the workspace")
        .to_path_buf()
}

/// The server binary: `$WARDCHECK_SERVER_BIN` if set, else the workspace's, built first
/// the way scripts/test builds (a no-op after `cargo build --workspace --all-targets`).
fn server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("WARDCHECK_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--all-targets"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .status()
            .expect("running cargo to build the server");
        assert!(status.success(), "building the workspace failed ({status})");
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => workspace_root().join(dir),
            None => workspace_root().join("target"),
        };
        target.join("debug").join("wardcheck-server")
    })
    .clone()
}

/// A running `wardcheck-server serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    data: PathBuf,
    pub addr: String,
}

impl Server {
    /// Starts a server on `data` listening on `listen` (`127.0.0.1:0` for any port).
    pub fn start_on(data: &Path, listen: &str) -> Server {
        let mut child = Command::new(server_binary())
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", listen])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wardcheck-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the server's first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("the server did not say where it listens: {line:?}"))
            .to_owned();
        Server {
            child: Some(child),
            data: data.to_path_buf(),
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs the admin command line on this server's data folder.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new(server_binary())
            .arg("--data")
            .arg(&self.data)
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
        assert!(
            out.status.success(),
            "wardcheck-server {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_inspector(&self, name: &str) {
        self.cli(
            &["user", "add", name, "--role", "inspector"],
            &format!("{PASSWORD}\n"),
        );
    }

    pub fn create_inspection(&self, trust: &str, inspector: &str) -> uuid::Uuid {
        self.cli(
            &[
                "inspection",
                "create",
                "--trust",
                trust,
                "--assign",
                inspector,
            ],
            "",
        )
        .trim()
        .parse()
        .expect("inspection create prints an id")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Folders for one app: its data and its test keystore.
#[derive(Debug)]
pub struct AppDirs {
    _scratch: tempfile::TempDir,
    pub data: PathBuf,
    pub keys: PathBuf,
}

impl AppDirs {
    pub fn new() -> AppDirs {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        AppDirs {
            data: scratch.path().join("data"),
            keys: scratch.path().join("keys"),
            _scratch: scratch,
        }
    }

    pub fn config(&self) -> Config {
        Config::new(&self.data, KeystoreChoice::TestDir(self.keys.clone()))
    }

    pub fn open(&self) -> App {
        App::open(self.config())
    }
}

/// The app's background sync, stopped (as if the app were killed) by [`Worker::kill`].
pub struct Worker(JoinHandle<()>);

impl Worker {
    pub fn start(app: &App) -> Worker {
        Worker(tokio::spawn(app.clone().run_worker()))
    }

    pub async fn kill(self) {
        self.0.abort();
        let _ = self.0.await;
    }
}

/// Polls `check` until it gives `Some`, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /api/v1/login` for a second look at the server's side.
pub async fn token(server: &Server, user: &str) -> String {
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/login", server.url()))
        .json(&serde_json::json!({"user": user, "password": PASSWORD, "device": "test"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answer");
    res["token"].as_str().expect("a token").to_owned()
}

/// `GET {path}` on the server as `token`, as JSON.
pub async fn get_json(server: &Server, token: &str, path: &str) -> serde_json::Value {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", server.url()))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("GET");
    assert!(res.status().is_success(), "GET {path}: {}", res.status());
    res.json().await.expect("JSON")
}

/// A photo-like JPEG of about `side` x `side` pixels of noise (so it does not compress
/// to nothing), larger than one upload chunk.
pub fn noisy_jpeg(side: u32) -> Vec<u8> {
    let mut seed: u32 = 0x1234_5678;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encode a JPEG");
    out
}

/// A command that runs the ignored test `name` of this test binary alone, in a child
/// process whose environment the caller sets (what a test cannot safely change in its
/// own process).
pub fn child_test(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command.args(["--exact", name, "--ignored", "--nocapture"]);
    command
}

/// Runs a [`child_test`] and asserts that its one test passed.
pub fn run_child_test(mut command: Command) {
    let out = command.output().expect("running the child test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the child test passed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Leaves `dirs` as if its app had signed in to `server` earlier.
pub fn signed_in_earlier(dirs: &AppDirs, server: String) {
    settings::save(
        &dirs.data,
        &Settings {
            server,
            user: "ann".into(),
            display_name: "Ann".into(),
            role: "inspector".into(),
            device_id: 1,
            last_synced_at: None,
        },
    )
    .unwrap();
    Keystore::test_dir(&dirs.keys)
        .set_token("0123abcd")
        .unwrap();
}
