//! The write policy, cell by cell, against the real server with a raw client.
//!
//! `docs/ACCESS.md`'s write-policy table must be the one the code holds
//! (`wardcheck_core::policy::table_markdown`). Then every cell (each part of each document
//! as each role) is tried over sync: a change of that part, made by hand on the
//! Automerge document (no typed operation: a raw client sends whatever it likes), on the
//! role's own bound actor, stamped with the role's user. Where the table allows it, in
//! a state it allows, the change must be stored; in a state it does not, or where it
//! never allows it, the change must be refused with the policy's code, audited, and leave
//! nothing stored, the document still whole for everyone, then and after a restart.

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::inspection::{SCHEMA_VERSION, State};
use wardcheck_core::policy::{self, DocKind, Part, Role, Rule};
use wardcheck_tests::client::{ClientError, Login, SyncClient, sign_in};
use wardcheck_tests::server::Server;

const ALL_STATES: [State; 6] = [
    State::Draft,
    State::InProgress,
    State::Submitted,
    State::SharedWithTrust,
    State::Closed,
    State::Cancelled,
];

fn user(role: Role) -> &'static str {
    match role {
        Role::LeadInspector => "ann",
        Role::Inspector => "ian",
        Role::Reviewer => "rita",
        Role::TrustLead => "lead1",
        Role::Admin => "root",
        Role::Server => unreachable!("the server is not a user"),
    }
}

struct Ctx {
    s: Server,
    c: Client,
    logins: HashMap<&'static str, Login>,
}

/// An inspection of RJ1 for one try: ann leads, ian inspects, shared with the trust (so
/// its lead may read it whatever its state), a comment by the reviewer in its review
/// document, a finding by ann; then moved to `state`.
struct Fixture {
    id: Uuid,
    response_doc: Uuid,
    review_doc: Uuid,
    comment: Uuid,
}

impl Ctx {
    fn token(&self, u: &str) -> &str {
        &self.logins[u].token
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> Value {
        let res = self
            .c
            .post(self.s.url(path))
            .bearer_auth(self.token(who))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{who} POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn fixture(&self, state: State) -> Fixture {
        let rec = self
            .post(
                "rita",
                "/api/v1/inspections",
                json!({ "trust": "RJ1", "checklist": "cqc-onsite-cyber", "assign": ["ann", "ian"] }),
            )
            .await;
        let id: Uuid = rec["id"].as_str().unwrap().parse().unwrap();
        // The operator's share, which leaves the state as it is: the trust's lead may
        // read the fixture whatever its state.
        self.s.cli(&["inspection", "share", &id.to_string()], "");
        let c = self
            .post(
                "rita",
                &format!("/api/v1/inspections/{id}/comments"),
                json!({ "target": { "kind": "inspection" }, "text": "Internal." }),
            )
            .await;
        let moves: &[(&str, &str)] = match state {
            State::Draft => &[],
            State::InProgress => &[("ann", "in_progress")],
            State::Submitted => &[("ann", "in_progress"), ("ann", "submitted")],
            State::SharedWithTrust => &[
                ("ann", "in_progress"),
                ("ann", "submitted"),
                ("rita", "shared_with_trust"),
            ],
            State::Closed => &[
                ("ann", "in_progress"),
                ("ann", "submitted"),
                ("rita", "shared_with_trust"),
                ("rita", "closed"),
            ],
            // The server's move, asked for by a reviewer (below).
            State::Cancelled => &[],
        };
        if state == State::Cancelled {
            self.post(
                "rita",
                &format!("/api/v1/inspections/{id}/cancel"),
                json!({}),
            )
            .await;
        }
        for (who, to) in moves {
            self.post(
                who,
                &format!("/api/v1/inspections/{id}/state"),
                json!({ "state": to }),
            )
            .await;
        }
        Fixture {
            id,
            response_doc: rec["response_doc"].as_str().unwrap().parse().unwrap(),
            review_doc: rec["review_doc"].as_str().unwrap().parse().unwrap(),
            comment: c["id"].as_str().unwrap().parse().unwrap(),
        }
    }
}

fn obj(doc: &AutoCommit, path: &[&str]) -> automerge::ObjId {
    let mut o = automerge::ROOT;
    for k in path {
        o = doc
            .get(&o, *k)
            .unwrap()
            .unwrap_or_else(|| panic!("the document has {path:?}"))
            .1;
    }
    o
}

fn at() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn stamped(value: Value, by: &str) -> String {
    json!({ "value": value, "by": by, "at": at() }).to_string()
}

fn item() -> String {
    wardcheck_tests::crash_items(&wardcheck_tests::crash_checklist())[0].clone()
}

/// Writes a change of `part` by `by` into `doc` (its kind's document), as a raw client
/// would: only Automerge calls. `to` is the state a state change moves to.
fn write(doc: &mut AutoCommit, part: Part, by: &str, f: &Fixture, to: State, signer: Role) {
    let item = item();
    let id = Uuid::new_v4().to_string();
    match part {
        Part::Shape => {
            doc.put(automerge::ROOT, "devices", "gone").unwrap();
        }
        Part::Meta => {
            let m = obj(doc, &["meta"]);
            doc.put(&m, "trust", "RTH").unwrap();
        }
        Part::Schema => {
            // The same version as a signed integer: a real change (Automerge makes none
            // for a put of the value a key already holds).
            doc.put(
                automerge::ROOT,
                "schema_version",
                ScalarValue::Int(SCHEMA_VERSION as i64),
            )
            .unwrap();
        }
        Part::State => {
            let m = obj(doc, &["meta"]);
            doc.put(&m, "state", stamped(serde_json::to_value(to).unwrap(), by))
                .unwrap();
        }
        Part::Answer => {
            let r = obj(doc, &["responses", &item]);
            doc.put(&r, "answer", stamped(json!({ "kind": "met" }), by))
                .unwrap();
        }
        Part::Note => {
            let n = obj(doc, &["responses", &item, "note"]);
            doc.splice_text(&n, 0, 0, "Seen on site. ").unwrap();
        }
        Part::Photo => {
            let hash = format!("{:064x}", Uuid::new_v4().as_u128());
            let p = obj(doc, &["responses", &item, "photos"]);
            let photo = json!({ "hash": hash, "size": 1, "width": 1, "height": 1,
                "mime": "image/jpeg", "caption": "", "captured_at": null });
            doc.put(&p, hash.as_str(), stamped(photo, by)).unwrap();
        }
        Part::Device => {
            let d = obj(doc, &["devices"]);
            let dev = doc.put_object(&d, id.as_str(), ObjType::Map).unwrap();
            doc.put(&dev, "hostname", stamped(json!("WS-9"), by))
                .unwrap();
            doc.put(&dev, "build_seen", stamped(json!("19045"), by))
                .unwrap();
            doc.put(&dev, "added", json!({ "by": by, "at": at() }).to_string())
                .unwrap();
            doc.put_object(&dev, "observations", ObjType::Map).unwrap();
        }
        Part::Finding => {
            let fs = obj(doc, &["findings"]);
            let fnd = doc.put_object(&fs, id.as_str(), ObjType::Map).unwrap();
            doc.put(&fnd, "severity", stamped(json!("high"), by))
                .unwrap();
            let t = doc.put_object(&fnd, "text", ObjType::Text).unwrap();
            doc.splice_text(&t, 0, 0, "Door propped open").unwrap();
            doc.put_object(&fnd, "recommendation", ObjType::Text)
                .unwrap();
            let items = doc.put_object(&fnd, "items", ObjType::Map).unwrap();
            doc.put(
                &items,
                item.as_str(),
                json!({ "by": by, "at": at() }).to_string(),
            )
            .unwrap();
            doc.put(&fnd, "created", json!({ "by": by, "at": at() }).to_string())
                .unwrap();
            doc.put(&fnd, "edited", json!({ "by": by, "at": at() }).to_string())
                .unwrap();
        }
        Part::Signoff => {
            let s = obj(doc, &["signoffs"]);
            let role = policy::signoff_role(signer)
                .map(|r| serde_json::to_value(r).unwrap())
                .unwrap_or(json!("lead_inspector"));
            // Sealed, as a sign-off must be: the heads it is made on and the hash of
            // the content there (the reviewer's still comes before the lead
            // inspector's, which the fixture lacks: see `expected`).
            let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            let content = wardcheck_core::inspection::Inspection::from_doc(
                doc.clone(),
                std::sync::Arc::new(wardcheck_tests::crash_checklist()),
            )
            .and_then(|i| i.view())
            .map(|v| wardcheck_core::seal::content_hash(&v))
            .unwrap_or_default();
            let v = json!({ "id": id, "role": role, "statement": "A fair account.", "by": by,
                "at": at(), "heads": heads, "content": content });
            doc.put(&s, id.as_str(), v.to_string()).unwrap();
        }
        Part::LegacyComment => {
            let c = obj(doc, &["comments"]);
            let v = json!({ "id": id, "target": { "kind": "inspection" }, "text": "x", "by": by, "at": at() });
            doc.put(&c, id.as_str(), v.to_string()).unwrap();
        }
        Part::Response => {
            let r = obj(doc, &["findings"]);
            doc.put(&r, id.as_str(), stamped(json!("We will fix it."), by))
                .unwrap();
        }
        Part::Accuracy => {
            let a = obj(doc, &["accuracy"]);
            let v = json!({ "id": id, "about": "report", "text": "The site is wrong.", "by": by, "at": at() });
            doc.put(&a, id.as_str(), v.to_string()).unwrap();
        }
        Part::Comment => {
            let c = obj(doc, &["comments"]);
            let v = json!({ "id": id, "target": { "kind": "inspection" }, "text": "Checked.", "by": by, "at": at() });
            doc.put(&c, id.as_str(), v.to_string()).unwrap();
        }
        Part::Release => {
            let r = obj(doc, &["released"]);
            doc.put(
                &r,
                f.comment.to_string(),
                json!({ "by": by, "at": at() }).to_string(),
            )
            .unwrap();
        }
    }
    doc.commit();
}

/// What the table and the access rules say a raw change of `part` by `role` in `state`
/// gets: `stored`, `refused <code>`, `dropped` (a reader's), `unavailable`.
fn expected(role: Role, kind: DocKind, part: Part, state: State, to: State) -> String {
    let access = match (role, kind) {
        (Role::Admin, _) | (Role::TrustLead, DocKind::Review) => Some("unavailable"),
        (Role::TrustLead, DocKind::Inspection) => Some("dropped"),
        (Role::LeadInspector | Role::Inspector | Role::Reviewer, DocKind::TrustResponse) => {
            Some("dropped")
        }
        _ => None,
    };
    if let Some(a) = access {
        return a.into();
    }
    let verdict = policy::permits(role, part, state).and_then(|()| {
        if part == Part::State {
            policy::permits_move(role, state, to)
        } else {
            Ok(())
        }
    });
    match verdict {
        // Every fixture is unsigned, and a reviewer signs after the lead inspector.
        Ok(()) if part == Part::Signoff && role == Role::Reviewer => "refused wrong_state".into(),
        Ok(()) => "stored".into(),
        Err(r) => format!("refused {}", r.code.as_str()),
    }
}

/// The tries for one cell: (state, the state a state change moves to).
fn tries(role: Role, part: Part) -> Vec<(State, State)> {
    match policy::rule(role, part) {
        Rule::In(states) => {
            let mut t = vec![(states[0], states[0])];
            if let Some(no) = ALL_STATES.iter().find(|s| !states.contains(s)) {
                t.push((*no, *no));
            }
            // And in a cancelled inspection, where nothing is open to anyone.
            t.push((State::Cancelled, State::Cancelled));
            t
        }
        Rule::Moves(moves) => {
            let (from, to) = moves[0];
            // A move of the other side's: an inspector closing, a reviewer starting.
            let wrong = if role == Role::Reviewer {
                (State::Draft, State::InProgress)
            } else {
                (State::Submitted, State::SharedWithTrust)
            };
            // And the pick of the value a cancelled inspection holds.
            vec![(from, to), wrong, (State::Cancelled, State::Cancelled)]
        }
        Rule::Never if part == Part::Signoff => vec![(State::Submitted, State::Submitted)],
        Rule::Never | Rule::Always => vec![(State::Draft, State::InProgress)],
    }
}

/// Sends `doc`'s new change to document `id` as `login`; what the server did with it.
async fn send(
    ctx: &Ctx,
    login: &Login,
    id: Uuid,
    doc: &mut AutoCommit,
) -> Result<(), (String, String)> {
    let mut client = SyncClient::connect(&ctx.s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let r = client.sync(id, doc).await;
    client.close().await;
    match r {
        Ok(()) => Ok(()),
        Err(ClientError::Server(m)) => {
            // `change ... was refused (CODE): ...`
            let code = m
                .split_once("refused (")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(c, _)| c.to_owned())
                .unwrap_or_else(|| "?".into());
            Err((code, m))
        }
        Err(e) => panic!("an unexpected sync failure: {e}"),
    }
}

/// The heads a fresh reader (the reviewer) gets, sorted.
async fn heads(ctx: &Ctx, id: Uuid) -> Vec<automerge::ChangeHash> {
    let mut c = SyncClient::connect(&ctx.s.ws_url(), Some(ctx.token("rita")))
        .await
        .unwrap();
    let mut d = c
        .fetch(id)
        .await
        .expect("the document loads for the reviewer");
    c.close().await;
    let mut h = d.get_heads();
    h.sort();
    h
}

async fn try_cell(
    ctx: &Ctx,
    role: Role,
    kind: DocKind,
    part: Part,
    state: State,
    to: State,
) -> String {
    let f = ctx.fixture(state).await;
    let doc_id = match kind {
        DocKind::Inspection => f.id,
        DocKind::TrustResponse => f.response_doc,
        DocKind::Review => f.review_doc,
    };
    let by = user(role);
    let login = &ctx.logins[by];
    let mut client = SyncClient::connect(&ctx.s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let fetched = client.fetch(doc_id).await;
    client.close().await;
    let base = match fetched {
        Ok(d) => d,
        Err(ClientError::Unavailable(_)) => return "unavailable".into(),
        Err(e) => panic!("{role:?} fetching: {e}"),
    };
    let before = heads(ctx, doc_id).await;
    let mut doc = base.with_actor(login.actor.clone());
    // A fresh actor per try would need binding; the role's one actor writes on every
    // fixture (each a document of its own, so its sequence numbers never collide).
    let base_heads = doc.get_heads();
    write(&mut doc, part, by, &f, to, role);
    assert_ne!(
        doc.get_heads(),
        base_heads,
        "{part:?}: the raw write made a change"
    );
    let hash = doc.get_heads()[0];
    match send(ctx, login, doc_id, &mut doc).await {
        Ok(()) => {
            let after = heads(ctx, doc_id).await;
            let mut c = SyncClient::connect(&ctx.s.ws_url(), Some(ctx.token("rita")))
                .await
                .unwrap();
            let d = c.fetch(doc_id).await.unwrap();
            c.close().await;
            if d.get_change_by_hash(&hash).is_some() {
                "stored".into()
            } else {
                assert_eq!(after, before, "a dropped change leaves nothing");
                "dropped".into()
            }
        }
        Err((code, message)) => {
            assert_eq!(
                heads(ctx, doc_id).await,
                before,
                "{role:?} {part:?}: nothing of a refused change is stored ({message})"
            );
            format!("refused {code}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_write_policy_holds_against_a_raw_client() {
    // The table in ACCESS.md is the code's.
    let doc =
        std::fs::read_to_string(wardcheck_tests::workspace_root().join("docs/ACCESS.md")).unwrap();
    let section = doc
        .split("## The write policy")
        .nth(1)
        .expect("ACCESS.md has a '## The write policy' section");
    assert!(
        section.contains(&policy::table_markdown()),
        "docs/ACCESS.md's write policy differs from core::policy's:\n{}",
        policy::table_markdown()
    );

    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("ian", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("root", "admin");
    let mut logins = HashMap::new();
    for u in ["ann", "ian", "rita", "lead1", "root"] {
        logins.insert(u, sign_in(&s, u).await);
    }
    let ctx = Ctx {
        s,
        c: Client::new(),
        logins,
    };

    let mut wrong = Vec::new();
    let mut tried = 0;
    let mut refused = 0;
    for (kind, part) in Part::ALL {
        for role in Role::USERS {
            for (state, to) in tries(role, part) {
                let want = expected(role, kind, part, state, to);
                let got = try_cell(&ctx, role, kind, part, state, to).await;
                tried += 1;
                refused += usize::from(got.starts_with("refused"));
                if got != want {
                    wrong.push(format!(
                        "{} {} as {} in {state:?} (to {to:?}): expected {want}, got {got}",
                        kind.as_str(),
                        part.label(),
                        role.label()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the server differs from the write policy:\n{}",
        wrong.join("\n")
    );
    assert!(
        tried > 80 && refused > 30,
        "{tried} tries, {refused} refused"
    );

    // Every refusal is audited with its code, actor and change.
    let audit = ctx.s.cli(&["audit", "tail", "-n", "2000"], "");
    let refusals = audit
        .lines()
        .filter(|l| l.contains("\tchange_refused\t") && l.contains(" actor "))
        .count();
    assert_eq!(refusals, refused, "each refusal is audited:\n{audit}");

    // After a restart, every document is whole for everyone who may read it.
    let mut ctx = ctx;
    ctx.s.restart();
    let ids: Vec<Uuid> = {
        let v: Value = ctx
            .c
            .get(ctx.s.url("/api/v1/inspections?limit=200"))
            .bearer_auth(ctx.token("rita"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    assert!(ids.len() >= tried.min(200));
    for id in ids {
        heads(&ctx, id).await;
        let res = ctx
            .c
            .get(ctx.s.url(&format!("/api/v1/inspections/{id}")))
            .bearer_auth(ctx.token("rita"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "inspection {id} reads after a restart"
        );
    }
}
