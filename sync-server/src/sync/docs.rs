//! The documents the server holds in memory, and every Automerge call it makes on them.
//!
//! A document is loaded from storage on first use, checked against its stored heads
//! (and rebuilt from what is still good when it does not reach them: [`rebuild`]), and
//! kept behind its own lock while connections use it, as two copies:
//!
//! - the **live** copy is exactly what storage holds;
//! - the **trial** copy is the live one plus whatever a peer sent that Automerge could not
//!   apply yet (changes whose dependencies have not arrived); every received change is
//!   applied here first.
//!
//! A change is accepted only when all of this holds (SYNC-NOTES §5: a peer's input can
//! make Automerge fail, panic, or leave a document that no longer loads):
//!
//! 1. the message's chunks stayed within the byte and operation budgets while they were
//!    inflated ([`decode_message`]);
//! 2. applying it to the trial copy did not fail or panic;
//! 3. every new change passes the guard: bound actor, the author's rights, the write
//!    policy ([`super::guard`]);
//! 4. the changes in the form storage keeps them (`save_after`) load onto the live copy
//!    (`load_incremental`, as every later load will) and reach the trial copy's heads.
//!
//! Then they are committed to storage, and only then acknowledged. A change that fails
//! is refused whole: nothing stored, nothing forwarded; the trial copy is dropped (it is
//! made again from the live one), and the live copy, other connections and other
//! documents are untouched. If the live copy itself may be damaged (step 4 failed, or a
//! panic outside the trial copy), the document leaves memory unsaved and the next user
//! reloads it from storage, which holds only what was accepted.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use tokio::sync::Notify;
use uuid::Uuid;
use wardcheck_core::chunks;
use wardcheck_core::inspection::{current_state, index_facts};
use wardcheck_core::policy::DocKind;
use wardcheck_core::store::load_checked;

use super::guard::{self, DocContext, Refused};
use crate::inspections::encode_heads;
use crate::limits;
use crate::storage::{AuditEvent, Rebuilt, Storage, StorageError, StoredDoc};

/// The documents in memory, each with the connections subscribed to it.
pub struct Documents {
    storage: Arc<dyn Storage>,
    /// Who each actor is bound to, as the guard last read it.
    authors: Arc<guard::Authors>,
    entries: Mutex<HashMap<Uuid, Arc<Entry>>>,
    next_connection: AtomicU64,
    max_doc_bytes: usize,
    /// Each peer's sync state as its last exchange left it, until written
    /// ([`Documents::flush_sync_states`]): losing one costs that peer a longer next sync,
    /// so it is not worth a commit of its own on every message.
    sync_states: Arc<Mutex<HeldSyncStates>>,
    /// Held by a flush while it writes, and by a reset: a reset never lands between a
    /// flush's copy and its write (which would write the reset state back).
    sync_state_writes: Mutex<()>,
}

/// Encoded sync states by (document, peer).
type HeldSyncStates = HashMap<(Uuid, String), Vec<u8>>;

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
    /// Event streams told of changes ([`Watch`]): they keep the entry, not the document,
    /// and are not counted among its followers.
    watchers: Mutex<HashMap<u64, Arc<Inbox>>>,
}

impl Entry {
    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }
}

/// A loaded document and what storage holds of it.
struct Loaded {
    /// Exactly what storage holds.
    doc: AutoCommit,
    /// Where received changes are applied first; `None` until needed, and after a
    /// refusal (made again from `doc`).
    trial: Option<AutoCommit>,
    /// The heads storage holds: new changes are those after these.
    persisted: Vec<ChangeHash>,
    /// Bytes of the stored snapshot plus changes.
    stored_bytes: usize,
    /// Change rows stored since the last compaction.
    change_rows: usize,
    /// For inspection documents: the photo references last recorded, so unchanged
    /// lists are not rewritten.
    photo_refs: Option<Vec<String>>,
    /// For inspection documents: the state last written to the record's column.
    indexed_state: Option<wardcheck_core::inspection::State>,
    /// Set when `doc` may differ from storage: the document then leaves memory.
    damaged: bool,
}

impl Loaded {
    fn new(doc: AutoCommit, stored_bytes: usize, change_rows: usize) -> Self {
        let mut doc = doc;
        let persisted = doc.get_heads();
        Loaded {
            doc,
            trial: None,
            persisted,
            stored_bytes,
            change_rows,
            photo_refs: None,
            indexed_state: None,
            damaged: false,
        }
    }

    /// The trial copy, made from the live one when there is none.
    fn trial(&mut self) -> &mut AutoCommit {
        let doc = &mut self.doc;
        self.trial.get_or_insert_with(|| doc.fork())
    }
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

/// An event stream's hold on one document's changes ([`Documents::watch`]).
pub(crate) struct Watch {
    entry: Arc<Entry>,
    connection: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock(&self.entry.watchers).remove(&self.connection);
    }
}

impl DocHandle {
    /// How many connections follow the document now (this one too).
    pub(crate) fn followers(&self) -> usize {
        lock(&self.entry.subscribers).len()
    }
}

impl Drop for DocHandle {
    fn drop(&mut self) {
        lock(&self.entry.subscribers).remove(&self.connection);
        self.entry.touch();
        self.entry.users.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Automerge refused the peer's sync message, or its chunks are malformed.
    Refused(String),
    /// The message's changes inflate or expand past the limits.
    Limit(String),
    /// Changes waiting for their dependencies went past their limit; what applied was
    /// stored.
    Waiting(String),
    /// A change broke the record's rules: its author, their rights, the write policy.
    Policy(Box<Refused>),
    /// Automerge panicked.
    Panicked(String),
    /// Applying the message would grow the document past the limit.
    TooLarge { size: usize, max: usize },
    /// The changes would not load back from the form storage keeps them in.
    Unstorable(String),
    /// The stored document could not be loaded, or rebuilt.
    Load(String),
    /// Storage could not commit the changes.
    Storage(String),
    /// Another server process stored changes to the document since this one's copy was
    /// read: nothing was stored, and the copy left memory ([`Documents::exchange`]
    /// tries again on a fresh one).
    Stale(String),
}

impl Failure {
    /// What the peer is told: enough to act on, no internals.
    pub(crate) fn client_message(&self, doc_id: &str) -> String {
        match self {
            Failure::Refused(e) => format!(
                "the sync message for document {doc_id} was refused ({e}); the session is closed and will start afresh"
            ),
            Failure::Limit(e) => format!(
                "the sync message for document {doc_id} was refused: {e}; nothing of it was stored"
            ),
            Failure::Waiting(e) => format!(
                "changes to document {doc_id} that wait for changes they depend on were dropped ({e}); what could be applied was stored; the session is closed and will start afresh"
            ),
            Failure::Policy(r) => format!(
                "change {} to document {doc_id} was refused ({}): {}; nothing of it was stored",
                r.change, r.code, r.message
            ),
            Failure::Panicked(_) => format!(
                "the sync message for document {doc_id} could not be applied; the session is closed and will start afresh"
            ),
            Failure::TooLarge { size, max } => format!(
                "document {doc_id} would grow to {size} bytes, more than the {max} the server keeps; the changes were not stored"
            ),
            Failure::Unstorable(_) => format!(
                "the changes to document {doc_id} do not load back from the form the server stores; they were not stored"
            ),
            Failure::Load(_) | Failure::Storage(_) | Failure::Stale(_) => {
                format!("the server could not store or load document {doc_id}; try again later")
            }
        }
    }

    /// A short stable code, for the peer and the audit log.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::Limit(_) | Failure::Waiting(_) => "too_large",
            Failure::Policy(r) => r.code,
            Failure::Panicked(_) => "panic",
            Failure::TooLarge { .. } => "too_large",
            Failure::Unstorable(_) => "unstorable",
            Failure::Load(_) => "load_failed",
            Failure::Storage(_) => "storage_failed",
            Failure::Stale(_) => "changed_elsewhere",
        }
    }

    /// Whether a peer's change was refused (as opposed to the server failing).
    pub(crate) fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Failure::Load(_) | Failure::Storage(_) | Failure::Stale(_)
        )
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
    /// The peer's changes that wait for changes they depend on (see
    /// [`Documents::exchange`]): kept by the connection and given back with its next
    /// message.
    pub pending: Waiting,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map operations that cannot leave the map
    // inconsistent, so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `f`, turning a panic into a [`Failure`].
fn guarded<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => Err(Failure::Panicked(panic_text(panic))),
    }
}

/// Decodes a peer's sync message: its structure only (the changes stay as the bytes the
/// peer sent, never inflated). Never panics.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<sync::Message, Failure> {
    guarded(|| {
        sync::Message::decode(bytes)
            .map_err(|e| Failure::Refused(format!("not an Automerge sync message: {e}")))
    })
}

/// Walks every chunk of a writer's changes under the message's budget
/// ([`wardcheck_core::chunks`]): sizes are counted after decompression, while
/// inflating, and operations from their run headers, so nothing past the limits is ever
/// held in full. Returns the bytes they inflate to. Never panics.
pub(crate) fn scan_message(m: &sync::Message) -> Result<usize, Failure> {
    guarded(|| {
        let mut budget = chunks::Budget::new(chunks::Limits {
            inflated_bytes: limits::MAX_INFLATED_CHANGES,
            ops: limits::MAX_OPS_PER_MESSAGE,
            changes: limits::MAX_CHANGES_PER_MESSAGE,
        });
        for part in m.changes.iter() {
            chunks::scan(part, &mut budget).map_err(|e| match e {
                chunks::ChunkError::Malformed(_) | chunks::ChunkError::Unsupported(_) => {
                    Failure::Refused(format!(
                        "a chunk of changes in the sync message is malformed: {e}"
                    ))
                }
                other => Failure::Limit(other.to_string()),
            })?;
        }
        Ok(budget.inflated())
    })
}

/// Decodes a stored sync state; anything unreadable starts afresh.
pub(crate) fn decode_state(bytes: Option<Vec<u8>>) -> sync::State {
    bytes
        .and_then(|b| {
            guarded(|| sync::State::decode(&b).map_err(|e| Failure::Refused(e.to_string()))).ok()
        })
        .unwrap_or_default()
}

fn load(storage: &dyn Storage, id: Uuid) -> Result<Loaded, Failure> {
    let stored = storage
        .load_doc(id)
        .map_err(|e| Failure::Load(e.to_string()))?
        .ok_or_else(|| Failure::Load(format!("document {id} is not stored")))?;
    let size = stored.snapshot.len() + stored.changes.iter().map(Vec::len).sum::<usize>();
    let rows = stored.changes.len();
    let loaded = guarded(|| {
        load_checked(
            id,
            &stored.snapshot,
            stored.changes.iter().map(Vec::as_slice),
            &stored.heads,
        )
        .map_err(|e| Failure::Load(e.to_string()))
    });
    match loaded {
        Ok(doc) => Ok(Loaded::new(doc, size, rows)),
        Err(why) => rebuild(storage, id, &stored, &why),
    }
}

/// Applies one stored row of changes to a copy of `doc`; the copy, if every change in the
/// row is then in it (a row that does not load, or whose dependencies were lost, is not)
/// and, where the row's hashes were recorded, the changes are exactly those stored.
fn apply_row(
    doc: &mut AutoCommit,
    bytes: &[u8],
    hashes: Option<&[u8]>,
) -> Result<AutoCommit, String> {
    let mut budget = chunks::Budget::new(chunks::Limits {
        inflated_bytes: limits::MAX_INFLATED_CHANGES,
        ops: u64::MAX,
        changes: u64::MAX,
    });
    chunks::scan(bytes, &mut budget).map_err(|e| e.to_string())?;
    let mut copy = doc.fork();
    let before = copy.get_heads();
    let result = guarded(|| {
        copy.load_incremental(bytes)
            .map_err(|e| Failure::Refused(e.to_string()))
    });
    result.map_err(|e| format!("{e:?}"))?;
    // Every change in the row must now be in the document (Automerge keeps one it cannot
    // apply aside, silently).
    let added = copy.get_changes(&before);
    let expected = count_changes(bytes);
    if added.len() < expected {
        return Err(format!(
            "{} of its {expected} changes could not be applied (damaged, or their dependencies are lost)",
            expected - added.len()
        ));
    }
    if let Some(hashes) = hashes {
        let stored: HashSet<&[u8]> = hashes.chunks(32).collect();
        if added.iter().any(|c| !stored.contains(&c.hash().0[..])) {
            return Err("its changes are not the ones that were stored".into());
        }
    }
    Ok(copy)
}

/// How many change chunks a stored row holds.
fn count_changes(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = bytes;
    while rest.len() > 9 {
        let mut len: u64 = 0;
        let mut i = 9;
        let mut shift = 0;
        loop {
            let Some(b) = rest.get(i) else { return n };
            len |= u64::from(b & 0x7f) << shift;
            i += 1;
            shift += 7;
            if b & 0x80 == 0 || shift > 63 {
                break;
            }
        }
        let end = i.saturating_add(len as usize);
        if end > rest.len() {
            return n;
        }
        if matches!(rest[8], 1 | 2) {
            n += 1;
        }
        rest = &rest[end..];
    }
    n
}

/// Rebuilds a stored document that does not load or does not reach its heads: from its
/// snapshot (or, if that is damaged, the snapshot before the last compaction and the
/// changes folded into it), then every stored change row that still applies. What does
/// not is set aside (kept, never deleted), the rebuilt document is stored, and the audit
/// log says what was set aside; reviewers see it on the inspection.
fn rebuild(
    storage: &dyn Storage,
    id: Uuid,
    stored: &StoredDoc,
    why: &Failure,
) -> Result<Loaded, Failure> {
    tracing::error!(doc = %id, failure = ?why, "a stored document is damaged: rebuilding it from what is still good");
    let mut aside: Vec<(String, Option<i64>, Vec<u8>, String)> = Vec::new();
    let snapshot =
        guarded(|| AutoCommit::load(&stored.snapshot).map_err(|e| Failure::Load(e.to_string())));
    let mut doc = match snapshot {
        Ok(d) => d,
        Err(e) => {
            aside.push((
                "snapshot".into(),
                None,
                stored.snapshot.clone(),
                format!("does not load: {e:?}"),
            ));
            let prev = storage
                .previous_doc(id)
                .map_err(|e| Failure::Load(e.to_string()))?;
            let base = prev
                .snapshot
                .as_deref()
                .and_then(|p| {
                    guarded(|| AutoCommit::load(p).map_err(|e| Failure::Load(e.to_string()))).ok()
                })
                .ok_or_else(|| {
                    Failure::Load(format!(
                        "document {id}: its snapshot is damaged and no earlier one is kept"
                    ))
                })?;
            let mut doc = base;
            for (bytes, hashes) in prev.changes.iter().zip(&prev.change_hashes) {
                if let Ok(next) = apply_row(&mut doc, bytes, hashes.as_deref()) {
                    doc = next;
                }
            }
            doc
        }
    };
    for ((seq, bytes), hashes) in stored
        .change_seqs
        .iter()
        .zip(&stored.changes)
        .zip(&stored.change_hashes)
    {
        match apply_row(&mut doc, bytes, hashes.as_deref()) {
            Ok(next) => doc = next,
            Err(reason) => aside.push(("change".into(), Some(*seq), bytes.clone(), reason)),
        }
    }
    let heads = doc.get_heads();
    let snapshot = doc.save();
    let reloads = guarded(|| {
        let mut back = AutoCommit::load(&snapshot).map_err(|e| Failure::Load(e.to_string()))?;
        Ok(encode_heads(&back.get_heads()) == encode_heads(&heads))
    });
    if !matches!(reloads, Ok(true)) {
        return Err(Failure::Load(format!(
            "document {id}: the rebuilt document does not load back"
        )));
    }
    let rebuilt = Rebuilt {
        heads: encode_heads(&heads),
        snapshot: snapshot.clone(),
        aside,
        read_heads: stored.heads.clone(),
        through_seq: stored.change_seqs.iter().max().copied(),
    };
    storage
        .write_rebuilt(id, &rebuilt, chrono::Utc::now())
        .map_err(|e| match e {
            crate::storage::StorageError::Stale(what) => Failure::Stale(what),
            e => Failure::Storage(e.to_string()),
        })?;
    let detail = format!(
        "set aside: {}",
        if rebuilt.aside.is_empty() {
            "nothing (the stored heads were stale)".to_owned()
        } else {
            rebuilt
                .aside
                .iter()
                .map(|(k, seq, b, r)| match seq {
                    Some(s) => format!("{k} {s} ({} bytes): {r}", b.len()),
                    None => format!("{k} ({} bytes): {r}", b.len()),
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    );
    let event = AuditEvent {
        at: chrono::Utc::now(),
        actor: crate::storage::SERVER_AUTHOR.into(),
        device: None,
        action: "doc_rebuilt".into(),
        target: id.to_string(),
        from: "-".into(),
        outcome: if rebuilt.aside.is_empty() {
            "ok".into()
        } else {
            "set_aside".into()
        },
        detail: Some(detail.chars().take(2000).collect()),
    };
    if let Err(e) = storage.audit(&event) {
        tracing::error!(error = %e, "writing the audit log failed");
    }
    // What the record indexes follows what the rebuilt inspection says (a rebuild may
    // have lost a state change); other documents have no such facts. Only over the
    // heads just written: a process that has stored changes on top of the rebuilt
    // document since indexes them itself.
    if let Ok(facts) = guarded(|| index_facts(&doc).map_err(|e| Failure::Load(e.to_string()))) {
        let heads = encode_heads(&doc.get_heads());
        let refreshed = storage.index_at(id, &heads, Some(facts.state), Some(&facts.photos));
        if let Err(e) = refreshed {
            tracing::warn!(doc = %id, error = %e, "refreshing a rebuilt inspection's record failed");
        }
    }
    tracing::warn!(doc = %id, set_aside = rebuilt.aside.len(), "a damaged document was rebuilt");
    Ok(Loaded::new(doc, snapshot.len(), 0))
}

impl Documents {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Documents {
            storage,
            authors: Arc::default(),
            entries: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            max_doc_bytes: limits::MAX_DOC_BYTES,
            sync_states: Arc::default(),
            sync_state_writes: Mutex::new(()),
        }
    }

    /// The sync state kept for `peer` on document `id`: the one held in memory, else
    /// the stored one. Blocking.
    pub(crate) fn sync_state(
        &self,
        id: Uuid,
        peer: &str,
    ) -> Result<Option<Vec<u8>>, crate::storage::StorageError> {
        if let Some(s) = lock(&self.sync_states).get(&(id, peer.to_owned())) {
            return Ok(Some(s.clone()));
        }
        self.storage.sync_state(id, peer)
    }

    /// Forgets the sync state kept for `peer` on document `id`, held and stored: its
    /// next sync starts afresh. Blocking.
    pub(crate) fn reset_sync_state(
        &self,
        id: Uuid,
        peer: &str,
    ) -> Result<(), crate::storage::StorageError> {
        let _no_flush = lock(&self.sync_state_writes);
        lock(&self.sync_states).remove(&(id, peer.to_owned()));
        self.storage.reset_sync_state(id, peer)
    }

    /// Writes the sync states held in memory, [`limits::SYNC_STATES_PER_WRITE`] to a
    /// transaction (so that no one write holds the writer long), and lets go of those not
    /// changed meanwhile. Blocking. What fails to write stays held for the next.
    pub fn flush_sync_states(&self) -> Result<usize, crate::storage::StorageError> {
        let _one_writer = lock(&self.sync_state_writes);
        let held: Vec<((Uuid, String), Vec<u8>)> = lock(&self.sync_states)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut written = 0;
        for part in held.chunks(limits::SYNC_STATES_PER_WRITE) {
            let rows: Vec<(Uuid, &str, &[u8])> = part
                .iter()
                .map(|((id, peer), s)| (*id, peer.as_str(), s.as_slice()))
                .collect();
            self.storage.put_sync_states(&rows)?;
            written += rows.len();
            let mut map = lock(&self.sync_states);
            for (k, state) in part {
                if map.get(k) == Some(state) {
                    map.remove(k);
                }
            }
        }
        Ok(written)
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
        // Documents let go of are freed after the lock is: they may be large.
        let mut unloaded = Vec::new();
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|_, e| {
            if e.users.load(Ordering::Acquire) > 0 || lock(&e.last_used).elapsed() < idle {
                return true;
            }
            if lock(&e.watchers).is_empty() {
                return false;
            }
            // Watched: the entry stays (its watchers hear of the next change through
            // it), the document leaves memory; the next user loads it again.
            if let Ok(mut slot) = e.slot.try_lock() {
                unloaded.extend(slot.take());
            }
            true
        });
        let evicted = before - entries.len();
        drop(entries);
        drop(unloaded);
        evicted
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

    /// Document `id`'s place in memory, made if it has none.
    fn entry(entries: &mut HashMap<Uuid, Arc<Entry>>, id: Uuid) -> Arc<Entry> {
        entries
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Entry {
                    id,
                    slot: Arc::new(tokio::sync::Mutex::new(None)),
                    users: AtomicUsize::new(0),
                    last_used: Mutex::new(Instant::now()),
                    subscribers: Mutex::new(HashMap::new()),
                    watchers: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// Holds document `id` for `connection`, which hears of its changes in `inbox`.
    pub(crate) fn open(&self, id: Uuid, connection: u64, inbox: Arc<Inbox>) -> DocHandle {
        let entry = {
            let mut entries = lock(&self.entries);
            let entry = Self::entry(&mut entries, id);
            // Counted under the `entries` lock, so eviction never races with a new user.
            entry.users.fetch_add(1, Ordering::AcqRel);
            entry
        };
        lock(&entry.subscribers).insert(connection, inbox);
        DocHandle { entry, connection }
    }

    /// Tells `inbox` of every change to document `id` stored from now on, until the
    /// [`Watch`] is dropped, without keeping the document in memory (an event stream).
    pub(crate) fn watch(&self, id: Uuid, connection: u64, inbox: Arc<Inbox>) -> Watch {
        let entry = {
            let mut entries = lock(&self.entries);
            let entry = Self::entry(&mut entries, id);
            // Added under the `entries` lock, so eviction sees it.
            lock(&entry.watchers).insert(connection, inbox);
            entry
        };
        Watch { entry, connection }
    }

    /// A hold on document `id` for a one-off use by the API (no connection listens).
    pub(crate) fn hold(&self, id: Uuid) -> DocHandle {
        let (connection, inbox) = self.connection();
        self.open(id, connection, inbox)
    }

    /// Tells the event streams watching document `id` that what they show of it changed
    /// although the document did not (its record did, or a comment was released, which a
    /// trust lead reads through the inspection's view). Sync peers are not told: they
    /// have nothing new to sync.
    pub(crate) fn tell_watchers(&self, id: Uuid) {
        let Some(entry) = lock(&self.entries).get(&id).cloned() else {
            return;
        };
        for inbox in lock(&entry.watchers).values() {
            lock(&inbox.dirty).insert(id);
            inbox.notify.notify_one();
        }
    }

    /// Another server process stored changes to document `id` (several processes on one
    /// database): if it is in memory here, its copy leaves memory (it is no longer
    /// exactly what storage holds), and every connection and event stream following it
    /// here is told, as after a change made here; the next of them to use it loads it
    /// afresh, with the other process's changes. Returns whether anyone here was told.
    ///
    /// Nothing is loaded here: news of many changes in a row costs one load, by the
    /// first who needs the document, and a compaction or a rebuild by the other process
    /// is covered alike. A document no one follows here is left alone.
    pub async fn refresh(&self, id: Uuid) -> bool {
        let Some(entry) = lock(&self.entries).get(&id).cloned() else {
            return false;
        };
        // After any exchange in progress: what it stored, it stored on top of its copy
        // (or was refused as stale and will try again on a fresh one).
        let dropped = entry.slot.clone().lock_owned().await.take();
        drop(dropped);
        let mut told = false;
        let tell = |inbox: &Arc<Inbox>| {
            lock(&inbox.dirty).insert(id);
            inbox.notify.notify_one();
        };
        for inbox in lock(&entry.subscribers).values() {
            tell(inbox);
            told = true;
        }
        for inbox in lock(&entry.watchers).values() {
            tell(inbox);
            told = true;
        }
        told
    }

    /// [`Documents::refresh`] for every document in memory or watched here: after the
    /// news of other processes' changes was cut off for a while.
    pub async fn refresh_all(&self) -> usize {
        let ids: Vec<Uuid> = lock(&self.entries).keys().copied().collect();
        let mut told = 0;
        for id in ids {
            told += usize::from(self.refresh(id).await);
        }
        told
    }

    /// Tells every other connection holding the document that it changed.
    pub(crate) fn notify_others(&self, handle: &DocHandle) {
        let id = handle.entry.id;
        let tell = |(conn, inbox): (&u64, &Arc<Inbox>)| {
            if *conn != handle.connection {
                lock(&inbox.dirty).insert(id);
                inbox.notify.notify_one();
            }
        };
        lock(&handle.entry.subscribers).iter().for_each(tell);
        lock(&handle.entry.watchers).iter().for_each(tell);
    }

    /// Runs `f` on the loaded document (loading it first) on the blocking pool, under
    /// the document's lock. The document stays in memory after `f` unless `f` panicked
    /// or marked its live copy damaged.
    async fn with_doc<R: Send + 'static>(
        &self,
        handle: &DocHandle,
        f: impl FnOnce(&mut Loaded, &dyn Storage, &guard::Authors) -> Result<R, Failure>
        + Send
        + 'static,
    ) -> Result<R, Failure> {
        let mut guard = handle.entry.slot.clone().lock_owned().await;
        let storage = self.storage.clone();
        let authors = self.authors.clone();
        let id = handle.entry.id;
        let res = tokio::task::spawn_blocking(move || {
            // Out of the slot while in use: if anything panics, the slot stays empty
            // and the next user reloads from storage.
            let mut loaded = match guard.take() {
                Some(l) => l,
                None => load(&*storage, id)?,
            };
            match catch_unwind(AssertUnwindSafe(|| f(&mut loaded, &*storage, &authors))) {
                Err(panic) => Err(Failure::Panicked(panic_text(panic))),
                Ok(r) => {
                    if !loaded.damaged {
                        *guard = Some(loaded);
                    }
                    r
                }
            }
        })
        .await;
        handle.entry.touch();
        match res {
            Ok(r) => r,
            Err(e) => Err(Failure::Panicked(e.to_string())),
        }
    }

    /// Receives a peer's sync message, checks and commits any new changes, then
    /// generates the reply. `peer` keys the stored sync state; `ctx` says what the
    /// changes are checked against.
    ///
    /// A change whose dependencies the server does not hold yet (the peer left one out,
    /// as the sync protocol may when its Bloom filter errs) cannot be applied: Automerge
    /// queues it and asks for what is missing. That queue must not outlive the exchange
    /// in the document that every connection shares, where a later message from another
    /// user would apply it and be held to account for it, and where a writer could grow
    /// it without end. So the reply is made with the queue (it asks the peer for what is
    /// missing), then the trial copy is dropped, and the queued changes go back to this
    /// connection as `pending`, to be given back with its next message: bounded there by
    /// [`limits::MAX_PENDING_INFLATED`].
    ///
    /// With several server processes on one database, another may store changes to the
    /// document between this one's copy being read and the peer's changes being stored:
    /// then nothing is stored ([`Failure::Stale`]), the copy leaves memory, and the
    /// exchange is made again, from the start, on a copy loaded afresh (at most
    /// [`STALE_RETRIES`] times), so the peer never hears of it.
    pub(crate) async fn exchange(
        &self,
        handle: &DocHandle,
        peer: String,
        state: sync::State,
        message: sync::Message,
        ctx: DocContext,
        pending: Waiting,
    ) -> Result<Exchanged, Failure> {
        let mut tries = 0;
        loop {
            let attempt = self
                .exchange_once(
                    handle,
                    peer.clone(),
                    state.clone(),
                    message.clone(),
                    ctx.clone(),
                    pending.clone(),
                )
                .await;
            match attempt {
                Err(Failure::Stale(what)) if tries < STALE_RETRIES => {
                    tries += 1;
                    tracing::debug!(doc = %handle.entry.id, %what, tries, "changed by another process meanwhile: exchanging again on a fresh copy");
                    // A pause drawn at random from a range that doubles with each try
                    // (10 ms, 20 ms, ... up to 640 ms), as on a shared network: two
                    // processes busy with one document stop meeting, whichever is slower.
                    let pause = rand::random_range(0..=10u64 << tries.min(6));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(Failure::Stale(what)) => {
                    tracing::warn!(doc = %handle.entry.id, %what, tries, "changed by another process each time it was exchanged: the peer is told to try again");
                    return Err(Failure::Stale(what));
                }
                other => return other,
            }
        }
    }

    async fn exchange_once(
        &self,
        handle: &DocHandle,
        peer: String,
        mut state: sync::State,
        message: sync::Message,
        ctx: DocContext,
        pending: Waiting,
    ) -> Result<Exchanged, Failure> {
        let max = self.max_doc_bytes;
        let id = handle.entry.id;
        let sync_states = self.sync_states.clone();
        self.with_doc(handle, move |loaded, storage, authors| {
            // What waited is tried again only when it may now apply: this message brings
            // a change it waits for, or another connection stored one. Otherwise it keeps
            // waiting untouched, so that a stream of small messages cannot make the server
            // parse it again and again.
            let replay = !pending.parts.is_empty()
                && (brings_any(&message, &pending.needs)
                    || pending
                        .needs
                        .iter()
                        .any(|h| loaded.doc.get_change_by_hash(h).is_some()));
            let (mut parts, kept) = if replay {
                (pending.parts, Waiting::default())
            } else {
                (Vec::new(), pending)
            };
            let incoming: usize = message.changes.iter().map(<[u8]>::len).sum::<usize>()
                + parts.iter().map(Vec::len).sum::<usize>();
            if incoming > max {
                return Err(Failure::TooLarge {
                    size: incoming,
                    max,
                });
            }
            // What may end up waiting: what waited before and the parts of this message.
            let earlier = parts.len();
            parts.extend(message.changes.iter().map(<[u8]>::to_vec));
            let before = loaded.trial().get_heads();
            let state_before = state_of(loaded.trial(), &ctx);
            let received = {
                let trial = loaded.trial();
                guarded(|| {
                    trial
                        .sync()
                        .receive_sync_message(&mut state, message)
                        .map_err(|e| Failure::Refused(e.to_string()))?;
                    if earlier > 0 {
                        trial
                            .load_incremental(&parts[..earlier].concat())
                            .map_err(|e| Failure::Refused(e.to_string()))?;
                    }
                    Ok(())
                })
            };
            if let Err(f) = received {
                loaded.trial = None;
                return Err(f);
            }
            let stored = accept(
                loaded,
                storage,
                authors,
                id,
                &ctx,
                &before,
                state_before,
                max,
            )?;
            let reply = {
                let trial = loaded.trial();
                guarded(|| Ok(trial.sync().generate_sync_message(&mut state)))
            };
            let reply = match reply {
                Ok(r) => r,
                Err(f) => {
                    loaded.trial = None;
                    return Err(f);
                }
            };
            let mut pending = take_queued(loaded, parts);
            pending.keep(kept);
            // Only shared heads are kept; losing them costs a longer next sync. Held in
            // memory, written in batches; past the bound a new peer's is not kept.
            {
                let mut held = lock(&sync_states);
                let key = (id, peer);
                if held.len() < limits::MAX_HELD_SYNC_STATES || held.contains_key(&key) {
                    held.insert(key, state.encode());
                }
            }
            Ok(Exchanged {
                state,
                reply,
                stored,
                pending,
            })
        })
        .await
    }

    /// Makes a change on the server, for the API: `make` gets a fork of the live
    /// document and returns the change chunks it made (none if it refused) with its
    /// answer. The changes then take the same path as a peer's (guard, round trip,
    /// commit) before `make`'s answer is returned.
    pub(crate) async fn edit<R: Send + 'static>(
        &self,
        handle: &DocHandle,
        ctx: DocContext,
        make: impl FnOnce(AutoCommit) -> (Option<Vec<u8>>, R) + Send + 'static,
    ) -> Result<R, Failure> {
        let max = self.max_doc_bytes;
        let id = handle.entry.id;
        self.with_doc(handle, move |loaded, storage, authors| {
            let fork = loaded.doc.fork();
            let (bytes, answer) = make(fork);
            let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
                return Ok(answer);
            };
            let before = loaded.trial().get_heads();
            let state_before = state_of(loaded.trial(), &ctx);
            let applied = {
                let trial = loaded.trial();
                guarded(|| {
                    trial
                        .load_incremental(&bytes)
                        .map(|_| ())
                        .map_err(|e| Failure::Refused(e.to_string()))
                })
            };
            if let Err(f) = applied {
                loaded.trial = None;
                return Err(f);
            }
            accept(
                loaded,
                storage,
                authors,
                id,
                &ctx,
                &before,
                state_before,
                max,
            )?;
            Ok(answer)
        })
        .await
    }

    /// Reads the live document (loading it first, rebuilding it if damaged).
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        handle: &DocHandle,
        f: impl FnOnce(&mut AutoCommit) -> R + Send + 'static,
    ) -> Result<R, Failure> {
        // `f` only reads: it gets the document mutably so that it can lend it to a
        // typed wrapper without a copy (`Inspection::read_in`).
        self.with_doc(handle, move |loaded, _, _| Ok(f(&mut loaded.doc)))
            .await
    }

    /// The next message for a peer after the document changed elsewhere.
    pub(crate) async fn generate(
        &self,
        handle: &DocHandle,
        mut state: sync::State,
    ) -> Result<(sync::State, Option<sync::Message>), Failure> {
        self.with_doc(handle, move |loaded, _, _| {
            let trial = loaded.trial();
            let m = guarded(|| Ok(trial.sync().generate_sync_message(&mut state)))?;
            Ok((state, m))
        })
        .await
    }
}

/// After an exchange: if the trial copy holds changes it could not apply yet, drops it
/// (so that the queue leaves the shared document) and returns the changes of `parts` it
/// held, each as its own part, for the connection to give back with its next message.
/// What waits is held to a budget once inflated ([`limits::MAX_PENDING_INFLATED`], and the
/// message's operation and change counts), since it is parsed again with every message:
/// past it nothing waits, and [`Waiting::over`] says why.
fn take_queued(loaded: &mut Loaded, parts: Vec<Vec<u8>>) -> Waiting {
    let Some(trial) = loaded.trial.as_mut() else {
        return Waiting::default();
    };
    let needs = trial.get_missing_deps(&[]);
    if needs.is_empty() {
        return Waiting::default();
    }
    let mut budget = chunks::Budget::new(chunks::Limits {
        inflated_bytes: limits::MAX_PENDING_INFLATED,
        ops: limits::MAX_OPS_PER_MESSAGE,
        changes: limits::MAX_CHANGES_PER_MESSAGE,
    });
    let mut waiting = Waiting::default();
    for (bytes, change) in parts.iter().flat_map(|p| changes_of(p)) {
        if trial.get_change_by_hash(&change.hash()).is_some() {
            continue;
        }
        if let Err(e) = chunks::scan(bytes, &mut budget) {
            waiting.parts.clear();
            waiting.over = Some(e.to_string());
            break;
        }
        waiting.parts.push(bytes.to_vec());
    }
    if waiting.over.is_none() {
        waiting.inflated = budget.inflated();
        waiting.needs = needs;
    }
    loaded.trial = None;
    waiting
}

/// How many times an exchange is made again after another server process stored
/// changes to its document meanwhile ([`Documents::exchange`]).
const STALE_RETRIES: usize = 10;

/// A peer's changes that wait for changes they depend on.
#[derive(Debug, Default, Clone)]
pub(crate) struct Waiting {
    /// One change a part.
    pub parts: Vec<Vec<u8>>,
    /// Their size once inflated.
    pub inflated: usize,
    /// The changes they wait for.
    pub needs: Vec<ChangeHash>,
    /// Set when they were past the budget: then nothing waits.
    pub over: Option<String>,
}

impl Waiting {
    /// Adds what waited before and was not tried again.
    fn keep(&mut self, earlier: Waiting) {
        if self.over.is_some() || earlier.parts.is_empty() {
            return;
        }
        self.parts.extend(earlier.parts);
        self.inflated += earlier.inflated;
        self.needs.extend(earlier.needs);
        self.needs.sort();
        self.needs.dedup();
        if self.inflated > limits::MAX_PENDING_INFLATED {
            self.over = Some(format!(
                "{} bytes (inflated) of changes would wait, more than the {} one connection may leave waiting",
                self.inflated,
                limits::MAX_PENDING_INFLATED
            ));
            self.parts.clear();
            self.needs.clear();
            self.inflated = 0;
        }
    }
}

/// Whether one of `m`'s changes is one of `needs`.
fn brings_any(m: &sync::Message, needs: &[ChangeHash]) -> bool {
    !needs.is_empty()
        && m.changes
            .iter()
            .flat_map(changes_of)
            .any(|(_, c)| needs.contains(&c.hash()))
}

/// Each change of one part of a sync message, with its bytes (Automerge's own messages
/// join every change into one part); what does not parse is left out. Never panics.
fn changes_of(part: &[u8]) -> Vec<(&[u8], Change)> {
    chunks::changes_in(part)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|bytes| {
            guarded(|| Change::try_from(bytes).map_err(|e| Failure::Refused(e.to_string())))
                .ok()
                .map(|c| (bytes, c))
        })
        .collect()
}

/// The inspection's state before a change: the inspection document's own, or (for its
/// other documents) the record's; and the inspection document's sign-off chain.
fn state_of(doc: &AutoCommit, ctx: &DocContext) -> guard::Standing {
    match ctx.kind {
        DocKind::Inspection => guard::Standing {
            state: current_state(doc).unwrap_or(ctx.record.state),
            seal: crate::sealed::chain_of(doc).seal(),
        },
        _ => guard::Standing {
            state: ctx.record.state,
            seal: wardcheck_core::seal::Seal::UNSIGNED,
        },
    }
}

/// Checks, round-trips and commits what the trial copy gained over the live one.
/// Returns the bytes stored, or `None` if there was nothing new.
#[allow(clippy::too_many_arguments)] // each is a different fact about the one change
fn accept(
    loaded: &mut Loaded,
    storage: &dyn Storage,
    authors: &guard::Authors,
    id: Uuid,
    ctx: &DocContext,
    before: &[ChangeHash],
    state_before: guard::Standing,
    max: usize,
) -> Result<Option<usize>, Failure> {
    let trial = loaded.trial.as_mut().expect("made by the caller");
    let after = trial.get_heads();
    if encode_heads(&after) == encode_heads(before) {
        return Ok(None);
    }
    let new: Vec<Change> = trial.get_changes(before);
    let guard::Checked {
        claims,
        indexed,
        shared,
        links,
    } = match guard::check(storage, authors, ctx, trial, before, &new, state_before) {
        Ok(c) => c,
        Err(r) => {
            loaded.trial = None;
            return Err(Failure::Policy(r));
        }
    };
    let bytes = trial.save_after(&loaded.persisted);
    let size = loaded.stored_bytes + bytes.len();
    if size > max {
        loaded.trial = None;
        return Err(Failure::TooLarge { size, max });
    }
    // The changes as storage will keep them must load onto what storage holds, as every
    // later load will load them, and reach the same heads. If they do not, the live copy
    // may be half-changed: it leaves memory, and nothing was stored.
    let live = &mut loaded.doc;
    let round_trip = guarded(|| {
        live.load_incremental(&bytes)
            .map(|_| ())
            .map_err(|e| Failure::Unstorable(e.to_string()))
    });
    let reached = encode_heads(&loaded.doc.get_heads()) == encode_heads(&after);
    if round_trip.is_err() || !reached {
        loaded.damaged = true;
        return Err(Failure::Unstorable(format!(
            "document {id}: the changes do not reach heads {after:?} from their stored form ({round_trip:?})"
        )));
    }
    // Claims first: a claim for a change that then fails to store grants nothing, while
    // a stored reference without its claim would.
    if !claims.is_empty()
        && let Err(e) = storage.add_photo_claims(id, &claims)
    {
        // The live copy already holds the changes (the round trip): it leaves memory.
        loaded.damaged = true;
        return Err(Failure::Storage(e.to_string()));
    }
    let heads = encode_heads(&after);
    let hashes: Vec<u8> = new.iter().flat_map(|c| c.hash().0).collect();
    // Only on top of what this copy was stored at: another process on the same database
    // may have stored changes since (then nothing is stored, the copy leaves memory, and
    // the peer, told to try again, syncs with one that holds them).
    let stored_at = encode_heads(&loaded.persisted);
    if let Err(e) = storage.append_changes_after(id, &stored_at, &bytes, &hashes, &heads) {
        loaded.damaged = true;
        return Err(match e {
            StorageError::Stale(what) => Failure::Stale(what),
            e => Failure::Storage(e.to_string()),
        });
    }
    loaded.persisted = after;
    loaded.stored_bytes = size;
    loaded.change_rows += 1;
    // Each link of the sign-off chain goes into the audit log's chain too: `inspection
    // verify` holds the document's chain to it.
    for l in &links {
        let (action, role) = match l.link.kind {
            wardcheck_core::inspection::LinkKind::SignOff => ("signed_off", l.link.role),
            wardcheck_core::inspection::LinkKind::Reopen => ("reopened", l.link.role),
        };
        let event = crate::storage::AuditEvent {
            at: chrono::Utc::now(),
            actor: l.link.by.clone(),
            device: None,
            action: action.into(),
            target: format!("inspection:{}", ctx.record.id),
            from: "-".into(),
            outcome: "ok".into(),
            detail: Some(crate::sealed::audit_detail(
                &l.link,
                &l.hash,
                Some(&l.change),
                role,
            )),
        };
        if let Err(e) = storage.audit(&event) {
            tracing::error!(doc = %id, error = %e, "auditing a sign-off failed");
        }
    }
    compact_if_due(loaded, storage, id);
    // Only when the changes may have moved what the record indexes: reading the state and
    // every item's photos is most of the work of taking an answer otherwise.
    if ctx.kind == DocKind::Inspection && (indexed || loaded.indexed_state.is_none()) {
        // Derived columns: a failure is logged, and tried again with the next change;
        // the changes are stored.
        let refreshed = guarded(|| update_index(loaded, storage, id, ctx.record.state));
        let shared = if shared {
            storage
                .share(id, chrono::Utc::now())
                .map_err(|e| Failure::Storage(e.to_string()))
        } else {
            Ok(())
        };
        if let Err(e) = refreshed.and(shared) {
            loaded.indexed_state = None;
            tracing::warn!(doc = %id, error = ?e, "updating the inspection's state and photo references failed");
        }
    }
    Ok(Some(bytes.len()))
}

/// Replaces the stored snapshot and changes with one snapshot when enough change rows
/// have gathered, once the snapshot is shown to load back to the same heads. The
/// changes are already durable, so a failure is only logged.
fn compact_if_due(loaded: &mut Loaded, storage: &dyn Storage, id: Uuid) {
    if loaded.change_rows as i64 <= limits::COMPACT_AFTER {
        return;
    }
    let snapshot = loaded.doc.save();
    let heads = encode_heads(&loaded.persisted);
    let reloads = guarded(|| {
        let mut back = AutoCommit::load(&snapshot).map_err(|e| Failure::Load(e.to_string()))?;
        Ok(encode_heads(&back.get_heads()) == heads)
    });
    if !matches!(reloads, Ok(true)) {
        tracing::error!(doc = %id, result = ?reloads, "a snapshot did not load back; the document is not compacted");
        return;
    }
    match storage.compact(id, &snapshot, &heads) {
        Ok(()) => {
            loaded.stored_bytes = snapshot.len();
            loaded.change_rows = 0;
        }
        Err(e) => tracing::warn!(doc = %id, error = %e, "compacting a document failed"),
    }
}

/// Keeps an inspection's state column and photo references in step with its document.
fn update_index(
    loaded: &mut Loaded,
    storage: &dyn Storage,
    id: Uuid,
    column: wardcheck_core::inspection::State,
) -> Result<(), Failure> {
    // Only the state and the photo hashes are needed: read them directly rather than
    // building the whole typed view on every received change.
    let facts = index_facts(&loaded.doc).map_err(|e| Failure::Load(e.to_string()))?;
    let state = (loaded.indexed_state.unwrap_or(column) != facts.state).then_some(facts.state);
    let photos = (loaded.photo_refs.as_ref() != Some(&facts.photos)).then_some(&facts.photos);
    if state.is_none() && photos.is_none() {
        loaded.indexed_state = Some(facts.state);
        return Ok(());
    }
    // Written only over the heads this copy read them from: when another process has
    // stored later changes meanwhile, it indexes them, and this copy (about to be
    // dropped on its news) writes nothing.
    let heads = encode_heads(&loaded.persisted);
    let written = storage
        .index_at(id, &heads, state, photos.map(Vec::as_slice))
        .map_err(|e| Failure::Storage(e.to_string()))?;
    if written {
        loaded.indexed_state = Some(facts.state);
        loaded.photo_refs = Some(facts.photos);
    } else {
        loaded.indexed_state = None;
        loaded.photo_refs = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_rows_are_counted_by_their_change_chunks() {
        use automerge::transaction::Transactable;
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "a", 1).unwrap();
        doc.commit();
        doc.put(automerge::ROOT, "b", 2).unwrap();
        doc.commit();
        assert_eq!(count_changes(&doc.save_after(&[])), 2);
        assert_eq!(count_changes(&[]), 0);
        assert_eq!(
            count_changes(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff]),
            0
        );
    }
}
