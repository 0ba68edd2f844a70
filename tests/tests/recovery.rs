//! A damaged stored document is recovered, never lost: rows damaged in the real database
//! of a stopped server are set aside (kept, never deleted), the document is rebuilt from
//! what still loads, the inspection opens with everything that was good, reviewers and
//! the audit log are told what was set aside, and the device that still holds a lost
//! change brings it back on its next sync.

use std::sync::Arc;

use automerge::ReadDoc;
use chrono::Utc;
use rusqlite::params;
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_server::storage::{SqliteStorage, Storage};
use wardcheck_tests::client::{Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;
use wardcheck_tests::{crash_checklist, crash_items};

async fn load(server: &Server, login: &Login, id: Uuid) -> Inspection {
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    c.close().await;
    Inspection::from_doc(
        doc.with_actor(login.actor.clone()),
        Arc::new(crash_checklist()),
    )
    .unwrap()
}

async fn sync(server: &Server, login: &Login, id: Uuid, insp: &mut Inspection) {
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    c.sync(id, insp).await.expect("the change syncs");
    c.close().await;
}

fn db(server: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(server.data().join("wardcheck.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_rows_are_set_aside_and_the_inspection_opens_with_everything_that_was_good() {
    let mut server = Server::start_sqlite();
    server
        .add_user("ann", "inspector")
        .add_user("ian", "inspector")
        .add_user("rita", "reviewer");
    let id = server.create_inspection("RJ1", &["ann", "ian"]);
    let other = server.create_inspection("RJ1", &["ann"]);
    let ann = sign_in(&server, "ann").await;
    let ian = sign_in(&server, "ian").await;
    let rita = sign_in(&server, "rita").await;
    let items = crash_items(&crash_checklist());
    let st = |by: &str| Stamp::new(by, Utc::now());

    // Ann and Ian load the inspection; Ann syncs two changes (two rows), Ian one made
    // from where they both started (a third row that does not depend on Ann's).
    let mut a = load(&server, &ann, id).await;
    let mut i = load(&server, &ian, id).await;
    a.set_answer(&items[0], Answer::Met, &st("ann")).unwrap();
    sync(&server, &ann, id, &mut a).await;
    a.edit_note(&items[1], "The patch board is on the wall.", &st("ann"))
        .unwrap();
    let lost = a.heads();
    sync(&server, &ann, id, &mut a).await;
    i.set_answer(&items[2], Answer::NotMet, &st("ian")).unwrap();
    sync(&server, &ian, id, &mut i).await;
    // The other inspection: one change, then a compaction, as the server makes one.
    let mut o = load(&server, &ann, other).await;
    o.set_answer(&items[0], Answer::PartlyMet, &st("ann"))
        .unwrap();
    let kept = o.heads();
    sync(&server, &ann, other, &mut o).await;
    // The reviewer's copy holds everything, Ann's changes among them.
    let mut r = load(&server, &rita, id).await;
    server.stop();

    {
        let s = SqliteStorage::open(server.data()).unwrap();
        let stored = s.load_doc(other).unwrap().unwrap();
        let mut whole = wardcheck_core::store::load_checked(
            other,
            &stored.snapshot,
            stored.changes.iter().map(Vec::as_slice),
            &stored.heads,
        )
        .unwrap();
        s.compact(other, &whole.save(), &stored.heads).unwrap();
    }
    // Bit rot in the real file: a byte of Ann's second row, and the other inspection's
    // snapshot cut short.
    let conn = db(&server);
    let (seq, mut bytes): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT seq, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq LIMIT 1 OFFSET 1",
            params![id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    conn.execute(
        "UPDATE changes SET bytes = ?3 WHERE doc_id = ?1 AND seq = ?2",
        params![id.to_string(), seq, bytes],
    )
    .unwrap();
    conn.execute(
        "UPDATE documents SET snapshot = substr(snapshot, 1, 40) WHERE doc_id = ?1",
        params![other.to_string()],
    )
    .unwrap();
    drop(conn);

    server.restart();
    // The reviewer reads both: each opens, with everything that still loads.
    let view = {
        let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
            .await
            .unwrap();
        let doc = c.fetch(id).await.expect("the damaged inspection opens");
        let doc2 = c
            .fetch(other)
            .await
            .expect("the one whose snapshot was cut opens");
        c.close().await;
        let v = Inspection::from_doc(doc, Arc::new(crash_checklist()))
            .unwrap()
            .view()
            .unwrap();
        let d2 = doc2;
        for h in &kept {
            assert!(
                d2.get_change_by_hash(h).is_some(),
                "the change compacted into the cut snapshot is back, from the one before"
            );
        }
        v
    };
    let answer = |item: &str| {
        view.responses[item]
            .answer
            .clone()
            .map(|f| f.current().value.clone())
    };
    assert_eq!(
        answer(&items[0]),
        Some(Answer::Met),
        "Ann's first change is kept"
    );
    assert_eq!(
        answer(&items[2]),
        Some(Answer::NotMet),
        "Ian's change is kept"
    );
    assert_eq!(
        view.responses[items[1].as_str()].note,
        "",
        "the damaged row is not served"
    );

    // Nothing was deleted: the bad rows are set aside, and said so.
    let conn = db(&server);
    let aside: Vec<(String, Option<i64>, Vec<u8>)> = conn
        .prepare("SELECT kind, seq, bytes FROM set_aside ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        aside
            .iter()
            .any(|(k, s, b)| k == "change" && *s == Some(seq) && *b == bytes),
        "the damaged row is kept as it was: {aside:?}"
    );
    assert!(
        aside.iter().any(|(k, _, _)| k == "snapshot"),
        "so is the cut snapshot"
    );
    drop(conn);
    let res = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/inspections/{id}")))
        .bearer_auth(&rita.token)
        .send()
        .await
        .unwrap();
    let detail: serde_json::Value = res.json().await.unwrap();
    let rows = detail["set_aside"]
        .as_array()
        .expect("reviewers are shown what was set aside");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["kind"], "change");
    let audit = server.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit.lines().any(|l| l.contains("\tdoc_rebuilt\t")
            && l.contains(&id.to_string())
            && l.contains("set aside")),
        "the audit log says what was set aside:\n{audit}"
    );

    // The reviewer's device still holds the change the server lost, though it is Ann's:
    // the server took it once, so its next sync restores it (whoever relays it), rather
    // than refusing another user's change and locking the reviewer out.
    sync(&server, &rita, id, &mut r).await;
    // And Ann's, which holds it too, syncs as before.
    sync(&server, &ann, id, &mut a).await;
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    let back = c.fetch(id).await.unwrap();
    c.close().await;
    for h in &lost {
        assert!(
            back.get_change_by_hash(h).is_some(),
            "the lost change is back from Ann's device"
        );
    }

    // And it all survives another restart.
    server.restart();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    c.fetch(id).await.expect("loads after a restart");
    c.fetch(other).await.expect("loads after a restart");
    c.close().await;
}

/// An inspection from before review documents and bound actors is brought up to date
/// when its server starts: the comments its inspection document held move to a new
/// review document (out of what its trust lead may sync), and the actors of its history
/// are bound, each to the one user its changes name, or to no one who may write again,
/// so that no one can claim them later and lock their device out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspection_from_before_review_documents_is_migrated() {
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ActorId, AutoCommit};
    use wardcheck_server::inspections::encode_heads;

    let mut server = Server::start_sqlite();
    server
        .add_user("ann", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1");
    let id = server.create_inspection("RJ1", &["ann"]);
    server.cli(&["inspection", "share", &id.to_string()], "");
    server.stop();

    // Made as the old server made them: a comment in the inspection document itself,
    // written by an actor no one bound; a second actor whose changes name two users.
    const SECRET: &str = "Telemetry shows hundreds of Windows 7 devices in imaging";
    let (legacy, mixed) = (ActorId::random(), ActorId::random());
    {
        let storage = SqliteStorage::open(server.data()).unwrap();
        let stored = storage.load_doc(id).unwrap().unwrap();
        let doc = wardcheck_core::store::load_checked(
            id,
            &stored.snapshot,
            stored.changes.iter().map(Vec::as_slice),
            &stored.heads,
        )
        .unwrap();
        let mut doc: AutoCommit = doc.with_actor(legacy.clone());
        let before = doc.get_heads();
        let comments = doc.get(automerge::ROOT, "comments").unwrap().unwrap().1;
        let cid = Uuid::new_v4();
        let comment = serde_json::json!({"id": cid, "target": {"kind": "inspection"},
            "text": SECRET, "by": "rita", "at": "2026-10-01T10:00:00Z"});
        doc.put(&comments, cid.to_string(), comment.to_string())
            .unwrap();
        doc.commit_with(
            CommitOptions::default().with_message(r#"{"op":"comment","by":"rita"}"#.to_owned()),
        );
        doc.set_actor(mixed.clone());
        for by in ["ann", "zed"] {
            let c2 = Uuid::new_v4();
            let v = serde_json::json!({"id": c2, "target": {"kind": "inspection"},
                "text": "x", "by": by, "at": "2026-10-01T10:00:00Z"});
            doc.put(&comments, c2.to_string(), v.to_string()).unwrap();
            doc.commit_with(
                CommitOptions::default().with_message(format!(r#"{{"op":"comment","by":"{by}"}}"#)),
            );
        }
        let bytes = doc.save_after(&before);
        let hashes: Vec<u8> = doc
            .get_changes(&before)
            .iter()
            .flat_map(|c| c.hash().0)
            .collect();
        storage
            .append_changes(id, &bytes, &hashes, &encode_heads(&doc.get_heads()))
            .unwrap();
        let db = db(&server);
        let review: String = db
            .query_row(
                "SELECT review_doc FROM inspections WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        db.execute("DELETE FROM documents WHERE doc_id = ?1", params![review])
            .unwrap();
        db.execute(
            "UPDATE inspections SET review_doc = NULL WHERE id = ?1",
            params![id.to_string()],
        )
        .unwrap();
    }

    server.restart();
    let rec = SqliteStorage::open(server.data())
        .unwrap()
        .inspection(id)
        .unwrap()
        .unwrap();
    assert!(rec.history_holds_comments, "its history still holds them");
    let rita = sign_in(&server, "rita").await;
    let lead1 = sign_in(&server, "lead1").await;

    // The comments are in the new review document, and no longer in the inspection's.
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    let review = wardcheck_core::review::Review::from_doc(c.fetch(rec.review_doc).await.unwrap())
        .unwrap()
        .view()
        .unwrap();
    let insp =
        Inspection::from_doc(c.fetch(id).await.unwrap(), Arc::new(crash_checklist())).unwrap();
    c.close().await;
    assert!(
        review.comments.iter().any(|c| c.text == SECRET),
        "the comment moved: {:?}",
        review.comments
    );
    assert_eq!(review.comments.len(), 3);
    assert!(
        insp.legacy_comments().unwrap().is_empty(),
        "and left the inspection"
    );

    // The trust's lead reads the inspection through the API's views only (its history
    // holds the comments), and sees none of them.
    let res = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/inspections/{id}")))
        .bearer_auth(&lead1.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert!(
        !res.text().await.unwrap().contains(SECRET),
        "no internal comment in the lead's view"
    );
    let mut c = SyncClient::connect(&server.ws_url(), Some(&lead1.token))
        .await
        .unwrap();
    assert!(
        matches!(
            c.fetch(id).await,
            Err(wardcheck_tests::client::ClientError::Unavailable(_))
        ),
        "the lead never syncs a history that holds internal comments"
    );
    c.close().await;

    // The history's actors are bound: the legacy one to the user its change names, the
    // mixed one to no one who may write. Neither can be claimed now.
    let storage = SqliteStorage::open(server.data()).unwrap();
    let b = storage.actor_binding(legacy.to_bytes()).unwrap().unwrap();
    assert_eq!(b.user, "rita");
    let b = storage.actor_binding(mixed.to_bytes()).unwrap().unwrap();
    assert_eq!(b.user, "@legacy");
    for actor in [&legacy, &mixed] {
        let res = reqwest::Client::new()
            .post(server.url("/api/v1/actors"))
            .bearer_auth(&lead1.token)
            .json(&serde_json::json!({ "actor": actor.to_hex_string() }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            reqwest::StatusCode::CONFLICT,
            "a history's actor is not claimed"
        );
    }
}
