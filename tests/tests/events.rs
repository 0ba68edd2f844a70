//! Pushed updates (issue 13 §3): `GET /api/v1/inspections/{id}/events` against the real
//! server. A reviewer's open stream hears a change an inspector syncs and a comment made
//! through the API, naming the part that changed, and nothing of the document; a trust
//! lead's stream follows only what the lead may read, and hears nothing of the internal
//! review; another trust's lead, an inspector not assigned and a made-up id get the same
//! 404; a user holds at most 8 streams, apart from their sync connections (429 past
//! them, audited); a stream ends with `closed` once its sign-in is revoked (audited).

mod api_support;

use std::time::Duration;

use api_support::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_tests::client::{Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;

/// How long a test waits for an event before it fails: a bound on a failure, not a
/// measure of speed.
const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    s: Server,
    c: Client,
    ann: Login,
    rita: String,
    lead1: String,
    lead2: String,
    bob: String,
}

async fn setup() -> Setup {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    let c = client();
    Setup {
        ann: sign_in(&s, "ann").await,
        rita: token(&c, &s, "rita").await,
        lead1: token(&c, &s, "lead1").await,
        lead2: token(&c, &s, "lead2").await,
        bob: token(&c, &s, "bob").await,
        s,
        c,
    }
}

impl Setup {
    async fn create(&self) -> Uuid {
        let res = self
            .c
            .post(self.s.url("/api/v1/inspections"))
            .bearer_auth(&self.rita)
            .json(&json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"] }))
            .send()
            .await
            .unwrap();
        let rec = json_ok(res, StatusCode::CREATED, "create").await;
        rec["id"].as_str().unwrap().parse().unwrap()
    }

    async fn post(&self, token: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let req = self.c.post(self.s.url(path)).bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        req.send().await.unwrap()
    }

    /// Adds a finding as ann, through sync; returns its id.
    async fn finding(&self, id: Uuid) -> Uuid {
        finding_by_sync(&self.s, &self.ann, "ann", id).await
    }

    /// Comments as rita; returns the comment's id.
    async fn comment(&self, id: Uuid, text: &str) -> String {
        let res = self
            .post(
                &self.rita,
                &format!("/api/v1/inspections/{id}/comments"),
                Some(json!({ "target": { "kind": "inspection" }, "text": text })),
            )
            .await;
        let c = json_ok(res, StatusCode::CREATED, "comment").await;
        c["id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, token: &str, id: impl std::fmt::Display) -> StatusCode {
        self.c
            .get(self.s.url(&format!("/api/v1/inspections/{id}/events")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// The next `changed` event's parts.
async fn changed(events: &mut Events) -> Vec<String> {
    let (name, data) = events.next(WAIT).await.expect("an event");
    assert_eq!(name, "changed", "{data}");
    let obj = data.as_object().expect("an object");
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["parts"],
        "an event names parts and holds nothing of the document: {data}"
    );
    Events::parts(&data)
}

#[tokio::test]
async fn a_reviewers_stream_hears_a_synced_change_and_a_comment_naming_the_part() {
    let t = setup().await;
    let id = t.create().await;
    let mut events = Events::open(&t.c, &t.s, &t.rita, id).await;
    let (name, data) = events.next(WAIT).await.expect("the first event");
    assert_eq!(name, "ready");
    assert_eq!(
        Events::parts(&data),
        ["inspection", "review", "response"],
        "a reviewer follows every part"
    );

    // An inspector's change, synced.
    t.finding(id).await;
    let mut parts = changed(&mut events).await;
    // Syncing may also have stored a sync-made change of ann's in another part first.
    while !parts.contains(&"inspection".to_owned()) {
        parts = changed(&mut events).await;
    }

    // A change to the team is a change to what the page shows of the inspection.
    let res = t
        .post(
            &t.rita,
            &format!("/api/v1/inspections/{id}/assign"),
            Some(json!({ "user": "bob" })),
        )
        .await;
    json_ok(res, StatusCode::OK, "assign").await;
    assert_eq!(changed(&mut events).await, ["inspection"]);

    // A comment made through the API lands in the review document.
    t.comment(id, "Is the imaging network segregated?").await;
    let parts = changed(&mut events).await;
    assert_eq!(parts, ["review"], "only the review document changed");

    // The stream was audited once, when it opened.
    let audit = t.s.cli(&["audit", "tail", "-n", "50"], "");
    let opened: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\tevents\t") && l.contains(&format!("inspection:{id}")))
        .collect();
    assert_eq!(opened.len(), 1, "{audit}");
    assert!(opened[0].contains("rita"), "{audit}");
}

#[tokio::test]
async fn a_trust_lead_follows_only_what_the_lead_may_read_and_others_get_404() {
    let t = setup().await;
    let id = t.create().await;
    let finding = t.finding(id).await;

    // Before the inspection is shared, the trust's own lead sees nothing of it; nor do
    // another trust's lead and an inspector not assigned; all exactly like a made-up id.
    let missing = Uuid::new_v4();
    for (who, token) in [("lead1", &t.lead1), ("lead2", &t.lead2), ("bob", &t.bob)] {
        assert_eq!(t.status(token, id).await, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(
            t.status(token, missing).await,
            StatusCode::NOT_FOUND,
            "{who}"
        );
    }
    assert_eq!(t.status(&t.rita, "not-a-uuid").await, StatusCode::NOT_FOUND);
    let anonymous =
        t.c.get(t.s.url(&format!("/api/v1/inspections/{id}/events")))
            .send()
            .await
            .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Submitted and shared: the lead follows the inspection and the response, never the
    // internal review.
    for to in ["in_progress", "submitted"] {
        let res = t
            .post(
                &t.ann.token,
                &format!("/api/v1/inspections/{id}/state"),
                Some(json!({ "state": to })),
            )
            .await;
        json_ok(res, StatusCode::OK, to).await;
    }
    let res = t
        .post(&t.rita, &format!("/api/v1/inspections/{id}/share"), None)
        .await;
    json_ok(res, StatusCode::OK, "share").await;
    let mut lead = Events::open(&t.c, &t.s, &t.lead1, id).await;
    let (name, data) = lead.next(WAIT).await.expect("the first event");
    assert_eq!(name, "ready");
    assert_eq!(Events::parts(&data), ["inspection", "response"]);

    // An internal comment: the lead's stream says nothing of it. The lead's own response
    // comes next, so if the comment had been told it would come first.
    let internal = t
        .comment(id, "Internal: check the segregation claim.")
        .await;
    let res =
        t.c.put(t.s.url(&format!("/api/v1/inspections/{id}/responses/{finding}")))
            .bearer_auth(&t.lead1)
            .json(&json!({ "text": "The imaging VLAN is being replaced in March." }))
            .send()
            .await
            .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    assert_eq!(changed(&mut lead).await, ["response"]);

    // Released to the trust, the comment shows in the inspection's view: the lead's
    // page hears of it as a change to the inspection, and nothing of the review.
    let res = t
        .post(
            &t.rita,
            &format!("/api/v1/inspections/{id}/comments/{internal}/release"),
            Some(json!({})),
        )
        .await;
    json_ok(res, StatusCode::OK, "release").await;
    assert_eq!(changed(&mut lead).await, ["inspection"]);
}

#[tokio::test]
async fn streams_are_capped_per_user_apart_from_sync_and_end_when_signed_out() {
    let t = setup().await;
    let id = t.create().await;
    // A second device of rita's, to sign out while its streams are open.
    let victim = token(&t.c, &t.s, "rita").await;
    let mut open = Vec::new();
    for _ in 0..8 {
        let mut e = Events::open(&t.c, &t.s, &victim, id).await;
        assert_eq!(e.next(WAIT).await.expect("ready").0, "ready");
        open.push(e);
    }
    // The user's 9th stream, from any device, is refused and audited.
    let res =
        t.c.get(t.s.url(&format!("/api/v1/inspections/{id}/events")))
            .bearer_auth(&t.rita)
            .send()
            .await
            .unwrap();
    let (code, _) = error(res, StatusCode::TOO_MANY_REQUESTS, "a 9th stream").await;
    assert_eq!(code, "too_many_connections");
    let audit = t.s.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit.lines().any(|l| l.contains("rita")
            && l.contains(&format!("\tevents:{id}\t"))
            && l.contains("too_many_connections")),
        "{audit}"
    );

    // Streams are not sync connections: the same user still syncs.
    let rita_sync = SyncClient::connect(&t.s.ws_url(), Some(&t.rita))
        .await
        .expect("a sync connection beside 8 streams");
    rita_sync.close().await;

    // Signed out: at the next change each open stream says so, and ends.
    let res = t.post(&victim, "/api/v1/logout", None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    t.comment(id, "A change after the sign-out.").await;
    for e in &mut open {
        let (name, data) = e.next(WAIT).await.expect("a closing event");
        assert_eq!(name, "closed", "{data}");
        assert_eq!(data["reason"], "signed_out");
        assert!(e.next(WAIT).await.is_none(), "the stream ends");
    }
    drop(open);
    let audit = t.s.cli(&["audit", "tail", "-n", "80"], "");
    let ended = audit
        .lines()
        .filter(|l| l.contains("\tevents_closed\t") && l.contains("signed_out"))
        .count();
    assert_eq!(ended, 8, "each stream's end is audited:\n{audit}");
    // Their places are free again: a new stream opens.
    let mut again = Events::open(&t.c, &t.s, &t.rita, id).await;
    assert_eq!(again.next(WAIT).await.expect("ready").0, "ready");
}
