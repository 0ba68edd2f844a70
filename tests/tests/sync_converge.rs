//! Two people edit one inspection offline and sync through the real server: they
//! converge, and the field both set is kept as a conflict. A connected reviewer gets
//! an inspector's change pushed without asking, and a trust lead reads but cannot
//! write. A device revoked while connected is cut off.

use std::sync::Arc;
use std::time::Duration;

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash};
use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::checklist::{AnswerKind, Checklist, Scope};
use wardcheck_core::inspection::{Answer, FieldRef, Inspection, Stamp};
use wardcheck_core::sync::{DocMessage, WireMessage, uuid_to_doc_id};
use wardcheck_server::inspections::encode_heads;
use wardcheck_tests::client::{ClientError, Incoming, Replica, SyncClient, sign_in};
use wardcheck_tests::crash_checklist;
use wardcheck_tests::server::Server;

fn checklist() -> Arc<Checklist> {
    Arc::new(crash_checklist())
}

fn compliance_items(c: &Checklist) -> Vec<String> {
    c.items()
        .filter(|(s, i)| s.scope == Scope::Inspection && i.answer == AnswerKind::Compliance)
        .map(|(_, i)| i.id.clone())
        .collect()
}

/// The heads the server has committed for a document, read from its storage.
fn stored_heads(server: &Server, id: Uuid) -> Vec<u8> {
    wardcheck_tests::off_runtime(|| server.storage().load_doc(id))
        .unwrap()
        .expect("the document is stored")
        .heads
}

fn sorted(mut h: Vec<ChangeHash>) -> Vec<ChangeHash> {
    h.sort();
    h
}

async fn load(client: &mut SyncClient, id: Uuid, actor: &ActorId) -> Inspection {
    let doc = client.fetch(id).await.expect("fetching the inspection");
    Inspection::from_doc(doc.with_actor(actor.clone()), checklist())
        .expect("the fetched document is the inspection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_by_two_inspectors_converge_with_the_conflict_kept() {
    let server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("ian", "inspector");
    let id = server.create_inspection("RJ1", &["ann", "ian"]);
    let ann_login = sign_in(&server, "ann").await;
    let rev_login = sign_in(&server, "ian").await;

    // Both load the inspection, then go offline.
    let mut c = SyncClient::connect(&server.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    let mut ann = load(&mut c, id, &ann_login.actor).await;
    c.close().await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    let mut rev = load(&mut c, id, &rev_login.actor).await;
    c.close().await;
    assert_eq!(ann.heads(), rev.heads(), "both loaded the same document");

    let items = compliance_items(&checklist());
    let (a, b, c_item, same) = (&items[0], &items[1], &items[2], &items[3]);
    let ann_stamp = Stamp::new("ann", Utc::now());
    let rev_stamp = Stamp::new("ian", Utc::now());
    ann.set_answer(a, Answer::Met, &ann_stamp).unwrap();
    ann.edit_note(b, "Patch log seen for all servers", &ann_stamp)
        .unwrap();
    ann.set_answer(same, Answer::Met, &ann_stamp).unwrap();
    rev.set_answer(c_item, Answer::NotMet, &rev_stamp).unwrap();
    rev.set_answer(same, Answer::PartlyMet, &rev_stamp).unwrap();

    // Back online: each syncs, then the first again to pick up the second's.
    let mut ann_c = SyncClient::connect(&server.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    let mut rev_c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    ann_c.sync(id, &mut ann).await.expect("the inspector syncs");
    rev_c
        .sync(id, &mut rev)
        .await
        .expect("the second inspector syncs");
    // Later, on a new connection (news on a live one arrives as pushes).
    ann_c.close().await;
    let mut ann_c = SyncClient::connect(&server.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    ann_c
        .sync(id, &mut ann)
        .await
        .expect("the inspector syncs again");

    assert_eq!(
        sorted(ann.heads()),
        sorted(rev.heads()),
        "both replicas end with the same heads"
    );
    assert_eq!(
        stored_heads(&server, id),
        encode_heads(&ann.heads()),
        "the server has committed the merged document"
    );
    let (va, vr) = (ann.view().unwrap(), rev.view().unwrap());
    assert_eq!(va, vr, "both replicas show the same inspection");
    let answer = |item: &str| va.responses[item].answer.clone();
    assert_eq!(answer(a).unwrap().current().value, Answer::Met);
    assert_eq!(answer(c_item).unwrap().current().value, Answer::NotMet);
    assert_eq!(
        va.responses[b.as_str()].note,
        "Patch log seen for all servers"
    );
    let both = answer(same).expect("the item both answered has an answer");
    assert!(
        both.is_conflict(),
        "the answer both set concurrently is a conflict, not a silent pick: {both:?}"
    );
    let mut values: Vec<(String, Answer)> = both
        .values
        .iter()
        .map(|c| (c.value.by.clone(), c.value.value.clone()))
        .collect();
    values.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        values,
        vec![
            ("ann".to_owned(), Answer::Met),
            ("ian".to_owned(), Answer::PartlyMet)
        ],
        "both values are kept with their authors"
    );
    assert!(
        va.conflicts
            .contains(&FieldRef::Answer { item: same.clone() }),
        "the view lists the conflict: {:?}",
        va.conflicts
    );
    ann_c.close().await;
    rev_c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_reviewer_gets_changes_pushed_and_a_trust_lead_only_reads() {
    let server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rev", "reviewer")
        .add_user("lead", "trust-lead:RJ1");
    let id = server.create_inspection("RJ1", &["ann"]);
    server.cli(&["inspection", "share", &id.to_string()], "");
    let ann_login = sign_in(&server, "ann").await;
    let rev_login = sign_in(&server, "rev").await;
    let lead_login = sign_in(&server, "lead").await;

    let mut rev_c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    let mut rev = load(&mut rev_c, id, &rev_login.actor).await;
    let mut ann_c = SyncClient::connect(&server.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    let mut ann = load(&mut ann_c, id, &ann_login.actor).await;

    let item = &compliance_items(&checklist())[0];
    ann.set_answer(item, Answer::NotMet, &Stamp::new("ann", Utc::now()))
        .unwrap();
    ann_c.sync(id, &mut ann).await.unwrap();

    // The reviewer asks nothing: the server pushes the change.
    match rev_c.recv().await.expect("a pushed message") {
        Incoming::Message(WireMessage::Sync(d)) => {
            assert_eq!(
                d.document_id,
                uuid_to_doc_id(id),
                "the push names the document"
            );
            rev_c.apply(&mut rev, &d).unwrap();
        }
        other => panic!("expected a pushed sync message, got {other:?}"),
    }
    // Finishing the exchange (the push is applied as part of it).
    rev_c.sync(id, &mut rev).await.unwrap();
    assert_eq!(
        sorted(rev.heads()),
        sorted(ann.heads()),
        "the reviewer has the inspector's change"
    );
    assert_eq!(
        rev.view().unwrap().responses[item.as_str()]
            .answer
            .as_ref()
            .map(|f| f.current().value.clone()),
        Some(Answer::NotMet)
    );

    // A trust lead, connecting the browser way (token in the query), reads the shared
    // inspection; its own edits never reach the server.
    let url = format!("{}?access_token={}", server.ws_url(), lead_login.token);
    let mut lead_c = SyncClient::connect(&url, None).await.unwrap();
    let mut lead_doc: AutoCommit = lead_c.fetch(id).await.expect("the lead reads it");
    assert_eq!(sorted(lead_doc.get_heads()), sorted(ann.heads()));
    let before = stored_heads(&server, id);
    lead_doc
        .put(automerge::ROOT, "lead_was_here", "no")
        .unwrap();
    lead_c
        .sync(id, &mut lead_doc)
        .await
        .expect("a reader's sync completes without its changes");
    assert!(
        lead_c.state(id).unwrap().is_peer_read_only(),
        "the server told the lead it only reads, so Automerge does not even send"
    );
    assert_eq!(stored_heads(&server, id), before, "nothing was stored");

    // A client that ignores the read-only flag and sends its change anyway.
    let mut m = lead_doc
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap();
    m.changes = automerge::sync::ChunkList::from(vec![lead_doc.save_after(&ann.heads())]);
    assert!(!m.changes.is_empty());
    lead_c
        .send(&WireMessage::Sync(DocMessage {
            sender_id: lead_c.peer_id.clone(),
            target_id: lead_c.server_id.clone(),
            document_id: uuid_to_doc_id(id),
            data: m.clone().encode(),
        }))
        .await
        .unwrap();
    // The server says nothing more to a reader it has told everything; a request
    // for a document that does not exist is answered after the message before it.
    let nowhere = uuid_to_doc_id(Uuid::new_v4());
    lead_c
        .send(&WireMessage::Request(DocMessage {
            sender_id: lead_c.peer_id.clone(),
            target_id: lead_c.server_id.clone(),
            document_id: nowhere.clone(),
            data: m.encode(),
        }))
        .await
        .unwrap();
    loop {
        match lead_c.recv().await.unwrap() {
            Incoming::Message(WireMessage::DocUnavailable { document_id, .. })
                if document_id == nowhere =>
            {
                break;
            }
            Incoming::Message(WireMessage::Sync(_)) => {}
            other => panic!("a reader's stray change is not an error, got {other:?}"),
        }
    }
    assert_eq!(
        stored_heads(&server, id),
        before,
        "the lead's change was not stored"
    );
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    let mut fresh = c.fetch(id).await.unwrap();
    assert_eq!(
        fresh.get_heads().len(),
        ann.heads().len(),
        "a reviewer sees no change from the lead"
    );
    assert!(
        !fresh.has_change(&lead_doc.get_heads()[0]),
        "the lead's change did not reach other users"
    );
    let audit = server.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tlead\t") && l.contains("doc_write") && l.contains("read_only")),
        "the refused write is audited:\n{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tann\t") && l.contains("doc_write") && l.ends_with("\tok")),
        "the inspector's write is audited:\n{audit}"
    );
}

/// A device revoked while its sync connection is open (from the CLI, another process)
/// is cut off: the server looks again before taking its next message, refuses it with
/// a message saying why, closes the connection, and keeps nothing of the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_while_connected_is_cut_off_and_its_change_refused() {
    let server = Server::start();
    server.add_user("ann", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    let login = sign_in(&server, "ann").await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let mut ann = load(&mut c, id, &login.actor).await;
    let before = stored_heads(&server, id);

    server.cli(&["device", "revoke", &login.device_id.to_string()], "");
    // Waiting (not timing anything): past the interval after which the server checks
    // the device again before taking a message.
    tokio::time::sleep(wardcheck_server::limits::DEVICE_RECHECK + Duration::from_millis(500)).await;
    let item = compliance_items(&checklist())[0].clone();
    ann.set_answer(&item, Answer::Met, &Stamp::new("ann", Utc::now()))
        .unwrap();
    let err = c
        .sync(id, &mut ann)
        .await
        .expect_err("a revoked device cannot sync");
    assert!(
        matches!(&err, ClientError::Server(m) if m.contains("revoked") && m.contains("sign in again")),
        "the server says why: {err:?}"
    );
    assert_eq!(
        stored_heads(&server, id),
        before,
        "nothing of the revoked device's change is kept"
    );
}

/// An inspector signs out (which revokes the device's token) with work not yet synced,
/// then signs in again on the same device: the store's actor moves to the new sign-in,
/// and the work is taken. Another user cannot take the actor over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signed_out_and_in_again_keeps_its_offline_work() {
    use wardcheck_tests::client::{login, login_with};
    use wardcheck_tests::server::PASSWORD;

    let server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer");
    let id = server.create_inspection("RJ1", &["ann"]);
    let base = server.url("");
    let base = base.trim_end_matches('/');
    let first = login(base, "ann", PASSWORD, "tablet").await.unwrap();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&first.token))
        .await
        .unwrap();
    let mut ann = load(&mut c, id, &first.actor).await;
    c.close().await;
    let item = compliance_items(&checklist())[0].clone();
    ann.set_answer(&item, Answer::NotMet, &Stamp::new("ann", Utc::now()))
        .unwrap();

    let res = reqwest::Client::new()
        .post(server.url("/api/v1/logout"))
        .bearer_auth(&first.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    // Bob cannot claim ann's actor.
    assert!(
        login_with(base, "bob", PASSWORD, "laptop", first.actor.clone())
            .await
            .is_err(),
        "another user's actor is refused at sign-in"
    );
    let again = login_with(base, "ann", PASSWORD, "tablet", first.actor.clone())
        .await
        .expect("ann signs in again with her store's actor");
    let mut c = SyncClient::connect(&server.ws_url(), Some(&again.token))
        .await
        .unwrap();
    c.sync(id, &mut ann)
        .await
        .expect("the work made before signing out is taken");
    c.close().await;

    let rita = sign_in(&server, "rita").await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    let seen = Inspection::from_doc(c.fetch(id).await.unwrap(), checklist())
        .unwrap()
        .view()
        .unwrap();
    c.close().await;
    assert_eq!(
        seen.responses[&item]
            .answer
            .as_ref()
            .map(|a| a.current().value.clone()),
        Some(Answer::NotMet)
    );
}
