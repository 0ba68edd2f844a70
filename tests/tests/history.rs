//! History anyone can read (issue 11), against the real server: an item three inspectors
//! changed in turn lists every value with its author (the user the change's actor is
//! bound to), the device it was made on and the time; a finding's and a device's history
//! likewise. Who may not read the inspection gets the 404 of a missing one; a query that
//! names nothing, or two things, a clear 400.

use std::sync::Arc;

use reqwest::Client;
use serde_json::Value;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::{Answer, FindingEdit, Inspection, NewFinding, Stamp, State};
use wardcheck_tests::client::{Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;

async fn edit(
    s: &Server,
    login: &Login,
    id: Uuid,
    by: &str,
    f: impl FnOnce(&mut Inspection, &Stamp),
) {
    let mut c = SyncClient::connect(&s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    let mut insp = Inspection::from_doc(
        doc.with_actor(login.actor.clone()),
        Arc::new(wardcheck_tests::crash_checklist()),
    )
    .unwrap();
    f(&mut insp, &Stamp::new(by, chrono::Utc::now()));
    c.sync(id, &mut insp).await.expect("the edit is taken");
    c.close().await;
}

async fn get(c: &Client, s: &Server, token: &str, path: &str) -> (u16, Value) {
    let res = c.get(s.url(path)).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_three_people_changed_lists_every_value_with_author_device_and_time() {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("ian", "inspector")
        .add_user("ivy", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    let id = s.create_inspection("RJ1", &["ann", "ian", "ivy"]);
    let item = wardcheck_tests::crash_items(&wardcheck_tests::crash_checklist())[0].clone();
    let ann = sign_in(&s, "ann").await;
    let ian = sign_in(&s, "ian").await;
    let ivy = sign_in(&s, "ivy").await;
    let rita = sign_in(&s, "rita").await;
    let lead2 = sign_in(&s, "lead2").await;

    let it = item.clone();
    edit(&s, &ann, id, "ann", |i, st| {
        i.change_state(State::InProgress, st).unwrap();
        i.set_answer(&it, Answer::Met, st).unwrap();
        i.edit_note(&it, "Patch board seen.", st).unwrap();
    })
    .await;
    let it = item.clone();
    edit(&s, &ian, id, "ian", |i, st| {
        i.set_answer(&it, Answer::PartlyMet, st).unwrap();
    })
    .await;
    let it = item.clone();
    edit(&s, &ivy, id, "ivy", |i, st| {
        i.set_answer(&it, Answer::NotMet, st).unwrap();
    })
    .await;
    let finding = Uuid::new_v4();
    let device = Uuid::new_v4();
    let it = item.clone();
    edit(&s, &ann, id, "ann", |i, st| {
        i.add_finding(
            NewFinding {
                id: finding,
                severity: Severity::High,
                text: "Unsupported devices".into(),
                items: vec![it],
                recommendation: "Replace".into(),
            },
            st,
        )
        .unwrap();
        i.add_device(device, "WS-0042", "19045", st).unwrap();
    })
    .await;
    edit(&s, &ian, id, "ian", |i, st| {
        i.edit_finding(
            finding,
            FindingEdit {
                severity: Some(Severity::Critical),
                ..Default::default()
            },
            st,
        )
        .unwrap();
    })
    .await;

    let c = Client::new();
    let (st, h) = get(
        &c,
        &s,
        &rita.token,
        &format!("/api/v1/inspections/{id}/history?item={item}"),
    )
    .await;
    assert_eq!(st, 200, "{h}");
    let answers: Vec<(String, String, String)> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "answer")
        .map(|e| {
            (
                e["author"].as_str().unwrap().to_owned(),
                e["value"]["value"]["kind"].as_str().unwrap().to_owned(),
                e["device"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let names: Vec<(&str, &str)> = answers
        .iter()
        .map(|(a, v, _)| (a.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        names,
        [("ann", "met"), ("ian", "partly-met"), ("ivy", "not-met")],
        "every value, oldest first, with its author: {h}"
    );
    for (who, _, device) in &answers {
        assert!(
            device.starts_with(who.as_str()),
            "made on {who}'s device: {device}"
        );
    }
    let note = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "note")
        .expect("the note's edit is listed");
    assert_eq!(note["value"], "Patch board seen.");
    assert_eq!(note["author"], "ann");
    for e in h["entries"].as_array().unwrap() {
        let at = chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
        assert!((chrono::Utc::now() - at.to_utc()).num_minutes() < 10, "{e}");
        assert_eq!(e["change"].as_str().unwrap().len(), 64);
    }
    assert_eq!(h["truncated"], false);

    let (st, h) = get(
        &c,
        &s,
        &ann.token,
        &format!("/api/v1/inspections/{id}/history?finding={finding}"),
    )
    .await;
    assert_eq!(st, 200, "{h}");
    let severities: Vec<(&str, &str)> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "severity")
        .map(|e| {
            (
                e["author"].as_str().unwrap(),
                e["value"]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(severities, [("ann", "high"), ("ian", "critical")], "{h}");
    let (st, h) = get(
        &c,
        &s,
        &ann.token,
        &format!("/api/v1/inspections/{id}/history?device={device}"),
    )
    .await;
    assert_eq!(st, 200, "{h}");
    assert!(
        h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "hostname" && e["value"]["value"] == "WS-0042"),
        "{h}"
    );

    // Bad queries: a clear 400, whoever asks.
    for q in [
        "",
        "?item=",
        "?finding=not-a-uuid",
        &format!("?item={item}&device={device}"),
        "?other=1",
    ] {
        let (st, body) = get(
            &c,
            &s,
            &rita.token,
            &format!("/api/v1/inspections/{id}/history{q}"),
        )
        .await;
        assert_eq!(st, 400, "{q}: {body}");
        assert_eq!(body["error"]["code"], "bad_query", "{q}: {body}");
    }
    let long = "x".repeat(600);
    let (st, _) = get(
        &c,
        &s,
        &rita.token,
        &format!("/api/v1/inspections/{id}/history?item={long}"),
    )
    .await;
    assert_eq!(st, 400);
    // Another trust's lead: the 404 of a missing inspection.
    let (st, _) = get(
        &c,
        &s,
        &lead2.token,
        &format!("/api/v1/inspections/{id}/history?item={item}"),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = get(
        &c,
        &s,
        &lead2.token,
        &format!("/api/v1/inspections/{}/history?item={item}", Uuid::new_v4()),
    )
    .await;
    assert_eq!(st, 404);
    let audit = s.cli(&["audit", "tail", "-n", "200"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("history_read") && l.contains("rita")),
        "{audit}"
    );
}
