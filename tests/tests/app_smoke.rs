//! The field app starts: on a private virtual display (Xvfb) its window appears, the
//! shell page renders (the header turns NHS blue), the process stays up, and it stops
//! cleanly with none of its processes (the app and WebKit's helpers) left behind.
//!
//! Needs Xvfb, xdotool and ImageMagick's `import`; `scripts/setup` installs them.
//! Every wait is a polling loop with a generous deadline, so a slow machine makes the test
//! slower, not flaky. A screenshot of the app lands in `artifacts/app-smoke.png`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// Xvfb announces its display number at once; a few seconds means it is stuck.
const XVFB_TIMEOUT: Duration = Duration::from_secs(20);
/// A cold WebKit start while the rest of the suite compiles and runs on 2 cores can take
/// tens of seconds; only a hang should hit this.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(120);
/// From window to rendered page (the web process starts and loads the shell).
const RENDER_TIMEOUT: Duration = Duration::from_secs(60);
/// After SIGTERM, how long the app and its helpers get before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the app must keep running once rendered, to catch a crash right after load
/// (the page calls the `app_info` command as it loads).
const SETTLE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(200);
/// The header's background in src-tauri/shell/shell.css (NHS blue), as ImageMagick
/// prints an 8-bit pixel.
const HEADER_BLUE: &str = "#005EB8";
const WINDOW_TITLE: &str = "Wardcheck";

#[test]
fn app_starts_renders_and_stops_cleanly() {
    require_tools();
    let app_path = build_app();
    let scratch = tempfile::tempdir().expect("a temporary folder for the app's data and logs");
    let display = Xvfb::start(scratch.path());

    let log_path = scratch.path().join("app.log");
    let log = File::create(&log_path).expect("creating the app's log file");
    let mut command = Command::new(&app_path);
    command
        .env("DISPLAY", &display.name)
        // Always X11 on the private display, even on a developer's Wayland session.
        .env_remove("WAYLAND_DISPLAY")
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        // Keep WebKit's caches and the app's data out of the real home folder.
        .env("XDG_DATA_HOME", scratch.path().join("data"))
        .env("XDG_CONFIG_HOME", scratch.path().join("config"))
        .env("XDG_CACHE_HOME", scratch.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cloning the log handle"))
        .stderr(log);
    let mut app = Group::spawn("wardcheck-app", command);
    let failed = |app: &mut Group, what: &str| -> ! {
        let shot = screenshot(&display, "app-smoke-failure.png");
        let status = app.stop();
        panic!(
            "{what}\napp exit: {status:?}\nscreenshot: {shot}\napp's output:\n{}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    };

    // 1. The window appears.
    let deadline = Instant::now() + WINDOW_TIMEOUT;
    let window = loop {
        if let Some(status) = app.exited() {
            failed(
                &mut app,
                &format!("the app exited ({status}) before its window appeared"),
            );
        }
        if let Some(id) = find_window(&display) {
            break id;
        }
        if Instant::now() > deadline {
            failed(
                &mut app,
                &format!("no window titled {WINDOW_TITLE:?} within {WINDOW_TIMEOUT:?}"),
            );
        }
        thread::sleep(POLL);
    };

    // 2. The page renders: the header's top-left corner turns NHS blue. A window whose
    //    page failed to load (a CSP mistake, a missing asset) stays white.
    let deadline = Instant::now() + RENDER_TIMEOUT;
    loop {
        if let Some(status) = app.exited() {
            failed(
                &mut app,
                &format!("the app exited ({status}) before its page rendered"),
            );
        }
        if pixel(&display, &window, 8, 8).as_deref() == Some(HEADER_BLUE) {
            break;
        }
        if Instant::now() > deadline {
            let seen = pixel(&display, &window, 8, 8);
            failed(
                &mut app,
                &format!(
                    "the page did not render within {RENDER_TIMEOUT:?}: header pixel is {seen:?}, wanted {HEADER_BLUE}"
                ),
            );
        }
        thread::sleep(POLL);
    }

    // 3. It keeps running once the page has loaded and called the app's command.
    thread::sleep(SETTLE);
    if let Some(status) = app.exited() {
        failed(
            &mut app,
            &format!("the app exited ({status}) right after rendering"),
        );
    }
    screenshot(&display, "app-smoke.png");

    // 4. It stops on SIGTERM, and nothing of it is left running.
    let stopped = app.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "the app should stop on SIGTERM within {STOP_TIMEOUT:?} with no process left in its group; got {stopped:?}"
    );
}

/// Fails early, with the fix, when a tool the test drives is missing.
fn require_tools() {
    for (tool, package) in [
        ("Xvfb", "xvfb"),
        ("xdotool", "xdotool"),
        ("import", "imagemagick"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is not installed: the app smoke test needs it (Debian package {package}); \
             run scripts/setup, which installs it"
        );
    }
}

fn build_app() -> PathBuf {
    wardcheck_tests::workspace_binary("wardcheck-app")
}

/// A private X display, stopped when dropped.
struct Xvfb {
    name: String,
    _server: Group,
}

impl Xvfb {
    /// Starts Xvfb on the first free display; it picks the number itself and writes it to
    /// stdout (`-displayfd 1`), so two test runs never race for the same one.
    fn start(scratch: &Path) -> Xvfb {
        let log = File::create(scratch.join("xvfb.log")).expect("creating Xvfb's log file");
        let mut command = Command::new("Xvfb");
        command
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut server = Group::spawn("Xvfb", command);
        let stdout = server.child.stdout.take().expect("Xvfb's stdout is piped");
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let number = receiver
            .recv_timeout(XVFB_TIMEOUT)
            .ok()
            .map(|line| line.trim().to_owned())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let Some(number) = number else {
            server.stop();
            panic!(
                "Xvfb did not report a display within {XVFB_TIMEOUT:?}; its log:\n{}",
                fs::read_to_string(scratch.join("xvfb.log")).unwrap_or_default()
            );
        };
        Xvfb {
            name: format!(":{number}"),
            _server: server,
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("DISPLAY", &self.name)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        command
    }
}

/// The id of the app's visible top-level window, if it exists yet.
fn find_window(display: &Xvfb) -> Option<String> {
    let output = display
        .command("xdotool")
        .args([
            "search",
            "--onlyvisible",
            "--name",
            &format!("^{WINDOW_TITLE}$"),
        ])
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .next()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// One pixel of a window as `#RRGGBB`, if ImageMagick could read it.
fn pixel(display: &Xvfb, window: &str, x: u32, y: u32) -> Option<String> {
    let output = display
        .command("import")
        .args([
            "-window",
            window,
            "-crop",
            &format!("1x1+{x}+{y}"),
            "-depth",
            "8",
            "txt:-",
        ])
        .output()
        .ok()?;
    // The last line reads like `0,0: (0,94,184)  #005EB8  srgb(0,94,184)`.
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last()?;
    line.split_whitespace()
        .find(|word| word.starts_with('#'))
        .map(str::to_owned)
}

/// Saves a screenshot of the whole display into `<workspace>/artifacts/` and says where
/// (or why not): it is for people reading a failure, so it never fails the test itself.
fn screenshot(display: &Xvfb, name: &str) -> String {
    let dir = wardcheck_tests::workspace_root().join("artifacts");
    let path = dir.join(name);
    let saved = fs::create_dir_all(&dir).is_ok()
        && display
            .command("import")
            .args(["-window", "root"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
    if saved {
        path.display().to_string()
    } else {
        format!("could not save {}", path.display())
    }
}

/// A child process in a process group of its own, so that stopping it also stops whatever
/// it started (WebKit's web and network processes). Dropping it stops it.
#[derive(Debug)]
struct Group {
    name: &'static str,
    child: Child,
    stopped: Option<Stopped>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// It had already exited on its own.
    Before(ExitStatus),
    /// SIGTERM stopped it and everything in its group.
    OnTerm(ExitStatus),
    /// Something was still running after SIGTERM and the grace period: SIGKILL.
    Killed,
}

impl Group {
    fn spawn(name: &'static str, mut command: Command) -> Group {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Group {
            name,
            child,
            stopped: None,
        }
    }

    fn pgid(&self) -> Pid {
        Pid::from_child(&self.child)
    }

    /// The exit status, if the group's leader has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name))
    }

    /// SIGTERM to the group, wait for the leader and every member to go, SIGKILL after
    /// the grace period. Idempotent.
    fn stop(&mut self) -> Stopped {
        if let Some(stopped) = self.stopped {
            return stopped;
        }
        let stopped = if let Some(status) = self.exited() {
            // The leader is gone; still clear out anything it left in its group.
            self.stop_members();
            Stopped::Before(status)
        } else if self.stop_members() {
            match self.child.try_wait() {
                Ok(Some(status)) => Stopped::OnTerm(status),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    Stopped::Killed
                }
            }
        } else {
            let _ = self.child.wait();
            Stopped::Killed
        };
        self.stopped = Some(stopped);
        stopped
    }

    /// SIGTERM to the whole group, reaping the leader as it exits; true when the group
    /// emptied within the grace period, false when SIGKILL was needed.
    fn stop_members(&mut self) -> bool {
        let pgid = self.pgid();
        if kill_process_group(pgid, Signal::TERM).is_err() {
            return true; // no process left in the group
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            // Reap the leader, or it lingers as a zombie and the group never looks empty.
            let _ = self.child.try_wait();
            if test_kill_process_group(pgid).is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = kill_process_group(pgid, Signal::KILL);
        false
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}
