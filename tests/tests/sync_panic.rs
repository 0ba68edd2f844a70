//! A crafted sync message that makes Automerge panic on the server (SYNC-NOTES §5:
//! a change chunk mutated and its checksum recomputed). The server must answer with
//! an error and close that connection, drop the document from memory unsaved, reset
//! that peer's sync state, and keep serving everyone else from what it had stored.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use automerge::sync::{self, ChunkList, SyncDoc};
use automerge::{AutoCommit, Change};
use chrono::Utc;
use sha2::{Digest, Sha256};
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_core::sync::{DocMessage, WireMessage, uuid_to_doc_id};
use wardcheck_server::storage::Storage;
use wardcheck_tests::client::{Incoming, Replica, SyncClient, sign_in};
use wardcheck_tests::off_runtime;
use wardcheck_tests::server::Server;
use wardcheck_tests::{crash_checklist, crash_items};

/// Mutations tried before giving up on finding one that breaks Automerge.
const TRIES: usize = 50_000;

fn storage(server: &Server) -> std::sync::Arc<dyn Storage> {
    server.storage()
}

/// Recomputes a chunk's checksum: the first 4 bytes of the SHA-256 of everything
/// after it (type, length, body).
fn rehash(chunk: &mut [u8]) {
    let hash = Sha256::digest(&chunk[8..]);
    chunk[4..8].copy_from_slice(&hash[..4]);
}

/// How a crafted message fared on a copy of the server's document.
#[derive(Debug, PartialEq)]
enum Effect {
    Panics,
    Errors,
}

/// Mutates the body of `chunk` (a single uncompressed change) until a sync message
/// carrying it passes the server's parse of the chunk but makes
/// `receive_sync_message` panic (preferred) or fail on a copy of `base`.
fn craft(base: &AutoCommit, template: &sync::Message, chunk: &[u8]) -> (sync::Message, Effect) {
    assert_eq!(chunk[8], 1, "the change chunk is uncompressed");
    let body_start = 9 + chunk[9..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let mut same = chunk.to_vec();
    rehash(&mut same);
    assert_eq!(same, chunk, "rehashing an untouched chunk changes nothing");

    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut erroring = None;
    let mut found = None;
    for _ in 0..TRIES {
        let mut c = chunk.to_vec();
        for _ in 0..(next() % 3 + 1) {
            let i = body_start + (next() as usize) % (c.len() - body_start);
            c[i] = next() as u8;
        }
        rehash(&mut c);
        // The server parses each chunk strictly before any document sees it.
        let parses = catch_unwind(|| Change::try_from(&c[..]).is_ok()).unwrap_or(false);
        if !parses {
            continue;
        }
        let mut m = template.clone();
        m.changes = ChunkList::from(vec![c]);
        let mut doc = base.clone();
        let msg = m.clone();
        match catch_unwind(AssertUnwindSafe(|| {
            doc.sync()
                .receive_sync_message(&mut sync::State::new(), msg)
        })) {
            Err(_) => {
                found = Some((m, Effect::Panics));
                break;
            }
            Ok(Err(_)) if erroring.is_none() => erroring = Some((m, Effect::Errors)),
            Ok(_) => {}
        }
    }
    std::panic::set_hook(quiet);
    found
        .or(erroring)
        .expect("a mutated, rehashed change that Automerge cannot apply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_panics_automerge_closes_only_its_connection() {
    let server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rev", "reviewer");
    let id = server.create_inspection("RJ1", &["ann"]);
    let ann_login = sign_in(&server, "ann").await;
    let rev_login = sign_in(&server, "rev").await;
    let url = server.ws_url();
    let doc_id = uuid_to_doc_id(id);
    let checklist = Arc::new(crash_checklist());
    let item = crash_items(&checklist)[0].clone();

    // A reviewer is connected and follows the document throughout.
    let mut watcher = SyncClient::connect(&url, Some(&rev_login.token))
        .await
        .unwrap();
    let doc = watcher.fetch(id).await.unwrap();
    let mut rev =
        Inspection::from_doc(doc.with_actor(rev_login.actor.clone()), checklist.clone()).unwrap();

    // The inspector loads it and makes one real change.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    let mut base = c.fetch(id).await.unwrap();
    let base_heads = base.get_heads();
    let mut ann = Inspection::from_doc(
        base.clone().with_actor(ann_login.actor.clone()),
        checklist.clone(),
    )
    .unwrap();
    ann.set_answer(&item, Answer::NotMet, &Stamp::new("ann", Utc::now()))
        .unwrap();
    let change = ann.save_after(&base_heads);
    let template = ann
        .generate_sync_message(&mut sync::State::new())
        .expect("a message");
    let (crafted, effect) = craft(&base, &template, &change);
    eprintln!("crafted message: Automerge {effect:?} on it");

    let stored_before = off_runtime(|| storage(&server).load_doc(id))
        .unwrap()
        .unwrap()
        .heads;
    let peer = format!("device-{}", ann_login.device_id);
    // Held in memory and written in batches, every 10 s (a bound on a failure).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while off_runtime(|| storage(&server).sync_state(id, &peer))
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the inspector's sync state was kept after her fetch"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    c.send(&WireMessage::Sync(DocMessage {
        sender_id: c.peer_id.clone(),
        target_id: c.server_id.clone(),
        document_id: doc_id.clone(),
        data: crafted.encode(),
    }))
    .await
    .unwrap();
    let mut error = None;
    let closed = loop {
        match c.recv().await.expect("an answer to the crafted message") {
            Incoming::Message(WireMessage::Error { message, .. }) => error = Some(message),
            Incoming::Closed(code) => break code,
            other => panic!("expected an error and a close, got {other:?}"),
        }
    };
    let error = error.expect("an error message before the close");
    assert!(
        error.contains(&doc_id)
            && (error.contains("start afresh") || error.contains("nothing of it was stored")),
        "the error names the document and says what happens next: {error}"
    );
    assert_eq!(
        closed.map(|c| c.0),
        Some(1008),
        "closed as a policy violation"
    );

    // Nothing of it was stored, and the inspector's sync state starts afresh.
    let (now_stored, state) = off_runtime(|| {
        let s = storage(&server);
        (
            s.load_doc(id).unwrap().unwrap().heads,
            s.sync_state(id, &peer).unwrap(),
        )
    });
    assert_eq!(
        now_stored, stored_before,
        "the stored document is unchanged"
    );
    assert_eq!(state, None, "the inspector's sync state was reset");
    let audit = server.cli(&["audit", "tail", "-n", "20"], "");
    // Refused by the chunk walk, by the trial copy (an error or a panic), or by the
    // write policy's reading of it: whichever caught it first, it is audited.
    let _ = effect;
    assert!(
        audit.lines().any(|l| l.contains("\tann\t")
            && l.contains("\tchange_refused\t")
            && l.contains(&id.to_string())),
        "the refusal is audited:\n{audit}"
    );

    // Everyone else carries on: a fresh reader gets the stored document...
    let mut fresh = SyncClient::connect(&url, Some(&rev_login.token))
        .await
        .unwrap();
    let mut fetched = fresh.fetch(id).await.unwrap();
    let (mut a, mut b) = (fetched.get_heads(), base.get_heads());
    a.sort();
    b.sort();
    assert_eq!(a, b, "a fresh sync sees the document as it was");
    // ...and the reviewer connected all along still writes.
    let finding = uuid::Uuid::new_v4();
    rev.add_finding(
        wardcheck_core::inspection::NewFinding {
            id: finding,
            severity: wardcheck_core::checklist::Severity::High,
            text: "Unsupported devices in imaging.".into(),
            items: vec![item.clone()],
            recommendation: String::new(),
        },
        &Stamp::new("rev", Utc::now()),
    )
    .unwrap();
    watcher
        .sync(id, &mut rev)
        .await
        .expect("the connected reviewer still syncs");

    // The inspector reconnects and syncs her real change; all converge.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    c.sync(id, &mut ann)
        .await
        .expect("the inspector syncs afresh");
    let mut watcher = SyncClient::connect(&url, Some(&rev_login.token))
        .await
        .unwrap();
    watcher.sync(id, &mut rev).await.unwrap();
    let (mut a, mut r) = (Replica::heads(&mut ann), Replica::heads(&mut rev));
    a.sort();
    r.sort();
    assert_eq!(a, r, "the inspector and the reviewer converge");
    let v = rev.view().unwrap();
    assert!(
        v.responses[item.as_str()]
            .answer
            .as_ref()
            .is_some_and(|f| f.current().value == Answer::NotMet),
        "the inspector's real answer arrived"
    );
    assert!(
        v.findings.iter().any(|f| f.id == finding),
        "and the reviewer's finding"
    );
}
