//! The app and its server over TLS, as in production: the real server behind a
//! TLS-terminating front (here `tokio-native-tls` with a certificate for `localhost`
//! made by the `openssl` command), the app verifying it against the platform's trust
//! store (OpenSSL's on Linux).
//!
//! - Not trusted: a certificate no authority in the store signed makes sign-in fail
//!   with "does not trust the server's certificate", not "offline", and nothing is kept.
//! - Trusted: with the certificate in the store (`SSL_CERT_FILE`, which OpenSSL reads;
//!   set for a child run of this test binary, since a test cannot safely change its own
//!   environment), sign-in, the first sync over `wss` and an answer reaching the server
//!   all go through TLS.
//! - Plain `http` to another machine is refused before anything is sent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::net::{TcpListener, TcpStream};
use tokio_native_tls::native_tls;
use wardcheck_app_lib::error::ErrorCode;
use wardcheck_app_lib::service::status::SyncState;
use wardcheck_core::inspection::Answer;

use crate::support::{self, AppDirs, Server, Worker, wait_for};
use crate::{SYNC_LIMIT, compliance_items, sign_in_and_fetch_at};

/// Where the child run finds the certificate and key the parent made.
const CHILD_CERT_DIR: &str = "WARDCHECK_TLS_TEST_CERTS";

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key (PKCS#8), made
/// by the `openssl` command in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A TLS front for `backend` on a free port of 127.0.0.1: it ends TLS and passes the
/// bytes on, as a production proxy does.
async fn tls_front(cert: &Path, key: &Path, backend: SocketAddr) -> SocketAddr {
    let identity = native_tls::Identity::from_pkcs8(
        &std::fs::read(cert).unwrap(),
        &std::fs::read(key).unwrap(),
    )
    .expect("the certificate and key load");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        native_tls::TlsAcceptor::new(identity).expect("a TLS acceptor"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to pass.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

/// The server with one inspector and an inspection assigned to them, behind a TLS front.
async fn server_behind_tls(data: &Path, cert: &Path, key: &Path) -> (Server, uuid::Uuid, String) {
    let server = Server::start_on(data, "127.0.0.1:0");
    server.add_inspector("tess");
    let id = server.create_inspection("RJ1", "tess");
    let front = tls_front(cert, key, server.addr.parse().unwrap()).await;
    // `localhost`: the name the certificate is for.
    let https = format!("https://localhost:{}", front.port());
    (server, id, https)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_and_a_trusted_one_carries_the_sync() {
    let scratch = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(scratch.path());
    let (_server, _id, https) =
        server_behind_tls(&scratch.path().join("server"), &cert, &key).await;

    // This process's trust store (the system's) has never heard of the certificate.
    let dirs = AppDirs::new();
    let app = dirs.open();
    let err = app
        .sign_in(&https, "tess", support::PASSWORD)
        .await
        .expect_err("an untrusted certificate is refused");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(
        err.message
            .contains("does not trust the server's certificate"),
        "the message says what is wrong: {err:?}"
    );
    assert!(app.app_status().signed_in.is_none(), "nothing is signed in");

    // With the certificate trusted, everything goes through TLS (the child run).
    let mut child = support::child_test("tls::over_trusted_tls_child");
    child
        .env(CHILD_CERT_DIR, scratch.path())
        .env("SSL_CERT_FILE", &cert);
    support::run_child_test(child);
}

/// Run by the test above with `SSL_CERT_FILE` naming the certificate; on its own it
/// skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by an_untrusted_certificate_is_refused_and_a_trusted_one_carries_the_sync"]
async fn over_trusted_tls_child() {
    let Some(dir) = std::env::var_os(CHILD_CERT_DIR) else {
        eprintln!("skipped: run only by the parent test");
        return;
    };
    let dir = PathBuf::from(dir);
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let scratch = tempfile::tempdir().unwrap();
    let (server, id, https) = server_behind_tls(&scratch.path().join("server"), &cert, &key).await;

    // Sign-in over https, the certificate trusted; the first sync over wss through the
    // same front.
    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch_at(&app, &https, "tess", id).await;
    let item = compliance_items(&app, id).remove(0);
    app.set_answer(id, &item, Answer::Met).expect("an answer");
    let _ = app.sync_now();
    wait_for(SYNC_LIMIT, "the answer synced over wss", || {
        let app = app.clone();
        async move {
            let s = app.sync_status();
            (s.state == SyncState::Synced && s.pending_changes == 0).then_some(())
        }
    })
    .await;

    // The server (asked directly, behind the front) has it.
    let token = support::token(&server, "tess").await;
    let detail = support::get_json(&server, &token, &format!("/api/v1/inspections/{id}")).await;
    assert_eq!(
        detail["inspection"]["responses"][&item]["answer"]["values"][0]["value"]["kind"], "met",
        "the answer made over TLS reached the server"
    );
    worker.kill().await;
}

#[tokio::test]
async fn plain_http_to_another_machine_is_refused_before_anything_is_sent() {
    let dirs = AppDirs::new();
    let app = dirs.open();
    // 192.0.2.1 (TEST-NET-1) answers nothing: the refusal must come first, not a timeout.
    let err = app
        .sign_in("http://192.0.2.1:8080", "tess", support::PASSWORD)
        .await
        .expect_err("http to another machine is refused");
    assert_eq!(err.code, ErrorCode::Invalid, "{err:?}");
    assert!(err.message.contains("not encrypted"), "{err:?}");
}
