//! How the server faces the web (issue 15, items 5 and 6), against the real server:
//!
//! - behind `--trusted-proxy`, the client's address is the one the proxy forwards: the
//!   audit log records it, and the sign-in limit per address holds the guesser back
//!   while another client behind the same proxy signs in; from any other peer (or
//!   without the flag) `X-Forwarded-For` is ignored;
//! - a write or WebSocket upgrade from another origin is refused (403 `bad_origin`),
//!   audited, and changes nothing; so is a cookie-signed write with no `Origin`; apps
//!   (a bearer token, no `Origin`) pass;
//! - with an `https://` public URL the cookie is `__Host-` and `Secure`, answers carry
//!   HSTS, and the plain cookie no longer signs anyone in;
//! - the access log has a line per request, and never the query (a WebSocket's token);
//! - every flag of `serve` also works as an environment variable.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use reqwest::{Client, StatusCode, header};
use serde_json::json;
use wardcheck_tests::server::{PASSWORD, ServeOptions, Server};

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A sign-in with `X-Forwarded-For: forwarded`.
async fn login_from(c: &Client, s: &Server, forwarded: &str, user: &str, password: &str) -> u16 {
    c.post(s.url("/api/v1/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "user": user, "password": password, "device": "tablet" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The audit lines whose address column is `from`.
fn audited_from(s: &Server, from: &str) -> Vec<String> {
    s.cli(&["audit", "tail", "-n", "500"], "")
        .lines()
        .filter(|l| l.split('\t').any(|c| c == from))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let s = Server::start_with(ServeOptions {
        // As an environment variable, as a systemd unit would set it.
        env: vec![(
            "WARDCHECK_TRUSTED_PROXY".into(),
            "10.9.9.9,127.0.0.1".into(),
        )],
        ..ServeOptions::default()
    });
    s.add_user("ivan", "inspector");
    let c = client();
    let (guesser, colleague) = ("203.0.113.66", "198.51.100.7");

    // The guesser tries many user names (each under the per-user limit) until its
    // address is held back. What it writes to the left of the proxy's entry is its own
    // claim and changes nothing.
    let mut held = false;
    for i in 0..40 {
        let code = login_from(
            &c,
            &s,
            &format!("{colleague}, {guesser}"),
            &format!("nobody{i}"),
            "wrong",
        )
        .await;
        if code == 429 {
            held = true;
            break;
        }
        assert_eq!(code, 401, "guess {i}");
    }
    assert!(held, "the guessing address is held back");
    // Its colleague behind the same proxy signs in.
    assert_eq!(login_from(&c, &s, colleague, "ivan", PASSWORD).await, 200);
    // The audit log names each by their own address, never the proxy's.
    let theirs = audited_from(&s, guesser);
    assert!(
        theirs
            .iter()
            .any(|l| l.contains("\tlogin\t") && l.contains("denied")),
        "the guesser's failures: {theirs:?}"
    );
    let ok = audited_from(&s, colleague);
    assert!(
        ok.iter()
            .any(|l| l.contains("\tlogin\t") && l.contains("\tok")),
        "the colleague's sign-in: {ok:?}"
    );
    assert!(
        audited_from(&s, "127.0.0.1").is_empty(),
        "nothing recorded as the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_proxy_the_forwarded_address_is_ignored() {
    let s = Server::start_with(ServeOptions {
        // A proxy that is not this peer.
        args: vec!["--trusted-proxy".into(), "10.9.9.9".into()],
        ..ServeOptions::default()
    });
    s.add_user("ivan", "inspector");
    let c = client();
    assert_eq!(
        login_from(&c, &s, "203.0.113.66", "ivan", "wrong").await,
        401
    );
    assert!(
        audited_from(&s, "203.0.113.66").is_empty(),
        "a claim, not an address"
    );
    assert!(
        audited_from(&s, "127.0.0.1")
            .iter()
            .any(|l| l.contains("\tlogin\t")),
        "the peer's own address"
    );
}

/// A raw WebSocket handshake to the sync route with `extra` header lines; the status
/// line of the answer.
fn handshake(s: &Server, query: &str, extra: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(&s.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        tcp,
        "GET /api/v1/sync{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n",
        s.addr
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(tcp).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_websockets_from_another_origin_are_refused() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut s = Server::start_with(ServeOptions {
        log: Some(log.path().to_owned()),
        ..ServeOptions::default()
    });
    s.add_user("ivan", "inspector");
    let c = client();
    let own = s.url("");
    let devices = |s: &Server| s.cli(&["device", "list"], "").lines().count();

    // A sign-in posted from another site's page: refused before any password check.
    let res = c
        .post(s.url("/api/v1/login"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_origin");
    assert_eq!(devices(&s), 0, "no device signed in");

    // From its own page it works, and the browser gets its cookie.
    let res = c
        .post(s.url("/api/v1/login"))
        .header(header::ORIGIN, &own)
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "browser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = format!("wardcheck_token={token}");

    // A cookie-signed write with another origin, or with none, is refused: the device
    // stays signed in. A read with the cookie works (the browser keeps its answer from
    // other sites).
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut req = c
            .post(s.url("/api/v1/logout"))
            .header(header::COOKIE, &cookie);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    let me = c
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "still signed in");
    // A read with the cookie from a sibling host's page (same site, another origin: the
    // browser still sends a SameSite=Strict cookie) is refused too.
    let sibling = c
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(sibling.status(), StatusCode::FORBIDDEN);

    // A WebSocket from another site's page, with a valid token: refused. The app (no
    // Origin) and the server's own page connect.
    let q = format!("?access_token={token}");
    let evil = handshake(&s, &q, "Origin: https://evil.example\r\n");
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let app = handshake(&s, &q, "");
    assert!(app.starts_with("HTTP/1.1 101"), "{app}");
    let page = handshake(&s, &q, &format!("Origin: {own}\r\n"));
    assert!(page.starts_with("HTTP/1.1 101"), "{page}");

    // A bearer token with no Origin is an app: its write works.
    let res = c
        .post(s.url("/api/v1/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Each refusal is audited: the first from an address in a minute on its own, with
    // its origin; the rest counted (written when the minute closes, or the server stops).
    assert!(s.terminate(), "the server stops cleanly");
    let audit = s.cli(&["audit", "tail", "-n", "100"], "");
    let refusals: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\torigin_refused\t"))
        .collect();
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("/api/v1/login") && l.contains("evil.example")),
        "{audit}"
    );
    assert!(
        refusals.iter().any(|l| l.contains("5 more such refusals")),
        "three writes, a sibling's read and a WebSocket counted: {audit}"
    );

    // The access log: a line per request, the WebSocket's token never in it.
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("wardcheck_server::access"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("path=/api/v1/login") && l.contains("status=403")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("path=/api/v1/sync") && l.contains("status=101")),
        "{text}"
    );
    assert!(!text.contains(&token), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_cookie_is_host_only_and_secure() {
    let s = Server::start_with(ServeOptions {
        args: vec![
            "--public-url".into(),
            "https://wardcheck.example.nhs.uk".into(),
        ],
        ..ServeOptions::default()
    });
    s.add_user("ivan", "inspector");
    let c = client();
    let res = c
        .post(s.url("/api/v1/login"))
        .header(header::ORIGIN, "https://wardcheck.example.nhs.uk")
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "browser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let set = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        set,
        format!("__Host-wardcheck_token={token}; HttpOnly; SameSite=Strict; Path=/; Secure")
    );
    let me = |cookie: String| {
        let c = c.clone();
        let url = s.url("/api/v1/me");
        async move {
            c.get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        me(format!("__Host-wardcheck_token={token}")).await,
        StatusCode::OK
    );
    // A cookie a sibling host could have set (no prefix) signs no one in.
    assert_eq!(
        me(format!("wardcheck_token={token}")).await,
        StatusCode::UNAUTHORIZED
    );
    // The page's own host, behind the proxy, is not its public origin.
    let res = c
        .post(s.url("/api/v1/login"))
        .header(header::ORIGIN, s.url(""))
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "browser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[test]
fn a_public_url_that_is_not_an_origin_stops_the_server_with_a_reason() {
    let scratch = tempfile::tempdir().unwrap();
    let out = wardcheck_tests::server::server_command(&scratch.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WARDCHECK_PUBLIC_URL", "https://wardcheck.example/inspect")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--public-url") && err.contains("no path"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sync_connections_with_a_reason_and_keeps_what_was_acknowledged() {
    use wardcheck_core::inspection::{Inspection, Stamp};
    use wardcheck_tests::client::{Incoming, SyncClient, sign_in};

    let mut s = Server::start();
    s.add_user("ann", "inspector");
    let id = s.create_inspection("RJ1", &["ann"]);
    let tablet = sign_in(&s, "ann").await;
    let c = client();
    let res = c
        .post(s.url(&format!("/api/v1/inspections/{id}/state")))
        .bearer_auth(&tablet.token)
        .json(&json!({ "state": "in_progress" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The tablet syncs a note (acknowledged), and stays connected.
    let mut sync = SyncClient::connect(&s.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let doc = sync.fetch(id).await.unwrap();
    let checklist = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let item = wardcheck_tests::crash_items(&checklist)[0].clone();
    let mut mine =
        Inspection::from_doc(doc.with_actor(tablet.actor.clone()), checklist.clone()).unwrap();
    let note = "Patch report seen for the ward's PCs.";
    mine.edit_note(&item, note, &Stamp::new("ann", chrono::Utc::now()))
        .unwrap();
    sync.sync(id, &mut mine).await.unwrap();

    // SIGTERM: the connection is closed with 1001 and a reason; the process exits 0.
    let stopping = std::thread::spawn(move || {
        let clean = s.terminate();
        (s, clean)
    });
    let closed = loop {
        match sync.recv().await.unwrap() {
            Incoming::Message(_) => continue,
            Incoming::Closed(c) => break c,
        }
    };
    let (code, reason) = closed.expect("a close frame, not a cut connection");
    assert_eq!(code, 1001, "going away");
    assert!(reason.contains("restarting"), "{reason}");
    let (mut s, clean) = stopping.join().unwrap();
    assert!(clean, "the server exits of itself, successfully");

    // Started again, it holds the note it acknowledged.
    s.restart();
    let mut again = SyncClient::connect(&s.ws_url(), Some(&tablet.token))
        .await
        .unwrap();
    let doc = again.fetch(id).await.unwrap();
    let view = Inspection::from_doc(doc, checklist)
        .unwrap()
        .view()
        .unwrap();
    assert_eq!(view.responses[&item].note, note);
}
