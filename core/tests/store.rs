//! The encrypted local store, on real SQLCipher files in a temporary folder.

mod common;

use std::path::Path;

use common::*;
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection};
use wardcheck_core::store::*;

fn key(b: u8) -> StoreKey {
    StoreKey::from_bytes([b; 32])
}

fn new_store(dir: &Path) -> Store {
    Store::open(&dir.join("local.db"), &key(7)).unwrap()
}

fn created(store: &mut Store, id: u128) -> Inspection {
    let mut insp = Inspection::create(
        new_inspection(id),
        checklist(),
        store.actor(),
        &stamp("ann", 0),
    )
    .unwrap();
    store.insert_inspection(&mut insp, t(0)).unwrap();
    insp
}

#[test]
fn saved_changes_load_back_with_their_heads() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::from_u128(1);
    let (heads, view) = {
        let mut store = new_store(dir.path());
        let mut insp = created(&mut store, 1);
        for (i, item) in ["c1", "c2", "c3"].iter().enumerate() {
            insp.set_answer(item, Answer::Met, &stamp("ann", i as i64))
                .unwrap();
            store.save_inspection(&mut insp, t(i as i64)).unwrap();
        }
        insp.edit_note("c1", "seen the register", &stamp("ann", 9))
            .unwrap();
        store.save_inspection(&mut insp, t(9)).unwrap();
        assert_eq!(store.change_rows(id).unwrap(), 4, "one row per save");
        (insp.heads(), insp.view().unwrap())
    };
    let store = new_store(dir.path());
    let mut back = store.load_inspection(id, checklist()).unwrap();
    assert_eq!(back.heads(), heads);
    assert_eq!(back.view().unwrap(), view);
    assert_eq!(store.inspection_ids().unwrap(), [id]);
    store.integrity_check().unwrap();
}

#[test]
fn the_device_actor_is_kept_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path()).actor();
    let b = new_store(dir.path()).actor();
    assert_eq!(a, b, "one actor per device, reused");
}

#[test]
fn compaction_replaces_changes_with_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut insp = created(&mut store, 1);
    let id = Uuid::from_u128(1);
    for i in 0..(COMPACT_AFTER + 5) {
        let value = (i % 100) as f64;
        insp.set_answer("n1", Answer::Number { value }, &stamp("ann", i))
            .unwrap();
        store.save_inspection(&mut insp, t(i)).unwrap();
    }
    assert!(
        store.change_rows(id).unwrap() < COMPACT_AFTER,
        "compaction ran: {} rows",
        store.change_rows(id).unwrap()
    );
    let mut back = store.load_inspection(id, checklist()).unwrap();
    assert_eq!(back.heads(), insp.heads());
    assert_eq!(back.view().unwrap(), insp.view().unwrap());
}

#[test]
fn a_wrong_key_is_a_clear_error_and_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        let mut store = new_store(dir.path());
        let mut insp = created(&mut store, 1);
        insp.set_answer("c1", Answer::Met, &stamp("ann", 1))
            .unwrap();
        store.save_inspection(&mut insp, t(1)).unwrap();
    }
    let listing = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let err = Store::open(&path, &key(8)).unwrap_err();
    assert!(
        matches!(err, StoreError::WrongKey(_)),
        "expected WrongKey, got {err}"
    );
    assert!(
        err.to_string().contains("cannot unlock local data"),
        "message: {err}"
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "a wrong key must not change any file"
    );
    // The right key still opens it, with the data intact.
    let store = Store::open(&path, &key(7)).unwrap();
    let v = store
        .load_inspection(Uuid::from_u128(1), checklist())
        .unwrap()
        .view()
        .unwrap();
    assert_eq!(
        v.responses["c1"].answer.as_ref().unwrap().current().value,
        Answer::Met
    );
}

#[test]
fn a_note_marker_appears_in_no_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "WARDCHECK-MARKER-7f3a9c2e-the-server-room-door-code-is-4471";
    let mut store = new_store(dir.path());
    let mut insp = created(&mut store, 1);
    insp.edit_note("c1", marker, &stamp("ann", 1)).unwrap();
    store.save_inspection(&mut insp, t(1)).unwrap();
    // Check while the store is open (WAL and SHM present) and again after closing.
    let scan = |when: &str| {
        let mut files = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            files += 1;
            for needle in [marker.as_bytes(), b"WARDCHECK-MARKER", b"SQLite format 3"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{when}: {:?} found in {}",
                    String::from_utf8_lossy(needle),
                    e.path().display()
                );
            }
        }
        files
    };
    let open_files = scan("while open");
    assert!(
        open_files >= 2,
        "the WAL file is there to scan ({open_files} files)"
    );
    drop(store);
    scan("after close");
}

#[test]
fn a_damaged_document_is_detected_by_its_heads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        let mut store = new_store(dir.path());
        let mut insp = created(&mut store, 1);
        for i in 0..3 {
            insp.set_answer("c1", Answer::NotMet, &stamp("ann", i))
                .unwrap();
            insp.edit_note("c2", &format!("note {i}"), &stamp("ann", i))
                .unwrap();
            store.save_inspection(&mut insp, t(i)).unwrap();
        }
    }
    // Lose one change row behind the store's back.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode([7u8; 32])))
        .unwrap();
    conn.execute("DELETE FROM changes WHERE seq = 3", [])
        .unwrap();
    drop(conn);
    let store = Store::open(&path, &key(7)).unwrap();
    let err = store
        .load_inspection(Uuid::from_u128(1), checklist())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::HeadsMismatch { .. }),
        "expected HeadsMismatch, got {err}"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    drop(new_store(dir.path()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA user_version = 99;",
        hex::encode([7u8; 32])
    ))
    .unwrap();
    drop(conn);
    let err = Store::open(&path, &key(7)).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    std::fs::write(&path, b"<html>not a database</html>".repeat(200)).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(Store::open(&path, &key(7)).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn blobs_are_hash_checked_and_queued_for_upload() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    created(&mut store, 1);
    let bytes = b"pretend jpeg bytes".to_vec();
    let sha = wardcheck_core::photo::sha256_hex(&bytes);
    let blob = Blob {
        sha256: sha.clone(),
        mime: "image/jpeg".into(),
        width: 2,
        height: 1,
        bytes: bytes.clone(),
        thumbnail: vec![1, 2, 3],
    };
    let bad = Blob {
        sha256: "00".repeat(32),
        ..blob.clone()
    };
    let err = store.put_blob(&bad, Uuid::from_u128(1), t(0)).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");
    assert!(!store.has_blob(&bad.sha256).unwrap());

    store.put_blob(&blob, Uuid::from_u128(1), t(1)).unwrap();
    store.put_blob(&blob, Uuid::from_u128(1), t(2)).unwrap(); // idempotent
    assert_eq!(store.blob(&sha).unwrap(), blob);
    let pending = store.pending_uploads().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].size, pending[0].uploaded_bytes),
        (bytes.len() as u64, 0)
    );
    store.record_upload_progress(&sha, 5).unwrap();
    assert_eq!(store.pending_uploads().unwrap()[0].uploaded_bytes, 5);
    store.mark_uploaded(&sha).unwrap();
    assert!(store.pending_uploads().unwrap().is_empty());
    assert!(
        store.has_blob(&sha).unwrap(),
        "uploaded photos stay on the device"
    );
    assert!(matches!(
        store.blob(&"11".repeat(32)),
        Err(StoreError::UnknownBlob(_))
    ));
}

#[test]
fn a_downloaded_photo_is_stored_hash_checked_and_never_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let bytes = b"a photo another device took".to_vec();
    let blob = Blob {
        sha256: wardcheck_core::photo::sha256_hex(&bytes),
        mime: "image/jpeg".into(),
        width: 4,
        height: 3,
        bytes,
        thumbnail: vec![9, 9],
    };
    let forged = Blob {
        sha256: "ab".repeat(32),
        ..blob.clone()
    };
    let err = store.put_downloaded_blob(&forged, t(0)).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");
    assert!(!store.has_blob(&forged.sha256).unwrap());

    assert!(store.put_downloaded_blob(&blob, t(1)).unwrap(), "new here");
    assert!(
        !store.put_downloaded_blob(&blob, t(2)).unwrap(),
        "already here"
    );
    assert_eq!(store.blob(&blob.sha256).unwrap(), blob);
    assert!(
        store.pending_uploads().unwrap().is_empty(),
        "the server has it: nothing to upload"
    );
}

#[test]
fn sync_states_are_kept_per_document_and_peer() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    created(&mut store, 1);
    let doc = Uuid::from_u128(1);
    assert_eq!(store.sync_state(doc, "server").unwrap(), None);
    store.put_sync_state(doc, "server", b"s1").unwrap();
    store.put_sync_state(doc, "server", b"s2").unwrap();
    store.put_sync_state(doc, "laptop", b"l1").unwrap();
    assert_eq!(
        store.sync_state(doc, "server").unwrap().as_deref(),
        Some(&b"s2"[..])
    );
    store.reset_sync_state(doc, "server").unwrap();
    assert_eq!(store.sync_state(doc, "server").unwrap(), None);
    assert_eq!(
        store.sync_state(doc, "laptop").unwrap().as_deref(),
        Some(&b"l1"[..])
    );
}
