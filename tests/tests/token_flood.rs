//! A flood of made-up device tokens, against the real server (issue 13 §4): every one is
//! refused and accounted for, but not with an audit row (and an fsync) each. The first
//! refusal from an address in a minute is audited at once; the rest are counted and
//! written as one row per address and minute, at the next flush or when the server is
//! stopped with SIGTERM. Past the free refusals of a minute, each answer to a bad token
//! is held back. A valid client is served throughout, its device's last-seen time is
//! written in a batch, and the audit log's chain stays whole.
mod api_support;

use api_support::client;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use wardcheck_tests::server::{PASSWORD, Server};

const FLOOD: usize = 600;

async fn me(c: &Client, s: &Server, token: &str) -> StatusCode {
    c.get(s.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers /me")
        .status()
}

/// The `token_rejected` lines of `audit tail`: (outcome, origin, how many refusals the
/// line stands for: 1, or 1 + the count its detail gives).
fn rejections(s: &Server) -> Vec<(String, String, u64)> {
    s.cli(&["audit", "tail", "-n", "5000"], "")
        .lines()
        .filter(|l| l.split('\t').nth(3) == Some("token_rejected"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let counted = f.get(7).map_or(0, |d| {
                let n = d.split(' ').next().unwrap_or_default();
                n.parse::<u64>()
                    .unwrap_or_else(|_| panic!("a count line starts with its count: {l:?}"))
            });
            // A count line stands for the refusals after the first, which has a line
            // of its own.
            (f[6].to_owned(), f[5].to_owned(), counted.max(1))
        })
        .collect()
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_counted_not_written_one_by_one() {
    let mut s = Server::start();
    s.add_user("ivan", "inspector");
    let c = client();
    let ok: Value = c
        .post(s.url("/api/v1/login"))
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "tablet" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = ok["token"].as_str().unwrap().to_owned();
    let device = ok["device_id"].as_i64().unwrap().to_string();
    let before = Utc::now();

    // Well-formed tokens (looked up, and not found), malformed ones (not looked up),
    // and a token in a cookie: all refused; the valid client is served in between.
    let flood = (0..FLOOD).map(|i| {
        let c = c.clone();
        let url = s.url(if i % 2 == 0 {
            "/api/v1/me"
        } else {
            "/api/v1/inspections"
        });
        async move {
            let req = c.get(url);
            let req = match i % 3 {
                0 => req.bearer_auth(format!("{i:064x}")),
                1 => req.bearer_auth(format!("not a token {i}")),
                _ => req.header("cookie", format!("wardcheck_token={i:064x}")),
            };
            req.send().await.expect("the server answers").status()
        }
    });
    let (statuses, served) = tokio::join!(join_all(flood), async {
        let mut served = Vec::new();
        for _ in 0..20 {
            served.push(me(&c, &s, &token).await);
        }
        served
    });
    assert!(
        statuses.iter().all(|st| *st == StatusCode::UNAUTHORIZED),
        "every made-up token is refused: {:?}",
        statuses
            .iter()
            .filter(|st| **st != StatusCode::UNAUTHORIZED)
            .collect::<Vec<_>>()
    );
    assert!(
        served.iter().all(|st| *st == StatusCode::OK),
        "the valid client is served during the flood: {served:?}"
    );

    // While the server runs, the flood made one audit row (up to three if a minute
    // turned during it and a flush wrote the first minute's count), not 600.
    let now = rejections(&s);
    assert!(
        (1..=3).contains(&now.len()),
        "the first refusal of the minute is audited at once, the rest counted: {now:?}"
    );

    // Past the free refusals of the minute, a bad token's answer is held back (so a
    // flood from a few connections makes a few attempts a second), and a good one's is
    // not. (A lower bound: a deliberate wait, not a measure of speed.)
    // If the minute turned since the flood, its count starts afresh: the free ones go
    // first, then one is held.
    let mut extra = 0u64;
    let held = loop {
        extra += 1;
        let t0 = std::time::Instant::now();
        assert_eq!(
            me(&c, &s, &format!("{extra:064x}")).await,
            StatusCode::UNAUTHORIZED
        );
        let took = t0.elapsed();
        if took >= std::time::Duration::from_millis(900) || extra > 40 {
            break took;
        }
    };
    assert!(
        held >= std::time::Duration::from_millis(900),
        "a refusal past the free ones of its minute is held back: {extra} tried"
    );
    assert_eq!(me(&c, &s, &token).await, StatusCode::OK);

    // Stopped with SIGTERM, the server writes what it counted.
    assert!(s.terminate(), "the server stops cleanly on SIGTERM");
    let after = rejections(&s);
    let total: u64 = after.iter().map(|(_, _, n)| n).sum();
    assert_eq!(
        total,
        FLOOD as u64 + extra,
        "every refusal is accounted for, once: {after:?}"
    );
    assert!(
        after.len() <= 4,
        "one row at once and one count a minute for the one address: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|(outcome, from, _)| outcome == "denied" && from == "127.0.0.1")
    );

    // The device's last-seen time was written in a batch, at the stop at the latest.
    let devices = s.cli(&["device", "list"], "");
    let line = devices
        .lines()
        .find(|l| l.split('\t').next() == Some(device.as_str()))
        .unwrap_or_else(|| panic!("the device is listed: {devices}"));
    let seen = DateTime::parse_from_rfc3339(line.split('\t').nth(3).unwrap())
        .unwrap_or_else(|e| panic!("the device was seen: {line}: {e}"))
        .to_utc();
    assert!(
        seen >= before,
        "last seen {seen} is after the requests began ({before})"
    );

    // The batch kept the audit log's chain whole.
    let verify = s.cli(&["audit", "verify"], "");
    assert!(!verify.contains("break"), "{verify}");

    // Started again: it serves, and counts afresh.
    s.restart();
    // A new client: the old one's pooled connections went with the old process.
    let c = client();
    assert_eq!(me(&c, &s, &token).await, StatusCode::OK);
    assert_eq!(me(&c, &s, &"e".repeat(64)).await, StatusCode::UNAUTHORIZED);
}
