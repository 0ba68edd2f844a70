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

mod api_support;
use api_support::{jpeg, put_photo, sha256};

/// How long the JS client may take, start to finish.
const JS_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `node tests/js/client.mjs ARGS` with the token in its environment, as a
/// direct child (not through npx), and returns its JSON line.
fn run_js_client(token: &str, args: &[&str]) -> serde_json::Value {
    run_js("client.mjs", token, args)
}

/// Runs `node tests/js/SCRIPT ARGS` as [`run_js_client`] does.
fn run_js(script: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let js = workspace_root().join("tests/js");
    assert!(
        js.join("node_modules/@automerge/automerge-repo").is_dir(),
        "tests/js/node_modules is missing: run scripts/setup (it runs npm ci there)"
    );
    let mut child = Command::new("node")
        .arg(js.join(script))
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
        "the JS client {script} failed ({status}): {result}"
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
    let review_doc = wardcheck_tests::off_runtime(|| server.storage().inspection(id))
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

/// One attack: (who, their token, the document, the attack, extra arguments, the code the
/// server must answer with).
type Case<'a> = (&'a str, &'a str, Uuid, &'a str, &'a [&'a str], &'a str);

/// What one JS attack got from the server.
struct Attacked {
    result: serde_json::Value,
}

impl Attacked {
    fn codes(&self) -> Vec<String> {
        self.result["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs `tests/js/attack.mjs` as `token`'s device against document `doc`.
async fn attack(
    server: &Server,
    token: &str,
    user: &str,
    doc: Uuid,
    name: &str,
    extra: &[&str],
) -> Attacked {
    let mut args: Vec<String> = [
        "--url",
        &server.ws_url(),
        "--api",
        server.url("").trim_end_matches('/'),
        "--user",
        user,
        "--doc",
        &uuid_to_doc_id(doc),
        "--attack",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let token = token.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_js("attack.mjs", &token, &args)
    })
    .await
    .unwrap();
    Attacked { result }
}

/// The heads a reviewer fetching `doc` afresh gets, sorted.
async fn heads(server: &Server, token: &str, doc: Uuid) -> Vec<automerge::ChangeHash> {
    let mut c = SyncClient::connect(&server.ws_url(), Some(token))
        .await
        .unwrap();
    let mut d = c
        .fetch(doc)
        .await
        .unwrap_or_else(|e| panic!("document {doc} loads for the reviewer: {e}"));
    c.close().await;
    let mut h = d.get_heads();
    h.sort();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_attackers_forbidden_changes_are_refused_audited_and_never_stored() {
    let mut server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1");
    let base = server.url("");
    let base = base.trim_end_matches('/');
    // Ann's inspection, open (draft), where she may answer; a second one, shared with
    // the trust so that its lead may read it.
    let id = server.create_inspection("RJ1", &["ann"]);
    let shared = server.create_inspection("RJ1", &["ann"]);
    server.cli(&["inspection", "share", &shared.to_string()], "");
    // A third, submitted, where ann (its lead) may sign off: as herself only.
    let submitted = server.create_inspection("RJ1", &["ann"]);
    let checklist = Arc::new(crash_checklist());
    let item = wardcheck_tests::crash_items(&checklist)[0].clone();
    let rita = login(base, "rita", PASSWORD, "desk").await.unwrap().token;
    let ann = login(base, "ann", PASSWORD, "browser").await.unwrap().token;
    let lead1 = login(base, "lead1", PASSWORD, "browser")
        .await
        .unwrap()
        .token;
    let c = reqwest::Client::new();
    for to in ["in_progress", "submitted"] {
        let res = c
            .post(server.url(&format!("/api/v1/inspections/{submitted}/state")))
            .bearer_auth(&ann)
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

    // Bob uploads a photo and attaches it nowhere: ann may not read it.
    let bob = login(base, "bob", PASSWORD, "tablet").await.unwrap().token;
    let photo = jpeg(400, 300, 5);
    let bobs = sha256(&photo);
    assert_eq!(
        put_photo(&c, &server, &bob, &photo).await.status(),
        reqwest::StatusCode::CREATED
    );

    // (who, token, document, attack, extra arguments, the code the server must answer)
    let photo_arg = ["--item", item.as_str(), "--photo", bobs.as_str()];
    let item_arg = ["--item", item.as_str()];
    let unbound = ["--item", item.as_str(), "--bind", "no"];
    let cases: Vec<Case> = vec![
        ("ann", &ann, id, "meta-trust", &[], "forbidden"),
        (
            "ann",
            &ann,
            submitted,
            "forged-signoff",
            &[],
            "forged_author",
        ),
        ("ann", &ann, id, "forged-stamp", &item_arg, "forged_author"),
        (
            "ann",
            &ann,
            id,
            "unearned-photo",
            &photo_arg,
            "unearned_photo",
        ),
        ("ann", &ann, id, "close", &[], "illegal_transition"),
        ("ann", &ann, id, "delete-findings", &[], "forbidden"),
        ("ann", &ann, id, "answer", &unbound, "unknown_actor"),
    ];
    let mut wrong = Vec::new();
    for (user, token, doc, name, extra, code) in &cases {
        let before = heads(&server, &rita, *doc).await;
        let got = attack(&server, token, user, *doc, name, extra).await;
        let r = &got.result;
        if got.codes().first().map(String::as_str) != Some(*code) {
            wrong.push(format!(
                "{name}: expected the server's error {code}, got {r}"
            ));
        }
        if r["stored"] != false {
            wrong.push(format!("{name}: the change was stored: {r}"));
        }
        let after = heads(&server, &rita, *doc).await;
        if after != before {
            wrong.push(format!("{name}: the document's heads moved"));
        }
        // Audited with the sender, the actor, the document and the code.
        let audit = server.cli(&["audit", "tail", "-n", "50"], "");
        let actor = r["actor"].as_str().unwrap_or("?");
        let audited = audit.lines().any(|l| {
            l.contains("\tchange_refused\t")
                && l.contains(&format!("\t{user}\t"))
                && l.contains(actor)
                && l.contains(&doc.to_string())
                && l.contains(code)
        });
        if !audited {
            wrong.push(format!(
                "{name}: no audit entry with its actor and code:\n{audit}"
            ));
        }
    }

    // The trust's lead reads the shared inspection but may not write it: the change is
    // dropped unread, audited, and nothing is stored. The review document is not theirs
    // to read at all.
    let before = heads(&server, &rita, shared).await;
    // The server owes a reader no answer (it has nothing new to say), so the client
    // waits a short while; the audit then shows the server took and dropped the change.
    let forced = [
        "--item",
        item.as_str(),
        "--force",
        "yes",
        "--timeout-ms",
        "3000",
    ];
    let got = attack(&server, &lead1, "lead1", shared, "answer", &forced).await;
    let r = &got.result;
    assert_eq!(
        r["sentChanges"].as_u64().map(|n| n > 0),
        Some(true),
        "the lead's change was sent: {r}"
    );
    assert_eq!(r["stored"], false, "a reader's change is never stored: {r}");
    assert_eq!(
        heads(&server, &rita, shared).await,
        before,
        "nothing of the lead's change is stored"
    );
    let audit = server.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit.lines().any(|l| l.contains("\tlead1\t")
            && l.contains("\tdoc_write\t")
            && l.contains(&shared.to_string())
            && l.contains("read_only")),
        "the lead's write is audited as refused:\n{audit}"
    );
    let review_doc = wardcheck_tests::off_runtime(|| server.storage().inspection(shared))
        .unwrap()
        .unwrap()
        .review_doc;
    let got = attack(&server, &lead1, "lead1", review_doc, "answer", &item_arg).await;
    assert_eq!(
        got.result["unavailable"], true,
        "the trust's lead never reads the review document: {}",
        got.result
    );

    // The control: the same client, honest, is stored, so each refusal above was the
    // server's policy and not the harness.
    let got = attack(&server, &ann, "ann", id, "answer", &item_arg).await;
    assert!(
        got.codes().is_empty() && got.result["stored"] == true,
        "an honest answer is stored: {}",
        got.result
    );

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // After a restart the inspection loads for everyone who may read it, with the honest
    // answer and nothing of the attacks, and another client keeps syncing.
    server.restart();
    let tablet = login(base, "ann", PASSWORD, "tablet").await.unwrap();
    let mut client = SyncClient::connect(&server.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let doc = client.fetch(id).await.unwrap();
    let mut insp =
        Inspection::from_doc(doc.with_actor(tablet.actor.clone()), checklist.clone()).unwrap();
    let view = insp.view().unwrap();
    let answer = view.responses[&item]
        .answer
        .as_ref()
        .map(|a| a.current().value.clone());
    assert_eq!(
        answer,
        Some(Answer::NotMet),
        "the honest answer survives the attacks"
    );
    assert!(
        view.signoffs.is_empty(),
        "no forged sign-off: {:?}",
        view.signoffs
    );
    assert!(view.responses[&item].photos.is_empty(), "no unearned photo");
    let note_item = wardcheck_tests::crash_items(&checklist)[1].clone();
    insp.edit_note(&note_item, "Still syncing.", &Stamp::new("ann", Utc::now()))
        .unwrap();
    client.sync(id, &mut insp).await.unwrap();
    client.close().await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita))
        .await
        .unwrap();
    let seen = Inspection::from_doc(c.fetch(id).await.unwrap(), checklist)
        .unwrap()
        .view()
        .unwrap();
    c.close().await;
    assert_eq!(seen.responses[&note_item].note, "Still syncing.");
    assert_eq!(seen.meta.trust, "RJ1");
}
