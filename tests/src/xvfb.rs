//! A private virtual X display for tests that open the field app's window, and
//! screenshots of it into `<workspace>/artifacts/`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::process_group::{ProcessGroup, Stopped};

/// Xvfb announces its display number at once; this long means it is stuck.
const XVFB_TIMEOUT: Duration = Duration::from_secs(20);
/// The screen: larger than the app's 1024 x 768 window, which has no title bar (there is
/// no window manager).
const SCREEN: &str = "1280x800x24";

/// A private X display, stopped when dropped.
#[derive(Debug)]
pub struct Xvfb {
    /// e.g. `:99`.
    pub name: String,
    server: ProcessGroup,
}

impl Xvfb {
    /// Starts Xvfb on the first free display; it picks the number itself and writes it to
    /// stdout (`-displayfd 1`), so two test runs never race for the same one. Its log
    /// goes to `scratch/xvfb.log`.
    pub fn start(scratch: &Path) -> Xvfb {
        let log = File::create(scratch.join("xvfb.log")).expect("creating Xvfb's log file");
        let mut command = Command::new("Xvfb");
        command
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                SCREEN,
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut server = ProcessGroup::spawn("Xvfb", command);
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
            server,
        }
    }

    /// A command that runs on this display, with no input and no error output.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("DISPLAY", &self.name)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Saves a screenshot of the whole display as `artifacts/NAME` and says where (or
    /// why not): it is for people reading a failure, so it never fails a test itself.
    pub fn screenshot(&self, name: &str) -> String {
        screenshot_of(&self.name, name)
    }

    /// Stops the X server (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) -> Stopped {
        self.server.stop()
    }
}

/// Saves a screenshot of X display `display` (e.g. `:99`) as `artifacts/NAME` with
/// ImageMagick's `import`, and says where (or why not). Never fails.
pub fn screenshot_of(display: &str, name: &str) -> String {
    let path = artifact_path(name);
    let saved = path.parent().is_some_and(|d| fs::create_dir_all(d).is_ok())
        && Command::new("import")
            .env("DISPLAY", display)
            .args(["-window", "root"])
            .arg(&path)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if saved {
        path.display().to_string()
    } else {
        format!("could not save {}", path.display())
    }
}

/// `<workspace>/artifacts/NAME`: where tests keep screenshots for people to look at.
pub fn artifact_path(name: &str) -> PathBuf {
    crate::workspace_root().join("artifacts").join(name)
}

/// Fails early, with the fix, when a program a test drives is missing.
pub fn require_tools(test: &str, tools: &[(&str, &str)]) {
    for (tool, package) in tools {
        assert!(
            on_path(tool).is_some(),
            "{tool} is not installed: the {test} needs it (Debian package {package}); \
             run scripts/setup, which installs it"
        );
    }
}

/// The first `program` on `PATH`, if any.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
