//! The open store and the inspections loaded from it, behind one lock.
//!
//! Commands and the sync worker both go through [`Local`]: a command loads (or finds)
//! the inspection, applies one core operation, and saves it with
//! [`Store::save_inspection`] before the lock is released, so a write is durable before
//! the command returns and the worker never sees a change that is not on disk. Nobody
//! holds the lock across a network wait.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use automerge::sync;
use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist, ChecklistPin};
use wardcheck_core::inspection::Inspection;
use wardcheck_core::store::Store;

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

/// The store and its loaded inspections.
#[derive(Debug)]
pub struct Local {
    pub store: Store,
    docs: HashMap<Uuid, Inspection>,
    /// Changes per document that the server has not acknowledged, as last counted.
    pending: HashMap<Uuid, u64>,
}

impl Local {
    pub fn new(store: Store) -> Self {
        Local {
            store,
            docs: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The inspection, loaded from the store on first use.
    pub fn doc(&mut self, id: Uuid) -> Result<&mut Inspection, AppError> {
        if !self.docs.contains_key(&id) {
            let raw = self.store.load_doc(id)?;
            let pin = Inspection::pin_of_doc(&raw)?;
            let checklist = checklist_for(&pin)?;
            let insp = Inspection::from_doc(raw, checklist)?;
            self.docs.insert(id, insp);
        }
        Ok(self.docs.get_mut(&id).expect("just loaded"))
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
        let n = match self.doc(id) {
            Ok(insp) => insp.changes_after(shared) as u64,
            // A document the app cannot open (unknown checklist) is not counted.
            Err(_) => 0,
        };
        self.pending.insert(id, n);
        n
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
