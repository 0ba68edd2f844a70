//! `wardcheck-server demo-data` (issue 5 §1) as a user runs it: on a fresh data folder it
//! makes the users, telemetry and inspections; run again it adds nothing and says so; and
//! the seeded contradiction is visible through the join as the reviewer.

mod api_support;

use api_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wardcheck_server::demo::{CONTRADICTION_INSPECTION, CONTRADICTION_ITEM, DEMO_PASSWORD};
use wardcheck_tests::server::{Server, cli};

async fn demo_token(c: &reqwest::Client, s: &Server, user: &str) -> String {
    let res = c
        .post(s.url("/api/v1/login"))
        .json(&json!({ "user": user, "password": DEMO_PASSWORD, "device": "demo test" }))
        .send()
        .await
        .unwrap();
    let v = json_ok(
        res,
        StatusCode::OK,
        &format!("{user} signs in with the demo password"),
    )
    .await;
    v["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn demo_data_fills_a_fresh_folder_once_and_shows_the_seeded_contradiction() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");

    let (ok, out, err) = cli(&data, &["demo-data"], "");
    assert!(ok, "demo-data on a fresh folder: {out}\n{err}");
    for user in ["ann", "rita", "lead-rj1", "lead-rth", "admin"] {
        assert!(
            out.contains(&format!("user {user}: added")),
            "{user} added: {out}"
        );
    }
    assert!(
        out.contains("imported 50,000 endpoint rows"),
        "50,000 endpoints by default, through the importer: {out}"
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("demo-data:"))
        .unwrap_or_else(|| panic!("a one-line summary: {out}"));
    assert!(summary.contains("5 users (5 new)"), "{summary}");
    assert!(summary.contains("5 inspections (5 new"), "{summary}");
    assert!(
        out.contains(DEMO_PASSWORD),
        "the demo password is printed: {out}"
    );

    let (ok, again, err) = cli(&data, &["demo-data"], "");
    assert!(ok, "demo-data a second time: {again}\n{err}");
    assert!(!again.contains(": added"), "no user added twice: {again}");
    assert!(
        !again.contains(": created"),
        "no inspection created twice: {again}"
    );
    assert!(
        again.contains("telemetry endpoints: a snapshot exists"),
        "telemetry not imported twice: {again}"
    );
    assert!(again.contains("5 users (0 new)"), "{again}");
    assert!(again.contains("5 inspections (0 new"), "{again}");
    let (_, listed, _) = cli(&data, &["inspection", "list"], "");
    assert_eq!(listed.lines().count(), 5, "five inspections: {listed}");
    let (_, snapshots, _) = cli(&data, &["telemetry", "snapshots"], "");
    assert_eq!(
        snapshots
            .lines()
            .filter(|l| l.contains("endpoints"))
            .count(),
        3,
        "three endpoint snapshots (eight and four weeks before, and the day), once each: {snapshots}"
    );

    let s = Server::start_on(&data, "127.0.0.1:0");
    s.wait_ready();
    let c = client();
    let rita = demo_token(&c, &s, "rita").await;
    let url = s.url(&format!(
        "/api/v1/inspections/{CONTRADICTION_INSPECTION}/join"
    ));
    let res = c.get(&url).bearer_auth(&rita).send().await.unwrap();
    let join = json_ok(res, StatusCode::OK, "the reviewer reads the demo join").await;
    let item: &Value = join["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == CONTRADICTION_ITEM)
        .expect("the contradiction's item is in the join");
    assert_eq!(item["verdict"], "contradicted", "{item}");
    assert_eq!(item["answer"], "met");
    let windows7: u64 = item["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["os_platform"] == "Windows7")
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert!(
        (100..1000).contains(&windows7),
        "hundreds of Windows 7 devices at RJ1: {item}"
    );
    let statuses: Vec<&str> = join["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    for status in ["matched", "unmanaged", "build_differs", "stale"] {
        assert!(
            statuses.contains(&status),
            "a sampled device {status}: {statuses:?}"
        );
    }

    // The demo's trust leads: RJ1's reads it (shared), RTH's does not.
    let lead = demo_token(&c, &s, "lead-rj1").await;
    let res = c.get(&url).bearer_auth(&lead).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "RJ1's lead reads RJ1's join");
    let other = demo_token(&c, &s, "lead-rth").await;
    let res = c.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "RTH's lead does not");

    // A photo the demo attached is served to the reviewer.
    let res = c
        .get(s.url(&format!("/api/v1/inspections/{CONTRADICTION_INSPECTION}")))
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    let detail = json_ok(res, StatusCode::OK, "the demo inspection").await;
    let photo = detail["inspection"]["responses"]["ndg7-hard-copy-contacts"]["photos"][0]["value"]
        ["hash"]
        .as_str()
        .expect("a photo on the hard-copy contacts item")
        .to_owned();
    let res = c
        .get(s.url(&format!("/api/v1/blobs/{photo}")))
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        sha256(&bytes),
        photo,
        "the stored photo is the one referred to"
    );
}
