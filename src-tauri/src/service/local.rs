//! The open store and the inspections loaded from it, behind one lock.
//!
//! Commands and the sync worker both go through [`Local`]: a command loads (or finds)
//! the inspection, applies one core operation, and saves it with
//! [`Store::save_inspection`] before the lock is released, so a write is durable before
//! the command returns and the worker never sees a change that is not on disk. Nobody
//! holds the lock across a network wait.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use automerge::{ChangeHash, sync};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist, ChecklistPin};
use wardcheck_core::inspection::Inspection;
use wardcheck_core::policy::DocKind;
use wardcheck_core::review::Review;
use wardcheck_core::store::{Persisted, Store, StoreError};

use crate::error::{AppError, ErrorCode};

/// The checklists bundled into this build, loaded once.
static BUNDLED: LazyLock<Vec<Arc<Checklist>>> =
    LazyLock::new(|| checklist::bundled().into_iter().map(Arc::new).collect());

/// Checklists this device fetched from the server and keeps in its store
/// ([`super::checklists`]), loaded when the store opens and as they arrive.
static FETCHED: LazyLock<std::sync::RwLock<Vec<Arc<Checklist>>>> = LazyLock::new(Default::default);

/// Makes a fetched (and checked) checklist available to [`checklist_for`].
pub fn register_fetched(c: Checklist) {
    let mut f = FETCHED.write().unwrap_or_else(|p| p.into_inner());
    if !f.iter().any(|k| k.pin == c.pin) {
        f.push(Arc::new(c));
    }
}

/// Forgets the fetched checklists (the store that kept them was wiped).
pub fn clear_fetched() {
    FETCHED.write().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Whether this device has the checklist `pin` names (bundled or fetched).
pub fn has_checklist(pin: &ChecklistPin) -> bool {
    BUNDLED.iter().any(|c| c.pin == *pin)
        || FETCHED
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c.pin == *pin)
}

/// The checklist an inspection pins (bundled, or fetched from the server and kept), or
/// an error that says which is missing.
pub fn checklist_for(pin: &ChecklistPin) -> Result<Arc<Checklist>, AppError> {
    let fetched = || {
        FETCHED
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.pin == *pin)
            .cloned()
    };
    BUNDLED
        .iter()
        .find(|c| c.pin == *pin)
        .cloned()
        .or_else(fetched)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!(
                    "This inspection follows checklist {}@{}, which is not on this device \
                     yet: it is fetched from the server at the next sync",
                    pin.id, pin.version
                ),
            )
        })
}

/// Why a stored inspection does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unopenable {
    /// It pins a checklist this build does not carry: not listed, not synced, and not
    /// an error of this device (an app update opens it).
    Checklist(AppError),
    /// The store failed to give it back whole (damaged data, a failed read, or a
    /// panic inside Automerge while loading it): reported, never hidden.
    Damaged(AppError),
    /// There is no such inspection on this device (`not_found`).
    Missing(AppError),
}

impl From<Unopenable> for AppError {
    fn from(e: Unopenable) -> Self {
        match e {
            Unopenable::Checklist(e) | Unopenable::Damaged(e) | Unopenable::Missing(e) => e,
        }
    }
}

/// A document the worker syncs: an inspection, or an inspection's review document.
pub trait Synced: Persisted {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message>;
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String>;
    fn has_change(&mut self, hash: &ChangeHash) -> bool;
    fn changes_after(&mut self, heads: &[ChangeHash]) -> usize;
}

impl Synced for Inspection {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.receive_sync_message(state, m)
            .map_err(|e| e.to_string())
    }
    fn has_change(&mut self, hash: &ChangeHash) -> bool {
        Inspection::has_change(self, hash)
    }
    fn changes_after(&mut self, heads: &[ChangeHash]) -> usize {
        Inspection::changes_after(self, heads)
    }
}

impl Synced for Review {
    fn generate(&mut self, state: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(state)
    }
    fn receive(&mut self, state: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.receive_sync_message(state, m)
            .map_err(|e| e.to_string())
    }
    fn has_change(&mut self, hash: &ChangeHash) -> bool {
        Review::has_change(self, hash)
    }
    fn changes_after(&mut self, heads: &[ChangeHash]) -> usize {
        Review::changes_after(self, heads)
    }
}

/// What the app knows of an inspection's record on the server (from its list): kept in
/// the store, for offline use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub review_doc: Option<Uuid>,
    pub lead: Option<String>,
}

/// A change the server refused, kept until the user takes the server's copy: the
/// document is not sent again meanwhile (so it is not refused again and again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The server's stable code (`forbidden`, `wrong_state`, ...).
    pub code: String,
    pub message: String,
    pub at: chrono::DateTime<Utc>,
}

const RECORD: &str = "record:";
const REFUSED: &str = "refused:";

/// The store and its loaded inspections.
#[derive(Debug)]
pub struct Local {
    pub store: Store,
    docs: HashMap<Uuid, Inspection>,
    /// Review documents loaded, by their own id.
    reviews: HashMap<Uuid, Review>,
    /// Changes per document that the server has not acknowledged, as last counted.
    pending: HashMap<Uuid, u64>,
    /// Stored inspections that failed to open as damaged, and why (as last tried).
    damaged: BTreeMap<Uuid, String>,
}

impl Local {
    pub fn new(store: Store) -> Self {
        Local {
            store,
            docs: HashMap::new(),
            reviews: HashMap::new(),
            pending: HashMap::new(),
            damaged: BTreeMap::new(),
        }
    }

    /// The inspection, loaded from the store on first use.
    pub fn doc(&mut self, id: Uuid) -> Result<&mut Inspection, AppError> {
        Ok(self.try_doc(id)?)
    }

    /// [`Local::doc`], saying whether a failure is a missing checklist or damage. A
    /// damaged inspection is remembered (see [`Local::damaged`]) until it opens again.
    pub fn try_doc(&mut self, id: Uuid) -> Result<&mut Inspection, Unopenable> {
        if !self.docs.contains_key(&id) {
            match self.load(id) {
                Ok(insp) => {
                    self.damaged.remove(&id);
                    self.docs.insert(id, insp);
                }
                Err(e) => {
                    if let Unopenable::Damaged(d) = &e {
                        self.damaged.insert(id, d.message.clone());
                    }
                    return Err(e);
                }
            }
        }
        Ok(self.docs.get_mut(&id).expect("just loaded"))
    }

    fn load(&self, id: Uuid) -> Result<Inspection, Unopenable> {
        let damaged = |e: AppError| {
            Unopenable::Damaged(AppError::new(
                e.code,
                format!(
                    "Inspection {id} on this device cannot be opened: {}",
                    e.message
                ),
            ))
        };
        // Automerge may panic on damaged bytes (SYNC-NOTES §5): caught, and reported
        // as damage; nothing half-loaded is kept.
        let raw = catch_unwind(AssertUnwindSafe(|| {
            self.store.load_doc(id).map_err(Box::new)
        }))
        .map_err(|_| {
            damaged(AppError::new(
                ErrorCode::Storage,
                "its stored data made the document library fail",
            ))
        })?
        .map_err(|e| match *e {
            e @ StoreError::UnknownDocument(_) => Unopenable::Missing(e.into()),
            e => damaged(e.into()),
        })?;
        let pin = Inspection::pin_of_doc(&raw).map_err(|e| damaged(e.into()))?;
        let checklist = checklist_for(&pin).map_err(Unopenable::Checklist)?;
        Inspection::from_doc(raw, checklist).map_err(|e| damaged(e.into()))
    }

    /// How many inspections are loaded in memory.
    pub fn loaded(&self) -> usize {
        self.docs.len()
    }

    /// The stored inspections that failed to open as damaged, with why.
    pub fn damaged(&self) -> &BTreeMap<Uuid, String> {
        &self.damaged
    }

    /// Forgets every loaded copy and count (after a panic while the lock was held:
    /// a loaded document may be half-changed). The next use reloads from the store.
    pub fn clear_cache(&mut self) {
        self.docs.clear();
        self.reviews.clear();
        self.pending.clear();
    }

    /// Forgets the loaded copy, so the next use reloads what the store holds (after a
    /// failed operation, whose half-made edits must not ride along with the next one).
    pub fn evict(&mut self, id: Uuid) {
        self.docs.remove(&id);
        self.reviews.remove(&id);
    }

    /// Applies `op` to an inspection and saves it durably. On any failure the loaded
    /// copy is dropped, so memory never runs ahead of the store.
    pub fn write<T>(
        &mut self,
        id: Uuid,
        op: impl FnOnce(&mut Inspection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let result = (|| {
            let insp = self.doc(id)?;
            let out = op(insp)?;
            let insp = self.docs.get_mut(&id).expect("loaded above");
            self.store.save_inspection(insp, Utc::now())?;
            Ok(out)
        })();
        if result.is_err() {
            self.evict(id);
        }
        result
    }

    /// Adds a document fetched from the server (its first sync) to the store.
    pub fn insert(&mut self, mut insp: Inspection) -> Result<Uuid, AppError> {
        let id = insp.id()?;
        self.store.insert_inspection(&mut insp, Utc::now())?;
        self.docs.insert(id, insp);
        Ok(id)
    }

    pub fn ids(&self) -> Result<Vec<Uuid>, AppError> {
        Ok(self.store.inspection_ids()?)
    }

    /// Every document the worker syncs: inspections, then review documents.
    pub fn synced_ids(&self) -> Result<Vec<Uuid>, AppError> {
        let mut ids = self.store.inspection_ids()?;
        ids.extend(self.store.doc_ids(DocKind::Review)?);
        Ok(ids)
    }

    /// A stored review document, loaded on first use.
    pub fn review(&mut self, id: Uuid) -> Result<&mut Review, Unopenable> {
        if !self.reviews.contains_key(&id) {
            let loaded = catch_unwind(AssertUnwindSafe(|| {
                self.store
                    .load_doc(id)
                    .map_err(AppError::from)
                    .and_then(|d| {
                        Review::from_doc(d)
                            .map_err(|e| AppError::new(ErrorCode::Storage, e.to_string()))
                    })
            }))
            .map_err(|_| {
                Unopenable::Damaged(AppError::new(
                    ErrorCode::Storage,
                    format!("Review document {id} made the document library fail"),
                ))
            })?;
            match loaded {
                Ok(r) => {
                    self.reviews.insert(id, r);
                }
                Err(e) if e.code == ErrorCode::NotFound => return Err(Unopenable::Missing(e)),
                Err(e) => {
                    return Err(Unopenable::Damaged(AppError::new(
                        e.code,
                        format!(
                            "Review document {id} on this device cannot be opened: {}",
                            e.message
                        ),
                    )));
                }
            }
        }
        Ok(self.reviews.get_mut(&id).expect("just loaded"))
    }

    /// A synced document of either kind, by id.
    pub fn synced(&mut self, id: Uuid) -> Result<&mut dyn Synced, Unopenable> {
        let is_review = self.reviews.contains_key(&id)
            || matches!(self.store.doc_kind(id), Ok(Some(DocKind::Review)));
        if is_review {
            Ok(self.review(id)?)
        } else {
            Ok(self.try_doc(id)?)
        }
    }

    /// Saves whatever a synced document holds that the store does not.
    pub fn save(&mut self, id: Uuid) -> Result<(), AppError> {
        let now = Utc::now();
        let result = if let Some(r) = self.reviews.get_mut(&id) {
            self.store.save_doc(id, r, now)
        } else if let Some(i) = self.docs.get_mut(&id) {
            self.store.save_doc(id, i, now)
        } else {
            Ok(())
        };
        if result.is_err() {
            self.evict(id);
        }
        Ok(result?)
    }

    /// Adds a review document fetched from the server to the store.
    pub fn insert_review(&mut self, id: Uuid, mut review: Review) -> Result<(), AppError> {
        self.store
            .insert_doc(id, DocKind::Review, &mut review, Utc::now())?;
        self.reviews.insert(id, review);
        Ok(())
    }

    /// Applies `op` to the review document of inspection `inspection` and saves it.
    pub fn write_review<T>(
        &mut self,
        inspection: Uuid,
        op: impl FnOnce(&mut Review) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let Some(id) = self.record(inspection).review_doc else {
            return Err(AppError::invalid(
                "This inspection's comments are not on this device yet: sync once while online",
            ));
        };
        let result = (|| {
            let review = self.review(id).map_err(AppError::from)?;
            let out = op(review)?;
            let review = self.reviews.get_mut(&id).expect("loaded above");
            self.store.save_doc(id, review, Utc::now())?;
            Ok(out)
        })();
        if result.is_err() {
            self.evict(id);
        }
        result
    }

    /// The comments of inspection `inspection`, from its review document (none if it is
    /// not on this device yet).
    pub fn comments(&mut self, inspection: Uuid) -> Vec<wardcheck_core::inspection::Comment> {
        let Some(id) = self.record(inspection).review_doc else {
            return Vec::new();
        };
        match self.review(id) {
            Ok(r) => r.view().map(|v| v.comments).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// What the server's list last said of an inspection.
    pub fn record(&self, inspection: Uuid) -> Record {
        self.store
            .setting(&format!("{RECORD}{inspection}"))
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn put_record(&mut self, inspection: Uuid, record: &Record) {
        let bytes = serde_json::to_vec(record).expect("a record serialises");
        if let Err(e) = self
            .store
            .put_setting(&format!("{RECORD}{inspection}"), &bytes)
        {
            tracing::warn!("could not keep the record of {inspection}: {e}");
        }
    }

    /// The inspection a synced document belongs to: itself, or the inspection whose
    /// review document it is.
    pub fn inspection_of(&self, doc: Uuid) -> Uuid {
        self.store
            .settings_with_prefix(RECORD)
            .unwrap_or_default()
            .into_iter()
            .find_map(|(k, v)| {
                let r: Record = serde_json::from_slice(&v).ok()?;
                (r.review_doc == Some(doc))
                    .then(|| k.strip_prefix(RECORD)?.parse().ok())
                    .flatten()
            })
            .unwrap_or(doc)
    }

    /// The documents whose changes the server refused, and why.
    pub fn refusals(&self) -> BTreeMap<Uuid, Refusal> {
        self.store
            .settings_with_prefix(REFUSED)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix(REFUSED)?.parse().ok()?;
                Some((id, serde_json::from_slice(&v).ok()?))
            })
            .collect()
    }

    /// Remembers that the server refused a change to `id`: it is not sent again until the
    /// user takes the server's copy ([`Local::take_servers_copy`]).
    pub fn refuse(&mut self, id: Uuid, refusal: &Refusal) -> Result<(), AppError> {
        let bytes = serde_json::to_vec(refusal).expect("a refusal serialises");
        self.store.put_setting(&format!("{REFUSED}{id}"), &bytes)?;
        Ok(())
    }

    /// Sets this device's copy of a refused document aside (kept in the store, never
    /// deleted) and forgets it, so the next sync fetches the server's copy. Changes made
    /// on this device that the server had not taken stay only in the copy set aside.
    pub fn take_servers_copy(&mut self, id: Uuid) -> Result<(), AppError> {
        let why = self
            .refusals()
            .get(&id)
            .map(|r| format!("{}: {}", r.code, r.message))
            .unwrap_or_else(|| "taken from the server again".into());
        self.evict(id);
        self.pending.remove(&id);
        self.store.set_aside_doc(id, &why, Utc::now())?;
        self.store.delete_setting(&format!("{REFUSED}{id}"))?;
        Ok(())
    }

    /// Forgets a document's sync state with `peer` (in memory and stored), so the
    /// next exchange starts afresh.
    pub fn reset_sync_state(&mut self, id: Uuid, peer: &str) {
        if let Err(e) = self.store.reset_sync_state(id, peer) {
            tracing::warn!("sync: could not reset the sync state of {id}: {e}");
        }
    }

    /// The sync state kept for `(doc, peer)`, or a fresh one.
    pub fn sync_state(&self, id: Uuid, peer: &str) -> sync::State {
        self.store
            .sync_state(id, peer)
            .ok()
            .flatten()
            .and_then(|bytes| sync::State::decode(&bytes).ok())
            .unwrap_or_default()
    }

    /// Counts the changes of `id` not covered by `shared_heads` and remembers the count.
    pub fn count_pending(&mut self, id: Uuid, shared: &[automerge::ChangeHash]) -> u64 {
        match self.synced(id) {
            Ok(insp) => {
                let n = insp.changes_after(shared) as u64;
                self.pending.insert(id, n);
                n
            }
            // A document the app cannot open is not counted (nor remembered, so it is
            // tried again); a damaged one is in `damaged`, which the status reports.
            Err(_) => {
                self.pending.remove(&id);
                0
            }
        }
    }

    /// Recounts one document against the sync state kept for `peer`.
    pub fn recount(&mut self, id: Uuid, peer: &str) -> u64 {
        let state = self.sync_state(id, peer);
        self.count_pending(id, &state.shared_heads)
    }

    /// Every document's unacknowledged changes, counting those not counted yet.
    pub fn pending_total(&mut self, peer: &str) -> u64 {
        let ids = self.synced_ids().unwrap_or_default();
        let mut total = 0;
        for id in ids {
            total += match self.pending.get(&id) {
                Some(n) => *n,
                None => self.recount(id, peer),
            };
        }
        total
    }

    /// Forgets every count (a new server means new sync states).
    pub fn reset_counts(&mut self) {
        self.pending.clear();
    }

    /// Photos still to upload, and their bytes not yet on the server.
    /// Photos the stored inspections refer to whose bytes are not on this device (other
    /// devices took them), sorted. An inspection that does not open is left out: the
    /// status already says it is damaged.
    pub fn missing_photos(&mut self) -> Result<Vec<String>, AppError> {
        let mut missing = std::collections::BTreeSet::new();
        for id in self.ids()? {
            let Ok(doc) = self.try_doc(id) else { continue };
            let Ok(hashes) = doc.photo_hashes() else {
                continue;
            };
            for hash in hashes {
                if !self.store.has_blob(&hash)? {
                    missing.insert(hash);
                }
            }
        }
        Ok(missing.into_iter().collect())
    }

    pub fn pending_photos(&self) -> (u64, u64) {
        match self.store.pending_uploads() {
            Ok(list) => (
                list.len() as u64,
                list.iter()
                    .map(|p| p.size.saturating_sub(p.uploaded_bytes))
                    .sum(),
            ),
            Err(_) => (0, 0),
        }
    }
}
