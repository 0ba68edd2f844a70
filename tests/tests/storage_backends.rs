//! One suite for both storage backends: every check runs against the data folder's
//! SQLite file and against a fresh PostgreSQL database of its own (in the throwaway
//! cluster `scripts/test` starts; `tests/src/pg.rs`), through the `Storage` trait only,
//! so the two must answer alike. Where a check goes behind the trait's back (damage to
//! the audit log), it does so with each backend's own SQL.
//!
//! The concurrent checks are what several connections (and, on PostgreSQL, several
//! server processes) do at once: appends to one document, audit rows from many threads,
//! and races for one actor binding.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;
use wardcheck_core::inspection::{State, TeamRole};
use wardcheck_server::storage::{
    AuditEvent, DocKind, Feed, InspectionQuery, InspectionRecord, PgStorage, PhotoClaim,
    PublishedChecklist, Rebuilt, Role, SqliteStorage, Storage, StorageError, StoredDoc,
};

/// A backend under test, with what the checks need to reach behind it.
struct Backend {
    storage: Arc<dyn Storage>,
    _data: tempfile::TempDir,
    /// How to run SQL on the backend's database directly.
    raw: Raw,
}

enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Backend {
    fn sqlite() -> Backend {
        let data = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::open(data.path()).unwrap());
        Backend {
            storage,
            raw: Raw::Sqlite(data.path().join("wardcheck.db")),
            _data: data,
        }
    }

    fn postgres() -> Backend {
        let data = tempfile::tempdir().unwrap();
        let url = wardcheck_tests::pg::fresh_database();
        let storage = Arc::new(PgStorage::open(&url).unwrap());
        Backend {
            storage,
            raw: Raw::Postgres(url),
            _data: data,
        }
    }

    /// Runs one SQL statement on the database behind the storage's back.
    fn execute(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Raw::Postgres(url) => {
                wardcheck_tests::pg::execute(url, sql).unwrap();
            }
        }
    }
}

/// Runs each check against both backends, as tests of their own.
macro_rules! both {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $check() {
                super::$check(&super::Backend::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $check() {
                super::$check(&super::Backend::postgres());
            })*
        }
    };
}

both!(
    users,
    devices_tokens_and_wipes,
    last_seen_never_moves_back,
    actors_are_bound_once,
    actor_races_have_one_winner,
    inspections_and_their_teams,
    listing_filters_and_pages,
    documents_keep_every_change,
    concurrent_appends_keep_every_change_once,
    compaction_and_rebuild_keep_what_they_replace,
    review_documents_are_added_once,
    sync_states,
    photo_uploads_in_chunks,
    photo_references_and_claims,
    the_index_follows_only_the_stored_heads,
    telemetry_feeds_are_kept_where_shared,
    corrective_actions_are_kept_step_by_step,
    checklists,
    audit_log_is_one_chain,
    concurrent_audit_stays_one_chain,
    damage_to_the_audit_log_shows,
    sign_in_addresses_are_remembered,
);

/// Where a user signed in from, and when last (`logins.rs`): known from then on, never
/// moved back, per user and address.
fn sign_in_addresses_are_remembered(b: &Backend) {
    let s = &*b.storage;
    assert!(!s.login_known("ann", "a:10.0.0.1", at(0)).unwrap());
    s.remember_login("ann", "a:10.0.0.1", at(1_000)).unwrap();
    assert!(s.login_known("ann", "a:10.0.0.1", at(1_000)).unwrap());
    assert!(
        !s.login_known("ann", "a:10.0.0.1", at(1_001)).unwrap(),
        "too long ago"
    );
    assert!(
        !s.login_known("bob", "a:10.0.0.1", at(0)).unwrap(),
        "another user"
    );
    assert!(
        !s.login_known("ann", "a:10.0.0.2", at(0)).unwrap(),
        "another address"
    );
    // An older sign-in arriving late does not move it back; a newer one moves it on.
    s.remember_login("ann", "a:10.0.0.1", at(500)).unwrap();
    assert!(s.login_known("ann", "a:10.0.0.1", at(1_000)).unwrap());
    s.remember_login("ann", "a:10.0.0.1", at(2_000)).unwrap();
    assert!(s.login_known("ann", "a:10.0.0.1", at(2_000)).unwrap());
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap()
}

fn user(s: &dyn Storage, name: &str, role: Role) -> i64 {
    s.add_user(name, &format!("{name} (test)"), &role, "$argon2id$test")
        .unwrap()
}

fn record(trust: &str, assignees: &[&str]) -> InspectionRecord {
    InspectionRecord {
        id: Uuid::new_v4(),
        trust: trust.into(),
        sites: vec!["Main site".into(), "Annexe".into()],
        checklist_id: "cqc-onsite-cyber".into(),
        checklist_version: "2026.1".into(),
        checklist_sha256: "ab".repeat(32),
        state: State::Draft,
        response_doc: Uuid::new_v4(),
        review_doc: Uuid::new_v4(),
        shared_at: None,
        created_at: at(0),
        created_by: "admin".into(),
        assignees: assignees.iter().map(|a| a.to_string()).collect(),
        lead: assignees.first().map(|a| a.to_string()),
        history_holds_comments: false,
    }
}

/// Stores an inspection with its three documents (bytes are opaque to storage).
fn inspection(s: &dyn Storage, trust: &str, assignees: &[&str]) -> InspectionRecord {
    let rec = record(trust, assignees);
    let doc = StoredDoc::new(b"snapshot".to_vec(), vec![1; 32]);
    s.create_inspection(
        &rec,
        &[
            (rec.id, DocKind::Inspection, &doc),
            (rec.response_doc, DocKind::TrustResponse, &doc),
            (rec.review_doc, DocKind::Review, &doc),
        ],
    )
    .unwrap();
    rec
}

fn event(actor: &str, action: &str, target: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        actor: actor.into(),
        device: Some(7),
        action: action.into(),
        target: target.into(),
        from: "127.0.0.1".into(),
        outcome: "ok".into(),
        detail: None,
    }
}

fn users(b: &Backend) {
    let s = &*b.storage;
    let ann = user(s, "ann", Role::Inspector);
    let lead = user(s, "lee", Role::TrustLead("RJ1".into()));
    assert_ne!(ann, lead);
    assert!(matches!(
        s.add_user("ann", "Another Ann", &Role::Reviewer, "x"),
        Err(StorageError::Exists(_))
    ));
    let found = s.user_by_name("lee").unwrap().unwrap();
    assert_eq!(found.id, lead);
    assert_eq!(found.role, Role::TrustLead("RJ1".into()));
    assert_eq!(found.display_name, "lee (test)");
    assert_eq!(found.password_hash, "$argon2id$test");
    assert!(!found.disabled);
    assert!(s.user_by_name("nobody").unwrap().is_none());
    s.set_user_disabled("lee", true).unwrap();
    assert!(s.user_by_name("lee").unwrap().unwrap().disabled);
    assert!(matches!(
        s.set_user_disabled("nobody", true),
        Err(StorageError::NotFound(_))
    ));
    let names: Vec<String> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "lee"]);
}

fn devices_tokens_and_wipes(b: &Backend) {
    let s = &*b.storage;
    let ann = user(s, "ann", Role::Inspector);
    let tablet = s.add_device(ann, "tablet", &[1; 32], at(0)).unwrap();
    let laptop = s.add_device(ann, "laptop", &[2; 32], at(1)).unwrap();
    let (d, u) = s.device_by_token(&[1; 32]).unwrap().unwrap();
    assert_eq!(
        (d.id, d.name.as_str(), d.user_name.as_str()),
        (tablet, "tablet", "ann")
    );
    assert_eq!(d.created_at, at(0));
    assert_eq!(u.name, "ann");
    assert!(s.device_by_token(&[9; 32]).unwrap().is_none());
    assert!(s.device_live(tablet).unwrap());

    s.revoke_device(laptop).unwrap();
    assert!(s.device_by_token(&[2; 32]).unwrap().is_none());
    assert!(!s.device_live(laptop).unwrap());
    // Revoked without a wipe: nothing to wipe.
    assert!(s.device_to_wipe(&[2; 32]).unwrap().is_none());
    assert!(!s.mark_wiped(laptop, at(2)).unwrap());

    s.revoke_and_wipe(tablet, at(3)).unwrap();
    s.revoke_and_wipe(tablet, at(4)).unwrap();
    let w = s.device_to_wipe(&[1; 32]).unwrap().unwrap();
    assert_eq!(
        w.wipe_requested,
        Some(at(3)),
        "the first request's time stays"
    );
    assert!(s.mark_wiped(tablet, at(5)).unwrap());
    assert!(!s.mark_wiped(tablet, at(6)).unwrap(), "wiped once");
    assert!(s.device_to_wipe(&[1; 32]).unwrap().is_none());
    let listed = s.list_devices().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].wiped_at, Some(at(5)));
    assert!(listed.iter().all(|d| d.revoked));
    assert!(matches!(
        s.revoke_device(999),
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.revoke_and_wipe(999, at(0)),
        Err(StorageError::NotFound(_))
    ));

    // A disabled user's devices stop at once.
    let bob = user(s, "bob", Role::Reviewer);
    let phone = s.add_device(bob, "phone", &[3; 32], at(0)).unwrap();
    s.set_user_disabled("bob", true).unwrap();
    assert!(s.device_by_token(&[3; 32]).unwrap().is_none());
    assert!(!s.device_live(phone).unwrap());
}

fn last_seen_never_moves_back(b: &Backend) {
    let s = &*b.storage;
    let ann = user(s, "ann", Role::Inspector);
    let d = s.add_device(ann, "tablet", &[1; 32], at(0)).unwrap();
    assert_eq!(s.list_devices().unwrap()[0].last_seen, None);
    s.touch_devices(&[(d, at(100))]).unwrap();
    s.touch_devices(&[(d, at(50)), (999, at(1))]).unwrap();
    assert_eq!(s.list_devices().unwrap()[0].last_seen, Some(at(100)));
    s.touch_devices(&[(d, at(200))]).unwrap();
    assert_eq!(s.list_devices().unwrap()[0].last_seen, Some(at(200)));
    s.touch_devices(&[]).unwrap();
}

fn actors_are_bound_once(b: &Backend) {
    let s = &*b.storage;
    let ann = user(s, "ann", Role::Inspector);
    user(s, "bob", Role::Inspector);
    let tablet = s.add_device(ann, "tablet", &[1; 32], at(0)).unwrap();
    s.bind_actor(b"actor-a", "ann", Some(tablet), at(1))
        .unwrap();
    s.bind_actor(b"actor-a", "ann", Some(tablet), at(2))
        .unwrap();
    assert!(matches!(
        s.bind_actor(b"actor-a", "bob", None, at(3)),
        Err(StorageError::Exists(_))
    ));
    let binding = s.actor_binding(b"actor-a").unwrap().unwrap();
    assert_eq!(binding.user, "ann");
    assert_eq!(binding.device, Some(tablet));
    assert_eq!(binding.bound_at, at(1));
    assert!(!binding.revoked);
    assert!(s.actor_binding(b"actor-z").unwrap().is_none());

    // After the device is revoked, the same user's new device takes the actor over.
    s.revoke_device(tablet).unwrap();
    assert!(s.actor_binding(b"actor-a").unwrap().unwrap().revoked);
    let laptop = s.add_device(ann, "laptop", &[2; 32], at(4)).unwrap();
    s.bind_actor(b"actor-a", "ann", Some(laptop), at(5))
        .unwrap();
    let moved = s.actor_binding(b"actor-a").unwrap().unwrap();
    assert_eq!(moved.device, Some(laptop));
    assert!(!moved.revoked);

    // The API's actor for a device: made once, the same afterwards.
    let first = s.api_actor(laptop, "ann", b"api-one", at(6)).unwrap();
    let again = s.api_actor(laptop, "ann", b"api-two", at(7)).unwrap();
    assert_eq!(first, b"api-one");
    assert_eq!(again, b"api-one");
    assert_eq!(s.actor_binding(b"api-one").unwrap().unwrap().user, "ann");
    assert!(s.actor_binding(b"api-two").unwrap().is_none());

    // A device binds at most MAX_ACTORS_PER_DEVICE actors (the API's counts).
    let max = wardcheck_server::limits::MAX_ACTORS_PER_DEVICE;
    for i in 2..max {
        s.bind_actor(format!("many-{i}").as_bytes(), "ann", Some(laptop), at(8))
            .unwrap();
    }
    assert!(matches!(
        s.bind_actor(b"one-too-many", "ann", Some(laptop), at(9)),
        Err(StorageError::Limit(_))
    ));
    assert!(s.actor_binding(b"one-too-many").unwrap().is_none());
}

fn actor_races_have_one_winner(b: &Backend) {
    let s = b.storage.clone();
    let users: Vec<String> = (0..8).map(|i| format!("racer{i}")).collect();
    for u in &users {
        user(&*s, u, Role::Inspector);
    }
    let outcomes: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .map(|u| {
                let s = s.clone();
                scope.spawn(move || {
                    s.bind_actor(b"contested", u, None, at(1))
                        .map_err(|e| match e {
                            StorageError::Exists(_) => "exists".to_owned(),
                            other => format!("unexpected: {other}"),
                        })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "one user binds the actor: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o.is_ok() || o.as_ref().unwrap_err() == "exists"),
        "the others are told it is bound: {outcomes:?}"
    );
    let winner = s.actor_binding(b"contested").unwrap().unwrap().user;
    assert!(users.contains(&winner));
}

fn inspections_and_their_teams(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann", "bob"]);
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!(got, rec);
    assert!(matches!(
        s.create_inspection(&rec, &[]),
        Err(StorageError::Exists(_))
    ));
    assert!(s.inspection(Uuid::new_v4()).unwrap().is_none());

    // A new lead: the old one stays on the team as an inspector.
    s.assign(rec.id, "cat", TeamRole::LeadInspector).unwrap();
    s.assign(rec.id, "ann", TeamRole::Inspector).unwrap();
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!(got.assignees, ["ann", "bob", "cat"]);
    assert_eq!(got.lead.as_deref(), Some("cat"));
    assert_eq!(got.team_role("ann"), Some(TeamRole::Inspector));
    // Assigned again as an inspector, the lead stays lead.
    s.assign(rec.id, "cat", TeamRole::Inspector).unwrap();
    assert_eq!(
        s.inspection(rec.id).unwrap().unwrap().lead.as_deref(),
        Some("cat")
    );
    assert!(matches!(
        s.assign(Uuid::new_v4(), "ann", TeamRole::Inspector),
        Err(StorageError::NotFound(_))
    ));

    // States and sharing.
    s.set_state(rec.id, State::Submitted).unwrap();
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!((got.state, got.shared_at), (State::Submitted, None));
    s.set_state(rec.id, State::SharedWithTrust).unwrap();
    let shared_at = s.inspection(rec.id).unwrap().unwrap().shared_at.unwrap();
    s.share(rec.id, at(99)).unwrap();
    s.set_state(rec.id, State::Closed).unwrap();
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!(got.state, State::Closed);
    assert_eq!(got.shared_at, Some(shared_at), "shared once, and for good");
    assert!(matches!(
        s.set_state(Uuid::new_v4(), State::Closed),
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.share(Uuid::new_v4(), at(0)),
        Err(StorageError::NotFound(_))
    ));

    // Each document knows its kind and inspection.
    for (doc, kind) in [
        (rec.id, DocKind::Inspection),
        (rec.response_doc, DocKind::TrustResponse),
        (rec.review_doc, DocKind::Review),
    ] {
        let a = s.doc_access(doc).unwrap().unwrap();
        assert_eq!((a.doc, a.kind, a.inspection.id), (doc, kind, rec.id));
    }
    assert!(s.doc_access(Uuid::new_v4()).unwrap().is_none());
}

fn listing_filters_and_pages(b: &Backend) {
    let s = &*b.storage;
    let a = inspection(s, "RJ1", &["ann"]);
    let b2 = inspection(s, "RJ1", &["bob"]);
    let c = inspection(s, "RYJ", &["ann", "bob"]);
    s.set_state(c.id, State::SharedWithTrust).unwrap();
    let ids = |q: InspectionQuery| -> Vec<Uuid> {
        s.list_inspections(&InspectionQuery {
            limit: q.limit.max(1),
            ..q
        })
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    };
    let mut all = vec![a.id, b2.id, c.id];
    all.sort();
    assert_eq!(
        ids(InspectionQuery {
            limit: 10,
            ..Default::default()
        }),
        all
    );
    let mut rj1 = vec![a.id, b2.id];
    rj1.sort();
    assert_eq!(
        ids(InspectionQuery {
            trust: Some("RJ1".into()),
            limit: 10,
            ..Default::default()
        }),
        rj1
    );
    let mut anns = vec![a.id, c.id];
    anns.sort();
    assert_eq!(
        ids(InspectionQuery {
            assignee: Some("ann".into()),
            limit: 10,
            ..Default::default()
        }),
        anns
    );
    assert_eq!(
        ids(InspectionQuery {
            shared_only: true,
            limit: 10,
            ..Default::default()
        }),
        [c.id]
    );
    assert_eq!(
        ids(InspectionQuery {
            state: Some(State::Draft),
            trust: Some("RYJ".into()),
            limit: 10,
            ..Default::default()
        }),
        Vec::<Uuid>::new()
    );
    // Pages: ids ascending, after the last one seen.
    let first = ids(InspectionQuery {
        limit: 2,
        ..Default::default()
    });
    assert_eq!(first, all[..2]);
    let rest = ids(InspectionQuery {
        limit: 2,
        after: Some(first[1]),
        ..Default::default()
    });
    assert_eq!(rest, all[2..]);
}

fn documents_keep_every_change(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(loaded.snapshot, b"snapshot");
    assert_eq!(loaded.heads, vec![1; 32]);
    assert!(loaded.changes.is_empty());
    for i in 0..5u8 {
        s.append_changes(rec.id, &[i; 10], &[i; 32], &[i + 10; 32])
            .unwrap();
    }
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(
        loaded.changes,
        (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>()
    );
    assert_eq!(loaded.change_seqs, [1, 2, 3, 4, 5]);
    assert_eq!(loaded.change_hashes[4], Some(vec![4; 32]));
    assert_eq!(loaded.heads, vec![14; 32]);
    assert_eq!(s.change_rows(rec.id).unwrap(), 5);
    // A conditional append goes ahead only on top of the heads it names (what the
    // writer's copy holds); otherwise nothing is written.
    s.append_changes_after(rec.id, &[14; 32], b"next", &[20; 32], &[21; 32])
        .unwrap();
    assert!(matches!(
        s.append_changes_after(rec.id, &[14; 32], b"stale", &[22; 32], &[23; 32]),
        Err(StorageError::Stale(_))
    ));
    let after = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(after.changes.len(), 6);
    assert_eq!(after.heads, vec![21; 32]);
    assert!(matches!(
        s.append_changes_after(Uuid::new_v4(), &[0; 32], b"x", &[0; 32], &[0; 32]),
        Err(StorageError::NotFound(_))
    ));
    // Another document's changes are its own.
    assert_eq!(s.change_rows(rec.review_doc).unwrap(), 0);
    assert!(matches!(
        s.append_changes(Uuid::new_v4(), b"x", &[0; 32], &[0; 32]),
        Err(StorageError::NotFound(_))
    ));
    assert!(s.load_doc(Uuid::new_v4()).unwrap().is_none());
}

fn concurrent_appends_keep_every_change_once(b: &Backend) {
    let s = b.storage.clone();
    let rec = inspection(&*s, "RJ1", &["ann"]);
    let other = inspection(&*s, "RJ1", &["ann"]);
    let missing = Uuid::new_v4();
    std::thread::scope(|scope| {
        for t in 0..8u8 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..25u8 {
                    s.append_changes(rec.id, &[t, i], &[t; 32], &[t; 32])
                        .unwrap();
                    s.append_changes(other.id, &[t, i], &[t; 32], &[t; 32])
                        .unwrap();
                    // A write that fails alone fails no one else's in its batch.
                    assert!(matches!(
                        s.append_changes(missing, &[t, i], &[t; 32], &[t; 32]),
                        Err(StorageError::NotFound(_))
                    ));
                }
            });
        }
    });
    for doc in [rec.id, other.id] {
        let loaded = s.load_doc(doc).unwrap().unwrap();
        assert_eq!(loaded.change_seqs, (1..=200).collect::<Vec<i64>>());
        let mut seen = loaded.changes.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200, "every change stored once");
        // Each thread's changes in the order it made them.
        for t in 0..8u8 {
            let mine: Vec<u8> = loaded
                .changes
                .iter()
                .filter(|c| c[0] == t)
                .map(|c| c[1])
                .collect();
            assert_eq!(mine, (0..25).collect::<Vec<u8>>());
        }
    }
}

fn compaction_and_rebuild_keep_what_they_replace(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    s.append_changes(rec.id, b"c1", &[1; 32], &[2; 32]).unwrap();
    s.append_changes(rec.id, b"c2", &[2; 64], &[3; 32]).unwrap();
    // A snapshot that does not cover what is stored (another process stored changes
    // since it was made) waits: nothing changes.
    s.compact(rec.id, b"stale", &[2; 32]).unwrap();
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(
        (loaded.snapshot.as_slice(), loaded.changes.len()),
        (&b"snapshot"[..], 2)
    );
    s.compact(rec.id, b"compacted", &[3; 32]).unwrap();
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(
        (loaded.snapshot.as_slice(), loaded.changes.len()),
        (&b"compacted"[..], 0)
    );
    let prev = s.previous_doc(rec.id).unwrap();
    assert_eq!(prev.snapshot.as_deref(), Some(&b"snapshot"[..]));
    assert_eq!(prev.changes, [b"c1".to_vec(), b"c2".to_vec()]);
    assert_eq!(prev.change_hashes[1], Some(vec![2; 64]));
    assert!(matches!(
        s.compact(Uuid::new_v4(), b"x", &[0; 32]),
        Err(StorageError::NotFound(_))
    ));

    // A rebuild sets aside what no longer loads, and remembers the changes it held.
    s.append_changes(rec.id, b"bad", &[7; 64], &[4; 32])
        .unwrap();
    s.append_changes(rec.id, b"good", &[8; 32], &[5; 32])
        .unwrap();
    let ann = user(s, "ann", Role::Inspector);
    let tablet = s.add_device(ann, "tablet", &[1; 32], at(0)).unwrap();
    assert_eq!(
        s.api_actor(tablet, "ann", b"api-old", at(0)).unwrap(),
        b"api-old"
    );
    let mut rebuilt = Rebuilt {
        snapshot: b"rebuilt".to_vec(),
        heads: vec![6; 32],
        aside: vec![(
            "change".into(),
            Some(1),
            b"bad".to_vec(),
            "does not load".into(),
        )],
        // What it read: rows 1 and 2, and the heads they left.
        read_heads: vec![5; 32],
        through_seq: Some(2),
    };
    // Another process stores a change after the rebuild read the document: the rebuilt
    // snapshot lacks it, so nothing of the rebuild is written.
    s.append_changes(rec.id, b"later", &[9; 32], &[7; 32])
        .unwrap();
    assert!(matches!(
        s.write_rebuilt(rec.id, &rebuilt, at(9)),
        Err(StorageError::Stale(_))
    ));
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(loaded.changes.len(), 3, "nothing was written");
    assert!(s.set_aside(rec.id).unwrap().is_empty());
    // Read again, with the later change in it, the rebuild is written.
    rebuilt.read_heads = vec![7; 32];
    rebuilt.through_seq = Some(3);
    s.write_rebuilt(rec.id, &rebuilt, at(10)).unwrap();
    let loaded = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(loaded.snapshot, b"rebuilt");
    assert_eq!(loaded.heads, vec![6; 32]);
    assert!(loaded.changes.is_empty());
    // The API's actors start afresh: a change it made may be among those set aside.
    assert_eq!(
        s.api_actor(tablet, "ann", b"api-new", at(11)).unwrap(),
        b"api-new"
    );
    let aside = s.set_aside(rec.id).unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        (
            aside[0].kind.as_str(),
            aside[0].seq,
            aside[0].bytes,
            aside[0].at
        ),
        ("change", Some(1), 3, at(10))
    );
    assert!(s.was_set_aside(rec.id, &[7; 32]).unwrap());
    assert!(!s.was_set_aside(rec.id, &[8; 32]).unwrap());
    assert!(!s.was_set_aside(rec.review_doc, &[7; 32]).unwrap());
}

fn review_documents_are_added_once(b: &Backend) {
    let s = &*b.storage;
    let mut rec = record("RJ1", &["ann"]);
    let doc = StoredDoc::new(b"old".to_vec(), vec![1; 32]);
    // An inspection from before review documents: its review id names no document yet.
    s.create_inspection(
        &rec,
        &[
            (rec.id, DocKind::Inspection, &doc),
            (rec.response_doc, DocKind::TrustResponse, &doc),
        ],
    )
    .unwrap();
    // Only the migration's own query can tell; a new inspection always has one, so the
    // list may be empty on a backend that records the review id at creation.
    let review = Uuid::new_v4();
    let review_doc = StoredDoc::new(b"review".to_vec(), vec![2; 32]);
    s.add_review_doc(
        rec.id,
        review,
        &review_doc,
        Some((b"moved", &[3; 32])),
        true,
    )
    .unwrap();
    rec.review_doc = review;
    rec.history_holds_comments = true;
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!((got.review_doc, got.history_holds_comments), (review, true));
    assert_eq!(s.doc_access(review).unwrap().unwrap().kind, DocKind::Review);
    let insp = s.load_doc(rec.id).unwrap().unwrap();
    assert_eq!(
        (insp.changes, insp.heads),
        (vec![b"moved".to_vec()], vec![3; 32])
    );
    assert!(!s.without_review_doc().unwrap().contains(&rec.id));
}

fn sync_states(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    assert!(s.sync_state(rec.id, "peer-a").unwrap().is_none());
    s.put_sync_states(&[(rec.id, "peer-a", b"one"), (rec.id, "peer-b", b"two")])
        .unwrap();
    s.put_sync_states(&[(rec.id, "peer-a", b"three")]).unwrap();
    assert_eq!(s.sync_state(rec.id, "peer-a").unwrap().unwrap(), b"three");
    assert_eq!(s.sync_state(rec.id, "peer-b").unwrap().unwrap(), b"two");
    s.reset_sync_state(rec.id, "peer-a").unwrap();
    assert!(s.sync_state(rec.id, "peer-a").unwrap().is_none());
    assert!(s.sync_state(rec.id, "peer-b").unwrap().is_some());
    s.put_sync_states(&[]).unwrap();
}

fn photo_uploads_in_chunks(b: &Backend) {
    let s = &*b.storage;
    let sha = "aa".repeat(32);
    assert!(s.blob_status(&sha).unwrap().is_none());
    assert_eq!(s.append_blob(&sha, 0, b"hello ", "ann").unwrap(), 6);
    assert!(matches!(
        s.append_blob(&sha, 3, b"xx", "ann"),
        Err(StorageError::Corrupt(_))
    ));
    assert_eq!(s.append_blob(&sha, 6, b"world", "ann").unwrap(), 11);
    let st = s.blob_status(&sha).unwrap().unwrap();
    assert_eq!((st.received, st.complete, st.mime), (11, false, None));
    assert_eq!(s.partial_blob(&sha).unwrap(), b"hello world");
    assert!(
        s.blob(&sha).unwrap().is_none(),
        "not readable before it is complete"
    );
    s.complete_blob(&sha, b"stripped", "image/jpeg").unwrap();
    let st = s.blob_status(&sha).unwrap().unwrap();
    assert_eq!((st.received, st.complete), (8, true));
    assert_eq!(
        s.blob(&sha).unwrap().unwrap(),
        (b"stripped".to_vec(), "image/jpeg".to_owned())
    );
    assert!(matches!(
        s.append_blob(&sha, 8, b"more", "ann"),
        Err(StorageError::Exists(_))
    ));
    assert!(matches!(
        s.partial_blob(&sha),
        Err(StorageError::NotFound(_))
    ));
    // Discarding leaves a complete photo alone.
    s.discard_blob(&sha).unwrap();
    assert!(s.blob(&sha).unwrap().is_some());

    // A failed upload is discarded whole.
    let bad = "bb".repeat(32);
    s.append_blob(&bad, 0, b"junk", "ann").unwrap();
    s.discard_blob(&bad).unwrap();
    assert!(s.blob_status(&bad).unwrap().is_none());
    assert_eq!(s.append_blob(&bad, 0, b"again", "ann").unwrap(), 5);

    // A user's uploads in progress are capped; others' are not counted against them.
    let max = wardcheck_server::limits::MAX_PARTIAL_UPLOADS_PER_USER;
    for i in 1..max {
        s.append_blob(&format!("{i:064x}"), 0, b"x", "ann").unwrap();
    }
    assert!(matches!(
        s.append_blob(&"cc".repeat(32), 0, b"x", "ann"),
        Err(StorageError::Limit(_))
    ));
    s.append_blob(&"cc".repeat(32), 0, b"x", "bob").unwrap();
    // Pruning drops the ones untouched since the cutoff, and nothing complete.
    let pruned = s
        .prune_partial_blobs(Utc::now() + Duration::hours(1))
        .unwrap();
    assert_eq!(pruned as i64, max + 1);
    assert!(s.blob_status(&"cc".repeat(32)).unwrap().is_none());
    assert!(s.blob(&sha).unwrap().is_some());
    assert_eq!(
        s.prune_partial_blobs(Utc::now() - Duration::hours(1))
            .unwrap(),
        0
    );
}

fn photo_references_and_claims(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    let other = inspection(s, "RJ1", &["bob"]);
    let sha = "dd".repeat(32);
    s.set_photo_refs(rec.id, &[sha.clone(), sha.clone()])
        .unwrap();
    s.set_photo_refs(other.id, std::slice::from_ref(&sha))
        .unwrap();
    let mut both = vec![rec.id, other.id];
    both.sort();
    assert_eq!(
        s.photo_docs(&sha).unwrap(),
        both,
        "unclaimed references count"
    );
    // A reference its author had not earned does not count until they upload it whole.
    s.add_photo_claims(
        other.id,
        &[PhotoClaim {
            sha256: sha.clone(),
            user: "bob".into(),
            earned: false,
        }],
    )
    .unwrap();
    assert_eq!(s.photo_docs(&sha).unwrap(), [rec.id]);
    assert!(!s.blob_uploaded_by(&sha, "bob").unwrap());
    s.add_blob_uploader(&sha, "bob").unwrap();
    s.add_blob_uploader(&sha, "bob").unwrap();
    assert!(s.blob_uploaded_by(&sha, "bob").unwrap());
    assert_eq!(s.photo_docs(&sha).unwrap(), both);
    // An earned claim stays earned.
    let sha2 = "ee".repeat(32);
    s.set_photo_refs(rec.id, std::slice::from_ref(&sha2))
        .unwrap();
    assert!(
        s.photo_docs(&sha).unwrap() == [other.id],
        "references are replaced"
    );
    s.add_photo_claims(
        rec.id,
        &[PhotoClaim {
            sha256: sha2.clone(),
            user: "ann".into(),
            earned: true,
        }],
    )
    .unwrap();
    s.add_photo_claims(
        rec.id,
        &[PhotoClaim {
            sha256: sha2.clone(),
            user: "ann".into(),
            earned: false,
        }],
    )
    .unwrap();
    assert_eq!(s.photo_docs(&sha2).unwrap(), [rec.id]);
}

/// What the record indexes of an inspection (its state, its photo references) is
/// written only from a copy at the document's stored heads: a process behind another
/// never writes over what the other indexed from later changes.
fn the_index_follows_only_the_stored_heads(b: &Backend) {
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    let sha = "ee".repeat(32);
    let refs = || s.photo_docs(&sha).unwrap();
    // At the stored heads: written, the state and the references together.
    assert!(
        s.index_at(
            rec.id,
            &[1; 32],
            Some(State::Submitted),
            Some(std::slice::from_ref(&sha))
        )
        .unwrap()
    );
    assert_eq!(
        s.inspection(rec.id).unwrap().unwrap().state,
        State::Submitted
    );
    assert_eq!(refs(), [rec.id]);
    // Another process stores later changes; this copy's heads are now behind.
    s.append_changes_after(rec.id, &[1; 32], b"later", &[2; 32], &[3; 32])
        .unwrap();
    assert!(
        !s.index_at(rec.id, &[1; 32], Some(State::Draft), Some(&[]))
            .unwrap(),
        "a copy behind the stored heads writes nothing"
    );
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!((got.state, got.shared_at), (State::Submitted, None));
    assert_eq!(refs(), [rec.id], "the references stay as they were");
    // The process that is ahead writes; given only the state, the references stay.
    assert!(
        s.index_at(rec.id, &[3; 32], Some(State::SharedWithTrust), None)
            .unwrap()
    );
    let got = s.inspection(rec.id).unwrap().unwrap();
    assert_eq!(got.state, State::SharedWithTrust);
    assert!(got.shared_at.is_some(), "the move to the trust shares");
    assert_eq!(refs(), [rec.id]);
    assert!(matches!(
        s.index_at(Uuid::new_v4(), &[1; 32], Some(State::Closed), None),
        Err(StorageError::NotFound(_))
    ));
}

/// Telemetry feed files kept for every process: where the storage is shared
/// (PostgreSQL), one file per kind and day, the same file kept once, a replacement
/// replacing it, a file that is not the one named refused; elsewhere, none kept.
fn telemetry_feeds_are_kept_where_shared(b: &Backend) {
    use sha2::{Digest, Sha256};
    let s = &*b.storage;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let feed = |body: &[u8]| Feed {
        id: 0,
        kind: "trusts".into(),
        format: "csv".into(),
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        sha256: Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        bytes: body.len() as u64,
        by: "admin".into(),
        at: at(5),
    };
    // Larger than one chunk, so that it is kept in several.
    let first: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
    let first_file = file("first.csv", &first);
    if !s.shares_feeds() {
        assert!(matches!(
            s.put_feed(&feed(&first), &first_file),
            Err(StorageError::Limit(_))
        ));
        assert!(s.feeds().unwrap().is_empty());
        return;
    }
    let id = s.put_feed(&feed(&first), &first_file).unwrap();
    assert_eq!(
        s.put_feed(&feed(&first), &first_file).unwrap(),
        id,
        "kept once"
    );
    let kept = s.feeds().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].id, &kept[0].sha256), (id, &feed(&first).sha256));
    let back = dir.path().join("back");
    s.fetch_feed(id, &back).unwrap();
    assert!(
        std::fs::read(&back).unwrap() == first,
        "the bytes come back whole"
    );

    // A file that is not the one named is not kept, and the kept one stays.
    let other = b"ods_code,name\nRJ1,Guy's\n".to_vec();
    let other_file = file("other.csv", &other);
    assert!(matches!(
        s.put_feed(&feed(&other), &first_file),
        Err(StorageError::Corrupt(_))
    ));
    assert_eq!(s.feeds().unwrap()[0].id, id);

    // Another file for the same kind and day replaces it.
    let newer = s.put_feed(&feed(&other), &other_file).unwrap();
    assert_ne!(newer, id);
    let kept = s.feeds().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].sha256, feed(&other).sha256);
    assert!(matches!(
        s.fetch_feed(id, &back),
        Err(StorageError::NotFound(_))
    ));
    s.fetch_feed(newer, &back).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), other);

    // Of every kind but trusts, the newest days only; of trusts, every day.
    let days = wardcheck_server::storage::FEED_DAYS_KEPT + 2;
    for kind in ["alerts", "trusts"] {
        for d in 0..days {
            let body = format!("{kind} {d}\n").into_bytes();
            let f = Feed {
                kind: kind.into(),
                as_of: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                    + chrono::Days::new(d as u64),
                ..feed(&body)
            };
            s.put_feed(&f, &file("day.csv", &body)).unwrap();
        }
    }
    let kept = s.feeds().unwrap();
    let alerts: Vec<_> = kept.iter().filter(|f| f.kind == "alerts").collect();
    assert_eq!(alerts.len() as i64, days - 2);
    assert_eq!(
        alerts[0].as_of,
        chrono::NaiveDate::from_ymd_opt(2026, 1, 3).unwrap(),
        "the oldest days went"
    );
    // The first trusts file of 2026-12-01 above, and every day here.
    assert_eq!(
        kept.iter().filter(|f| f.kind == "trusts").count() as i64,
        days + 1
    );
}

fn corrective_actions_are_kept_step_by_step(b: &Backend) {
    use wardcheck_core::actions::{Action, Plan, Progress, Raise, Source, Status, Step};
    use wardcheck_core::inspection::Stamp;
    use wardcheck_core::policy::Role as Writes;
    let s = &*b.storage;
    let rec = inspection(s, "RJ1", &["ann"]);
    let other = inspection(s, "RX2", &["ann"]);
    let stamp = |by: &str, secs: i64| Stamp::new(by, at(secs));
    let due = chrono::NaiveDate::from_ymd_opt(2030, 1, 31).unwrap();
    let raise = |id: u128, rec: &InspectionRecord, secs: i64| {
        Action::raise(
            Uuid::from_u128(id),
            &rec.trust,
            rec.id,
            Writes::Reviewer,
            Raise {
                source: Source::Finding {
                    finding: Uuid::from_u128(99),
                },
                what: "Fit door closers".into(),
                priority: wardcheck_core::actions::Priority::High,
                due,
            },
            &stamp("rita", secs),
        )
        .unwrap()
    };
    let a = raise(1, &rec, 10);
    s.add_action(&a).unwrap();
    assert!(matches!(s.add_action(&a), Err(StorageError::Exists(_))));
    s.add_action(&raise(2, &other, 5)).unwrap();
    assert_eq!(s.action(a.id).unwrap().unwrap(), a);
    assert!(s.action(Uuid::from_u128(3)).unwrap().is_none());

    // A step kept on top of the one before; a second built on the same one is stale.
    let plan = Step::Propose(Plan {
        steps: "Order and fit".into(),
        owner_role: "Estates".into(),
        date: due,
    });
    let proposed = a
        .take(plan.clone(), Writes::TrustLead, &stamp("lead1", 20))
        .unwrap();
    let racing = a
        .take(plan, Writes::TrustLead, &stamp("lead1", 21))
        .unwrap();
    s.add_action_step(&proposed).unwrap();
    assert!(matches!(
        s.add_action_step(&racing),
        Err(StorageError::Stale(_))
    ));
    assert_eq!(s.action(a.id).unwrap().unwrap(), proposed);
    let accepted = proposed
        .take(
            Step::Accept { note: None },
            Writes::Reviewer,
            &stamp("rita", 30),
        )
        .unwrap();
    s.add_action_step(&accepted).unwrap();
    let evidence = "ab".repeat(32);
    let reported = accepted
        .take(
            Step::Progress(Progress {
                text: "Half done".into(),
                evidence: vec![evidence.clone()],
            }),
            Writes::TrustLead,
            &stamp("lead1", 40),
        )
        .unwrap();
    s.add_action_step(&reported).unwrap();
    let kept = s.action(a.id).unwrap().unwrap();
    assert_eq!(kept.status, Status::Accepted);
    assert_eq!(kept.steps.len(), 4);
    let mut missing = reported.clone();
    missing.id = Uuid::from_u128(7);
    assert!(matches!(
        s.add_action_step(&missing),
        Err(StorageError::NotFound(_))
    ));

    // Listed oldest raised first, per trust or all; found by the evidence they name.
    let ids = |v: Vec<Action>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(s.actions(None).unwrap()), [Uuid::from_u128(2), a.id]);
    assert_eq!(ids(s.actions(Some("RJ1")).unwrap()), [a.id]);
    assert!(s.actions(Some("RTH")).unwrap().is_empty());
    assert_eq!(ids(s.actions_naming(&evidence).unwrap()), [a.id]);
    assert!(s.actions_naming(&"cd".repeat(32)).unwrap().is_empty());
    assert!(
        s.actions_naming("%").unwrap().is_empty(),
        "not a hash: nothing"
    );
}

fn checklists(b: &Backend) {
    let s = &*b.storage;
    let c = PublishedChecklist {
        id: "cqc-onsite-cyber".into(),
        version: "2026.1".into(),
        sha256: "12".repeat(32),
        files: vec![
            ("template.toml".into(), "a = 1".into()),
            ("inc.toml".into(), "b = 2".into()),
        ],
    };
    s.publish_checklist(&c).unwrap();
    assert!(matches!(
        s.publish_checklist(&c),
        Err(StorageError::Exists(_))
    ));
    assert_eq!(
        s.checklist("cqc-onsite-cyber", "2026.1").unwrap().unwrap(),
        c
    );
    assert!(s.checklist("cqc-onsite-cyber", "2025.1").unwrap().is_none());
    assert_eq!(s.checklists().unwrap(), [c]);
}

fn audit_log_is_one_chain(b: &Backend) {
    let s = &*b.storage;
    let empty = s.audit_verify().unwrap();
    assert_eq!((empty.rows, empty.broken), (0, None));
    s.audit(&event("ann", "login", "-")).unwrap();
    let mut hostile = event("ann", "doc_write", "doc-1\nforged line");
    hostile.detail = Some("why".into());
    s.audit(&hostile).unwrap();
    s.audit_batch(&[
        event("bob", "doc_read", "doc-1"),
        event("bob", "denied", "doc-2"),
    ])
    .unwrap();
    s.audit_batch(&[]).unwrap();
    let tail = s.audit_tail(3).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["doc_write", "doc_read", "denied"]
    );
    // Stored as given: callers make targets safe (`audit_target`), storage keeps them.
    assert_eq!(tail[0].target, "doc-1\nforged line");
    assert_eq!(tail[0].detail.as_deref(), Some("why"));
    let about = s.audit_about("doc-1", &["doc_read"]).unwrap();
    assert_eq!(about.len(), 1);
    assert_eq!(about[0].1.actor, "bob");
    assert!(about[0].0 > 1);
    let v = s.audit_verify().unwrap();
    assert_eq!((v.rows, v.broken), (4, None));
    assert_eq!(v.head.len(), 64);
}

fn concurrent_audit_stays_one_chain(b: &Backend) {
    let s = b.storage.clone();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..40 {
                    let e = event(&format!("user{t}"), "doc_read", &format!("doc-{i}"));
                    if i % 10 == 0 {
                        s.audit_batch(&[e.clone(), e]).unwrap();
                    } else {
                        s.audit(&e).unwrap();
                    }
                }
            });
        }
    });
    let v = s.audit_verify().unwrap();
    assert_eq!(v.broken, None);
    assert_eq!(v.rows, 8 * 44);
}

fn damage_to_the_audit_log_shows(b: &Backend) {
    let s = &*b.storage;
    for i in 0..5 {
        s.audit(&event("ann", "doc_read", &format!("doc-{i}")))
            .unwrap();
    }
    assert_eq!(s.audit_verify().unwrap().broken, None);
    // Someone with the database rewrites who did something.
    b.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3");
    let v = s.audit_verify().unwrap();
    assert_eq!(v.rows, 2);
    assert_eq!(v.broken.as_ref().map(|b| b.0), Some(3), "{v:?}");
    // ... or takes a row out.
    b.execute("UPDATE audit SET actor = 'ann' WHERE seq = 3");
    assert_eq!(s.audit_verify().unwrap().broken, None);
    b.execute("DELETE FROM audit WHERE seq = 2");
    let v = s.audit_verify().unwrap();
    assert_eq!(v.broken.as_ref().map(|b| b.0), Some(3), "{v:?}");
    assert!(v.broken.unwrap().1.contains("gone"));
}
