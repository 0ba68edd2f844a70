//! Search (issue 14, item 6) through the API, against the real server on demo data
//! (SQLite, or PostgreSQL with `WARDCHECK_TEST_BACKEND=postgres`): findings, notes,
//! comments, actions and the trust's own name are found, each only by those who may see
//! it (a trust lead never finds another trust's, nor an internal comment); bad queries are
//! refused with 400 and admins with 403; each search is audited.

mod api_support;

use api_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wardcheck_server::demo::CONTRADICTION_INSPECTION;
use wardcheck_tests::server::Server;

/// The demo server ([`Demo`]): demo data, a real server, a client.
type Setup = Demo;

async fn setup() -> Setup {
    Demo::start().await
}

impl Demo {
    /// The hits of `q` for `token`.
    async fn search(&self, token: &str, q: &str) -> Vec<Value> {
        let res = self
            .c
            .get(search_url(&self.s, q))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        json_ok(res, StatusCode::OK, q).await["hits"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// `/api/v1/search?q=` with `q` encoded.
fn search_url(s: &Server, q: &str) -> reqwest::Url {
    reqwest::Url::parse_with_params(&s.url("/api/v1/search"), &[("q", q)]).unwrap()
}

fn has(hits: &[Value], kind: &str, target: &str) -> bool {
    hits.iter()
        .any(|h| h["kind"] == kind && h["target"].as_str() == Some(target))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_finds_only_what_they_may_see() {
    let t = setup().await;
    let (rita, lead, other, ann) = (
        t.token("rita").await,
        t.token("lead-rj1").await,
        t.token("lead-rth").await,
        t.token("ann").await,
    );
    let id = CONTRADICTION_INSPECTION;
    let res = t.get(&rita, &format!("/api/v1/inspections/{id}")).await;
    let detail = json_ok(res, StatusCode::OK, "detail").await;
    let insp = &detail["inspection"];

    // A finding, by words from the middle of its text, in another letter case.
    let finding = &insp["findings"][0];
    let words: Vec<&str> = finding["text"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    let q = words[1..words.len().min(4)].join(" ").to_uppercase();
    let fid = finding["id"].as_str().unwrap();
    assert!(
        has(&t.search(&rita, &q).await, "finding", fid),
        "the reviewer finds it"
    );
    assert!(
        has(&t.search(&lead, &q).await, "finding", fid),
        "RJ1's lead (shared)"
    );
    assert!(
        has(&t.search(&ann, &q).await, "finding", fid),
        "its inspector"
    );
    assert!(
        t.search(&other, &q)
            .await
            .iter()
            .all(|h| h["trust"] == "RTH"),
        "RTH's lead finds nothing of RJ1"
    );

    // A note on an answer.
    let (item, note) = insp["responses"]
        .as_object()
        .unwrap()
        .iter()
        .find_map(|(k, r)| {
            let n = r["note"].as_str()?;
            (n.split_whitespace().count() >= 3).then(|| (k.clone(), n.to_owned()))
        })
        .expect("a demo note");
    let q: String = note
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        has(&t.search(&rita, &q).await, "note", &item),
        "the note: {q}"
    );

    // Comments: an internal one only by the review side; a released one by the lead too.
    let comments = insp["comments"].as_array().unwrap();
    let internal = comments.iter().find(|c| c["released"].is_null());
    if let Some(c) = internal {
        let q: String = c["text"].as_str().unwrap().chars().take(30).collect();
        let cid = c["id"].as_str().unwrap();
        assert!(has(&t.search(&rita, &q).await, "comment", cid), "{q}");
        assert!(
            !has(&t.search(&lead, &q).await, "comment", cid),
            "never the trust's"
        );
    }
    let comment = json_ok(
        t.c.post(t.s.url(&format!("/api/v1/inspections/{id}/comments")))
            .bearer_auth(&rita)
            .json(&json!({ "target": { "kind": "inspection" }, "text": "Zebra crossing of the estates network" }))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
        "a comment",
    )
    .await;
    let cid = comment["id"].as_str().unwrap();
    assert!(has(
        &t.search(&rita, "zebra crossing").await,
        "comment",
        cid
    ));
    assert!(
        !has(&t.search(&lead, "zebra crossing").await, "comment", cid),
        "not released"
    );
    let res =
        t.c.post(t.s.url(&format!("/api/v1/inspections/{id}/comments/{cid}/release")))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap();
    assert!(res.status().is_success(), "released: {}", res.status());
    assert!(
        has(&t.search(&lead, "zebra crossing").await, "comment", cid),
        "released"
    );

    // An action, by the words of its plan as much as its title.
    let due = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let action = json_ok(
        t.c.post(t.s.url(&format!("/api/v1/inspections/{id}/actions")))
            .bearer_auth(&rita)
            .json(&json!({ "source": { "kind": "finding", "finding": fid },
                "what": "Retire the quokka print server", "due": due }))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
        "an action",
    )
    .await;
    let aid = action["id"].as_str().unwrap();
    assert!(has(&t.search(&rita, "quokka").await, "action", aid));
    assert!(has(&t.search(&lead, "QUOKKA").await, "action", aid));
    assert!(!has(&t.search(&other, "quokka").await, "action", aid));

    // The trust by its name.
    let hits = t.search(&rita, "st thomas").await;
    assert!(
        hits.iter()
            .any(|h| h["kind"] == "inspection" && h["trust"] == "RJ1"),
        "{hits:?}"
    );
    let audit = t.s.cli(&["audit", "tail", "-n", "200"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tsearch\t") && l.contains("hits")),
        "searches are audited:\n{audit}"
    );
    assert!(
        !audit.contains("quokka"),
        "the words are not written to the log"
    );
    assert!(
        audit.lines().any(|l| l.contains("\tdoc_read\t")
            && l.contains(&id.to_string())
            && l.ends_with("search")),
        "each document a hit came from is audited as read:\n{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains(&format!("action:{aid}")) && l.ends_with("search")),
        "and each action:\n{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_and_admins_are_refused() {
    let t = setup().await;
    let (rita, admin) = (t.token("rita").await, t.token("admin").await);
    for q in ["", "a", " a ", &"x".repeat(101)] {
        let res =
            t.c.get(search_url(&t.s, q))
                .bearer_auth(&rita)
                .send()
                .await
                .unwrap();
        let (code, _) = error(res, StatusCode::BAD_REQUEST, q).await;
        assert_eq!(code, "bad_query", "{q:?}");
    }
    let (code, _) = error(
        t.get(&rita, "/api/v1/search").await,
        StatusCode::BAD_REQUEST,
        "no q",
    )
    .await;
    assert_eq!(code, "bad_query");
    let (code, _) = error(
        t.get(&rita, "/api/v1/search?q=ab&limit=5").await,
        StatusCode::BAD_REQUEST,
        "unknown",
    )
    .await;
    assert_eq!(code, "bad_query");
    let (code, _) = error(
        t.get(&admin, "/api/v1/search?q=fire").await,
        StatusCode::FORBIDDEN,
        "admin",
    )
    .await;
    assert_eq!(code, "forbidden");
    let res =
        t.c.get(t.s.url("/api/v1/search?q=fire"))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
