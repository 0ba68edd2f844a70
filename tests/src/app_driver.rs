//! Driving the real field app through WebDriver, as design/BUILD.md sets it up:
//! `tauri-driver` on a free port starts Debian's `/usr/bin/WebKitWebDriver`, which
//! launches `target/debug/wardcheck-app` for each new session, on a private Xvfb display.
//!
//! ```text
//! test ──HTTP──▶ tauri-driver ──▶ WebKitWebDriver ──▶ wardcheck-app ──▶ WebKit web/network
//!  (fantoccini)   (--port)          (--native-port)     (one per session)   processes
//! ```
//!
//! Everything after tauri-driver inherits its environment, so the app's environment is set
//! there: the display, X11, XDG folders inside an [`AppHome`] (which outlives sessions, so
//! "quit and restart" keeps the app's data) and `WARDCHECK_TEST_KEYSTORE`, the documented
//! test-only keystore (docs/APP-IPC.md). tauri-driver leads a process group of its own:
//! [`AppDriver::stop`] sends SIGTERM to the whole group (never SIGKILL first, BUILD.md),
//! so WebKitWebDriver, the app and its WebKit helpers stop with it.
//!
//! Every wait polls with a generous deadline, so a slow, busy machine makes a test slower,
//! not flaky; nothing asserts on how long something took.

use std::fs;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

use crate::process_group::{ProcInfo, ProcessGroup, Stopped, group_members, with_descendants};
use crate::xvfb::{Xvfb, artifact_path, on_path, screenshot_of};

/// tauri-driver answers `/status` once WebKitWebDriver is up: a second or two.
pub const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);
/// A new session starts the app and waits for its window's page: a cold WebKit start on
/// 2 busy cores can take tens of seconds.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(180);
/// How long an element or a text gets to appear on screen.
pub const UI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the app gets to exit after its session is closed.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often waits look again.
pub const POLL: Duration = Duration::from_millis(200);

/// The field app to drive: `$WARDCHECK_APP` when set (another build, e.g. a release one;
/// used as it is), else the debug build, built with the rest of the workspace if needed.
pub fn app_binary() -> PathBuf {
    match std::env::var_os("WARDCHECK_APP") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "WARDCHECK_APP names {}, which is not a file",
                path.display()
            );
            path
        }
        _ => crate::workspace_binary("wardcheck-app"),
    }
}

/// tauri-driver: on `PATH`, else where `scripts/setup` installs it (`~/.cargo/bin`, or
/// `$CARGO_HOME/bin`). Panics with the fix when it is missing.
pub fn tauri_driver_path() -> PathBuf {
    let mut candidates: Vec<PathBuf> = on_path("tauri-driver").into_iter().collect();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(Path::new(&home).join("bin/tauri-driver"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/tauri-driver"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "tauri-driver is not installed: the field app's WebDriver tests need it; run \
             scripts/setup, which runs `cargo install tauri-driver --locked --version ^2`"
            )
        })
}

/// WebKitGTK's WebDriver (Debian package webkit2gtk-driver).
pub fn native_driver_path() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/WebKitWebDriver");
    if debian.is_file() {
        return debian;
    }
    on_path("WebKitWebDriver").unwrap_or_else(|| {
        panic!(
            "WebKitWebDriver is not installed: the field app's WebDriver tests need it \
             (Debian package webkit2gtk-driver); run scripts/setup, which installs it"
        )
    })
}

/// Fails early, with the fix, when a program the WebDriver tests need is missing.
pub fn require_tools() {
    crate::xvfb::require_tools(
        "field app's WebDriver test",
        &[("Xvfb", "xvfb"), ("import", "imagemagick")],
    );
    tauri_driver_path();
    native_driver_path();
}

/// Where one installation of the app keeps its data, its WebKit caches and its test
/// keystore. It outlives app sessions, so quitting and restarting keeps the data.
#[derive(Debug)]
pub struct AppHome {
    root: PathBuf,
    /// More of the app's environment (e.g. a test-only key), set after the rest.
    env: Vec<(String, String)>,
    _temp: Option<TempDir>,
}

impl AppHome {
    /// A fresh, empty home in a temporary folder, removed when dropped.
    pub fn temporary() -> AppHome {
        let temp = tempfile::tempdir().expect("a temporary folder for the app's home");
        AppHome {
            root: temp.path().to_path_buf(),
            env: Vec::new(),
            _temp: Some(temp),
        }
    }

    /// A home in `root` (made if missing), kept after the run: e.g. seeded once and
    /// started many times by a benchmark.
    pub fn at(root: &Path) -> AppHome {
        fs::create_dir_all(root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        AppHome {
            root: root.to_path_buf(),
            env: Vec::new(),
            _temp: None,
        }
    }

    /// The same home, with `name=value` in the app's environment too.
    pub fn with_env(mut self, name: &str, value: &str) -> AppHome {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder `WARDCHECK_TEST_KEYSTORE` names.
    pub fn keystore(&self) -> PathBuf {
        self.root.join("keystore")
    }

    /// `$XDG_DATA_HOME`: the app's data folder is inside it.
    pub fn data_home(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Sets the app's environment on `command` (tauri-driver, or the app itself).
    pub fn apply(&self, command: &mut Command, display: &str) {
        for dir in ["data", "config", "cache", "keystore", "runtime"] {
            let _ = fs::create_dir_all(self.root.join(dir));
        }
        // The keystore and the runtime folder must be private, as the real ones are.
        use std::os::unix::fs::PermissionsExt;
        for dir in ["keystore", "runtime"] {
            let _ = fs::set_permissions(self.root.join(dir), fs::Permissions::from_mode(0o700));
        }
        command
            .env("DISPLAY", display)
            // Always X11 on the private display, even on a developer's Wayland session.
            .env_remove("WAYLAND_DISPLAY")
            .env("GDK_BACKEND", "x11")
            .env("NO_AT_BRIDGE", "1")
            // Keep the app's data and WebKit's caches out of the real home folder.
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_CACHE_HOME", self.root.join("cache"))
            .env("XDG_RUNTIME_DIR", self.root.join("runtime"))
            .env("WARDCHECK_TEST_KEYSTORE", self.keystore())
            .env("RUST_BACKTRACE", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
    }
}

/// tauri-driver (and the WebKitWebDriver it starts) on a free port, on a private display,
/// for one [`AppHome`]. Each [`AppDriver::launch`] opens a WebDriver session, which starts
/// the app; [`App::quit`] ends it. Dropping it stops everything.
#[derive(Debug)]
pub struct AppDriver {
    app: PathBuf,
    home: AppHome,
    port: u16,
    log: PathBuf,
    // Field order is drop order: tauri-driver (and the app) before the display.
    driver: ProcessGroup,
    xvfb: Xvfb,
    _scratch: TempDir,
}

impl AppDriver {
    /// Starts a display and tauri-driver for `app` with `home`, and waits until the
    /// driver answers `/status`.
    pub async fn start(app: &Path, home: AppHome) -> anyhow::Result<AppDriver> {
        let app = app
            .canonicalize()
            .with_context(|| format!("the app {}", app.display()))?;
        let scratch = tempfile::tempdir().context("a temporary folder for logs")?;
        let xvfb = Xvfb::start(scratch.path());
        let log = scratch.path().join("tauri-driver.log");
        // A port picked free may be taken before tauri-driver binds it: then it exits,
        // and the next attempt picks others.
        let mut last = String::new();
        for _attempt in 0..3 {
            let (port, native_port) = (free_port(), free_port());
            let out = fs::File::create(&log).context("creating tauri-driver's log")?;
            let mut command = Command::new(tauri_driver_path());
            command
                .arg("--port")
                .arg(port.to_string())
                .arg("--native-port")
                .arg(native_port.to_string())
                .arg("--native-driver")
                .arg(native_driver_path())
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            home.apply(&mut command, &xvfb.name);
            let mut driver = ProcessGroup::spawn("tauri-driver", command);
            match wait_for_status(&mut driver, port).await {
                Ok(()) => {
                    return Ok(AppDriver {
                        app,
                        home,
                        port,
                        log,
                        driver,
                        xvfb,
                        _scratch: scratch,
                    });
                }
                Err(e) => {
                    driver.stop();
                    last = format!("{e:#}; its output:\n{}", read_tail(&log));
                }
            }
        }
        bail!("tauri-driver did not start: {last}")
    }

    pub fn home(&self) -> &AppHome {
        &self.home
    }

    pub fn display(&self) -> &Xvfb {
        &self.xvfb
    }

    /// The app's path as WebDriver launches it.
    pub fn app_path(&self) -> &Path {
        &self.app
    }

    /// What tauri-driver, WebKitWebDriver and the app wrote (they share one log).
    pub fn log(&self) -> String {
        read_tail(&self.log)
    }

    /// Opens a WebDriver session: WebKitWebDriver starts the app and returns once its
    /// window has a page.
    pub async fn launch(&self) -> anyhow::Result<App> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": self.app }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = tokio::time::timeout(SESSION_TIMEOUT, builder.connect(&url))
            .await
            .map_err(|_| anyhow!("no WebDriver session within {SESSION_TIMEOUT:?}"))?
            .map_err(|e| {
                anyhow!(
                    "WebDriver could not start the app: {e}\ntauri-driver's output:\n{}",
                    self.log()
                )
            })?;
        Ok(App {
            client,
            display: self.xvfb.name.clone(),
        })
    }

    /// The app's processes now running under this driver: the app itself and its
    /// WebKit helpers (not tauri-driver or WebKitWebDriver).
    pub fn app_processes(&self) -> Vec<ProcInfo> {
        let pgid = self.driver.pid();
        group_members(pgid)
            .into_iter()
            .filter(|p| p.exe.as_deref() == Some(self.app.as_path()))
            .flat_map(|p| with_descendants(p.pid))
            .collect()
    }

    /// Every live process in tauri-driver's group.
    pub fn processes(&self) -> Vec<ProcInfo> {
        group_members(self.driver.pid())
    }

    /// Waits until no process of the app is left (after its session ended).
    pub async fn wait_app_gone(&self) -> anyhow::Result<()> {
        poll("the app's processes to exit", QUIT_TIMEOUT, || async {
            let left = self.app_processes();
            Ok(if left.is_empty() {
                Some(())
            } else {
                bail!("still running: {}", describe(&left))
            })
        })
        .await
    }

    /// Stops tauri-driver's whole group (SIGTERM first) and then the display; says how
    /// tauri-driver's group ended. Idempotent.
    pub fn stop(&mut self) -> Stopped {
        let stopped = self.driver.stop();
        self.xvfb.stop();
        stopped
    }
}

/// A WebDriver session on the running app.
#[derive(Debug)]
pub struct App {
    pub client: Client,
    /// The X display the app is on, for screenshots WebDriver cannot take.
    display: String,
}

/// `[data-testid="NAME"]`: the element ids docs/APP-IPC.md promises.
pub fn tid(name: &str) -> String {
    format!("[data-testid=\"{name}\"]")
}

impl App {
    /// Ends the session; WebKitWebDriver closes the app.
    pub async fn quit(self) -> anyhow::Result<()> {
        self.client
            .close()
            .await
            .context("closing the WebDriver session")
    }

    /// Saves what the display shows (the app's window) as `artifacts/NAME` and says
    /// where. Never fails: it is for people reading a test's result. Taken from the X
    /// display, not through WebDriver: WebKitWebDriver's screenshot was seen to wait
    /// forever now and then (every process idle), and every later command of the
    /// session queued behind it.
    pub async fn screenshot(&self, name: &str) -> String {
        screenshot_of(&self.display, name)
    }

    /// Every element matching `css` now (none is not an error).
    pub async fn all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// Waits for an element matching `css` that is displayed.
    pub async fn visible(&self, css: &str) -> anyhow::Result<Element> {
        poll(&format!("{css} to be shown"), UI_TIMEOUT, || async {
            for e in self.all(css).await? {
                if e.is_displayed().await.unwrap_or(false) {
                    return Ok(Some(e));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Waits until nothing matching `css` is displayed.
    pub async fn gone(&self, css: &str) -> anyhow::Result<()> {
        poll(&format!("{css} to go"), UI_TIMEOUT, || async {
            for e in self.all(css).await? {
                if e.is_displayed().await.unwrap_or(false) {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        })
        .await
    }

    /// Scrolls `e` to the middle of its scrolling box. WebKit's WebDriver scrolls an
    /// element only "if needed", and counts one that peeks out at the bottom of the app's
    /// page (which scrolls above the status bar) as in view, though its centre is under
    /// the status bar: a click there would land on the bar.
    pub async fn centre(&self, e: &Element) -> anyhow::Result<()> {
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'});",
                vec![serde_json::to_value(e)?],
            )
            .await?;
        Ok(())
    }

    /// Waits for `css` to be shown, then clicks it (again on a stale element, which a
    /// re-render leaves behind).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        poll(&format!("{css} to be clicked"), UI_TIMEOUT, || async {
            let e = self.visible(css).await?;
            self.centre(&e).await?;
            e.click().await?;
            Ok(Some(()))
        })
        .await
    }

    /// Types `text` into the field `css` in place of what it held, and checks that the
    /// field then holds it.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        poll(&format!("{css} to hold {text:?}"), UI_TIMEOUT, || async {
            let e = self.visible(css).await?;
            self.centre(&e).await?;
            e.clear().await?;
            e.send_keys(text).await?;
            let value = e.prop("value").await?.unwrap_or_default();
            Ok((value == text).then_some(()))
        })
        .await
    }

    /// The text of the first displayed element matching `css`, waiting for one.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.visible(css).await?.text().await?)
    }

    /// Waits until the first displayed element matching `css` has a text for which
    /// `want` holds; returns that text.
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut seen;
        loop {
            match bounded(css, deadline, self.shown_text(css)).await {
                Ok(Some(text)) if want(&text) => return Ok(text),
                Ok(Some(text)) => seen = format!("{text:?}"),
                Ok(None) => seen = "nothing (not shown)".into(),
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => seen = format!("an error: {e:#}"),
            }
            if Instant::now() > deadline {
                bail!("waited {timeout:?} for {css} to show {what}; it last showed {seen}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text of the first displayed element matching `css` now, if one is shown.
    pub async fn shown_text(&self, css: &str) -> anyhow::Result<Option<String>> {
        for e in self.all(css).await? {
            if e.is_displayed().await.unwrap_or(false) {
                return Ok(Some(e.text().await?));
            }
        }
        Ok(None)
    }

    /// Waits until at least `n` displayed elements match `css`; returns them.
    pub async fn wait_count(&self, css: &str, n: usize) -> anyhow::Result<Vec<Element>> {
        poll(&format!("{n} of {css}"), UI_TIMEOUT, || async {
            let all = self.all(css).await?;
            Ok((all.len() >= n).then_some(all))
        })
        .await
    }
}

/// The steps of a scenario, each ending in a numbered screenshot
/// (`artifacts/PREFIX-NN-STEP.png`); a step that failed ends the test with its
/// screenshot (`...-FAILED.png`), the error and the app's output (also saved as
/// `artifacts/PREFIX-app.log`).
#[derive(Debug)]
pub struct Steps {
    prefix: String,
    display: String,
    log: PathBuf,
    n: u32,
}

impl Steps {
    pub fn new(driver: &AppDriver, prefix: &str) -> Steps {
        Steps {
            prefix: prefix.to_owned(),
            display: driver.xvfb.name.clone(),
            log: driver.log.clone(),
            n: 0,
        }
    }

    /// Ends step `name` with its result: a screenshot on success (of `app`'s page, or of
    /// the display), or a panic that says what failed and where to look.
    pub async fn check<T>(
        &mut self,
        app: Option<&App>,
        name: &str,
        result: anyhow::Result<T>,
    ) -> T {
        self.n += 1;
        let file = format!("{}-{:02}-{name}", self.prefix, self.n);
        let display = self.display.clone();
        let shoot = |file: String| async move {
            match app {
                Some(app) => app.screenshot(&file).await,
                None => screenshot_of(&display, &file),
            }
        };
        match result {
            Ok(v) => {
                let shot = shoot(format!("{file}.png")).await;
                eprintln!("step {}: {name}: ok ({shot})", self.n);
                v
            }
            Err(e) => {
                let shot = shoot(format!("{file}-FAILED.png")).await;
                let log = artifact_path(&format!("{}-app.log", self.prefix));
                let _ = fs::copy(&self.log, &log);
                panic!(
                    "step {} ({name}) failed: {e:#}\nscreenshot: {shot}\napp's output \
                     (all of it in {}):\n{}",
                    self.n,
                    log.display(),
                    read_tail(&self.log)
                );
            }
        }
    }
}

/// Polls `check` every [`POLL`] until it returns `Some`, or fails after `timeout` with
/// what it was waiting for and the last error `check` gave. Errors are retried: a stale
/// element or a page mid-render is normal while waiting.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<anyhow::Error> = None;
    loop {
        match bounded(what, deadline, check()).await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => {
                // A session that is gone will not come back: stop at once.
                if is_fatal(&e) {
                    return Err(e.context(format!("waiting for {what}")));
                }
                last = Some(e);
            }
        }
        if Instant::now() > deadline {
            return Err(match last {
                Some(e) => e.context(format!("waited {timeout:?} for {what}")),
                None => anyhow!("waited {timeout:?} for {what}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The least time one attempt is given, even past the deadline.
const ATTEMPT_AT_LEAST: Duration = Duration::from_secs(10);

/// Runs one attempt of a wait that ends at `deadline`, which a WebDriver command that
/// never answers does not outlast: it is given until the deadline (at least
/// [`ATTEMPT_AT_LEAST`]), then reported as an error.
async fn bounded<T>(
    what: &str,
    deadline: Instant,
    attempt: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let allowed = deadline
        .saturating_duration_since(Instant::now())
        .max(ATTEMPT_AT_LEAST);
    match tokio::time::timeout(allowed, attempt).await {
        Ok(result) => result,
        Err(_) => Err(anyhow!(
            "a WebDriver command did not answer within {allowed:?} while waiting for {what}"
        )),
    }
}

fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| match c.downcast_ref::<CmdError>() {
        Some(CmdError::Standard(w)) => matches!(
            w.error,
            ErrorStatus::InvalidSessionId | ErrorStatus::SessionNotCreated
        ),
        Some(CmdError::Lost(_)) => true,
        _ => false,
    })
}

/// Polls tauri-driver's `/status` until it answers ready, or the driver exits.
async fn wait_for_status(driver: &mut ProcessGroup, port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + DRIVER_TIMEOUT;
    let mut last;
    loop {
        if let Some(status) = driver.exited() {
            bail!("tauri-driver exited ({status})");
        }
        match http.get(&url).send().await {
            Ok(res) if res.status().is_success() => {
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                // WebKitWebDriver says `ready: true`; a proxy error is not ready.
                if body["value"]["ready"].as_bool().unwrap_or(true) {
                    return Ok(());
                }
                last = body.to_string();
            }
            Ok(res) => last = format!("HTTP {}", res.status()),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer ready within {DRIVER_TIMEOUT:?} (last: {last})");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

/// The last 200 lines of a log file.
fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

/// `pid comm, ...` for messages.
pub fn describe(procs: &[ProcInfo]) -> String {
    procs
        .iter()
        .map(|p| format!("{} {}", p.pid, p.comm))
        .collect::<Vec<_>>()
        .join(", ")
}
