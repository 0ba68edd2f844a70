//! Signed app packages for the update tests, made with the real tools: keys and
//! signatures by the Tauri CLI from npm (`ui/node_modules/.bin/tauri signer`), packages by
//! `dpkg-deb` or `scripts/package`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Tauri CLI `scripts/setup` installs (npm ci in `ui/`).
pub fn tauri_cli() -> PathBuf {
    let cli = crate::workspace_root().join("ui/node_modules/.bin/tauri");
    assert!(
        cli.is_file(),
        "{} is missing: run scripts/setup (npm ci in ui/)",
        cli.display()
    );
    cli
}

/// A minisign key pair made by `tauri signer generate`, with no password.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The private key's file.
    pub private: PathBuf,
    /// The public key's file (`.pub`): what `plugins.updater.pubkey` holds.
    pub public: PathBuf,
}

impl Keys {
    pub fn generate(dir: &Path, name: &str) -> Keys {
        let private = dir.join(format!("{name}.key"));
        let out = Command::new(tauri_cli())
            .args([
                "signer",
                "generate",
                "--ci",
                "--password",
                "",
                "--write-keys",
            ])
            .arg(&private)
            .output()
            .expect("the Tauri CLI runs");
        assert!(
            out.status.success(),
            "tauri signer generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = dir.join(format!("{name}.key.pub"));
        assert!(public.is_file(), "the public key {}", public.display());
        Keys { private, public }
    }

    /// The public key's text (base64), as tauri.conf.json holds it.
    pub fn public_text(&self) -> String {
        std::fs::read_to_string(&self.public)
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Signs `file` bound to `version` (`file.sig`); returns the signature's path.
    pub fn sign(&self, file: &Path, version: &str) -> PathBuf {
        let out = Command::new(tauri_cli())
            .args(["signer", "sign", "--password", "", "--app-version", version])
            .arg("--private-key-path")
            .arg(&self.private)
            .arg(file)
            .env_remove("TAURI_SIGNING_PRIVATE_KEY")
            .output()
            .expect("the Tauri CLI runs");
        assert!(
            out.status.success(),
            "tauri signer sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut sig = file.as_os_str().to_owned();
        sig.push(".sig");
        PathBuf::from(sig)
    }
}

/// A small real Debian package (`dpkg-deb --build`) named `name` at `version`, in `dir`.
pub fn tiny_deb(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join(format!("{name}-{version}-root"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: Wardcheck tests <tests@example.invalid>\n\
             Description: a package made by the update tests\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("usr/share/doc").join(name).join("README"),
        format!("{name} {version}\n"),
    )
    .unwrap();
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb runs");
    assert!(
        out.status.success(),
        "dpkg-deb --build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}
