//! `wardcheck-server backup` and `restore` (issue 15, item 5), against the real server
//! on SQLite while a client writes to it:
//!
//! - a backup taken while a device syncs a change after change holds every change
//!   acknowledged before it began; restored into a new data folder, the server starts
//!   on it, serves the inspection, and the audit log's chain holds;
//! - `SHA256SUMS` checks with the backup's files; a backup whose file was changed is
//!   refused, and so is a restore over a folder that holds a record;
//! - a backup never overwrites another.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wardcheck_core::inspection::{Inspection, Stamp};
use wardcheck_tests::client::{SyncClient, sign_in};
use wardcheck_tests::server::{Server, server_command, use_sqlite};

/// `wardcheck-server --data DATA ARGS`: (success, stdout, stderr).
fn run(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = server_command(data).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    let s = Server::start_sqlite();
    s.add_user("ann", "inspector");
    let id = s.create_inspection("RJ1", &["ann"]);
    let tablet = sign_in(&s, "ann").await;
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = c
        .post(s.url(&format!("/api/v1/inspections/{id}/state")))
        .bearer_auth(&tablet.token)
        .json(&serde_json::json!({ "state": "in_progress" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    // A device writes note after note, each synced (acknowledged) before the next.
    let checklist = Arc::new(wardcheck_tests::crash_checklist());
    let item = wardcheck_tests::crash_items(&checklist)[0].clone();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let writer = {
        let (ws, token, actor) = (s.ws_url(), tablet.token.clone(), tablet.actor.clone());
        let (checklist, item, acknowledged, stop) = (
            checklist.clone(),
            item.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        // On a thread of its own: the sync client's futures are not Send.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut sync = SyncClient::connect(&ws, Some(&token)).await.unwrap();
                let doc = sync.fetch(id).await.unwrap();
                let mut mine = Inspection::from_doc(doc.with_actor(actor), checklist).unwrap();
                for n in 1.. {
                    mine.edit_note(
                        &item,
                        &format!("edit {n}"),
                        &Stamp::new("ann", chrono::Utc::now()),
                    )
                    .unwrap();
                    sync.sync(id, &mut mine).await.unwrap();
                    acknowledged.store(n, Ordering::SeqCst);
                    if tokio::time::timeout(std::time::Duration::from_millis(5), stop.notified())
                        .await
                        .is_ok()
                    {
                        return n;
                    }
                }
                unreachable!()
            })
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let scratch = tempfile::tempdir().unwrap();
    let dest = scratch.path().join("backup");
    let before = acknowledged.load(Ordering::SeqCst);
    let data = s.data().to_owned();
    let dest2 = dest.clone();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(&data, &["backup", dest2.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(ok, "the backup: {err}");
    stop.notify_one();
    let written = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert!(
        written > before,
        "the device kept writing during the backup"
    );
    assert!(out.contains("wardcheck.db"), "{out}");

    // sha256sum checks the backup.
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dest)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Restored into a new folder, the server holds at least every acknowledged change.
    let restored = scratch.path().join("restored");
    // A data folder's SQLite record, whatever backend the suite runs the rest on.
    use_sqlite(&restored);
    let (ok, out, err) = run(&restored, &["restore", dest.to_str().unwrap()]);
    assert!(ok, "the restore: {err}");
    assert!(out.contains("audit log"), "{out}");
    let r = Server::start_on(&restored, "127.0.0.1:0");
    let again = sign_in(&r, "ann").await;
    let mut sync = SyncClient::connect(&r.ws_url(), Some(&again.token))
        .await
        .unwrap();
    let doc = sync.fetch(id).await.unwrap();
    let view = Inspection::from_doc(doc, checklist)
        .unwrap()
        .view()
        .unwrap();
    let note = &view.responses[&item].note;
    let n: u64 = note.strip_prefix("edit ").unwrap().parse().unwrap();
    assert!(
        n >= before && n <= written,
        "the restored note is edit {n}: at least {before} (acknowledged before the backup), \
         at most {written}"
    );
    let (ok, _, err) = run(&restored, &["audit", "verify"]);
    assert!(ok, "{err}");

    // A restore never goes over a record; a backup never over another backup.
    let (ok, _, err) = run(&restored, &["restore", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("already holds a record"), "{err}");
    let (ok, _, err) = run(s.data(), &["backup", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");

    // A backup changed after it was taken is refused, and nothing is restored.
    let mut bytes = std::fs::read(dest.join("wardcheck.db")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(dest.join("wardcheck.db"), bytes).unwrap();
    let elsewhere = scratch.path().join("elsewhere");
    use_sqlite(&elsewhere);
    let (ok, _, err) = run(&elsewhere, &["restore", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("does not match its SHA-256"), "{err}");
    assert!(!elsewhere.join("wardcheck.db").exists(), "nothing restored");
}
