//! A child process in a process group of its own, so that stopping it also stops whatever
//! it started: the app's WebKit web and network processes, or tauri-driver's
//! WebKitWebDriver and the app it launched. Stopping is SIGTERM to the whole group, a
//! grace period, then SIGKILL; never SIGKILL first (design/BUILD.md: tauri-driver killed
//! hard leaves WebKitWebDriver running with stdout open, and CI hangs on it).
//!
//! Also a small reader of `/proc`, to find a group's members, a process's descendants
//! and their memory.

use std::fs;
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// After SIGTERM, how long a group gets before SIGKILL. WebKit's helpers exit within a
/// second or two of their parent; this only matters when something hangs.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A child process leading its own process group. Dropping it stops it.
#[derive(Debug)]
pub struct ProcessGroup {
    name: String,
    pub child: Child,
    stopped: Option<Stopped>,
}

/// How a [`ProcessGroup`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The leader had already exited on its own.
    Before(ExitStatus),
    /// SIGTERM stopped it and everything in its group.
    OnTerm(ExitStatus),
    /// Something was still running after SIGTERM and the grace period: SIGKILL.
    Killed,
}

impl ProcessGroup {
    /// Starts `command` as the leader of a new process group; panics if it cannot start.
    pub fn spawn(name: &str, mut command: Command) -> ProcessGroup {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ProcessGroup {
            name: name.to_owned(),
            child,
            stopped: None,
        }
    }

    /// The group's id (the leader's pid).
    pub fn pgid(&self) -> Pid {
        Pid::from_child(&self.child)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the group's leader has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name))
    }

    /// SIGTERM to the group, wait for the leader and every member to go, SIGKILL after
    /// [`STOP_TIMEOUT`]. Idempotent.
    pub fn stop(&mut self) -> Stopped {
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
        // Give the kernel a moment to take them down, so callers see an empty group.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && test_kill_process_group(pgid).is_ok() {
            let _ = self.child.try_wait();
            thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One process as `/proc/PID/stat` and `/proc/PID/exe` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// The short command name (`comm`), e.g. `WebKitWebProces`.
    pub comm: String,
    /// The executable's path, when readable.
    pub exe: Option<std::path::PathBuf>,
    /// Zombies (`Z`) have exited but are not reaped yet.
    pub state: char,
}

/// Every process visible in `/proc` right now (those that vanish while reading are
/// skipped).
pub fn processes() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_info)
        .collect()
}

fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses, so split
    // at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        comm,
        exe: fs::read_link(format!("/proc/{pid}/exe")).ok(),
        state,
    })
}

/// The live (not zombie) members of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.pgid == pgid && p.state != 'Z')
        .collect()
}

/// `pid` and every live process descended from it.
pub fn with_descendants(pid: u32) -> Vec<ProcInfo> {
    let all = processes();
    let mut found: Vec<ProcInfo> = all.iter().filter(|p| p.pid == pid).cloned().collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].pid;
        found.extend(all.iter().filter(|p| p.ppid == parent).cloned());
        i += 1;
    }
    found.retain(|p| p.state != 'Z');
    found
}

/// A process's resident memory, from `/proc/PID/smaps_rollup`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set: counts shared pages in full in every process that maps them.
    pub rss_kib: u64,
    /// Proportional set: shared pages divided among the processes sharing them, so a
    /// sum over processes counts each page once.
    pub pss_kib: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, o: Memory) -> Memory {
        Memory {
            rss_kib: self.rss_kib + o.rss_kib,
            pss_kib: self.pss_kib + o.pss_kib,
        }
    }
}

/// The memory of `pid`, if its `smaps_rollup` is readable.
pub fn memory(pid: u32) -> Option<Memory> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("Rss:")?,
        pss_kib: field("Pss:")?,
    })
}

/// The value of `name` in a process's environment, if readable and set.
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/environ")).ok()?;
    bytes.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        let (key, value) = entry.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}
