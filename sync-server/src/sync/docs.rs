//! The documents the server holds in memory, and every Automerge call it makes on
//! them.
//!
//! A document is loaded from storage on first use, checked against its stored heads,
//! and kept behind its own lock while connections use it. Every exchange runs on the
//! blocking pool under that lock, and every Automerge call in it runs under
//! `catch_unwind`: a peer's input can make Automerge fail or panic (SYNC-NOTES §5),
//! and after that the in-memory document may be damaged. So on any failure the
//! document is dropped from memory without being saved, and the next user reloads it
//! from storage, which holds only what was committed.
//!
//! Changes are committed to storage before the reply that acknowledges them is
//! generated: a peer that sees our heads include its change may forget it.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Automerge, Change, ChangeHash, LoadOptions, OnPartialLoad};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;
use wardcheck_core::inspection::index_facts;

use crate::inspections::encode_heads;
use crate::limits;
use crate::storage::{InspectionRecord, Storage};

/// The documents in memory, each with the connections subscribed to it.
pub struct Documents {
    storage: Arc<dyn Storage>,
    entries: Mutex<HashMap<Uuid, Arc<Entry>>>,
    next_connection: AtomicU64,
    max_doc_bytes: usize,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("entries", &lock(&self.entries).len())
            .field("max_doc_bytes", &self.max_doc_bytes)
            .finish_non_exhaustive()
    }
}

/// One document's place in memory.
struct Entry {
    id: Uuid,
    /// `None` until loaded, and again after a failure dropped it.
    slot: Arc<tokio::sync::Mutex<Option<Loaded>>>,
    /// Connections holding a [`DocHandle`]; changed only under the `entries` lock
    /// when it grows, so eviction never races with a new user.
    users: AtomicUsize,
    last_used: Mutex<Instant>,
    subscribers: Mutex<HashMap<u64, Arc<Inbox>>>,
}

impl Entry {
    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }
}

/// A loaded document and what storage holds of it.
struct Loaded {
    doc: AutoCommit,
    /// The heads storage holds: new changes are those after these.
    persisted: Vec<ChangeHash>,
    /// Bytes of the stored snapshot plus changes.
    stored_bytes: usize,
    /// Change rows stored since the last compaction.
    change_rows: usize,
    /// For inspection documents: the photo references last recorded, so unchanged
    /// lists are not rewritten.
    photo_refs: Option<Vec<String>>,
}

/// Where a connection learns that documents it follows have changed.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    dirty: Mutex<HashSet<Uuid>>,
    pub(crate) notify: Notify,
}

impl Inbox {
    /// The documents changed since the last call.
    pub(crate) fn take(&self) -> Vec<Uuid> {
        lock(&self.dirty).drain().collect()
    }
}

/// A connection's hold on one document: keeps it in memory and subscribed to its
/// changes until dropped.
pub(crate) struct DocHandle {
    entry: Arc<Entry>,
    connection: u64,
}

impl std::fmt::Debug for DocHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocHandle")
            .field("doc", &self.entry.id)
            .field("connection", &self.connection)
            .finish()
    }
}

impl Drop for DocHandle {
    fn drop(&mut self) {
        lock(&self.entry.subscribers).remove(&self.connection);
        self.entry.touch();
        self.entry.users.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why an exchange failed. Every failure drops the document from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Automerge refused the peer's sync message.
    Refused(String),
    /// Automerge panicked.
    Panicked(String),
    /// Applying the message would grow the document past the limit.
    TooLarge { size: usize, max: usize },
    /// The stored document could not be loaded, or did not match its heads.
    Load(String),
    /// Storage could not commit the changes.
    Storage(String),
}

impl Failure {
    /// What the peer is told: enough to act on, no internals.
    pub(crate) fn client_message(&self, doc_id: &str) -> String {
        match self {
            Failure::Refused(e) => format!(
                "the sync message for document {doc_id} was refused ({e}); the session is closed and will start afresh"
            ),
            Failure::Panicked(_) => format!(
                "the sync message for document {doc_id} could not be applied; the session is closed and will start afresh"
            ),
            Failure::TooLarge { size, max } => format!(
                "document {doc_id} would grow to {size} bytes, more than the {max} the server keeps; the changes were not stored"
            ),
            Failure::Load(_) | Failure::Storage(_) => {
                format!("the server could not store or load document {doc_id}; try again later")
            }
        }
    }

    /// A short code for the audit log.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::Panicked(_) => "panic",
            Failure::TooLarge { .. } => "too_large",
            Failure::Load(_) => "load_failed",
            Failure::Storage(_) => "storage_failed",
        }
    }
}

/// What an exchange produced.
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub state: sync::State,
    /// The message to send back, if there is anything to say.
    pub reply: Option<sync::Message>,
    /// Bytes committed to storage, when the message brought new changes.
    pub stored: Option<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map operations that cannot leave the map
    // inconsistent, so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f`, turning a panic into a [`Failure`].
fn guarded<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(Failure::Panicked(text))
        }
    }
}

/// Decodes a peer's sync message and checks every chunk of changes in it, never
/// panicking. Nothing here touches a document.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<sync::Message, Failure> {
    guarded(|| {
        let m = sync::Message::decode(bytes)
            .map_err(|e| Failure::Refused(format!("not an Automerge sync message: {e}")))?;
        for part in m.changes.iter() {
            check_chunks(part)?;
        }
        Ok(m)
    })
}

/// Parses the chunks of a sync message's changes strictly. Receiving a sync message
/// on a document that is not empty drops whatever part of the changes does not
/// parse, without an error (SYNC-NOTES §1, `load_incremental`), so a malformed
/// message would otherwise pass unnoticed.
///
/// A part holds one or more chunks, each: 4 magic bytes, a 4-byte checksum (the
/// start of the SHA-256 of what follows), a type byte (0 a document, 1 a change, 2 a
/// compressed change), the body's length (LEB128) and the body. A version 1 message
/// has one change per part; a version 2 message puts everything in one part, a whole
/// document or changes one after another.
fn check_chunks(part: &[u8]) -> Result<(), Failure> {
    let refused = |e: &dyn std::fmt::Display| {
        Failure::Refused(format!(
            "a chunk of changes in the sync message is malformed: {e}"
        ))
    };
    if part.is_empty() {
        return Err(refused(&"it is empty"));
    }
    let mut rest = part;
    while !rest.is_empty() {
        let (typ, len_bytes, body_len) =
            chunk_header(rest).ok_or_else(|| refused(&"its header is cut short"))?;
        let end = 9usize
            .checked_add(len_bytes)
            .and_then(|n| n.checked_add(body_len))
            .filter(|&n| n <= rest.len())
            .ok_or_else(|| refused(&"it is shorter than its header says"))?;
        let (chunk, next) = rest.split_at(end);
        if chunk[..4] != MAGIC {
            return Err(refused(&"it does not start with the chunk magic bytes"));
        }
        match typ {
            1 => {
                let hash = Sha256::digest(&chunk[8..]);
                if hash[..4] != chunk[4..8] {
                    return Err(refused(&"its checksum does not match"));
                }
                Change::try_from(chunk).map_err(|e| refused(&e))?;
            }
            // A compressed change's checksum is of its uncompressed form: left to
            // Automerge, which drops a change whose checksum fails.
            2 => {
                Change::try_from(chunk).map_err(|e| refused(&e))?;
            }
            _ => {
                Automerge::load_with_options(
                    chunk,
                    LoadOptions::new().on_partial_load(OnPartialLoad::Error),
                )
                .map_err(|e| refused(&e))?;
            }
        }
        rest = next;
    }
    Ok(())
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Decodes a stored sync state; anything unreadable starts afresh.
pub(crate) fn decode_state(bytes: Option<Vec<u8>>) -> sync::State {
    bytes
        .and_then(|b| {
            guarded(|| sync::State::decode(&b).map_err(|e| Failure::Refused(e.to_string()))).ok()
        })
        .unwrap_or_default()
}

/// A chunk's type, the length of its LEB128 body length, and the body length.
fn chunk_header(chunk: &[u8]) -> Option<(u8, usize, usize)> {
    let typ = *chunk.get(8)?;
    let mut value: u64 = 0;
    for (i, b) in chunk.get(9..)?.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((typ, i + 1, usize::try_from(value).ok()?));
        }
    }
    None
}

fn load(storage: &dyn Storage, id: Uuid) -> Result<Loaded, Failure> {
    let stored = storage
        .load_doc(id)
        .map_err(|e| Failure::Load(e.to_string()))?
        .ok_or_else(|| Failure::Load(format!("document {id} is not stored")))?;
    let mut doc =
        AutoCommit::load(&stored.snapshot).map_err(|e| Failure::Load(format!("snapshot: {e}")))?;
    for chunk in &stored.changes {
        doc.load_incremental(chunk)
            .map_err(|e| Failure::Load(format!("changes: {e}")))?;
    }
    // `load_incremental` drops what it cannot parse without an error: the heads
    // stored beside the data are the check that all of it loaded.
    let heads = doc.get_heads();
    if encode_heads(&heads) != stored.heads {
        return Err(Failure::Load(format!(
            "document {id} does not reach its stored heads: the stored data is damaged"
        )));
    }
    Ok(Loaded {
        doc,
        persisted: heads,
        stored_bytes: stored.snapshot.len() + stored.changes.iter().map(Vec::len).sum::<usize>(),
        change_rows: stored.changes.len(),
        photo_refs: None,
    })
}

impl Documents {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Documents {
            storage,
            entries: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            max_doc_bytes: limits::MAX_DOC_BYTES,
        }
    }

    /// The same, refusing documents larger than `max` bytes (for tests).
    pub fn with_max_doc_bytes(storage: Arc<dyn Storage>, max: usize) -> Self {
        Documents {
            max_doc_bytes: max,
            ..Documents::new(storage)
        }
    }

    /// How many documents are in memory now.
    pub fn loaded(&self) -> usize {
        lock(&self.entries)
            .values()
            // A document being worked on is in memory.
            .filter(|e| e.slot.try_lock().map_or(true, |s| s.is_some()))
            .count()
    }

    /// Drops documents that no connection holds and none has touched for `idle`;
    /// returns how many.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|_, e| {
            e.users.load(Ordering::Acquire) > 0 || lock(&e.last_used).elapsed() < idle
        });
        before - entries.len()
    }

    /// Evicts idle documents from memory, forever.
    pub async fn evict_idle_forever(&self) {
        let mut tick = tokio::time::interval(limits::DOC_IDLE / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let n = self.evict_idle(limits::DOC_IDLE);
            if n > 0 {
                tracing::debug!(
                    evicted = n,
                    loaded = self.loaded(),
                    "idle documents left memory"
                );
            }
        }
    }

    /// A new connection's id and inbox.
    pub(crate) fn connection(&self) -> (u64, Arc<Inbox>) {
        (
            self.next_connection.fetch_add(1, Ordering::Relaxed),
            Arc::new(Inbox::default()),
        )
    }

    /// Holds document `id` for `connection`, which hears of its changes in `inbox`.
    pub(crate) fn open(&self, id: Uuid, connection: u64, inbox: Arc<Inbox>) -> DocHandle {
        let entry = {
            let mut entries = lock(&self.entries);
            let entry = entries
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(Entry {
                        id,
                        slot: Arc::new(tokio::sync::Mutex::new(None)),
                        users: AtomicUsize::new(0),
                        last_used: Mutex::new(Instant::now()),
                        subscribers: Mutex::new(HashMap::new()),
                    })
                })
                .clone();
            entry.users.fetch_add(1, Ordering::AcqRel);
            entry
        };
        lock(&entry.subscribers).insert(connection, inbox);
        DocHandle { entry, connection }
    }

    /// Tells every other connection holding the document that it changed.
    pub(crate) fn notify_others(&self, handle: &DocHandle) {
        let id = handle.entry.id;
        for (conn, inbox) in lock(&handle.entry.subscribers).iter() {
            if *conn != handle.connection {
                lock(&inbox.dirty).insert(id);
                inbox.notify.notify_one();
            }
        }
    }

    /// Runs `f` on the loaded document (loading it first) on the blocking pool,
    /// under the document's lock. On failure, or a panic anywhere, the document is
    /// left out of memory.
    async fn with_doc<R: Send + 'static>(
        &self,
        handle: &DocHandle,
        f: impl FnOnce(&mut Loaded, &dyn Storage) -> Result<R, Failure> + Send + 'static,
    ) -> Result<R, Failure> {
        let mut guard = handle.entry.slot.clone().lock_owned().await;
        let storage = self.storage.clone();
        let id = handle.entry.id;
        let res = tokio::task::spawn_blocking(move || {
            // Out of the slot while in use: if anything panics past `guarded`, the
            // slot stays empty and the next user reloads from storage.
            let mut loaded = match guard.take() {
                Some(l) => l,
                None => guarded(|| load(&*storage, id))?,
            };
            let r = guarded(|| f(&mut loaded, &*storage))?;
            *guard = Some(loaded);
            Ok(r)
        })
        .await;
        handle.entry.touch();
        match res {
            Ok(r) => r,
            Err(e) => Err(Failure::Panicked(e.to_string())),
        }
    }

    /// Receives a peer's sync message, commits any new changes, then generates the
    /// reply. `peer` keys the stored sync state. `index` is the inspection whose
    /// state column and photo references follow this document, if it is one and
    /// they are to be brought in step before this returns.
    pub(crate) async fn exchange(
        &self,
        handle: &DocHandle,
        peer: String,
        mut state: sync::State,
        message: sync::Message,
        index: Option<InspectionRecord>,
    ) -> Result<Exchanged, Failure> {
        let max = self.max_doc_bytes;
        let id = handle.entry.id;
        self.with_doc(handle, move |loaded, storage| {
            let incoming: usize = message.changes.iter().map(<[u8]>::len).sum();
            if incoming > max {
                return Err(Failure::TooLarge {
                    size: incoming,
                    max,
                });
            }
            let before = encode_heads(&loaded.doc.get_heads());
            loaded
                .doc
                .sync()
                .receive_sync_message(&mut state, message)
                .map_err(|e| Failure::Refused(e.to_string()))?;
            let heads = loaded.doc.get_heads();
            let mut stored = None;
            if encode_heads(&heads) != before {
                let new = loaded.doc.save_after(&loaded.persisted);
                let size = loaded.stored_bytes + new.len();
                if size > max {
                    return Err(Failure::TooLarge { size, max });
                }
                storage
                    .append_changes(id, &new, &encode_heads(&heads))
                    .map_err(|e| Failure::Storage(e.to_string()))?;
                loaded.persisted = heads;
                loaded.stored_bytes = size;
                loaded.change_rows += 1;
                stored = Some(new.len());
                compact_if_due(loaded, storage, id);
                if let Some(rec) = &index {
                    // Derived columns: a failure is logged; the changes are stored.
                    if let Err(e) = guarded(|| update_index(loaded, storage, rec)) {
                        tracing::warn!(doc = %id, error = ?e, "updating the inspection's state and photo references failed");
                    }
                }
            }
            let reply = loaded.doc.sync().generate_sync_message(&mut state);
            // Only shared heads are kept; losing them costs a longer next sync.
            if let Err(e) = storage.put_sync_state(id, &peer, &state.encode()) {
                tracing::warn!(doc = %id, %peer, error = %e, "saving a sync state failed");
            }
            Ok(Exchanged {
                state,
                reply,
                stored,
            })
        })
        .await
    }

    /// The next message for a peer after the document changed elsewhere.
    pub(crate) async fn generate(
        &self,
        handle: &DocHandle,
        mut state: sync::State,
    ) -> Result<(sync::State, Option<sync::Message>), Failure> {
        self.with_doc(handle, move |loaded, _| {
            let m = loaded.doc.sync().generate_sync_message(&mut state);
            Ok((state, m))
        })
        .await
    }
}

/// Replaces the stored snapshot and changes with one snapshot when enough change
/// rows have gathered. The changes are already durable, so a failure is only logged.
fn compact_if_due(loaded: &mut Loaded, storage: &dyn Storage, id: Uuid) {
    if loaded.change_rows as i64 <= limits::COMPACT_AFTER {
        return;
    }
    let snapshot = loaded.doc.save();
    match storage.compact(id, &snapshot, &encode_heads(&loaded.persisted)) {
        Ok(()) => {
            loaded.stored_bytes = snapshot.len();
            loaded.change_rows = 0;
        }
        Err(e) => tracing::warn!(doc = %id, error = %e, "compacting a document failed"),
    }
}

/// Keeps an inspection's state column and photo references in step with its
/// document (whose id is the inspection's), read through core's view.
fn update_index(
    loaded: &mut Loaded,
    storage: &dyn Storage,
    rec: &InspectionRecord,
) -> Result<(), Failure> {
    // Only the state and the photo hashes are needed: read them directly rather than
    // building the whole typed view on every received change.
    let facts = index_facts(&loaded.doc).map_err(|e| Failure::Load(e.to_string()))?;
    if facts.state != rec.state {
        storage
            .set_state(rec.id, facts.state)
            .map_err(|e| Failure::Storage(e.to_string()))?;
    }
    let photos = facts.photos;
    if loaded.photo_refs.as_ref() != Some(&photos) {
        storage
            .set_photo_refs(rec.id, &photos)
            .map_err(|e| Failure::Storage(e.to_string()))?;
        loaded.photo_refs = Some(photos);
    }
    Ok(())
}
