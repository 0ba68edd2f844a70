//! The audit log, read back through `audit tail` from the real server's data folder
//! (issue 3 §6; RELIABILITY A9): every sign-in event says who, what, when (UTC) and
//! from where; no password or token is ever written; a user name cannot forge a line.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use wardcheck_tests::server::{PASSWORD, Server};

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

async fn login(c: &Client, s: &Server, user: &str, password: &str) -> Response {
    c.post(s.url("/api/v1/login"))
        .json(&json!({ "user": user, "password": password, "device": "tablet" }))
        .send()
        .await
        .expect("the server answers a login")
}

async fn me(c: &Client, s: &Server, token: &str) -> StatusCode {
    c.get(s.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers /me")
        .status()
}

/// One line of `audit tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    at: DateTime<Utc>,
    actor: String,
    device: String,
    action: String,
    target: String,
    from: String,
    outcome: String,
}

/// `audit tail -n 1000`, every line checked for shape: seven tab-separated fields,
/// the first an RFC 3339 time in UTC.
fn audit(s: &Server) -> (String, Vec<Event>) {
    let out = s.cli(&["audit", "tail", "-n", "1000"], "");
    let events = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 7, "an audit line has seven fields: {l:?}");
            let at = DateTime::parse_from_rfc3339(f[0]).unwrap_or_else(|e| {
                panic!("an audit line starts with an RFC 3339 time: {l:?}: {e}")
            });
            assert_eq!(
                at.offset().local_minus_utc(),
                0,
                "audit times are UTC: {l:?}"
            );
            Event {
                at: at.with_timezone(&Utc),
                actor: f[1].into(),
                device: f[2].into(),
                action: f[3].into(),
                target: f[4].into(),
                from: f[5].into(),
                outcome: f[6].into(),
            }
        })
        .collect();
    (out, events)
}

/// The events the server wrote (the admin CLI's own are `from` "cli").
fn server_events(events: &[Event]) -> Vec<Event> {
    events.iter().filter(|e| e.from != "cli").cloned().collect()
}

fn ev(actor: &str, device: &str, action: &str, target: &str, outcome: &str) -> Event {
    Event {
        at: DateTime::UNIX_EPOCH,
        actor: actor.into(),
        device: device.into(),
        action: action.into(),
        target: target.into(),
        from: "127.0.0.1".into(),
        outcome: outcome.into(),
    }
}

#[tokio::test]
async fn sign_ins_failures_and_rejected_tokens_say_who_what_when_and_where() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    // Audit times are the server's clock in microseconds: compare at that grain.
    let before = Utc::now().trunc_subsecs(6);

    let ok: Value = login(&c, &s, "ivan", PASSWORD).await.json().await.unwrap();
    let device = ok["device_id"].as_i64().expect("a device id").to_string();
    let token = ok["token"].as_str().unwrap().to_owned();
    // The free failures, then the next attempt at once is held back (a pause).
    let free = wardcheck_server::limits::LOGIN_FREE_FAILURES;
    for i in 1..=free {
        let res = login(&c, &s, "ivan", &format!("guess {i}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(&c, &s, "ivan", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login(&c, &s, "ghost", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&c, &s, &"0".repeat(64)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&c, &s, &token).await, StatusCode::OK);
    let after = Utc::now();

    let (_, events) = audit(&s);
    let got = server_events(&events);
    let mut expected = vec![ev("ivan", &device, "login", "-", "ok")];
    expected.extend((0..free).map(|_| ev("ivan", "-", "login", "-", "denied")));
    expected.extend([
        ev("ivan", "-", "login", "-", "rate_limited"),
        ev("ghost", "-", "login", "-", "denied"),
        ev("-", "-", "token_rejected", "/api/v1/me", "denied"),
    ]);
    let strip = |e: &Event| Event {
        at: DateTime::UNIX_EPOCH,
        ..e.clone()
    };
    assert_eq!(
        got.iter().map(strip).collect::<Vec<_>>(),
        expected,
        "one event per attempt, in order: who, device, what, target, where, outcome"
    );
    for e in &got {
        assert!(
            before <= e.at && e.at <= after,
            "{e:?} is stamped with the server's UTC time of the attempt ({before} to {after})"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first: {got:?}"
    );
    let cli_add = events
        .iter()
        .find(|e| e.action == "user_add")
        .expect("adding a user from the CLI is audited too");
    assert_eq!(
        (cli_add.target.as_str(), cli_add.from.as_str()),
        ("ivan", "cli")
    );
}

/// Every file in the data folder, concatenated (the database, its WAL and anything
/// else the server keeps there).
fn folder_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the data folder exists") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(folder_bytes(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test]
async fn no_password_or_token_is_ever_written_down() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let wrong = "Tr0ub4dor&3 but wrong";
    let ok: Value = login(&c, &s, "ivan", PASSWORD).await.json().await.unwrap();
    let token = ok["token"].as_str().unwrap().to_owned();
    let device = ok["device_id"].as_i64().unwrap().to_string();
    assert_eq!(
        login(&c, &s, "ivan", wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&c, &s, &token).await, StatusCode::OK);
    let forged = "f".repeat(64);
    assert_eq!(me(&c, &s, &forged).await, StatusCode::UNAUTHORIZED);
    // A token in a query string is refused on /me, and the query is not logged.
    let res = c
        .get(s.url(&format!("/api/v1/me?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    s.cli(&["device", "revoke", &device], "");
    assert_eq!(me(&c, &s, &token).await, StatusCode::UNAUTHORIZED);

    let (tail, events) = audit(&s);
    assert!(
        events.iter().any(|e| e.action == "token_rejected"),
        "the rejected tokens were audited:\n{tail}"
    );
    let listings = [
        tail,
        s.cli(&["user", "list"], ""),
        s.cli(&["device", "list"], ""),
    ]
    .concat();
    // The data folder's files, and the PostgreSQL database when the record is there.
    let mut db = folder_bytes(s.data());
    if let Some(url) = s.database() {
        db.extend(wardcheck_tests::pg::dump(&url));
    }
    assert!(
        contains(&db, b"ivan"),
        "the search below reads the real database"
    );
    let secrets: [(&str, Vec<u8>); 6] = [
        ("the password", PASSWORD.as_bytes().to_vec()),
        ("a wrong password", wrong.as_bytes().to_vec()),
        ("the token", token.as_bytes().to_vec()),
        ("the token in upper case", token.to_uppercase().into_bytes()),
        ("the token's 32 bytes", unhex(&token)),
        ("a forged token", forged.as_bytes().to_vec()),
    ];
    for (what, bytes) in &secrets {
        assert!(
            !contains(&db, bytes),
            "{what} is nowhere in the data folder's files"
        );
        assert!(
            !contains(listings.as_bytes(), bytes),
            "{what} is in no CLI listing (audit tail, user list, device list)"
        );
    }
}

#[tokio::test]
async fn a_user_name_with_line_breaks_cannot_forge_an_audit_line() {
    let s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    // Each tries to end its line and write a second, official-looking one.
    let forged_line = "2020-01-01T00:00:00.000000Z\tadmin\t1\tlogin\t-\t10.9.9.9\tok";
    let attempts = [
        format!("mallory\r\n{forged_line}"),
        format!("mallory\n{forged_line}"),
        format!("mallory\r{forged_line}"),
        format!("mallory\u{85}{forged_line}"),
        "mallory\tadmin".to_owned(),
        // No control character at all: a valid (unknown) name, judged and refused.
        "mallory\u{2028}2020-01-01T00:00:00Z admin".to_owned(),
    ];
    for user in &attempts {
        let status = login(&c, &s, user, PASSWORD).await.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED,
            "{user:?} does not sign in: {status}"
        );
    }

    let (out, events) = audit(&s);
    let got = server_events(&events);
    assert_eq!(
        got.len(),
        attempts.len(),
        "one line per attempt, no more, no fewer (every line was checked for shape):\n{out}"
    );
    for e in &got {
        assert!(
            e.actor.starts_with("mallory"),
            "the attempt is recorded under the name it gave: {e:?}"
        );
        assert_eq!(e.from, "127.0.0.1", "{e:?}");
        assert_eq!(e.action, "login", "{e:?}");
        assert!(
            e.outcome == "bad_request" || e.outcome == "denied",
            "a refusal: {e:?}"
        );
    }
    assert!(
        got[0].actor.starts_with("mallory\\r\\n2020-01-01"),
        "CR and LF are shown as escapes, so the attempt stays readable: {:?}",
        got[0].actor
    );
    assert!(
        !out.lines().any(|l| l.starts_with("2020-")) && !out.contains("10.9.9.9\tok"),
        "no forged line and no forged field:\n{out}"
    );
    assert!(
        !out.contains('\r') && !out.contains('\u{85}') && !out.contains('\u{2028}'),
        "no raw line-breaking character reaches the output"
    );
}
