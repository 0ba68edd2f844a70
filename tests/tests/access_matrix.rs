//! The authorization matrix (RELIABILITY A1, A2, A4): every route the server declares
//! and every kind of sync request, tried as every role against a fresh inspection, must
//! answer exactly what `docs/ACCESS.md` says.
//!
//! The table in ACCESS.md is the specification; this test reads it. It fails when
//! - a cell differs from what the server does;
//! - the server declares a route (anywhere in `sync-server/src`) that the table lacks;
//! - the table has a row this test does not know how to try.
//!
//! Every 404 is also compared with the 404 the same caller gets for an id that does not
//! exist: a denied object and a missing one must be indistinguishable (A1).

mod api_support;

use std::collections::BTreeSet;

use api_support::*;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::{Inspection, NewFinding, PhotoRef, Stamp};
use wardcheck_tests::client::{ClientError, SyncClient, sign_in};
use wardcheck_tests::server::{PASSWORD, Server};

const COLUMNS: [&str; 8] = [
    "anonymous",
    "inspector, assigned",
    "inspector, not assigned",
    "reviewer",
    "trust lead, shared",
    "trust lead, not shared",
    "trust lead, other trust",
    "admin",
];

/// Who each column is, and whether its inspection is shared with the trust.
fn column(i: usize) -> (Option<&'static str>, bool) {
    match i {
        0 => (None, true),
        1 => (Some("ann"), true),
        2 => (Some("bob"), true),
        3 => (Some("rita"), true),
        4 => (Some("lead1"), true),
        5 => (Some("lead1"), false),
        6 => (Some("lead2"), true),
        7 => (Some("root"), true),
        _ => unreachable!(),
    }
}

/// The matrix in docs/ACCESS.md: (row, cells in COLUMNS order).
fn documented_matrix() -> Vec<(String, Vec<String>)> {
    let path = wardcheck_tests::workspace_root().join("docs/ACCESS.md");
    let text = std::fs::read_to_string(&path).expect("docs/ACCESS.md exists");
    let section = text
        .split("## The matrix")
        .nth(1)
        .expect("ACCESS.md has a '## The matrix' section");
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| route |"));
    let header = cells(lines.next().expect("the matrix has a header"));
    assert_eq!(header[0], "route");
    assert_eq!(header[1..], COLUMNS, "ACCESS.md's columns");
    lines.next(); // |---|
    let mut rows = Vec::new();
    for line in lines.take_while(|l| l.starts_with('|')) {
        let c = cells(line);
        assert_eq!(c.len(), COLUMNS.len() + 1, "a full row: {line}");
        rows.push((c[0].trim_matches('`').to_owned(), c[1..].to_vec()));
    }
    rows
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect()
}

struct Ctx {
    s: Server,
    c: Client,
    tokens: std::collections::HashMap<&'static str, String>,
    /// The actor each user's device bound at sign-in.
    actors: std::collections::HashMap<&'static str, ActorId>,
    /// A photo uploaded by cara, for HEAD.
    held_photo: String,
    seed: u32,
}

/// A fresh inspection: trust RJ1, assigned to ann, shared if asked.
struct Fixture {
    id: Uuid,
    response_doc: Uuid,
    review_doc: Uuid,
}

impl Ctx {
    fn token(&self, user: Option<&str>) -> Option<String> {
        user.map(|u| self.tokens[u].clone())
    }

    fn url(&self, path: &str) -> String {
        self.s.url(path)
    }

    async fn fixture(&self, shared: bool) -> Fixture {
        let rita = &self.tokens["rita"];
        let res = self
            .c
            .post(self.url("/api/v1/inspections"))
            .bearer_auth(rita)
            .json(&json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann"] }))
            .send()
            .await
            .unwrap();
        let rec = json_ok(res, StatusCode::CREATED, "fixture").await;
        let id: Uuid = rec["id"].as_str().unwrap().parse().unwrap();
        if shared {
            // The operator's share (the CLI), which leaves the draft a draft: the
            // reviewer's (`POST .../share`) moves a submitted inspection on, and has its
            // own row.
            self.s.cli(&["inspection", "share", &id.to_string()], "");
        }
        Fixture {
            id,
            response_doc: rec["response_doc"].as_str().unwrap().parse().unwrap(),
            review_doc: rec["review_doc"].as_str().unwrap().parse().unwrap(),
        }
    }

    fn next_seed(&mut self) -> u32 {
        self.seed += 1;
        self.seed
    }

    /// Sends a request as `token` (or anonymously).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        token: &Option<String>,
    ) -> reqwest::Response {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        req.send().await.expect("the server answers")
    }
}

/// A 404 must be byte for byte the 404 of something that does not exist.
async fn same_404(
    ctx: &Ctx,
    res: reqwest::Response,
    missing: reqwest::RequestBuilder,
    token: &Option<String>,
    what: &str,
) -> String {
    let denied = res.bytes().await.unwrap();
    let absent = ctx.send(missing, token).await;
    assert_eq!(
        absent.status(),
        StatusCode::NOT_FOUND,
        "{what}: a missing id"
    );
    assert_eq!(
        denied,
        absent.bytes().await.unwrap(),
        "{what}: a denied object answers exactly like a missing one"
    );
    "404".into()
}

async fn connect(ctx: &Ctx, token: &Option<String>) -> Result<SyncClient, ClientError> {
    SyncClient::connect(&ctx.s.ws_url(), token.as_deref()).await
}

fn checklist() -> std::sync::Arc<wardcheck_core::checklist::Checklist> {
    std::sync::Arc::new(wardcheck_tests::crash_checklist())
}

/// Attaches a photo to the fixture's inspection as ann, through sync.
async fn attach(ctx: &Ctx, f: &Fixture, sha: &str, size: usize) {
    let ann = Some(ctx.tokens["ann"].clone());
    let mut client = connect(ctx, &ann).await.expect("ann connects");
    let doc = client.fetch(f.id).await.expect("ann reads her inspection");
    let cl = checklist();
    let item = wardcheck_tests::crash_items(&cl)[0].clone();
    let mut insp = Inspection::from_doc(doc.with_actor(ctx.actors["ann"].clone()), cl).unwrap();
    let photo = PhotoRef {
        hash: sha.to_owned(),
        size: size as u64,
        width: 64,
        height: 48,
        mime: "image/jpeg".into(),
        caption: "server room door".into(),
        captured_at: None,
    };
    insp.attach_photo(&item, photo, &Stamp::new("ann", chrono::Utc::now()))
        .unwrap();
    client
        .sync(f.id, &mut insp)
        .await
        .expect("ann's change syncs");
    client.close().await;
}

/// Adds a finding to the fixture's inspection as ann, through sync; returns its id.
async fn add_finding(ctx: &Ctx, f: &Fixture) -> Uuid {
    let ann = Some(ctx.tokens["ann"].clone());
    let mut client = connect(ctx, &ann).await.expect("ann connects");
    let doc = client.fetch(f.id).await.expect("ann reads her inspection");
    let cl = checklist();
    let item = wardcheck_tests::crash_items(&cl)[0].clone();
    let mut insp = Inspection::from_doc(doc.with_actor(ctx.actors["ann"].clone()), cl).unwrap();
    let id = Uuid::new_v4();
    insp.add_finding(
        NewFinding {
            id,
            severity: Severity::High,
            text: "The server room door was propped open.".into(),
            items: vec![item],
            recommendation: "Fit a door closer.".into(),
        },
        &Stamp::new("ann", chrono::Utc::now()),
    )
    .unwrap();
    client
        .sync(f.id, &mut insp)
        .await
        .expect("ann's finding syncs");
    client.close().await;
    id
}

/// The body that raises a corrective action from `finding`, due in 60 days.
fn action_body(finding: Uuid) -> Value {
    let due = (chrono::Utc::now() + chrono::Duration::days(60)).date_naive();
    json!({ "source": { "kind": "finding", "finding": finding }, "what": "Fit a door closer",
        "due": due })
}

/// A corrective action raised by the reviewer from a finding of the fixture's inspection
/// (which this submits).
async fn raise_action(ctx: &Ctx, f: &Fixture) -> Uuid {
    let finding = add_finding(ctx, f).await;
    submit(ctx, f).await;
    let res = ctx
        .c
        .post(ctx.url(&format!("/api/v1/inspections/{}/actions", f.id)))
        .bearer_auth(&ctx.tokens["rita"])
        .json(&action_body(finding))
        .send()
        .await
        .unwrap();
    let a = json_ok(res, StatusCode::CREATED, "raising the fixture's action").await;
    a["id"].as_str().unwrap().parse().unwrap()
}

/// Moves the fixture's inspection to `submitted`, as its inspector.
async fn submit(ctx: &Ctx, f: &Fixture) {
    for to in ["in_progress", "submitted"] {
        let res = ctx
            .c
            .post(ctx.url(&format!("/api/v1/inspections/{}/state", f.id)))
            .bearer_auth(&ctx.tokens["ann"])
            .json(&json!({ "state": to }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "moving the fixture to {to}");
    }
}

/// Signs the fixture's submitted inspection off as its lead inspector (from her device,
/// as the field app does: there is no API for it).
async fn lead_signs(ctx: &Ctx, f: &Fixture) {
    let ann = Some(ctx.tokens["ann"].clone());
    let mut client = connect(ctx, &ann).await.expect("ann connects");
    let doc = client.fetch(f.id).await.expect("ann reads her inspection");
    let mut insp =
        Inspection::from_doc(doc.with_actor(ctx.actors["ann"].clone()), checklist()).unwrap();
    insp.sign_off(
        Uuid::new_v4(),
        wardcheck_core::inspection::SignoffRole::LeadInspector,
        "A fair account.",
        &Stamp::new("ann", chrono::Utc::now()),
    )
    .unwrap();
    client
        .sync(f.id, &mut insp)
        .await
        .expect("ann's sign-off syncs");
    client.close().await;
}

/// Whether the reviewer, reading afresh, finds change `hash` in document `doc`.
async fn stored(ctx: &Ctx, doc: Uuid, hash: &automerge::ChangeHash) -> bool {
    let rita = Some(ctx.tokens["rita"].clone());
    let mut client = connect(ctx, &rita).await.expect("rita connects");
    let d = client.fetch(doc).await.expect("rita reads every document");
    client.close().await;
    d.get_change_by_hash(hash).is_some()
}

fn sync_outcome(e: ClientError, what: &str) -> String {
    match e {
        ClientError::Unavailable(_) => "unavailable".into(),
        other => panic!("{what}: unexpected sync error {other}"),
    }
}

/// Tries one cell and describes the outcome in the table's notation.
async fn try_cell(ctx: &mut Ctx, row: &str, col: usize) -> Option<String> {
    let (user, shared) = column(col);
    let token = ctx.token(user);
    let what = format!("{row} as {}", COLUMNS[col]);
    let f = ctx.fixture(shared).await;
    let random = Uuid::new_v4();
    let c = ctx.c.clone();
    let status = |res: &reqwest::Response| res.status().as_u16().to_string();
    Some(match row {
        "GET /healthz" => status(&ctx.send(c.get(ctx.url("/healthz")), &token).await),
        "GET /api/v1/openapi.json" => status(
            &ctx.send(c.get(ctx.url("/api/v1/openapi.json")), &token)
                .await,
        ),
        "GET /api/v1/me" => status(&ctx.send(c.get(ctx.url("/api/v1/me")), &token).await),
        "GET /api/v1/checklists" => {
            status(&ctx.send(c.get(ctx.url("/api/v1/checklists")), &token).await)
        }
        "GET /api/v1/checklists/{id}/{version}" => {
            // The checklist the fixture's inspection pins (stored on the server with it).
            let pinned = wardcheck_core::checklist::bundled()
                .into_iter()
                .find(|c| c.id == "cqc-onsite-cyber")
                .expect("bundled");
            let url = ctx.url(&format!(
                "/api/v1/checklists/{}/{}",
                pinned.id, pinned.version
            ));
            status(&ctx.send(c.get(url), &token).await)
        }
        "GET /api/v1/app/updates/{target}/{arch}/{bundle}/{current_version}" => {
            // No package is published in the fixture: nothing newer, for anyone signed in.
            let url = ctx.url("/api/v1/app/updates/linux/x86_64/deb/0.1.0");
            status(&ctx.send(c.get(url), &token).await)
        }
        "GET /api/v1/app/packages/{sha256}" => {
            let url = ctx.url(&format!("/api/v1/app/packages/{}", "ab".repeat(32)));
            status(&ctx.send(c.get(url), &token).await)
        }
        "POST /api/v1/login" => {
            // Anonymous: someone without valid credentials.
            let (name, password) = match user {
                Some(u) => (u, PASSWORD),
                None => ("ann", "not the password"),
            };
            let res = c
                .post(ctx.url("/api/v1/login"))
                .json(&json!({ "user": name, "password": password, "device": "matrix" }))
                .send()
                .await
                .unwrap();
            status(&res)
        }
        "GET /api/v1/inspections" => {
            let mut listed = false;
            let mut after = String::new();
            loop {
                let url = ctx.url(&format!("/api/v1/inspections?limit=200{after}"));
                let res = ctx.send(c.get(url), &token).await;
                if res.status() != StatusCode::OK {
                    return Some(status(&res));
                }
                let page: Value = res.json().await.unwrap();
                listed |= page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["id"] == f.id.to_string());
                match page["next"].as_str() {
                    Some(n) => after = format!("&after={n}"),
                    None => break,
                }
            }
            if listed {
                "200 listed"
            } else {
                "200 not listed"
            }
            .into()
        }
        "POST /api/v1/inspections" => {
            let req = c
                .post(ctx.url("/api/v1/inspections"))
                .json(&json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber" }));
            status(&ctx.send(req, &token).await)
        }
        "GET /api/v1/inspections/{id}" => {
            let res = ctx
                .send(
                    c.get(ctx.url(&format!("/api/v1/inspections/{}", f.id))),
                    &token,
                )
                .await;
            match res.status() {
                StatusCode::OK => {
                    let v: Value = res.json().await.unwrap();
                    match (v["inspection"].is_null(), v["trust_response"].is_null()) {
                        (false, false) => "200 both".into(),
                        (true, true) => "200 record only".into(),
                        (false, true) => "200 inspection only".into(),
                        (true, false) => "200 response only".into(),
                    }
                }
                StatusCode::NOT_FOUND => {
                    let missing = c.get(ctx.url(&format!("/api/v1/inspections/{random}")));
                    same_404(ctx, res, missing, &token, &what).await
                }
                _ => status(&res),
            }
        }
        "GET /api/v1/inspections/{id}/join" => {
            let url = |id: Uuid| ctx.url(&format!("/api/v1/inspections/{id}/join"));
            let res = ctx.send(c.get(url(f.id)), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, c.get(url(random)), &token, &what).await
            } else {
                status(&res)
            }
        }
        "GET /api/v1/inspections/{id}/events" => {
            let url = |id: Uuid| ctx.url(&format!("/api/v1/inspections/{id}/events"));
            let res = ctx.send(c.get(url(f.id)), &token).await;
            match res.status() {
                // The parts the stream's first event says the caller follows; the rest
                // of the stream is let go.
                StatusCode::OK => {
                    let mut events = Events::new(res);
                    let (name, data) = events
                        .next(std::time::Duration::from_secs(30))
                        .await
                        .unwrap_or_else(|| panic!("{what}: the stream's first event"));
                    assert_eq!(name, "ready", "{what}");
                    let parts = Events::parts(&data);
                    if parts.is_empty() {
                        "200 none".into()
                    } else {
                        format!("200 {}", parts.join(" "))
                    }
                }
                StatusCode::NOT_FOUND => {
                    same_404(ctx, res, c.get(url(random)), &token, &what).await
                }
                _ => status(&res),
            }
        }
        "POST /api/v1/inspections/{id}/assign"
        | "POST /api/v1/inspections/{id}/share"
        | "POST /api/v1/inspections/{id}/state" => {
            let action = row.rsplit('/').next().unwrap();
            if action == "share" {
                // Only a submitted inspection is shared.
                submit(ctx, &f).await;
            }
            let body = match action {
                "assign" => Some(json!({ "user": "bob" })),
                "state" => Some(json!({ "state": "in_progress" })),
                _ => None,
            };
            let build = |id: Uuid| {
                let r = c.post(ctx.url(&format!("/api/v1/inspections/{id}/{action}")));
                match &body {
                    Some(b) => r.json(b),
                    None => r,
                }
            };
            let res = ctx.send(build(f.id), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, build(random), &token, &what).await
            } else {
                status(&res)
            }
        }
        "POST /api/v1/inspections/{id}/cancel" => {
            let build = |id: Uuid| c.post(ctx.url(&format!("/api/v1/inspections/{id}/cancel")));
            let res = ctx.send(build(f.id), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => same_404(ctx, res, build(random), &token, &what).await,
                _ => status(&res),
            }
        }
        "POST /api/v1/inspections/{id}/schedule" => {
            let day = (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string();
            let build = |id: Uuid| {
                c.post(ctx.url(&format!("/api/v1/inspections/{id}/schedule")))
                    .json(&json!({ "visit_start": day }))
            };
            let res = ctx.send(build(f.id), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => same_404(ctx, res, build(random), &token, &what).await,
                _ => status(&res),
            }
        }
        "POST /api/v1/password" => {
            // No token is looked at: a wrong code is 401 for everyone. A user name of its
            // own each time, so the failures counted against a user name lock no one out.
            let name = format!("nobody-{}", &Uuid::new_v4().simple().to_string()[..12]);
            let req = c.post(ctx.url("/api/v1/password")).json(&json!({
                "user": name, "code": "1111111111111111", "password": "a new password here"
            }));
            status(&ctx.send(req, &token).await)
        }
        "GET /api/v1/users"
        | "GET /api/v1/devices"
        | "GET /api/v1/audit"
        | "GET /api/v1/audit.csv"
        | "GET /api/v1/telemetry/imports" => {
            let path = row.trim_start_matches("GET ");
            status(&ctx.send(c.get(ctx.url(path)), &token).await)
        }
        "POST /api/v1/users" => {
            let name = format!("new-{}", &Uuid::new_v4().simple().to_string()[..12]);
            let req = c
                .post(ctx.url("/api/v1/users"))
                .json(&json!({ "name": name, "role": "inspector" }));
            status(&ctx.send(req, &token).await)
        }
        "POST /api/v1/users/{name}/disable"
        | "POST /api/v1/users/{name}/enable"
        | "POST /api/v1/users/{name}/password-code" => {
            // A user of its own, added by the admin, so the shared users outlive the row.
            let name = format!("victim-{}", &Uuid::new_v4().simple().to_string()[..12]);
            let res = ctx
                .c
                .post(ctx.url("/api/v1/users"))
                .bearer_auth(&ctx.tokens["root"])
                .json(&json!({ "name": name, "role": "inspector" }))
                .send()
                .await
                .unwrap();
            json_ok(res, StatusCode::CREATED, "the row's user").await;
            let tail = row.rsplit('/').next().unwrap();
            let req = c.post(ctx.url(&format!("/api/v1/users/{name}/{tail}")));
            status(&ctx.send(req, &token).await)
        }
        "POST /api/v1/devices/{id}/revoke" => {
            // A device of its own to revoke: the shared tokens must outlive this row.
            let victim = sign_in(&ctx.s, "bob").await;
            let req = c
                .post(ctx.url(&format!("/api/v1/devices/{}/revoke", victim.device_id)))
                .json(&json!({ "wipe": true }));
            status(&ctx.send(req, &token).await)
        }
        "POST /api/v1/devices/wiped" => {
            // Only a device revoked with a wipe may report one: no live token can.
            let req = c
                .post(ctx.url("/api/v1/devices/wiped"))
                .json(&json!({ "unsynced_changes": 0, "unsynced_photos": 0 }));
            status(&ctx.send(req, &token).await)
        }
        "POST /api/v1/inspections/{id}/actions" => {
            let finding = add_finding(ctx, &f).await;
            submit(ctx, &f).await;
            let body = action_body(finding);
            let build = |id: Uuid| {
                c.post(ctx.url(&format!("/api/v1/inspections/{id}/actions")))
                    .json(&body)
            };
            let res = ctx.send(build(f.id), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, build(random), &token, &what).await
            } else {
                status(&res)
            }
        }
        "GET /api/v1/actions" | "GET /api/v1/actions/{id}" | "POST /api/v1/actions/{id}/steps" => {
            let action = raise_action(ctx, &f).await;
            let build = |id: Uuid| match row {
                "GET /api/v1/actions" => c.get(ctx.url("/api/v1/actions?trust=RJ1")),
                "GET /api/v1/actions/{id}" => c.get(ctx.url(&format!("/api/v1/actions/{id}"))),
                _ => c
                    .post(ctx.url(&format!("/api/v1/actions/{id}/steps")))
                    .json(
                        &json!({ "step": "propose", "steps": "Fit closers to every door",
                        "owner_role": "Estates manager", "date": "2030-01-31" }),
                    ),
            };
            let res = ctx.send(build(action), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => same_404(ctx, res, build(random), &token, &what).await,
                StatusCode::OK if row == "GET /api/v1/actions" => {
                    let list: Value = res.json().await.unwrap();
                    let listed = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["id"] == action.to_string());
                    if listed {
                        "200 listed"
                    } else {
                        "200 not listed"
                    }
                    .into()
                }
                _ => status(&res),
            }
        }
        "POST /api/v1/inspections/{id}/reports"
        | "GET /api/v1/inspections/{id}/reports"
        | "POST /api/v1/inspections/{id}/evidence-pack"
        | "GET /api/v1/inspections/{id}/export.csv" => {
            let tail = row.rsplit('/').next().unwrap();
            let build = |id: Uuid| {
                let url = ctx.url(&format!("/api/v1/inspections/{id}/{tail}"));
                if row.starts_with("GET") {
                    c.get(url)
                } else {
                    c.post(url)
                }
            };
            let res = ctx.send(build(f.id), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => same_404(ctx, res, build(random), &token, &what).await,
                _ => status(&res),
            }
        }
        "GET /api/v1/reports/{sha256}" => {
            // A report the reviewer made (under a regulator's rights: every comment).
            let res = ctx
                .c
                .post(ctx.url(&format!("/api/v1/inspections/{}/reports", f.id)))
                .bearer_auth(&ctx.tokens["rita"])
                .send()
                .await
                .unwrap();
            let made = json_ok(res, StatusCode::CREATED, "the fixture's report").await;
            let sha = made["sha256"].as_str().unwrap().to_owned();
            let build = |sha: &str| c.get(ctx.url(&format!("/api/v1/reports/{sha}")));
            let res = ctx.send(build(&sha), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => {
                    same_404(ctx, res, build(&"0".repeat(64)), &token, &what).await
                }
                _ => status(&res),
            }
        }
        "POST /api/v1/trusts/{code}/evidence-pack" => {
            let build =
                |code: &str| c.post(ctx.url(&format!("/api/v1/trusts/{code}/evidence-pack")));
            let res = ctx.send(build("RJ1"), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => same_404(ctx, res, build("RZZ"), &token, &what).await,
                StatusCode::OK => {
                    let bytes = res.bytes().await.unwrap();
                    let z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
                    let listed = z
                        .file_names()
                        .any(|n| n.is_ok_and(|n| n == format!("{}/report.pdf", f.id)));
                    if listed {
                        "200 listed"
                    } else {
                        "200 not listed"
                    }
                    .into()
                }
                _ => status(&res),
            }
        }
        "GET /api/v1/search" => {
            let res = ctx
                .send(c.get(ctx.url("/api/v1/search?q=RJ1")), &token)
                .await;
            if res.status() != StatusCode::OK {
                return Some(status(&res));
            }
            let v: Value = res.json().await.unwrap();
            let listed = v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["inspection"] == f.id.to_string());
            if listed {
                "200 listed"
            } else {
                "200 not listed"
            }
            .into()
        }
        "GET /api/v1/national" | "GET /api/v1/trusts/{code}" => {
            let path = |code: &str| {
                if row == "GET /api/v1/national" {
                    "/api/v1/national".to_owned()
                } else {
                    format!("/api/v1/trusts/{code}")
                }
            };
            let res = ctx.send(c.get(ctx.url(&path("RJ1"))), &token).await;
            match res.status() {
                StatusCode::NOT_FOUND => {
                    same_404(ctx, res, c.get(ctx.url(&path("RZZ"))), &token, &what).await
                }
                StatusCode::OK => {
                    let v: Value = res.json().await.unwrap();
                    let rows = match v["trusts"].as_array() {
                        Some(rows) => rows.clone(),
                        None => vec![v["trust"].clone()],
                    };
                    let listed = rows
                        .iter()
                        .any(|r| r["latest_inspection"]["id"] == f.id.to_string());
                    if listed {
                        "200 listed"
                    } else {
                        "200 not listed"
                    }
                    .into()
                }
                _ => status(&res),
            }
        }
        "GET /api/v1/inspections/{id}/history" => {
            let item = wardcheck_tests::crash_items(&checklist())[0].clone();
            let url = |id: Uuid| ctx.url(&format!("/api/v1/inspections/{id}/history?item={item}"));
            let res = ctx.send(c.get(url(f.id)), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, c.get(url(random)), &token, &what).await
            } else {
                status(&res)
            }
        }
        "GET /api/v1/inspections/{id}/telemetry-summary" => {
            let url = |id: Uuid| ctx.url(&format!("/api/v1/inspections/{id}/telemetry-summary"));
            let res = ctx.send(c.get(url(f.id)), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, c.get(url(random)), &token, &what).await
            } else {
                status(&res)
            }
        }
        "POST /api/v1/inspections/{id}/comments"
        | "POST /api/v1/inspections/{id}/signoffs"
        | "POST /api/v1/inspections/{id}/reopen" => {
            let (action, body) = if row.ends_with("comments") {
                (
                    "comments",
                    json!({ "target": { "kind": "inspection" }, "text": "Checked with the trust." }),
                )
            } else if row.ends_with("signoffs") {
                // The reviewer signs after the lead inspector.
                submit(ctx, &f).await;
                lead_signs(ctx, &f).await;
                ("signoffs", json!({ "statement": "Reviewed and agreed." }))
            } else {
                submit(ctx, &f).await;
                lead_signs(ctx, &f).await;
                (
                    "reopen",
                    json!({ "reason": "The device sample is too small." }),
                )
            };
            let build = |id: Uuid| {
                c.post(ctx.url(&format!("/api/v1/inspections/{id}/{action}")))
                    .json(&body)
            };
            let res = ctx.send(build(f.id), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, build(random), &token, &what).await
            } else {
                status(&res)
            }
        }
        "PUT /api/v1/inspections/{id}/responses/{finding}" => {
            let finding = add_finding(ctx, &f).await;
            let build = |id: Uuid| {
                c.put(ctx.url(&format!("/api/v1/inspections/{id}/responses/{finding}")))
                    .json(&json!({ "text": "We have fitted a door closer." }))
            };
            let res = ctx.send(build(f.id), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, build(random), &token, &what).await
            } else {
                status(&res)
            }
        }
        "POST /api/v1/logout" => {
            // A token of its own: the shared one must outlive this row.
            let fresh = match user {
                Some(u) => Some(api_support::token(&ctx.c, &ctx.s, u).await),
                None => None,
            };
            let res = ctx.send(c.post(ctx.url("/api/v1/logout")), &fresh).await;
            let s = status(&res);
            if let (Some(_), "204") = (&fresh, s.as_str()) {
                let me = ctx.send(c.get(ctx.url("/api/v1/me")), &fresh).await;
                assert_eq!(
                    me.status(),
                    StatusCode::UNAUTHORIZED,
                    "{what}: the token is refused once signed out"
                );
            }
            s
        }
        "PUT /api/v1/blobs/{sha256}" => {
            let seed = ctx.next_seed();
            let photo = jpeg(64, 48, seed);
            let req = c
                .put(ctx.url(&format!("/api/v1/blobs/{}", sha256(&photo))))
                .body(photo);
            status(&ctx.send(req, &token).await)
        }
        "HEAD /api/v1/blobs/{sha256}" => {
            let url = ctx.url(&format!("/api/v1/blobs/{}", ctx.held_photo));
            status(&ctx.send(c.head(url), &token).await)
        }
        "GET /api/v1/blobs/{sha256}" => {
            // A photo ann uploaded and attached to this column's inspection (a photo she
            // did not upload and cannot read, she may not attach: tests/tests/write_policy.rs).
            let seed = ctx.next_seed();
            let photo = jpeg(64, 48, seed);
            let sha = sha256(&photo);
            let ann = ctx.tokens["ann"].clone();
            assert_eq!(
                put_photo(&c, &ctx.s, &ann, &photo).await.status(),
                StatusCode::CREATED
            );
            attach(ctx, &f, &sha, photo.len()).await;
            let res = ctx
                .send(c.get(ctx.url(&format!("/api/v1/blobs/{sha}"))), &token)
                .await;
            if res.status() == StatusCode::NOT_FOUND {
                let missing =
                    c.get(ctx.url(&format!("/api/v1/blobs/{}", sha256(random.as_bytes()))));
                same_404(ctx, res, missing, &token, &what).await
            } else {
                let ct = res.headers().get(header::CONTENT_TYPE).cloned();
                let s = status(&res);
                if s == "200" {
                    assert_eq!(ct.unwrap(), "image/jpeg", "{what}");
                }
                s
            }
        }
        "POST /api/v1/telemetry/{kind}" => {
            // The same small file every time: imported once, then already imported.
            let req = c
                .post(ctx.url("/api/v1/telemetry/trusts?as_of=2026-01-05"))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(
                    "ods_code,name,trust_type,major_trauma_centre,region\n\
                     RJ1,Guy's and St Thomas',acute,yes,London\n",
                );
            status(&ctx.send(req, &token).await)
        }
        "GET /api/v1/sync" => match connect(ctx, &token).await {
            Ok(client) => {
                client.close().await;
                "101".into()
            }
            Err(ClientError::Refused { status, .. }) => status.to_string(),
            Err(e) => panic!("{what}: {e}"),
        },
        "POST /api/v1/actors" => {
            let req = c
                .post(ctx.url("/api/v1/actors"))
                .json(&json!({ "actor": ActorId::random().to_hex_string() }));
            status(&ctx.send(req, &token).await)
        }
        "POST /api/v1/inspections/{id}/comments/{comment}/release" => {
            // A comment by the reviewer, in the review document.
            let res = ctx
                .send(
                    c.post(ctx.url(&format!("/api/v1/inspections/{}/comments", f.id)))
                        .json(&json!({ "target": { "kind": "inspection" }, "text": "For the trust." })),
                    &ctx.token(Some("rita")),
                )
                .await;
            let comment = json_ok(res, StatusCode::CREATED, "a comment to release").await;
            let cid = comment["id"].as_str().unwrap().to_owned();
            let build = |id: Uuid| {
                c.post(ctx.url(&format!("/api/v1/inspections/{id}/comments/{cid}/release")))
            };
            let res = ctx.send(build(f.id), &token).await;
            if res.status() == StatusCode::NOT_FOUND {
                same_404(ctx, res, build(random), &token, &what).await
            } else {
                status(&res)
            }
        }
        "SYNC read inspection" | "SYNC read trust_response" | "SYNC read review" => {
            if token.is_none() {
                return Some("-".into());
            }
            let doc = if row.ends_with("inspection") {
                f.id
            } else if row.ends_with("review") {
                f.review_doc
            } else {
                f.response_doc
            };
            let mut client = connect(ctx, &token).await.expect("connects");
            let r = client.fetch(doc).await;
            client.close().await;
            match r {
                Ok(mut d) => {
                    assert!(!d.get_heads().is_empty(), "{what}: the document arrived");
                    "read".into()
                }
                Err(e) => sync_outcome(e, &what),
            }
        }
        "SYNC write inspection" => {
            if token.is_none() {
                return Some("-".into());
            }
            let mut client = connect(ctx, &token).await.expect("connects");
            let doc = match client.fetch(f.id).await {
                Ok(d) => d,
                Err(e) => return Some(sync_outcome(e, &what)),
            };
            let cl = checklist();
            let item = wardcheck_tests::crash_items(&cl)[1].clone();
            let actor = ctx.actors[user.unwrap()].clone();
            let mut insp = Inspection::from_doc(doc.with_actor(actor), cl).unwrap();
            // A finding: what inspectors and reviewers both write (the write policy's
            // rows are tried by tests/tests/write_policy.rs).
            insp.add_finding(
                NewFinding {
                    id: Uuid::new_v4(),
                    severity: Severity::Low,
                    text: format!("probe by {}", COLUMNS[col]),
                    items: vec![item],
                    recommendation: String::new(),
                },
                &Stamp::new(user.unwrap(), chrono::Utc::now()),
            )
            .unwrap();
            let hash = insp.heads()[0];
            client
                .sync(f.id, &mut insp)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            client.close().await;
            if stored(ctx, f.id, &hash).await {
                "stored"
            } else {
                "dropped"
            }
            .into()
        }
        "SYNC write trust_response" => {
            if token.is_none() {
                return Some("-".into());
            }
            let mut client = connect(ctx, &token).await.expect("connects");
            let mut doc: AutoCommit = match client.fetch(f.response_doc).await {
                Ok(d) => d.with_actor(ctx.actors[user.unwrap()].clone()),
                Err(e) => return Some(sync_outcome(e, &what)),
            };
            let (_, findings) = doc
                .get(automerge::ROOT, "findings")
                .unwrap()
                .expect("a response document has findings");
            let response = json!({ "value": "We will fix it.", "by": user.unwrap(), "at": chrono::Utc::now() });
            doc.put(&findings, Uuid::new_v4().to_string(), response.to_string())
                .unwrap();
            doc.commit();
            let hash = doc.get_heads()[0];
            client
                .sync(f.response_doc, &mut doc)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            client.close().await;
            if stored(ctx, f.response_doc, &hash).await {
                "stored"
            } else {
                "dropped"
            }
            .into()
        }
        "SYNC write review" => {
            if token.is_none() {
                return Some("-".into());
            }
            let mut client = connect(ctx, &token).await.expect("connects");
            let mut doc: AutoCommit = match client.fetch(f.review_doc).await {
                Ok(d) => d.with_actor(ctx.actors[user.unwrap()].clone()),
                Err(e) => return Some(sync_outcome(e, &what)),
            };
            let (_, comments) = doc
                .get(automerge::ROOT, "comments")
                .unwrap()
                .expect("a review document has comments");
            let id = Uuid::new_v4();
            let comment = json!({ "id": id, "target": { "kind": "inspection" },
                "text": "Checked.", "by": user.unwrap(), "at": chrono::Utc::now() });
            doc.put(&comments, id.to_string(), comment.to_string())
                .unwrap();
            doc.commit();
            let hash = doc.get_heads()[0];
            client
                .sync(f.review_doc, &mut doc)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            client.close().await;
            if stored(ctx, f.review_doc, &hash).await {
                "stored"
            } else {
                "dropped"
            }
            .into()
        }
        _ => return None,
    })
}

#[tokio::test]
async fn every_route_and_sync_request_answers_every_role_as_access_md_says() {
    let matrix = documented_matrix();

    // Every route the server declares is in the table, and nothing twice.
    let rows: BTreeSet<&str> = matrix.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rows.len(), matrix.len(), "a row appears twice in ACCESS.md");
    let missing: Vec<String> = declared_routes()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .filter(|r| !rows.contains(r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the server declares that docs/ACCESS.md does not list: {missing:?}"
    );

    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("bob", "inspector")
        .add_user("cara", "inspector")
        .add_user("rita", "reviewer")
        .add_user("root", "admin")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    let c = client();
    let mut tokens = std::collections::HashMap::new();
    let mut actors = std::collections::HashMap::new();
    for u in ["ann", "bob", "cara", "rita", "root", "lead1", "lead2"] {
        let login = wardcheck_tests::client::sign_in(&s, u).await;
        tokens.insert(u, login.token);
        actors.insert(u, login.actor);
    }
    let held = jpeg(64, 48, 1_000_000);
    assert_eq!(
        put_photo(&c, &s, &tokens["cara"], &held).await.status(),
        StatusCode::CREATED
    );
    let mut ctx = Ctx {
        s,
        c,
        tokens,
        actors,
        held_photo: sha256(&held),
        seed: 0,
    };

    let mut wrong = Vec::new();
    for (row, expected) in &matrix {
        for (col, want) in expected.iter().enumerate() {
            let got = try_cell(&mut ctx, row, col)
                .await
                .unwrap_or_else(|| panic!("ACCESS.md has a row this test cannot try: {row}"));
            if &got != want {
                wrong.push(format!(
                    "{row} as {}: ACCESS.md says {want}, the server {got}",
                    COLUMNS[col]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the server differs from docs/ACCESS.md:\n{}",
        wrong.join("\n")
    );
}
