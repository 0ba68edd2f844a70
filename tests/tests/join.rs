//! The join (issue 5 §2) against the real server binary: telemetry imported through the
//! `telemetry import` command, an inspection answered by the inspector through sync, and
//! `GET /api/v1/inspections/{id}/join` read as the reviewer and as trust leads.

mod api_support;

use std::path::Path;

use api_support::*;
use chrono::{Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, Observation, Stamp};
use wardcheck_tests::client::{SyncClient, sign_in};
use wardcheck_tests::server::Server;

/// The snapshot day: two days ago, so that it is never in the future.
fn as_of() -> NaiveDate {
    Utc::now().date_naive() - Duration::days(2)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Small feeds: RJ1 with ten endpoints (three on Windows 7), two firewalls (supported),
/// two alerts (one acknowledged after 72 hours); RX2 is a known trust with no rows.
fn import_telemetry(s: &Server) {
    let dir = tempfile::tempdir().unwrap();
    let d = as_of();
    let day = |n: i64| (d - Duration::days(n)).to_string();
    let trusts = write(
        dir.path(),
        "trusts.csv",
        "ods_code,name,trust_type,major_trauma_centre,region\n\
         RJ1,Guy's and St Thomas' NHS Foundation Trust,acute,no,London\n\
         RX2,Sussex Partnership NHS Foundation Trust,mental-health,no,South East\n",
    );
    let mut endpoints = String::from(
        "device_id,device_name,os_platform,os_version,os_build,first_seen,last_seen,\
         onboarding_status,health_status,exposure_level,missing_security_updates,\
         smb1_enabled,bitlocker_on,firewall_domain,firewall_private,firewall_public,\
         credential_guard_running,secure_boot_on,is_medical_device,trust,site,os_edition\n",
    );
    // (name, platform, version, build, days since seen, site)
    let rows = [
        (
            "RJ1-IMG-0001.gstt.nhs.uk",
            "Windows7",
            "6.1",
            "7601",
            1,
            "RJ121",
        ),
        (
            "RJ1-IMG-0002.gstt.nhs.uk",
            "Windows7",
            "6.1",
            "7601",
            1,
            "RJ121",
        ),
        (
            "RJ1-IMG-0003.gstt.nhs.uk",
            "Windows7",
            "6.1",
            "7601",
            0,
            "RJ122",
        ),
        (
            "rj1-ws-0001.gstt.nhs.uk",
            "Windows10",
            "21H2",
            "19044",
            0,
            "RJ121",
        ),
        (
            "rj1-ws-0002.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            1,
            "RJ121",
        ),
        (
            "rj1-ws-0003.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            60,
            "RJ121",
        ),
        (
            "rj1-ws-0004.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            0,
            "RJ122",
        ),
        (
            "rj1-ws-0005.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            0,
            "RJ122",
        ),
        (
            "rj1-ws-0006.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            0,
            "RJ122",
        ),
        (
            "rj1-lt-0001.gstt.nhs.uk",
            "Windows11",
            "24H2",
            "26100",
            0,
            "RJ122",
        ),
    ];
    for (i, (name, platform, version, build, seen, site)) in rows.iter().enumerate() {
        // The optional edition column: given for the IoT LTSC device only (build 19044 is
        // supported only in its long-term editions: issue 12).
        let edition = if *build == "19044" {
            "IoTEnterpriseS"
        } else {
            ""
        };
        endpoints.push_str(&format!(
            "dev-{i},{name},{platform},{version},{build},{},{}T09:00:00Z,onboarded,Active,Low,0,\
             false,true,true,true,true,true,true,false,RJ1,{site},{edition}\n",
            day(900),
            day(*seen),
        ));
    }
    let endpoints = write(dir.path(), "endpoints.csv", &endpoints);
    let network = write(
        dir.path(),
        "network.csv",
        &format!(
            "device_id,trust,site,vendor,model,firmware,vendor_supported,last_rule_review,admin_interface_exposed\n\
             rj1-fw-01,RJ1,RJ121,Palo Alto Networks,PA-3220,11.2.4,true,{},false\n\
             rj1-fw-02,RJ1,RJ122,Palo Alto Networks,PA-3220,11.2.4,true,{},false\n\
             rj1-fw-03,RJ1,RJ122,Fortinet,FG-100F,7.4.8,true,,false\n",
            day(30),
            day(400)
        ),
    );
    let alerts = write(
        dir.path(),
        "alerts.csv",
        &format!(
            "alert_id,trust,issued,acknowledged,closed\n\
             CC-4401,RJ1,{}T10:00:00Z,{}T12:00:00Z,\n\
             CC-4408,RJ1,{}T10:00:00Z,{}T10:00:00Z,\n",
            day(40),
            day(40),
            day(20),
            day(17)
        ),
    );
    let d = d.to_string();
    for (kind, file) in [
        ("trusts", &trusts),
        ("endpoints", &endpoints),
        ("network", &network),
        ("alerts", &alerts),
    ] {
        s.cli(
            &["telemetry", "import", "--kind", kind, file, "--as-of", &d],
            "",
        );
    }
}

async fn create(c: &reqwest::Client, s: &Server, rita: &str, body: Value) -> Uuid {
    let res = c
        .post(s.url("/api/v1/inspections"))
        .bearer_auth(rita)
        .json(&body)
        .send()
        .await
        .unwrap();
    let rec = json_ok(res, StatusCode::CREATED, "create an inspection").await;
    rec["id"].as_str().unwrap().parse().unwrap()
}

async fn get_join(c: &reqwest::Client, s: &Server, token: &str, id: Uuid) -> reqwest::Response {
    c.get(s.url(&format!("/api/v1/inspections/{id}/join")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn item<'a>(join: &'a Value, id: &str) -> &'a Value {
    join["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == id)
        .unwrap_or_else(|| panic!("item {id} is in the join: {join}"))
}

fn device<'a>(join: &'a Value, hostname: &str) -> &'a Value {
    join["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["hostname"] == hostname)
        .unwrap_or_else(|| panic!("device {hostname} is in the join: {join}"))
}

#[tokio::test]
async fn answers_and_sampled_devices_are_set_beside_the_trusts_telemetry() {
    let s = Server::start();
    s.add_user("ann", "inspector")
        .add_user("rita", "reviewer")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("lead2", "trust-lead:RX2");
    import_telemetry(&s);
    let c = client();
    let rita = token(&c, &s, "rita").await;
    let rj1 = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RJ1", "sites": ["RJ121"], "checklist": "cqc-onsite-cyber", "assign": ["ann"] }),
    )
    .await;
    let rx2 = create(
        &c,
        &s,
        &rita,
        json!({ "trust": "RX2", "checklist": "cqc-onsite-cyber", "assign": ["ann"] }),
    )
    .await;

    // The inspector answers and samples devices in the field app's way: core operations
    // on her replica, synced to the server.
    let ann = sign_in(&s, "ann").await;
    let mut client = SyncClient::connect(&s.ws_url(), Some(&ann.token))
        .await
        .expect("ann connects");
    let checklist = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let at = |n: i64| Stamp::new("ann", Utc::now() + Duration::seconds(n));
    let doc = client.fetch(rj1).await.expect("ann reads her inspection");
    let mut insp = Inspection::from_doc(doc.with_actor(ann.actor.clone()), checklist.clone())
        .expect("a valid inspection");
    insp.set_answer("ndg8-no-unsupported", Answer::Met, &at(1))
        .unwrap();
    insp.set_answer("ndg6-cyber-alerts-48h", Answer::NotMet, &at(2))
        .unwrap();
    insp.set_answer("fw-firmware-supported", Answer::Met, &at(3))
        .unwrap();
    insp.set_answer("ndg9-encryption", Answer::NotMet, &at(4))
        .unwrap();
    let devices = [
        (
            "RJ1-WS-0001",
            "Windows 10 IoT Enterprise LTSC 2021, build 19044.5011",
        ),
        (
            "rj1-ws-0002.GSTT.nhs.uk",
            "Windows 10 Enterprise 21H2, build 19044.3086",
        ),
        ("rj1-ws-0003", "build 19045"),
        ("RJ1-LAB-PC07", "Windows 10 Pro, build 19045"),
    ];
    for (i, (host, build)) in devices.iter().enumerate() {
        let id = Uuid::new_v4();
        insp.add_device(id, host, build, &at(10 + i as i64))
            .unwrap();
        insp.record_observation(
            id,
            "w10-os-supported",
            Observation {
                answer: Answer::Met,
                note: String::new(),
            },
            &at(20 + i as i64),
        )
        .unwrap();
    }
    client
        .sync(rj1, &mut insp)
        .await
        .expect("ann's answers sync");
    let doc = client
        .fetch(rx2)
        .await
        .expect("ann reads her RX2 inspection");
    let mut other = Inspection::from_doc(doc.with_actor(ann.actor.clone()), checklist)
        .expect("a valid inspection");
    other
        .set_answer("ndg8-no-unsupported", Answer::Met, &at(30))
        .unwrap();
    client.sync(rx2, &mut other).await.expect("RX2 syncs");
    client.close().await;

    let res = get_join(&c, &s, &rita, rj1).await;
    let join = json_ok(res, StatusCode::OK, "the reviewer reads the join").await;
    assert_eq!(join["trust"], "RJ1");
    assert_eq!(join["snapshots"]["endpoints"]["as_of"], as_of().to_string());

    let unsupported = item(&join, "ndg8-no-unsupported");
    assert_eq!(
        unsupported["verdict"], "contradicted",
        "'met' beside three Windows 7 devices: {unsupported}"
    );
    assert_eq!(unsupported["answer"], "met");
    assert_eq!(unsupported["check"], "endpoints.unsupported_os");
    assert_eq!(
        (unsupported["count"].as_u64(), unsupported["total"].as_u64()),
        (Some(3), Some(10))
    );
    assert_eq!(
        unsupported["summary"],
        "3 of 10 endpoints run an unsupported OS (75% of those with data, tolerance none): \
         3 Windows7 build 7601; 5 are Windows 10 22H2, supported only with ESU evidence \
         telemetry cannot show; 1 gives no data (coverage 40%, the check needs 90%)",
        "Windows 11 24H2 with no edition: Pro ended in Oct 2026, Enterprise did not"
    );
    assert_eq!(unsupported["esu_only"], 5);
    assert!(
        unsupported["reason"]
            .as_str()
            .unwrap()
            .starts_with("answered met, but 3 of 4 endpoints with data run an unsupported OS"),
        "{unsupported}"
    );
    assert_eq!(
        unsupported["sites"],
        json!([{ "site": "RJ121", "count": 2, "total": 5, "unknown": 0, "esu_only": 2 }]),
        "the named site's own figures"
    );
    let closed = item(&join, "ndg6-cyber-alerts-closed");
    assert_eq!(
        (closed["count"].as_u64(), closed["total"].as_u64()),
        (Some(2), Some(2)),
        "neither alert was closed within 14 days: {closed}"
    );

    let alerts = item(&join, "ndg6-cyber-alerts-48h");
    assert_eq!(alerts["verdict"], "corroborated", "{alerts}");
    assert_eq!(
        (alerts["count"].as_u64(), alerts["total"].as_u64()),
        (Some(1), Some(2))
    );
    let firmware = item(&join, "fw-firmware-supported");
    assert_eq!(firmware["verdict"], "corroborated", "{firmware}");
    assert_eq!(
        (firmware["count"].as_u64(), firmware["total"].as_u64()),
        (Some(0), Some(3))
    );
    let review = item(&join, "fw-rule-review");
    assert_eq!(review["verdict"], "unanswered", "figures without an answer");
    assert_eq!(
        (review["count"].as_u64(), review["unknown"].as_u64()),
        (Some(2), Some(0)),
        "one review over a year old, and one firewall with none recorded: overdue, not unknown"
    );
    let encryption = item(&join, "ndg9-encryption");
    assert_eq!(
        encryption["verdict"], "telemetry_silent",
        "'not met' where telemetry sees BitLocker on everywhere: a problem it does not \
         see, not a contradiction: {encryption}"
    );
    assert_eq!(join["totals"]["telemetry_silent"].as_u64(), Some(1));
    // A device-scope item is judged by each sampled device's own record: the IoT LTSC
    // 2021 device answered 'met' agrees with its own; the two Windows 10 22H2 records
    // cannot say (supported only with ESU, which telemetry does not show), and the
    // unmanaged one is not judged. The trust's Windows 7 devices are context only.
    let device_item = item(&join, "w10-os-supported");
    assert_eq!(device_item["verdict"], "corroborated", "{device_item}");
    assert_eq!(device_item["devices_answered"], 4);
    let judged = device_item["judged_devices"].as_array().unwrap();
    let verdicts: Vec<(&str, &Value)> = judged
        .iter()
        .map(|j| (j["hostname"].as_str().unwrap(), &j["verdict"]))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("RJ1-WS-0001", &json!("corroborated")),
            ("rj1-ws-0002.GSTT.nhs.uk", &json!("no_telemetry")),
            ("rj1-ws-0003", &json!("no_telemetry")),
            ("RJ1-LAB-PC07", &Value::Null),
        ],
        "{device_item}"
    );
    assert!(
        judged[3]["reason"]
            .as_str()
            .unwrap()
            .contains("unmanaged, not judged by the estate")
    );
    assert!(
        judged[1]["reason"]
            .as_str()
            .unwrap()
            .contains("supported only with Extended Security Updates"),
        "{}",
        judged[1]
    );
    let summary = device_item["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("1 of 4 sampled devices' own records agree")
            && summary.contains("context, not the verdict")
            && summary.contains("3 of 10 endpoints run an unsupported OS"),
        "{summary}"
    );

    let status = |host: &str| device(&join, host)["status"].as_str().unwrap().to_owned();
    assert_eq!(status("RJ1-WS-0001"), "matched", "short name, other case");
    assert_eq!(status("rj1-ws-0002.GSTT.nhs.uk"), "build_differs");
    assert_eq!(
        device(&join, "rj1-ws-0002.GSTT.nhs.uk")["observed_build"],
        19044
    );
    assert_eq!(
        device(&join, "RJ1-WS-0001")["telemetry"]["os_edition"],
        "iot-ltsc",
        "the edition column, read and kept as its class"
    );
    assert_eq!(status("rj1-ws-0003"), "stale", "last seen 60 days before");
    assert_eq!(status("RJ1-LAB-PC07"), "unmanaged");

    let res = get_join(&c, &s, &rita, rx2).await;
    let other = json_ok(res, StatusCode::OK, "the RX2 join").await;
    let none = item(&other, "ndg8-no-unsupported");
    assert_eq!(
        none["verdict"], "no_telemetry",
        "RX2 has no endpoint rows: {none}"
    );
    assert!(none["count"].is_null());
    assert_eq!(
        other["totals"]["no_telemetry"].as_u64(),
        Some(other["items"].as_array().unwrap().len() as u64),
        "every check of RX2 is without telemetry"
    );

    // Trust leads: their own trust once shared; another trust's, never.
    let lead1 = token(&c, &s, "lead1").await;
    let lead2 = token(&c, &s, "lead2").await;
    let res = get_join(&c, &s, &lead1, rj1).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "not shared yet");
    s.cli(&["inspection", "share", &rj1.to_string()], "");
    let res = get_join(&c, &s, &lead1, rj1).await;
    json_ok(res, StatusCode::OK, "RJ1's lead reads the shared join").await;
    let denied = get_join(&c, &s, &lead2, rj1).await;
    assert_eq!(
        denied.status(),
        StatusCode::NOT_FOUND,
        "another trust's lead"
    );
    let missing = get_join(&c, &s, &lead2, Uuid::new_v4()).await;
    assert_eq!(
        denied.bytes().await.unwrap(),
        missing.bytes().await.unwrap(),
        "a denied join answers exactly like a missing one"
    );
}

/// Issue 12: an inspection holds only the sections for its trust's type, taken from the
/// trusts feed; a raw client that adds a section the server left out (an ambulance item
/// in an acute trust's inspection) is refused, audited, and nothing is stored.
#[tokio::test]
async fn an_inspection_holds_the_sections_for_its_trust_and_a_client_cannot_add_others() {
    let s = Server::start();
    s.add_user("ann", "inspector").add_user("rita", "reviewer");
    let dir = tempfile::tempdir().unwrap();
    let trusts = write(
        dir.path(),
        "trusts.csv",
        "ods_code,name,trust_type,major_trauma_centre,region\n\
         RJ1,Guy's and St Thomas' NHS Foundation Trust,acute,no,London\n\
         RRU,London Ambulance Service NHS Trust,ambulance,no,London\n\
         RTH,Oxford University Hospitals NHS Foundation Trust,acute,yes,South East\n",
    );
    s.cli(
        &[
            "telemetry",
            "import",
            "--kind",
            "trusts",
            &trusts,
            "--as-of",
            &as_of().to_string(),
        ],
        "",
    );
    let c = client();
    let rita = token(&c, &s, "rita").await;
    let mut ids = Vec::new();
    for trust in ["RJ1", "RRU", "RTH", "RX9"] {
        ids.push(
            create(
                &c,
                &s,
                &rita,
                json!({ "trust": trust, "checklist": "cqc-onsite-cyber", "assign": ["ann"] }),
            )
            .await,
        );
    }
    let mut held = Vec::new();
    for id in &ids {
        let res = c
            .get(s.url(&format!("/api/v1/inspections/{id}")))
            .bearer_auth(&rita)
            .send()
            .await
            .unwrap();
        let d = json_ok(res, StatusCode::OK, "the inspection").await;
        let r = &d["inspection"]["responses"];
        held.push((
            r.get("amb-cad-fallback").is_some(),
            r.get("mtc-imaging-continuity").is_some(),
            d["inspection"]["meta"]["org"].clone(),
        ));
    }
    assert_eq!(
        held,
        [
            (
                false,
                false,
                json!({ "type": "acute", "major_trauma_centre": false })
            ),
            (
                true,
                false,
                json!({ "type": "ambulance", "major_trauma_centre": false })
            ),
            (
                false,
                true,
                json!({ "type": "acute", "major_trauma_centre": true })
            ),
            (true, true, Value::Null),
        ],
        "RJ1 acute, RRU ambulance, RTH a major trauma centre, RX9 not in the feed (every section)"
    );

    // The attack: ann adds the ambulance section's item to the acute trust's inspection.
    let ann = sign_in(&s, "ann").await;
    let mut sync = SyncClient::connect(&s.ws_url(), Some(&ann.token))
        .await
        .expect("ann connects");
    let mut base = sync
        .fetch(ids[0])
        .await
        .expect("ann reads RJ1's inspection");
    let before = base.get_heads();
    let mut doc = base.with_actor(ann.actor.clone());
    {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let responses = match doc.get(automerge::ROOT, "responses").unwrap() {
            Some((_, o)) => o,
            None => panic!("responses"),
        };
        let r = doc
            .put_object(&responses, "amb-cad-fallback", automerge::ObjType::Map)
            .unwrap();
        doc.put(
            &r,
            "answer",
            json!({ "value": { "kind": "met" }, "by": "ann", "at": Utc::now() }).to_string(),
        )
        .unwrap();
    }
    let refused = sync.sync(ids[0], &mut doc).await;
    sync.close().await;
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.contains("refused ("),
        "the server refuses the change: {message}"
    );
    let mut reader = SyncClient::connect(&s.ws_url(), Some(&token(&c, &s, "rita").await))
        .await
        .unwrap();
    let mut now = reader.fetch(ids[0]).await.unwrap();
    reader.close().await;
    let mut a = now.get_heads();
    let mut b = before.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "nothing of the refused change is stored");
    let audit = s.cli(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tchange_refused\t") && l.contains(&ids[0].to_string())),
        "the refusal is audited:\n{audit}"
    );
}
