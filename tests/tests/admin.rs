//! Administration (issue 14, item 4) through the API, against the real server on demo
//! data (SQLite, or PostgreSQL with `WARDCHECK_TEST_BACKEND=postgres`):
//!
//! - an admin adds a user, who has no password until they use the one-time code; a
//!   wrong, used or expired code is refused (401, audited) and never spends the right one;
//!   a reset gives a new code and the old password works until it is used;
//! - disabling refuses sign-in and the user's live tokens; re-enabling restores them; an
//!   admin cannot disable their own account; bad input is 400 and nothing is stored;
//! - the devices list carries last-seen times;
//! - the audit log is searched by user, action, inspection, trust and time, a page at a
//!   time, and exported as CSV (the export itself audited with its SHA-256);
//! - everyone but an admin gets 403, audited.

mod api_support;

use api_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wardcheck_server::demo::CONTRADICTION_INSPECTION;

impl Demo {
    async fn post_json(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(self.s.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, user: &str, password: &str) -> reqwest::Response {
        self.c
            .post(self.s.url("/api/v1/login"))
            .json(&json!({ "user": user, "password": password, "device": "nina's tablet" }))
            .send()
            .await
            .unwrap()
    }

    async fn set_password(&self, user: &str, code: &str, password: &str) -> reqwest::Response {
        self.c
            .post(self.s.url("/api/v1/password"))
            .json(&json!({ "user": user, "code": code, "password": password }))
            .send()
            .await
            .unwrap()
    }
}

const FIRST: &str = "correct horse battery";
const SECOND: &str = "staple and another one";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_disabled_and_reset_with_one_time_codes() {
    let t = Demo::start().await;
    let (admin, rita) = (t.token("admin").await, t.token("rita").await);

    // Not an admin: 403 before anything, audited.
    for path in [
        "/api/v1/users",
        "/api/v1/devices",
        "/api/v1/audit",
        "/api/v1/audit.csv",
    ] {
        error(t.get(&rita, path).await, StatusCode::FORBIDDEN, path).await;
    }
    error(
        t.post_json(
            &rita,
            "/api/v1/users",
            json!({ "name": "x", "role": "admin" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "a reviewer adds an admin",
    )
    .await;

    // Bad input: 400 (or 409), nothing stored.
    let before = json_ok(
        t.get(&admin, "/api/v1/users").await,
        StatusCode::OK,
        "users",
    )
    .await;
    for (body, code) in [
        (
            json!({ "name": "has space", "role": "inspector" }),
            "invalid_user",
        ),
        (
            json!({ "name": "@server", "role": "inspector" }),
            "invalid_user",
        ),
        (
            json!({ "name": "tl", "role": "trust-lead" }),
            "invalid_user",
        ),
        (
            json!({ "name": "tl", "role": "inspector", "trust": "RJ1" }),
            "invalid_user",
        ),
        (json!({ "name": "tl", "role": "boss" }), "invalid_user"),
        (
            json!({ "name": "x".repeat(101), "role": "inspector" }),
            "invalid_user",
        ),
    ] {
        let (got, _) = error(
            t.post_json(&admin, "/api/v1/users", body.clone()).await,
            StatusCode::BAD_REQUEST,
            &body.to_string(),
        )
        .await;
        assert_eq!(got, code);
    }
    let (got, _) = error(
        t.post_json(
            &admin,
            "/api/v1/users",
            json!({ "name": "ann", "role": "inspector" }),
        )
        .await,
        StatusCode::CONFLICT,
        "an existing name",
    )
    .await;
    assert_eq!(got, "user_exists");
    let after = json_ok(
        t.get(&admin, "/api/v1/users").await,
        StatusCode::OK,
        "users",
    )
    .await;
    assert_eq!(before, after, "nothing stored");

    // Added: no password works until the code is used.
    let made = json_ok(
        t.post_json(
            &admin,
            "/api/v1/users",
            json!({ "name": "nina", "display_name": "Nina Inspector", "role": "inspector" }),
        )
        .await,
        StatusCode::CREATED,
        "add nina",
    )
    .await;
    let code = made["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 16);
    error(
        t.login("nina", FIRST).await,
        StatusCode::UNAUTHORIZED,
        "no password yet",
    )
    .await;
    let (weak, _) = error(
        t.set_password("nina", &code, "short").await,
        StatusCode::BAD_REQUEST,
        "a weak password",
    )
    .await;
    assert_eq!(weak, "weak_password");
    // A wrong code does not spend the right one.
    error(
        t.set_password("nina", "2222222222222222", FIRST).await,
        StatusCode::UNAUTHORIZED,
        "a wrong code",
    )
    .await;
    assert_eq!(
        t.set_password("nina", &code, FIRST).await.status(),
        StatusCode::NO_CONTENT
    );
    let nina = json_ok(
        t.login("nina", FIRST).await,
        StatusCode::OK,
        "nina signs in",
    )
    .await;
    let nina_token = nina["token"].as_str().unwrap().to_string();
    error(
        t.set_password("nina", &code, SECOND).await,
        StatusCode::UNAUTHORIZED,
        "a used code",
    )
    .await;

    // A reset: the old password works until the new code is used; an expired code is
    // refused.
    let reset = json_ok(
        t.post(&admin, "/api/v1/users/nina/password-code").await,
        StatusCode::CREATED,
        "reset",
    )
    .await;
    let code = reset["code"].as_str().unwrap().to_string();
    json_ok(
        t.login("nina", FIRST).await,
        StatusCode::OK,
        "the old password still",
    )
    .await;
    t.s.sql("UPDATE password_codes SET expires_at = '2020-01-01T00:00:00.000000Z'");
    error(
        t.set_password("nina", &code, SECOND).await,
        StatusCode::UNAUTHORIZED,
        "an expired code",
    )
    .await;
    let reset = json_ok(
        t.post(&admin, "/api/v1/users/nina/password-code").await,
        StatusCode::CREATED,
        "reset again",
    )
    .await;
    let code = reset["code"].as_str().unwrap();
    assert_eq!(
        t.set_password("nina", code, SECOND).await.status(),
        StatusCode::NO_CONTENT
    );
    error(
        t.login("nina", FIRST).await,
        StatusCode::UNAUTHORIZED,
        "the old password",
    )
    .await;
    // A reset cuts off every device she had: a lost password, or a break-in.
    error(
        t.get(&nina_token, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "a token from before the reset",
    )
    .await;
    let again = json_ok(t.login("nina", SECOND).await, StatusCode::OK, "the new one").await;
    let nina_token = again["token"].as_str().unwrap().to_string();
    error(
        t.post(&admin, "/api/v1/users/nobody-here/password-code")
            .await,
        StatusCode::NOT_FOUND,
        "no such user",
    )
    .await;

    // Disabled: no sign-in, and her live token refused; re-enabled: both back.
    let (own, _) = error(
        t.post(&admin, "/api/v1/users/admin/disable").await,
        StatusCode::CONFLICT,
        "one's own account",
    )
    .await;
    assert_eq!(own, "own_account");
    let v = json_ok(
        t.post(&admin, "/api/v1/users/nina/disable").await,
        StatusCode::OK,
        "disable",
    )
    .await;
    assert_eq!(v["disabled"], true);
    error(
        t.login("nina", SECOND).await,
        StatusCode::UNAUTHORIZED,
        "disabled",
    )
    .await;
    error(
        t.get(&nina_token, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "her token",
    )
    .await;
    json_ok(
        t.post(&admin, "/api/v1/users/nina/enable").await,
        StatusCode::OK,
        "enable",
    )
    .await;
    json_ok(t.login("nina", SECOND).await, StatusCode::OK, "enabled").await;
    json_ok(
        t.get(&nina_token, "/api/v1/me").await,
        StatusCode::OK,
        "her token again",
    )
    .await;

    // The devices list: nina's, with a last-seen time once used.
    let devices = json_ok(
        t.get(&admin, "/api/v1/devices").await,
        StatusCode::OK,
        "devices",
    )
    .await;
    let hers: Vec<&Value> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["user_name"] == "nina")
        .collect();
    assert_eq!(hers.len(), 4, "four sign-ins: {hers:?}");
    assert!(hers.iter().all(|d| d["name"] == "nina's tablet"));
    let first = hers
        .iter()
        .find(|d| d["id"] == nina["device_id"])
        .expect("her first device");
    assert_eq!(first["revoked"], true, "revoked by the reset");
    let used = hers
        .iter()
        .find(|d| d["id"] == again["device_id"])
        .expect("the device of the token she used last");
    assert!(used["last_seen"].is_string(), "last seen: {used}");
    assert_eq!(used["revoked"], false);
    assert_eq!(
        hers.iter().filter(|d| d["revoked"] == true).count(),
        2,
        "the two from before the reset"
    );

    // Audited: every step, and the refusals.
    let page = json_ok(
        t.get(&admin, "/api/v1/audit?user=nina&action=password_set")
            .await,
        StatusCode::OK,
        "audit",
    )
    .await;
    let outcomes: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "denied", "denied", "ok", "denied"],
        "newest first: set, expired, used, set, wrong"
    );
    let details: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, ["2 devices revoked", "0 devices revoked"]);
    let adds = json_ok(
        t.get(&admin, "/api/v1/audit?user=admin").await,
        StatusCode::OK,
        "admin's",
    )
    .await;
    let actions: Vec<String> = adds["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["action"], e["target"], e["outcome"]))
        .collect();
    for want in [
        "\"user_add\" \"user:nina\" \"ok\"",
        "\"user_add\" \"user:ann\" \"user_exists\"",
        "\"user_disable\" \"user:nina\" \"ok\"",
        "\"user_enable\" \"user:nina\" \"ok\"",
        "\"user_disable\" \"user:admin\" \"own_account\"",
        "\"password_code\" \"user:nina\" \"ok\"",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:#?}");
    }
    let denied = json_ok(
        t.get(&admin, "/api/v1/audit?user=rita&action=denied").await,
        StatusCode::OK,
        "rita's refusals",
    )
    .await;
    assert!(denied["events"].as_array().unwrap().len() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_searched_paged_and_exported() {
    let t = Demo::start().await;
    let (admin, rita) = (t.token("admin").await, t.token("rita").await);
    let id = CONTRADICTION_INSPECTION;
    json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}")).await,
        StatusCode::OK,
        "a read to audit",
    )
    .await;

    // By inspection: the read of its documents, and nothing about other inspections.
    let page = json_ok(
        t.get(&admin, &format!("/api/v1/audit?inspection={id}&user=rita"))
            .await,
        StatusCode::OK,
        "by inspection",
    )
    .await;
    let events = page["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "doc_read"));
    let detail = json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}")).await,
        StatusCode::OK,
        "docs",
    )
    .await;
    let docs = [
        id.to_string(),
        detail["record"]["response_doc"]
            .as_str()
            .unwrap()
            .to_string(),
        detail["record"]["review_doc"].as_str().unwrap().to_string(),
    ];
    for e in events {
        let target = e["target"].as_str().unwrap();
        assert!(docs.iter().any(|d| target.contains(d.as_str())), "{target}");
    }
    // By trust: RJ1's inspection is in, RTH's is not.
    let rj1 = json_ok(
        t.get(&admin, "/api/v1/audit?trust=RJ1&limit=200").await,
        StatusCode::OK,
        "RJ1",
    )
    .await;
    assert!(
        rj1["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"].as_str().unwrap().contains(&id.to_string()))
    );
    let rth = json_ok(
        t.get(&admin, "/api/v1/audit?trust=RTH&limit=200").await,
        StatusCode::OK,
        "RTH",
    )
    .await;
    assert!(
        !rth["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"].as_str().unwrap().contains(&id.to_string()))
    );
    // Both: the inspection's events only if it is the trust's.
    let both = json_ok(
        t.get(&admin, &format!("/api/v1/audit?inspection={id}&trust=RTH"))
            .await,
        StatusCode::OK,
        "another trust's inspection",
    )
    .await;
    assert!(both["events"].as_array().unwrap().is_empty());
    let both = json_ok(
        t.get(&admin, &format!("/api/v1/audit?inspection={id}&trust=RJ1"))
            .await,
        StatusCode::OK,
        "its own trust's",
    )
    .await;
    assert!(!both["events"].as_array().unwrap().is_empty());
    error(
        t.get(&admin, "/api/v1/audit?trust=not%20a%20code").await,
        StatusCode::BAD_REQUEST,
        "a bad trust",
    )
    .await;
    error(
        t.get(&admin, "/api/v1/audit?from=yesterday").await,
        StatusCode::BAD_REQUEST,
        "a bad time",
    )
    .await;

    // Pages: newest first, each older than the one before, none twice.
    let mut seen = Vec::new();
    let mut before = String::new();
    for _ in 0..3 {
        let page = json_ok(
            t.get(&admin, &format!("/api/v1/audit?limit=2{before}"))
                .await,
            StatusCode::OK,
            "a page",
        )
        .await;
        let seqs: Vec<i64> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 2);
        assert!(seqs[0] > seqs[1]);
        if let Some(last) = seen.last() {
            assert!(seqs[0] < *last);
        }
        seen.extend(seqs);
        before = format!("&before={}", page["next"].as_i64().unwrap());
    }
    // By time: nothing from before the epoch of the demo, everything up to now.
    let none = json_ok(
        t.get(&admin, "/api/v1/audit?to=2000-01-01T00:00:00Z").await,
        StatusCode::OK,
        "to",
    )
    .await;
    assert!(none["events"].as_array().unwrap().is_empty());

    // Telemetry imports: every snapshot the demo imported, and a refused upload with its
    // error code.
    let res =
        t.c.post(t.s.url("/api/v1/telemetry/endpoints?as_of=2026-12-01"))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body("not,the,right,header\n1,2,3,4\n")
            .send()
            .await
            .unwrap();
    let (refused_code, _) = error(res, StatusCode::UNPROCESSABLE_ENTITY, "a bad feed").await;
    let imports = json_ok(
        t.get(&admin, "/api/v1/telemetry/imports").await,
        StatusCode::OK,
        "imports",
    )
    .await;
    let held: i64 = rusqlite::Connection::open(t.s.data().join("telemetry.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM telemetry_snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(imports["snapshots"].as_array().unwrap().len() as i64, held);
    assert!(held >= 3);
    let attempts = imports["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["target"], "telemetry:endpoints@2026-12-01");
    assert_eq!(attempts[0]["outcome"], refused_code.as_str());
    error(
        t.get(&rita, "/api/v1/telemetry/imports").await,
        StatusCode::FORBIDDEN,
        "a reviewer",
    )
    .await;

    // A hostile user name in the log stays text in the export: every cell quoted.
    let res =
        t.c.post(t.s.url("/api/v1/login"))
            .json(&json!({ "user": "x;=HYPERLINK(1)", "password": "wrong", "device": "d" }))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let raw = t
        .get(&admin, "/api/v1/audit.csv?action=login")
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.contains("\"x;=HYPERLINK(1)\""), "{raw}");
    assert!(raw.lines().all(|l| l.starts_with('"')), "every cell quoted");

    // The CSV export: every event of the search, and audited with its SHA-256.
    let res = t.get(&admin, "/api/v1/audit.csv?user=rita").await;
    assert_eq!(res.status(), StatusCode::OK);
    let sha = res.headers()["x-content-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.bytes().await.unwrap();
    assert_eq!(sha256(&bytes), sha);
    let mut csv = csv::Reader::from_reader(bytes.as_ref());
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "seq", "at", "actor", "device", "action", "target", "from", "outcome", "detail"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert!(rows.len() >= 2);
    assert!(rows.iter().all(|r| &r[2] == "rita"));
    let exports = json_ok(
        t.get(&admin, "/api/v1/audit?action=export&user=admin")
            .await,
        StatusCode::OK,
        "the export's own event",
    )
    .await;
    assert!(
        exports["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "audit_csv" && e["detail"].as_str().unwrap().contains(&sha))
    );
}
