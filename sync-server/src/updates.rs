//! Updates of the field app (issue 15, item 4): signed packages the server keeps and
//! offers to devices in the Tauri updater's own format.
//!
//! - `wardcheck-server app-update publish` takes a package, its signature (the `.sig`
//!   file `tauri signer sign` writes) and the release's public key, and keeps the
//!   package only when the signature verifies under that key, binds exactly the version
//!   being published (the app is built with `requireSignedVersion`, so an update the
//!   server offered without it would be refused on every device anyway) and the bytes
//!   are the kind of package the platform installs. A refusal is audited; nothing is kept.
//! - `GET /api/v1/app/updates/{target}/{arch}/{bundle}/{current_version}` answers 204
//!   when the newest package for `{target}-{arch}-{bundle}` is not newer than the
//!   caller's version, else the Tauri updater's JSON (`version`, `notes`, `pub_date`,
//!   `url`, `signature`); `GET /api/v1/app/packages/{sha256}` serves the package.
//!   Signed-in devices only.
//!
//! The server checking the signature is a guard, not the trust: the app verifies the
//! signature again against the public key compiled into it (`plugins.updater.pubkey` in
//! `src-tauri/tauri.conf.json`) before it installs anything, so a server that is lied to
//! or broken into can withhold updates, never install one (docs/RELEASE.md).

use base64::Engine;
use minisign_verify::{PublicKey, Signature};

/// The largest package kept: an app package is tens of MB; the MSI with WebView2's
/// offline installer about 150 MB. (Each download holds one in memory: at most
/// [`DOWNLOADS_AT_ONCE`] at a time.)
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Package downloads served at once; the rest wait their turn.
pub const DOWNLOADS_AT_ONCE: usize = 4;
/// The largest signature file (a `.sig` is about 400 bytes of base64).
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// The longest release notes.
pub const MAX_NOTES_CHARS: usize = 4000;

/// The platforms the app is packaged for, as the updater names them:
/// `{target}-{arch}-{bundle}`.
pub const PLATFORMS: &[&str] = &[
    "linux-x86_64-deb",
    "linux-aarch64-deb",
    "linux-x86_64-appimage",
    "linux-aarch64-appimage",
    "windows-x86_64-nsis",
    "windows-x86_64-msi",
    "windows-aarch64-nsis",
    "windows-aarch64-msi",
];

/// Why a package was not kept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error(
        "unknown platform {0:?}: give TARGET-ARCH-BUNDLE, e.g. linux-x86_64-deb or windows-x86_64-msi"
    )]
    Platform(String),
    #[error("version {0:?} is not a semantic version (e.g. 0.2.0)")]
    Version(String),
    #[error("the public key cannot be read: {0}")]
    PublicKey(String),
    #[error("the signature cannot be read: {0}")]
    Signature(String),
    #[error("the signature does not verify under the public key given: {0}")]
    NotSigned(String),
    #[error(
        "the signature binds no version (sign with `tauri signer sign --app-version {0}`): the app refuses such an update"
    )]
    NoSignedVersion(String),
    #[error("the signature is for version {signed}, not {published}")]
    OtherVersion { signed: String, published: String },
    #[error("the file is not a {expected} package")]
    Kind { expected: &'static str },
    #[error("the package is {0} bytes: at most {MAX_PACKAGE_BYTES}")]
    TooLarge(u64),
    #[error("the notes are over {MAX_NOTES_CHARS} characters")]
    Notes,
    #[error(
        "the package is signed with key {new}, but the packages kept are signed with {kept}: devices trust one key; if the release key was rotated (docs/RELEASE.md), publish with --new-key"
    )]
    OtherKey { new: String, kept: String },
}

/// A parsed platform name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform(String);

impl Platform {
    pub fn parse(s: &str) -> Result<Platform, Refused> {
        if PLATFORMS.contains(&s) {
            Ok(Platform(s.to_owned()))
        } else {
            Err(Refused::Platform(s.chars().take(64).collect()))
        }
    }

    /// From the updater's `{target}`, `{arch}` and `{bundle_type}`.
    pub fn of(target: &str, arch: &str, bundle: &str) -> Result<Platform, Refused> {
        Platform::parse(&format!("{target}-{arch}-{bundle}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bundle(&self) -> &str {
        self.0.rsplit('-').next().unwrap_or_default()
    }
}

/// A semantic version (`semver`), refusing anything else.
pub fn version(s: &str) -> Result<semver::Version, Refused> {
    semver::Version::parse(s).map_err(|_| Refused::Version(s.chars().take(64).collect()))
}

/// Decodes a key or signature as the Tauri CLI writes it: base64 of minisign's two-line
/// text. (The raw two-line text is taken too.)
fn minisign_text(s: &str) -> Option<String> {
    let s = s.trim();
    if s.starts_with("untrusted comment:") {
        return Some(s.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

/// The version a signature's trusted comment binds (`version:…`, as the Tauri CLI writes
/// it), if any.
fn signed_version(trusted_comment: &str) -> Option<&str> {
    trusted_comment
        .split('\t')
        .find_map(|field| field.strip_prefix("version:"))
}

/// Whether `bytes` look like a package of `bundle`'s kind (its magic number).
fn is_kind(bundle: &str, bytes: &[u8]) -> Result<(), Refused> {
    let (expected, ok): (&'static str, bool) = match bundle {
        // An `ar` archive whose first member is `debian-binary`.
        "deb" => (
            ".deb",
            bytes.starts_with(b"!<arch>\n") && bytes.get(8..21) == Some(b"debian-binary"),
        ),
        // An ELF executable.
        "appimage" => ("AppImage", bytes.starts_with(b"\x7fELF")),
        // An OLE compound file.
        "msi" => (
            "Windows Installer (MSI)",
            bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]),
        ),
        // A Windows executable.
        "nsis" => ("Windows setup (.exe)", bytes.starts_with(b"MZ")),
        _ => ("known", false),
    };
    if ok {
        Ok(())
    } else {
        Err(Refused::Kind { expected })
    }
}

/// Checks a package before it is kept: its kind for `platform`, its size, and that
/// `signature` (the `.sig` file's text) verifies it under `public_key` (the `.pub` file's
/// text) and binds `version`. Returns the signature as the updater takes it (the `.sig`
/// file's base64, trimmed).
pub fn check(
    platform: &Platform,
    version: &semver::Version,
    package: &[u8],
    signature: &str,
    public_key: &str,
) -> Result<String, Refused> {
    if package.len() as u64 > MAX_PACKAGE_BYTES {
        return Err(Refused::TooLarge(package.len() as u64));
    }
    is_kind(platform.bundle(), package)?;
    let key_text =
        minisign_text(public_key).ok_or_else(|| Refused::PublicKey("not base64".into()))?;
    let key = PublicKey::decode(&key_text).map_err(|e| Refused::PublicKey(e.to_string()))?;
    let sig_text =
        minisign_text(signature).ok_or_else(|| Refused::Signature("not base64".into()))?;
    let sig = Signature::decode(&sig_text).map_err(|e| Refused::Signature(e.to_string()))?;
    // Legacy (non-prehashed) signatures allowed, as the app's updater allows them: the
    // server keeps exactly what a device would install.
    key.verify(package, &sig, true)
        .map_err(|e| Refused::NotSigned(e.to_string()))?;
    let signed = signed_version(sig.trusted_comment())
        .ok_or_else(|| Refused::NoSignedVersion(version.to_string()))?;
    let same = semver::Version::parse(signed.trim_start_matches('v')).is_ok_and(|v| v == *version);
    if !same {
        return Err(Refused::OtherVersion {
            signed: signed.chars().take(64).collect(),
            published: version.to_string(),
        });
    }
    // The updater takes the base64 form; a raw two-line text is stored encoded.
    let trimmed = signature.trim();
    Ok(if trimmed.starts_with("untrusted comment:") {
        base64::engine::general_purpose::STANDARD.encode(trimmed)
    } else {
        trimmed.to_owned()
    })
}

/// The id of the key that made a signature (the `.sig` file's base64 text): minisign's
/// 8-byte key id, in hex as `minisign` prints it (most significant byte first), or
/// `None` when the text is not a signature.
pub fn signing_key_id(signature: &str) -> Option<String> {
    let text = minisign_text(signature)?;
    let line = text.lines().nth(1)?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    // Two bytes of algorithm, eight of key id, 64 of signature.
    let id = blob.get(2..10)?;
    Some(id.iter().rev().map(|b| format!("{b:02X}")).collect())
}

/// Refuses a package signed with another key than every package kept (unless the key
/// was rotated on purpose): `kept` are the kept packages' signatures.
pub fn same_key<'a>(
    signature: &str,
    kept: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refused> {
    let new = signing_key_id(signature).unwrap_or_default();
    for k in kept {
        let old = signing_key_id(k).unwrap_or_default();
        if old != new {
            return Err(Refused::OtherKey { new, kept: old });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_name_their_bundle() {
        let p = Platform::of("linux", "x86_64", "deb").unwrap();
        assert_eq!(p.as_str(), "linux-x86_64-deb");
        assert_eq!(p.bundle(), "deb");
        assert!(matches!(
            Platform::of("linux", "x86_64", "snap"),
            Err(Refused::Platform(_))
        ));
        assert!(Platform::parse("windows-x86_64-msi").is_ok());
    }

    #[test]
    fn kinds_are_told_by_their_magic_numbers() {
        let deb = b"!<arch>\ndebian-binary   1342943816  0     0     100644  4         `\n2.0\n";
        assert!(is_kind("deb", deb).is_ok());
        assert!(is_kind("deb", b"!<arch>\nsomething-else").is_err());
        assert!(is_kind("appimage", b"\x7fELF\x02\x01").is_ok());
        assert!(is_kind("nsis", b"MZ\x90\0").is_ok());
        assert!(is_kind("msi", b"MZ\x90\0").is_err());
        assert!(is_kind("msi", &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0]).is_ok());
    }

    #[test]
    fn versions_are_semantic() {
        assert!(version("0.2.0").is_ok());
        assert!(version("1.0.0-rc.1").is_ok());
        assert!(matches!(version("v2"), Err(Refused::Version(_))));
        assert!(version("0.2.0").unwrap() > version("0.1.9").unwrap());
    }

    #[test]
    fn the_signed_version_is_read_from_tab_separated_fields() {
        assert_eq!(
            signed_version("timestamp:1700000000\tfile:app.deb\tversion:1.2.3"),
            Some("1.2.3")
        );
        assert_eq!(signed_version("timestamp:1700000000\tfile:app.deb"), None);
    }

    /// A signature made by `tauri signer sign` with a throwaway key whose `.pub` reads
    /// "minisign public key: 99B9D970E2A656B5".
    const SIG: &str = "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVTMVZxYmljTm01bWZaeXFnMzg4b2J6UFdlaVN4c1hIUmNHL2gwSGNpOS9lYlFLRURKaUJWWHpadnpEeUVJQUhKZGJnNnRLTHVFS1RMb0oxMmZEQUV5V3lTSTN3UVBNRFE0PQp0cnVzdGVkIGNvbW1lbnQ6IHRpbWVzdGFtcDoxNzk2NjU1NTI5CWZpbGU6Zi5iaW4JdmVyc2lvbjowLjEuMQo2Z3VEUnVJeGdXcE4wOXVDekJaQkJxaXVsb2JKcVRSeWZwbVZscHVPQWtycXgvdzd6K1Z1ejkxbCtPNjZMZFAydWRDZTh2ajNwNmdLZkRVTzVlS0hBdz09Cg==";

    #[test]
    fn a_signatures_key_id_is_the_one_its_public_key_names() {
        assert_eq!(signing_key_id(SIG).as_deref(), Some("99B9D970E2A656B5"));
        assert_eq!(signing_key_id("not a signature"), None);
        assert!(same_key(SIG, [SIG, SIG]).is_ok());
        assert!(same_key(SIG, []).is_ok());
        assert!(matches!(
            same_key(SIG, ["c2ln"]),
            Err(Refused::OtherKey { .. })
        ));
    }

    #[test]
    fn garbage_keys_and_signatures_are_refused_with_what_is_wrong() {
        let p = Platform::parse("linux-x86_64-deb").unwrap();
        let v = version("0.2.0").unwrap();
        let deb = b"!<arch>\ndebian-binary   ";
        assert!(matches!(
            check(&p, &v, deb, "c2ln", "not base64 !"),
            Err(Refused::PublicKey(_))
        ));
        assert!(matches!(
            check(&p, &v, b"PK\x03\x04", "c2ln", "a2V5"),
            Err(Refused::Kind { .. })
        ));
    }
}
