//! The dashboards' JSON API against the real server binary (issue 3 §5; RELIABILITY
//! A1-A3, B11, L3): listing in full pages under a server-side cap, filters, each role's
//! scope, reading an inspection through core's views, creating, assigning, sharing and
//! changing state with the wrong roles refused, and bad JSON refused with a code.

mod api_support;

use std::collections::BTreeSet;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use api_support::*;
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_tests::server::Server;

const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

fn server_with_users() -> Server {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer")
        .add_user("root", "admin")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    s
}

async fn create(c: &Client, s: &Server, token: &str, body: Value) -> reqwest::Response {
    c.post(s.url("/api/v1/inspections"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn list(c: &Client, s: &Server, token: &str, query: &str) -> Value {
    let res = c
        .get(s.url(&format!("/api/v1/inspections{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    json_ok(res, StatusCode::OK, &format!("list {query}")).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of a listing, following `next`.
async fn all_pages(
    c: &Client,
    s: &Server,
    token: &str,
    query: &str,
    limit: usize,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let q = format!("?limit={limit}{query}{after}");
        let page = list(c, s, token, &q).await;
        pages.push(ids(&page));
        match page["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
        assert!(pages.len() < 1000, "paging ends");
    }
    pages
}

#[tokio::test]
async fn listings_come_in_full_capped_pages_of_what_each_role_may_see() {
    let s = server_with_users();
    let c = client();
    let rita = token(&c, &s, "rita").await;
    let ann = token(&c, &s, "ann").await;
    let lead1 = token(&c, &s, "lead1").await;
    let lead2 = token(&c, &s, "lead2").await;

    // 205 inspections: RJ1 and RX2 alternately; ann on every third; every fifth shared.
    let mut mine = BTreeSet::new();
    let mut rj1_shared = BTreeSet::new();
    let mut rx2_shared = BTreeSet::new();
    let mut rx2 = BTreeSet::new();
    for i in 0..205 {
        let trust = if i % 2 == 0 { "RJ1" } else { "RX2" };
        let assign: Vec<&str> = if i % 3 == 0 { vec!["ann"] } else { vec!["bob"] };
        let rec = json_ok(
            create(
                &c,
                &s,
                &rita,
                json!({ "trust": trust, "checklist": "cqc-onsite-cyber", "assign": assign }),
            )
            .await,
            StatusCode::CREATED,
            "create",
        )
        .await;
        let id = rec["id"].as_str().unwrap().to_owned();
        if i % 3 == 0 {
            mine.insert(id.clone());
        }
        if trust == "RX2" {
            rx2.insert(id.clone());
        }
        if i % 5 == 0 {
            // The operator's share: these drafts are only listed.
            s.cli(&["inspection", "share", &id], "");
            if trust == "RJ1" {
                rj1_shared.insert(id);
            } else {
                rx2_shared.insert(id);
            }
        }
    }

    // The cap: a page never holds more than MAX_PAGE, whatever is asked.
    let page = list(&c, &s, &rita, "?limit=1000000").await;
    assert_eq!(
        ids(&page).len(),
        MAX_PAGE,
        "limit=1000000 gives the largest page"
    );
    assert!(page["next"].is_string(), "and a cursor to the rest");
    let page = list(&c, &s, &rita, "").await;
    assert_eq!(ids(&page).len(), DEFAULT_PAGE, "the default page");
    let pages = all_pages(&c, &s, &rita, "", MAX_PAGE).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [200, 5]);
    let all: Vec<String> = pages.concat();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        205,
        "every inspection exactly once across pages"
    );

    // An inspector's pages are full pages of their own inspections.
    let pages = all_pages(&c, &s, &ann, "", 10).await;
    let got: BTreeSet<String> = pages.concat().into_iter().collect();
    assert_eq!(got, mine, "ann sees exactly hers");
    for p in &pages[..pages.len() - 1] {
        assert_eq!(p.len(), 10, "the scope is in the query, so pages are full");
    }

    // A trust lead: their trust's shared inspections only, whatever the filter says.
    let got: BTreeSet<String> = all_pages(&c, &s, &lead1, "", 7)
        .await
        .concat()
        .into_iter()
        .collect();
    assert_eq!(got, rj1_shared, "lead1 sees RJ1's shared inspections");
    let other = list(&c, &s, &lead1, "?trust=RX2").await;
    assert!(
        ids(&other).is_empty(),
        "asking for another trust gives nothing"
    );
    let got: BTreeSet<String> = all_pages(&c, &s, &lead2, "", 50)
        .await
        .concat()
        .into_iter()
        .collect();
    assert_eq!(got, rx2_shared, "lead2 sees RX2's shared inspections");

    // Filters.
    let got: BTreeSet<String> = all_pages(&c, &s, &rita, "&trust=RX2", 50)
        .await
        .concat()
        .into_iter()
        .collect();
    assert_eq!(got, rx2, "trust filter");
    let drafts = all_pages(&c, &s, &rita, "&state=draft", 200).await.concat();
    assert_eq!(drafts.len(), 205, "state filter: all are drafts");
    let closed = list(&c, &s, &rita, "?state=closed").await;
    assert!(ids(&closed).is_empty());

    for bad in [
        "?limit=abc",
        "?state=finished",
        "?after=not-a-uuid",
        "?sort=trust",
    ] {
        let res = c
            .get(s.url(&format!("/api/v1/inspections{bad}")))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap();
        let (code, _) = error(res, StatusCode::BAD_REQUEST, bad).await;
        assert_eq!(code, "bad_query", "{bad}");
    }
    let res = c.get(s.url("/api/v1/inspections")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_inspection_reads_through_core_and_each_role_gets_what_it_may_see() {
    let s = server_with_users();
    let c = client();
    let id = s.create_inspection("RJ1", &["ann"]);
    let url = s.url(&format!("/api/v1/inspections/{id}"));
    let get = |who: String| {
        let (c, url) = (c.clone(), url.clone());
        async move { c.get(url).bearer_auth(who).send().await.unwrap() }
    };
    let ann = token(&c, &s, "ann").await;
    let v = json_ok(get(ann.clone()).await, StatusCode::OK, "ann reads hers").await;
    assert_eq!(v["record"]["id"], id.to_string());
    assert_eq!(
        v["inspection"]["meta"]["trust"], "RJ1",
        "the view comes from the document"
    );
    assert_eq!(
        v["inspection"]["meta"]["state"]["values"][0]["value"],
        "draft"
    );
    assert!(
        v["inspection"]["responses"]
            .as_object()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        v["trust_response"]["findings"].is_object(),
        "inspectors read the trust's response"
    );

    let root = token(&c, &s, "root").await;
    let v = json_ok(get(root).await, StatusCode::OK, "admin").await;
    assert!(
        v["inspection"].is_null(),
        "admins see records, not documents"
    );
    assert!(v["trust_response"].is_null());

    // Before sharing, lead1 gets the 404 of a missing id; after, the findings.
    let lead1 = token(&c, &s, "lead1").await;
    let lead2 = token(&c, &s, "lead2").await;
    let random = s.url(&format!("/api/v1/inspections/{}", Uuid::new_v4()));
    let missing = c.get(&random).bearer_auth(&lead1).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let missing = missing.bytes().await.unwrap();
    let res = get(lead1.clone()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "not shared yet");
    assert_eq!(
        res.bytes().await.unwrap(),
        missing,
        "the same answer as a random id"
    );
    s.cli(&["inspection", "share", &id.to_string()], "");
    let v = json_ok(get(lead1).await, StatusCode::OK, "lead1 after sharing").await;
    assert_eq!(v["inspection"]["meta"]["trust"], "RJ1");
    assert!(v["trust_response"].is_object());
    let res = get(lead2.clone()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "another trust's lead");
    assert_eq!(
        res.bytes().await.unwrap(),
        missing,
        "the same answer as a random id"
    );
    let bob = token(&c, &s, "bob").await;
    assert_eq!(
        get(bob).await.status(),
        StatusCode::NOT_FOUND,
        "an inspector not assigned"
    );
    let res = c
        .get(s.url("/api/v1/inspections/..%2F..%2Fetc"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "a malformed id is a missing one"
    );

    let audit = s.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit.lines().any(|l| l.contains("\tann\t")
            && l.contains("\tdoc_read\t")
            && l.contains(&id.to_string())),
        "document reads are audited:\n{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains("\tlead2\t")
            && l.contains("\tdenied\t")
            && l.contains(&id.to_string())),
        "refusals are audited with actor and target:\n{audit}"
    );
}

#[tokio::test]
async fn create_assign_share_and_state_refuse_the_wrong_roles() {
    let s = server_with_users();
    let c = client();
    let [ann, bob, rita, root, lead1] =
        futures_tokens(&c, &s, ["ann", "bob", "rita", "root", "lead1"]).await;
    let body = json!({ "trust": "RJ1", "sites": ["RJ121"], "checklist": "cqc-onsite-cyber", "assign": ["ann"] });

    for (who, t) in [("ann", &ann), ("lead1", &lead1)] {
        let (code, _) = error(
            create(&c, &s, t, body.clone()).await,
            StatusCode::FORBIDDEN,
            who,
        )
        .await;
        assert_eq!(code, "forbidden", "{who} may not create");
    }
    let res = create(&c, &s, &root, body.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED, "admins create");
    let res = create(&c, &s, &rita, body.clone()).await;
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let rec = json_ok(res, StatusCode::CREATED, "reviewers create").await;
    let id = rec["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/inspections/{id}"));
    assert_eq!(rec["sites"], json!(["RJ121"]));
    assert_eq!(rec["assignees"], json!(["ann"]));
    assert_eq!(rec["created_by"], "rita");

    let bad = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "not a trust", "checklist": "cqc-onsite-cyber" }),
    )
    .await;
    assert_eq!(
        error(bad, StatusCode::UNPROCESSABLE_ENTITY, "bad trust")
            .await
            .0,
        "invalid"
    );
    // A planned visit: its dates in the document; dates out of order, too long a visit, or
    // a last day alone are refused and nothing is kept.
    let planned = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann", "bob"],
            "visit_start": "2027-01-11", "visit_end": "2027-01-13" }),
    )
    .await;
    let planned = json_ok(planned, StatusCode::CREATED, "planned").await;
    let planned_id = planned["id"].as_str().unwrap();
    let res = c
        .get(s.url(&format!("/api/v1/inspections/{planned_id}")))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    let detail = json_ok(res, StatusCode::OK, "the lead inspector reads it").await;
    let meta = &detail["inspection"]["meta"];
    assert_eq!(meta["visit_start"], "2027-01-11");
    assert_eq!(meta["visit_end"], "2027-01-13");
    let roles: Vec<(String, String)> = meta["team"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("ann".into(), "lead_inspector".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("bob".into(), "inspector".into())),
        "{roles:?}"
    );
    let before = s.cli(&["inspection", "list"], "").lines().count();
    let actors = s.sql_row("SELECT count(*) FROM actors").unwrap()[0].clone();
    let checklists = s.sql_row("SELECT count(*) FROM checklists").unwrap()[0].clone();
    // Only enabled inspectors join a team: a reviewer or a trust lead named as the lead
    // inspector is refused.
    for who in ["rita", "lead1"] {
        let res = create(
            &c,
            &s,
            &rita,
            json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": [who] }),
        )
        .await;
        let (code, msg) = error(res, StatusCode::UNPROCESSABLE_ENTITY, who).await;
        assert_eq!(code, "not_an_inspector", "{who}: {msg}");
    }
    for (what, start, end) in [
        ("out of order", Some("2027-01-13"), Some("2027-01-11")),
        ("32 days", Some("2027-01-01"), Some("2027-02-01")),
        ("a last day alone", None, Some("2027-01-11")),
        ("the year 9999", Some("9999-01-11"), None),
        ("three years ago", Some("2023-12-01"), None),
    ] {
        let res = create(
            &c,
            &s,
            &rita,
            json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber",
                "visit_start": start, "visit_end": end }),
        )
        .await;
        let (code, msg) = error(res, StatusCode::UNPROCESSABLE_ENTITY, what).await;
        assert_eq!(code, "invalid_dates", "{what}: {msg}");
    }
    let bad = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "visit_start": "11/01/2027" }),
    )
    .await;
    assert_eq!(
        error(bad, StatusCode::BAD_REQUEST, "a date not YYYY-MM-DD")
            .await
            .0,
        "invalid_field"
    );
    assert_eq!(
        s.cli(&["inspection", "list"], "").lines().count(),
        before,
        "nothing kept of a refused plan"
    );
    assert_eq!(
        s.sql_row("SELECT count(*) FROM actors").unwrap()[0],
        actors,
        "no actor bound for a refused plan"
    );
    assert_eq!(
        s.sql_row("SELECT count(*) FROM checklists").unwrap()[0],
        checklists,
        "no checklist kept for a refused plan"
    );
    let audit = s.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\trita\t") && l.contains("invalid_dates")),
        "a refused plan is audited with its code:\n{audit}"
    );
    let bad = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "checklist": "no-such-list" }),
    )
    .await;
    assert_eq!(
        error(bad, StatusCode::UNPROCESSABLE_ENTITY, "checklist")
            .await
            .0,
        "unknown_checklist"
    );
    let bad = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["nobody"] }),
    )
    .await;
    assert_eq!(
        error(bad, StatusCode::UNPROCESSABLE_ENTITY, "assignee")
            .await
            .0,
        "unknown_user"
    );

    let post = |path: String, t: String, body: Option<Value>| {
        let c = c.clone();
        let url = s.url(&format!("/api/v1/inspections/{id}{path}"));
        async move {
            let mut r = c.post(url).bearer_auth(t);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send().await.unwrap()
        }
    };

    // assign and share: reviewers and admins only.
    for (who, t) in [("ann", &ann), ("lead1", &lead1)] {
        let res = post("/assign".into(), t.clone(), Some(json!({ "user": "bob" }))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} assigns");
        let res = post("/share".into(), t.clone(), None).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} shares");
    }
    let res = post(
        "/assign".into(),
        rita.clone(),
        Some(json!({ "user": "bob" })),
    )
    .await;
    let rec = json_ok(res, StatusCode::OK, "assign").await;
    assert_eq!(rec["assignees"], json!(["ann", "bob"]));
    let res = post(
        "/assign".into(),
        rita.clone(),
        Some(json!({ "user": "ghost" })),
    )
    .await;
    assert_eq!(
        error(res, StatusCode::UNPROCESSABLE_ENTITY, "ghost")
            .await
            .0,
        "unknown_user"
    );
    let res = post(
        "/assign".into(),
        rita.clone(),
        Some(json!({ "user": "bob", "role": "admin" })),
    )
    .await;
    assert_eq!(
        error(res, StatusCode::BAD_REQUEST, "extra field").await.0,
        "invalid_field"
    );

    // state: trust leads and admins never; inspectors only when assigned; moves the
    // document, not just the record.
    let to = |state: &str| Some(json!({ "state": state }));
    for (who, t) in [("lead1", &lead1), ("root", &root)] {
        let res = post("/state".into(), t.clone(), to("in_progress")).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{who} changes the state"
        );
    }
    let other = json_ok(
        create(
            &c,
            &s,
            &rita,
            json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"] }),
        )
        .await,
        StatusCode::CREATED,
        "other",
    )
    .await;
    let res = c
        .post(s.url(&format!(
            "/api/v1/inspections/{}/state",
            other["id"].as_str().unwrap()
        )))
        .bearer_auth(&bob)
        .json(&json!({ "state": "in_progress" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "bob is not assigned to it: 404, as if missing"
    );
    let res = post("/state".into(), ann.clone(), to("in_progress")).await;
    let rec = json_ok(res, StatusCode::OK, "ann starts it").await;
    assert_eq!(rec["state"], "in_progress");
    let res = post("/state".into(), ann.clone(), to("closed")).await;
    assert_eq!(
        error(res, StatusCode::CONFLICT, "in progress to closed")
            .await
            .0,
        "illegal_transition"
    );
    // State follows roles: a reviewer does not submit an inspector's work, and an
    // inspector neither shares nor closes their own.
    let res = post("/state".into(), rita.clone(), to("submitted")).await;
    assert_eq!(
        error(res, StatusCode::CONFLICT, "rita submits").await.0,
        "illegal_transition"
    );
    let res = post("/state".into(), ann.clone(), to("submitted")).await;
    json_ok(res, StatusCode::OK, "ann submits").await;
    for to_state in ["shared_with_trust", "in_progress"] {
        let res = post("/state".into(), ann.clone(), to(to_state)).await;
        assert_eq!(
            error(
                res,
                StatusCode::CONFLICT,
                &format!("ann moves it to {to_state}")
            )
            .await
            .0,
            "illegal_transition"
        );
    }
    let v = json_ok(
        c.get(s.url(&format!("/api/v1/inspections/{id}")))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "read back",
    )
    .await;
    let state = &v["inspection"]["meta"]["state"]["values"][0];
    assert_eq!(
        state["value"], "submitted",
        "the document holds the new state"
    );
    assert_eq!(state["by"], "ann", "stamped with the caller");
    assert_eq!(v["record"]["state"], "submitted", "and the record follows");

    // share: the reviewer's move of a submitted inspection, not the admin's; the trust
    // lead reads it afterwards; sharing twice is no move at all.
    let res = c
        .get(s.url(&format!("/api/v1/inspections/{id}")))
        .bearer_auth(&lead1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "not the lead's before it is shared"
    );
    assert_eq!(
        post("/share".into(), root.clone(), None).await.status(),
        StatusCode::FORBIDDEN,
        "admins do not share"
    );
    let rec = json_ok(
        post("/share".into(), rita.clone(), None).await,
        StatusCode::OK,
        "share",
    )
    .await;
    let first = rec["shared_at"].clone();
    assert!(first.is_string(), "{rec}");
    assert_eq!(rec["state"], "shared_with_trust");
    let res = post("/share".into(), rita.clone(), None).await;
    assert_eq!(
        error(res, StatusCode::CONFLICT, "shared again").await.0,
        "illegal_transition"
    );
    let res = c
        .get(s.url(&format!("/api/v1/inspections/{id}")))
        .bearer_auth(&lead1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the lead reads it once shared"
    );

    // Unknown ids.
    let res = c
        .post(s.url(&format!("/api/v1/inspections/{}/share", Uuid::new_v4())))
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error(res, StatusCode::NOT_FOUND, "share a random id")
            .await
            .0,
        "not_found"
    );
}

async fn futures_tokens<const N: usize>(c: &Client, s: &Server, users: [&str; N]) -> [String; N] {
    let mut out = Vec::new();
    for u in users {
        out.push(token(c, s, u).await);
    }
    out.try_into().unwrap()
}

#[tokio::test]
async fn bad_json_is_refused_with_a_code_and_large_bodies_with_413() {
    let s = server_with_users();
    let c = client();
    let rita = token(&c, &s, "rita").await;
    let raw = |body: Vec<u8>, ct: &'static str| {
        let (c, t) = (c.clone(), rita.clone());
        let url = s.url("/api/v1/inspections");
        async move {
            c.post(url)
                .bearer_auth(t)
                .header(header::CONTENT_TYPE, ct)
                .body(body)
                .send()
                .await
        }
    };
    let json = "application/json";

    let res = raw(br#"{"trust": "RJ1", "checklist": "#.to_vec(), json)
        .await
        .unwrap();
    let (code, message) = error(res, StatusCode::BAD_REQUEST, "truncated").await;
    assert_eq!(code, "bad_json", "{message}");
    let res = raw(
        br#"{"trust": "RJ1", "checklist": "cqc-onsite-cyber", "state": "closed"}"#.to_vec(),
        json,
    )
    .await
    .unwrap();
    let (code, message) = error(res, StatusCode::BAD_REQUEST, "unknown field").await;
    assert_eq!(code, "invalid_field");
    assert!(
        message.contains("state"),
        "the message names the field: {message}"
    );
    let res = raw(
        br#"{"trust": 7, "checklist": "cqc-onsite-cyber"}"#.to_vec(),
        json,
    )
    .await
    .unwrap();
    assert_eq!(
        error(res, StatusCode::BAD_REQUEST, "wrong type").await.0,
        "invalid_field"
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let res = raw(deep.into_bytes(), json).await.unwrap();
    let (code, _) = error(res, StatusCode::BAD_REQUEST, "10,000 deep").await;
    assert!(code == "bad_json" || code == "invalid_field", "{code}");
    let deep_field = format!(
        r#"{{"trust": "RJ1", "checklist": "cqc-onsite-cyber", "sites": {}{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let res = raw(deep_field.into_bytes(), json).await.unwrap();
    let (code, _) = error(res, StatusCode::BAD_REQUEST, "deep in a field").await;
    assert!(code == "bad_json" || code == "invalid_field", "{code}");
    let res = raw(
        br#"{"trust": "RJ1", "checklist": "cqc-onsite-cyber"}"#.to_vec(),
        "text/plain",
    )
    .await
    .unwrap();
    assert_eq!(
        error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not JSON")
            .await
            .0,
        "unsupported_media_type"
    );

    // 2 MB: refused from its declared length, before it is read. Only the headers are
    // sent here: the 413 must come back without waiting for the body.
    let mut tcp = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/inspections HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {rita}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        2 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .expect("the 413 comes before any of the body is sent")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");

    // The same with the whole body sent, as a client would.
    let mut big = br#"{"trust": "RJ1", "checklist": "cqc-onsite-cyber", "sites": [""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    big.extend_from_slice(br#""]}"#);
    match raw(big, json).await {
        Ok(res) => {
            let (code, _) = error(res, StatusCode::PAYLOAD_TOO_LARGE, "2 MB body").await;
            assert_eq!(code, "too_large");
        }
        // The server answers without reading the rest and closes; a client still
        // writing may see the reset before the answer. The raw exchange above is the proof.
        Err(e) => eprintln!("2 MB body: connection closed early ({e})"),
    }
    // A fresh client: the server closes a connection after a 413 without reading the
    // rest, and a pooled connection may be reused before the client sees that.
    let page = json_ok(
        client()
            .get(s.url("/api/v1/inspections"))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "list",
    )
    .await;
    assert!(ids(&page).is_empty(), "nothing was created by any of these");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_server_declares() {
    let s = Server::start();
    let c = client();
    let res = c.get(s.url("/api/v1/openapi.json")).send().await.unwrap();
    let doc = json_ok(res, StatusCode::OK, "openapi").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let declared = declared_routes();
    assert!(
        declared.len() >= 14,
        "the route reader finds the routes: {declared:?}"
    );
    for r in &declared {
        let op = paths
            .get(&r.path)
            .and_then(|p| p.get(r.method.to_ascii_lowercase()));
        assert!(
            op.is_some(),
            "{} {} is not in openapi.json",
            r.method,
            r.path
        );
    }
    // And nothing documented that the server does not serve.
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            let m = method.to_ascii_uppercase();
            let served = declared.iter().any(|r| &r.path == path && r.method == m);
            assert!(
                served,
                "openapi.json documents {m} {path}, which no route serves"
            );
        }
    }
}

#[tokio::test]
async fn a_state_change_goes_through_the_sync_engine_to_connected_clients() {
    use wardcheck_core::inspection::{Inspection, Stamp};
    use wardcheck_tests::client::{SyncClient, sign_in};

    let s = server_with_users();
    let c = client();
    let id = s.create_inspection("RJ1", &["ann"]);
    // Ann on two devices: her tablet syncs, her laptop uses the dashboard's API.
    let tablet = sign_in(&s, "ann").await;
    let laptop = token(&c, &s, "ann").await;
    let rita = token(&c, &s, "rita").await;

    // The tablet holds the document open on a sync connection: the engine has it in memory.
    let mut sync = SyncClient::connect(&s.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let doc = sync.fetch(id).await.unwrap();
    let checklist = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let item = wardcheck_tests::crash_items(&checklist)[0].clone();
    let mut mine = Inspection::from_doc(doc.with_actor(tablet.actor.clone()), checklist).unwrap();

    let res = c
        .post(s.url(&format!("/api/v1/inspections/{id}/state")))
        .bearer_auth(&laptop)
        .json(&json!({ "state": "in_progress" }))
        .send()
        .await
        .unwrap();
    json_ok(res, StatusCode::OK, "ann starts it from her laptop").await;

    // Ann edits concurrently, then syncs: she gets the state change, the server gets her
    // note, and what the server stores still loads and checks against its heads.
    mine.edit_note(
        &item,
        "Door to the server room propped open.",
        &Stamp::new("ann", chrono::Utc::now()),
    )
    .unwrap();
    sync.sync(id, &mut mine).await.unwrap();
    let state = mine.view().unwrap().meta.state;
    assert_eq!(
        serde_json::to_value(state.current().value).unwrap(),
        "in_progress",
        "the connected client received the API's change"
    );
    assert_eq!(state.current().by, "ann");
    sync.close().await;

    let v = json_ok(
        c.get(s.url(&format!("/api/v1/inspections/{id}")))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "read back",
    )
    .await;
    assert_eq!(v["record"]["state"], "in_progress");
    assert_eq!(
        v["inspection"]["responses"][&item]["note"], "Door to the server room propped open.",
        "both writers' changes are stored"
    );
    assert_eq!(
        v["inspection"]["meta"]["state"]["values"][0]["value"],
        "in_progress"
    );
}

/// Rescheduling a planned visit (issue 14, item 3): reviewers and admins only, a draft
/// only, dates checked as at creation; the new dates are in the document every device
/// syncs, and the change is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_visit_is_rescheduled_and_devices_get_the_new_dates() {
    let s = server_with_users();
    let c = client();
    let [ann, rita, root, lead1] = futures_tokens(&c, &s, ["ann", "rita", "root", "lead1"]).await;
    let planned = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"],
            "visit_start": "2027-01-11", "visit_end": "2027-01-13" }),
    )
    .await;
    let id = json_ok(planned, StatusCode::CREATED, "planned").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let schedule = |token: &str, body: Value| {
        c.post(s.url(&format!("/api/v1/inspections/{id}/schedule")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let dates = |token: String| {
        let (c, url) = (c.clone(), s.url(&format!("/api/v1/inspections/{id}")));
        async move {
            let res = c.get(url).bearer_auth(token).send().await.unwrap();
            let v = json_ok(res, StatusCode::OK, "read").await;
            let meta = &v["inspection"]["meta"];
            (meta["visit_start"].clone(), meta["visit_end"].clone())
        }
    };

    // Not theirs to move: the assigned inspector and the trust's lead.
    for (who, t) in [("ann", &ann), ("lead1", &lead1)] {
        let res = schedule(t, json!({ "visit_start": "2027-02-01" }))
            .await
            .unwrap();
        error(res, StatusCode::FORBIDDEN, who).await;
    }
    // A reviewer moves it; an admin may too.
    let res = schedule(
        &rita,
        json!({ "visit_start": "2027-02-01", "visit_end": "2027-02-02" }),
    )
    .await
    .unwrap();
    let moved = json_ok(res, StatusCode::OK, "rescheduled").await;
    assert_eq!(
        moved,
        json!({ "visit_start": "2027-02-01", "visit_end": "2027-02-02" })
    );
    assert_eq!(
        dates(ann.clone()).await,
        (json!("2027-02-01"), json!("2027-02-02"))
    );
    let res = schedule(&root, json!({ "visit_start": "2027-02-08" }))
        .await
        .unwrap();
    json_ok(res, StatusCode::OK, "an admin reschedules").await;
    assert_eq!(dates(ann.clone()).await, (json!("2027-02-08"), Value::Null));

    // The inspector's device gets the new dates by sync: they are in the document.
    let mut client = wardcheck_tests::client::SyncClient::connect(&s.ws_url(), Some(&ann))
        .await
        .expect("ann connects");
    let doc = client
        .fetch(id.parse().unwrap())
        .await
        .expect("ann syncs it");
    let checklist = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let view = wardcheck_core::inspection::Inspection::from_doc(doc, checklist)
        .unwrap()
        .view()
        .unwrap();
    assert_eq!(view.meta.visit_start.unwrap().to_string(), "2027-02-08");
    assert_eq!(view.meta.visit_end, None);

    // Bad dates: refused, nothing changed, no actor bound for the server's change.
    let actors = s.sql_row("SELECT count(*) FROM actors").unwrap()[0].clone();
    for (what, body, status, code) in [
        (
            "out of order",
            json!({ "visit_start": "2027-02-10", "visit_end": "2027-02-01" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_dates",
        ),
        (
            "three years ago",
            json!({ "visit_start": "2023-12-01" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_dates",
        ),
        (
            "no first day",
            json!({ "visit_end": "2027-02-01" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ] {
        let res = schedule(&rita, body).await.unwrap();
        let (got, msg) = error(res, status, what).await;
        assert_eq!(got, code, "{what}: {msg}");
    }
    assert_eq!(dates(ann.clone()).await, (json!("2027-02-08"), Value::Null));
    assert_eq!(
        s.sql_row("SELECT count(*) FROM actors").unwrap()[0],
        actors,
        "a refused reschedule binds no actor"
    );

    // Once the visit has begun, its dates are history.
    let res = c
        .post(s.url(&format!("/api/v1/inspections/{id}/state")))
        .bearer_auth(&ann)
        .json(&json!({ "state": "in_progress" }))
        .send()
        .await
        .unwrap();
    json_ok(res, StatusCode::OK, "begun").await;
    let actors = s.sql_row("SELECT count(*) FROM actors").unwrap()[0].clone();
    let res = schedule(&rita, json!({ "visit_start": "2027-03-01" }))
        .await
        .unwrap();
    let (got, _) = error(res, StatusCode::CONFLICT, "begun").await;
    assert_eq!(got, "wrong_state");
    assert_eq!(
        s.sql_row("SELECT count(*) FROM actors").unwrap()[0],
        actors,
        "a refused reschedule binds no actor"
    );
    assert_eq!(dates(ann.clone()).await, (json!("2027-02-08"), Value::Null));

    let audit = s.cli(&["audit", "tail", "-n", "60"], "");
    for (who, outcome) in [
        ("rita", "reschedule"),
        ("root", "reschedule"),
        ("rita", "invalid_dates"),
        ("rita", "wrong_state"),
    ] {
        assert!(
            audit.lines().any(|l| l.contains(&format!("\t{who}\t"))
                && l.contains("\tdoc_write\t")
                && l.contains(&id)
                && l.ends_with(outcome)),
            "{who} {outcome}:\n{audit}"
        );
    }
}

/// Cancelling a planned visit (issue 14, item 3): reviewers and admins, a draft only;
/// nothing in a cancelled inspection changes after, whoever tries; audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_visit_is_cancelled_and_nothing_in_it_changes_after() {
    let s = server_with_users();
    let c = client();
    let [ann, rita, lead1] = futures_tokens(&c, &s, ["ann", "rita", "lead1"]).await;
    let plan = |c: Client, token: String| {
        let url = s.url("/api/v1/inspections");
        async move {
            let res = c
                .post(url)
                .bearer_auth(token)
                .json(
                    &json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"],
                    "visit_start": "2027-01-11" }),
                )
                .send()
                .await
                .unwrap();
            json_ok(res, StatusCode::CREATED, "planned").await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let post = |token: &str, path: String, body: Option<Value>| {
        let req = c.post(s.url(&path)).bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        req.send()
    };
    let id = plan(c.clone(), rita.clone()).await;
    for (who, t) in [("ann", &ann), ("lead1", &lead1)] {
        let res = post(t, format!("/api/v1/inspections/{id}/cancel"), None)
            .await
            .unwrap();
        error(res, StatusCode::FORBIDDEN, who).await;
    }
    let res = post(&rita, format!("/api/v1/inspections/{id}/cancel"), None)
        .await
        .unwrap();
    let rec = json_ok(res, StatusCode::OK, "cancelled").await;
    assert_eq!(rec["state"], "cancelled");

    // Nothing changes after: a state move by its inspector, a reschedule, a second cancel.
    let res = post(
        &ann,
        format!("/api/v1/inspections/{id}/state"),
        Some(json!({ "state": "in_progress" })),
    )
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "{}",
        res.text().await.unwrap()
    );
    for path in ["schedule", "cancel"] {
        let body = (path == "schedule").then(|| json!({ "visit_start": "2027-02-01" }));
        let res = post(&rita, format!("/api/v1/inspections/{id}/{path}"), body)
            .await
            .unwrap();
        let (code, _) = error(res, StatusCode::CONFLICT, path).await;
        assert_eq!(code, "wrong_state", "{path}");
    }
    // The inspector's device sees the state by sync (what it may send after is the
    // write-policy test's: every part in a cancelled inspection, refused).
    let mut client = wardcheck_tests::client::SyncClient::connect(&s.ws_url(), Some(&ann))
        .await
        .expect("ann connects");
    let doc = client
        .fetch(id.parse().unwrap())
        .await
        .expect("ann syncs it");
    let checklist = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let insp = wardcheck_core::inspection::Inspection::from_doc(doc, checklist).unwrap();
    assert_eq!(
        insp.view().unwrap().meta.state.current().value,
        wardcheck_core::inspection::State::Cancelled
    );

    // A visit that has begun is not cancelled.
    let begun = plan(c.clone(), rita.clone()).await;
    let res = post(
        &ann,
        format!("/api/v1/inspections/{begun}/state"),
        Some(json!({ "state": "in_progress" })),
    )
    .await
    .unwrap();
    json_ok(res, StatusCode::OK, "begun").await;
    let res = post(&rita, format!("/api/v1/inspections/{begun}/cancel"), None)
        .await
        .unwrap();
    let (code, _) = error(res, StatusCode::CONFLICT, "begun").await;
    assert_eq!(code, "wrong_state");

    let audit = s.cli(&["audit", "tail", "-n", "60"], "");
    for (target, outcome) in [
        (&id, "cancel"),
        (&id, "wrong_state"),
        (&begun, "wrong_state"),
    ] {
        assert!(
            audit.lines().any(|l| l.contains("\trita\t")
                && l.contains("\tdoc_write\t")
                && l.contains(target.as_str())
                && l.ends_with(outcome)),
            "{target} {outcome}:\n{audit}"
        );
    }
}
