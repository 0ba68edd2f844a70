//! SIGKILL the server while an inspector is syncing edit after edit, three times at
//! different points: every change it acknowledged is there after each restart, and
//! the clients converge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ChangeHash};
use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::inspection::{Inspection, Stamp};
use wardcheck_tests::client::{Replica, SyncClient, sign_in};
use wardcheck_tests::server::Server;
use wardcheck_tests::{crash_checklist, crash_items};

/// The document as the server's storage holds it.
fn stored_doc(data: &std::path::Path, id: Uuid) -> AutoCommit {
    wardcheck_tests::server::stored_doc(data, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_a_sigkill_mid_sync() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let mut server = Server::start_on(&data, "127.0.0.1:0");
    server
        .add_user("ann", "inspector")
        .add_user("rev", "reviewer");
    let id = server.create_inspection("RJ1", &["ann"]);
    let ann_login = sign_in(&server, "ann").await;
    let rev_login = sign_in(&server, "rev").await;
    let addr = server.addr.clone();
    let ws_url = server.ws_url();
    let checklist = Arc::new(crash_checklist());
    let items = crash_items(&checklist);

    let mut c = SyncClient::connect(&ws_url, Some(&ann_login.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    let mut ann =
        Inspection::from_doc(doc.with_actor(ann_login.actor.clone()), checklist.clone()).unwrap();
    let mut edits = 0usize;

    // Kill rounds, each after a different number of acknowledged syncs.
    for (round, kill_after) in [15usize, 4, 9].into_iter().enumerate() {
        // The killer waits for enough acknowledgements, then kills at once: the
        // client is by then in the middle of its next exchange.
        let shared = Arc::new(Mutex::new(server));
        let acked = Arc::new(AtomicUsize::new(0));
        let killer = {
            let (shared, acked) = (shared.clone(), acked.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while acked.load(Ordering::SeqCst) < kill_after {
                    assert!(
                        Instant::now() < deadline,
                        "the client never reached {kill_after} acknowledged syncs"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                shared.lock().unwrap().kill();
            })
        };

        let mut acked_heads: Vec<ChangeHash> = vec![];
        let failure = loop {
            let item = &items[edits % items.len()];
            ann.edit_note(
                item,
                &format!("note {edits}"),
                &Stamp::new("ann", Utc::now()),
            )
            .unwrap();
            edits += 1;
            match c.sync(id, &mut ann).await {
                Ok(()) => {
                    acked_heads = ann.heads();
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => break e,
            }
            assert!(edits < 100_000, "the server was never killed");
        };
        killer.join().expect("the killer thread");
        assert!(
            acked.load(Ordering::SeqCst) >= kill_after,
            "the kill came after the acknowledgements"
        );
        eprintln!(
            "round {round}: killed after {} acknowledged syncs ({edits} edits in all); the client saw: {failure}",
            acked.load(Ordering::SeqCst)
        );

        // Restart on the same data and address.
        server = Server::start_on(&data, &addr);
        let mut stored = stored_doc(server.data(), id);
        for h in &acked_heads {
            assert!(
                stored.get_change_by_hash(h).is_some(),
                "round {round}: the acknowledged change {h} is stored after the restart"
            );
        }
        // A reviewer who was never involved sees every acknowledged change too.
        let mut rev_c = SyncClient::connect(&ws_url, Some(&rev_login.token))
            .await
            .expect("the restarted server accepts the old token");
        let mut rev = rev_c.fetch(id).await.unwrap();
        for h in &acked_heads {
            assert!(
                rev.get_change_by_hash(h).is_some(),
                "round {round}: a fresh reader gets the acknowledged change {h}"
            );
        }
        // The inspector reconnects for the next round.
        c = SyncClient::connect(&ws_url, Some(&ann_login.token))
            .await
            .unwrap();
    }

    // The inspector finishes; a reviewer syncing afterwards ends equal.
    c.sync(id, &mut ann).await.expect("the inspector resyncs");
    let mut rev_c = SyncClient::connect(&ws_url, Some(&rev_login.token))
        .await
        .unwrap();
    let mut rev = rev_c.fetch(id).await.unwrap();
    let (mut a, mut r) = (ann.heads(), Replica::heads(&mut rev));
    a.sort();
    r.sort();
    assert_eq!(a, r, "the inspector and the reviewer converge");
    let mut stored = stored_doc(server.data(), id);
    let mut s = stored.get_heads();
    s.sort();
    assert_eq!(s, a, "and the server holds the same");
    assert_eq!(
        ann.view().unwrap().responses[items[(edits - 1) % items.len()].as_str()].note,
        format!("note {}", edits - 1),
        "the last edit, made before the last kill, is there"
    );
}
