//! How the API changes a document: the one path every API write takes, for the inspection
//! document (state changes, comments, sign-offs) and the trust response document
//! (responses to findings).
//!
//! A change is made with a typed core operation on a copy of the stored document, on a
//! fresh actor, stamped with the caller. The copy is then synced into the document the
//! sync engine holds ([`crate::sync::Documents`]) exactly as a client would sync it. So
//! the change goes through the one place that writes documents while connections use
//! them: it is committed to storage there before anything acknowledges it, the state
//! column and photo references follow, it survives the engine's compaction, and the
//! connected clients receive it at once. Concurrent edits merge as any two clients'
//! edits do.

use automerge::sync;
use automerge::{ActorId, AutoCommit, ChangeHash};
use uuid::Uuid;
use wardcheck_core::inspection::{Inspection, InspectionError};
use wardcheck_core::response::{ResponseError, TrustResponse};

use crate::AppState;
use crate::error::AppError;
use crate::inspections::{self, encode_heads};
use crate::storage::{InspectionRecord, Storage, StorageError};

/// The sync engine's name for this API when it syncs a change into a document.
const API_PEER: &str = "server-api";

/// Most sync round trips a change may take to reach the in-memory document: two or
/// three suffice (heads, then the change, then the acknowledgement).
const MAX_SYNC_ROUNDS: usize = 8;

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f).await?
}

/// A copy of a document that syncs like a client: [`Inspection`] or [`TrustResponse`].
pub(super) trait Replica: Send + 'static {
    fn generate(&mut self, peer: &mut sync::State) -> Option<sync::Message>;
    fn receive(&mut self, peer: &mut sync::State, m: sync::Message) -> Result<(), String>;
}

impl Replica for Inspection {
    fn generate(&mut self, peer: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(peer)
    }
    fn receive(&mut self, peer: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.receive_sync_message(peer, m)
            .map_err(|e| e.to_string())
    }
}

impl Replica for TrustResponse {
    fn generate(&mut self, peer: &mut sync::State) -> Option<sync::Message> {
        self.generate_sync_message(peer)
    }
    fn receive(&mut self, peer: &mut sync::State, m: sync::Message) -> Result<(), String> {
        self.receive_sync_message(peer, m)
            .map_err(|e| e.to_string())
    }
}

/// Applies `op` to the inspection document of `rec` and syncs it into the live
/// document; returns the record, its state column in step with the document.
pub(super) async fn edit_inspection(
    state: &AppState,
    rec: InspectionRecord,
    op: impl FnOnce(&mut Inspection) -> Result<(), InspectionError> + Send + 'static,
) -> Result<InspectionRecord, AppError> {
    let id = rec.id;
    let storage = state.storage.clone();
    let r = rec.clone();
    let (insp, changed) = blocking(move || {
        let doc = load_doc(&*storage, id)?;
        let checklist = inspections::pinned_checklist(&*storage, &r).map_err(AppError::internal)?;
        // A fresh actor per change: the server never shares an actor between two
        // writers that could change the same document at once.
        let mut insp = Inspection::from_doc(doc.with_actor(ActorId::random()), checklist)
            .map_err(AppError::internal)?;
        op(&mut insp).map_err(inspection_error)?;
        let heads = insp.heads();
        Ok((insp, heads))
    })
    .await?;
    sync_into_live(state, id, Some(rec.clone()), insp, changed).await?;

    // The column holds the state the document shows: a concurrent change elsewhere may
    // have won (both stay in the document as a conflict).
    let storage = state.storage.clone();
    blocking(move || {
        let doc = load_doc(&*storage, id)?;
        let checklist =
            inspections::pinned_checklist(&*storage, &rec).map_err(AppError::internal)?;
        let shown = Inspection::from_doc(doc, checklist)
            .and_then(|i| i.state())
            .map_err(AppError::internal)?
            .current()
            .value;
        storage.set_state(id, shown)?;
        storage.inspection(id)?.ok_or_else(AppError::not_found)
    })
    .await
}

/// Applies `op` to the trust response document of `rec` and syncs it into the live
/// document; returns the response document as it now stands.
pub(super) async fn edit_response(
    state: &AppState,
    rec: &InspectionRecord,
    op: impl FnOnce(&mut TrustResponse) -> Result<(), ResponseError> + Send + 'static,
) -> Result<TrustResponse, AppError> {
    let doc_id = rec.response_doc;
    let storage = state.storage.clone();
    let (resp, changed) = blocking(move || {
        let mut doc = load_doc(&*storage, doc_id)?;
        let mut resp =
            TrustResponse::load(&doc.save(), ActorId::random()).map_err(AppError::internal)?;
        op(&mut resp).map_err(response_error)?;
        let heads = resp.heads();
        Ok((resp, heads))
    })
    .await?;
    sync_into_live(state, doc_id, None, resp, changed).await?;
    let storage = state.storage.clone();
    blocking(move || {
        let mut doc = load_doc(&*storage, doc_id)?;
        TrustResponse::load(&doc.save(), ActorId::random()).map_err(AppError::internal)
    })
    .await
}

/// Syncs `replica` into the live document `doc`, then checks that storage holds every
/// change in `changed`. `index` is the inspection whose state column and photo
/// references follow the document, for an inspection document.
async fn sync_into_live<R: Replica>(
    state: &AppState,
    doc: Uuid,
    index: Option<InspectionRecord>,
    mut replica: R,
    changed: Vec<ChangeHash>,
) -> Result<(), AppError> {
    let (connection, inbox) = state.docs.connection();
    let handle = state.docs.open(doc, connection, inbox);
    let mut ours = sync::State::new();
    let mut theirs = sync::State::new();
    for _ in 0..MAX_SYNC_ROUNDS {
        let (back, message) = blocking(move || {
            let m = replica.generate(&mut ours);
            Ok(((replica, ours), m))
        })
        .await?;
        (replica, ours) = back;
        let Some(message) = message else { break };
        let exchanged = state
            .docs
            .exchange(&handle, API_PEER.to_owned(), theirs, message, index.clone())
            .await
            .map_err(|e| AppError::internal(format!("syncing an API change into {doc}: {e:?}")))?;
        theirs = exchanged.state;
        if let Some(reply) = exchanged.reply {
            let back = blocking(move || {
                replica
                    .receive(&mut ours, reply)
                    .map_err(AppError::internal)?;
                Ok((replica, ours))
            })
            .await?;
            (replica, ours) = back;
        }
    }
    state.docs.notify_others(&handle);
    drop(handle);

    let storage = state.storage.clone();
    blocking(move || {
        let mut stored = load_doc(&*storage, doc)?;
        if changed
            .iter()
            .any(|h| stored.get_change_by_hash(h).is_none())
        {
            return Err(AppError::internal(format!(
                "an API change of {doc} did not reach storage"
            )));
        }
        Ok(())
    })
    .await
}

/// Loads a stored document (snapshot, then changes) and checks it reaches the heads
/// stored beside it: a damaged change chunk is dropped silently by Automerge, and this
/// is where that is caught.
pub(super) fn load_doc(storage: &dyn Storage, doc: Uuid) -> Result<AutoCommit, AppError> {
    let stored = storage
        .load_doc(doc)?
        .ok_or_else(|| AppError::internal(format!("document {doc} has a record but no data")))?;
    let mut am = AutoCommit::load(&stored.snapshot).map_err(AppError::internal)?;
    for change in &stored.changes {
        am.load_incremental(change).map_err(AppError::internal)?;
    }
    if encode_heads(&am.get_heads()) != stored.heads {
        return Err(AppError::internal(StorageError::Corrupt(format!(
            "document {doc} does not reach its stored heads"
        ))));
    }
    Ok(am)
}

/// What a refused inspection operation answers: the caller's input (422) or the
/// inspection's state (409), with core's message, which names the value refused.
pub(super) fn inspection_error(e: InspectionError) -> AppError {
    use axum::http::StatusCode;
    let unprocessable = |code, e: &InspectionError| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    };
    match e {
        InspectionError::IllegalTransition { .. } => {
            AppError::conflict("illegal_transition", e.to_string())
        }
        InspectionError::WrongState(..) | InspectionError::Closed => {
            AppError::conflict("wrong_state", e.to_string())
        }
        InspectionError::TooLong { .. } => unprocessable("too_long", &e),
        InspectionError::Empty(_) => unprocessable("empty", &e),
        InspectionError::UnknownItem(_)
        | InspectionError::UnknownFinding(_)
        | InspectionError::UnknownDevice(_) => unprocessable("unknown_target", &e),
        other => AppError::internal(other),
    }
}

fn response_error(e: ResponseError) -> AppError {
    use axum::http::StatusCode;
    match e {
        ResponseError::TooLong { .. } => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_long", e.to_string())
        }
        ResponseError::Empty(_) => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty", e.to_string())
        }
        other => AppError::internal(other),
    }
}
