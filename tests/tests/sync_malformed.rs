//! Hostile and broken input on the sync endpoint: malformed frames, bad tokens, and
//! a trust lead probing another trust's inspection. Each gets a clear answer, a
//! connected reviewer keeps syncing throughout, and nothing stored changes.

use std::sync::Arc;

use automerge::AutoCommit;
use automerge::sync::{self, SyncDoc};
use chrono::Utc;
use ciborium::Value;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;
use wardcheck_core::inspection::{Inspection, Stamp};
use wardcheck_core::sync::{DocMessage, WireMessage, uuid_to_doc_id};
use wardcheck_tests::client::{ClientError, Incoming, Replica, SyncClient, sign_in};
use wardcheck_tests::server::Server;
use wardcheck_tests::{crash_checklist, crash_items};

fn stored_heads(server: &Server, id: Uuid) -> Vec<u8> {
    wardcheck_tests::off_runtime(|| server.storage().load_doc(id))
        .unwrap()
        .expect("the document is stored")
        .heads
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// Reads until the server's `error` and the end of the connection: (the error's
/// text, the close code).
async fn expect_error(c: &mut SyncClient, what: &str) -> (String, Option<u16>) {
    let mut error = None;
    loop {
        match c.recv().await {
            Ok(Incoming::Message(WireMessage::Error { message, .. })) => error = Some(message),
            Ok(Incoming::Closed(code)) => {
                let message =
                    error.unwrap_or_else(|| panic!("{what}: closed without an error message"));
                return (message, code.map(|c| c.0));
            }
            Ok(Incoming::Message(m)) => panic!("{what}: expected an error, got {m:?}"),
            Err(e) => panic!("{what}: expected an error, got {e}"),
        }
    }
}

/// A fresh sync of the document by a reviewer: its heads, sorted.
async fn fetched_heads(server: &Server, token: &str, id: Uuid) -> Vec<automerge::ChangeHash> {
    let mut c = SyncClient::connect(&server.ws_url(), Some(token))
        .await
        .unwrap();
    let mut h = c.fetch(id).await.unwrap().get_heads();
    h.sort();
    c.close().await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let server = Server::start();
    server
        .add_user("ann", "inspector")
        .add_user("rev", "reviewer")
        .add_user("lead2", "trust-lead:RJ2")
        .add_user("zed", "inspector");
    let id = server.create_inspection("RJ1", &["ann"]);
    // Shared with its own trust (RJ1): still nothing for RJ2's lead.
    server.cli(&["inspection", "share", &id.to_string()], "");
    let ann_login = sign_in(&server, "ann").await;
    let rev_login = sign_in(&server, "rev").await;
    let lead2_login = sign_in(&server, "lead2").await;
    let zed_login = sign_in(&server, "zed").await;
    let url = server.ws_url();
    let doc_id = uuid_to_doc_id(id);

    // A reviewer stays connected throughout, following the document.
    let mut watcher = SyncClient::connect(&url, Some(&rev_login.token))
        .await
        .unwrap();
    let doc = watcher.fetch(id).await.unwrap();
    let mut rev = Inspection::from_doc(
        doc.with_actor(rev_login.actor.clone()),
        Arc::new(crash_checklist()),
    )
    .unwrap();
    let before_stored = stored_heads(&server, id);
    let before_fetched = fetched_heads(&server, &rev_login.token, id).await;

    // A valid sync message to carry in the cases that need one.
    let valid_data = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    let doc_msg = |c: &SyncClient, document_id: &str, data: Vec<u8>| DocMessage {
        sender_id: c.peer_id.clone(),
        target_id: c.server_id.clone(),
        document_id: document_id.to_owned(),
        data,
    };

    // 1. Bytes that are not CBOR.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    c.send_frame(Frame::binary(b"\xff\xfe not cbor at all".to_vec()))
        .await
        .unwrap();
    let (msg, code) = expect_error(&mut c, "non-CBOR bytes").await;
    assert!(msg.contains("malformed message"), "{msg}");
    assert_eq!(code, Some(1002), "closed as a protocol error");

    // 2. A text frame.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    c.send_frame(Frame::text("{\"type\":\"join\"}"))
        .await
        .unwrap();
    let (msg, code) = expect_error(&mut c, "a text frame").await;
    assert!(msg.contains("text frames"), "{msg}");
    assert_eq!(code, Some(1003));

    // 3. CBOR with a type the protocol does not have, and CBOR that is not a map.
    for (what, bytes, expected) in [
        (
            "an unknown type",
            cbor(&Value::Map(vec![
                (
                    Value::Text("type".into()),
                    Value::Text("steal-everything".into()),
                ),
                (Value::Text("senderId".into()), Value::Text("x".into())),
            ])),
            "unknown message type",
        ),
        (
            "a CBOR array",
            cbor(&Value::Array(vec![Value::Text("sync".into())])),
            "not a CBOR map",
        ),
    ] {
        let mut c = SyncClient::connect(&url, Some(&ann_login.token))
            .await
            .unwrap();
        c.send_frame(Frame::binary(bytes)).await.unwrap();
        let (msg, _) = expect_error(&mut c, what).await;
        assert!(msg.contains(expected), "{what}: {msg}");
    }

    // 4. A sync before join.
    let mut c = SyncClient::open(&url, Some(&ann_login.token))
        .await
        .unwrap();
    let m = WireMessage::Sync(doc_msg(&c, &doc_id, valid_data.clone()));
    c.send(&m).await.unwrap();
    let (msg, _) = expect_error(&mut c, "sync before join").await;
    assert!(msg.contains("send join first"), "{msg}");

    // 5. A sync whose data is not an Automerge sync message, on a document the
    // inspector may write.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    let m = WireMessage::Sync(doc_msg(&c, &doc_id, b"garbage, not automerge".to_vec()));
    c.send(&m).await.unwrap();
    let (msg, code) = expect_error(&mut c, "garbage sync data").await;
    assert!(
        msg.contains("not an Automerge sync message") && msg.contains(&doc_id),
        "{msg}"
    );
    assert_eq!(code, Some(1008));

    // 6. A message larger than the server accepts.
    let mut c = SyncClient::connect(&url, Some(&ann_login.token))
        .await
        .unwrap();
    let big = vec![0u8; wardcheck_server::limits::MAX_WS_MESSAGE + 1];
    let sent = c.send_frame(Frame::binary(big)).await;
    // The server stops reading at the frame header, answers and closes; the rest of
    // our frame may meet a reset, which can also cut off that answer.
    let outcome = match c.recv().await {
        Ok(Incoming::Message(WireMessage::Error { message, .. })) => {
            assert!(
                message.contains("larger than the server accepts"),
                "{message}"
            );
            format!("error: {message}")
        }
        Ok(Incoming::Closed(code)) => {
            assert_eq!(code.map(|c| c.0), Some(1009), "closed as too big");
            "closed 1009".into()
        }
        Err(ClientError::Transport(e)) => format!("reset: {e}"),
        other => panic!("an oversized message must end the connection, got {other:?}"),
    };
    eprintln!("oversized message: send {sent:?}; {outcome}");

    // 7. A wrong token, a malformed one, none, and a revoked one: 401 before upgrade.
    for token in [Some("0".repeat(64)), Some("not-a-token".into()), None] {
        match SyncClient::open(&url, token.as_deref()).await {
            Err(ClientError::Refused { status: 401, body }) => {
                assert!(body.contains("unauthorized"), "{body}")
            }
            other => panic!("token {token:?}: expected 401, got {other:?}"),
        }
    }
    let revoked = sign_in(&server, "ann").await;
    server.cli(&["device", "revoke", &revoked.device_id.to_string()], "");
    match SyncClient::open(&url, Some(&revoked.token)).await {
        Err(ClientError::Refused { status: 401, body }) => {
            assert!(body.contains("revoked"), "the answer says why: {body}")
        }
        other => panic!("a revoked token: expected 401, got {other:?}"),
    }

    // 8. A trust lead of RJ2 asks for the RJ1 inspection by its document id; an
    // unassigned inspector asks too. Both get exactly what a random id gets.
    for (who, token) in [("lead2", &lead2_login.token), ("zed", &zed_login.token)] {
        let mut c = SyncClient::connect(&url, Some(token)).await.unwrap();
        let random = uuid_to_doc_id(Uuid::new_v4());
        let mut answers = vec![];
        for asked in [&doc_id, &random, &"not-a-document-id".to_owned()] {
            c.send(&WireMessage::Request(doc_msg(
                &c,
                asked,
                valid_data.clone(),
            )))
            .await
            .unwrap();
            match c.recv().await.unwrap() {
                Incoming::Message(WireMessage::DocUnavailable {
                    sender_id,
                    target_id,
                    document_id,
                }) => {
                    assert_eq!(
                        &document_id, asked,
                        "{who}: the answer names what was asked"
                    );
                    answers.push((sender_id, target_id));
                }
                other => {
                    panic!("{who} asking for {asked}: expected doc-unavailable, got {other:?}")
                }
            }
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "{who}: a denied document is answered exactly like a missing one: {answers:?}"
        );
        match c.fetch(id).await {
            Err(ClientError::Unavailable(d)) => assert_eq!(d, doc_id),
            other => panic!("{who}: a fetch must fail as unavailable, got {other:?}"),
        }
        c.close().await;
    }
    let audit = server.cli(&["audit", "tail", "-n", "200"], "");
    for who in ["lead2", "zed"] {
        assert!(
            audit.lines().any(|l| l.contains(&format!("\t{who}\t"))
                && l.contains("\tdenied\t")
                && l.contains(&id.to_string())),
            "{who}'s denied request is audited:\n{audit}"
        );
    }
    assert!(
        audit.lines().any(|l| l.contains("token_rejected")),
        "rejected tokens are audited"
    );

    // Nothing stored changed, by storage and by a fresh sync.
    assert_eq!(
        stored_heads(&server, id),
        before_stored,
        "storage is unchanged"
    );
    assert_eq!(
        fetched_heads(&server, &rev_login.token, id).await,
        before_fetched,
        "a fresh sync sees the same document"
    );

    // The reviewer connected from the start still syncs.
    let item = &crash_items(&crash_checklist())[0];
    rev.add_finding(
        wardcheck_core::inspection::NewFinding {
            id: Uuid::new_v4(),
            severity: wardcheck_core::checklist::Severity::Medium,
            text: "Reviewed against telemetry.".into(),
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
    let mut h = Replica::heads(&mut rev);
    h.sort();
    assert_eq!(
        fetched_heads(&server, &rev_login.token, id).await,
        h,
        "the reviewer's change is stored"
    );
}
