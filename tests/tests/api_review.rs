//! Editing from the review dashboard through the API (issue 5 §3): reviewers' comments
//! and sign-offs, trust leads' responses to findings, the trust's telemetry summary, and
//! signing out. Against the real server on a real data folder:
//!
//! - each write lands in the document the sync engine holds: a client connected before
//!   the write receives it, and a fresh reader finds it;
//! - every limit is crossed: text one character over core's 20,000 (422 `too_long`), a
//!   body over 1 MiB (413), empty text, unknown targets, unknown fields, a body not sent
//!   as JSON, the wrong state;
//! - wrong roles get 403 before the id is looked up, and a trust lead of another trust
//!   gets exactly the 404 of a missing inspection;
//! - every write is in the audit log with its actor;
//! - the telemetry summary agrees with the join's figures on demo data.

mod api_support;

use std::sync::Arc;

use api_support::*;
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::inspection::{Inspection, Stamp};
use wardcheck_core::review::Review;
use wardcheck_core::sync::WireMessage;
use wardcheck_server::demo::{CONTRADICTION_INSPECTION, DEMO_PASSWORD};
use wardcheck_tests::client::{Incoming, Login, SyncClient, sign_in};
use wardcheck_tests::server::{Server, cli};

/// Core's limit on a comment, statement or response, in characters.
const MAX_TEXT: usize = 20_000;

struct Setup {
    s: Server,
    c: Client,
    /// Ann's device: its token, and the actor bound to her at sign-in.
    ann_login: Login,
    ann: String,
    rita: String,
    lead1: String,
    lead2: String,
    bob: String,
}

async fn setup() -> Setup {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    let c = client();
    let ann_login = sign_in(&s, "ann").await;
    Setup {
        ann: ann_login.token.clone(),
        ann_login,
        bob: token(&c, &s, "bob").await,
        rita: token(&c, &s, "rita").await,
        lead1: token(&c, &s, "lead1").await,
        lead2: token(&c, &s, "lead2").await,
        s,
        c,
    }
}

fn checklist() -> Arc<wardcheck_core::checklist::Checklist> {
    Arc::new(wardcheck_tests::crash_checklist())
}

impl Setup {
    /// The inspection's review document.
    async fn review_doc(&self, id: Uuid) -> Uuid {
        let v = self.detail(&self.rita, id).await;
        v["record"]["review_doc"].as_str().unwrap().parse().unwrap()
    }

    async fn create(&self) -> (Uuid, Uuid) {
        let res = self
            .c
            .post(self.s.url("/api/v1/inspections"))
            .bearer_auth(&self.rita)
            .json(&json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"] }))
            .send()
            .await
            .unwrap();
        let rec = json_ok(res, StatusCode::CREATED, "create").await;
        (
            rec["id"].as_str().unwrap().parse().unwrap(),
            rec["response_doc"].as_str().unwrap().parse().unwrap(),
        )
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(self.s.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn put(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.c
            .put(self.s.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn detail(&self, token: &str, id: Uuid) -> Value {
        let res = self
            .c
            .get(self.s.url(&format!("/api/v1/inspections/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        json_ok(res, StatusCode::OK, "detail").await
    }

    /// Moves the inspection on as the role that may: the inspector starts and submits,
    /// the reviewer returns, shares and closes.
    async fn state(&self, id: Uuid, to: &str) {
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

    async fn share(&self, id: Uuid) {
        let res = self
            .c
            .post(self.s.url(&format!("/api/v1/inspections/{id}/share")))
            .bearer_auth(&self.rita)
            .send()
            .await
            .unwrap();
        json_ok(res, StatusCode::OK, "share").await;
    }

    /// Adds a finding as ann, through sync; returns its id.
    async fn finding(&self, id: Uuid) -> Uuid {
        finding_by_sync(&self.s, &self.ann_login, "ann", id).await
    }

    /// Signs the submitted inspection off as ann, its lead inspector, through sync.
    async fn lead_signs(&self, id: Uuid) {
        let mut client = SyncClient::connect(&self.s.ws_url(), Some(&self.ann))
            .await
            .unwrap();
        let doc = client.fetch(id).await.unwrap();
        let mut insp =
            Inspection::from_doc(doc.with_actor(self.ann_login.actor.clone()), checklist())
                .unwrap();
        insp.sign_off(
            Uuid::new_v4(),
            wardcheck_core::inspection::SignoffRole::LeadInspector,
            "A fair account of what we saw.",
            &Stamp::new("ann", chrono::Utc::now()),
        )
        .unwrap();
        client.sync(id, &mut insp).await.unwrap();
        client.close().await;
    }
}

fn first_item() -> String {
    wardcheck_tests::crash_items(&checklist())[0].clone()
}

#[tokio::test]
async fn a_reviewer_comments_and_a_connected_client_receives_it() {
    let t = setup().await;
    let (id, _) = t.create().await;
    let finding = t.finding(id).await;

    // Ann is connected, holding the review document, before the reviewer writes.
    let review_doc = t.review_doc(id).await;
    let mut ann = SyncClient::connect(&t.s.ws_url(), Some(&t.ann))
        .await
        .unwrap();
    let mut held = ann.fetch(review_doc).await.unwrap();

    let path = format!("/api/v1/inspections/{id}/comments");
    let res = t
        .post(
            &t.rita,
            &path,
            json!({ "target": { "kind": "inspection" }, "text": "Ask the trust for its Windows 7 plan." }),
        )
        .await;
    let c = json_ok(res, StatusCode::CREATED, "a comment on the inspection").await;
    assert_eq!(c["by"], "rita", "stamped with the reviewer");
    assert_eq!(c["target"]["kind"], "inspection");
    for target in [
        json!({ "kind": "item", "id": first_item() }),
        json!({ "kind": "finding", "id": finding }),
    ] {
        let res = t
            .post(
                &t.rita,
                &path,
                json!({ "target": target, "text": "Checked." }),
            )
            .await;
        json_ok(res, StatusCode::CREATED, &format!("a comment on {target}")).await;
    }

    // The change arrives at ann's open connection as a push.
    let want = 3;
    loop {
        let comments = Review::from_doc(held.clone())
            .unwrap()
            .view()
            .unwrap()
            .comments;
        if comments.len() == want {
            assert!(comments.iter().all(|c| c.by == "rita"));
            break;
        }
        match ann.recv().await.expect("a push from the server") {
            Incoming::Message(WireMessage::Sync(d)) => {
                ann.apply(&mut held, &d).unwrap();
            }
            other => panic!("expected a sync push, got {other:?}"),
        }
    }
    ann.close().await;

    // And a fresh read (the dashboard's) holds all three.
    let v = t.detail(&t.rita, id).await;
    let kinds: Vec<&str> = v["inspection"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["target"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    for k in ["inspection", "item", "finding"] {
        assert!(kinds.contains(&k), "a comment on the {k}: {kinds:?}");
    }

    let audit = t.s.cli(&["audit", "tail", "-n", "50"], "");
    let writes = audit
        .lines()
        .filter(|l| l.contains("rita") && l.contains("doc_write") && l.contains("comment"))
        .count();
    assert_eq!(
        writes, 3,
        "each comment is audited with its actor:\n{audit}"
    );
}

#[tokio::test]
async fn comments_cross_every_limit_with_a_clear_error() {
    let t = setup().await;
    let (id, _) = t.create().await;
    let path = format!("/api/v1/inspections/{id}/comments");
    let inspection = json!({ "kind": "inspection" });

    // Exactly at the limit is kept; one character more is refused, and says why.
    let at = "é".repeat(MAX_TEXT);
    let res = t
        .post(&t.rita, &path, json!({ "target": inspection, "text": at }))
        .await;
    json_ok(res, StatusCode::CREATED, "20,000 characters (40,000 bytes)").await;
    let over = "é".repeat(MAX_TEXT + 1);
    let res = t
        .post(
            &t.rita,
            &path,
            json!({ "target": inspection, "text": over }),
        )
        .await;
    let (code, message) = error(res, StatusCode::UNPROCESSABLE_ENTITY, "20,001 characters").await;
    assert_eq!(code, "too_long");
    assert!(
        message.contains("20001") && message.contains("20000"),
        "the message gives the length and the limit: {message}"
    );

    // A body over 1 MiB is refused before it is read. The server answers without
    // reading the rest and closes the connection, so a client still writing may see the
    // reset before the answer: try a few times, each on a fresh client (never the shared
    // one, whose pooled connection the close would break for the next request).
    let huge = json!({ "target": inspection, "text": "x".repeat(1024 * 1024 + 1) });
    let mut answered = None;
    for _ in 0..5 {
        match client()
            .post(t.s.url(&path))
            .bearer_auth(&t.rita)
            .json(&huge)
            .send()
            .await
        {
            Ok(res) => {
                answered = Some(res);
                break;
            }
            Err(e) => eprintln!("a 1 MiB body: the connection closed early ({e})"),
        }
    }
    let res = answered.expect("the server answered a 1 MiB body in one of 5 tries");
    let (code, _) = error(res, StatusCode::PAYLOAD_TOO_LARGE, "a 1 MiB body").await;
    assert_eq!(code, "too_large");

    for (body, status, want, what) in [
        (
            json!({ "target": inspection, "text": "  \n " }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
            "blank text",
        ),
        (
            json!({ "target": { "kind": "item", "id": "no-such-item" }, "text": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_target",
            "an unknown item",
        ),
        (
            json!({ "target": { "kind": "finding", "id": Uuid::new_v4() }, "text": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_target",
            "an unknown finding",
        ),
        (
            json!({ "target": { "kind": "finding", "id": "not-a-uuid" }, "text": "x" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "a finding id that is not a UUID",
        ),
        (
            json!({ "target": inspection, "text": "x", "by": "someone else" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "an author in the body",
        ),
        (
            json!({ "text": "x" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "no target",
        ),
    ] {
        let res = t.post(&t.rita, &path, body).await;
        let (code, message) = error(res, status, what).await;
        assert_eq!(code, want, "{what}: {message}");
    }

    let res =
        t.c.post(t.s.url(&path))
            .bearer_auth(&t.rita)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(r#"{"target":{"kind":"inspection"},"text":"x"}"#)
            .send()
            .await
            .unwrap();
    let (code, _) = error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not JSON").await;
    assert_eq!(code, "unsupported_media_type");

    // Nothing refused reached the document.
    let v = t.detail(&t.rita, id).await;
    assert_eq!(v["inspection"]["comments"].as_array().unwrap().len(), 1);

    // A closed inspection takes no more comments.
    for to in ["in_progress", "submitted"] {
        t.state(id, to).await;
    }
    t.share(id).await;
    t.state(id, "closed").await;
    let res = t
        .post(
            &t.rita,
            &path,
            json!({ "target": inspection, "text": "late" }),
        )
        .await;
    let (code, _) = error(res, StatusCode::CONFLICT, "a comment once closed").await;
    assert_eq!(code, "wrong_state");
}

#[tokio::test]
async fn only_reviewers_comment_and_sign_off_and_only_once_submitted() {
    let t = setup().await;
    let (id, _) = t.create().await;
    let missing = Uuid::new_v4();
    for action in ["comments", "signoffs"] {
        let body = json!({ "target": { "kind": "inspection" }, "text": "x", "statement": "x" });
        for (who, token) in [
            ("the assigned inspector", &t.ann),
            ("another inspector", &t.bob),
            ("the trust's lead", &t.lead1),
        ] {
            for target in [id, missing] {
                let res = t
                    .post(
                        token,
                        &format!("/api/v1/inspections/{target}/{action}"),
                        body.clone(),
                    )
                    .await;
                let (code, _) =
                    error(res, StatusCode::FORBIDDEN, &format!("{who}: {action}")).await;
                assert_eq!(code, "forbidden", "decided before the id is looked up");
            }
        }
    }

    let path = format!("/api/v1/inspections/{id}/signoffs");
    let res = t
        .post(&t.rita, &path, json!({ "statement": "Reviewed." }))
        .await;
    let (code, message) = error(res, StatusCode::CONFLICT, "a sign-off of a draft").await;
    assert_eq!(code, "wrong_state", "{message}");

    for to in ["in_progress", "submitted"] {
        t.state(id, to).await;
    }
    let res = t
        .post(
            &t.rita,
            &path,
            json!({ "statement": "x".repeat(MAX_TEXT + 1) }),
        )
        .await;
    let (code, _) = error(res, StatusCode::UNPROCESSABLE_ENTITY, "a long statement").await;
    assert_eq!(code, "too_long");
    // The reviewer signs after the lead inspector.
    let res = t
        .post(&t.rita, &path, json!({ "statement": "Too early." }))
        .await;
    let (code, message) = error(res, StatusCode::CONFLICT, "before the lead inspector").await;
    assert_eq!(code, "wrong_state", "{message}");
    assert!(message.contains("after the lead inspector"), "{message}");
    t.lead_signs(id).await;
    let res = t
        .post(
            &t.rita,
            &path,
            json!({ "statement": "Reviewed against telemetry; agreed." }),
        )
        .await;
    let s = json_ok(res, StatusCode::CREATED, "a sign-off").await;
    assert_eq!(
        (s["role"].as_str(), s["by"].as_str()),
        (Some("reviewer"), Some("rita"))
    );
    let v = t.detail(&t.ann, id).await;
    let signoffs = v["inspection"]["signoffs"].as_array().unwrap();
    assert_eq!(
        signoffs.len(),
        2,
        "the inspector sees her own sign-off and the reviewer's"
    );
    assert_eq!(
        signoffs[1]["statement"],
        "Reviewed against telemetry; agreed."
    );
    assert_eq!(
        signoffs[1]["prev"], signoffs[0]["hash"],
        "the reviewer's sign-off follows the lead inspector's"
    );

    let audit = t.s.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("rita") && l.contains("sign_off")),
        "the sign-off is audited:\n{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("ann") && l.contains("denied") && l.contains("role")),
        "refusals are audited:\n{audit}"
    );
}

#[tokio::test]
async fn a_trust_lead_responds_to_findings_once_shared_and_others_see_it() {
    let t = setup().await;
    let (id, response_doc) = t.create().await;
    let finding = t.finding(id).await;
    let path =
        |inspection: Uuid, f: &str| format!("/api/v1/inspections/{inspection}/responses/{f}");
    let body = json!({ "text": "The imaging workstations move to a segregated VLAN by March." });

    // Before sharing, the trust's lead gets what a missing inspection gets.
    let random = Uuid::new_v4();
    let denied = t
        .put(&t.lead1, &path(id, &finding.to_string()), body.clone())
        .await;
    let absent = t
        .put(&t.lead1, &path(random, &finding.to_string()), body.clone())
        .await;
    assert_eq!(denied.status(), StatusCode::NOT_FOUND);
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        denied.bytes().await.unwrap(),
        absent.bytes().await.unwrap(),
        "not shared yet: the same answer as a missing inspection"
    );
    for to in ["in_progress", "submitted"] {
        t.state(id, to).await;
    }
    t.share(id).await;

    // A lead of another trust: the same 404 as a missing one, even once shared.
    let denied = t
        .put(&t.lead2, &path(id, &finding.to_string()), body.clone())
        .await;
    let absent = t
        .put(&t.lead2, &path(random, &finding.to_string()), body.clone())
        .await;
    assert_eq!(denied.status(), StatusCode::NOT_FOUND);
    assert_eq!(denied.bytes().await.unwrap(), absent.bytes().await.unwrap());

    // Roles that only read the response document: 403.
    for (who, token) in [("inspector", &t.ann), ("reviewer", &t.rita)] {
        let res = t
            .put(token, &path(id, &finding.to_string()), body.clone())
            .await;
        let (code, _) = error(res, StatusCode::FORBIDDEN, who).await;
        assert_eq!(code, "forbidden");
    }

    // The lead writes; limits first.
    let over = t
        .put(
            &t.lead1,
            &path(id, &finding.to_string()),
            json!({ "text": "y".repeat(MAX_TEXT + 1) }),
        )
        .await;
    let (code, message) = error(over, StatusCode::UNPROCESSABLE_ENTITY, "a long response").await;
    assert_eq!(code, "too_long");
    assert!(message.contains("20001"), "{message}");
    let empty = t
        .put(
            &t.lead1,
            &path(id, &finding.to_string()),
            json!({ "text": "" }),
        )
        .await;
    let (code, _) = error(empty, StatusCode::UNPROCESSABLE_ENTITY, "an empty response").await;
    assert_eq!(code, "empty");
    for f in [Uuid::new_v4().to_string(), "not-a-uuid".into()] {
        let res = t.put(&t.lead1, &path(id, &f), body.clone()).await;
        let (code, _) = error(res, StatusCode::NOT_FOUND, &format!("finding {f}")).await;
        assert_eq!(code, "unknown_finding");
    }

    let res = t
        .put(&t.lead1, &path(id, &finding.to_string()), body.clone())
        .await;
    let v = json_ok(res, StatusCode::OK, "the response").await;
    let key = finding.to_string();
    assert_eq!(
        v["trust_response"]["findings"][&key]["values"][0]["value"],
        body["text"]
    );
    // A second response replaces the first.
    let res = t
        .put(
            &t.lead1,
            &path(id, &key),
            json!({ "text": "Done: segregated on 2 March." }),
        )
        .await;
    json_ok(res, StatusCode::OK, "the response again").await;

    for (who, token) in [("inspector", &t.ann), ("reviewer", &t.rita)] {
        let v = t.detail(token, id).await;
        let values = &v["trust_response"]["findings"][&key]["values"];
        assert_eq!(values.as_array().map(Vec::len), Some(1), "{who}: one value");
        assert_eq!(
            values[0]["value"], "Done: segregated on 2 March.",
            "{who} sees it"
        );
        assert_eq!(values[0]["by"], "lead1", "stamped with the lead");
    }

    let audit = t.s.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit.lines().any(|l| l.contains("lead1")
            && l.contains(&format!("trust_response:{response_doc}"))
            && l.contains("respond")),
        "the response is audited:\n{audit}"
    );
}

#[tokio::test]
async fn signing_out_revokes_the_token_and_clears_the_cookie() {
    let t = setup().await;
    let token = api_support::token(&t.c, &t.s, "rita").await;
    let res =
        t.c.post(t.s.url("/api/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.starts_with("wardcheck_token=;")
            && cookie.contains("Max-Age=0")
            && cookie.contains("HttpOnly"),
        "the cookie is cleared: {cookie}"
    );
    for path in ["/api/v1/me", "/api/v1/inspections"] {
        let res =
            t.c.get(t.s.url(path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{path} after signing out"
        );
    }
    let again =
        t.c.post(t.s.url("/api/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "the token is gone"
    );
    // Other devices of the same user stay signed in.
    let res =
        t.c.get(t.s.url("/api/v1/me"))
            .bearer_auth(&t.rita)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "rita's other device");
    let audit = t.s.cli(&["audit", "tail", "-n", "20"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("rita") && l.contains("logout")),
        "{audit}"
    );
}

#[tokio::test]
async fn the_telemetry_summary_agrees_with_the_join() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let (ok, out, err) = cli(&data, &["demo-data"], "");
    assert!(ok, "demo-data: {out}\n{err}");
    let s = Server::start_on(&data, "127.0.0.1:0");
    let c = client();
    let login = |user: &'static str| {
        let c = c.clone();
        let url = s.url("/api/v1/login");
        async move {
            let res = c
                .post(url)
                .json(&json!({ "user": user, "password": DEMO_PASSWORD, "device": "summary test" }))
                .send()
                .await
                .unwrap();
            json_ok(res, StatusCode::OK, user).await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let rita = login("rita").await;
    let get = |token: &str, path: String| c.get(s.url(&path)).bearer_auth(token).send();
    let id = CONTRADICTION_INSPECTION;
    let summary = json_ok(
        get(&rita, format!("/api/v1/inspections/{id}/telemetry-summary"))
            .await
            .unwrap(),
        StatusCode::OK,
        "summary",
    )
    .await;
    let join = json_ok(
        get(&rita, format!("/api/v1/inspections/{id}/join"))
            .await
            .unwrap(),
        StatusCode::OK,
        "join",
    )
    .await;
    let check = |name: &str| {
        join["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["check"] == name)
            .unwrap_or_else(|| panic!("the join has {name}"))
            .clone()
    };
    let sum = |v: &Value, keys: &[&str]| keys.iter().map(|k| v[k].as_u64().unwrap()).sum::<u64>();
    let e = &summary["endpoints"];
    let os = check("endpoints.unsupported_os");
    assert_eq!(
        e["devices"].as_u64().unwrap(),
        os["total"].as_u64().unwrap() + os["not_judged"].as_u64().unwrap_or(0),
        "the same endpoints (Linux and the like outside the lifecycle check)"
    );
    assert_eq!(
        e["support"]["unsupported"], os["count"],
        "the same unsupported count"
    );
    assert!(
        os["count"].as_u64().unwrap() > 0,
        "RJ1 has unsupported endpoints"
    );
    assert_eq!(
        e["smb1"]["enabled"],
        check("endpoints.smb1_enabled")["count"]
    );
    // The chart counts every device without a reporting sensor; the check counts only
    // the end-user devices and servers among them (its default judge: medical devices
    // and devices Defender only discovered are not what the antivirus item is about).
    let no_sensor = sum(&e["onboarding"], &["not_onboarded", "inactive"]);
    let not_onboarded = check("endpoints.not_onboarded")["count"].as_u64().unwrap();
    assert!(
        not_onboarded > 0 && not_onboarded <= no_sensor,
        "{not_onboarded} of {no_sensor}"
    );
    assert_eq!(
        sum(
            &e["onboarding"],
            &["onboarded", "inactive", "not_onboarded", "discovered"]
        ),
        e["devices"].as_u64().unwrap()
    );
    assert_eq!(
        sum(&e["smb1"], &["enabled", "disabled", "unknown"]),
        e["devices"].as_u64().unwrap()
    );
    let listed: u64 = e["os"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["devices"].as_u64().unwrap())
        .sum();
    assert!(
        e["os"].as_array().unwrap().len() <= 12,
        "at most 12 groups listed"
    );
    assert_eq!(
        listed + sum(&e["os_other"], &["supported", "unsupported", "unknown"]),
        e["devices"].as_u64().unwrap(),
        "listed groups and the rest add up"
    );
    let a = &summary["alerts"];
    let alerts = check("alerts.unacknowledged_48h");
    assert_eq!(a["alerts"], alerts["total"]);
    assert_eq!(
        a["overdue"], alerts["count"],
        "overdue past 48 hours, as the join counts"
    );
    let bucketed: u64 = a["hours_to_acknowledge"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["alerts"].as_u64().unwrap())
        .sum();
    assert_eq!(bucketed, a["acknowledged"].as_u64().unwrap());

    // RJ1's lead sees it (the inspection is shared); RTH's lead gets a missing one's 404.
    let lead = login("lead-rj1").await;
    let res = get(&lead, format!("/api/v1/inspections/{id}/telemetry-summary"))
        .await
        .unwrap();
    assert_eq!(json_ok(res, StatusCode::OK, "RJ1's lead").await, summary);
    let other = login("lead-rth").await;
    let denied = get(
        &other,
        format!("/api/v1/inspections/{id}/telemetry-summary"),
    )
    .await
    .unwrap();
    let absent = get(
        &other,
        format!("/api/v1/inspections/{}/telemetry-summary", Uuid::new_v4()),
    )
    .await
    .unwrap();
    assert_eq!(denied.status(), StatusCode::NOT_FOUND);
    assert_eq!(denied.bytes().await.unwrap(), absent.bytes().await.unwrap());
}

#[tokio::test]
async fn internal_comments_stay_internal_until_a_reviewer_releases_one() {
    let t = setup().await;
    let (id, _) = t.create().await;
    let path = format!("/api/v1/inspections/{id}/comments");
    let mut ids = Vec::new();
    for text in [
        "Telemetry shows hundreds of Windows 7 devices in imaging.",
        "Please confirm the isolation plan for the imaging VLAN.",
    ] {
        let res = t
            .post(
                &t.rita,
                &path,
                json!({ "target": { "kind": "inspection" }, "text": text }),
            )
            .await;
        let c = json_ok(res, StatusCode::CREATED, "a comment").await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    for to in ["in_progress", "submitted"] {
        t.state(id, to).await;
    }
    t.share(id).await;

    // The trust's lead: no comment in the view, and no way to sync the review document.
    let v = t.detail(&t.lead1, id).await;
    assert_eq!(
        v["inspection"]["comments"].as_array().unwrap().len(),
        0,
        "no internal comment reaches the trust: {}",
        v["inspection"]["comments"]
    );
    let review = t.review_doc(id).await;
    let mut lead_sync = SyncClient::connect(&t.s.ws_url(), Some(&t.lead1))
        .await
        .unwrap();
    assert!(
        lead_sync.fetch(review).await.is_err(),
        "the review document is unavailable to the trust's lead"
    );
    let insp = lead_sync
        .fetch(id)
        .await
        .expect("the inspection document is readable");
    let bytes = {
        let mut d = insp.clone();
        d.save()
    };
    assert!(
        !api_support::contains(&bytes, b"Windows 7 devices in imaging"),
        "no comment text anywhere in the inspection document's history"
    );
    lead_sync.close().await;

    // Only a reviewer releases, and only that comment reaches the trust.
    let release = format!("/api/v1/inspections/{id}/comments/{}/release", ids[1]);
    for token in [&t.ann, &t.lead1] {
        let res = t.post(token, &release, json!({})).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let res = t.post(&t.rita, &release, json!({})).await;
    let c = json_ok(res, StatusCode::OK, "release").await;
    assert_eq!(c["released"]["by"], "rita");
    let res = t
        .post(
            &t.rita,
            &format!(
                "/api/v1/inspections/{id}/comments/{}/release",
                Uuid::new_v4()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        error(res, StatusCode::NOT_FOUND, "unknown").await.0,
        "unknown_comment"
    );
    let v = t.detail(&t.lead1, id).await;
    let shown = v["inspection"]["comments"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["id"], ids[1].as_str());
    // Inspectors and reviewers still see both, one marked released.
    let v = t.detail(&t.ann, id).await;
    let all = v["inspection"]["comments"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|c| c["released"].is_object()).count(), 1);
}
