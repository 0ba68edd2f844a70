//! Sign-in, device tokens and login rate limits, against the real server binary and
//! its admin command line (issue 3 §1-§2; RELIABILITY A5, A7, A8).
//!
//! Every test starts its own server on a fresh data folder, so the per-address limit
//! one test trips (all requests come from 127.0.0.1) never reaches another.

mod api_support;

use std::time::Duration;

use reqwest::{Client, Response, StatusCode, header};
use serde_json::{Value, json};
use wardcheck_tests::server::{PASSWORD, Server};

fn client() -> Client {
    // No proxy: a proxy from the environment must not stand between a test and
    // its loopback server.
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

async fn login(c: &Client, s: &Server, user: &str, password: &str, device: &str) -> Response {
    c.post(s.url("/api/v1/login"))
        .json(&json!({ "user": user, "password": password, "device": device }))
        .send()
        .await
        .expect("the server answers a login")
}

/// Signs in with [`PASSWORD`]; returns the login answer's JSON.
async fn sign_in(c: &Client, s: &Server, user: &str, device: &str) -> Value {
    let res = login(c, s, user, PASSWORD, device).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "{user} signs in with the right password: {body}"
    );
    serde_json::from_str(&body).expect("a login answer is JSON")
}

async fn token(c: &Client, s: &Server, user: &str, device: &str) -> String {
    sign_in(c, s, user, device).await["token"]
        .as_str()
        .expect("the login answer has a token")
        .to_owned()
}

/// `GET /api/v1/me` with the bearer token.
async fn me(c: &Client, s: &Server, token: &str) -> Response {
    c.get(s.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers /me")
}

/// The `{error: {code, message}}` of an error answer (checked by the shared helper),
/// whose message must also read as words for a person, not internals.
async fn error(res: Response, status: StatusCode, what: &str) -> (String, String) {
    let (code, message) = api_support::error(res, status, what).await;
    assert!(
        message.len() > 10 && !message.contains("Error(") && !message.contains("sqlite"),
        "{what}: a message a person understands, not internals: {message:?}"
    );
    (code, message)
}

/// Asserts that `token` is refused at once with a 401 that tells the person to sign
/// in again.
async fn refused(c: &Client, s: &Server, token: &str, what: &str) {
    let (code, message) = error(me(c, s, token).await, StatusCode::UNAUTHORIZED, what).await;
    assert_eq!(code, "unauthorized", "{what}");
    assert!(
        message.contains("sign in"),
        "{what}: the message says what to do: {message}"
    );
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn the_right_password_gives_a_token_and_a_strict_http_only_cookie() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    // A password typed into a file made on Windows ends in CRLF: the CR is not part
    // of it.
    s.cli(
        &[
            "user",
            "add",
            "tina",
            "--role",
            "trust-lead",
            "--trust",
            "RJ1",
        ],
        &format!("{PASSWORD}\r\n"),
    );
    let c = client();

    let res = login(&c, &s, "ivan", PASSWORD, "ivan's tablet").await;
    assert_eq!(res.status(), StatusCode::OK, "the right password signs in");
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .expect("a browser gets the token as a cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = res.json().await.unwrap();
    let tok = body["token"].as_str().expect("a token in the answer");
    assert!(is_hex64(tok), "a token is 64 hex digits: {tok}");
    assert_eq!(body["user"], "ivan");
    assert_eq!(body["role"], json!({ "role": "inspector" }));
    assert!(body["device_id"].as_i64().is_some(), "{body}");

    let parts: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(
        parts[0],
        format!("wardcheck_token={tok}"),
        "the cookie carries the same token: {cookie}"
    );
    assert!(
        parts.contains(&"HttpOnly"),
        "scripts cannot read it: {cookie}"
    );
    assert!(
        parts.contains(&"SameSite=Strict"),
        "no cross-site sends: {cookie}"
    );

    let who: Value = me(&c, &s, tok).await.json().await.unwrap();
    assert_eq!(who["user"], "ivan", "/me names the signed-in user: {who}");
    assert_eq!(who["device_id"], body["device_id"]);

    // Two sign-ins give two different tokens (two devices).
    let again = token(&c, &s, "ivan", "ivan's laptop").await;
    assert_ne!(again, tok, "every sign-in gets its own token");

    let tina = sign_in(&c, &s, "tina", "trust PC").await;
    assert_eq!(
        tina["role"],
        json!({ "role": "trust-lead", "trust": "RJ1" }),
        "a password read from a CRLF line signs in, and the role carries the trust"
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_get_the_same_401() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    s.add_user("dora", "inspector");
    s.cli(&["user", "disable", "dora"], "");
    let c = client();

    let mut answers = Vec::new();
    for (user, password, what) in [
        ("ivan", "not the password at all", "a wrong password"),
        ("nobody", PASSWORD, "an unknown user"),
        ("dora", PASSWORD, "a disabled user with the right password"),
        ("IVAN", PASSWORD, "a user name in the wrong case"),
    ] {
        let res = login(&c, &s, user, password, "tablet").await;
        let headers = res.headers().clone();
        answers.push((
            what,
            error(res, StatusCode::UNAUTHORIZED, what).await,
            headers.get(header::SET_COOKIE).is_some(),
        ));
    }
    let (_, first, _) = &answers[0];
    assert_eq!(first.0, "unauthorized");
    for (what, answer, cookie) in &answers {
        assert_eq!(
            answer, first,
            "{what} gets exactly the same answer as a wrong password, so user names cannot be probed"
        );
        assert!(!cookie, "{what}: no cookie on a refusal");
    }
}

#[tokio::test]
async fn unreadable_login_bodies_get_a_stable_code() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let post = |body: String, ct: Option<&'static str>| {
        let mut r = c.post(s.url("/api/v1/login")).body(body);
        if let Some(ct) = ct {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        r.send()
    };
    const JSON: Option<&str> = Some("application/json");
    let deep = format!("{{\"user\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        ("not JSON", "user=ivan&password=x".into(), JSON, ""),
        ("truncated JSON", "{\"user\":\"ivan\",".into(), JSON, ""),
        (
            "an unknown field",
            json!({"user":"ivan","password":PASSWORD,"device":"d","admin":true}).to_string(),
            JSON,
            "admin",
        ),
        (
            "a missing field",
            json!({"user":"ivan","password":PASSWORD}).to_string(),
            JSON,
            "device",
        ),
        (
            "a wrong type",
            json!({"user":["ivan"],"password":PASSWORD,"device":"d"}).to_string(),
            JSON,
            "",
        ),
        (
            "no content type",
            json!({"user":"ivan","password":PASSWORD,"device":"d"}).to_string(),
            None,
            "",
        ),
        (
            "an empty user name",
            json!({"user":"","password":PASSWORD,"device":"d"}).to_string(),
            JSON,
            "user",
        ),
        (
            "a device name with a control character",
            json!({"user":"ivan","password":PASSWORD,"device":"tab\u{7}let"}).to_string(),
            JSON,
            "device",
        ),
        (
            "a 101-character user name",
            json!({"user":"u".repeat(101),"password":PASSWORD,"device":"d"}).to_string(),
            JSON,
            "user",
        ),
        (
            "a 1025-byte password",
            json!({"user":"ivan","password":"p".repeat(1025),"device":"d"}).to_string(),
            JSON,
            "password",
        ),
        ("JSON nested 10,000 deep", deep, JSON, ""),
    ];
    for (what, body, ct, mentions) in cases {
        let res = post(body, ct).await.expect("the server answers");
        let (code, message) = error(res, StatusCode::BAD_REQUEST, what).await;
        assert_eq!(code, "bad_request", "{what}");
        assert!(
            message.contains(mentions),
            "{what}: the message names {mentions:?}: {message}"
        );
    }

    // A body over the 1 MiB limit is 413, as everywhere else, not 400. The server
    // answers without reading the rest and closes, so a client still writing may see the
    // reset before the answer: a few tries, each on a fresh client.
    let huge = json!({"user":"ivan","password":"p".repeat(2 << 20),"device":"d"}).to_string();
    let mut answered = None;
    for _ in 0..5 {
        let sent = client()
            .post(s.url("/api/v1/login"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(huge.clone())
            .send()
            .await;
        match sent {
            Ok(res) => {
                answered = Some(res);
                break;
            }
            Err(e) => eprintln!("a 2 MiB body: the connection closed early ({e})"),
        }
    }
    let res = answered.expect("the server answered a 2 MiB body in one of 5 tries");
    let (code, _) = error(res, StatusCode::PAYLOAD_TOO_LARGE, "a 2 MiB body").await;
    assert_eq!(code, "too_large");

    // None of those was a guess at ivan's password: he still signs in. (On a new
    // connection: the server closes the one whose body it stopped reading at 1 MiB.)
    sign_in(&client(), &s, "ivan", "tablet").await;
}

#[tokio::test]
async fn a_token_counts_from_the_header_or_the_cookie_but_not_from_the_query() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let t = token(&c, &s, "ivan", "tablet").await;

    assert_eq!(me(&c, &s, &t).await.status(), StatusCode::OK, "bearer");
    let lower = c
        .get(s.url("/api/v1/me"))
        .header(header::AUTHORIZATION, format!("bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lower.status(),
        StatusCode::OK,
        "the auth scheme is case-insensitive (RFC 9110)"
    );
    for cookie in [
        format!("wardcheck_token={t}"),
        format!("theme=dark; wardcheck_token={t}; lang=en"),
    ] {
        let res = c
            .get(s.url("/api/v1/me"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "the cookie: {cookie}");
        let who: Value = res.json().await.unwrap();
        assert_eq!(who["user"], "ivan");
    }
    let other_cookie = c
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, format!("wardcheck_tokenx={t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_cookie.status(),
        StatusCode::UNAUTHORIZED,
        "only the cookie of that exact name counts"
    );

    // A token in a URL ends up in histories and proxy logs: it only counts on a
    // WebSocket upgrade, never on /me.
    let res = c
        .get(s.url(&format!("/api/v1/me?access_token={t}")))
        .send()
        .await
        .unwrap();
    let (code, message) = error(res, StatusCode::UNAUTHORIZED, "a query token on /me").await;
    assert_eq!(code, "unauthorized");
    assert!(message.contains("sign in"), "{message}");
    // A header that merely claims an upgrade does not make it one.
    let res = c
        .get(s.url(&format!("/api/v1/me?access_token={t}")))
        .header(header::UPGRADE, "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "an Upgrade header without a WebSocket handshake does not admit a query token"
    );

    let res = c.get(s.url("/api/v1/me")).send().await.unwrap();
    let (_, message) = error(res, StatusCode::UNAUTHORIZED, "no token").await;
    assert!(message.contains("sign in"), "{message}");
}

/// The status line the server answers a WebSocket opening handshake for the sync
/// endpoint with, the token (if any) in the query.
fn websocket_handshake(s: &Server, query: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut tcp = std::net::TcpStream::connect(&s.addr).expect("connect to the server");
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        tcp,
        "GET /api/v1/sync{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(tcp).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[tokio::test]
async fn a_query_token_counts_on_a_websocket_upgrade() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let t = token(&client(), &s, "ivan", "node client").await;
    let ok = websocket_handshake(&s, &format!("?access_token={t}"));
    assert!(
        ok.starts_with("HTTP/1.1 101"),
        "a WebSocket client that cannot set headers signs in with the query: {ok}"
    );
    let bad = websocket_handshake(&s, &format!("?access_token={}", "0".repeat(64)));
    assert!(
        bad.starts_with("HTTP/1.1 401"),
        "a bad query token gets no WebSocket: {bad}"
    );
    let none = websocket_handshake(&s, "");
    assert!(
        none.starts_with("HTTP/1.1 401"),
        "no token, no WebSocket: {none}"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_message_a_person_understands() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let t = token(&c, &s, "ivan", "tablet").await;
    let flipped: String = {
        // The same token with its last digit changed: well formed, but not issued.
        let mut b = t.clone().into_bytes();
        let last = b.last_mut().unwrap();
        *last = if *last == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    for (bad, what) in [
        ("hello".to_owned(), "garbage"),
        (t[..63].to_owned(), "63 digits"),
        (format!("{t}0"), "65 digits"),
        ("z".repeat(64), "64 characters that are not hex"),
        (flipped, "a well-formed token never issued"),
        (t.to_uppercase(), "the token in upper case"),
    ] {
        refused(&c, &s, &bad, what).await;
    }
    let res = c
        .get(s.url("/api/v1/me"))
        .header(header::AUTHORIZATION, format!("Basic {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "another auth scheme"
    );
    assert_eq!(
        me(&c, &s, &t).await.status(),
        StatusCode::OK,
        "the real token still works after all those"
    );
}

/// `device list` as rows: id, user, device name, last seen, state.
fn devices(s: &Server) -> Vec<Vec<String>> {
    s.cli(&["device", "list"], "")
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn revoking_a_device_stops_that_token_at_once_and_no_other() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let tablet = sign_in(&c, &s, "ivan", "tablet").await;
    let laptop = sign_in(&c, &s, "ivan", "laptop").await;
    let (tablet_token, laptop_token) = (
        tablet["token"].as_str().unwrap(),
        laptop["token"].as_str().unwrap(),
    );
    let tablet_id = tablet["device_id"].as_i64().unwrap().to_string();
    let laptop_id = laptop["device_id"].as_i64().unwrap().to_string();

    let list = devices(&s);
    assert_eq!(list.len(), 2, "both sign-ins are devices: {list:?}");
    assert_eq!(
        list[0][..3],
        [tablet_id.clone(), "ivan".into(), "tablet".into()],
        "id, user, device name"
    );
    assert_eq!(list[0][3], "never", "not used yet");
    assert_eq!(list[0][4], "active");
    assert!(
        !s.cli(&["device", "list"], "").contains(tablet_token),
        "device list never shows a token"
    );

    assert_eq!(me(&c, &s, tablet_token).await.status(), StatusCode::OK);
    let list = devices(&s);
    let seen = chrono::DateTime::parse_from_rfc3339(&list[0][3])
        .unwrap_or_else(|e| panic!("last seen is RFC 3339 once used: {:?}: {e}", list[0][3]));
    assert_eq!(seen.offset().local_minus_utc(), 0, "in UTC");

    let out = s.cli(&["device", "revoke", &tablet_id], "");
    assert!(
        out.contains(&format!("device {tablet_id} revoked")),
        "{out}"
    );
    // At once: the very next request, with no waiting.
    refused(&c, &s, tablet_token, "a revoked device's token").await;
    let res = c
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, format!("wardcheck_token={tablet_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused as a cookie too"
    );
    assert_eq!(
        me(&c, &s, laptop_token).await.status(),
        StatusCode::OK,
        "the user's other device still works"
    );
    let list = devices(&s);
    assert_eq!(list[0][4], "revoked", "{list:?}");
    assert_eq!(list[1][..1], [laptop_id], "{list:?}");
    assert_eq!(list[1][4], "active", "{list:?}");

    // Revoking a device is not disabling the user: he can sign in again.
    let fresh = token(&c, &s, "ivan", "new tablet").await;
    assert_eq!(me(&c, &s, &fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn disabling_a_user_stops_all_their_tokens_at_once_and_their_sign_in() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    s.add_user("rita", "reviewer");
    let c = client();
    let tablet = token(&c, &s, "ivan", "tablet").await;
    let laptop = token(&c, &s, "ivan", "laptop").await;
    let rita = token(&c, &s, "rita", "laptop").await;
    for t in [&tablet, &laptop, &rita] {
        assert_eq!(me(&c, &s, t).await.status(), StatusCode::OK);
    }

    s.cli(&["user", "disable", "ivan"], "");
    refused(&c, &s, &tablet, "a disabled user's first device").await;
    refused(&c, &s, &laptop, "a disabled user's second device").await;
    let (code, _) = error(
        login(&c, &s, "ivan", PASSWORD, "tablet").await,
        StatusCode::UNAUTHORIZED,
        "a disabled user signing in",
    )
    .await;
    assert_eq!(code, "unauthorized");
    assert_eq!(
        me(&c, &s, &rita).await.status(),
        StatusCode::OK,
        "other users are unaffected"
    );
}

fn retry_after(res: &Response) -> u64 {
    let v = res
        .headers()
        .get(header::RETRY_AFTER)
        .expect("a 429 says when to retry (Retry-After)")
        .to_str()
        .unwrap();
    let secs: u64 = v.parse().unwrap_or_else(|_| panic!("seconds: {v:?}"));
    assert!(
        (1..=15 * 60).contains(&secs),
        "Retry-After {secs} is within the 15-minute window"
    );
    secs
}

/// A sign-in from `address` (behind the trusted proxy the test server names).
async fn login_via(c: &Client, s: &Server, address: &str, user: &str, password: &str) -> Response {
    c.post(s.url("/api/v1/login"))
        .header("x-forwarded-for", address)
        .json(&json!({ "user": user, "password": password, "device": "x" }))
        .send()
        .await
        .expect("the server answers a login")
}

/// A server that believes `X-Forwarded-For` from the test (its loopback peer), so that
/// one test can sign in from many addresses.
fn behind_a_proxy() -> Server {
    Server::start_with(wardcheck_tests::server::ServeOptions {
        args: vec!["--trusted-proxy".into(), "127.0.0.1".into()],
        ..Default::default()
    })
}

/// Guessing one user's password from one address: three free failures, then growing
/// pauses (429 with Retry-After until each is over), then that address is locked out of
/// that account, even with the right password. The user signs in from where they
/// always do, and from a new address; others sign in from the guessing address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessing_address_slows_then_is_locked_out_of_that_account_and_no_one_else() {
    let s = behind_a_proxy();
    s.add_user("ivan", "inspector");
    s.add_user("rita", "reviewer");
    let c = client();
    let (home, guesser) = ("10.20.30.40", "203.0.113.66");
    assert_eq!(
        login_via(&c, &s, home, "ivan", PASSWORD).await.status(),
        StatusCode::OK,
        "ivan's usual address"
    );
    let ivan_token = token(&c, &s, "ivan", "tablet").await;

    let free = wardcheck_server::limits::LOGIN_FREE_FAILURES;
    for i in 1..=free {
        let res = login_via(&c, &s, guesser, "ivan", &format!("guess {i}")).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "guess {i} is judged"
        );
    }
    // Then each guess waits longer: 1 s, then 2 s.
    for pause in [1, 2] {
        let res = login_via(&c, &s, guesser, "ivan", "too soon").await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "held {pause} s"
        );
        assert!(retry_after(&res) <= pause);
        tokio::time::sleep(Duration::from_secs(pause)).await;
        let res = login_via(&c, &s, guesser, "ivan", "after the pause").await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "judged after {pause} s"
        );
    }
    // Locked: the right password from the guessing address waits the window out.
    let res = login_via(&c, &s, guesser, "ivan", PASSWORD).await;
    let wait = retry_after(&res);
    assert!(wait > 60, "locked for the window, not a pause: {wait} s");
    let (code, message) = error(res, StatusCode::TOO_MANY_REQUESTS, "locked").await;
    assert_eq!(code, "rate_limited");
    assert!(
        message.contains(&wait.to_string()),
        "says how long: {message}"
    );

    // Ivan signs in from home and from somewhere new; Rita from the guessing address.
    for (address, user) in [(home, "ivan"), ("198.51.100.23", "ivan"), (guesser, "rita")] {
        assert_eq!(
            login_via(&c, &s, address, user, PASSWORD).await.status(),
            StatusCode::OK,
            "{user} from {address}"
        );
    }
    assert_eq!(
        me(&c, &s, &ivan_token).await.status(),
        StatusCode::OK,
        "a lock on signing in does not end ivan's existing device"
    );
}

/// Guesses at one user spread over many addresses (each under its own limits) hold the
/// user's name back from addresses they never signed in from, never from their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_from_many_addresses_never_lock_the_user_out_of_their_own() {
    let s = behind_a_proxy();
    s.add_user("ivan", "inspector");
    let c = client();
    let home = "10.20.30.40";
    assert_eq!(
        login_via(&c, &s, home, "ivan", PASSWORD).await.status(),
        StatusCode::OK
    );
    for i in 0..wardcheck_server::limits::LOGIN_FAILURES_PER_USER {
        let res = login_via(&c, &s, &format!("203.0.113.{i}"), "ivan", "a guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let res = login_via(&c, &s, "198.51.100.23", "ivan", PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "from an address ivan never used, held back"
    );
    retry_after(&res);
    assert_eq!(
        login_via(&c, &s, home, "ivan", PASSWORD).await.status(),
        StatusCode::OK,
        "from his own, he signs in"
    );
    // From a new address, his tablet signs in too: it shows the token it held before,
    // whose sign-in expired unused (worth nothing by itself). A token another user was
    // given, or one signed out, is no proof.
    let sign_in_at_home = || async {
        let v: Value = login_via(&c, &s, home, "ivan", PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        (
            v["token"].as_str().unwrap().to_owned(),
            v["device_id"].as_i64().unwrap(),
        )
    };
    let (tablet, tablet_id) = sign_in_at_home().await;
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    s.sql(&format!(
        "UPDATE devices SET created_at = '{long_ago}', last_seen = '{long_ago}' WHERE id = {tablet_id}"
    ));
    let (code, _) = error(
        me(&c, &s, &tablet).await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;
    assert_eq!(code, "token_expired");
    let (signed_out, _) = sign_in_at_home().await;
    let res = c
        .post(s.url("/api/v1/logout"))
        .bearer_auth(&signed_out)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    s.add_user("rita", "reviewer");
    let ritas = login_via(&c, &s, "10.9.9.9", "rita", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_token = |previous: String| {
        let (c, url) = (c.clone(), s.url("/api/v1/login"));
        async move {
            c.post(url)
                .header("x-forwarded-for", "192.0.2.44")
                .json(
                    &json!({ "user": "ivan", "password": PASSWORD, "device": "tablet",
                               "previous_token": previous }),
                )
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        with_token(ritas).await,
        StatusCode::TOO_MANY_REQUESTS,
        "another user's token proves nothing"
    );
    assert_eq!(
        with_token(signed_out).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a signed-out token proves nothing"
    );
    assert_eq!(
        with_token(tablet).await,
        StatusCode::OK,
        "his own device, its sign-in expired, from a new address, signs in"
    );
    // The refusals name the real addresses.
    let audit = s.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\t198.51.100.23\t") && l.contains("rate_limited")),
        "{audit}"
    );
}

#[tokio::test]
async fn concurrent_guesses_cannot_get_past_the_limit() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    // Sent at once, so that every guess arrives while the others are still having
    // their passwords checked.
    let guesses = (0..16).map(|i| {
        let (c, url) = (c.clone(), s.url("/api/v1/login"));
        tokio::spawn(async move {
            c.post(url)
                .json(&json!({"user":"ivan","password":format!("guess {i}"),"device":"x"}))
                .send()
                .await
                .expect("the server answers")
                .status()
        })
    });
    let mut judged = 0;
    let mut limited = 0;
    for g in guesses.collect::<Vec<_>>() {
        match g.await.unwrap() {
            StatusCode::UNAUTHORIZED => judged += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("a guess gets 401 or 429, not {other}"),
        }
    }
    let free = wardcheck_server::limits::LOGIN_FREE_FAILURES;
    assert!(
        judged <= free,
        "at most {free} guesses may have their password checked before the pauses, \
         however they are timed; {judged} were (and {limited} limited)"
    );
}

#[tokio::test]
async fn twenty_failures_from_one_address_lock_the_address() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    s.add_user("rita", "reviewer");
    let c = client();
    // Two guesses each at ten names: never slowed at any one name, so only the
    // per-address limit can stop this spray.
    let mut failures = 0;
    for n in 0..10 {
        for i in 0..2 {
            if failures == 19 {
                // One short of the limit, a real sign-in still works, and does not
                // count against the address.
                sign_in(&c, &s, "ivan", "tablet").await;
            }
            let res = login(&c, &s, &format!("ghost{n}"), &format!("guess {i}"), "x").await;
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "failure {} is judged",
                failures + 1
            );
            failures += 1;
        }
    }
    let res = login(&c, &s, "rita", PASSWORD, "laptop").await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "after 20 failures from one address, even a user who never failed waits"
    );
    retry_after(&res);
}

#[tokio::test]
async fn the_data_folder_survives_a_restart() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let mut s = Server::start_on(&data, "127.0.0.1:0");
    s.add_user("ivan", "inspector");
    s.add_user("tina", "trust-lead:RJ1");
    let c = client();
    let t = token(&c, &s, "ivan", "tablet").await;
    let users_before = s.cli(&["user", "list"], "");
    // SIGKILL: nothing is flushed on the way out.
    s.kill();

    let s = Server::start_on(&data, "127.0.0.1:0");
    s.wait_ready();
    assert_eq!(
        s.cli(&["user", "list"], ""),
        users_before,
        "the users are all still there"
    );
    assert_eq!(
        me(&c, &s, &t).await.status(),
        StatusCode::OK,
        "a device token issued before the restart still works"
    );
    sign_in(&c, &s, "tina", "trust PC").await;
    let audit = s.cli(&["audit", "tail", "-n", "100"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tivan\t") && l.contains("\tlogin\t")),
        "the audit log from before the restart is kept:\n{audit}"
    );
}

#[tokio::test]
async fn signing_out_with_the_cookie_revokes_that_device_and_shows_in_the_device_list() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let browser = sign_in(&c, &s, "ivan", "review dashboard (browser)").await;
    let tablet = sign_in(&c, &s, "ivan", "tablet").await;
    let token = browser["token"].as_str().unwrap();
    let cookie = format!("wardcheck_token={token}");

    // A browser signs out with its cookie, as the dashboard's button does (a browser
    // says where a write comes from).
    let res = c
        .post(s.url("/api/v1/logout"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, s.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let set = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        set.starts_with("wardcheck_token=;") && set.contains("Max-Age=0"),
        "the browser is told to drop the cookie: {set}"
    );
    let res = c
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the cookie is refused"
    );
    refused(&c, &s, token, "a signed-out token as a bearer token").await;
    assert_eq!(
        me(&c, &s, tablet["token"].as_str().unwrap()).await.status(),
        StatusCode::OK,
        "the user's other device stays signed in"
    );
    let list = devices(&s);
    assert_eq!(
        list[0][4], "revoked",
        "signing out revokes the device: {list:?}"
    );
    assert_eq!(list[1][4], "active", "{list:?}");

    // Without a token there is nothing to sign out.
    let res = c.post(s.url("/api/v1/logout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A device token unused for longer than the idle limit (30 days) has expired: the
/// device is refused with `token_expired`, revoked, and the expiry audited; one used
/// within it works, and its use renews it. Time is made to pass in the database.
#[tokio::test]
async fn an_idle_token_expires_and_a_used_one_is_renewed() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let drawer = sign_in(&c, &s, "ivan", "tablet in a drawer").await;
    let daily = sign_in(&c, &s, "ivan", "tablet in use").await;
    let ago = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    for (device, days) in [(&drawer, 31), (&daily, 29)] {
        let id = device["device_id"].as_i64().unwrap();
        let set = s.sql(&format!(
            "UPDATE devices SET created_at = '{}', last_seen = '{}' WHERE id = {id}",
            ago(40),
            ago(days)
        ));
        assert_eq!(set, 1);
    }

    let (code, message) = error(
        me(&c, &s, drawer["token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "an idle token",
    )
    .await;
    assert_eq!(code, "token_expired");
    assert!(
        message.contains("30 days") && message.contains("sign in"),
        "{message}"
    );
    assert_eq!(
        me(&c, &s, daily["token"].as_str().unwrap()).await.status(),
        StatusCode::OK,
        "a token used within the limit"
    );

    let list = devices(&s);
    let row = |name: &str| list.iter().find(|r| r[2] == name).unwrap().clone();
    assert_eq!(
        row("tablet in a drawer")[4],
        "revoked",
        "the idle device is signed out"
    );
    let renewed = chrono::DateTime::parse_from_rfc3339(&row("tablet in use")[3]).unwrap();
    assert!(
        chrono::Utc::now().signed_duration_since(renewed) < chrono::Duration::minutes(5),
        "its use renewed it: {renewed}"
    );
    // Expired stays expired, even were its time put back.
    s.sql(&format!(
        "UPDATE devices SET last_seen = '{}' WHERE id = {}",
        ago(0),
        drawer["device_id"]
    ));
    refused(
        &c,
        &s,
        drawer["token"].as_str().unwrap(),
        "an expired token",
    )
    .await;
    let audit = s.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\ttoken_expired\t") && l.contains("revoked")),
        "the expiry is audited:\n{audit}"
    );
}
