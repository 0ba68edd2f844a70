//! The real server on PostgreSQL (`--database`, here through `WARDCHECK_DATABASE`), in a
//! database of its own in the throwaway cluster: the admin command line, sign-in, sync
//! and the audit log work on it as on SQLite; a SIGKILL loses nothing acknowledged; and
//! the record is not in the data folder.

use std::sync::Arc;

use chrono::Utc;
use wardcheck_core::checklist::{AnswerKind, Scope};
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_core::sync::{WireMessage, uuid_to_doc_id};
use wardcheck_server::inspections::encode_heads;
use wardcheck_tests::client::{Incoming, Login, SyncClient, login, sign_in};
use wardcheck_tests::server::{PASSWORD, Server, stored_doc};
use wardcheck_tests::{crash_checklist, off_runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_its_record_in_postgres_and_survives_a_sigkill() {
    let mut server = Server::start_postgres();
    assert!(server.database().is_some());
    server
        .add_user("ann", "inspector")
        .add_user("rev", "reviewer");
    let id = server.create_inspection("RJ1", &["ann"]);
    let login = sign_in(&server, "ann").await;
    let checklist = Arc::new(crash_checklist());
    let items: Vec<String> = checklist
        .items()
        .filter(|(s, i)| s.scope == Scope::Inspection && i.answer == AnswerKind::Compliance)
        .map(|(_, i)| i.id.clone())
        .take(5)
        .collect();

    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let doc = c.fetch(id).await.unwrap();
    let mut ann =
        Inspection::from_doc(doc.with_actor(login.actor.clone()), checklist.clone()).unwrap();
    for item in &items {
        ann.set_answer(item, Answer::Met, &Stamp::new("ann", Utc::now()))
            .unwrap();
        c.sync(id, &mut ann).await.expect("the edit syncs");
    }
    c.close().await;
    let acknowledged = encode_heads(&ann.heads());

    // Killed without warning, then started again on the same database.
    server.stop();
    // The blocking PostgreSQL client runs off the async workers, as the server's calls do.
    let stored = off_runtime(|| server.storage().load_doc(id))
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.heads, acknowledged,
        "every acknowledged change is stored"
    );
    server.restart();
    let mut c = SyncClient::connect(&server.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let fetched = c.fetch(id).await.unwrap();
    let again = Inspection::from_doc(fetched, checklist.clone()).unwrap();
    let view = again.view().unwrap();
    for item in &items {
        assert_eq!(
            view.responses[item.as_str()]
                .answer
                .as_ref()
                .unwrap()
                .current()
                .value,
            Answer::Met
        );
    }

    // The record is in PostgreSQL: no SQLite database was made in the data folder.
    assert!(!server.data().join("wardcheck.db").exists());
    // The audit log is one unbroken chain, read by the command line on the same
    // database.
    let verified = server.cli(&["audit", "verify"], "");
    assert!(verified.contains("the audit log holds"), "{verified}");
    let tail = server.cli(&["audit", "tail", "--lines", "200"], "");
    assert!(tail.contains("login"), "sign-ins are audited:\n{tail}");
    assert!(tail.contains("doc_write"), "writes are audited:\n{tail}");

    // A command given the data folder without the database is refused, not run on an
    // empty SQLite file (where `audit verify` would find nothing wrong).
    let out = std::process::Command::new(wardcheck_tests::workspace_binary("wardcheck-server"))
        .arg("--data")
        .arg(server.data())
        .env_remove("WARDCHECK_DATABASE")
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(err.contains("is in PostgreSQL"), "{err}");
    assert!(!server.data().join("wardcheck.db").exists());
}

#[test]
fn a_bad_database_is_a_clear_error() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A database that does not exist, in the test cluster.
    std::fs::write(
        data.join(wardcheck_tests::server::DATABASE_FILE),
        wardcheck_tests::pg::url("no_such_database"),
    )
    .unwrap();
    let (ok, _, err) = wardcheck_tests::server::cli(&data, &["user", "list"], "");
    assert!(!ok);
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(
        err.contains("no_such_database"),
        "says which database: {err}"
    );
}

async fn load(client: &mut SyncClient, id: uuid::Uuid, login: &Login) -> Inspection {
    let doc = client.fetch(id).await.expect("fetching the inspection");
    Inspection::from_doc(
        doc.with_actor(login.actor.clone()),
        Arc::new(crash_checklist()),
    )
    .expect("the fetched document is the inspection")
}

fn sorted(mut h: Vec<automerge::ChangeHash>) -> Vec<automerge::ChangeHash> {
    h.sort();
    h
}

/// Two server processes on one database. A change made through one reaches a peer
/// connected to the other without the peer asking; a token issued by one works on the
/// other; one killed with SIGKILL in the middle of an exchange loses nothing it
/// acknowledged, and its peer carries on through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_push_each_others_changes_and_survive_a_sigkill() {
    let mut one = Server::start_postgres();
    let two = Server::start_on(one.data(), "127.0.0.1:0");
    one.add_user("ann", "inspector").add_user("rev", "reviewer");
    let id = one.create_inspection("RJ1", &["ann"]);
    let ann_login = sign_in(&one, "ann").await;
    let rev_login = sign_in(&one, "rev").await;
    let items: Vec<String> = crash_checklist()
        .items()
        .filter(|(s, i)| s.scope == Scope::Inspection && i.answer == AnswerKind::Compliance)
        .map(|(_, i)| i.id.clone())
        .take(12)
        .collect();

    // The reviewer follows the inspection on the second process (with a token the first
    // issued); the inspector edits it through the first.
    let mut rev_c = SyncClient::connect(&two.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    let mut rev = load(&mut rev_c, id, &rev_login).await;
    let mut ann_c = SyncClient::connect(&one.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    let mut ann = load(&mut ann_c, id, &ann_login).await;
    ann.set_answer(&items[0], Answer::NotMet, &Stamp::new("ann", Utc::now()))
        .unwrap();
    ann_c.sync(id, &mut ann).await.unwrap();
    match rev_c.recv().await.expect("a pushed message") {
        Incoming::Message(WireMessage::Sync(d)) => {
            assert_eq!(d.document_id, uuid_to_doc_id(id));
            rev_c.apply(&mut rev, &d).unwrap();
        }
        other => panic!("expected the change pushed by the second process, got {other:?}"),
    }
    rev_c.sync(id, &mut rev).await.unwrap();
    assert_eq!(
        sorted(rev.heads()),
        sorted(ann.heads()),
        "the reviewer has it"
    );

    // The first process is killed while the inspector edits: what it acknowledged is
    // stored; what it did not, she sends again through the second.
    let pid = one.pid().expect("the first process runs");
    let mut acknowledged = ann.heads();
    for (n, item) in items[1..].iter().enumerate() {
        ann.set_answer(item, Answer::Met, &Stamp::new("ann", Utc::now()))
            .unwrap();
        if n == 5 {
            // Killed while this exchange is on its way.
            let (sync, ()) = tokio::join!(ann_c.sync(id, &mut ann), async {
                std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .expect("kill runs");
            });
            if sync.is_ok() {
                acknowledged = ann.heads();
            }
            ann_c = SyncClient::connect(&two.ws_url(), Some(&ann_login.token))
                .await
                .expect("the second process takes the inspector");
            continue;
        }
        ann_c.sync(id, &mut ann).await.expect("the edit syncs");
        acknowledged = ann.heads();
    }
    one.stop();
    // Loaded and held to its stored heads: those are the heads compared below.
    let mut stored_doc = stored_doc(two.data(), id);
    for h in &acknowledged {
        assert!(
            stored_doc.get_change_by_hash(h).is_some(),
            "an acknowledged change is stored"
        );
    }
    assert_eq!(
        encode_heads(&stored_doc.get_heads()),
        encode_heads(&ann.heads()),
        "everything the inspector made is stored, through one process or the other"
    );
    // The reviewer, on the second process, catches up with all of it (on a new
    // connection: the old one holds the pushes of each edit, unread).
    rev_c.close().await;
    let mut rev_c = SyncClient::connect(&two.ws_url(), Some(&rev_login.token))
        .await
        .unwrap();
    rev_c.sync(id, &mut rev).await.unwrap();
    assert_eq!(sorted(rev.heads()), sorted(ann.heads()));
}

/// The limit on failed sign-ins holds across processes: guesses spread over two
/// processes on one database count together, and a right password on either forgets
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_across_processes() {
    let one = Server::start_postgres();
    let two = Server::start_on(one.data(), "127.0.0.1:0");
    one.add_user("ann", "inspector")
        .add_user("bob", "inspector");
    let (a, b) = (one.url(""), two.url(""));
    // Guesses at ann from one address, alternating processes: the free ones, then each
    // after its pause, until the pair is locked; the pauses and the lock hold on both.
    let free = wardcheck_server::limits::LOGIN_FREE_FAILURES;
    let per_pair = wardcheck_server::limits::LOGIN_FAILURES_PER_PAIR;
    for i in 0..per_pair {
        let base = if i % 2 == 0 { &a } else { &b };
        if i >= free {
            // Too soon, on the other process: held back by the pause the first set.
            let other = if i % 2 == 0 { &b } else { &a };
            let err = login(other, "ann", "too soon", "attacker")
                .await
                .expect_err("within the pause, refused");
            assert!(err.to_string().contains("429"), "paused on {other}: {err}");
            let pause = wardcheck_server::logins::pause_after(i);
            tokio::time::sleep(pause).await;
        }
        let err = login(base, "ann", "a wrong guess", "attacker")
            .await
            .expect_err("a wrong password is refused");
        assert!(err.to_string().contains("401"), "guess {i}: {err}");
    }
    // Locked, on either process, even with the right password.
    for base in [&a, &b] {
        let err = login(base, "ann", PASSWORD, "tablet")
            .await
            .expect_err("past the limit, refused");
        assert!(err.to_string().contains("429"), "limited on {base}: {err}");
    }
    // Another user is not held back by ann's failures, and a sign-in that proves right
    // forgets that user's own from that address.
    for _ in 0..free - 1 {
        login(&b, "bob", "a wrong guess", "attacker")
            .await
            .expect_err("a wrong password is refused");
    }
    login(&a, "bob", PASSWORD, "tablet")
        .await
        .expect("bob signs in on the other process");
    for _ in 0..free - 1 {
        login(&b, "bob", "a wrong guess", "attacker")
            .await
            .expect_err("a wrong password is refused");
    }
    login(&a, "bob", PASSWORD, "laptop")
        .await
        .expect("his failures were forgotten when he signed in");
}

/// Two inspectors write one inspection at the same time, each through a different
/// process: every change either acknowledged is stored once, the stored heads are those
/// of everything stored (the document loads and checks), and both end with the same
/// document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_processes_lose_nothing() {
    let one = Server::start_postgres();
    let two = Server::start_on(one.data(), "127.0.0.1:0");
    one.add_user("ann", "inspector")
        .add_user("ian", "inspector");
    let id = one.create_inspection("RJ1", &["ann", "ian"]);
    let items: Vec<String> = crash_checklist()
        .items()
        .filter(|(s, i)| s.scope == Scope::Inspection && i.answer == AnswerKind::Compliance)
        .map(|(_, i)| i.id.clone())
        .take(20)
        .collect();
    let writer = |server: String, login: Login, name: &'static str, items: Vec<String>| async move {
        let mut c = SyncClient::connect(&server, Some(&login.token))
            .await
            .unwrap();
        let mut doc = load(&mut c, id, &login).await;
        let mut acknowledged = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let answer = if n % 2 == 0 {
                Answer::Met
            } else {
                Answer::NotMet
            };
            doc.set_answer(item, answer, &Stamp::new(name, Utc::now()))
                .unwrap();
            c.sync(id, &mut doc)
                .await
                .expect("each edit is acknowledged");
            acknowledged.extend(doc.heads());
        }
        c.close().await;
        (doc, acknowledged)
    };
    let (ann_login, ian_login) = (sign_in(&one, "ann").await, sign_in(&two, "ian").await);
    let ((mut ann, ann_acked), (mut ian, ian_acked)) = tokio::join!(
        writer(one.ws_url(), ann_login.clone(), "ann", items.clone()),
        writer(
            two.ws_url(),
            ian_login.clone(),
            "ian",
            items.iter().rev().cloned().collect()
        ),
    );
    let mut stored_doc = stored_doc(two.data(), id);
    for h in ann_acked.iter().chain(&ian_acked) {
        assert!(
            stored_doc.get_change_by_hash(h).is_some(),
            "every acknowledged change is stored"
        );
    }
    // Both catch up, one through each process, and agree.
    let mut c = SyncClient::connect(&one.ws_url(), Some(&ann_login.token))
        .await
        .unwrap();
    c.sync(id, &mut ann).await.unwrap();
    let mut c = SyncClient::connect(&two.ws_url(), Some(&ian_login.token))
        .await
        .unwrap();
    c.sync(id, &mut ian).await.unwrap();
    assert_eq!(sorted(ann.heads()), sorted(ian.heads()));
    assert_eq!(sorted(ann.heads()), sorted(stored_doc.get_heads()));
}

/// A data folder of its own on the database of `server`.
fn folder_on(server: &Server, dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(wardcheck_tests::server::DATABASE_FILE),
        server.database().unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// The telemetry snapshots the process on `data` holds: (kind, day, SHA-256).
fn held(data: &std::path::Path) -> Vec<(String, String, String)> {
    use wardcheck_server::telemetry::{TelemetryDb, TelemetryStore};
    TelemetryDb::open(data)
        .unwrap()
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| (s.kind.name().to_owned(), s.as_of.to_string(), s.sha256))
        .collect()
}

/// Waits (up to 30 s) until the process on `data` holds `want`.
async fn until_held(data: &std::path::Path, want: &[(String, String, String)]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = held(data);
        if want.iter().all(|w| now.contains(w)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never held {want:?}; it holds {now:?}",
            data.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One telemetry import reaches every process, each with `telemetry.db` in a data folder
/// of its own (as on machines of their own): a running process takes it when it hears of
/// it, one started later when it starts; a replacement for the same day replaces it
/// everywhere; and bytes changed in the database behind the servers' backs are not
/// imported anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_telemetry_import_reaches_every_process() {
    let one = Server::start_postgres();
    let scratch = tempfile::tempdir().unwrap();
    let two = Server::start_on(&folder_on(&one, &scratch.path().join("two")), "127.0.0.1:0");
    let day = Utc::now().date_naive().to_string();
    let files = tempfile::tempdir().unwrap();
    let import = |server: &Server, kind: &str, name: &str, body: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, body).unwrap();
        server.cli(
            &[
                "telemetry",
                "import",
                "--kind",
                kind,
                path.to_str().unwrap(),
                "--as-of",
                &day,
            ],
            "",
        );
        (kind.to_owned(), day.clone(), sha256_hex(body.as_bytes()))
    };
    let trusts = "ods_code,name,trust_type,major_trauma_centre,region\n\
                  RJ1,Guy's and St Thomas' NHS Foundation Trust,acute,no,London\n";
    let endpoints = "device_id,device_name,os_platform,os_version,os_build,first_seen,last_seen,\
         onboarding_status,health_status,exposure_level,missing_security_updates,\
         smb1_enabled,bitlocker_on,firewall_domain,firewall_private,firewall_public,\
         credential_guard_running,secure_boot_on,is_medical_device,trust,site,os_edition\n\
         d1,RJ1-WS-0001,Windows10,10.0,19045,2026-01-01T00:00:00Z,2026-12-01T00:00:00Z,\
         Onboarded,Active,Low,0,false,true,true,true,true,true,true,false,RJ1,RJ121,Enterprise\n";

    // Imported through the first process's data folder: the second, running, takes both.
    let t = import(&one, "trusts", "trusts.csv", trusts);
    let e = import(&one, "endpoints", "endpoints.csv", endpoints);
    until_held(two.data(), &[t.clone(), e.clone()]).await;

    // A third process, started later, takes them as it starts.
    let three = Server::start_on(
        &folder_on(&one, &scratch.path().join("three")),
        "127.0.0.1:0",
    );
    until_held(three.data(), &[t.clone(), e.clone()]).await;

    // A second file for the same day, imported through the second: it replaces the
    // first everywhere.
    let trusts2 = format!(
        "{trusts}RX2,Sussex Partnership NHS Foundation Trust,mental-health,no,South East\n"
    );
    let t2 = import(&two, "trusts", "trusts2.csv", &trusts2);
    until_held(one.data(), std::slice::from_ref(&t2)).await;
    until_held(three.data(), std::slice::from_ref(&t2)).await;
    assert!(
        !held(three.data()).contains(&t),
        "the day holds one trusts file"
    );

    // The day's secure configuration assessment, imported through the first: merged
    // into the same machine export everywhere, the same snapshot made.
    let assessment = "DeviceId,DeviceName,OSPlatform,Timestamp,ConfigurationId,\
         ConfigurationCategory,ConfigurationSubcategory,ConfigurationImpact,IsCompliant,\
         IsApplicable,Context,IsExpectedUserImpact\n\
         d1,RJ1-WS-0001,Windows10,2026-12-01T06:00:00Z,scid-2090,Security controls,,9,\
         false,true,[],false\n";
    let c = import(&one, "secure-config", "config.csv", assessment);
    let merged = (
        "endpoints".to_owned(),
        day.clone(),
        sha256_hex(format!("{}+{}", e.2, c.2).as_bytes()),
    );
    assert!(held(one.data()).contains(&merged), "{:?}", held(one.data()));
    until_held(two.data(), &[c.clone(), merged.clone()]).await;
    until_held(three.data(), &[c.clone(), merged.clone()]).await;
    // A new machine export of the day, through the third: the assessment merged into
    // the one it replaces goes with it everywhere (to be imported again), and is no
    // longer kept; no process merges it into the new export.
    let endpoints2 = endpoints.replace("RJ1-WS-0001", "RJ1-WS-0001-renamed");
    let e2 = import(&three, "endpoints", "endpoints2.csv", &endpoints2);
    until_held(one.data(), std::slice::from_ref(&e2)).await;
    until_held(two.data(), std::slice::from_ref(&e2)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for data in [one.data(), two.data(), three.data()] {
        let now = held(data);
        assert!(
            !now.iter().any(|(kind, _, _)| kind == "secure-config") && !now.contains(&merged),
            "{}: {now:?}",
            data.display()
        );
    }
    let kept = one
        .sql_row("SELECT count(*) FROM telemetry_feeds WHERE kind = 'secure-config'")
        .unwrap();
    assert_eq!(kept[0].as_deref(), Some("0"));

    // Bytes changed in the database: a fourth process, started on it, does not import
    // them (the network feed is kept, then its bytes altered behind the servers' backs).
    let network = format!(
        "{}\nrj1-fw-01,RJ1,RJ121,Fortinet,FG-100F,7.4.8,true,,false\n",
        wardcheck_server::telemetry::NetworkDevice::COLUMNS.join(",")
    );
    let n = import(&one, "network", "network.csv", &network);
    let alerts = "alert_id,trust,issued,acknowledged,closed\n\
                  CC-4401,RJ1,2026-11-01T10:00:00Z,2026-11-01T12:00:00Z,\n";
    let a = import(&one, "alerts", "alerts.csv", alerts);
    until_held(two.data(), &[n.clone(), a.clone()]).await;
    // The same length, one byte changed: only the hash tells.
    let altered = one.sql(
        "UPDATE telemetry_feed_chunks SET data = overlay(data placing '\\x46'::bytea from 1 for 1) \
         WHERE feed = (SELECT id FROM telemetry_feeds WHERE kind = 'network')",
    );
    assert_eq!(altered, 1);
    let four = Server::start_on(
        &folder_on(&one, &scratch.path().join("four")),
        "127.0.0.1:0",
    );
    // What comes after the altered feed is taken all the same.
    until_held(four.data(), &[t2.clone(), e2.clone(), a.clone()]).await;
    assert!(
        !held(four.data())
            .iter()
            .any(|(kind, _, _)| kind == "network"),
        "altered bytes are never imported"
    );
    let audited = one
        .sql_row(
            "SELECT count(*) FROM audit WHERE action = 'telemetry_feed_refused' \
             AND outcome = 'hash_mismatch' AND target LIKE 'feed:% network %'",
        )
        .unwrap();
    assert_ne!(audited[0].as_deref(), Some("0"), "the refusal is audited");
}
