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
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use rand::RngExt;

/// The lock file in the data folder.
pub const LOCK_FILE: &str = "instance.lock";
/// How long a second start waits for the first to answer.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request may be (a token and a word).
const MAX_REQUEST: u64 = 256;

/// This start's place.
#[derive(Debug)]
pub enum Claim {
    /// The first: it holds the lock, and `listener` hears later starts.
    First(First),
    /// Another start runs on this data folder; it was asked to show its window
    /// (`Ok`), or could not be reached (`Err`, why).
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
    /// Calls `show` for each later start that asks (a thread of its own, for the app's
    /// life).
    pub fn serve(self, show: impl Fn() + Send + 'static) {
        std::thread::Builder::new()
            .name("wardcheck-instance".into())
            .spawn(move || {
                let _lock = self._lock;
                for stream in self.listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    if asked_to_show(stream, &self.token) {
                        tracing::info!("another start of the app asked for the window");
                        show();
                    }
                }
            })
            .expect("a thread for the instance listener");
    }
}

/// Whether `stream` carries `show TOKEN` with the right token.
fn asked_to_show(stream: TcpStream, token: &str) -> bool {
    let _ = stream.set_read_timeout(Some(HANDOVER_TIMEOUT));
    let mut line = String::new();
    let read = BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line);
    read.is_ok() && line.trim_end() == format!("show {token}")
}

/// Claims `data_dir` for this start, or hands over to the start that holds it.
pub fn claim(data_dir: &Path) -> std::io::Result<Claim> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            let token: String = {
                let bytes: [u8; 16] = rand::rng().random();
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            };
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{} {token}", listener.local_addr()?.port())?;
            file.sync_all()?;
            Ok(Claim::First(First {
                _lock: file,
                listener,
                token,
            }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            Ok(Claim::Running(hand_over(&text)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Asks the start whose lock file says `text` (`PORT TOKEN`) to show its window.
fn hand_over(text: &str) -> Result<(), String> {
    let (port, token) = text
        .trim()
        .split_once(' ')
        .ok_or("the running app's lock file says nothing yet")?;
    let port: u16 = port.parse().map_err(|_| "the lock file is damaged")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, HANDOVER_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    writeln!(s, "show {token}").map_err(|e| e.to_string())
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
