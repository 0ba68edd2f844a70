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

use automerge::sync;
use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist, ChecklistPin};
use wardcheck_core::inspection::Inspection;
use wardcheck_core::store::{Store, StoreError};

use crate::error::{AppError, ErrorCode};

/// The checklists bundled into this build, loaded once.
static BUNDLED: LazyLock<Vec<Arc<Checklist>>> =
    LazyLock::new(|| checklist::bundled().into_iter().map(Arc::new).collect());

/// The bundled checklist an inspection pins, or an error that says which is missing.
pub fn checklist_for(pin: &ChecklistPin) -> Result<Arc<Checklist>, AppError> {
    BUNDLED
        .iter()
        .find(|c| c.pin == *pin)
        .cloned()
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!(
                    "This inspection follows checklist {}@{}, which this version of the app \
                     does not include: update the app to open it",
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

/// The store and its loaded inspections.
#[derive(Debug)]
pub struct Local {
    pub store: Store,
    docs: HashMap<Uuid, Inspection>,
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
        self.pending.clear();
    }

    /// Forgets the loaded copy, so the next use reloads what the store holds (after a
    /// failed operation, whose half-made edits must not ride along with the next one).
    pub fn evict(&mut self, id: Uuid) {
        self.docs.remove(&id);
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
        match self.try_doc(id) {
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
        let ids = self.ids().unwrap_or_default();
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
