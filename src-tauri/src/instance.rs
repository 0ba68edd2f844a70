//! One app per data folder (issue 15, item 6): a second start hands over to the first
//! (which shows its window) and exits, instead of opening the same store and starting a
//! second sync worker on it.
//!
//! The first start holds an exclusive lock on `instance.lock` in the data folder for as
//! long as it runs (the OS lets it go when the process ends, however it ends), and
//! listens on a loopback port for "show" requests. It writes the port and a random
//! token into `instance.lock`; a second start, refused the lock, reads them and asks for
//! the window with the token (so that no other local program can make the app do
//! anything but show itself, and not even that without reading the user's data folder).
//!
//! Written here rather than with tauri-plugin-single-instance: on Linux that plugin needs
//! a D-Bus session bus (absent on a kiosk tablet's or a test's bare X display) and
//! brings zbus, a second D-Bus library beside the libdbus the keychain uses; its
//! Windows and Linux paths differ. This is one path on every platform: std's file lock
//! (which the OS releases when the process ends) and a loopback socket.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::RngExt;

/// The lock file in the data folder (locked, never read: on Windows a locked file
/// cannot be read by another process).
pub const LOCK_FILE: &str = "instance.lock";
/// Where the first start says how to reach it: `PORT TOKEN`.
pub const PORT_FILE: &str = "instance.port";
/// How long a second start waits for the first to answer (and a first start for a
/// request to arrive whole).
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a second start waits for the first to write where it listens (two starts
/// at the same moment).
const PORT_FILE_WAIT: Duration = Duration::from_secs(3);
/// The most a request may be (a word and a token).
const MAX_REQUEST: u64 = 256;

/// This start's place.
#[derive(Debug)]
pub enum Claim {
    /// The first: it holds the lock, and `listener` hears later starts.
    First(First),
    /// Another start runs on this data folder; it showed its window (`Ok`), or could
    /// not be reached (`Err`, why).
    Running(Result<(), String>),
}

/// The first start's lock and listener.
#[derive(Debug)]
pub struct First {
    /// Held open (and so locked) for as long as the app runs.
    _lock: File,
    listener: TcpListener,
    token: String,
}

impl First {
    /// Calls `show` for each later start that asks with the token, and tells it so (a
    /// thread of its own for the app's life; each request on its own thread, with a
    /// deadline, so that a slow or silent local connection holds up nobody).
    pub fn serve(self, show: impl Fn() + Send + Sync + 'static) {
        let show = std::sync::Arc::new(show);
        std::thread::Builder::new()
            .name("wardcheck-instance".into())
            .spawn(move || {
                let _lock = self._lock;
                for stream in self.listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (token, show) = (self.token.clone(), show.clone());
                    let _ = std::thread::Builder::new()
                        .name("wardcheck-instance-request".into())
                        .spawn(move || {
                            if let Some(mut stream) = asked_to_show(stream, &token) {
                                tracing::info!("another start of the app asked for the window");
                                show();
                                let _ = stream.write_all(b"ok\n");
                            }
                        });
                }
            })
            .expect("a thread for the instance listener");
    }
}

/// The stream back, if it carried `show TOKEN` with the right token within the deadline.
fn asked_to_show(stream: TcpStream, token: &str) -> Option<TcpStream> {
    let deadline = Instant::now() + HANDOVER_TIMEOUT;
    let _ = stream.set_read_timeout(Some(HANDOVER_TIMEOUT));
    let reply = stream.try_clone().ok()?;
    let mut reader = BufReader::new(stream.take(MAX_REQUEST));
    let mut line = String::new();
    // read_line returns once a whole line (or the cap) is in; a trickle that outlasts
    // the deadline is dropped.
    reader.read_line(&mut line).ok()?;
    (Instant::now() <= deadline && line.trim_end() == format!("show {token}")).then_some(reply)
}

/// Opens `path` for reading and writing, made readable by this user only.
fn private_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Claims `data_dir` for this start, or hands over to the start that holds it.
pub fn claim(data_dir: &Path) -> std::io::Result<Claim> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(data_dir)?;
    let lock = private_file(&data_dir.join(LOCK_FILE), false)?;
    match lock.try_lock() {
        Ok(()) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            let token: String = {
                let bytes: [u8; 16] = rand::rng().random();
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            };
            let mut port = private_file(&data_dir.join(PORT_FILE), true)?;
            writeln!(port, "{} {token}", listener.local_addr()?.port())?;
            port.sync_all()?;
            Ok(Claim::First(First {
                _lock: lock,
                listener,
                token,
            }))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(Claim::Running(hand_over(data_dir))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Asks the start holding `data_dir` to show its window, and waits for its "ok".
fn hand_over(data_dir: &Path) -> Result<(), String> {
    // The first start writes where it listens right after it takes the lock: two
    // starts at the same moment wait for it a little.
    let deadline = Instant::now() + PORT_FILE_WAIT;
    let text = loop {
        let text = std::fs::read_to_string(data_dir.join(PORT_FILE)).unwrap_or_default();
        if text.ends_with('\n') || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (port, token) = text
        .trim()
        .split_once(' ')
        .ok_or("the running app has not said where it listens")?;
    let port: u16 = port.parse().map_err(|_| "its port file is damaged")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, HANDOVER_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    writeln!(s, "show {token}").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(s.take(16))
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.trim_end() == "ok" {
        Ok(())
    } else {
        Err("the running app did not answer".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_second_claim_hands_over_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path()).unwrap() else {
            panic!("the first claim holds the folder");
        };
        let (tx, rx) = mpsc::channel();
        first.serve(move || {
            let _ = tx.send(());
        });
        match claim(dir.path()).unwrap() {
            Claim::Running(Ok(())) => {}
            other => panic!("a second claim hands over: {other:?}"),
        }
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the first was asked to show its window");
        // Another folder is another app.
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(claim(other.path()).unwrap(), Claim::First(_)));
    }

    #[test]
    fn a_request_without_the_token_shows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path()).unwrap() else {
            panic!("first");
        };
        let port = first.listener.local_addr().unwrap().port();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [LOCK_FILE, PORT_FILE] {
                let mode = std::fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{f} is this user's only");
            }
        }
        let (tx, rx) = mpsc::channel();
        first.serve(move || {
            let _ = tx.send(());
        });
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        writeln!(s, "show 00000000").unwrap();
        drop(s);
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
    }
}
