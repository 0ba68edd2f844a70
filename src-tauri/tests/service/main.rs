//! The app's service layer (what every Tauri command calls) against the real server
//! binary: sign-in, offline edits that survive a restart, sync to the server and back
//! after an outage, resumable photo uploads, and the refusals (wrong password, no
//! keychain, a photo too large).
//!
//! Waits are polling loops with generous deadlines: a slow machine makes the tests
//! slower, not flaky.

mod carried;
mod fake_peer;
mod hardening;
mod support;
mod tls;

use std::time::Duration;

use support::{AppDirs, Server, Worker, wait_for};
use uuid::Uuid;
use wardcheck_app_lib::error::ErrorCode;
use wardcheck_app_lib::service::keystore::{
    Keystore, KeystoreChoice, KeystoreError, KeystoreKind, SecretBackend,
};
use wardcheck_app_lib::service::status::SyncState;
use wardcheck_app_lib::service::{App, Config, STORE_FILE, uploads};
use wardcheck_core::checklist::{AnswerKind, Scope, Severity};
use wardcheck_core::inspection::Answer;

/// Long enough for a cold server and a first sync on a busy 2-core machine.
pub(crate) const SYNC_LIMIT: Duration = Duration::from_secs(60);

/// The inspection-scope compliance items of an open inspection, in checklist order.
pub(crate) fn compliance_items(app: &App, id: Uuid) -> Vec<String> {
    let open = app.open_inspection(id).expect("the inspection opens");
    open.checklist
        .sections
        .iter()
        .filter(|s| s.scope == Scope::Inspection)
        .flat_map(|s| s.items.iter())
        .filter(|i| i.answer == AnswerKind::Compliance)
        .map(|i| i.id.clone())
        .collect()
}

/// Signs `user` in and waits until the worker has fetched `id` and is synced.
pub(crate) async fn sign_in_and_fetch(app: &App, server: &Server, user: &str, id: Uuid) {
    sign_in_and_fetch_at(app, &server.url(), user, id).await;
}

/// [`sign_in_and_fetch`] through the server address `url` (a TLS front, say).
pub(crate) async fn sign_in_and_fetch_at(app: &App, url: &str, user: &str, id: Uuid) {
    let status = app
        .sign_in(url, user, support::PASSWORD)
        .await
        .expect("signing in");
    let who = status.signed_in.expect("signed in");
    assert_eq!(who.server, url);
    assert_eq!(who.user, user);
    assert_eq!(who.role, "inspector");
    wait_for(
        SYNC_LIMIT,
        "the inspection to be fetched and synced",
        || {
            let app = app.clone();
            async move {
                let listed = app.list_inspections().ok()?;
                (listed.iter().any(|s| s.id == id) && app.sync_status().state == SyncState::Synced)
                    .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_survive_a_restart_and_reach_the_server_after_an_outage() {
    let scratch = tempfile::tempdir().unwrap();
    let server_data = scratch.path().join("server");
    let mut server = Server::start_on(&server_data, "127.0.0.1:0");
    server.add_inspector("ann");
    let id = server.create_inspection("RJ1", "ann");

    let dirs = AppDirs::new();
    let app = dirs.open();
    assert_eq!(app.app_status().keystore, KeystoreKind::Test);
    assert!(app.app_status().signed_in.is_none());
    assert_eq!(app.sync_status().state, SyncState::SignedOut);
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "ann", id).await;
    assert_eq!(app.sync_status().pending_changes, 0);

    // The server goes away: the worker says offline, and backs off.
    let addr = server.addr.clone();
    server.kill();
    let status = wait_for(
        SYNC_LIMIT,
        "the worker to notice the server is gone",
        || {
            let app = app.clone();
            async move {
                let s = app.sync_status();
                (s.state == SyncState::Offline).then_some(s)
            }
        },
    )
    .await;
    let message = status.message.expect("an offline status says why");
    assert!(
        message.contains("trying again in"),
        "the offline message tells when the next try is: {message}"
    );

    // Offline edits: ten answers, a note, a device, a finding.
    let items = compliance_items(&app, id);
    assert!(items.len() >= 10, "the checklist has ten compliance items");
    for item in &items[..10] {
        app.set_answer(id, item, Answer::Met).expect("an answer");
    }
    app.edit_note(id, &items[0], "Seen on the ward's noticeboard")
        .expect("a note");
    let view = app
        .add_device(id, "RJ1-WARD7-PC01", "19045.4046")
        .expect("a device");
    assert_eq!(view.devices.len(), 1);
    app.add_finding(
        id,
        Severity::High,
        "Unattended logged-in PC on ward 7",
        vec![items[1].clone()],
        "Enforce screen lock after 5 minutes",
    )
    .expect("a finding");
    let err = app
        .set_answer(
            id,
            &items[2],
            Answer::NotApplicable {
                reason: "  ".into(),
            },
        )
        .expect_err("'not applicable' needs a reason");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    let pending = app.sync_status().pending_changes;
    assert!(
        pending >= 13,
        "every offline change is counted as not yet on the server (got {pending})"
    );
    assert_eq!(app.sync_status().state, SyncState::Offline);

    // "Kill" the app and start it again: everything is still there, still pending.
    worker.kill().await;
    drop(app);
    let app = dirs.open();
    let status = app.app_status();
    assert_eq!(
        status.signed_in.map(|s| s.user).as_deref(),
        Some("ann"),
        "still signed in after a restart"
    );
    let open = app.open_inspection(id).expect("the inspection opens again");
    for item in &items[..10] {
        let answer = open.view.responses[item]
            .answer
            .as_ref()
            .unwrap_or_else(|| panic!("{item} kept its answer across the restart"));
        assert_eq!(answer.current().value, Answer::Met);
    }
    assert_eq!(open.view.devices.len(), 1, "the device survived");
    assert_eq!(open.view.findings.len(), 1, "the finding survived");
    assert_eq!(
        app.sync_status().pending_changes,
        pending,
        "what was not on the server is still counted after a restart"
    );
    let summary = app.list_inspections().unwrap();
    assert_eq!(summary[0].answered, 10);

    // The server comes back on the same address: the worker finds it by itself.
    let worker = Worker::start(&app);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = Server::start_on(&server_data, &addr);
    let synced = wait_for(
        SYNC_LIMIT,
        "synced after the server came back (without sync_now)",
        || {
            let app = app.clone();
            async move {
                let s = app.sync_status();
                (s.state == SyncState::Synced).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(synced.pending_changes, 0);
    assert!(synced.last_synced_at.is_some());

    // The server's own view has every answer, the device and the finding.
    let token = support::token(&server, "ann").await;
    let detail = support::get_json(&server, &token, &format!("/api/v1/inspections/{id}")).await;
    let responses = &detail["inspection"]["responses"];
    for item in &items[..10] {
        assert_eq!(
            responses[item]["answer"]["values"][0]["value"]["kind"], "met",
            "the server holds the answer to {item}"
        );
    }
    assert_eq!(
        responses[&items[0]]["note"], "Seen on the ward's noticeboard",
        "the note reached the server"
    );
    assert_eq!(
        detail["inspection"]["devices"][0]["hostname"]["values"][0]["value"],
        "RJ1-WARD7-PC01"
    );
    assert_eq!(
        detail["inspection"]["findings"][0]["text"],
        "Unattended logged-in PC on ward 7"
    );
    worker.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_upload_resumes_where_it_stopped() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("bob");
    let id = server.create_inspection("RJ1", "bob");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "bob", id).await;
    // The worker would upload at once: stop it, to cut an upload short by hand.
    worker.kill().await;

    let item = compliance_items(&app, id)[0].clone();

    // A photo over the limit is refused before anything reads it.
    let huge = vec![0u8; 26 * 1024 * 1024];
    let err = app
        .add_photo(id, &item, "huge.jpg", &huge)
        .expect_err("a 26 MB photo is refused");
    assert_eq!(err.code, ErrorCode::TooLarge, "{err:?}");
    let err = app
        .add_photo(id, &item, "page.jpg", b"<html>not a photo</html>")
        .expect_err("HTML is not a photo");
    assert_eq!(err.code, ErrorCode::BadImage, "{err:?}");

    let added = app
        .add_photo(id, &item, "ward 7 PC.jpg", &support::noisy_jpeg(900))
        .expect("a photo");
    assert!(
        added.bytes > 3 * 256 * 1024,
        "the photo takes several chunks ({} bytes)",
        added.bytes
    );
    assert_eq!(
        added.view.responses[&item].photos[0].value.hash, added.sha256,
        "the photo is attached to the item"
    );
    let thumb = app.photo_thumbnail(&added.sha256).expect("a thumbnail");
    assert!(thumb.starts_with("data:image/jpeg;base64,"));
    let status = app.sync_status();
    assert_eq!(status.pending_photos, 1);
    assert_eq!(status.pending_photo_bytes, added.bytes);

    // Upload, and "crash" after the first chunk the server confirmed.
    let session = app.app_status().signed_in.unwrap();
    let token = std::fs::read_to_string(dirs.keys.join("device-token")).unwrap();
    let pending = app.pending_uploads().unwrap().remove(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upload = {
        let (app, server_url, token, pending) = (
            app.clone(),
            session.server.clone(),
            token.clone(),
            pending.clone(),
        );
        tokio::spawn(async move {
            uploads::upload_one(&app, &server_url, &token, &pending, |at| {
                let _ = tx.send(at);
            })
            .await
        })
    };
    loop {
        let at = rx.recv().await.expect("progress reports");
        if at > 0 {
            break;
        }
    }
    upload.abort();
    let _ = upload.await;
    let recorded = app.pending_uploads().unwrap().remove(0).uploaded_bytes;
    assert!(
        recorded > 0 && recorded < added.bytes,
        "the store recorded the partial upload ({recorded} of {})",
        added.bytes
    );

    // Resumed: it starts where the server stands, not at byte 0.
    let pending = app.pending_uploads().unwrap().remove(0);
    let report = uploads::upload_one(&app, &session.server, &token, &pending, |_| {})
        .await
        .expect("the upload completes");
    assert!(
        report.first_offset >= recorded,
        "resumed at {} (recorded {recorded}), not at 0",
        report.first_offset
    );
    let chunks = added.bytes.div_ceil(256 * 1024) as usize;
    assert!(
        report.requests < chunks,
        "fewer requests ({}) than a whole upload ({chunks})",
        report.requests
    );
    assert!(
        app.pending_uploads().unwrap().is_empty(),
        "the photo left the queue"
    );

    // The server has it whole, under its hash.
    let reader = support::token(&server, "bob").await;
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/blobs/{}", server.url(), added.sha256))
        .header("authorization", format!("Bearer {reader}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "GET the photo: {}", res.status());
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        wardcheck_core::photo::sha256_hex(&bytes),
        added.sha256,
        "the server holds the very bytes the app stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_unauthorized() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("cat");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let err = app
        .sign_in(&server.url(), "cat", "not the password")
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(err.code, ErrorCode::Unauthorized, "{err:?}");
    assert!(app.app_status().signed_in.is_none());
    let err = app.list_inspections().expect_err("nobody is signed in");
    assert_eq!(err.code, ErrorCode::NotSignedIn);

    // Nothing listens here: offline, not unauthorized.
    drop(server);
    let err = app
        .sign_in("http://127.0.0.1:9", "cat", support::PASSWORD)
        .await
        .expect_err("no server");
    assert_eq!(err.code, ErrorCode::Offline, "{err:?}");
    let err = app
        .sign_in("not a url", "cat", support::PASSWORD)
        .await
        .expect_err("a bad address");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
}

/// A keychain that is never there, like a desktop session with no Secret Service.
#[derive(Debug)]
struct NoKeychain;

impl SecretBackend for NoKeychain {
    fn get(&self, _: &'static str) -> Result<Option<Vec<u8>>, KeystoreError> {
        Err(KeystoreError::Unavailable(
            "No keychain is available (test)".into(),
        ))
    }
    fn set(&self, _: &'static str, _: &[u8]) -> Result<(), KeystoreError> {
        Err(KeystoreError::Unavailable(
            "No keychain is available (test)".into(),
        ))
    }
    fn delete(&self, _: &'static str) -> Result<(), KeystoreError> {
        Err(KeystoreError::Unavailable(
            "No keychain is available (test)".into(),
        ))
    }
}

fn assert_no_store(app: &App, data: &std::path::Path) {
    let status = app.app_status();
    assert_eq!(status.keystore, KeystoreKind::Unavailable);
    assert!(
        status
            .keystore_error
            .as_deref()
            .is_some_and(|e| e.contains("keychain")),
        "the status says why: {:?}",
        status.keystore_error
    );
    assert!(
        !data.join(STORE_FILE).exists(),
        "no store file is made without a keychain"
    );
    let err = app.list_inspections().expect_err("no store");
    assert_eq!(err.code, ErrorCode::NoKeychain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keychain_means_no_store() {
    let dirs = AppDirs::new();
    let app = App::open_with(
        dirs.config(),
        Keystore::with_backend(KeystoreKind::Os, Box::new(NoKeychain)),
    );
    assert_no_store(&app, &dirs.data);
    let err = app
        .sign_in("http://127.0.0.1:9", "ann", "x")
        .await
        .expect_err("no sign-in without a keychain");
    assert_eq!(err.code, ErrorCode::NoKeychain);
    // The worker has nothing to do and ends.
    tokio::time::timeout(Duration::from_secs(5), app.clone().run_worker())
        .await
        .expect("the worker stops at once when there is no store");
}

/// The real OS keychain with no session bus at all: run in a child process (the
/// environment of this one is not ours to change) by the test below.
#[test]
#[ignore = "run by os_keychain_without_a_session_bus_is_unavailable in a child process"]
fn os_keychain_child() {
    let Some(data) = std::env::var_os("WARDCHECK_CHILD_DATA") else {
        return;
    };
    let data = std::path::PathBuf::from(data);
    let app = App::open(Config::new(&data, KeystoreChoice::Os));
    assert_no_store(&app, &data);
}

#[test]
fn os_keychain_without_a_session_bus_is_unavailable() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let mut child = support::child_test("os_keychain_child");
    child
        .env("WARDCHECK_CHILD_DATA", &data)
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/wardcheck-bus",
        )
        .env_remove("WARDCHECK_TEST_KEYSTORE")
        .env_remove("DISPLAY");
    support::run_child_test(child);
}

/// The real OS keychain (Secret Service) in a private session: run in a child process
/// by the test below. The app opens its store with a key it made and kept there, and a
/// second start finds the same key and the same store.
#[test]
#[ignore = "run by the os_keychain_with_secret_service test in a private D-Bus session"]
fn os_keychain_secret_service_child() {
    let Some(data) = std::env::var_os("WARDCHECK_CHILD_DATA") else {
        return;
    };
    let data = std::path::PathBuf::from(data);
    let app = App::open(Config::new(&data, KeystoreChoice::Os));
    let status = app.app_status();
    assert_eq!(
        status.keystore,
        KeystoreKind::Os,
        "the Secret Service is used: {:?}",
        status.keystore_error
    );
    assert!(
        data.join(STORE_FILE).exists(),
        "the encrypted store is made"
    );
    assert!(
        app.list_inspections()
            .is_err_and(|e| e.code == ErrorCode::NotSignedIn)
    );
    let key = Keystore::os().store_key(&data.join(STORE_FILE)).unwrap();
    drop(app);
    // Started again: the same key opens the same store.
    let again = App::open(Config::new(&data, KeystoreChoice::Os));
    assert_eq!(again.app_status().keystore, KeystoreKind::Os);
    let key_again = Keystore::os().store_key(&data.join(STORE_FILE)).unwrap();
    assert_eq!(
        key.as_bytes(),
        key_again.as_bytes(),
        "the kept key is read back"
    );
    println!("wardcheck: secret service keystore ok");
}

/// The OS keychain on a desktop with a Secret Service: GNOME Keyring, unlocked, on a
/// private session bus (`dbus-run-session`), with its keyring files in a temporary home.
/// `scripts/setup` installs gnome-keyring; without it this test fails and says so.
#[test]
fn os_keychain_with_secret_service() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is missing: run scripts/setup (it installs dbus and gnome-keyring)"
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let data = scratch.path().join("data");
    let script = r#"printf '%s' wardcheck-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90
exec "$0" --exact os_keychain_secret_service_child --ignored --nocapture"#;
    let out = std::process::Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(std::env::current_exe().unwrap())
        .env("WARDCHECK_CHILD_DATA", &data)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("share"))
        .env("XDG_RUNTIME_DIR", &home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WARDCHECK_TEST_KEYSTORE")
        .env_remove("DISPLAY")
        .output()
        .expect("running the child test in dbus-run-session");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("secret service keystore ok"),
        "the child test passed with the real keychain (exit {:?}):\n{text}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_show_as_a_conflict_and_a_pick_resolves_it() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("dee");
    let id = server.create_inspection("RJ1", "dee");
    // Two devices of the same inspector.
    let (dirs_a, dirs_b) = (AppDirs::new(), AppDirs::new());
    let (a, b) = (dirs_a.open(), dirs_b.open());
    let worker_a = Worker::start(&a);
    let worker_b = Worker::start(&b);
    sign_in_and_fetch(&a, &server, "dee", id).await;
    sign_in_and_fetch(&b, &server, "dee", id).await;
    worker_a.kill().await;
    worker_b.kill().await;

    // Both answer the same item while neither can sync.
    let item = compliance_items(&a, id)[3].clone();
    a.set_answer(id, &item, Answer::Met).unwrap();
    b.set_answer(id, &item, Answer::NotMet).unwrap();
    let worker_a = Worker::start(&a);
    let worker_b = Worker::start(&b);
    let conflict = |app: &App| {
        let (app, item) = (app.clone(), item.clone());
        async move {
            let view = app.open_inspection(id).ok()?.view;
            let field = view.responses[&item].answer.clone()?;
            (field.is_conflict() && app.sync_status().state == SyncState::Synced).then_some(field)
        }
    };
    let seen_a = wait_for(SYNC_LIMIT, "device A to show the conflict", || conflict(&a)).await;
    wait_for(SYNC_LIMIT, "device B to show the conflict", || conflict(&b)).await;
    let kinds: Vec<Answer> = seen_a
        .values
        .iter()
        .map(|c| c.value.value.clone())
        .collect();
    assert!(
        kinds.contains(&Answer::Met) && kinds.contains(&Answer::NotMet),
        "both answers are kept: {kinds:?}"
    );
    let field_ref = wardcheck_core::inspection::FieldRef::Answer { item: item.clone() };
    let view = a.open_inspection(id).unwrap().view;
    assert!(
        view.conflicts.contains(&field_ref),
        "the view lists the conflict"
    );

    // A picks 'not met'; B sees the conflict gone.
    let pick = seen_a
        .values
        .iter()
        .find(|c| c.value.value == Answer::NotMet)
        .unwrap()
        .id
        .clone();
    let view = a.resolve_conflict(id, &field_ref, &pick).unwrap();
    assert!(view.conflicts.is_empty(), "resolved on A at once");
    wait_for(SYNC_LIMIT, "device B to see the resolution", || {
        let b = b.clone();
        let item = item.clone();
        async move {
            let view = b.open_inspection(id).ok()?.view;
            let field = view.responses[&item].answer.clone()?;
            (!field.is_conflict() && field.current().value == Answer::NotMet).then_some(())
        }
    })
    .await;
    worker_a.kill().await;
    worker_b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_told_to_sign_in_again() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("eve");
    let id = server.create_inspection("RJ1", "eve");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "eve", id).await;
    let device = app.app_status().signed_in.unwrap().device_id;
    server.cli(&["device", "revoke", &device.to_string()], "");
    app.sync_now();
    let status = wait_for(SYNC_LIMIT, "the error state", || {
        let app = app.clone();
        async move {
            let s = app.sync_status();
            (s.state == SyncState::Error).then_some(s)
        }
    })
    .await;
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("sign in again")),
        "the status says what to do: {:?}",
        status.message
    );
    // Local work goes on regardless.
    let item = compliance_items(&app, id)[0].clone();
    app.set_answer(id, &item, Answer::PartlyMet).unwrap();
    assert_eq!(app.sync_status().pending_changes, 1);
    worker.kill().await;
}

/// Files in a folder (none if it is gone).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn post_status(
    server: &Server,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .header("authorization", format!("Bearer {token}"))
        .json(&body)
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_with_a_wipe_deletes_its_data_and_the_audit_counts_what_was_lost() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("wes");
    let id = server.create_inspection("RJ1", "wes");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "wes", id).await;
    let device = app.app_status().signed_in.unwrap().device_id;
    // Two answers the server never gets: the worker is stopped (the device is offline).
    worker.kill().await;
    let items = compliance_items(&app, id);
    app.set_answer(id, &items[0], Answer::Met).unwrap();
    app.set_answer(id, &items[1], Answer::NotMet).unwrap();
    assert_eq!(app.sync_status().pending_changes, 2);
    assert!(dirs.data.join(STORE_FILE).is_file());
    assert_eq!(
        files_in(&dirs.keys).len(),
        2,
        "the store's key and the token"
    );
    let old_key = std::fs::read(dirs.keys.join("store-key")).expect("the store's key");

    // As an attacker: an active token cannot report a wipe, nor a non-admin revoke.
    let other = support::token(&server, "wes").await;
    let body = serde_json::json!({ "unsynced_changes": 0, "unsynced_photos": 0 });
    assert_eq!(
        post_status(&server, &other, "/api/v1/devices/wiped", body.clone()).await,
        401
    );
    let revoke = format!("/api/v1/devices/{device}/revoke");
    assert_eq!(
        post_status(
            &server,
            &other,
            &revoke,
            serde_json::json!({ "wipe": true })
        )
        .await,
        403
    );

    let out = server.cli(&["device", "revoke", &device.to_string(), "--wipe"], "");
    assert!(
        out.contains("deletes its data at its next contact"),
        "{out}"
    );
    // The next contact: the worker starts again (the device comes back online).
    let worker = Worker::start(&app);
    app.sync_now();
    let wiped = wait_for(SYNC_LIMIT, "the wipe, reported", || {
        let app = app.clone();
        async move { app.app_status().wiped.filter(|w| w.reported) }
    })
    .await;
    assert_eq!((wiped.unsynced_changes, wiped.unsynced_photos), (2, 0));
    assert!(wiped.reported, "the server heard the count");
    assert!(wiped.reason.contains("lost or retired"), "{}", wiped.reason);
    assert!(app.app_status().signed_in.is_none());
    assert!(
        !dirs.data.join("settings.json").exists(),
        "the settings are gone"
    );
    // The old store's key and the token are gone; what is left is a fresh, empty store
    // with a key of its own, so the device can be signed in again.
    assert_eq!(
        files_in(&dirs.keys),
        ["store-key"],
        "only a new store's key"
    );
    assert_ne!(
        std::fs::read(dirs.keys.join("store-key")).unwrap(),
        old_key,
        "a new key: the old store could not be opened with anything left here"
    );
    assert!(app.list_inspections().is_err(), "not signed in");

    let audit = server.cli(&["audit", "tail", "-n", "100"], "");
    let line = audit
        .lines()
        .find(|l| l.contains("\tdevice_wiped\t") && l.contains("\tok"))
        .unwrap_or_else(|| panic!("the wipe is audited:\n{audit}"));
    assert!(
        line.contains("unsynced changes 2, unsynced photos 0"),
        "{line}"
    );
    assert!(line.contains(&format!("device:{device}")), "{line}");
    let list = server.cli(&["device", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&format!("{device}\t")) && l.contains("wiped")),
        "{list}"
    );
    let again = app
        .sign_in(&server.url(), "wes", support::PASSWORD)
        .await
        .expect("signing in again on the fresh store");
    assert!(again.wiped.is_none(), "the notice goes with a new sign-in");
    let fresh = app.list_inspections().expect("the fresh store lists");
    assert!(
        fresh.iter().all(|i| i.answered == 0),
        "nothing of the wiped answers is on the device: {fresh:?}"
    );
    worker.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_taken_on_another_device_is_fetched_and_shown() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("fay");
    let id = server.create_inspection("RJ1", "fay");
    // Two devices of the same inspector, both with the inspection.
    let (dirs_a, dirs_b) = (AppDirs::new(), AppDirs::new());
    let (a, b) = (dirs_a.open(), dirs_b.open());
    let worker_a = Worker::start(&a);
    let worker_b = Worker::start(&b);
    sign_in_and_fetch(&a, &server, "fay", id).await;
    sign_in_and_fetch(&b, &server, "fay", id).await;

    // Device A takes a photo; it syncs and uploads.
    let item = compliance_items(&a, id)[0].clone();
    let added = a
        .add_photo(id, &item, "server room door.jpg", &support::noisy_jpeg(700))
        .expect("a photo");
    wait_for(SYNC_LIMIT, "device A's photo uploaded", || {
        let a = a.clone();
        async move {
            let s = a.sync_status();
            (s.state == SyncState::Synced && s.pending_photos == 0).then_some(())
        }
    })
    .await;

    // Device B gets the inspection's change, then the photo itself, unasked.
    let sha = added.sha256.clone();
    let thumb = wait_for(SYNC_LIMIT, "device B to fetch A's photo", || {
        let (b, sha) = (b.clone(), sha.clone());
        // The status counts it just after it is stored.
        async move {
            let thumb = b.photo_thumbnail(&sha).ok()?;
            (b.sync_status().photos_fetched >= 1).then_some(thumb)
        }
    })
    .await;
    assert!(thumb.starts_with("data:image/jpeg;base64,"), "a thumbnail");
    let view = b.open_inspection(id).unwrap().view;
    assert_eq!(view.responses[&item].photos[0].value.hash, sha);
    let status = b.sync_status();
    assert!(
        b.pending_uploads().unwrap().is_empty(),
        "a fetched photo is not sent back"
    );
    assert_eq!(status.pending_photos, 0);

    // And it is kept: B, restarted with no server, still shows it.
    worker_a.kill().await;
    worker_b.kill().await;
    drop(server);
    drop(b);
    let b = dirs_b.open();
    assert_eq!(
        b.photo_thumbnail(&sha).unwrap(),
        thumb,
        "the same thumbnail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_from_another_device_is_announced_while_synced() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("gus");
    let id = server.create_inspection("RJ1", "gus");
    let (dirs_a, dirs_b) = (AppDirs::new(), AppDirs::new());
    let (a, b) = (dirs_a.open(), dirs_b.open());
    let worker_a = Worker::start(&a);
    let worker_b = Worker::start(&b);
    sign_in_and_fetch(&a, &server, "gus", id).await;
    sign_in_and_fetch(&b, &server, "gus", id).await;
    let before = b.sync_status().changes_received;

    // Device A answers while B sits synced on the same inspection: B's status must say
    // so (the screens read the store again on it), though B stays "synced".
    let mut rx = b.subscribe();
    rx.borrow_and_update();
    let item = compliance_items(&a, id)[0].clone();
    a.set_answer(id, &item, Answer::Met).unwrap();
    let announced = tokio::time::timeout(SYNC_LIMIT, async {
        loop {
            rx.changed().await.expect("the status goes on");
            let s = rx.borrow_and_update().clone();
            if s.changes_received > before {
                return s;
            }
        }
    })
    .await
    .expect("B's status announces the change");
    let view = b.open_inspection(id).unwrap().view;
    assert_eq!(
        view.responses[&item]
            .answer
            .as_ref()
            .map(|f| f.current().value.clone()),
        Some(Answer::Met),
        "when it is announced, the change is in B's store: {announced:?}"
    );
    worker_a.kill().await;
    worker_b.kill().await;
}

/// `inspection create` with a checklist `id@version`; the new id.
fn create_with(server: &Server, checklist: &str) -> Uuid {
    server
        .cli(
            &[
                "inspection",
                "create",
                "--trust",
                "RJ1",
                "--checklist",
                checklist,
                "--assign",
                "ann",
            ],
            "",
        )
        .trim()
        .parse()
        .expect("an inspection id")
}

/// Issue 15, item 3: a version of a checklist this build does not carry reaches the
/// device with the inspection that pins it, beside one pinned to the bundled version;
/// it is kept (both open offline after a restart); and one whose files the server can
/// no longer give as pinned is listed with why, never left off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checklist_version_the_build_lacks_comes_with_its_inspection_and_stays() {
    let scratch = tempfile::tempdir().unwrap();
    let server_data = scratch.path().join("server");
    let mut server = Server::start_on(&server_data, "127.0.0.1:0");
    server.add_inspector("ann");
    let bundled = std::fs::read_to_string(
        support::workspace_root().join("checklists/firewall-boundary.toml"),
    )
    .unwrap();
    let publish = |version: &str| {
        let text = bundled.replacen(
            "version = \"2026.1\"",
            &format!("version = \"{version}\""),
            1,
        );
        let file = scratch
            .path()
            .join(format!("firewall-boundary-{version}.toml"));
        std::fs::write(&file, text).unwrap();
        server.cli(&["checklist", "publish", file.to_str().unwrap()], "");
    };
    publish("2026.2");
    let old = create_with(&server, "firewall-boundary@2026.1");
    let new = create_with(&server, "firewall-boundary@2026.2");

    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "ann", new).await;
    let listed = app.list_inspections().unwrap();
    for id in [old, new] {
        let row = listed.iter().find(|s| s.id == id).expect("listed");
        assert_eq!(row.unavailable, None, "{id} opens");
    }
    assert_eq!(
        app.open_inspection(new).unwrap().checklist.version,
        "2026.2"
    );
    assert_eq!(
        app.open_inspection(old).unwrap().checklist.version,
        "2026.1"
    );

    // Kept: with the server gone and the app started again, both still open.
    worker.kill().await;
    server.kill();
    drop(app);
    // As a new process would: nothing fetched in memory; the store must give it back.
    wardcheck_app_lib::service::local::clear_fetched();
    let app = dirs.open();
    assert_eq!(
        app.open_inspection(new).unwrap().checklist.version,
        "2026.2"
    );
    assert_eq!(
        app.open_inspection(old).unwrap().checklist.version,
        "2026.1"
    );
    drop(app);

    // A version the server cannot give as pinned (its stored files changed behind its
    // back): a new device lists the inspection with why, and cannot open it.
    let server = Server::start_on(&server_data, "127.0.0.1:0");
    let publish = |version: &str| {
        let text = bundled.replacen(
            "version = \"2026.1\"",
            &format!("version = \"{version}\""),
            1,
        );
        let file = scratch
            .path()
            .join(format!("firewall-boundary-{version}.toml"));
        std::fs::write(&file, text).unwrap();
        server.cli(&["checklist", "publish", file.to_str().unwrap()], "");
    };
    publish("2026.3");
    let broken = create_with(&server, "firewall-boundary@2026.3");
    let db = rusqlite::Connection::open(server_data.join("wardcheck.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE checklists SET files = replace(files, 'Firewall', 'Fire wall')
             WHERE id = 'firewall-boundary' AND version = '2026.3'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let other = AppDirs::new();
    let app = other.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "ann", new).await;
    let row = wait_for(SYNC_LIMIT, "the broken one to be listed", || {
        let app = app.clone();
        async move {
            let listed = app.list_inspections().ok()?;
            listed
                .into_iter()
                .find(|s| s.id == broken && s.unavailable.is_some())
        }
    })
    .await;
    let why = row.unavailable.unwrap();
    assert!(
        why.contains("firewall-boundary@2026.3") && why.contains("hash to"),
        "the row says which checklist and why: {why}"
    );
    assert!(app.open_inspection(broken).is_err());
    let note = app.sync_status().message.unwrap_or_default();
    assert!(
        note.contains("2026.3") && (note.contains("do not load") || note.contains("hash to")),
        "the status says why: {note}"
    );
    worker.kill().await;
}
