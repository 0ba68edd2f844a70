//! The field app's Debian package, installed and updated (issue 15, items 2 and 4).
//!
//! `scripts/package --from-debug-build` makes the `.deb` with the Tauri CLI's bundler
//! from the debug build the suite already made (a release build of the app would be a
//! second compile of Tauri and WebKit's bindings on 2 cores; `scripts/package` alone
//! makes the release package with the same configuration). The test then:
//!
//! 1. reads the package: it depends on gnome-keyring (the Secret Service the app keeps
//!    its store key in), carries a `.desktop` entry and icons, and installs the program
//!    in /usr/bin;
//! 2. installs it with `dpkg -i`, starts the **installed** program under Xvfb through
//!    WebDriver, signs in to a local server and syncs (the assigned inspection arrives,
//!    "Synced");
//! 3. updates it from the server: a package published under another key (the server
//!    keeps it: it was given that key) is offered, and the app refuses it, its signature
//!    not holding under the app's key, and installs nothing; a newer package signed with
//!    the app's key is offered, verified and installed through the updater's `sudo dpkg
//!    -i`, after which dpkg holds the new version.
//!
//! The app's key is a test key (`WARDCHECK_TEST_UPDATE_PUBKEY`, honoured by debug builds
//! only). Installing needs root: CI runs as root; elsewhere the test says so and stops
//! unless `WARDCHECK_REQUIRE_PACKAGE_TEST` is set (`scripts/test` sets it), when it fails
//! instead. It runs once, not again in the PostgreSQL pass. It removes the package at
//! the end, however it ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use wardcheck_tests::app_driver::{self, App, AppDriver, AppHome, Steps, poll, tid};
use wardcheck_tests::server::{PASSWORD, Server};
use wardcheck_tests::updates::Keys;

/// From sign-in to the assigned inspection listed and "Synced".
const FIRST_SYNC_TIMEOUT: Duration = Duration::from_secs(180);
/// Download, check and `dpkg -i` of a package of some 30 MB.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);

/// Removes the package when the test ends, however it ends.
struct Installed(String);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", &self.0]).output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `scripts/package --from-debug-build [--version V]`: the `.deb` it made.
fn package(version: Option<&str>) -> PathBuf {
    let root = wardcheck_tests::workspace_root();
    let mut cmd = Command::new(root.join("scripts/package"));
    cmd.arg("--from-debug-build");
    if let Some(v) = version {
        cmd.args(["--version", v]);
    }
    let out = run(&mut cmd);
    // The last lines: `SHA-256  PATH` of each package.
    let path = out
        .lines()
        .rev()
        .find_map(|l| l.split_once("  ").map(|(_, p)| p.trim().to_owned()))
        .filter(|p| p.ends_with(".deb"))
        .unwrap_or_else(|| panic!("scripts/package named no .deb:\n{out}"));
    let path = root.join(path);
    assert!(path.is_file(), "{}", path.display());
    path
}

fn field(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim()
        .to_owned()
}

fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Version}", package])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn publish(server: &Server, version: &str, deb: &Path, keys: &Keys) {
    let sig = keys.sign(deb, version);
    server.cli(
        &[
            "app-update",
            "publish",
            "--platform",
            "linux-x86_64-deb",
            "--version",
            version,
            "--file",
            deb.to_str().unwrap(),
            "--signature",
            sig.to_str().unwrap(),
            "--public-key",
            keys.public.to_str().unwrap(),
            // Whoever holds the server's command line can publish under any key; what
            // stops a package signed with the wrong one is the key compiled into the app.
            "--new-key",
        ],
        "",
    );
}

async fn sign_in(app: &App, server: &Server, id: uuid::Uuid) -> anyhow::Result<()> {
    app.fill(&tid("signin-server"), &server.url("")).await?;
    app.fill(&tid("signin-user"), "ann").await?;
    app.fill(&tid("signin-password"), PASSWORD).await?;
    app.click(&tid("signin-submit")).await?;
    let row = format!("{}[data-id=\"{id}\"]", tid("inspection-row"));
    poll(
        "the assigned inspection listed",
        FIRST_SYNC_TIMEOUT,
        || async { Ok(app.all(&row).await?.into_iter().next()) },
    )
    .await?;
    app.wait_text(&tid("sync-status"), "Synced", FIRST_SYNC_TIMEOUT, |t| {
        t.contains("Synced")
    })
    .await
    .map(drop)
}

/// Asks for an update and waits until `version` is offered.
async fn offered(app: &App, version: &str) -> anyhow::Result<()> {
    app.click(&tid("update-check")).await?;
    let want = format!("Version {version} is available");
    app.wait_text(&tid("update-status"), &want, INSTALL_TIMEOUT, |t| {
        t.starts_with(&want)
    })
    .await
    .map(drop)
}

/// Installs the offered update; returns the status line once it settles.
async fn install(app: &App) -> anyhow::Result<String> {
    app.click(&tid("update-install")).await?;
    app.wait_text(&tid("update-status"), "an outcome", INSTALL_TIMEOUT, |t| {
        t.starts_with("Update refused:")
            || t.starts_with("No update:")
            || t.contains("is installed")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deb_installs_runs_syncs_and_updates_only_to_a_package_signed_with_its_key() {
    if !is_root() {
        assert!(
            std::env::var_os("WARDCHECK_REQUIRE_PACKAGE_TEST").is_none(),
            "the package test must run as root (dpkg -i), and WARDCHECK_REQUIRE_PACKAGE_TEST is set"
        );
        eprintln!("package_deb: not root, so the .deb cannot be installed: not run");
        return;
    }
    if std::env::var("WARDCHECK_TEST_BACKEND").as_deref() == Ok("postgres") {
        // The package and the updater are the app's; the server's side of updates runs
        // on both backends in app_updates.rs. Bundling and installing twice would add
        // minutes for nothing.
        eprintln!(
            "package_deb: the app's package does not depend on the server's backend: run once, on SQLite"
        );
        return;
    }
    app_driver::require_tools();

    // 1. The package, as the bundler made it.
    let deb = package(None);
    let name = field(&deb, "Package");
    let version = field(&deb, "Version");
    let depends = field(&deb, "Depends");
    assert!(
        depends.contains("gnome-keyring"),
        "the app's keychain comes with it: Depends: {depends}"
    );
    assert!(
        depends.contains("libwebkit2gtk-4.1-0"),
        "Depends: {depends}"
    );
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    // Each entry's path, from /.
    let paths: Vec<String> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| format!("/{}", p.trim_start_matches("./").trim_start_matches('/')))
        .collect();
    assert!(
        paths.iter().any(|p| p == "/usr/bin/wardcheck-app"),
        "the program:\n{contents}"
    );
    let desktop = paths
        .iter()
        .find(|p| p.starts_with("/usr/share/applications/") && p.ends_with(".desktop"))
        .unwrap_or_else(|| panic!("a .desktop entry:\n{contents}"))
        .clone();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/usr/share/icons/hicolor/128x128/apps/")),
        "icons:\n{contents}"
    );

    // 2. Installed; the installed program signs in and syncs.
    let _installed = Installed(name.clone());
    run(Command::new("dpkg").arg("--install").arg(&deb));
    assert_eq!(installed_version(&name).as_deref(), Some(version.as_str()));
    let program = PathBuf::from("/usr/bin/wardcheck-app");
    assert!(program.is_file(), "installed at {}", program.display());
    let entry = std::fs::read_to_string(&desktop).unwrap();
    assert!(
        entry.contains("Exec=wardcheck-app") && entry.contains("Name=Wardcheck"),
        "the menu entry starts the installed program:\n{entry}"
    );

    let mut server = Server::start();
    server.add_user("ann", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    let scratch = tempfile::tempdir().unwrap();
    let release = Keys::generate(scratch.path(), "release");
    let intruder = Keys::generate(scratch.path(), "intruder");

    // The app's update key (src-tauri/src/update.rs, debug builds only).
    let home =
        AppHome::temporary().with_env("WARDCHECK_TEST_UPDATE_PUBKEY", &release.public_text());
    let mut driver = AppDriver::start(&program, home)
        .await
        .expect("tauri-driver starts the installed app");
    let mut steps = Steps::new(&driver, "package-deb");
    let app = steps.check(None, "launch", driver.launch().await).await;
    steps
        .check(Some(&app), "signed-in", sign_in(&app, &server, id).await)
        .await;
    // Nothing newer yet.
    let r = async {
        app.click(&tid("update-check")).await?;
        app.wait_text(&tid("update-status"), "the newest", INSTALL_TIMEOUT, |t| {
            t.contains("is the newest the server offers")
        })
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "no-update", r).await;

    // 3a. A package signed with another key than the app's: the server keeps it (it was
    // given that key), the app refuses it and installs nothing.
    publish(&server, "0.1.1", &deb, &intruder);
    let r = async {
        offered(&app, "0.1.1").await?;
        install(&app).await
    }
    .await;
    let said = steps.check(Some(&app), "refused", r).await;
    assert!(
        said.starts_with("Update refused:"),
        "another key's package is refused: {said}"
    );
    assert_eq!(
        installed_version(&name).as_deref(),
        Some(version.as_str()),
        "nothing was installed"
    );

    // 3b. A newer package signed with the app's key: verified and installed.
    let newer = package(Some("0.1.2"));
    assert_eq!(field(&newer, "Version"), "0.1.2");
    publish(&server, "0.1.2", &newer, &release);
    let r = async {
        offered(&app, "0.1.2").await?;
        install(&app).await
    }
    .await;
    let said = steps.check(Some(&app), "installed", r).await;
    assert!(
        said.contains("Version 0.1.2 is installed"),
        "the release-signed package is installed: {said}\n{}",
        driver.log()
    );
    assert_eq!(
        installed_version(&name).as_deref(),
        Some("0.1.2"),
        "dpkg holds the update"
    );

    app.quit().await.context("the app quits").unwrap();
    driver.wait_app_gone().await.expect("the app ends");
    driver.stop();
    server.stop();
}
