//! Hostile changes from signed-in clients, against the real server: decompression bombs
//! from a reader and from a writer, an operation bomb (a run of a billion operations in a
//! few bytes), and a loop of mutated, re-hashed change chunks over many seeds.
//!
//! Each must be refused (a reader's changes dropped unread) with its code, audited, with
//! nothing stored; the server's memory stays bounded; the document still loads for every
//! other client, and after a restart; and other clients keep syncing throughout.

use std::sync::Arc;

use automerge::sync::{self, ChunkList, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use chrono::Utc;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_core::sync::{DocMessage, WireMessage, uuid_to_doc_id};
use wardcheck_tests::client::{Incoming, Login, SyncClient, sign_in};
use wardcheck_tests::hostile::{MAGIC, inflating_chunk, uleb};
use wardcheck_tests::server::Server;
use wardcheck_tests::{crash_checklist, crash_items};

/// A change chunk (checksum right) whose action column holds a run of 10^9 operations.
fn op_bomb(actor: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    uleb(0, &mut body); // deps
    uleb(actor.len() as u64, &mut body);
    body.extend(actor);
    uleb(1, &mut body); // seq
    uleb(1, &mut body); // start op
    body.push(0); // time
    uleb(0, &mut body); // message
    uleb(0, &mut body); // other actors
    let mut col = Vec::new();
    // A signed LEB128 run length of 10^9, then the value 1 ("put").
    let mut v: i64 = 1_000_000_000;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 && b & 0x40 == 0 {
            col.push(b);
            break;
        }
        col.push(b | 0x80);
    }
    col.push(1);
    uleb(1, &mut body);
    uleb((4 << 4) | 2, &mut body);
    uleb(col.len() as u64, &mut body);
    body.extend(&col);
    let mut hashed = vec![1u8];
    uleb(body.len() as u64, &mut hashed);
    hashed.extend(&body);
    let sum = Sha256::digest(&hashed);
    let mut out = MAGIC.to_vec();
    out.extend(&sum[..4]);
    out.extend(&hashed);
    out
}

/// The server's peak resident memory so far (VmHWM), in MiB.
fn peak_mib(server: &Server) -> f64 {
    let pid = server.pid().expect("the server runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb / 1024.0
}

/// Sends `changes` for `doc` as one sync message on a fresh connection; the error the
/// server answers with (its code), or `None` if it said nothing of the sort.
async fn send_raw(server: &Server, login: &Login, doc: Uuid, changes: Vec<u8>) -> Option<String> {
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let mut m = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    m.changes = ChunkList::from(vec![changes]);
    c.send(&WireMessage::Sync(DocMessage {
        sender_id: c.peer_id.clone(),
        target_id: c.server_id.clone(),
        document_id: uuid_to_doc_id(doc),
        data: m.encode(),
    }))
    .await
    .unwrap();
    match c.recv().await {
        Ok(Incoming::Message(WireMessage::Error { code, .. })) => Some(code.unwrap_or_default()),
        Ok(Incoming::Message(WireMessage::Sync(_))) => {
            // A reader is answered as if nothing had been sent: done.
            c.close().await;
            None
        }
        Ok(Incoming::Closed(_)) | Err(_) => Some("closed".into()),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

async fn heads(server: &Server, login: &Login, id: Uuid) -> Vec<ChangeHash> {
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let mut d = c.fetch(id).await.expect("the document loads");
    c.close().await;
    let mut h = d.get_heads();
    h.sort();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_mutated_chunks_are_refused_and_memory_stays_bounded() {
    let mut server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1");
    let id = server.create_inspection("RJ1", &["ann"]);
    server.cli(&["inspection", "share", &id.to_string()], "");
    let ann = sign_in(&server, "ann").await;
    let rita = sign_in(&server, "rita").await;
    let lead = sign_in(&server, "lead1").await;
    let checklist = Arc::new(crash_checklist());
    let item = crash_items(&checklist)[0].clone();
    let before = heads(&server, &rita, id).await;
    let base = peak_mib(&server);

    // 512 MiB of zeros in about half a megabyte.
    let bomb = inflating_chunk(512 << 20);
    assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());

    // From the trust's lead, who only reads: dropped unread, never inflated.
    assert_eq!(send_raw(&server, &lead, id, bomb.clone()).await, None);
    let after_reader = peak_mib(&server);
    // From the inspector, who writes: refused while inflating, at the budget.
    assert_eq!(
        send_raw(&server, &ann, id, bomb).await.as_deref(),
        Some("too_large")
    );
    let after_writer = peak_mib(&server);
    // A billion operations in 30 bytes.
    assert_eq!(
        send_raw(&server, &ann, id, op_bomb(ann.actor.to_bytes()))
            .await
            .as_deref(),
        Some("too_large")
    );
    let after_ops = peak_mib(&server);
    eprintln!(
        "server peak memory: {base:.1} MiB at rest, {after_reader:.1} after a reader's bomb, \
         {after_writer:.1} after a writer's, {after_ops:.1} after an operation bomb"
    );
    assert!(
        after_reader - base < 64.0,
        "a reader's bomb is not inflated: {base:.1} -> {after_reader:.1} MiB"
    );
    assert!(
        after_ops - base < 200.0,
        "a writer's bombs stop at the budget: {base:.1} -> {after_ops:.1} MiB"
    );

    // A loop of mutated, re-hashed copies of one real change, over many seeds.
    let fetched = {
        let mut c = SyncClient::connect(&server.ws_url(), Some(&ann.token))
            .await
            .unwrap();
        let d = c.fetch(id).await.unwrap();
        c.close().await;
        d
    };
    let mut insp =
        Inspection::from_doc(fetched.with_actor(ann.actor.clone()), checklist.clone()).unwrap();
    let base_heads = insp.heads();
    insp.set_answer(&item, Answer::Met, &Stamp::new("ann", Utc::now()))
        .unwrap();
    let change = insp.save_after(&base_heads);
    assert_eq!(change[8], 1, "an uncompressed change chunk");
    let body_start = 9 + change[9..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut refused, mut stored) = (0, 0);
    let seeds = 120;
    for _ in 0..seeds {
        let mut c = change.clone();
        for _ in 0..(next() % 3 + 1) {
            let i = body_start + (next() as usize) % (c.len() - body_start);
            c[i] = next() as u8;
        }
        let sum = Sha256::digest(&c[8..]);
        c[4..8].copy_from_slice(&sum[..4]);
        let was = heads(&server, &rita, id).await;
        match send_raw(&server, &ann, id, c).await {
            Some(code) => {
                assert_ne!(code, "closed", "every refusal names its code");
                refused += 1;
                assert_eq!(
                    heads(&server, &rita, id).await,
                    was,
                    "nothing refused is stored"
                );
            }
            // Still a well-formed change by ann that the policy allows (a mutated time
            // or message), or one whose dependencies do not exist (held, not applied).
            None => {
                // The document loads for everyone after each one.
                if heads(&server, &rita, id).await != was {
                    stored += 1;
                }
            }
        }
    }
    eprintln!(
        "{seeds} mutated chunks: {refused} refused, {stored} stored as valid changes of ann's"
    );
    assert!(refused > seeds / 2, "{refused} of {seeds} refused");

    // Every refusal is audited; nothing refused was stored.
    let audit = server.cli(&["audit", "tail", "-n", "1000"], "");
    let audited = audit
        .lines()
        .filter(|l| l.contains("\tann\t") && l.contains("\tchange_refused\t"))
        .count();
    assert_eq!(audited, refused + 2, "each refusal is audited:\n{audit}");
    if stored == 0 {
        assert_eq!(
            heads(&server, &rita, id).await,
            before,
            "nothing was stored"
        );
    }

    // Another client still syncs, and everything loads after a restart.
    server.restart();
    let after = heads(&server, &rita, id).await;
    assert!(!after.is_empty());
    let mut fresh = {
        let mut c = SyncClient::connect(&server.ws_url(), Some(&ann.token))
            .await
            .unwrap();
        let d = c.fetch(id).await.unwrap();
        c.close().await;
        Inspection::from_doc(d.with_actor(ann.new_actor().await), checklist).unwrap()
    };
    fresh
        .set_answer(&item, Answer::NotMet, &Stamp::new("ann", Utc::now()))
        .unwrap();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&ann.token))
        .await
        .unwrap();
    c.sync(id, &mut fresh)
        .await
        .expect("an honest change is still taken");
    c.close().await;
}

/// One user's sync connections, and the documents one connection follows, are capped
/// (`limits::MAX_CONNECTIONS_PER_USER`, `MAX_DOCS_PER_CONNECTION`): past either the
/// server refuses with a clear answer, audits it, and keeps serving everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_user_and_documents_per_connection_are_capped() {
    const MAX_CONNECTIONS: usize = 16;
    const MAX_DOCS: usize = 1000;
    let server = Server::start();
    server
        .add_user("rita", "reviewer")
        .add_user("ann", "inspector");
    let rita = sign_in(&server, "rita").await;
    let ann = sign_in(&server, "ann").await;

    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        open.push(
            SyncClient::connect(&server.ws_url(), Some(&rita.token))
                .await
                .expect("a connection within the cap"),
        );
    }
    match SyncClient::connect(&server.ws_url(), Some(&rita.token)).await {
        Err(wardcheck_tests::client::ClientError::Refused { status, body }) => {
            assert_eq!(status, 429, "{body}");
            assert!(body.contains("too_many_connections"), "{body}");
        }
        other => panic!(
            "a connection past the cap is refused, got {:?}",
            other.map(|_| ())
        ),
    }
    // Another user is not held to rita's count.
    SyncClient::connect(&server.ws_url(), Some(&ann.token))
        .await
        .expect("ann connects")
        .close()
        .await;
    // A closed connection frees its place.
    open.pop().unwrap().close().await;
    let mut again = None;
    for _ in 0..100 {
        if let Ok(c) = SyncClient::connect(&server.ws_url(), Some(&rita.token)).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a place freed is taken again");
    for c in open.drain(..) {
        c.close().await;
    }
    again.unwrap().close().await;
    let audit = server.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\trita\t") && l.contains("too_many_connections")),
        "the refusal is audited:\n{audit}"
    );

    // Documents: three to an inspection; a reviewer reads them all.
    let http = reqwest::Client::new();
    let mut docs = Vec::new();
    while docs.len() <= MAX_DOCS {
        let rec: serde_json::Value = http
            .post(server.url("/api/v1/inspections"))
            .bearer_auth(&rita.token)
            .json(&serde_json::json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": [] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for k in ["id", "response_doc", "review_doc"] {
            docs.push(rec[k].as_str().unwrap().parse::<Uuid>().unwrap());
        }
    }
    let mut c = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    // Asked for all at once, as a client opening its list would, each is answered.
    let first = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    for d in &docs[..MAX_DOCS] {
        c.send(&WireMessage::Request(DocMessage {
            sender_id: c.peer_id.clone(),
            target_id: c.server_id.clone(),
            document_id: uuid_to_doc_id(*d),
            data: first.clone(),
        }))
        .await
        .unwrap();
    }
    let mut answered = std::collections::HashSet::new();
    while answered.len() < MAX_DOCS {
        match c.recv().await {
            Ok(Incoming::Message(WireMessage::Sync(d))) => {
                answered.insert(d.document_id);
            }
            other => panic!("each document within the cap is answered, got {other:?}"),
        }
    }
    match c.fetch(docs[MAX_DOCS]).await {
        Err(wardcheck_tests::client::ClientError::Server(m)) => {
            assert!(m.contains("at most 1000 documents"), "{m}")
        }
        other => panic!(
            "a document past the cap is refused, got {:?}",
            other.map(|_| ())
        ),
    }
    // A new connection reads it: the cap is per connection.
    let mut fresh = SyncClient::connect(&server.ws_url(), Some(&rita.token))
        .await
        .unwrap();
    fresh
        .fetch(docs[MAX_DOCS])
        .await
        .expect("read on a new connection");
    fresh.close().await;
}
