//! The field app end to end (issue 4 §4), driven through WebDriver (tauri-driver and
//! WebKitWebDriver under Xvfb, `wardcheck_tests::app_driver`) against the real server
//! binary.
//!
//! - The inspector's day: sign in; the server goes away; answer 10 items, add a sampled
//!   device, a finding and a photo; quit and restart the app (everything still there);
//!   the server comes back on the same port and data; "Synced"; the server's API then
//!   has every answer, the device, the finding and the photo (by its SHA-256).
//! - A second inspector's sync client sets the same item's answer while the app is
//!   offline: after sync the app shows the conflict, and picking a value clears it
//!   everywhere.
//! - A change the server refuses (the inspection was submitted from another device while
//!   the app was offline): the app shows which inspection and why, does not send it again,
//!   keeps syncing the other inspections, and takes the server's copy when asked.
//!
//! Elements are found by the `data-testid`s of docs/APP-IPC.md. Each step ends with a
//! screenshot in `artifacts/app-e2e-*.png` (a failing step's is `...-FAILED.png`, with
//! the app's output in `artifacts/app-e2e*-app.log`). Every wait polls with a generous
//! deadline: nothing here asserts on how long anything took.

mod api_support;

use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{Datelike, Utc};
use serde_json::Value;
use uuid::Uuid;
use wardcheck_core::checklist::{AnswerKind, Checklist, Scope};
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_tests::app_driver::{
    self, App, AppDriver, AppHome, Steps, UI_TIMEOUT, describe, poll, tid,
};
use wardcheck_tests::client::{SyncClient, sign_in};
use wardcheck_tests::crash_checklist;
use wardcheck_tests::process_group::{Stopped, environ_var};
use wardcheck_tests::server::{PASSWORD, Server};

/// From "the server is back" to "Synced": the worker retries with a back-off of up to
/// 30 s, then syncs; on 2 busy cores this is the slowest wait.
const SYNC_TIMEOUT: Duration = Duration::from_secs(240);
/// From sign-in to the assigned inspection on the home screen (the first sync).
const FIRST_SYNC_TIMEOUT: Duration = Duration::from_secs(180);

/// The app tests each run a display, tauri-driver, WebKit and a server: one at a time,
/// so that two of them never share the 2 cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- the harness itself -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webdriver_session_opens_the_app_and_everything_stops_cleanly() {
    let _one = ONE_AT_A_TIME.lock().await;
    app_driver::require_tools();
    let app = app_driver::app_binary();
    let mut driver = AppDriver::start(&app, AppHome::temporary())
        .await
        .expect("tauri-driver starts");

    let session = driver.launch().await.expect("a session starts the app");
    let running = driver.app_processes();
    assert!(
        !running.is_empty(),
        "the app runs under tauri-driver once the session is open; group: {}",
        describe(&driver.processes())
    );
    // The app gets the test's environment through tauri-driver and WebKitWebDriver.
    let keystore = driver.home().keystore().display().to_string();
    assert_eq!(
        environ_var(running[0].pid, "WARDCHECK_TEST_KEYSTORE").as_deref(),
        Some(keystore.as_str()),
        "the app runs with the test keystore of its home"
    );
    // The first screen renders: the page got the app's status over IPC (a fresh home
    // with the test keystore shows sign-in), rather than staying at "Starting…".
    session
        .visible(&tid("signin-server"))
        .await
        .expect("the sign-in screen shows");
    // WebKit's web process runs with the environment the app sets for it (JavaScript
    // interpreted, no DMA-BUF renderer: src-tauri/src/webview.rs), unless the user set a
    // variable first (the app sets it first thing in `main`).
    let web: Vec<_> = driver
        .app_processes()
        .into_iter()
        .filter(|p| p.comm.starts_with("WebKitWebProces"))
        .collect();
    assert!(
        !web.is_empty(),
        "a WebKit web process renders the page: {}",
        describe(&driver.app_processes())
    );
    for (name, value) in [("JSC_useJIT", "0"), ("WEBKIT_DISABLE_DMABUF_RENDERER", "1")] {
        let expected = std::env::var(name).unwrap_or_else(|_| value.to_owned());
        assert_eq!(
            environ_var(web[0].pid, name).as_deref(),
            Some(expected.as_str()),
            "the web process has {name} from the app"
        );
    }
    let title = session.client.title().await.expect("the page has a title");
    let shot = session.screenshot("app-e2e-00-session.png").await;
    assert!(
        shot.ends_with(".png") && !shot.starts_with("could not"),
        "a screenshot is saved: {shot}"
    );
    eprintln!(
        "session open: title {title:?}, processes {}",
        describe(&running)
    );

    session.quit().await.expect("the session closes");
    driver
        .wait_app_gone()
        .await
        .expect("the app exits when its session closes");
    let before = driver.processes();
    let stopped = driver.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "tauri-driver and WebKitWebDriver stop on SIGTERM with nothing left in their group \
         (before: {}); got {stopped:?}",
        describe(&before)
    );
}

// ----- the inspector's day -----

/// One planned answer: the item, its section, and the button.
#[derive(Debug, Clone)]
struct Planned {
    section: String,
    item: String,
    answer: Answer,
}

impl Planned {
    /// The answer button's test id suffix (`answer-met`, ...).
    fn kind(&self) -> &'static str {
        match self.answer {
            Answer::Met => "met",
            Answer::PartlyMet => "partly-met",
            Answer::NotMet => "not-met",
            Answer::NotApplicable { .. } => "not-applicable",
            _ => unreachable!("only compliance answers are planned"),
        }
    }
}

/// The inspection-scope compliance items of the CQC on-site checklist (which
/// `inspection create` uses), with their sections, in checklist order.
fn compliance_items(c: &Checklist) -> Vec<(String, String)> {
    c.items()
        .filter(|(s, i)| s.scope == Scope::Inspection && i.answer == AnswerKind::Compliance)
        .map(|(s, i)| (s.id.clone(), i.id.clone()))
        .collect()
}

/// Ten answers over the first ten items: met, partly met, not met in turn, and the
/// last one not applicable with a reason.
fn plan() -> Vec<Planned> {
    let items = compliance_items(&crash_checklist());
    assert!(items.len() >= 10, "the checklist has 10 compliance items");
    items
        .into_iter()
        .take(10)
        .enumerate()
        .map(|(n, (section, item))| Planned {
            section,
            item,
            answer: match n {
                9 => Answer::NotApplicable {
                    reason: "No wireless network at this site".into(),
                },
                n if n % 3 == 0 => Answer::Met,
                n if n % 3 == 1 => Answer::PartlyMet,
                _ => Answer::NotMet,
            },
        })
        .collect()
}

const HOSTNAME: &str = "RJ121-WS-0423";
const BUILD: &str = "19045.4291";
const FINDING: &str = "Two ward PCs run an unsupported Windows 10 build";
const RECOMMENDATION: &str = "Upgrade both to a supported build within 30 days";

fn item_css(item: &str, inner: &str) -> String {
    format!("{}[data-item=\"{item}\"] {}", tid("item"), tid(inner))
}

fn row_css(id: Uuid) -> String {
    format!("{}[data-id=\"{id}\"]", tid("inspection-row"))
}

async fn sign_in_app(app: &App, server: &Server, user: &str, id: Uuid) -> anyhow::Result<()> {
    app.fill(&tid("signin-server"), &server.url("")).await?;
    app.fill(&tid("signin-user"), user).await?;
    app.fill(&tid("signin-password"), PASSWORD).await?;
    app.click(&tid("signin-submit")).await?;
    // The first sync brings the inspection assigned to this user.
    poll(
        "the assigned inspection on the home screen",
        FIRST_SYNC_TIMEOUT,
        || async { Ok(app.all(&row_css(id)).await?.into_iter().next()) },
    )
    .await?;
    wait_synced(app, FIRST_SYNC_TIMEOUT).await
}

/// Waits for "Synced" with nothing left on this device only.
async fn wait_synced(app: &App, timeout: Duration) -> anyhow::Result<()> {
    app.wait_text(&tid("sync-status"), "Synced", timeout, |t| {
        t.contains("Synced")
    })
    .await?;
    app.wait_text(&tid("pending"), "nothing pending", timeout, |t| {
        t.starts_with("0 changes and 0 photos")
    })
    .await
    .map(drop)
}

async fn wait_offline(app: &App) -> anyhow::Result<()> {
    app.wait_text(&tid("sync-status"), "Offline", SYNC_TIMEOUT, |t| {
        t.contains("Offline")
    })
    .await
    .map(drop)
}

async fn open_inspection(app: &App, id: Uuid) -> anyhow::Result<()> {
    app.click(&format!("{} a", row_css(id))).await?;
    app.visible(&tid("section-link")).await.map(drop)
}

/// Shows `section` of the checklist and waits for `item` in it.
async fn show_item(app: &App, section: &str, item: &str) -> anyhow::Result<()> {
    app.click(&tid("tab-checklist")).await?;
    app.click(&format!(
        "{}[data-section=\"{section}\"]",
        tid("section-link")
    ))
    .await?;
    app.visible(&format!("{}[data-item=\"{item}\"]", tid("item")))
        .await
        .map(drop)
}

async fn answer(app: &App, p: &Planned) -> anyhow::Result<()> {
    show_item(app, &p.section, &p.item).await?;
    match &p.answer {
        Answer::NotApplicable { reason } => {
            app.click(&item_css(&p.item, "answer-not-applicable"))
                .await?;
            app.fill(&item_css(&p.item, "na-reason"), reason).await?;
            app.click(&item_css(&p.item, "na-save")).await?;
        }
        _ => {
            app.click(&item_css(&p.item, &format!("answer-{}", p.kind())))
                .await?;
        }
    }
    wait_pressed(app, p).await
}

/// Waits until the planned answer's button shows as chosen (`aria-pressed`).
async fn wait_pressed(app: &App, p: &Planned) -> anyhow::Result<()> {
    let css = item_css(&p.item, &format!("answer-{}", p.kind()));
    poll(&format!("{css} to be pressed"), UI_TIMEOUT, || async {
        let e = app.visible(&css).await?;
        Ok((e.attr("aria-pressed").await?.as_deref() == Some("true")).then_some(()))
    })
    .await
}

/// Adds the photo at `path` to `item`; returns the SHA-256 its thumbnail carries.
async fn add_photo(app: &App, p: &Planned, path: &std::path::Path) -> anyhow::Result<String> {
    show_item(app, &p.section, &p.item).await?;
    let input = app.visible(&item_css(&p.item, "photo-input")).await?;
    app.centre(&input).await?;
    input
        .send_keys(&path.display().to_string())
        .await
        .context("sending the photo's path to the file input")?;
    let thumb = app.visible(&item_css(&p.item, "photo-thumb")).await?;
    thumb
        .attr("data-sha256")
        .await?
        .ok_or_else(|| anyhow!("the thumbnail has no data-sha256"))
}

async fn add_device(app: &App) -> anyhow::Result<()> {
    app.click(&tid("tab-devices")).await?;
    app.click(&tid("device-add")).await?;
    app.fill(&tid("device-hostname"), HOSTNAME).await?;
    app.fill(&tid("device-build"), BUILD).await?;
    app.click(&tid("device-save")).await?;
    wait_device_row(app).await
}

async fn wait_device_row(app: &App) -> anyhow::Result<()> {
    app.wait_text(&tid("device-row"), HOSTNAME, UI_TIMEOUT, |t| {
        t.contains(HOSTNAME) && t.contains(BUILD)
    })
    .await
    .map(drop)
}

async fn add_finding(app: &App, item: &str) -> anyhow::Result<()> {
    app.click(&tid("tab-findings")).await?;
    app.click(&tid("finding-add")).await?;
    let severity = app.visible(&tid("finding-severity")).await?;
    app.centre(&severity).await?;
    severity
        .select_by_value("high")
        .await
        .context("choosing the severity")?;
    app.fill(&tid("finding-text"), FINDING).await?;
    let items = app.visible(&tid("finding-items")).await?;
    app.centre(&items).await?;
    items
        .select_by_value(item)
        .await
        .context("choosing the finding's item")?;
    app.fill(&tid("finding-recommendation"), RECOMMENDATION)
        .await?;
    app.click(&tid("finding-save")).await?;
    wait_finding_row(app).await
}

async fn wait_finding_row(app: &App) -> anyhow::Result<()> {
    app.wait_text(&tid("finding-row"), FINDING, UI_TIMEOUT, |t| {
        t.contains(FINDING)
    })
    .await
    .map(drop)
}

/// After the restart: every answer, the photo, the device and the finding still shown.
async fn everything_still_shown(app: &App, plan: &[Planned], sha: &str) -> anyhow::Result<()> {
    for p in plan {
        show_item(app, &p.section, &p.item).await?;
        wait_pressed(app, p)
            .await
            .with_context(|| format!("{} still answered {}", p.item, p.kind()))?;
    }
    show_item(app, &plan[0].section, &plan[0].item).await?;
    app.visible(&format!(
        "{}[data-sha256=\"{sha}\"]",
        item_css(&plan[0].item, "photo-thumb")
    ))
    .await
    .context("the photo's thumbnail still shown")?;
    app.click(&tid("tab-devices")).await?;
    wait_device_row(app).await?;
    app.click(&tid("tab-findings")).await?;
    wait_finding_row(app).await
}

/// The inspection document's view as the server's API gives it.
async fn server_view(
    c: &reqwest::Client,
    server: &Server,
    token: &str,
    id: Uuid,
) -> anyhow::Result<Value> {
    let res = c
        .get(server.url(&format!("/api/v1/inspections/{id}")))
        .bearer_auth(token)
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    ensure!(status.is_success(), "GET inspection: {status} {body}");
    Ok(body["inspection"].clone())
}

/// The single current value of an answer, or why not.
fn only_answer(view: &Value, item: &str) -> anyhow::Result<Value> {
    let values = view["responses"][item]["answer"]["values"]
        .as_array()
        .ok_or_else(|| anyhow!("{item} has no answer on the server"))?;
    ensure!(
        values.len() == 1,
        "{item} has {} values on the server: {values:?}",
        values.len()
    );
    Ok(values[0].clone())
}

/// What the server holds, checked against what the inspector did in the app.
fn server_has_everything(view: &Value, plan: &[Planned], sha: &str) -> anyhow::Result<()> {
    for p in plan {
        let got = only_answer(view, &p.item)?;
        let want = serde_json::to_value(&p.answer)?;
        ensure!(
            got["value"] == want && got["by"] == "ann",
            "{}: the server has {got}, wanted {want} by ann",
            p.item
        );
    }
    let devices = view["devices"].as_array().cloned().unwrap_or_default();
    ensure!(
        devices.iter().any(|d| {
            d["hostname"]["values"][0]["value"] == HOSTNAME
                && d["build_seen"]["values"][0]["value"] == BUILD
        }),
        "the server has the device {HOSTNAME} with build {BUILD}: {devices:?}"
    );
    let findings = view["findings"].as_array().cloned().unwrap_or_default();
    let item0 = Value::from(plan[0].item.as_str());
    ensure!(
        findings.iter().any(|f| {
            f["text"] == FINDING
                && f["recommendation"] == RECOMMENDATION
                && f["severity"]["values"][0]["value"] == "high"
                && f["items"].as_array().is_some_and(|i| i.contains(&item0))
        }),
        "the server has the finding (high, on {}, with its recommendation): {findings:?}",
        plan[0].item
    );
    let photos = view["responses"][plan[0].item.as_str()]["photos"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        photos.iter().any(|p| p["value"]["hash"] == sha),
        "the server's document has the photo {sha} on {}: {photos:?}",
        plan[0].item
    );
    Ok(())
}

/// `GET /api/v1/blobs/{sha}` gives the photo's bytes, which hash to its id.
async fn server_has_photo(
    c: &reqwest::Client,
    server: &Server,
    token: &str,
    sha: &str,
) -> anyhow::Result<()> {
    let res = c
        .get(server.url(&format!("/api/v1/blobs/{sha}")))
        .bearer_auth(token)
        .send()
        .await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    ensure!(
        status.is_success(),
        "GET blob {sha}: {status} {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    let got = api_support::sha256(&bytes);
    ensure!(
        got == sha,
        "the served photo hashes to {got}, not its id {sha}"
    );
    Ok(())
}

async fn quit(driver: &AppDriver, app: App) -> anyhow::Result<()> {
    app.quit().await?;
    driver.wait_app_gone().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspectors_day_offline_then_synced() {
    let _one = ONE_AT_A_TIME.lock().await;
    app_driver::require_tools();
    let mut server = Server::start();
    server.add_user("ann", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    let plan = plan();
    let scratch = tempfile::tempdir().unwrap();
    // A photo as a camera might give it; the app re-encodes it (metadata stripped), so
    // its id is that of core's processing, not of these bytes.
    let jpeg = api_support::jpeg(800, 600, 7);
    let photo_path = scratch.path().join("server-room.jpg");
    std::fs::write(&photo_path, &jpeg).unwrap();
    let expected_sha = wardcheck_core::photo::process(&jpeg, &Default::default())
        .expect("core processes the test photo")
        .id;

    let mut driver = AppDriver::start(&app_driver::app_binary(), AppHome::temporary())
        .await
        .expect("tauri-driver starts");
    let mut steps = Steps::new(&driver, "app-e2e");

    let app = steps.check(None, "launch", driver.launch().await).await;
    steps
        .check(
            Some(&app),
            "signed-in",
            sign_in_app(&app, &server, "ann", id).await,
        )
        .await;

    // The network goes: the server stops.
    server.stop();
    steps
        .check(Some(&app), "offline", wait_offline(&app).await)
        .await;

    let r = async {
        open_inspection(&app, id).await?;
        for p in &plan {
            answer(&app, p)
                .await
                .with_context(|| format!("answering {} {}", p.item, p.kind()))?;
        }
        Ok(())
    }
    .await;
    steps.check(Some(&app), "answered-10", r).await;

    // An item shows its framework references and the telemetry check its answer will be
    // set beside, with how that check judges (issue 12).
    let r = async {
        show_item(&app, "ndg9", "ndg9-encryption").await?;
        let refs = app
            .text(&format!(
                "{}[data-item=\"ndg9-encryption\"] .wc-refs",
                tid("item")
            ))
            .await?;
        let telemetry = app
            .text(&item_css("ndg9-encryption", "item-telemetry"))
            .await?;
        if refs.contains("NDG standard 9")
            && refs.contains("CAF-aligned DSPT B3.c")
            && telemetry.contains("endpoints.bitlocker_off")
            && telemetry.contains("end-user devices")
            && telemetry.contains("tolerance 1%")
        {
            Ok(())
        } else {
            Err(anyhow!("references {refs:?}; telemetry {telemetry:?}"))
        }
    }
    .await;
    steps.check(Some(&app), "item-references", r).await;

    let sha = steps
        .check(
            Some(&app),
            "photo",
            add_photo(&app, &plan[0], &photo_path).await,
        )
        .await;
    let r = if sha == expected_sha {
        Ok(())
    } else {
        Err(anyhow!(
            "the thumbnail's id {sha} is not the SHA-256 of core's processing of the photo \
             ({expected_sha})"
        ))
    };
    steps.check(Some(&app), "photo-id", r).await;
    steps
        .check(Some(&app), "device", add_device(&app).await)
        .await;
    steps
        .check(
            Some(&app),
            "finding",
            add_finding(&app, &plan[0].item).await,
        )
        .await;
    let r = app
        .wait_text(
            &tid("pending"),
            "work not yet on the server",
            UI_TIMEOUT,
            |t| !t.starts_with("0 changes") && t.contains("1 photo not yet on the server"),
        )
        .await;
    steps.check(Some(&app), "pending", r).await;

    // Quit and start again, still offline: everything is still there.
    let r = quit(&driver, app).await;
    steps.check(None, "quit", r).await;
    let app = steps.check(None, "restart", driver.launch().await).await;
    let r = async {
        app.visible(&row_css(id)).await?;
        wait_offline(&app).await?;
        open_inspection(&app, id).await?;
        everything_still_shown(&app, &plan, &sha).await
    }
    .await;
    steps.check(Some(&app), "still-there", r).await;

    // The network is back: the same server, same port, same data.
    server.restart();
    steps
        .check(Some(&app), "synced", wait_synced(&app, SYNC_TIMEOUT).await)
        .await;

    // The server has it all.
    let c = api_support::client();
    let token = api_support::token(&c, &server, "ann").await;
    let r = async {
        let view = server_view(&c, &server, &token, id).await?;
        server_has_everything(&view, &plan, &sha)?;
        server_has_photo(&c, &server, &token, &sha).await
    }
    .await;
    steps.check(Some(&app), "server-has-everything", r).await;

    steps
        .check(None, "quit-at-end", quit(&driver, app).await)
        .await;
    let stopped = driver.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "tauri-driver's group stops on SIGTERM; got {stopped:?}"
    );
}

// ----- a conflict made offline -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_made_while_offline_is_shown_and_resolved() {
    let _one = ONE_AT_A_TIME.lock().await;
    app_driver::require_tools();
    let mut server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rev", "inspector");
    // Two inspectors on the team: the second answers the same item from her own device.
    let id = server.create_inspection("RJ1", &["ann", "rev"]);
    let p = Planned {
        answer: Answer::Met,
        ..plan()[0].clone()
    };

    let mut driver = AppDriver::start(&app_driver::app_binary(), AppHome::temporary())
        .await
        .expect("tauri-driver starts");
    let mut steps = Steps::new(&driver, "app-e2e-conflict");
    let app = steps.check(None, "launch", driver.launch().await).await;
    steps
        .check(
            Some(&app),
            "signed-in",
            sign_in_app(&app, &server, "ann", id).await,
        )
        .await;

    // The second inspector's client holds the same document the app does.
    let rev_login = sign_in(&server, "rev").await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .expect("the reviewer connects");
    let doc = c
        .fetch(id)
        .await
        .expect("the reviewer fetches the inspection");
    c.close().await;
    let mut rev = Inspection::from_doc(
        doc.with_actor(rev_login.actor.clone()),
        std::sync::Arc::new(crash_checklist()),
    )
    .expect("the fetched document is the inspection");

    // Offline, the inspector answers the item; the second inspector sets it differently.
    server.stop();
    let r = async {
        wait_offline(&app).await?;
        open_inspection(&app, id).await?;
        answer(&app, &p).await
    }
    .await;
    steps.check(Some(&app), "answered-offline", r).await;
    rev.set_answer(&p.item, Answer::NotMet, &Stamp::new("rev", Utc::now()))
        .unwrap();

    // Back online: the second inspector's change reaches the server, then the app syncs.
    server.restart();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .expect("the reviewer connects again");
    c.sync(id, &mut rev).await.expect("the reviewer syncs");
    c.close().await;
    steps
        .check(Some(&app), "synced", wait_synced(&app, SYNC_TIMEOUT).await)
        .await;

    // The server holds both values; the app shows the conflict.
    let http = api_support::client();
    let token = api_support::token(&http, &server, "rev").await;
    let view = server_view(&http, &server, &token, id).await.unwrap();
    let values = view["responses"][p.item.as_str()]["answer"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        values.len(),
        2,
        "the server keeps both answers as a conflict: {values:?}"
    );
    let revs = values
        .iter()
        .find(|v| v["by"] == "rev")
        .and_then(|v| v["id"].as_str())
        .expect("one value is the second inspector's")
        .to_owned();
    let field = format!("answer:{}", p.item);
    let conflict = format!("{}[data-field=\"{field}\"]", tid("conflict"));
    let r = async {
        app.click(&tid("tab-conflicts")).await?;
        // The page reads the view again after each sync round; allow for one more.
        poll("the conflict on screen", SYNC_TIMEOUT, || async {
            Ok(app.all(&conflict).await?.into_iter().next())
        })
        .await?;
        let text = app.text(&conflict).await?;
        ensure!(
            text.contains("rev") && text.contains("ann"),
            "the conflict shows both authors: {text:?}"
        );
        Ok(())
    }
    .await;
    steps.check(Some(&app), "conflict-shown", r).await;

    // Keep the second inspector's value.
    let r = async {
        app.click(&format!(
            "{conflict} {}[data-candidate=\"{revs}\"]",
            tid("conflict-pick")
        ))
        .await?;
        app.gone(&conflict).await?;
        app.visible(&tid("no-conflicts")).await.map(drop)
    }
    .await;
    steps.check(Some(&app), "conflict-resolved", r).await;
    steps
        .check(
            Some(&app),
            "resolution-synced",
            wait_synced(&app, SYNC_TIMEOUT).await,
        )
        .await;

    // The server then sees one value: the reviewer's.
    let r = async {
        let view = server_view(&http, &server, &token, id).await?;
        let only = only_answer(&view, &p.item)?;
        if only["value"]["kind"] != "not-met" || only["by"] != "rev" {
            bail!("the server kept {only}, not the second inspector's not-met");
        }
        let conflicts = view["conflicts"].as_array().cloned().unwrap_or_default();
        ensure!(conflicts.is_empty(), "no conflict left: {conflicts:?}");
        Ok(())
    }
    .await;
    steps.check(Some(&app), "server-has-one-value", r).await;

    // A third inspector answers the item from her device; the app's history of the item
    // (read from its own copy) lists every value with its author and time.
    server.add_user("ivy", "inspector");
    server.cli(&["inspection", "assign", &id.to_string(), "ivy"], "");
    let ivy_login = sign_in(&server, "ivy").await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&ivy_login.token))
        .await
        .expect("ivy connects");
    let doc = c.fetch(id).await.expect("ivy fetches the inspection");
    let mut ivy = Inspection::from_doc(
        doc.with_actor(ivy_login.actor.clone()),
        std::sync::Arc::new(crash_checklist()),
    )
    .unwrap();
    ivy.set_answer(&p.item, Answer::PartlyMet, &Stamp::new("ivy", Utc::now()))
        .unwrap();
    c.sync(id, &mut ivy).await.expect("ivy's answer is taken");
    c.close().await;
    let r = async {
        show_item(&app, &p.section, &p.item).await?;
        app.wait_text(
            &item_css(&p.item, "answer-current"),
            "ivy's answer",
            SYNC_TIMEOUT,
            |t| t.contains("Partly met"),
        )
        .await?;
        app.click(&format!("{} summary", item_css(&p.item, "history")))
            .await?;
        let text = app
            .wait_text(
                &item_css(&p.item, "history"),
                "four answers",
                SYNC_TIMEOUT,
                |t| t.matches("Answer:").count() >= 4,
            )
            .await?;
        for want in [
            "Answer: Met by ann",
            "Answer: Not met by rev",
            "Answer: Not met (picked by ann) by rev",
            "Answer: Partly met by ivy",
        ] {
            ensure!(text.contains(want), "the history says {want:?}: {text:?}");
        }
        ensure!(
            text.contains(&Utc::now().format("%Y").to_string()),
            "each value has its time: {text:?}"
        );
        Ok(())
    }
    .await;
    steps.check(Some(&app), "history-in-the-app", r).await;

    steps
        .check(None, "quit-at-end", quit(&driver, app).await)
        .await;
    let stopped = driver.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "tauri-driver's group stops on SIGTERM; got {stopped:?}"
    );
}

// ----- a change the server refuses -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_server_refuses_is_shown_and_the_rest_keep_syncing() {
    let _one = ONE_AT_A_TIME.lock().await;
    app_driver::require_tools();
    let mut server = Server::start();
    server.add_user("ann", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    let other = server.create_inspection("RJ2", &["ann"]);
    let items = plan();

    let mut driver = AppDriver::start(&app_driver::app_binary(), AppHome::temporary())
        .await
        .expect("tauri-driver starts");
    let mut steps = Steps::new(&driver, "app-e2e-refused");
    let app = steps.check(None, "launch", driver.launch().await).await;
    let r = async {
        sign_in_app(&app, &server, "ann", id).await?;
        poll(
            "the other inspection listed",
            FIRST_SYNC_TIMEOUT,
            || async { Ok(app.all(&row_css(other)).await?.into_iter().next()) },
        )
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "signed-in", r).await;

    // Offline, the inspector answers an item. Meanwhile, from her laptop, she submits
    // the inspection (a second server process on the same data: the app's server is
    // down): on the server, answers can no longer change.
    server.stop();
    let r = async {
        wait_offline(&app).await?;
        open_inspection(&app, id).await?;
        answer(&app, &items[0]).await
    }
    .await;
    steps.check(Some(&app), "answered-offline", r).await;
    {
        let side = Server::start_on(server.data(), "127.0.0.1:0");
        let c = api_support::client();
        let token = api_support::token(&c, &side, "ann").await;
        for to in ["in_progress", "submitted"] {
            let res = c
                .post(side.url(&format!("/api/v1/inspections/{id}/state")))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "state": to }))
                .send()
                .await
                .unwrap();
            assert!(
                res.status().is_success(),
                "moving to {to}: {}",
                res.status()
            );
        }
    }

    // Back online: the server refuses the answer; the app says which inspection and why.
    server.restart();
    let refused = format!("{}[data-inspection=\"{id}\"]", tid("refused"));
    let r = async {
        poll("the refusal on screen", SYNC_TIMEOUT, || async {
            Ok(app.all(&refused).await?.into_iter().next())
        })
        .await?;
        let text = app.text(&refused).await?;
        ensure!(
            text.contains(&id.to_string()) && text.contains("submitted"),
            "the refusal names the inspection and why: {text:?}"
        );
        let code = app
            .all(&format!("{refused}[data-code=\"wrong_state\"]"))
            .await?;
        ensure!(!code.is_empty(), "the refusal carries the server's code");
        Ok(())
    }
    .await;
    steps.check(Some(&app), "refusal-shown", r).await;

    // The server kept nothing of it, and audited the refusal.
    let http = api_support::client();
    let token = api_support::token(&http, &server, "ann").await;
    let view = server_view(&http, &server, &token, id).await.unwrap();
    assert!(
        view["responses"][items[0].item.as_str()]["answer"].is_null(),
        "the refused answer is not on the server: {}",
        view["responses"][items[0].item.as_str()]
    );
    let audit = server.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tchange_refused\t") && l.contains("wrong_state")),
        "the refusal is audited:\n{audit}"
    );

    // Everything else still syncs: an answer in the other inspection reaches the server.
    let r = async {
        app.click(&tid("home-link")).await?;
        open_inspection(&app, other).await?;
        answer(&app, &items[1]).await?;
        poll(
            "the other inspection's answer on the server",
            SYNC_TIMEOUT,
            || async {
                let v = server_view(&http, &server, &token, other).await?;
                Ok(only_answer(&v, &items[1].item).ok())
            },
        )
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "the-rest-syncs", r).await;
    // The refused change is not sent again: the server has refused it once.
    let audit = server.cli(&["audit", "tail", "-n", "200"], "");
    let times = audit
        .lines()
        .filter(|l| l.contains("\tchange_refused\t") && l.contains(&id.to_string()))
        .count();
    assert_eq!(times, 1, "refused once, never sent again:\n{audit}");

    // The inspector takes the server's copy: the refusal goes, and the app shows the
    // inspection as the server holds it (submitted, the answer not there).
    let r = async {
        app.click(&tid("take-servers-copy")).await?;
        app.gone(&refused).await?;
        wait_synced(&app, SYNC_TIMEOUT).await?;
        app.click(&tid("home-link")).await.ok();
        poll("the server's copy on this device", SYNC_TIMEOUT, || async {
            Ok(app.all(&row_css(id)).await?.into_iter().next())
        })
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "servers-copy-taken", r).await;

    // The device is reported lost: revoked with a wipe. At its next contact the app
    // deletes its store and keychain entries and says why on screen.
    let devices = server.cli(&["device", "list"], "");
    let device = devices
        .lines()
        .filter(|l| l.contains("\tactive") && l.contains("\tWardcheck on "))
        .filter_map(|l| l.split('\t').next())
        .next_back()
        .expect("the app's device is listed (the app names it \"Wardcheck on HOST\")")
        .to_owned();
    server.cli(&["device", "revoke", &device, "--wipe"], "");
    let r = async {
        // The open connection is closed within the server's recheck interval; the worker's
        // next contact is refused with `device_wiped`.
        let text = app
            .wait_text(&tid("wiped"), "the wipe notice", SYNC_TIMEOUT, |t| {
                t.contains("has been deleted")
            })
            .await?;
        ensure!(
            text.contains("lost or retired") && text.contains("The server has recorded the wipe"),
            "the notice says why and that the server knows: {text:?}"
        );
        app.visible(&tid("signin-server")).await.map(drop)
    }
    .await;
    steps.check(Some(&app), "wiped", r).await;
    let audit = server.cli(&["audit", "tail", "-n", "300"], "");
    assert!(
        audit.lines().any(|l| l.contains("\tdevice_wiped\t")
            && l.contains(&format!("device:{device}"))
            && l.contains("unsynced changes 0")),
        "the wipe is audited with what was lost:\n{audit}"
    );

    steps
        .check(None, "quit-at-end", quit(&driver, app).await)
        .await;
    let stopped = driver.stop();
    assert!(
        matches!(stopped, Stopped::OnTerm(_)),
        "tauri-driver's group stops on SIGTERM; got {stopped:?}"
    );
}

// ----- an open action carried over to the next visit, checked offline -----

/// Issue 14: an action raised after an earlier visit to the trust shows on the next
/// visit in the field app (taken while online); the inspector checks it with the network
/// gone; the check is kept, and reaches the server when the network is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_action_of_an_earlier_visit_is_checked_offline_and_synced() {
    let _one = ONE_AT_A_TIME.lock().await;
    app_driver::require_tools();
    let mut server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rita", "reviewer");
    // The earlier visit: a finding, submitted; the reviewer raises an action from it.
    let earlier = server.create_inspection("RJ1", &["ann"]);
    let login = sign_in(&server, "ann").await;
    let finding = api_support::finding_by_sync(&server, &login, "ann", earlier).await;
    let c = api_support::client();
    let ann = api_support::token(&c, &server, "ann").await;
    let rita = api_support::token(&c, &server, "rita").await;
    for state in ["in_progress", "submitted"] {
        let res = c
            .post(server.url(&format!("/api/v1/inspections/{earlier}/state")))
            .bearer_auth(&ann)
            .json(&serde_json::json!({ "state": state }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{state}: {}", res.status());
    }
    let due = (Utc::now() + chrono::Duration::days(30)).date_naive();
    let res = c
        .post(server.url(&format!("/api/v1/inspections/{earlier}/actions")))
        .bearer_auth(&rita)
        .json(
            &serde_json::json!({ "source": { "kind": "finding", "finding": finding },
            "what": "Fit closers to the server room doors", "due": due }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let action: Value = res.json().await.unwrap();
    let action = action["id"].as_str().unwrap().to_owned();
    // The next visit, planned with its dates (issue 14, item 3): the field app lists it
    // with its first day.
    let first_day = (Utc::now() + chrono::Duration::days(7)).date_naive();
    let later: Uuid = server
        .cli(
            &[
                "inspection",
                "create",
                "--trust",
                "RJ1",
                "--assign",
                "ann",
                "--visit-start",
                &first_day.to_string(),
                "--visit-end",
                &(first_day + chrono::Duration::days(1)).to_string(),
            ],
            "",
        )
        .trim()
        .parse()
        .expect("inspection create prints an id");

    let mut driver = AppDriver::start(&app_driver::app_binary(), AppHome::temporary())
        .await
        .expect("tauri-driver starts");
    let mut steps = Steps::new(&driver, "app-actions");
    let app = steps.check(None, "launch", driver.launch().await).await;
    steps
        .check(
            Some(&app),
            "signed-in",
            sign_in_app(&app, &server, "ann", later).await,
        )
        .await;
    let r = app
        .wait_text(
            &row_css(later),
            "the planned visit's first day",
            UI_TIMEOUT,
            // As the page writes it ("Sept", as en-GB does).
            |t| {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov",
                    "Dec",
                ];
                t.contains(&format!(
                    "{} {} {}",
                    first_day.day(),
                    MONTHS[first_day.month0() as usize],
                    first_day.year()
                ))
            },
        )
        .await
        .map(drop);
    steps.check(Some(&app), "planned-visit-listed", r).await;
    let card = format!("{}[data-action=\"{action}\"]", tid("carried-action"));
    let r = async {
        open_inspection(&app, later).await?;
        app.click(&tid("tab-actions")).await?;
        app.wait_text(&card, "the carried action", UI_TIMEOUT, |t| {
            t.contains("Fit closers to the server room doors")
        })
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "carried", r).await;

    // The network goes; the inspector checks the action on site.
    server.stop();
    steps
        .check(Some(&app), "offline", wait_offline(&app).await)
        .await;
    let r = async {
        app.click(&format!("{card} {}", tid("check-partly")))
            .await?;
        app.fill(
            &format!("{card} {}", tid("check-note")),
            "Two of three doors fitted",
        )
        .await?;
        app.click(&format!("{card} {}", tid("check-record")))
            .await?;
        app.visible(&format!(
            "{card} {}[data-state=\"waiting\"]",
            tid("carried-check")
        ))
        .await?;
        app.wait_text(
            &tid("pending"),
            "the check counted as waiting",
            UI_TIMEOUT,
            |t| t.contains("1 action check waiting"),
        )
        .await
        .map(drop)
    }
    .await;
    steps.check(Some(&app), "checked-offline", r).await;

    // The network is back: the check is sent, and the page says so.
    server.restart();
    let r = app
        .wait_text(
            &format!("{card} {}", tid("carried-check")),
            "the check on the server",
            SYNC_TIMEOUT,
            |t| t.contains("on the server"),
        )
        .await
        .map(drop);
    steps.check(Some(&app), "check-sent", r).await;
    let r = async {
        let a: Value = c
            .get(server.url(&format!("/api/v1/actions/{action}")))
            .bearer_auth(&rita)
            .send()
            .await?
            .json()
            .await?;
        let last = a["steps"]
            .as_array()
            .and_then(|s| s.last())
            .cloned()
            .unwrap_or_default();
        ensure!(
            last["step"] == "check"
                && last["by"] == "ann"
                && last["outcome"] == "partly"
                && last["note"] == "Two of three doors fitted",
            "the server's action ends with ann's check: {a}"
        );
        Ok(())
    }
    .await;
    steps.check(Some(&app), "server-has-check", r).await;

    steps
        .check(None, "quit-at-end", quit(&driver, app).await)
        .await;
    driver.stop();
}
