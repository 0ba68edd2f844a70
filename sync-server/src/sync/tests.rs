//! The document registry in process, against real SQLite storage: what is stored
//! when, what a failure leaves behind, and when documents leave memory.

use std::sync::Arc;
use std::time::Duration;

use automerge::sync::{self, ChunkList, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit};
use chrono::Utc;
use wardcheck_core::inspection::{Inspection, PhotoRef, Stamp, State};

use super::docs::{DocHandle, Documents, Exchanged, Failure, decode_message};
use crate::inspections::{self, CreateInspection, encode_heads};
use crate::limits;
use crate::storage::{InspectionRecord, SqliteStorage, Storage};

struct Fixture {
    _dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    rec: InspectionRecord,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(dir.path()).unwrap());
    let rec = inspections::create(
        &*storage,
        &CreateInspection {
            trust: "RJ1".into(),
            sites: vec![],
            checklist: "cqc-onsite-cyber".into(),
            assign: vec![],
        },
        "test",
        Utc::now(),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        storage,
        rec,
    }
}

impl Fixture {
    fn stored_heads(&self) -> Vec<u8> {
        self.storage.load_doc(self.rec.id).unwrap().unwrap().heads
    }
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
    index: Option<InspectionRecord>,
}

impl Session {
    fn open(docs: &Documents, f: &Fixture, read_only: bool) -> Session {
        let (conn, inbox) = docs.connection();
        Session {
            handle: docs.open(f.rec.id, conn, inbox),
            client: sync::State::new(),
            server: None,
            read_only,
            index: Some(f.rec.clone()),
        }
    }

    /// Syncs until neither side has anything to say; returns how many exchanges
    /// stored changes.
    async fn sync(
        &mut self,
        docs: &Documents,
        replica: &mut dyn Replica,
    ) -> Result<usize, Failure> {
        let mut stored = 0;
        for _ in 0..20 {
            let Some(m) = replica.generate(&mut self.client) else {
                return Ok(stored);
            };
            let mut state = self.server.take().unwrap_or_default();
            state.set_read_only(self.read_only);
            let ex = docs
                .exchange(
                    &self.handle,
                    "device-1".into(),
                    state,
                    m,
                    self.index.clone(),
                )
                .await?;
            stored += usize::from(ex.stored.is_some());
            self.server = Some(ex.state);
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
        replica: &mut dyn Replica,
        index: Option<InspectionRecord>,
    ) -> Exchanged {
        for _ in 0..5 {
            let m = replica
                .generate(&mut self.client)
                .expect("the client has a change to offer");
            let state = self.server.take().unwrap_or_default();
            let ex = docs
                .exchange(&self.handle, "device-1".into(), state, m, index.clone())
                .await
                .unwrap();
            if ex.stored.is_some() {
                return ex;
            }
            self.server = Some(ex.state);
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
    s.sync(&docs, &mut client).await.unwrap();
    assert_eq!(
        encode_heads(&client.get_heads()),
        f.stored_heads(),
        "a client that starts empty receives the whole stored document"
    );

    client.put(automerge::ROOT, "probe", "one").unwrap();
    let ours = client.get_heads();
    let ex = s.exchange_until_stored(&docs, &mut client, None).await;
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
        f.storage
            .sync_state(f.rec.id, "device-1")
            .unwrap()
            .is_some(),
        "the peer's sync state is kept"
    );
}

#[tokio::test]
async fn a_readers_changes_never_reach_storage() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, true);
    let mut client = AutoCommit::new();
    s.sync(&docs, &mut client).await.unwrap();
    let before = f.stored_heads();
    assert_eq!(
        encode_heads(&client.get_heads()),
        before,
        "a reader still receives the document"
    );

    client
        .put(automerge::ROOT, "probe", "from a reader")
        .unwrap();
    let stored = s.sync(&docs, &mut client).await.unwrap();
    assert_eq!(stored, 0, "no exchange stored anything");
    assert_eq!(f.stored_heads(), before, "storage is unchanged");
}

#[tokio::test]
async fn malformed_changes_are_refused_before_any_document_is_touched() {
    let mut client = AutoCommit::new();
    client.put(automerge::ROOT, "probe", "x").unwrap();
    let valid = client
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    assert!(
        decode_message(&valid.clone().encode()).is_ok(),
        "a valid message decodes"
    );

    // Garbage where the changes go: Automerge would drop it silently.
    let mut garbage = vec![0x85, 0x6f, 0x4a, 0x83];
    garbage.extend((0..200u8).map(|i| i.wrapping_mul(37)));
    for chunk in [garbage, vec![1, 2, 3], vec![]] {
        let mut m = valid.clone();
        m.changes = ChunkList::from(vec![chunk.clone()]);
        let r = decode_message(&m.encode());
        assert!(
            matches!(r, Err(Failure::Refused(_))),
            "a malformed chunk {chunk:?} is refused, got {r:?}"
        );
    }
    assert!(matches!(
        decode_message(b"not a sync message"),
        Err(Failure::Refused(_))
    ));
}

#[tokio::test]
async fn a_document_past_the_size_limit_is_refused() {
    let f = fixture();
    let stored = f.storage.load_doc(f.rec.id).unwrap().unwrap();
    let size = stored.snapshot.len();
    let docs = Documents::with_max_doc_bytes(f.storage.clone(), size + 2_000);
    let mut s = Session::open(&docs, &f, false);
    let mut client = AutoCommit::new();
    s.sync(&docs, &mut client).await.unwrap();

    // 10 KB that does not compress.
    let mut x: u32 = 12345;
    let noise: String = (0..10_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            char::from(b'a' + ((x >> 16) % 26) as u8)
        })
        .collect();
    client.put(automerge::ROOT, "big", noise).unwrap();
    let r = s.sync(&docs, &mut client).await;
    assert!(
        matches!(r, Err(Failure::TooLarge { max, .. }) if max == size + 2_000),
        "the growth is refused, got {r:?}"
    );
    assert_eq!(f.stored_heads(), stored.heads, "nothing was stored");
    assert_eq!(docs.loaded(), 0, "the document left memory unsaved");

    // Another peer syncs: the document is reloaded from storage, without the refused change.
    let mut other = Session::open(&docs, &f, false);
    let mut fresh = AutoCommit::new();
    other.sync(&docs, &mut fresh).await.unwrap();
    assert_eq!(encode_heads(&fresh.get_heads()), stored.heads);
    fresh.put(automerge::ROOT, "small", "ok").unwrap();
    assert_eq!(
        other.sync(&docs, &mut fresh).await.unwrap(),
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
async fn damaged_storage_is_not_served() {
    let f = fixture();
    let stored = f.storage.load_doc(f.rec.id).unwrap().unwrap();
    f.storage
        .compact(f.rec.id, &stored.snapshot, &[0u8; 32])
        .unwrap();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let r = s.sync(&docs, &mut AutoCommit::new()).await;
    assert!(
        matches!(r, Err(Failure::Load(_))),
        "a document that does not reach its stored heads is refused, got {r:?}"
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
    s.sync(&docs, &mut client).await.unwrap();
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
    let checklist = inspections::pinned_checklist(&*f.storage, &f.rec).unwrap();
    let stored = f.storage.load_doc(f.rec.id).unwrap().unwrap();
    let mut insp =
        Inspection::load(&stored.snapshot, checklist.clone(), ActorId::random()).unwrap();
    let stamp = Stamp::new("ann", Utc::now());
    insp.change_state(State::InProgress, &stamp).unwrap();
    let item = checklist
        .items()
        .find(|(s, _)| s.scope == wardcheck_core::checklist::Scope::Inspection)
        .map(|(_, i)| i.id.clone())
        .unwrap();
    let hash = "ab".repeat(32);
    insp.attach_photo(
        &item,
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
    s.sync(&docs, &mut insp).await.unwrap();
    assert_eq!(
        f.storage.inspection(f.rec.id).unwrap().unwrap().state,
        State::InProgress,
        "the state column follows the document"
    );
    assert_eq!(
        f.storage.photo_docs(&hash).unwrap(),
        vec![f.rec.id],
        "the photo is known to be referred to by the inspection"
    );

    // The same, brought in step inside the exchange (as the HTTP API asks).
    insp.change_state(State::Submitted, &stamp).unwrap();
    s.exchange_until_stored(&docs, &mut insp, Some(f.rec.clone()))
        .await;
    assert_eq!(
        f.storage.inspection(f.rec.id).unwrap().unwrap().state,
        State::Submitted,
        "the state column is in step when the exchange returns"
    );
}

#[tokio::test]
async fn compaction_keeps_every_change() {
    let f = fixture();
    let docs = Documents::new(f.storage.clone());
    let mut s = Session::open(&docs, &f, false);
    let mut client = AutoCommit::new();
    s.sync(&docs, &mut client).await.unwrap();
    for i in 0..=limits::COMPACT_AFTER {
        client.put(automerge::ROOT, "n", i).unwrap();
        s.sync(&docs, &mut client).await.unwrap();
    }
    assert!(
        f.storage.change_rows(f.rec.id).unwrap() < limits::COMPACT_AFTER,
        "the change rows were compacted"
    );
    drop(s);
    docs.evict_idle(Duration::ZERO);
    let mut again = Session::open(&docs, &f, false);
    let mut fresh = AutoCommit::new();
    again.sync(&docs, &mut fresh).await.unwrap();
    assert_eq!(
        fresh.get_heads(),
        client.get_heads(),
        "a reload after compaction holds every change"
    );
}
