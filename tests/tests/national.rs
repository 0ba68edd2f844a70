//! The national picture and the trust page (issue 14, item 2) through the API, against
//! the real server on demo data (three endpoint and alert snapshots for twenty trusts;
//! SQLite, or PostgreSQL with `WARDCHECK_TEST_BACKEND=postgres`):
//!
//! - every figure of every trust equals a direct count in the databases: endpoints,
//!   unsupported, SMBv1 and onboarding counted from the device rows of `telemetry.db`
//!   (each OS judged by the server's lifecycle table), alerts from the alert rows, open
//!   and overdue actions from the record's `actions` table, the latest inspection from
//!   its `inspections` table, and its contradicted items equal its join's;
//! - the trust page holds the same row, and the summary the inspection page charts;
//! - a trust lead sees only their own trust: one row, and another trust's page is the
//!   same 404 as a trust that does not exist (audited); an admin gets 403; an inspector
//!   sees every trust's telemetry but only the inspections assigned to them;
//! - filters narrow by region and trust type; bad ones are a 400 naming the choices;
//! - a change to the latest inspection's document shows at once (the verdict counts kept
//!   in memory are keyed by the document's stored heads).

mod api_support;

use std::collections::BTreeMap;

use api_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_server::demo::{CONTRADICTION_INSPECTION, DEMO_PASSWORD};
use wardcheck_server::join::lifecycle::{self, Support};
use wardcheck_server::telemetry::sensor_of;
use wardcheck_tests::client::{SyncClient, login};
use wardcheck_tests::server::Server;

/// The demo server ([`Demo`]): demo data, a real server, a client.
type Setup = Demo;

async fn setup() -> Setup {
    Demo::start().await
}

impl Demo {
    async fn ok(&self, token: &str, path: &str) -> Value {
        json_ok(self.get(token, path).await, StatusCode::OK, path).await
    }

    fn telemetry(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.s.data().join("telemetry.db")).unwrap()
    }
}

/// Direct counts of one trust in one endpoint snapshot, from the device rows.
#[derive(Debug, Default, PartialEq)]
struct Devices {
    devices: u64,
    unsupported: u64,
    smb1_enabled: u64,
    onboarded: u64,
    onboardable: u64,
}

fn snapshots(db: &rusqlite::Connection, kind: &str) -> Vec<(i64, String)> {
    let mut stmt = db
        .prepare("SELECT id, as_of FROM telemetry_snapshots WHERE kind = ?1 ORDER BY as_of, id")
        .unwrap();
    stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn devices(db: &rusqlite::Connection, snapshot: (i64, &str), trust: &str) -> Devices {
    let day = chrono::NaiveDate::parse_from_str(snapshot.1, "%Y-%m-%d").unwrap();
    let mut stmt = db
        .prepare(
            "SELECT os_platform, os_build, os_edition, onboarding_status, health_status,
                    smb1_enabled
             FROM endpoints WHERE snapshot = ?1 AND trust = ?2",
        )
        .unwrap();
    let mut rows = stmt.query(rusqlite::params![snapshot.0, trust]).unwrap();
    let mut d = Devices::default();
    while let Some(r) = rows.next().unwrap() {
        let platform: String = r.get(0).unwrap();
        let build: Option<i64> = r.get(1).unwrap();
        let edition: Option<String> = r.get(2).unwrap();
        let sensor = sensor_of(
            &r.get::<_, String>(3).unwrap(),
            &r.get::<_, String>(4).unwrap(),
        );
        let smb1: Option<i64> = r.get(5).unwrap();
        d.devices += 1;
        if lifecycle::support(&platform, build, edition.as_deref(), day) == Support::Unsupported {
            d.unsupported += 1;
        }
        if sensor == "reporting" {
            d.onboarded += 1;
            if smb1 == Some(1) {
                d.smb1_enabled += 1;
            }
        }
        if matches!(sensor, "reporting" | "inactive" | "can-onboard") {
            d.onboardable += 1;
        }
    }
    d
}

/// (alerts, acknowledged within 48 hours, late or open past 48 hours by the end of the
/// snapshot's day), counted in Rust from the alert rows.
fn alerts(db: &rusqlite::Connection, snapshot: (i64, &str), trust: &str) -> (u64, u64, u64) {
    use chrono::{DateTime, NaiveDate, Utc};
    let day = NaiveDate::parse_from_str(snapshot.1, "%Y-%m-%d").unwrap();
    let end_of_day = day
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let mut stmt = db
        .prepare("SELECT issued, acknowledged FROM alerts WHERE snapshot = ?1 AND trust = ?2")
        .unwrap();
    let mut rows = stmt.query(rusqlite::params![snapshot.0, trust]).unwrap();
    let (mut all, mut on_time, mut overdue) = (0, 0, 0);
    let t = |s: String| s.parse::<DateTime<Utc>>().unwrap();
    while let Some(r) = rows.next().unwrap() {
        all += 1;
        let issued = t(r.get(0).unwrap());
        match r.get::<_, Option<String>>(1).unwrap().map(t) {
            Some(ack) if ack - issued <= chrono::Duration::hours(48) => on_time += 1,
            Some(_) => overdue += 1,
            None if end_of_day - issued > chrono::Duration::hours(48) => overdue += 1,
            None => {}
        }
    }
    (all, on_time, overdue)
}

fn count(s: &Server, sql: &str) -> u64 {
    s.sql_row(sql).unwrap()[0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// Raises an action on the demo's RJ1 inspection from its `n`th finding, due in 30 days;
/// moves its due date to `past` days ago behind the server's back when given (the record
/// as it would stand later).
async fn raise(t: &Setup, rita: &str, n: usize, past: Option<i64>) -> String {
    let id = CONTRADICTION_INSPECTION;
    let detail = t.ok(rita, &format!("/api/v1/inspections/{id}")).await;
    let finding = detail["inspection"]["findings"][n]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let due = (chrono::Utc::now() + chrono::Duration::days(30))
        .date_naive()
        .to_string();
    let res =
        t.c.post(t.s.url(&format!("/api/v1/inspections/{id}/actions")))
            .bearer_auth(rita)
            .json(
                &json!({ "source": { "kind": "finding", "finding": finding },
            "what": format!("Fix finding {n}"), "due": due }),
            )
            .send()
            .await
            .unwrap();
    let a = json_ok(res, StatusCode::CREATED, "raised").await;
    let action = a["id"].as_str().unwrap().to_owned();
    if let Some(days) = past {
        wardcheck_tests::server::make_overdue(t.s.data(), action.parse().unwrap(), days);
    }
    action
}

fn rows_by_code(v: &Value) -> BTreeMap<String, Value> {
    v["trusts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ods_code"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_equals_a_direct_count_in_the_databases() {
    let t = setup().await;
    let rita = t.token("rita").await;
    raise(&t, &rita, 0, None).await;
    raise(&t, &rita, 1, Some(3)).await;

    let national = t.ok(&rita, "/api/v1/national").await;
    let rows = rows_by_code(&national);
    let db = t.telemetry();
    let trusts = db
        .query_row("SELECT count(*) FROM trusts", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(rows.len() as i64, trusts, "every trust of the feed, once");
    let endpoint_snaps = snapshots(&db, "endpoints");
    let alert_snaps = snapshots(&db, "alerts");
    assert_eq!(
        endpoint_snaps.len(),
        3,
        "the demo's three endpoint snapshots"
    );
    let days: Vec<&str> = endpoint_snaps.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(national["endpoint_days"], json!(days));
    let today = chrono::Utc::now().date_naive().to_string();

    let mut overdue_seen = 0;
    for (code, row) in &rows {
        // Telemetry, every snapshot of the trend, the newest being the headline.
        let trend = row["trend"]["endpoints"].as_array().unwrap();
        assert_eq!(trend.len(), 3, "{code}: a point per snapshot");
        for (point, snap) in trend.iter().zip(&endpoint_snaps) {
            let d = devices(&db, (snap.0, &snap.1), code);
            assert_eq!(point["as_of"], snap.1.as_str(), "{code}");
            let got = Devices {
                devices: point["devices"].as_u64().unwrap(),
                unsupported: point["unsupported"].as_u64().unwrap(),
                smb1_enabled: point["smb1_enabled"].as_u64().unwrap(),
                onboarded: point["onboarded"].as_u64().unwrap(),
                onboardable: point["onboardable"].as_u64().unwrap(),
            };
            assert_eq!(got, d, "{code} on {}", snap.1);
            assert!(d.devices > 0, "{code}: the demo has devices");
        }
        assert_eq!(&row["endpoints"], trend.last().unwrap(), "{code}: headline");
        let a = row["trend"]["alerts"].as_array().unwrap();
        assert_eq!(a.len(), alert_snaps.len(), "{code}");
        for (point, snap) in a.iter().zip(&alert_snaps) {
            let (all, on_time, overdue) = alerts(&db, (snap.0, &snap.1), code);
            assert_eq!(
                (
                    point["alerts"].as_u64().unwrap(),
                    point["on_time"].as_u64().unwrap(),
                    point["overdue"].as_u64().unwrap()
                ),
                (all, on_time, overdue),
                "{code} alerts on {}",
                snap.1
            );
        }

        // The record: actions, and the latest inspection.
        let open = count(
            &t.s,
            &format!("SELECT count(*) FROM actions WHERE trust = '{code}' AND status <> 'closed'"),
        );
        let overdue = count(
            &t.s,
            &format!(
                "SELECT count(*) FROM actions WHERE trust = '{code}' AND status <> 'closed' AND due < '{today}'"
            ),
        );
        assert_eq!(
            row["actions"],
            json!({ "open": open, "overdue": overdue }),
            "{code}"
        );
        overdue_seen += overdue;
        let latest = t.s.sql_row(&format!(
            "SELECT id, state FROM inspections WHERE trust = '{code}'
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ));
        match latest {
            None => assert!(row["latest_inspection"].is_null(), "{code}: none"),
            Some(r) => {
                assert_eq!(
                    row["latest_inspection"]["id"],
                    r[0].as_deref().unwrap(),
                    "{code}"
                );
                assert_eq!(
                    row["latest_inspection"]["state"],
                    r[1].as_deref().unwrap(),
                    "{code}"
                );
            }
        }
        let reported = t.s.sql_row(&format!(
            "SELECT id FROM inspections WHERE trust = '{code}'
             AND state IN ('submitted', 'shared_with_trust', 'closed')
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ));
        match reported {
            None => assert!(
                row["reported_inspection"].is_null(),
                "{code}: none reported"
            ),
            Some(r) => {
                let ri = &row["reported_inspection"];
                let id = r[0].as_deref().unwrap();
                assert_eq!(ri["id"], id, "{code}: the newest submitted inspection");
                let join = t.ok(&rita, &format!("/api/v1/inspections/{id}/join")).await;
                assert_eq!(ri["contradicted"], join["totals"]["contradicted"], "{code}");
                assert_eq!(ri["verdicts"], join["totals"], "{code}");
            }
        }
    }
    assert_eq!(overdue_seen, 1, "the one action made overdue");
    assert_eq!(rows["RJ1"]["actions"], json!({ "open": 2, "overdue": 1 }));
    assert!(
        rows["RJ1"]["reported_inspection"]["contradicted"]
            .as_u64()
            .unwrap()
            > 0,
        "the demo's seeded contradiction"
    );

    // The trust page: the same row, and the inspection page's telemetry summary.
    let page = t.ok(&rita, "/api/v1/trusts/RJ1").await;
    assert_eq!(page["trust"], rows["RJ1"]);
    let summary = t
        .ok(
            &rita,
            &format!("/api/v1/inspections/{CONTRADICTION_INSPECTION}/telemetry-summary"),
        )
        .await;
    assert_eq!(page["summary"], summary);
    assert_eq!(page["actions"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["inspections"][0]["id"], rows["RJ1"]["latest_inspection"]["id"],
        "newest first"
    );
    // A trust with no inspection has a page too.
    let none = rows
        .iter()
        .find(|(_, r)| r["latest_inspection"].is_null())
        .unwrap()
        .0;
    let page = t.ok(&rita, &format!("/api/v1/trusts/{none}")).await;
    assert_eq!(page["trust"], rows[none]);
    assert_eq!(page["inspections"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_lead_sees_only_their_own_trust() {
    let t = setup().await;
    let (rita, lead, ann, admin) = (
        t.token("rita").await,
        t.token("lead-rj1").await,
        t.token("ann").await,
        t.token("admin").await,
    );
    raise(&t, &rita, 0, Some(1)).await;
    let all = rows_by_code(&t.ok(&rita, "/api/v1/national").await);

    let mine = t.ok(&lead, "/api/v1/national").await;
    let rows = rows_by_code(&mine);
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["RJ1"], "only RJ1");
    assert_eq!(
        rows["RJ1"], all["RJ1"],
        "the same figures as the reviewer's"
    );
    assert_eq!(
        mine["regions"],
        json!(["London"]),
        "no other trust's region either"
    );
    let other = t.ok(&lead, "/api/v1/national?region=North%20West").await;
    assert_eq!(other["trusts"], json!([]));
    assert_eq!(t.ok(&lead, "/api/v1/trusts/RJ1").await["trust"], all["RJ1"]);

    // Another trust's page is the 404 of one that does not exist, and of a missing
    // inspection; each refusal audited.
    let (rth_code, rth_msg) = error(
        t.get(&lead, "/api/v1/trusts/RTH").await,
        StatusCode::NOT_FOUND,
        "RTH",
    )
    .await;
    let (zzz_code, zzz_msg) = error(
        t.get(&rita, "/api/v1/trusts/RZZ").await,
        StatusCode::NOT_FOUND,
        "RZZ",
    )
    .await;
    let (bad_code, bad_msg) = error(
        t.get(&rita, "/api/v1/trusts/not-a-code").await,
        StatusCode::NOT_FOUND,
        "bad",
    )
    .await;
    let missing = format!("/api/v1/inspections/{}", uuid::Uuid::new_v4());
    let (insp_code, insp_msg) = error(
        t.get(&lead, &missing).await,
        StatusCode::NOT_FOUND,
        "missing",
    )
    .await;
    assert_eq!((&rth_code, &rth_msg), (&zzz_code, &zzz_msg));
    assert_eq!((&rth_code, &rth_msg), (&bad_code, &bad_msg));
    assert_eq!((&rth_code, &rth_msg), (&insp_code, &insp_msg));
    let denied = count(
        &t.s,
        "SELECT count(*) FROM audit WHERE action = 'denied' AND target = 'trust:RTH'",
    );
    assert_eq!(denied, 1, "the refusal is audited");

    // An admin holds no document rights: 403, audited.
    let (code, _) = error(
        t.get(&admin, "/api/v1/national").await,
        StatusCode::FORBIDDEN,
        "admin",
    )
    .await;
    assert_eq!(code, "forbidden");
    error(
        t.get(&admin, "/api/v1/trusts/RJ1").await,
        StatusCode::FORBIDDEN,
        "admin page",
    )
    .await;

    // An inspector: every trust's telemetry, only their own inspections.
    let theirs = rows_by_code(&t.ok(&ann, "/api/v1/national").await);
    assert_eq!(theirs.len(), all.len(), "every trust's telemetry");
    let mut shown = 0;
    for (code, row) in &theirs {
        assert_eq!(row["endpoints"], all[code]["endpoints"], "{code}");
        for id in [
            &row["latest_inspection"]["id"],
            &row["reported_inspection"]["id"],
        ]
        .into_iter()
        .filter_map(|v| v.as_str())
        {
            shown += 1;
            t.ok(&ann, &format!("/api/v1/inspections/{id}")).await;
        }
        // An action of an inspection the inspector is not on is not counted.
        assert!(
            row["actions"]["open"].as_u64().unwrap()
                <= all[code]["actions"]["open"].as_u64().unwrap()
        );
    }
    assert!(shown > 0, "ann is assigned demo inspections");
    // A later visit to RJ1 that is not ann's: the reviewer's newest, not ann's. Being a
    // draft, it does not hide what the shared inspection found.
    let other = t.s.create_inspection("RJ1", &[]);
    let all = rows_by_code(&t.ok(&rita, "/api/v1/national").await);
    assert_eq!(all["RJ1"]["latest_inspection"]["id"], other.to_string());
    assert_eq!(all["RJ1"]["latest_inspection"]["state"], "draft");
    assert_eq!(
        all["RJ1"]["reported_inspection"]["id"],
        CONTRADICTION_INSPECTION.to_string()
    );
    let theirs_lead = rows_by_code(&t.ok(&lead, "/api/v1/national").await);
    assert_eq!(
        theirs_lead["RJ1"]["latest_inspection"]["id"],
        CONTRADICTION_INSPECTION.to_string(),
        "the trust lead does not see the unshared draft"
    );
    let theirs = rows_by_code(&t.ok(&ann, "/api/v1/national").await);
    assert_eq!(
        theirs["RJ1"]["latest_inspection"]["id"],
        CONTRADICTION_INSPECTION.to_string(),
        "ann's newest RJ1 inspection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_and_bad_ones_are_refused() {
    let t = setup().await;
    let rita = t.token("rita").await;
    let db = t.telemetry();
    let london = db
        .query_row(
            "SELECT count(*) FROM trusts WHERE region = 'London'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let v = t.ok(&rita, "/api/v1/national?region=london").await;
    let rows = v["trusts"].as_array().unwrap();
    assert_eq!(rows.len() as i64, london, "any letter case");
    assert!(rows.iter().all(|r| r["region"] == "London"));
    assert!(
        v["regions"].as_array().unwrap().len() > 1,
        "the choices stay whole"
    );

    let mtc = db
        .query_row(
            "SELECT count(*) FROM trusts WHERE major_trauma_centre = 1",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let v = t
        .ok(&rita, "/api/v1/national?trust_type=major-trauma-centre")
        .await;
    assert_eq!(v["trusts"].as_array().unwrap().len() as i64, mtc);
    let acute = db
        .query_row(
            "SELECT count(*) FROM trusts WHERE trust_type = 'acute'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let v = t.ok(&rita, "/api/v1/national?trust_type=Acute").await;
    assert_eq!(v["trusts"].as_array().unwrap().len() as i64, acute);

    let (code, msg) = error(
        t.get(&rita, "/api/v1/national?trust_type=hospice").await,
        StatusCode::BAD_REQUEST,
        "type",
    )
    .await;
    assert_eq!(code, "bad_filter");
    assert!(
        msg.contains("acute") && msg.contains("major-trauma-centre"),
        "{msg}"
    );
    let long = "x".repeat(101);
    let (code, _) = error(
        t.get(&rita, &format!("/api/v1/national?region={long}"))
            .await,
        StatusCode::BAD_REQUEST,
        "long",
    )
    .await;
    assert_eq!(code, "bad_filter");
    let (code, _) = error(
        t.get(&rita, "/api/v1/national?sort=name").await,
        StatusCode::BAD_REQUEST,
        "unknown",
    )
    .await;
    assert_eq!(code, "bad_query");
}

/// The verdict counts are kept in memory by the document's stored heads: a submitted
/// inspection that a reviewer returns, that its inspector changes and submits again,
/// shows its new verdicts on the next read (and none while it is back in progress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_the_reported_inspection_shows_at_once() {
    let t = setup().await;
    let (rita, ann) = (t.token("rita").await, t.token("ann").await);
    let id = t.s.create_inspection("RYJ", &["ann"]);
    let state = |token: &str, to: &str| {
        let req =
            t.c.post(t.s.url(&format!("/api/v1/inspections/{id}/state")))
                .bearer_auth(token.to_owned())
                .json(&json!({ "state": to }));
        let what = format!("to {to}");
        async move { json_ok(req.send().await.unwrap(), StatusCode::OK, &what).await }
    };
    // Ann answers one more item of the whole inspection, "met", through sync.
    let answer_one = || async {
        let join = t.ok(&rita, &format!("/api/v1/inspections/{id}/join")).await;
        let item = join["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["verdict"] == "unanswered" && i["scope"] == "inspection")
            .expect("an unanswered item of the whole inspection")["item"]
            .as_str()
            .unwrap()
            .to_owned();
        let who = login(&t.s.url(""), "ann", DEMO_PASSWORD, "national-test")
            .await
            .unwrap();
        let mut client = SyncClient::connect(&t.s.ws_url(), Some(&who.token))
            .await
            .unwrap();
        let doc = client.fetch(id).await.unwrap();
        let checklist = wardcheck_tests::off_runtime(|| {
            let storage = wardcheck_tests::server::open_storage(t.s.data());
            let rec = storage.inspection(id).unwrap().expect("the record");
            wardcheck_server::inspections::pinned_checklist(&*storage, &rec).unwrap()
        });
        let mut insp = Inspection::from_doc(doc.with_actor(who.actor.clone()), checklist).unwrap();
        insp.set_answer(&item, Answer::Met, &Stamp::new("ann", chrono::Utc::now()))
            .unwrap();
        client.sync(id, &mut insp).await.unwrap();
        client.close().await;
    };
    let reported = || async { rows_by_code(&t.ok(&rita, "/api/v1/national").await)["RYJ"].clone() };

    state(&ann, "in_progress").await;
    answer_one().await;
    assert!(
        reported().await["reported_inspection"].is_null(),
        "in progress: none"
    );
    state(&ann, "submitted").await;
    let first = reported().await["reported_inspection"].clone();
    assert_eq!(first["id"], id.to_string());
    let unanswered = first["verdicts"]["unanswered"].as_u64().unwrap();

    // Returned, changed, submitted again: the new counts, not the kept ones.
    state(&rita, "in_progress").await;
    let back = reported().await;
    assert!(
        back["reported_inspection"].is_null(),
        "back in progress: nothing reported"
    );
    assert_eq!(back["latest_inspection"]["state"], "in_progress");
    answer_one().await;
    state(&ann, "submitted").await;
    let now = reported().await["reported_inspection"]["verdicts"].clone();
    assert_eq!(now["unanswered"].as_u64().unwrap(), unanswered - 1, "{now}");
    let joined = t.ok(&rita, &format!("/api/v1/inspections/{id}/join")).await;
    assert_eq!(now, joined["totals"]);
}
