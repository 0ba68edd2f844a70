//! The review's findings, each against the real server binary or a tiny hand-rolled
//! HTTP responder: a damaged inspection is reported (never "synced" over it), answers
//! from something that is not a Wardcheck server are bounded and named, transient
//! server errors are "offline" (retried), and a shared device keeps its inspections
//! for their owner.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;
use wardcheck_app_lib::error::ErrorCode;
use wardcheck_app_lib::service::status::SyncState;
use wardcheck_app_lib::service::{App, STORE_FILE};
use wardcheck_core::inspection::Answer;

use crate::support::{self, AppDirs, Server, Worker, wait_for};
use crate::{SYNC_LIMIT, compliance_items, sign_in_and_fetch};

/// Deletes every change row of `id` behind the app's back (the app is closed), so its
/// stored heads no longer match what loads: the store's `HeadsMismatch`.
fn damage(dirs: &AppDirs, id: Uuid) {
    let key = std::fs::read(dirs.keys.join("store-key")).expect("the test keystore's key");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let conn = rusqlite::Connection::open(dirs.data.join(STORE_FILE)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .unwrap();
    let gone = conn
        .execute("DELETE FROM changes WHERE doc_id = ?1", [id.to_string()])
        .unwrap();
    assert!(gone > 0, "the inspection had change rows to lose");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_inspection_is_an_error_that_names_it_never_synced() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("fay");
    let good = server.create_inspection("RJ1", "fay");
    let bad = server.create_inspection("RJ2", "fay");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "fay", bad).await;
    sign_in_and_fetch(&app, &server, "fay", good).await;
    // A local change gives the inspection a change row; it reaches the server.
    let item = compliance_items(&app, bad)[0].clone();
    app.set_answer(bad, &item, Answer::Met).unwrap();
    wait_for(SYNC_LIMIT, "the change to be synced", || {
        let app = app.clone();
        async move { (app.sync_status().state == SyncState::Synced).then_some(()) }
    })
    .await;
    // An id that is not on this device is not found, and no damage.
    let err = app.open_inspection(Uuid::new_v4()).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");
    assert_eq!(app.sync_status().state, SyncState::Synced);
    worker.kill().await;
    drop(app);

    damage(&dirs, bad);
    let app = dirs.open();
    let worker = Worker::start(&app);
    let says_which = |s: &wardcheck_app_lib::service::status::SyncStatus| {
        s.message
            .as_deref()
            .is_some_and(|m| m.contains(&bad.to_string()))
    };
    let status = app.sync_status();
    assert_eq!(status.state, SyncState::Error, "{status:?}");
    assert!(
        says_which(&status),
        "the message names the inspection: {status:?}"
    );

    // The other inspection still lists, opens and syncs; the damaged one is named.
    let listed = app.list_inspections().expect("the list still works");
    assert!(listed.iter().any(|s| s.id == good), "{listed:?}");
    let err = app
        .open_inspection(bad)
        .expect_err("a damaged inspection does not open");
    assert_eq!(err.code, ErrorCode::Storage, "{err:?}");
    assert!(err.message.contains(&bad.to_string()), "{err:?}");
    app.set_answer(good, &compliance_items(&app, good)[0], Answer::NotMet)
        .unwrap();
    wait_for(SYNC_LIMIT, "the good inspection's change to go", || {
        let app = app.clone();
        async move { (app.sync_status().pending_changes == 0).then_some(()) }
    })
    .await;
    // However long the worker runs, the status never says synced.
    for _ in 0..20 {
        let s = app.sync_status();
        assert_eq!(s.state, SyncState::Error, "{s:?}");
        assert!(says_which(&s), "{s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_keeps_its_inspections_for_their_owner_and_sign_out_keeps_work() {
    let scratch = tempfile::tempdir().unwrap();
    let server = Server::start_on(&scratch.path().join("server"), "127.0.0.1:0");
    server.add_inspector("gus");
    server.add_inspector("hal");
    let id = server.create_inspection("RJ1", "gus");
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "gus", id).await;
    worker.kill().await;

    // Work not on the server: sign-out refuses, and says what is waiting.
    let item = compliance_items(&app, id)[0].clone();
    app.set_answer(id, &item, Answer::Met).unwrap();
    let err = app
        .sign_out(false)
        .expect_err("unsynced work stops a sign-out");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(
        err.message.contains("1 change and 0 photos") && err.message.contains("sync before"),
        "{err:?}"
    );
    assert!(app.app_status().signed_in.is_some(), "still signed in");
    let status = app.sign_out(true).expect("a forced sign-out");
    assert!(status.signed_in.is_none());

    // Another inspector on this device is refused; the owner is welcome back.
    let err = app
        .sign_in(&server.url(), "hal", support::PASSWORD)
        .await
        .expect_err("another inspector is refused");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(
        err.message.contains("holds inspections of gus") && err.message.contains(&server.url()),
        "{err:?}"
    );
    assert!(app.app_status().signed_in.is_none());
    let status = app
        .sign_in(&server.url(), "gus", support::PASSWORD)
        .await
        .expect("the owner signs in again");
    assert_eq!(status.signed_in.unwrap().user, "gus");
    assert_eq!(
        app.sync_status().pending_changes,
        1,
        "the work waited for them"
    );
}

/// What the hand-rolled responder answers every request with.
#[derive(Clone, Copy)]
enum Answering {
    /// This status, then a chunked body that never ends.
    Endless(u16),
    /// This status and this body.
    Fixed(u16, &'static str),
}

/// A tiny HTTP/1.1 responder on loopback, answering every request the same way, for
/// as long as the test runs. Returns its `http://` address.
async fn responder(answering: Answering) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // The request's head (and any small body) is read and ignored.
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                match answering {
                    Answering::Fixed(status, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                    Answering::Endless(status) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                             transfer-encoding: chunked\r\n\r\n"
                        );
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
                        while sock.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_bounds_and_names_answers_that_are_not_a_wardcheck_servers() {
    let dirs = AppDirs::new();
    let app = dirs.open();
    let sign_in = |server: String| {
        let app = app.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(20),
                app.sign_in(&server, "ann", support::PASSWORD),
            )
            .await
            .expect("sign-in gives up quickly")
            .expect_err("sign-in fails")
        }
    };
    for (answering, code, says) in [
        (
            Answering::Endless(200),
            ErrorCode::Invalid,
            "does not answer like a Wardcheck server",
        ),
        (Answering::Endless(404), ErrorCode::Invalid, "HTTP 404"),
        (
            Answering::Fixed(404, "not here"),
            ErrorCode::Invalid,
            "HTTP 404",
        ),
        (Answering::Fixed(502, ""), ErrorCode::Offline, "HTTP 502"),
        (
            Answering::Fixed(
                400,
                r#"{"error": {"code": "bad_request", "message": "password is too long"}}"#,
            ),
            ErrorCode::Invalid,
            "The server refused: password is too long",
        ),
        (
            Answering::Fixed(200, "<html>a router's page</html>"),
            ErrorCode::Invalid,
            "does not answer like a Wardcheck server",
        ),
    ] {
        let err = sign_in(responder(answering).await).await;
        assert_eq!(err.code, code, "{err:?}");
        assert!(err.message.contains(says), "{err:?}");
    }
    // A token too long to be one (the server sends 64 hex characters).
    let long = format!(
        r#"{{"token": "{}", "device_id": 1, "user": "ann", "display_name": "Ann",
            "role": {{"role": "inspector"}}}}"#,
        "a".repeat(600)
    );
    let err = sign_in(responder(Answering::Fixed(200, long.leak())).await).await;
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(err.message.contains("token"), "{err:?}");
    assert!(app.app_status().signed_in.is_none());

    // Plain http to another machine is refused at once, and says why (tls.rs has
    // https itself).
    let err = sign_in("http://wardcheck.example.nhs.uk".into()).await;
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(err.message.contains("not encrypted"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_offline_and_retried_not_an_error() {
    let server = responder(Answering::Fixed(502, "bad gateway")).await;
    let dirs = AppDirs::new();
    // Signed in earlier to what now answers 502 (a proxy in front of a restarting
    // server).
    support::signed_in_earlier(&dirs, server);
    let app: App = dirs.open();
    assert!(app.app_status().signed_in.is_some());
    let worker = Worker::start(&app);
    let status = wait_for(SYNC_LIMIT, "the worker to try", || {
        let app = app.clone();
        async move {
            let s = app.sync_status();
            s.message.is_some().then_some(s)
        }
    })
    .await;
    assert_eq!(status.state, SyncState::Offline, "{status:?}");
    let message = status.message.unwrap();
    assert!(
        message.contains("HTTP 502") && message.contains("trying again in"),
        "{message}"
    );
    worker.kill().await;
}
