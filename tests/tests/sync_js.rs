//! Interop with JavaScript automerge-repo: a Rust client and the JS client
//! (`tests/js/client.mjs`: `@automerge/automerge-repo` 2.5 with its WebSocket
//! adapter, in Node) edit one inspection through the real server, and each sees the
//! other's edit.
//!
//! The JS client presents its device token as `?access_token=` on the upgrade URL,
//! as a JS WebSocket must. Its packages come from `npm ci` in tests/js
//! (scripts/setup does it).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::checklist::{AnswerKind, Scope};
use wardcheck_core::inspection::{Answer, CommentTarget, Inspection, Stamp};
use wardcheck_core::sync::uuid_to_doc_id;
use wardcheck_tests::client::{SyncClient, login};
use wardcheck_tests::server::{PASSWORD, Server};
use wardcheck_tests::{crash_checklist, workspace_root};

/// How long the JS client may take, start to finish.
const JS_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `node tests/js/client.mjs ARGS` with the token in its environment, as a
/// direct child (not through npx), and returns its JSON line.
fn run_js_client(token: &str, args: &[&str]) -> serde_json::Value {
    let js = workspace_root().join("tests/js");
    assert!(
        js.join("node_modules/@automerge/automerge-repo").is_dir(),
        "tests/js/node_modules is missing: run scripts/setup (it runs npm ci there)"
    );
    let mut child = Command::new("node")
        .arg(js.join("client.mjs"))
        .args(args)
        .env("WARDCHECK_TOKEN", token)
        .current_dir(&js)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node (Node.js 20 must be on PATH)");
    let deadline = Instant::now() + JS_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for node") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the JS client did not finish in {JS_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("reading the JS client's output");
    let line = out.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the JS client printed no JSON ({e}): {out:?}"));
    assert!(
        status.success() && result["ok"] == true,
        "the JS client failed ({status}): {result}"
    );
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_automerge_repo_client_and_a_rust_client_see_each_others_edits() {
    let server = Server::start();
    server.add_user("ann", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    let base = server.url("");
    let checklist = Arc::new(crash_checklist());
    let item = checklist
        .items()
        .find(|(s, i)| s.scope == Scope::Inspection && matches!(i.answer, AnswerKind::Compliance))
        .map(|(_, i)| i.id.clone())
        .expect("a compliance item");

    // The Rust client (the tablet) fetches the inspection, answers an item, writes a
    // note, and syncs.
    let tablet = login(&base, "ann", PASSWORD, "tablet").await.unwrap();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    let mut insp =
        Inspection::from_doc(doc.with_actor(tablet.actor.clone()), checklist.clone()).unwrap();
    let stamp = Stamp::new("ann", Utc::now());
    insp.set_answer(&item, Answer::PartlyMet, &stamp).unwrap();
    insp.edit_note(&item, "Rust note.", &stamp).unwrap();
    c.sync(id, &mut insp).await.unwrap();
    c.close().await;

    // The JS client, signed in as another device, sees the answer and adds to the
    // note and a comment; it returns once the server holds its edit.
    let browser = login(&base, "ann", PASSWORD, "browser").await.unwrap();
    let comment_id = Uuid::new_v4();
    let review_doc = wardcheck_server::storage::SqliteStorage::open(server.data())
        .and_then(|s| {
            use wardcheck_server::storage::Storage;
            s.inspection(id)
        })
        .unwrap()
        .unwrap()
        .review_doc;
    let (ws_url, doc_id, comment) = (server.ws_url(), uuid_to_doc_id(id), comment_id.to_string());
    let review_id = uuid_to_doc_id(review_doc);
    let api = base.clone();
    let item_arg = item.clone();
    let js = tokio::task::spawn_blocking(move || {
        run_js_client(
            &browser.token,
            &[
                "--url",
                &ws_url,
                "--api",
                api.trim_end_matches('/'),
                "--user",
                "ann",
                "--doc",
                &doc_id,
                "--review",
                &review_id,
                "--item",
                &item_arg,
                "--comment-id",
                &comment,
                "--note-text",
                " Added from JS.",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        js["answer"]["value"]["kind"], "partly-met",
        "the JS client should read the Rust client's answer: {js}"
    );
    assert_eq!(js["answer"]["by"], "ann", "{js}");
    assert_eq!(
        js["noteBefore"], "Rust note.",
        "the JS client should read the Rust client's note: {js}"
    );
    assert_eq!(js["noteAfter"], "Rust note. Added from JS.", "{js}");

    // The Rust client syncs again (a new connection, as after a reconnect) and sees
    // the JS client's edits through its own typed view.
    let mut c = SyncClient::connect(&server.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    c.sync(id, &mut insp).await.unwrap();
    c.close().await;
    let view = insp.view().unwrap();
    let r = &view.responses[&item];
    assert_eq!(
        r.note, "Rust note. Added from JS.",
        "the Rust client should see the JS client's note edit"
    );
    assert_eq!(r.note_edited.as_ref().map(|s| s.by.as_str()), Some("ann"));
    assert_eq!(
        r.answer.as_ref().map(|a| a.current().value.clone()),
        Some(Answer::PartlyMet),
        "the answer is unchanged"
    );
    let mut c = SyncClient::connect(&server.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let review = wardcheck_core::review::Review::from_doc(c.fetch(review_doc).await.unwrap())
        .unwrap()
        .view()
        .unwrap();
    c.close().await;
    let c = review
        .comments
        .iter()
        .find(|c| c.id == comment_id)
        .unwrap_or_else(|| panic!("the JS client's comment is missing: {:?}", review.comments));
    assert_eq!(c.target, CommentTarget::Item(item.clone()));
    assert_eq!(c.text, "Checked from the JavaScript client");
    assert_eq!(c.by, "ann");
    assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
}
