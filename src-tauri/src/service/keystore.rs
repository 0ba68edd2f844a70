//! Where the app keeps its two secrets: the local store's key and the device token.
//!
//! - **The OS keychain** ([`Keystore::os`]): Windows Credential Manager, the macOS
//!   Keychain, or the Secret Service on Linux (GNOME Keyring, KWallet), through the
//!   `keyring` crate. This is the only keystore a real installation uses.
//! - **A test keystore** ([`Keystore::test_dir`]): two files (mode 0600) in a folder
//!   named by `WARDCHECK_TEST_KEYSTORE`. Only for tests and CI machines, which have no
//!   keychain; the UI shows a badge when it is in use.
//!
//! The store's key is 32 random bytes made on first run. If the store file already
//! exists but the keychain has no key for it, no new key is made: the old data could
//! never be opened with it, and overwriting would lose the way back (a restored
//! keychain). When no keychain answers at all, the app opens no store: it never keeps
//! data unencrypted, nor a key beside the data it protects.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngExt;
use serde::Serialize;
use wardcheck_core::store::StoreKey;

/// Whether this build honours [`TEST_KEYSTORE_ENV`]: debug builds (tests), and builds
/// made with the `test-keystore` feature (the start-up benchmark's, on a machine with no
/// keychain). Release builds as shipped do not.
pub const TEST_KEYSTORE_ALLOWED: bool = cfg!(any(debug_assertions, feature = "test-keystore"));

/// The environment variable that selects the test keystore (a folder).
pub const TEST_KEYSTORE_ENV: &str = "WARDCHECK_TEST_KEYSTORE";
/// The keychain service name the app's entries are filed under.
pub const KEYCHAIN_SERVICE: &str = "uk.wardcheck.app";
const STORE_KEY: &str = "store-key";
const DEVICE_TOKEN: &str = "device-token";

/// Which keystore is in use, as `AppStatus.keystore` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeystoreKind {
    Os,
    Test,
    Unavailable,
}

/// Why a secret could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoreError {
    /// No keychain answered, or it refused access.
    #[error("{0}")]
    Unavailable(String),
    /// The store exists but its key is not in the keychain.
    #[error(
        "the key that unlocks this device's Wardcheck data is missing from the keychain; \
         restore the keychain, or move the data folder {0} aside to start afresh"
    )]
    KeyMissing(String),
    /// A stored secret is not what the app wrote.
    #[error("the keychain entry {0:?} is damaged")]
    Damaged(&'static str),
}

/// A place to keep named secrets.
pub trait SecretBackend: Send + Sync + fmt::Debug {
    /// The secret, or `None` when there is no entry.
    fn get(&self, name: &'static str) -> Result<Option<Vec<u8>>, KeystoreError>;
    fn set(&self, name: &'static str, secret: &[u8]) -> Result<(), KeystoreError>;
    /// Removes the entry; no entry is not an error.
    fn delete(&self, name: &'static str) -> Result<(), KeystoreError>;
}

/// The keystore in use, and its kind.
#[derive(Debug)]
pub struct Keystore {
    kind: KeystoreKind,
    backend: Box<dyn SecretBackend>,
}

/// Which keystore to use, chosen once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoreChoice {
    Os,
    /// The test-only keystore in this folder.
    TestDir(PathBuf),
}

impl KeystoreChoice {
    /// `WARDCHECK_TEST_KEYSTORE=<folder>` selects the test keystore, in builds that allow
    /// it ([`TEST_KEYSTORE_ALLOWED`]); otherwise the OS keychain.
    pub fn from_env() -> Self {
        Self::choose(std::env::var_os(TEST_KEYSTORE_ENV), TEST_KEYSTORE_ALLOWED)
    }

    /// The choice for the variable's value `given` in a build that does (or does not)
    /// allow the test keystore. A release build refuses it: the variable is ignored
    /// (said in the log) and the OS keychain is used, so that no one can have an installed
    /// app keep its key in a file beside the data it protects.
    pub fn choose(given: Option<std::ffi::OsString>, allowed: bool) -> Self {
        match given {
            Some(dir) if !dir.is_empty() && allowed => KeystoreChoice::TestDir(PathBuf::from(dir)),
            Some(dir) if !dir.is_empty() => {
                tracing::warn!(
                    "{TEST_KEYSTORE_ENV} is set, but this is a release build: the test keystore \
                     is refused and the OS keychain is used"
                );
                KeystoreChoice::Os
            }
            _ => KeystoreChoice::Os,
        }
    }

    pub fn open(&self) -> Keystore {
        match self {
            KeystoreChoice::Os => Keystore::os(),
            KeystoreChoice::TestDir(dir) => Keystore::test_dir(dir),
        }
    }
}

impl Keystore {
    /// The OS keychain.
    pub fn os() -> Self {
        Keystore {
            kind: KeystoreKind::Os,
            backend: Box::new(OsKeychain),
        }
    }

    /// The test-only keystore: files in `dir` (created, mode 0700; files 0600).
    pub fn test_dir(dir: &Path) -> Self {
        Keystore {
            kind: KeystoreKind::Test,
            backend: Box::new(FileKeystore {
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Any backend, e.g. one that fails, for tests of what the app does without one.
    pub fn with_backend(kind: KeystoreKind, backend: Box<dyn SecretBackend>) -> Self {
        Keystore { kind, backend }
    }

    pub fn kind(&self) -> KeystoreKind {
        self.kind
    }

    /// The key of the store at `store_path`: the one kept, or a new one when there is
    /// neither a key nor a store yet.
    pub fn store_key(&self, store_path: &Path) -> Result<StoreKey, KeystoreError> {
        match self.backend.get(STORE_KEY)? {
            Some(bytes) => {
                let bytes: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeystoreError::Damaged(STORE_KEY))?;
                Ok(StoreKey::from_bytes(bytes))
            }
            None if store_path.exists() => Err(KeystoreError::KeyMissing(
                store_path
                    .parent()
                    .unwrap_or(store_path)
                    .display()
                    .to_string(),
            )),
            None => {
                let bytes: [u8; 32] = rand::rng().random();
                self.backend.set(STORE_KEY, &bytes)?;
                // Read back: a keychain that accepts a write and then loses it would
                // leave a store nobody can open.
                match self.backend.get(STORE_KEY)? {
                    Some(back) if back == bytes => Ok(StoreKey::from_bytes(bytes)),
                    _ => Err(KeystoreError::Unavailable(
                        "the keychain did not keep the key written to it".into(),
                    )),
                }
            }
        }
    }

    /// The device token, if one is kept.
    pub fn token(&self) -> Result<Option<String>, KeystoreError> {
        match self.backend.get(DEVICE_TOKEN)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| KeystoreError::Damaged(DEVICE_TOKEN)),
        }
    }

    pub fn set_token(&self, token: &str) -> Result<(), KeystoreError> {
        self.backend.set(DEVICE_TOKEN, token.as_bytes())
    }

    pub fn delete_token(&self) -> Result<(), KeystoreError> {
        self.backend.delete(DEVICE_TOKEN)
    }

    /// Deletes the store's key: only with the store itself (a wipe).
    pub fn delete_store_key(&self) -> Result<(), KeystoreError> {
        self.backend.delete(STORE_KEY)
    }
}

/// The OS keychain through `keyring`.
#[derive(Debug)]
struct OsKeychain;

fn keychain_error(e: keyring::Error) -> KeystoreError {
    KeystoreError::Unavailable(format!(
        "No keychain is available to keep Wardcheck's encryption key ({e}). On Linux \
         Wardcheck needs a Secret Service such as GNOME Keyring or KWallet running and \
         unlocked in your session. Your data stays encrypted and is not opened until then."
    ))
}

impl OsKeychain {
    fn entry(name: &str) -> Result<keyring::Entry, KeystoreError> {
        keyring::Entry::new(KEYCHAIN_SERVICE, name).map_err(keychain_error)
    }
}

impl SecretBackend for OsKeychain {
    fn get(&self, name: &'static str) -> Result<Option<Vec<u8>>, KeystoreError> {
        match Self::entry(name)?.get_secret() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn set(&self, name: &'static str, secret: &[u8]) -> Result<(), KeystoreError> {
        Self::entry(name)?
            .set_secret(secret)
            .map_err(keychain_error)
    }

    fn delete(&self, name: &'static str) -> Result<(), KeystoreError> {
        match Self::entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

/// Test only: each secret in a file of its own, readable by its owner alone.
#[derive(Debug)]
struct FileKeystore {
    dir: PathBuf,
}

impl FileKeystore {
    fn fail(&self, what: &str, e: std::io::Error) -> KeystoreError {
        KeystoreError::Unavailable(format!(
            "the test keystore in {} cannot be {what}: {e}",
            self.dir.display()
        ))
    }
}

impl SecretBackend for FileKeystore {
    fn get(&self, name: &'static str) -> Result<Option<Vec<u8>>, KeystoreError> {
        match fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fail("read", e)),
        }
    }

    fn set(&self, name: &'static str, secret: &[u8]) -> Result<(), KeystoreError> {
        create_private_dir(&self.dir).map_err(|e| self.fail("created", e))?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let write = || -> std::io::Result<()> {
            let mut file = private_file(&tmp)?;
            file.write_all(secret)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| self.fail("written", e))
    }

    fn delete(&self, name: &'static str) -> Result<(), KeystoreError> {
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail("written", e)),
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_build_refuses_the_test_keystore() {
        let dir = Some(std::ffi::OsString::from("/tmp/keys"));
        assert_eq!(
            KeystoreChoice::choose(dir.clone(), true),
            KeystoreChoice::TestDir(PathBuf::from("/tmp/keys"))
        );
        assert_eq!(KeystoreChoice::choose(dir, false), KeystoreChoice::Os);
        assert_eq!(
            KeystoreChoice::choose(Some("".into()), true),
            KeystoreChoice::Os
        );
        assert_eq!(KeystoreChoice::choose(None, true), KeystoreChoice::Os);
    }

    #[test]
    fn test_keystore_makes_a_key_once_and_keeps_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let store = dir.path().join("data/wardcheck.db");
        let ks = Keystore::test_dir(&keys);
        let first = ks.store_key(&store).unwrap();
        let again = Keystore::test_dir(&keys).store_key(&store).unwrap();
        assert_eq!(first, again, "the key made on first run is the one kept");
        assert_eq!(ks.token().unwrap(), None);
        ks.set_token("abc").unwrap();
        assert_eq!(ks.token().unwrap().as_deref(), Some("abc"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for name in [STORE_KEY, DEVICE_TOKEN] {
                let mode = fs::metadata(keys.join(name)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{name} is readable by its owner only");
            }
        }
        ks.delete_token().unwrap();
        ks.delete_token().unwrap();
        assert_eq!(ks.token().unwrap(), None);
    }

    #[test]
    fn no_new_key_for_an_existing_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("wardcheck.db");
        fs::write(&store, b"an old store").unwrap();
        let ks = Keystore::test_dir(&dir.path().join("keys"));
        assert!(matches!(
            ks.store_key(&store),
            Err(KeystoreError::KeyMissing(_))
        ));
        assert!(
            !dir.path().join("keys").join(STORE_KEY).exists(),
            "no key was written"
        );
    }
}
