//! The real server on PostgreSQL (`--database`, here through `WARDCHECK_DATABASE`), in a
//! database of its own in the throwaway cluster: the admin command line, sign-in, sync
//! and the audit log work on it as on SQLite; a SIGKILL loses nothing acknowledged; and
//! the record is not in the data folder.

use std::sync::Arc;

use chrono::Utc;
use wardcheck_core::checklist::{AnswerKind, Scope};
use wardcheck_core::inspection::{Answer, Inspection, Stamp};
use wardcheck_server::inspections::encode_heads;
use wardcheck_tests::client::{SyncClient, sign_in};
use wardcheck_tests::server::Server;
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
