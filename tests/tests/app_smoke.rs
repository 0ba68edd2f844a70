//! The field app starts: on a private virtual display (Xvfb) its window appears, its
//! page (ui/dist-field) renders (the header turns NHS blue), the process stays up, and it
//! stops cleanly with none of its processes (the app and WebKit's helpers) left behind.
//!
//! Needs Xvfb, xdotool and ImageMagick's `import`; `scripts/setup` installs them.
//! Every wait is a polling loop with a generous deadline, so a slow machine makes the test
//! slower, not flaky. A screenshot of the app lands in `artifacts/app-smoke.png`.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wardcheck_tests::process_group::{ProcessGroup as Group, STOP_TIMEOUT, Stopped};
use wardcheck_tests::xvfb::{Xvfb, require_tools};

/// A cold WebKit start while the rest of the suite compiles and runs on 2 cores can take
/// tens of seconds; only a hang should hit this.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(120);
/// From window to rendered page (the web process starts and loads the field app).
const RENDER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the app must keep running once rendered, to catch a crash right after load
/// (the page calls the `app_status` command as it loads).
const SETTLE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(200);
/// The header's background in the field app (NHS blue, nhsuk-frontend), as ImageMagick
/// prints an 8-bit pixel.
const HEADER_BLUE: &str = "#005EB8";
const WINDOW_TITLE: &str = "Wardcheck";

#[test]
fn app_starts_renders_and_stops_cleanly() {
    require_tools(
        "app smoke test",
        &[
            ("Xvfb", "xvfb"),
            ("xdotool", "xdotool"),
            ("import", "imagemagick"),
        ],
    );
    let app_path = build_app();
    let scratch = tempfile::tempdir().expect("a temporary folder for the app's data and logs");
    let display = Xvfb::start(scratch.path());

    let log_path = scratch.path().join("app.log");
    let log = File::create(&log_path).expect("creating the app's log file");
    let mut command = app_command(&app_path, &display.name, scratch.path());
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cloning the log handle"))
        .stderr(log);
    let mut app = Group::spawn("wardcheck-app", command);
    let failed = |app: &mut Group, what: &str| -> ! {
        let shot = display.screenshot("app-smoke-failure.png");
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
    display.screenshot("app-smoke.png");

    // 3b. A second start on the same data folder hands over to the first and ends at
    //     once: it opens no store and starts no second sync worker. The first runs on.
    let second_log = scratch.path().join("second.log");
    let mut second = app_command(&app_path, &display.name, scratch.path());
    second
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&second_log).expect("the second start's log"));
    let mut second = Group::spawn("wardcheck-app (second)", second);
    let deadline = Instant::now() + WINDOW_TIMEOUT;
    let ended = loop {
        if let Some(status) = second.exited() {
            break status;
        }
        if Instant::now() > deadline {
            second.stop();
            failed(&mut app, "a second start did not end");
        }
        thread::sleep(POLL);
    };
    let said = fs::read_to_string(&second_log).unwrap_or_default();
    assert!(
        ended.success(),
        "the second start ends successfully: {ended:?}\n{said}"
    );
    assert!(
        said.contains("already running") && said.contains("brought to the front"),
        "it says it handed over: {said}"
    );
    if let Some(status) = app.exited() {
        failed(
            &mut app,
            &format!("the first start exited ({status}) when a second came"),
        );
    }

    // 4. It stops on SIGTERM, and nothing of it is left running.
    let stopped = app.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "the app should stop on SIGTERM within {STOP_TIMEOUT:?} with no process left in its group; got {stopped:?}"
    );
}

/// The app on `display`, its data, settings and caches in `scratch`.
fn app_command(app_path: &std::path::Path, display: &str, scratch: &std::path::Path) -> Command {
    let mut command = Command::new(app_path);
    command
        .env("DISPLAY", display)
        // Always X11 on the private display, even on a developer's Wayland session.
        .env_remove("WAYLAND_DISPLAY")
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        // Keep WebKit's caches and the app's data out of the real home folder.
        .env("XDG_DATA_HOME", scratch.join("data"))
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        // No keychain on a test machine: the test-only keystore (README), so the app
        // opens its store and shows its sign-in page.
        .env("WARDCHECK_TEST_KEYSTORE", scratch.join("keys"));
    command
}

fn build_app() -> PathBuf {
    wardcheck_tests::workspace_binary("wardcheck-app")
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
