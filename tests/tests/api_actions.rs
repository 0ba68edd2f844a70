//! Corrective actions through the API (issue 14, item 1), against the real server on a
//! real data folder (SQLite, or PostgreSQL with `WARDCHECK_TEST_BACKEND=postgres`):
//!
//! - the whole way: a reviewer raises one from a finding (its priority the finding's
//!   severity), the inspector one from an item answered "not met" (the item's severity);
//!   the trust lead proposes a plan, the reviewer sends it back, the trust lead proposes
//!   again, the reviewer accepts, the trust lead reports progress with a photo she
//!   uploaded, the reviewer (who may then read the photo) verifies and closes;
//! - as an attacker holding a valid token: every step by a role that may not take it, out
//!   of order, twice at once, with texts over the limit, unknown fields, evidence not
//!   uploaded or uploaded by someone else, a priority chosen by the client, an action of
//!   another trust (the same 404 as a missing one); each refused, audited, and nothing
//!   kept (the action reads as it did);
//! - overdue: an action whose due date has passed, written into the record as it would
//!   stand a day later, is overdue.

mod api_support;

use api_support::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_tests::client::{Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;

const MAX_TEXT: usize = 20_000;

struct Setup {
    s: Server,
    c: Client,
    ann_login: Login,
    ann: String,
    bob: String,
    rita: String,
    lead1: String,
    lead2: String,
    root: String,
}

async fn setup() -> Setup {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2")
        .add_user("root", "admin");
    let c = client();
    let ann_login = sign_in(&s, "ann").await;
    Setup {
        ann: ann_login.token.clone(),
        ann_login,
        bob: token(&c, &s, "bob").await,
        rita: token(&c, &s, "rita").await,
        lead1: token(&c, &s, "lead1").await,
        lead2: token(&c, &s, "lead2").await,
        root: token(&c, &s, "root").await,
        s,
        c,
    }
}

fn due_in(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .date_naive()
        .to_string()
}

impl Setup {
    async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(self.s.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.c
            .get(self.s.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// An RJ1 inspection assigned to ann, with a finding (high) and the checklist's
    /// second item answered "not met", submitted and shared with the trust.
    async fn inspection(&self) -> (Uuid, Uuid, String) {
        let id = self.s.create_inspection("RJ1", &["ann"]);
        let finding = finding_by_sync(&self.s, &self.ann_login, "ann", id).await;
        let cl = std::sync::Arc::new(wardcheck_tests::crash_checklist());
        let item = wardcheck_tests::crash_items(&cl)[1].clone();
        let mut client = SyncClient::connect(&self.s.ws_url(), Some(&self.ann))
            .await
            .unwrap();
        let doc = client.fetch(id).await.unwrap();
        let mut insp =
            Inspection::from_doc(doc.with_actor(self.ann_login.actor.clone()), cl).unwrap();
        insp.set_answer(
            &item,
            Answer::NotMet,
            &Stamp::new("ann", chrono::Utc::now()),
        )
        .unwrap();
        client.sync(id, &mut insp).await.unwrap();
        client.close().await;
        (id, finding, item)
    }

    async fn to_state(&self, id: Uuid, to: &str) {
        let who = match to {
            "in_progress" | "submitted" => &self.ann,
            _ => &self.rita,
        };
        let res = self
            .post(
                who,
                &format!("/api/v1/inspections/{id}/state"),
                json!({ "state": to }),
            )
            .await;
        json_ok(res, StatusCode::OK, &format!("moving to {to}")).await;
    }

    async fn raise(&self, token: &str, id: Uuid, source: Value) -> reqwest::Response {
        self.post(
            token,
            &format!("/api/v1/inspections/{id}/actions"),
            json!({ "source": source, "what": "Replace the unsupported PCs", "due": due_in(90) }),
        )
        .await
    }

    async fn step(&self, token: &str, action: &str, body: Value) -> reqwest::Response {
        self.post(token, &format!("/api/v1/actions/{action}/steps"), body)
            .await
    }

    async fn action(&self, token: &str, action: &str) -> Value {
        let res = self.get(token, &format!("/api/v1/actions/{action}")).await;
        json_ok(res, StatusCode::OK, "reading the action").await
    }

    fn audit(&self) -> String {
        self.s.cli(&["audit", "tail", "-n", "400"], "")
    }
}

fn plan() -> Value {
    json!({ "step": "propose", "steps": "Order 40 PCs; image them; swap ward by ward",
        "owner_role": "Head of IT", "date": due_in(60) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_from_raised_to_closed() {
    let t = setup().await;
    let (id, finding, item) = t.inspection().await;

    // Before the inspection is submitted, nothing is raised.
    t.to_state(id, "in_progress").await;
    let res = t
        .raise(
            &t.rita,
            id,
            json!({ "kind": "finding", "finding": finding }),
        )
        .await;
    let (code, _) = error(res, StatusCode::CONFLICT, "raised before submission").await;
    assert_eq!(code, "wrong_state");
    t.to_state(id, "submitted").await;

    let res = t
        .raise(
            &t.rita,
            id,
            json!({ "kind": "finding", "finding": finding }),
        )
        .await;
    let a = json_ok(res, StatusCode::CREATED, "the reviewer raises").await;
    assert_eq!(a["priority"], "high", "the finding's severity: {a}");
    assert_eq!(a["status"], "raised");
    assert_eq!(a["raised_by"], "rita");
    assert_eq!(a["overdue"], false);
    let action = a["id"].as_str().unwrap().to_owned();

    let res = t
        .raise(&t.ann, id, json!({ "kind": "item", "item": item }))
        .await;
    let b = json_ok(
        res,
        StatusCode::CREATED,
        "the inspector raises from an item",
    )
    .await;
    let cl = wardcheck_tests::crash_checklist();
    let severity = cl.item(&item).unwrap().1.severity;
    assert_eq!(
        b["priority"],
        serde_json::to_value(severity).unwrap(),
        "the item's severity"
    );

    // The trust sees its actions once the inspection is shared.
    let listed = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let res = t.get(&t.lead1, "/api/v1/actions").await;
    assert!(
        listed(&json_ok(res, StatusCode::OK, "list").await).is_empty(),
        "not shared yet"
    );
    t.to_state(id, "shared_with_trust").await;
    let res = t.get(&t.lead1, "/api/v1/actions").await;
    assert_eq!(listed(&json_ok(res, StatusCode::OK, "list").await).len(), 2);
    let res = t.get(&t.lead2, "/api/v1/actions?trust=RJ1").await;
    assert!(listed(&json_ok(res, StatusCode::OK, "list").await).is_empty());

    let res = t.step(&t.lead1, &action, plan()).await;
    let v = json_ok(res, StatusCode::OK, "proposed").await;
    assert_eq!(v["status"], "proposed");
    assert_eq!(v["plan"]["owner_role"], "Head of IT");
    let res = t
        .step(
            &t.rita,
            &action,
            json!({ "step": "send_back", "note": "Name a date for the last ward" }),
        )
        .await;
    assert_eq!(
        json_ok(res, StatusCode::OK, "sent back").await["status"],
        "sent_back"
    );
    let res = t.step(&t.lead1, &action, plan()).await;
    json_ok(res, StatusCode::OK, "proposed again").await;
    let res = t.step(&t.rita, &action, json!({ "step": "accept" })).await;
    assert_eq!(
        json_ok(res, StatusCode::OK, "accepted").await["status"],
        "accepted"
    );

    // Progress with a photo the trust lead uploaded.
    let photo = jpeg(64, 64, 41);
    let sha = sha256(&photo);
    assert_eq!(
        put_photo(&t.c, &t.s, &t.lead1, &photo).await.status(),
        StatusCode::CREATED
    );
    // Before the report names it, the reviewer may not read it.
    let res = t.get(&t.rita, &format!("/api/v1/blobs/{sha}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = t
        .step(
            &t.lead1,
            &action,
            json!({ "step": "progress", "text": "30 of 40 swapped", "evidence": [sha] }),
        )
        .await;
    json_ok(res, StatusCode::OK, "progress").await;
    let res = t.get(&t.rita, &format!("/api/v1/blobs/{sha}")).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the evidence reaches the reviewer"
    );
    let res = t.get(&t.lead2, &format!("/api/v1/blobs/{sha}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "not another trust");

    let res = t
        .step(
            &t.rita,
            &action,
            json!({ "step": "close", "note": "Saw the asset register and two wards" }),
        )
        .await;
    let v = json_ok(res, StatusCode::OK, "closed").await;
    assert_eq!(v["status"], "closed");
    let steps: Vec<(String, String)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("raise", "rita"),
        ("propose", "lead1"),
        ("send_back", "rita"),
        ("propose", "lead1"),
        ("accept", "rita"),
        ("progress", "lead1"),
        ("close", "rita"),
    ];
    assert_eq!(
        steps,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec(),
        "every step, stamped with who took it"
    );
    // A fresh read agrees, and every step is in the audit log.
    assert_eq!(t.action(&t.ann, &action).await["steps"], v["steps"]);
    let audit = t.audit();
    for (step, who) in want {
        assert!(
            audit.lines().any(|l| l.contains(&format!("\t{who}\t"))
                && l.contains(&format!("\taction\taction:{action}\t"))
                && l.ends_with(&format!("\t{step}"))),
            "{step} by {who} audited:\n{audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_out_of_turn_is_refused_audited_and_nothing_kept() {
    let t = setup().await;
    let (id, finding, _) = t.inspection().await;
    t.to_state(id, "in_progress").await;
    t.to_state(id, "submitted").await;
    t.to_state(id, "shared_with_trust").await;
    let src = json!({ "kind": "finding", "finding": finding });

    // Raising: trust leads and admins may not; an inspector not on the inspection gets
    // its 404; the client does not choose the priority; a source the inspection lacks, a
    // due date passed, texts empty or over the limit, unknown fields.
    for (who, status) in [
        (&t.lead1, StatusCode::FORBIDDEN),
        (&t.root, StatusCode::FORBIDDEN),
        (&t.bob, StatusCode::NOT_FOUND),
    ] {
        let res = t.raise(who, id, src.clone()).await;
        assert_eq!(res.status(), status);
    }
    let path = format!("/api/v1/inspections/{id}/actions");
    let cases = [
        (
            json!({ "source": src, "what": "x", "due": due_in(9), "priority": "low" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            json!({ "source": { "kind": "finding", "finding": Uuid::new_v4() }, "what": "x", "due": due_in(9) }),
            StatusCode::NOT_FOUND,
            "unknown_source",
        ),
        (
            json!({ "source": { "kind": "item", "item": "no-such-item" }, "what": "x", "due": due_in(9) }),
            StatusCode::NOT_FOUND,
            "unknown_source",
        ),
        (
            json!({ "source": src, "what": "x", "due": due_in(-2) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed_change",
        ),
        (
            json!({ "source": src, "what": "  ", "due": due_in(9) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed_change",
        ),
        (
            json!({ "source": src, "what": "x".repeat(MAX_TEXT + 1), "due": due_in(9) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
        ),
    ];
    for (body, status, code) in cases {
        let res = t.post(&t.rita, &path, body.clone()).await;
        let (got, _) = error(
            res,
            status,
            &body.to_string()[..60.min(body.to_string().len())],
        )
        .await;
        assert_eq!(got, code);
    }
    let res = t.get(&t.rita, "/api/v1/actions").await;
    assert!(
        json_ok(res, StatusCode::OK, "list")
            .await
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing refused was kept"
    );

    let res = t.raise(&t.ann, id, src.clone()).await;
    let a = json_ok(res, StatusCode::CREATED, "raised").await;
    let action = a["id"].as_str().unwrap().to_owned();
    let before = t.action(&t.rita, &action).await;

    // Each step by a role that may not take it, or out of turn.
    let refusals = [
        (&t.ann, plan(), StatusCode::FORBIDDEN, "forbidden"),
        (&t.rita, plan(), StatusCode::FORBIDDEN, "forbidden"),
        (
            &t.lead1,
            json!({ "step": "accept" }),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &t.rita,
            json!({ "step": "accept" }),
            StatusCode::CONFLICT,
            "wrong_state",
        ),
        (
            &t.lead1,
            json!({ "step": "progress", "text": "done" }),
            StatusCode::CONFLICT,
            "wrong_state",
        ),
        (
            &t.rita,
            json!({ "step": "close", "note": "done" }),
            StatusCode::CONFLICT,
            "wrong_state",
        ),
        (
            &t.rita,
            json!({ "step": "raise", "source": src, "what": "again", "priority": "low", "due": due_in(9) }),
            StatusCode::CONFLICT,
            "illegal_transition",
        ),
        (
            &t.lead1,
            json!({ "step": "propose", "steps": "x".repeat(MAX_TEXT + 1), "owner_role": "IT", "date": due_in(9) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
        ),
        (
            &t.lead1,
            json!({ "step": "no_such_step" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ];
    for (who, body, status, code) in refusals {
        let res = t.step(who, &action, body.clone()).await;
        let (got, message) = error(res, status, &body["step"].to_string()).await;
        assert_eq!(got, code, "{body}: {message}");
    }
    // Another trust's lead, an admin, and a made-up id.
    let res = t.step(&t.lead2, &action, plan()).await;
    let (code, _) = error(res, StatusCode::NOT_FOUND, "lead2").await;
    assert_eq!(code, "not_found");
    let missing = t.step(&t.lead2, &Uuid::new_v4().to_string(), plan()).await;
    let (code, _) = error(missing, StatusCode::NOT_FOUND, "missing").await;
    assert_eq!(code, "not_found");
    let res = t.step(&t.root, &action, plan()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = t.get(&t.root, "/api/v1/actions").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(t.action(&t.rita, &action).await, before, "nothing was kept");

    // Evidence: not uploaded, uploaded by someone else, not a hash.
    json_ok(
        t.step(&t.lead1, &action, plan()).await,
        StatusCode::OK,
        "plan",
    )
    .await;
    json_ok(
        t.step(&t.rita, &action, json!({ "step": "accept" })).await,
        StatusCode::OK,
        "accept",
    )
    .await;
    let accepted = t.action(&t.rita, &action).await;
    let theirs = jpeg(48, 48, 77);
    assert_eq!(
        put_photo(&t.c, &t.s, &t.ann, &theirs).await.status(),
        StatusCode::CREATED
    );
    for (evidence, code) in [
        (sha256(b"never uploaded"), "unknown_evidence"),
        (sha256(&theirs), "unknown_evidence"),
        ("../../etc/passwd".to_owned(), "malformed_change"),
    ] {
        let res = t
            .step(
                &t.lead1,
                &action,
                json!({ "step": "progress", "text": "done", "evidence": [evidence] }),
            )
            .await;
        let (got, _) = error(res, StatusCode::UNPROCESSABLE_ENTITY, &evidence).await;
        assert_eq!(got, code, "{evidence}");
    }
    assert_eq!(
        t.action(&t.rita, &action).await,
        accepted,
        "nothing was kept"
    );

    // Two reports at once: each kept on top of the steps before it, none lost.
    let (r1, r2) = tokio::join!(
        t.step(
            &t.lead1,
            &action,
            json!({ "step": "progress", "text": "first" })
        ),
        t.step(
            &t.lead1,
            &action,
            json!({ "step": "progress", "text": "second" })
        ),
    );
    let ok = [r1.status(), r2.status()]
        .iter()
        .filter(|s| **s == StatusCode::OK)
        .count();
    let refused = [r1.status(), r2.status()]
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(ok + refused, 2, "{:?} {:?}", r1.status(), r2.status());
    let now = t.action(&t.rita, &action).await;
    assert_eq!(
        now["steps"].as_array().unwrap().len(),
        accepted["steps"].as_array().unwrap().len() + ok,
        "every report answered 200 is kept, and only those"
    );

    // Every refusal above is in the audit log against the action, with its code.
    let audit = t.audit();
    for code in [
        "forbidden",
        "wrong_state",
        "illegal_transition",
        "too_long",
        "unknown_evidence",
    ] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\taction\taction:{action}\t"))
                    && l.ends_with(&format!("\t{code}"))),
            "{code} audited:\n{audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_past_its_due_date_is_overdue_until_closed() {
    let t = setup().await;
    let (id, finding, _) = t.inspection().await;
    t.to_state(id, "in_progress").await;
    t.to_state(id, "submitted").await;
    let res = t
        .post(
            &t.rita,
            &format!("/api/v1/inspections/{id}/actions"),
            json!({ "source": { "kind": "finding", "finding": finding }, "what": "Fit closers",
                "due": due_in(0) }),
        )
        .await;
    let a = json_ok(res, StatusCode::CREATED, "raised, due today").await;
    assert_eq!(a["overdue"], false, "due today is not overdue");
    let action = a["id"].as_str().unwrap();
    // The record as it stands once the due date has passed.
    wardcheck_tests::server::make_overdue(t.s.data(), action.parse().unwrap(), 2);
    let v = t.action(&t.rita, action).await;
    assert_eq!(v["overdue"], true, "{v}");
    let res = t.get(&t.rita, "/api/v1/actions?trust=RJ1").await;
    let list = json_ok(res, StatusCode::OK, "list").await;
    assert_eq!(list[0]["overdue"], true);
}

/// Open actions carry over: an inspector sees an earlier inspection's actions only while
/// assigned a later visit to the same trust that is not yet submitted; an inspector of an
/// earlier visit, or of another trust, never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspectors_later_visit_carries_the_trusts_open_actions() {
    let t = setup().await;
    let earlier = t.s.create_inspection("RJ1", &["bob"]);
    let (id, finding, _) = t.inspection().await;
    t.to_state(id, "in_progress").await;
    t.to_state(id, "submitted").await;
    let res = t
        .raise(
            &t.rita,
            id,
            json!({ "kind": "finding", "finding": finding }),
        )
        .await;
    let a = json_ok(res, StatusCode::CREATED, "raised").await;
    let action = a["id"].as_str().unwrap().to_owned();
    let sees = |token: String| {
        let t = &t;
        let action = action.clone();
        async move {
            let one = t
                .get(&token, &format!("/api/v1/actions/{action}"))
                .await
                .status();
            let list = t.get(&token, "/api/v1/actions").await;
            let listed = json_ok(list, StatusCode::OK, "list")
                .await
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == action.as_str());
            (one, listed)
        }
    };
    assert_eq!(
        sees(t.bob.clone()).await,
        (StatusCode::NOT_FOUND, false),
        "bob's RJ1 visit came before: he does not see it"
    );
    let later = t.s.create_inspection("RJ1", &["bob"]);
    assert_eq!(
        sees(t.bob.clone()).await,
        (StatusCode::OK, true),
        "assigned the next visit, bob sees the open action"
    );
    // Bob may read it and check it on site, not move it.
    let res = t.step(&t.bob, &action, plan()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = t
        .step(
            &t.bob,
            &action,
            json!({ "step": "check", "outcome": "partly", "note": "Closers fitted on two of five doors" }),
        )
        .await;
    let v = json_ok(res, StatusCode::OK, "bob checks on site").await;
    assert_eq!(v["status"], "raised", "a check leaves the status");
    let last = v["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["step"].as_str(),
            last["by"].as_str(),
            last["outcome"].as_str()
        ),
        (Some("check"), Some("bob"), Some("partly"))
    );
    // A reviewer does not check; the trust lead does not even see the action (the
    // inspection is not shared with the trust).
    for (who, status) in [
        (&t.rita, StatusCode::FORBIDDEN),
        (&t.lead1, StatusCode::NOT_FOUND),
    ] {
        let res = t
            .step(
                who,
                &action,
                json!({ "step": "check", "outcome": "done", "note": "x" }),
            )
            .await;
        assert_eq!(res.status(), status);
    }
    // Once his visit is submitted, it no longer carries the action.
    for to in ["in_progress", "submitted"] {
        let bob = t.bob.clone();
        let res = t
            .post(
                &bob,
                &format!("/api/v1/inspections/{later}/state"),
                json!({ "state": to }),
            )
            .await;
        json_ok(res, StatusCode::OK, to).await;
    }
    assert_eq!(sees(t.bob.clone()).await, (StatusCode::NOT_FOUND, false));
    let _ = earlier;
}
