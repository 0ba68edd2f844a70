//! The checklists the server holds, for devices (issue 15, item 3, the server's side):
//! a checklist published with `checklist publish`, and one an inspection pins, are
//! listed with their pins, and their files load and hash to exactly that pin; a version
//! the server does not hold is 404; no token, 401.

mod api_support;

use api_support::*;
use reqwest::StatusCode;
use serde_json::Value;
use wardcheck_core::checklist;
use wardcheck_tests::server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_and_pinned_checklists_are_served_with_files_that_hash_to_their_pin() {
    let s = Server::start();
    s.add_user("ann", "inspector");
    s.add_user("rita", "reviewer");
    // A second version of a bundled checklist, published.
    let scratch = tempfile::tempdir().unwrap();
    let bundled = std::fs::read_to_string(
        wardcheck_tests::workspace_root().join("checklists/firewall-boundary.toml"),
    )
    .unwrap();
    let v2 = bundled.replacen("version = \"2026.1\"", "version = \"2026.2\"", 1);
    assert_ne!(v2, bundled);
    let file = scratch.path().join("firewall-boundary.toml");
    std::fs::write(&file, &v2).unwrap();
    s.cli(&["checklist", "publish", file.to_str().unwrap()], "");
    // And a bundled one, stored when an inspection pins it.
    s.create_inspection("RJ1", &["ann"]);

    let c = client();
    let ann = token(&c, &s, "ann").await;
    let list = json_ok(
        c.get(s.url("/api/v1/checklists"))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "the list",
    )
    .await;
    let held: Vec<(String, String, String)> = list["checklists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
                c["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        held.iter()
            .any(|(id, v, _)| id == "firewall-boundary" && v == "2026.2"),
        "the published version: {held:?}"
    );
    assert!(
        held.iter().any(|(id, _, _)| id == "cqc-onsite-cyber"),
        "the pinned bundled one: {held:?}"
    );
    // Each one's files load and hash to its pin.
    for (id, version, sha256) in &held {
        let got: Value = json_ok(
            c.get(s.url(&format!("/api/v1/checklists/{id}/{version}")))
                .bearer_auth(&ann)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
            "files",
        )
        .await;
        let files: Vec<(String, String)> = got["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_owned(),
                    f["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let loaded = checklist::load_files(&files).expect("the files load");
        assert_eq!(
            (&loaded.pin.id, &loaded.pin.version, &loaded.pin.sha256),
            (id, version, sha256),
            "the files are the pinned bytes"
        );
    }
    // Not held: 404; no token: 401.
    let res = c
        .get(s.url("/api/v1/checklists/firewall-boundary/1999.1"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = c.get(s.url("/api/v1/checklists")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
