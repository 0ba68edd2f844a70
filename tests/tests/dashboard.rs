//! The review dashboard in a real browser (issue 5 §4): the real server on demo data,
//! serving the built dashboard (`ui/dist`), driven by `tests/e2e/dashboard.test.mjs` in
//! Debian's Chromium through playwright-core.
//!
//! The browser script checks, as a reviewer and as a trust lead: sign-in, the seeded
//! contradiction in the list and beside its answer, devices and photos, the CSV export's
//! formula neutralisation, the printable report as a PDF, and that another trust's
//! inspection is exactly a missing one in the page and in the API. Half-way it waits
//! while this test changes a finding through a Rust sync client (`wardcheck_tests::client`),
//! and then checks that the open page shows it without a reload (the trust's response to a
//! finding: the inspection is signed off, so its findings are frozen). Then the editing and
//! charts: the trust's telemetry charts with the API's figures; a reviewer's comments
//! (refused with a clear error when too long, kept after a reload); RJ1's lead writing a
//! response to a finding, which the reviewer's open page then shows; corrective actions
//! raised, planned, verified and closed; the national picture, where the open action,
//! made overdue by this test behind the server's back (`make-overdue`), stands out and
//! every figure is the API's, with sorting, filters, the trust page and a trust lead who
//! sees only their trust; and signing out, after which `/api/v1/me` answers 401 and the
//! old token is refused.
//!
//! Needs Chromium (`/usr/bin/chromium`) and the npm packages of `ui/`: `scripts/setup`
//! installs both. Screenshots, the CSV and the PDF go to `artifacts/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_server::demo::{CONTRADICTION_INSPECTION, CONTRADICTION_ITEM, DEMO_PASSWORD};
use wardcheck_tests::client::{SyncClient, login};
use wardcheck_tests::server::cli;
use wardcheck_tests::workspace_root;

/// The demo's RTH inspection: shared with RTH, so RJ1's lead must not reach it.
const OTHER_TRUST_INSPECTION: &str = "d3e00000-0000-4000-8000-000000000002";

/// The note the Rust client writes: a spreadsheet formula, which the CSV export must
/// turn into text, with a quote and a comma, which it must quote.
const NOTE: &str = "=HYPERLINK(\"http://example.invalid/x\",\"open\"), rechecked on site";

/// Longest the browser script may take (it takes about 15 s).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn build_dashboard(ui: &Path) {
    assert!(
        ui.join("node_modules").join("playwright-core").is_dir(),
        "ui/node_modules is missing: run scripts/setup (it runs `npm ci` in ui/)"
    );
    // Always rebuilt (two seconds), so the test never serves a stale build.
    for script in [
        vec!["scripts/checklists.mjs"],
        vec![
            "node_modules/vite/bin/vite.js",
            "build",
            "--logLevel",
            "warn",
        ],
    ] {
        let status = Command::new("node")
            .args(&script)
            .current_dir(ui)
            .stdin(Stdio::null())
            .status()
            .expect("running node (Node.js 20 must be installed)");
        assert!(
            status.success(),
            "building the dashboard: node {script:?} failed"
        );
    }
}

fn start_server(data: &Path, dist: &Path) -> (Killed, String) {
    let mut child = wardcheck_tests::server::server_command(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--ui"])
        .arg(dist)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wardcheck-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the server's first line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the server did not say where it listens: {line:?}"))
        .to_owned();
    (Killed(child), base)
}

/// Another user's edit while the reviewer's page is open: RJ1's trust lead answers the
/// first finding (the inspection is signed off and shared, so its findings are frozen;
/// the trust's response is what changes now). Made through the API, it reaches the open
/// page the way any change does: through the sync engine's push.
async fn respond_as_the_trust(base: &str) {
    let lead = login(base, "lead-rj1", DEMO_PASSWORD, "dashboard e2e")
        .await
        .expect("RJ1's lead signs in");
    let c = reqwest::Client::new();
    let id = CONTRADICTION_INSPECTION;
    let detail: serde_json::Value = c
        .get(format!("{base}/api/v1/inspections/{id}"))
        .bearer_auth(&lead.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let finding = detail["inspection"]["findings"][0]["id"]
        .as_str()
        .expect("the demo inspection has findings")
        .to_owned();
    let res = c
        .put(format!(
            "{base}/api/v1/inspections/{id}/responses/{finding}"
        ))
        .bearer_auth(&lead.token)
        .json(&serde_json::json!({ "text": NOTE }))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "the trust's response: {}",
        res.status()
    );
}

/// An RJ1 inspection whose first item three inspectors answered in turn, each from their
/// own device through sync: what the history step reads. Returns its id and the item.
async fn answered_by_three(base: &str, data: &Path) -> (uuid::Uuid, String) {
    for u in ["ian", "ivy"] {
        let (ok, out, err) = cli(
            data,
            &["user", "add", u, "--role", "inspector"],
            &format!("{DEMO_PASSWORD}\n"),
        );
        assert!(ok, "adding {u}: {out}{err}");
    }
    let (ok, out, err) = cli(
        data,
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--assign",
            "ann",
            "--assign",
            "ian",
            "--assign",
            "ivy",
        ],
        "",
    );
    assert!(ok, "{out}{err}");
    let id: uuid::Uuid = out.trim().parse().unwrap();
    let item = wardcheck_tests::crash_items(&wardcheck_tests::crash_checklist())[0].clone();
    let ws = format!("{}/api/v1/sync", base.replacen("http://", "ws://", 1));
    for (who, answer) in [
        ("ann", Answer::Met),
        ("ian", Answer::PartlyMet),
        ("ivy", Answer::NotMet),
    ] {
        let l = login(base, who, DEMO_PASSWORD, &format!("{who}'s tablet"))
            .await
            .expect("signs in");
        let mut client = SyncClient::connect(&ws, Some(&l.token)).await.unwrap();
        let doc = client.fetch(id).await.unwrap();
        let mut insp = Inspection::from_doc(
            doc.with_actor(l.actor.clone()),
            std::sync::Arc::new(wardcheck_tests::crash_checklist()),
        )
        .unwrap();
        let st = Stamp::new(who, chrono::Utc::now());
        if who == "ann" {
            insp.change_state(wardcheck_core::inspection::State::InProgress, &st)
                .unwrap();
        }
        insp.set_answer(&item, answer, &st).unwrap();
        client
            .sync(id, &mut insp)
            .await
            .expect("the answer is taken");
        client.close().await;
    }
    (id, item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_dashboard_works_in_chromium() {
    let root = workspace_root();
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "{} is missing: run scripts/setup (it installs Debian's chromium)",
        chromium.display()
    );
    let ui = root.join("ui");
    build_dashboard(&ui);

    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let (ok, out, err) = cli(&data, &["demo-data"], "");
    assert!(ok, "demo-data: {out}\n{err}");
    let (_server, base) = start_server(&data, &ui.join("dist"));
    let (three, three_item) = answered_by_three(&base, &data).await;

    let artifacts = root.join("artifacts");
    let mut node = Killed(
        Command::new("node")
            .arg(root.join("tests").join("e2e").join("dashboard.test.mjs"))
            .args(["--base", &base, "--artifacts"])
            .arg(&artifacts)
            .args(["--inspection", &CONTRADICTION_INSPECTION.to_string()])
            .args(["--item", CONTRADICTION_ITEM])
            .args(["--other", OTHER_TRUST_INSPECTION])
            .args(["--password", DEMO_PASSWORD])
            .args(["--note", NOTE])
            .args(["--history-inspection", &three.to_string()])
            .args(["--history-item", &three_item])
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (Node.js 20 must be installed)"),
    );

    // The script's stdout carries only its requests, one a line.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = node.0.stdout.take().expect("node's stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = node.0.stdin.take().expect("node's stdin");
    let deadline = tokio::time::Instant::now() + BROWSER_TIMEOUT;
    let mut edited = false;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("the browser script took longer than {BROWSER_TIMEOUT:?}"),
            Ok(None) => break,
            Ok(Some(line)) if line.trim() == "wardcheck-e2e: ready-for-edit" => {
                respond_as_the_trust(&base).await;
                writeln!(stdin, "edited").expect("telling the script the edit is made");
                stdin.flush().unwrap();
                edited = true;
            }
            Ok(Some(line)) if line.starts_with("wardcheck-e2e: make-overdue ") => {
                let action = line.trim().rsplit(' ').next().unwrap_or_default();
                wardcheck_tests::server::make_overdue(
                    &data,
                    action.parse().expect("an action id"),
                    3,
                );
                writeln!(stdin, "overdue").expect("telling the script the action is overdue");
                stdin.flush().unwrap();
            }
            Ok(Some(line)) if line.trim() == "wardcheck-e2e: follow-up" => {
                let (ok, out, err) = cli(
                    &data,
                    &["inspection", "create", "--trust", "RJ1", "--assign", "ann"],
                    "",
                );
                assert!(ok, "a follow-up inspection: {out}\n{err}");
                writeln!(stdin, "{}", out.trim()).expect("telling the script its id");
                stdin.flush().unwrap();
            }
            Ok(Some(line)) => eprintln!("e2e (stdout): {line}"),
        }
    }
    let status = node.0.wait().expect("waiting for node");
    assert!(
        status.success(),
        "the browser tests failed ({status}); see e2e: lines above and artifacts/dashboard-failure.png"
    );
    assert!(edited, "the script never asked for the live edit");
}
