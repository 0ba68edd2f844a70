//! The document registry in process, against real SQLite storage: what is stored
//! when, what is refused and what that leaves behind, and when documents leave memory.

use std::sync::Arc;
use std::time::Duration;

use automerge::sync::{self, ChunkList, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc};
use chrono::Utc;
use wardcheck_core::inspection::{Answer, Inspection, PhotoRef, Stamp, State};
use wardcheck_core::policy::DocKind;

use super::docs::{DocHandle, Documents, Exchanged, Failure, decode_message, scan_message};
use super::guard::DocContext;
use crate::inspections::{self, CreateInspection, encode_heads};
use crate::limits;
use crate::storage::{InspectionRecord, Role, SqliteStorage, Storage};

struct Fixture {
    _dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    rec: InspectionRecord,
    /// Ann's actor, bound to her.
    actor: ActorId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(dir.path()).unwrap());
    storage
        .add_user("ann", "Ann", &Role::Inspector, "x")
        .unwrap();
    storage
        .add_user("zed", "Zed", &Role::Inspector, "x")
        .unwrap();
    let telemetry = crate::telemetry::TelemetryDb::open(dir.path()).unwrap();
    let rec = inspections::create(
        &*storage,
        &telemetry,
        &CreateInspection {
            trust: "RJ1".into(),
            sites: vec![],
            checklist: "cqc-onsite-cyber".into(),
            assign: vec!["ann".into()],
            visit_start: None,
            visit_end: None,
        },
        "test",
        Utc::now(),
    )
    .unwrap();
    let actor = ActorId::random();
    storage
        .bind_actor(actor.to_bytes(), "ann", None, Utc::now())
        .unwrap();
    Fixture {
        _dir: dir,
        storage,
        rec,
        actor,
    }
}

impl Fixture {
    fn stored_heads(&self) -> Vec<u8> {
        self.storage.load_doc(self.rec.id).unwrap().unwrap().heads
    }

    /// Ann's replica of the inspection, as her device would hold it.
    fn replica(&self) -> Inspection {
        let checklist = inspections::pinned_checklist(&*self.storage, &self.rec).unwrap();
        let stored = self.storage.load_doc(self.rec.id).unwrap().unwrap();
        Inspection::load(&stored.snapshot, checklist, self.actor.clone()).unwrap()
    }

    fn item(&self) -> String {
        let checklist = inspections::pinned_checklist(&*self.storage, &self.rec).unwrap();
        checklist
            .items()
            .find(|(s, _)| s.scope == wardcheck_core::checklist::Scope::Inspection)
            .map(|(_, i)| i.id.clone())
            .unwrap()
    }

    fn ctx(&self, sender: &str) -> DocContext {
        DocContext {
            kind: DocKind::Inspection,
            record: self.storage.inspection(self.rec.id).unwrap().unwrap(),
            checklist: Some(inspections::pinned_checklist(&*self.storage, &self.rec).unwrap()),
            sender: sender.into(),
        }
    }
}

fn stamp() -> Stamp {
    Stamp::new("ann", Utc::now())
}

/// A client replica: anything that speaks the sync protocol.
trait Replica {
    fn generate(&mut self, s: &mut sync::State) -> Option<sync::Message>;
    fn receive(&mut self, s: &mut sync::State, m: sync::Message);
}

impl Replica for AutoCommit {
    fn generate(&mut self, s: &mut sync::State) -> Option<sync::Message> {
        self.sync().generate_sync_message(s)
    }
    fn receive(&mut self, s: &mut sync::State, m: sync::Message) {
        self.sync().receive_sync_message(s, m).unwrap()
    }
}

impl Replica for Inspection {
    fn generate(&mut self, s: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(s)
    }
    fn receive(&mut self, s: &mut sync::State, m: sync::Message) {
        self.receive_sync_message(s, m).unwrap()
    }
}

/// One side of a connection, as the connection code keeps it.
struct Session {
    handle: DocHandle,
    client: sync::State,
    server: Option<sync::State>,
    read_only: bool,
    sender: String,
    /// Changes waiting on this session for their dependencies.
    pending: super::docs::Waiting,
}

impl Session {
    fn open(docs: &Documents, f: &Fixture, read_only: bool) -> Session {
        let (conn, inbox) = docs.connection();
        Session {
            handle: docs.open(f.rec.id, conn, inbox),
            client: sync::State::new(),
            server: None,
            read_only,
            sender: "ann".into(),
            pending: Default::default(),
        }
    }

    /// Syncs until neither side has anything to say; returns how many exchanges
    /// stored changes.
    async fn sync(
        &mut self,
        docs: &Documents,
        f: &Fixture,
        replica: &mut dyn Replica,
    ) -> Result<usize, Failure> {
        let mut stored = 0;
        for _ in 0..20 {
            let Some(m) = replica.generate(&mut self.client) else {
                return Ok(stored);
            };
            let mut state = self.server.take().unwrap_or_default();
            state.set_read_only(self.read_only);
            let mut m = m;
            if self.read_only {
                m.changes = ChunkList::empty();
            }
            let ex = docs
                .exchange(
                    &self.handle,
                    "device-1".into(),
                    state,
                    m,
                    f.ctx(&self.sender),
                    std::mem::take(&mut self.pending),
                )
                .await?;
            stored += usize::from(ex.stored.is_some());
            self.server = Some(ex.state);
            self.pending = ex.pending;
            if let Some(r) = ex.reply {
                replica.receive(&mut self.client, r);
            }
        }
        panic!("the sync did not finish in 20 rounds");
    }

    /// Sends `replica`'s new change, and returns the exchange that stored it. The first
    /// message may carry only heads: Automerge leaves out a change the other side's
    /// Bloom filter seems to have (a false positive, decided by the change's hash) and
    /// sends it a round later.
    async fn exchange_until_stored(
        &mut self,
        docs: &Documents,
        f: &Fixture,
        replica: &mut dyn Replica,
    ) -> Exchanged {
        for _ in 0..5 {
            let m = replica
                .generate(&mut self.client)
                .expect("the client has a change to offer");
            let state = self.server.take().unwrap_or_default();
            let ex = docs
                .exchange(
                    &self.handle,
                    "device-1".into(),
                    state,
                    m,
                    f.ctx(&self.sender),
                    std::mem::take(&mut self.pending),
                )
                .await
                .unwrap();
            if ex.stored.is_some() {
                return ex;
            }
            self.server = Some(ex.state);
            self.pending = ex.pending;
            let reply = ex
                .reply
                .expect("a reply while the client's change is missing");
            replica.receive(&mut self.client, reply);
        }
        panic!("the new change was not stored within 5 rounds");
    }
}

#[tokio::test]
async fn changes_are_stored_before_the_reply_that_acknowledges_them() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut client = AutoCommit::new();
    s.sync(&docs, &f, &mut client).await.unwrap();
    assert_eq!(
        encode_heads(&client.get_heads()),
        f.stored_heads(),
        "a client that starts empty receives the whole stored document"
    );

    let mut insp = f.replica();
    let mut s = Session::open(&docs, &f, false);
    s.sync(&docs, &f, &mut insp).await.unwrap();
    insp.set_answer(&f.item(), Answer::Met, &stamp()).unwrap();
    let ours = insp.heads();
    let ex = s.exchange_until_stored(&docs, &f, &mut insp).await;
    assert_eq!(
        f.stored_heads(),
        encode_heads(&ours),
        "storage holds the change by the time the reply exists"
    );
    let reply = ex.reply.expect("a reply acknowledging the change");
    assert_eq!(
        reply.heads, ours,
        "the reply's heads acknowledge our change"
    );
    assert!(
        docs.sync_state(f.rec.id, "device-1").unwrap().is_some(),
        "the peer's sync state is kept"
    );
    assert!(
        f.storage
            .sync_state(f.rec.id, "device-1")
            .unwrap()
            .is_none(),
        "held in memory, not written with every message"
    );
    assert_eq!(docs.flush_sync_states().unwrap(), 1);
    assert!(
        f.storage
            .sync_state(f.rec.id, "device-1")
            .unwrap()
            .is_some(),
        "written by the flush"
    );
    assert_eq!(docs.flush_sync_states().unwrap(), 0, "and then let go");
    // Reset: gone from memory and from storage, and no flush brings it back.
    s.sync(&docs, &f, &mut insp).await.unwrap();
    docs.reset_sync_state(f.rec.id, "device-1").unwrap();
    assert!(docs.sync_state(f.rec.id, "device-1").unwrap().is_none());
    docs.flush_sync_states().unwrap();
    assert!(
        f.storage
            .sync_state(f.rec.id, "device-1")
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_readers_changes_never_reach_storage() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, true);
    let mut insp = f.replica();
    s.sync(&docs, &f, &mut insp).await.unwrap();
    let before = f.stored_heads();
    insp.set_answer(&f.item(), Answer::Met, &stamp()).unwrap();
    let stored = s.sync(&docs, &f, &mut insp).await.unwrap();
    assert_eq!(stored, 0, "no exchange stored anything");
    assert_eq!(f.stored_heads(), before, "storage is unchanged");
}

#[tokio::test]
async fn malformed_and_oversized_changes_are_refused_before_any_document_is_touched() {
    let mut client = AutoCommit::new();
    client.put(automerge::ROOT, "probe", "x").unwrap();
    let valid = client
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    let scanned = |bytes: &[u8]| decode_message(bytes).and_then(|m| scan_message(&m));
    assert!(scanned(&valid.clone().encode()).is_ok());

    // Garbage where the changes go: Automerge would drop it silently.
    let mut garbage = vec![0x85, 0x6f, 0x4a, 0x83];
    garbage.extend((0..200u8).map(|i| i.wrapping_mul(37)));
    for chunk in [garbage, vec![1, 2, 3], vec![]] {
        let mut m = valid.clone();
        m.changes = ChunkList::from(vec![chunk.clone()]);
        let bytes = m.encode();
        let r = scanned(&bytes);
        assert!(
            matches!(r, Err(Failure::Refused(_))),
            "a malformed chunk {chunk:?} is refused, got {r:?}"
        );
        // A reader's chunks are never looked at (the caller drops them).
        assert!(decode_message(&bytes).is_ok());
    }
    assert!(matches!(
        decode_message(b"not a sync message"),
        Err(Failure::Refused(_))
    ));

    // A compressed change that inflates past the budget.
    let zeros = vec![0u8; limits::MAX_INFLATED_CHANGES + 1];
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &zeros).unwrap();
    let deflated = enc.finish().unwrap();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut n = deflated.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            chunk.push(b);
            break;
        }
        chunk.push(b | 0x80);
    }
    chunk.extend(&deflated);
    let mut m = valid.clone();
    m.changes = ChunkList::from(vec![chunk]);
    let r = scanned(&m.encode());
    assert!(matches!(r, Err(Failure::Limit(_))), "{r:?}");
}

#[tokio::test]
async fn a_document_past_the_size_limit_is_refused_and_nothing_is_lost() {
    let f = fixture();
    let stored = f.storage.load_doc(f.rec.id).unwrap().unwrap();
    let size = stored.snapshot.len();
    let docs = Documents::with_max_doc_bytes(f.storage.clone(), size + 2_000);
    let mut s = Session::open(&docs, &f, false);
    let mut insp = f.replica();
    s.sync(&docs, &f, &mut insp).await.unwrap();

    // 10 KB of a note that does not compress.
    let mut x: u32 = 12345;
    let noise: String = (0..10_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            char::from(b'a' + ((x >> 16) % 26) as u8)
        })
        .collect();
    insp.edit_note(&f.item(), &noise, &stamp()).unwrap();
    let r = s.sync(&docs, &f, &mut insp).await;
    assert!(
        matches!(r, Err(Failure::TooLarge { max, .. }) if max == size + 2_000),
        "the growth is refused, got {r:?}"
    );
    assert_eq!(f.stored_heads(), stored.heads, "nothing was stored");

    // Another peer syncs: the document it gets is the stored one.
    let mut other = Session::open(&docs, &f, false);
    let mut fresh = f.replica();
    other.sync(&docs, &f, &mut fresh).await.unwrap();
    assert_eq!(encode_heads(&fresh.heads()), stored.heads);
    fresh.set_answer(&f.item(), Answer::Met, &stamp()).unwrap();
    assert_eq!(
        other.sync(&docs, &f, &mut fresh).await.unwrap(),
        1,
        "small changes are still stored"
    );
    assert!(
        Failure::TooLarge { size: 1, max: 2 }
            .client_message("D")
            .contains("more than the 2"),
        "the peer is told the limit"
    );
}

#[tokio::test]
async fn a_change_against_the_policy_is_refused_whole_and_the_live_document_stays() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut insp = f.replica();
    s.sync(&docs, &f, &mut insp).await.unwrap();
    let before = f.stored_heads();

    // Ann's own actor, but a change no typed operation makes: the trust is the server's.
    let mut raw = AutoCommit::load(&insp.save())
        .unwrap()
        .with_actor(f.actor.clone());
    let meta = raw.get(automerge::ROOT, "meta").unwrap().unwrap().1;
    raw.put(&meta, "trust", "RTH").unwrap();
    raw.commit();
    let r = s.sync(&docs, &f, &mut raw).await;
    match r {
        Err(Failure::Policy(p)) => {
            assert_eq!(p.code, "forbidden");
            assert_eq!(p.author.as_deref(), Some("ann"));
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    assert_eq!(f.stored_heads(), before, "nothing was stored");
    assert_eq!(
        docs.loaded(),
        1,
        "the live document stayed in memory, untouched"
    );

    // An actor bound to nobody, and one bound to another user.
    let mut stranger = f.replica();
    stranger.set_actor(ActorId::random());
    stranger
        .set_answer(&f.item(), Answer::Met, &stamp())
        .unwrap();
    let mut s2 = Session::open(&docs, &f, false);
    match s2.sync(&docs, &f, &mut stranger).await {
        Err(Failure::Policy(p)) => assert_eq!(p.code, "unknown_actor"),
        other => panic!("expected unknown_actor, got {other:?}"),
    }
    let mut s3 = Session::open(&docs, &f, false);
    s3.sender = "zed".into();
    let mut relayed = f.replica();
    relayed
        .set_answer(&f.item(), Answer::Met, &stamp())
        .unwrap();
    match s3.sync(&docs, &f, &mut relayed).await {
        Err(Failure::Policy(p)) => assert_eq!(p.code, "foreign_actor"),
        other => panic!("expected foreign_actor, got {other:?}"),
    }
    assert_eq!(f.stored_heads(), before, "still nothing stored");

    // An actor of ann's device that was revoked (lost), its change relayed by ann's
    // other device: refused, as the lost device's own would be.
    let ann = f.storage.user_by_name("ann").unwrap().unwrap();
    let lost = f
        .storage
        .add_device(ann.id, "lost tablet", &[7; 32], Utc::now())
        .unwrap();
    let lost_actor = ActorId::random();
    f.storage
        .bind_actor(lost_actor.to_bytes(), "ann", Some(lost), Utc::now())
        .unwrap();
    f.storage.revoke_device(lost).unwrap();
    let mut relayed = f.replica();
    relayed.set_actor(lost_actor);
    relayed
        .set_answer(&f.item(), Answer::Met, &stamp())
        .unwrap();
    let mut s4 = Session::open(&docs, &f, false);
    match s4.sync(&docs, &f, &mut relayed).await {
        Err(Failure::Policy(p)) => assert_eq!(p.code, "revoked_actor"),
        other => panic!("expected revoked_actor, got {other:?}"),
    }
    // And a user taken off the inspection: their own actor no longer writes it.
    f.storage
        .add_user("ian", "Ian", &Role::Inspector, "x")
        .unwrap();
    let ian_actor = ActorId::random();
    f.storage
        .bind_actor(ian_actor.to_bytes(), "ian", None, Utc::now())
        .unwrap();
    let mut unassigned = f.replica();
    unassigned.set_actor(ian_actor);
    unassigned
        .set_answer(&f.item(), Answer::Met, &Stamp::new("ian", Utc::now()))
        .unwrap();
    let mut s5 = Session::open(&docs, &f, false);
    s5.sender = "ian".into();
    match s5.sync(&docs, &f, &mut unassigned).await {
        Err(Failure::Policy(p)) => assert_eq!(p.code, "no_right"),
        other => panic!("expected no_right, got {other:?}"),
    }
    assert_eq!(f.stored_heads(), before, "still nothing stored");

    // The honest change goes through.
    let mut again = Session::open(&docs, &f, false);
    let mut good = f.replica();
    again.sync(&docs, &f, &mut good).await.unwrap();
    good.set_answer(&f.item(), Answer::NotMet, &stamp())
        .unwrap();
    assert_eq!(again.sync(&docs, &f, &mut good).await.unwrap(), 1);
}

#[tokio::test]
async fn a_damaged_stored_document_is_rebuilt_and_served() {
    let f = fixture();
    let stored = f.storage.load_doc(f.rec.id).unwrap().unwrap();
    f.storage
        .compact(f.rec.id, &stored.snapshot, &[0u8; 32])
        .unwrap();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut client = AutoCommit::new();
    s.sync(&docs, &f, &mut client).await.unwrap();
    assert_eq!(
        encode_heads(&client.get_heads()),
        stored.heads,
        "stale heads are rebuilt from the snapshot, which still loads"
    );
    assert_eq!(
        f.stored_heads(),
        stored.heads,
        "the stored heads are mended"
    );
}

#[tokio::test]
async fn other_holders_hear_of_changes_and_idle_documents_leave_memory() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let (c1, inbox1) = docs.connection();
    let (c2, inbox2) = docs.connection();
    let mut s = Session::open(&docs, &f, false);
    let watcher = docs.open(f.rec.id, c2, inbox2.clone());
    let writer = docs.open(f.rec.id, c1, inbox1.clone());
    let mut client = AutoCommit::new();
    s.sync(&docs, &f, &mut client).await.unwrap();
    docs.notify_others(&writer);
    assert_eq!(inbox2.take(), vec![f.rec.id], "the other holder is told");
    assert!(
        inbox1.take().is_empty(),
        "the writer is not told of its own change"
    );

    assert_eq!(docs.evict_idle(Duration::ZERO), 0, "held documents stay");
    drop((s, watcher, writer));
    assert_eq!(docs.loaded(), 1);
    assert_eq!(
        docs.evict_idle(Duration::from_secs(3600)),
        0,
        "recently used documents stay"
    );
    assert_eq!(
        docs.evict_idle(Duration::ZERO),
        1,
        "an idle document leaves"
    );
    assert_eq!(docs.loaded(), 0);
}

#[tokio::test]
async fn the_inspection_state_and_photo_references_follow_the_document() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut insp = f.replica();
    let stamp = stamp();
    insp.change_state(State::InProgress, &stamp).unwrap();
    let hash = "ab".repeat(32);
    insp.attach_photo(
        &f.item(),
        PhotoRef {
            hash: hash.clone(),
            size: 10,
            width: 1,
            height: 1,
            mime: "image/jpeg".into(),
            caption: String::new(),
            captured_at: None,
        },
        &stamp,
    )
    .unwrap();
    let mut s = Session::open(&docs, &f, false);
    s.sync(&docs, &f, &mut insp).await.unwrap();
    assert_eq!(
        f.storage.inspection(f.rec.id).unwrap().unwrap().state,
        State::InProgress,
        "the state column follows the document"
    );
    assert!(
        f.storage.photo_docs(&hash).unwrap().is_empty(),
        "a reference to a photo not yet uploaded gives no claim on it"
    );
    // Ann's upload completes: her reference now counts.
    f.storage.add_blob_uploader(&hash, "ann").unwrap();
    assert_eq!(
        f.storage.photo_docs(&hash).unwrap(),
        vec![f.rec.id],
        "the photo is known to be referred to by the inspection"
    );

    insp.change_state(State::Submitted, &stamp).unwrap();
    s.exchange_until_stored(&docs, &f, &mut insp).await;
    assert_eq!(
        f.storage.inspection(f.rec.id).unwrap().unwrap().state,
        State::Submitted,
        "the state column is in step when the exchange returns"
    );
}

#[tokio::test]
async fn compaction_keeps_every_change_and_the_previous_snapshot() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut insp = f.replica();
    s.sync(&docs, &f, &mut insp).await.unwrap();
    let item = f.item();
    for i in 0..=limits::COMPACT_AFTER {
        insp.edit_note(&item, &format!("note {i}"), &stamp())
            .unwrap();
        s.sync(&docs, &f, &mut insp).await.unwrap();
    }
    assert!(
        f.storage.change_rows(f.rec.id).unwrap() < limits::COMPACT_AFTER,
        "the change rows were compacted"
    );
    let prev = f.storage.previous_doc(f.rec.id).unwrap();
    assert!(prev.snapshot.is_some(), "the snapshot before is kept");
    assert!(prev.changes.len() as i64 > limits::COMPACT_AFTER / 2);
    drop(s);
    docs.evict_idle(Duration::ZERO);
    let mut again = Session::open(&docs, &f, false);
    let mut fresh = AutoCommit::new();
    again.sync(&docs, &f, &mut fresh).await.unwrap();
    assert_eq!(
        fresh.get_heads(),
        insp.heads(),
        "a reload after compaction holds every change"
    );
}

#[tokio::test]
async fn changes_waiting_for_their_dependencies_stay_with_their_connection_and_are_bounded() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut insp = f.replica();
    s.sync(&docs, &f, &mut insp).await.unwrap();
    let item = f.item();
    let before = f.stored_heads();

    // Two changes, the second on the first; a message carries only the second (as when
    // the peer's Bloom filter errs and it leaves the first out).
    insp.set_answer(&item, Answer::Met, &stamp()).unwrap();
    let first = insp.heads();
    insp.edit_note(&item, "Door propped", &stamp()).unwrap();
    insp.edit_note(&item, "Door propped open.", &stamp())
        .unwrap();
    // The later two in one part, as Automerge's own messages join their changes.
    let rest = insp.save_after(&first);
    let mut m = insp
        .generate_sync_message(&mut s.client)
        .expect("a message with the new changes");
    m.changes = ChunkList::from(vec![rest]);
    // As the peer sees it, the first was never sent (it thought the server had it).
    for h in &first {
        s.client.sent_hashes.remove(h);
    }
    let ex = docs
        .exchange(
            &s.handle,
            "device-1".into(),
            s.server.take().unwrap_or_default(),
            m,
            f.ctx("ann"),
            Default::default(),
        )
        .await
        .unwrap();
    assert!(
        ex.stored.is_none(),
        "nothing applies without its dependency"
    );
    assert_eq!(
        ex.pending.parts.len(),
        2,
        "both changes wait with their connection"
    );
    let reply = ex.reply.expect("the server answers");
    assert_eq!(reply.need, first, "and asks for what it depends on");
    assert_eq!(f.stored_heads(), before);

    // Meanwhile another user's change is taken, and held to account for itself only:
    // the waiting change is not in the shared document for it to apply.
    f.storage
        .add_user("rita", "Rita", &Role::Reviewer, "x")
        .unwrap();
    let rita_actor = ActorId::random();
    f.storage
        .bind_actor(rita_actor.to_bytes(), "rita", None, Utc::now())
        .unwrap();
    let mut rita = f.replica();
    rita.set_actor(rita_actor);
    let mut rs = Session::open(&docs, &f, false);
    rs.sender = "rita".into();
    rs.sync(&docs, &f, &mut rita).await.unwrap();
    rita.add_finding(
        wardcheck_core::inspection::NewFinding {
            id: uuid::Uuid::new_v4(),
            severity: wardcheck_core::checklist::Severity::High,
            text: "Unsupported devices in imaging".into(),
            items: vec![],
            recommendation: "Isolate them".into(),
        },
        &Stamp::new("rita", Utc::now()),
    )
    .unwrap();
    assert!(
        rs.sync(&docs, &f, &mut rita).await.unwrap() >= 1,
        "rita's finding is stored"
    );

    // Ann's next message brings the first change: both are taken, checked as hers.
    s.server = Some(ex.state);
    s.pending = ex.pending;
    insp.receive_sync_message(&mut s.client, reply).unwrap();
    s.sync(&docs, &f, &mut insp).await.unwrap();
    let view = {
        let mut c = f.replica();
        let mut cs = Session::open(&docs, &f, false);
        cs.sync(&docs, &f, &mut c).await.unwrap();
        c.view().unwrap()
    };
    assert_eq!(view.responses[&item].note, "Door propped open.");
    assert_eq!(view.findings.len(), 1, "rita's finding is there too");

    // Changes on history the server will never get wait, but only up to the limit.
    let held = f.stored_heads();
    let mut flood = AutoCommit::load(&insp.save())
        .unwrap()
        .with_actor(ActorId::random());
    let mut session = Session::open(&docs, &f, false);
    let mut seed: u64 = 7;
    let mut refused = None;
    for i in 0..(limits::MAX_PENDING_INFLATED / (1 << 20) + 4) {
        flood.put(automerge::ROOT, "hidden", i as i64).unwrap();
        flood.commit();
        let hidden = flood.get_heads();
        let noise: String = (0..(1 << 20))
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((seed >> 33) % 26) as u8)
            })
            .collect();
        flood.put(automerge::ROOT, "noise", noise).unwrap();
        flood.commit();
        let mut m = flood
            .sync()
            .generate_sync_message(&mut sync::State::new())
            .unwrap();
        m.changes = ChunkList::from(vec![flood.save_after(&hidden)]);
        let r = docs
            .exchange(
                &session.handle,
                "device-2".into(),
                sync::State::new(),
                m,
                f.ctx("ann"),
                std::mem::take(&mut session.pending),
            )
            .await;
        let ex = r.unwrap();
        assert!(ex.stored.is_none());
        if let Some(why) = ex.pending.over {
            assert!(ex.pending.parts.is_empty(), "past the budget nothing waits");
            refused = Some(why);
            break;
        }
        assert!(ex.pending.inflated <= limits::MAX_PENDING_INFLATED);
        session.pending = ex.pending;
    }
    assert!(
        refused.is_some(),
        "changes waiting past the limit are dropped"
    );
    assert_eq!(f.stored_heads(), held, "storage holds what it held");
}

#[tokio::test]
async fn sharing_and_closing_in_one_message_still_shares() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut ann = f.replica();
    let mut s = Session::open(&docs, &f, false);
    s.sync(&docs, &f, &mut ann).await.unwrap();
    ann.change_state(State::InProgress, &stamp()).unwrap();
    ann.change_state(State::Submitted, &stamp()).unwrap();
    s.sync(&docs, &f, &mut ann).await.unwrap();

    f.storage
        .add_user("rita", "Rita", &Role::Reviewer, "x")
        .unwrap();
    let actor = ActorId::random();
    f.storage
        .bind_actor(actor.to_bytes(), "rita", None, Utc::now())
        .unwrap();
    let mut rita = f.replica();
    rita.set_actor(actor);
    let mut rs = Session::open(&docs, &f, false);
    rs.sender = "rita".into();
    rs.sync(&docs, &f, &mut rita).await.unwrap();
    // Shared, then closed, offline: both reach the server in one message.
    let by = Stamp::new("rita", Utc::now());
    rita.change_state(State::SharedWithTrust, &by).unwrap();
    rita.change_state(State::Closed, &by).unwrap();
    rs.sync(&docs, &f, &mut rita).await.unwrap();
    let rec = f.storage.inspection(f.rec.id).unwrap().unwrap();
    assert_eq!(rec.state, State::Closed);
    assert!(
        rec.shared_at.is_some(),
        "the trust was shown the inspection on its way to closed"
    );
}
