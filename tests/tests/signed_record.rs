//! The signed record (issue 11), against the real server: the lead inspector signs, a
//! frozen answer is refused (audited, nothing stored), a reviewer reopens with a reason,
//! the answer changes, the lead inspector signs again, and `inspection verify` holds.
//! Then rows tampered with in the database: `audit verify` and `inspection verify` name
//! them.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc};
use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, SignoffRole, Stamp, State};
use wardcheck_core::policy::{Role, Writer};
use wardcheck_tests::client::{ClientError, Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;

fn item() -> String {
    wardcheck_tests::crash_items(&wardcheck_tests::crash_checklist())[0].clone()
}

fn now(by: &str) -> Stamp {
    Stamp::new(by, chrono::Utc::now())
}

/// The inspection as `login` holds it from the server, writing as `role` on its actor.
async fn fetch(s: &Server, login: &Login, id: Uuid, user: &str, role: Role) -> Inspection {
    let mut c = SyncClient::connect(&s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    c.close().await;
    let mut insp = Inspection::from_doc(
        doc.with_actor(login.actor.clone()),
        Arc::new(wardcheck_tests::crash_checklist()),
    )
    .unwrap();
    insp.set_writer(Writer::new(user, role));
    insp
}

/// Sends what `doc` holds; the server's refusal code, if it refused.
async fn send(
    s: &Server,
    login: &Login,
    id: Uuid,
    doc: &mut dyn wardcheck_tests::client::Replica,
) -> Result<(), String> {
    let mut c = SyncClient::connect(&s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let r = c.sync(id, doc).await;
    c.close().await;
    match r {
        Ok(()) => Ok(()),
        Err(ClientError::Server(m)) => Err(m),
        Err(e) => panic!("an unexpected sync failure: {e}"),
    }
}

async fn post(c: &Client, s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = c
        .post(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn audit_lines(s: &Server) -> Vec<String> {
    s.cli(&["audit", "tail", "-n", "1000"], "")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_inspection_is_frozen_reopened_with_a_reason_signed_again_and_verified() {
    let mut s = Server::start();
    s.add_user("ann", "inspector").add_user("rita", "reviewer");
    let id = s.create_inspection("RJ1", &["ann"]);
    let ann = sign_in(&s, "ann").await;
    let rita = sign_in(&s, "rita").await;
    let c = Client::new();
    let item = item();

    // Ann answers, submits and signs off, from her device.
    let mut insp = fetch(&s, &ann, id, "ann", Role::LeadInspector).await;
    insp.change_state(State::InProgress, &now("ann")).unwrap();
    insp.set_answer(&item, Answer::Met, &now("ann")).unwrap();
    insp.change_state(State::Submitted, &now("ann")).unwrap();
    insp.sign_off(
        Uuid::new_v4(),
        SignoffRole::LeadInspector,
        "A fair account of what we saw.",
        &now("ann"),
    )
    .unwrap();
    send(&s, &ann, id, &mut insp).await.unwrap();
    assert!(insp.view().unwrap().frozen);

    // Her app would refuse to change the answer now; a raw client sends it anyway.
    let e = insp
        .set_answer(&item, Answer::NotMet, &now("ann"))
        .unwrap_err();
    assert!(e.to_string().contains("frozen"), "{e}");
    let before = insp.heads();
    let mut raw: AutoCommit = insp.doc().clone();
    let r = raw.get(automerge::ROOT, "responses").unwrap().unwrap().1;
    let r = raw.get(&r, item.as_str()).unwrap().unwrap().1;
    raw.put(
        &r,
        "answer",
        json!({ "value": { "kind": "not-met" }, "by": "ann", "at": chrono::Utc::now() })
            .to_string(),
    )
    .unwrap();
    raw.commit();
    let refused = send(&s, &ann, id, &mut raw).await.unwrap_err();
    assert!(refused.contains("(frozen)"), "{refused}");
    let mut fresh = fetch(&s, &rita, id, "rita", Role::Reviewer).await;
    let mut h = fresh.heads();
    let mut b = before.clone();
    h.sort();
    b.sort();
    assert_eq!(h, b, "nothing of the refused change is stored");
    let refusal = audit_lines(&s)
        .into_iter()
        .find(|l| l.contains("change_refused") && l.contains("frozen"));
    assert!(refusal.is_some(), "the refusal is audited");

    // A sign-off whose content hash lies: refused too.
    let mut liar = fetch(&s, &rita, id, "rita", Role::Reviewer).await;
    let heads: Vec<String> = {
        let mut h: Vec<String> = liar.heads().iter().map(|h| h.to_string()).collect();
        h.sort();
        h
    };
    let tip = liar.chain().unwrap().seal().tip;
    let mut raw: AutoCommit = liar.doc().clone();
    let so = raw.get(automerge::ROOT, "signoffs").unwrap().unwrap().1;
    let lid = Uuid::new_v4().to_string();
    raw.put(
        &so,
        lid.as_str(),
        json!({ "id": lid, "role": "reviewer", "statement": "Reviewed", "by": "rita",
            "at": chrono::Utc::now(), "heads": heads, "content": "ab".repeat(32), "prev": tip })
        .to_string(),
    )
    .unwrap();
    raw.commit();
    let refused = send(&s, &rita, id, &mut raw).await.unwrap_err();
    assert!(
        refused.contains("(frozen)") && refused.contains("hashes to"),
        "{refused}"
    );

    // Reopening: not by the inspector, not without a reason.
    let path = format!("/api/v1/inspections/{id}/reopen");
    let (st, _) = post(&c, &s, &ann.token, &path, json!({ "reason": "x" })).await;
    assert_eq!(st, 403, "an inspector does not reopen");
    let (st, body) = post(&c, &s, &rita.token, &path, json!({ "reason": "  " })).await;
    assert_eq!(st, 422, "a reason is needed: {body}");
    let (st, body) = post(
        &c,
        &s,
        &rita.token,
        &path,
        json!({ "reason": "The answer to the first item needs the device sample." }),
    )
    .await;
    assert_eq!(st, 201, "{body}");

    // Ann's app takes the reopening, changes the answer, submits and signs again.
    send(&s, &ann, id, &mut insp).await.unwrap();
    assert_eq!(insp.state().unwrap().current().value, State::InProgress);
    assert!(!insp.view().unwrap().frozen);
    insp.set_answer(&item, Answer::PartlyMet, &now("ann"))
        .unwrap();
    insp.change_state(State::Submitted, &now("ann")).unwrap();
    insp.sign_off(
        Uuid::new_v4(),
        SignoffRole::LeadInspector,
        "A fair account, with the device sample.",
        &now("ann"),
    )
    .unwrap();
    send(&s, &ann, id, &mut insp).await.unwrap();
    let mut rv = fetch(&s, &rita, id, "rita", Role::Reviewer).await;
    rv.sign_off(
        Uuid::new_v4(),
        SignoffRole::Reviewer,
        "Reviewed.",
        &now("rita"),
    )
    .unwrap();
    send(&s, &rita, id, &mut rv).await.unwrap();

    let out = s.cli(&["inspection", "verify", &id.to_string()], "");
    assert!(out.contains("sign-off chain of 4 links"), "{out}");
    assert!(out.contains("reopened by reviewer rita"), "{out}");
    assert!(
        out.contains("The answer to the first item needs the device sample."),
        "{out}"
    );
    assert_eq!(out.matches(": matches").count(), 4, "{out}");
    assert!(out.contains("the signed record holds; last link "), "{out}");
    let view = rv.view().unwrap();
    assert_eq!(
        view.responses[&item]
            .answer
            .as_ref()
            .unwrap()
            .current()
            .value,
        Answer::PartlyMet
    );
    let chain = rv.chain().unwrap();
    assert_ne!(chain.links[0].content, chain.links[2].content);
    let tip = chain.links[3].hash.clone().unwrap();
    assert!(out.contains(&tip), "verify prints the last link: {out}");
    let (ok, _, _) = s.try_cli(&["audit", "verify"], "");
    assert!(ok, "the audit log holds");
    let ids = id.to_string();
    let (ok, _, err) = s.try_cli(&["inspection", "verify", &ids, "--expect-tip", &tip], "");
    assert!(ok, "the kept tip is the chain's: {err}");
    let gone = chain.links[3].prev.clone().unwrap();
    let (ok, _, _) = s.try_cli(&["inspection", "verify", &ids, "--expect-tip", &gone], "");
    assert!(ok, "a link still in the chain is found");
    let (ok, _, err) = s.try_cli(
        &[
            "inspection",
            "verify",
            &ids,
            "--expect-tip",
            &"e".repeat(64),
        ],
        "",
    );
    assert!(!ok && err.contains("links were taken off"), "{err}");

    // Tampering, with the server stopped: an audit row's detail changed (the reopening's
    // record made to say another link) ...
    s.stop();
    let reopen_hash = chain.links[1].hash.clone().unwrap();
    let row = s
        .sql_row(&format!(
            "SELECT seq, detail FROM audit WHERE action = 'reopened' AND target = 'inspection:{id}'"
        ))
        .expect("the reopening is audited");
    let seq: i64 = row[0].as_deref().unwrap().parse().unwrap();
    let detail = row[1].clone().unwrap();
    assert!(
        detail.starts_with(&format!("link {reopen_hash}")),
        "{detail}"
    );
    s.sql(&format!(
        "UPDATE audit SET detail = '{}' WHERE seq = {seq}",
        detail
            .replace(&reopen_hash, &"0".repeat(64))
            .replace('\'', "''")
    ));
    let (ok, out, err) = s.try_cli(&["audit", "verify"], "");
    assert!(!ok, "{out}");
    assert!(err.contains(&format!("broken at row {seq}")), "{err}");
    let (ok, out, err) = s.try_cli(&["inspection", "verify", &id.to_string()], "");
    assert!(!ok, "{out}");
    assert!(
        err.contains("link 2 (reopened by reviewer rita")
            && err.contains("the audit log has no record of it"),
        "inspection verify names the reopening: {err}"
    );
    s.sql(&format!(
        "UPDATE audit SET detail = '{}' WHERE seq = {seq}",
        detail.replace('\'', "''")
    ));
    let (ok, out, err) = s.try_cli(&["inspection", "verify", &id.to_string()], "");
    assert!(ok, "put back, it holds again: {out} {err}");

    // ... and the document's history rewritten: the first sign-off kept word for word
    // over a history in which the answer was changed after it, and the rest dropped.
    let first = &chain.links[0];
    let first_heads: Vec<automerge::ChangeHash> =
        first.heads.iter().map(|h| h.parse().unwrap()).collect();
    let mut whole = rv.doc().clone();
    let mut forged = whole.fork_at(&first_heads).unwrap();
    let so = forged.get(automerge::ROOT, "signoffs").unwrap().unwrap().1;
    let mut stored = first.clone();
    stored.hash = None;
    forged
        .put(
            &so,
            first.id.to_string(),
            serde_json::to_string(&stored).unwrap(),
        )
        .unwrap();
    let r = forged.get(automerge::ROOT, "responses").unwrap().unwrap().1;
    let r = forged.get(&r, item.as_str()).unwrap().unwrap().1;
    forged
        .put(
            &r,
            "answer",
            json!({ "value": { "kind": "not-met" }, "by": "ann", "at": chrono::Utc::now() })
                .to_string(),
        )
        .unwrap();
    let bytes = forged.save();
    s.sql(&format!(
        "UPDATE documents SET snapshot = {} WHERE doc_id = '{id}'",
        s.sql_bytes(&bytes)
    ));
    s.sql(&format!("DELETE FROM changes WHERE doc_id = '{id}'"));
    let (ok, out, err) = s.try_cli(&["inspection", "verify", &id.to_string()], "");
    assert!(!ok, "{out}");
    assert!(
        err.contains("link 1 (signed off by lead inspector ann")
            && err.contains("what it signed changed after it"),
        "the first sign-off is named: {err}"
    );
    assert!(
        err.contains(&format!("records a link (reopened) {reopen_hash}")),
        "the audit log's reopening is named: {err}"
    );
    assert!(out.contains("DOES NOT MATCH"), "{out}");
}
