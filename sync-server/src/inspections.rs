//! Creating inspections and resolving the checklists they pin: shared by the admin
//! command line and the HTTP API, so both make inspections the same way.

use std::sync::Arc;

use automerge::ActorId;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist};
use wardcheck_core::inspection::{Inspection, NewInspection, Stamp, State};
use wardcheck_core::response::TrustResponse;

use crate::storage::{InspectionRecord, PublishedChecklist, Storage, StoredDoc};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("no checklist {0:?}: use a bundled one or publish it first")]
    UnknownChecklist(String),
    #[error("published checklist {0} no longer validates: {1}")]
    BadChecklist(String, String),
    #[error("no user {0:?} to assign")]
    UnknownUser(String),
    #[error(transparent)]
    Inspection(#[from] wardcheck_core::inspection::InspectionError),
    #[error(transparent)]
    Response(#[from] wardcheck_core::response::ResponseError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// What creating an inspection takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInspection {
    pub trust: String,
    #[serde(default)]
    pub sites: Vec<String>,
    /// `id` or `id@version`; the newest published or bundled version when no version
    /// is given.
    pub checklist: String,
    #[serde(default)]
    pub assign: Vec<String>,
}

/// Finds a checklist by `id` or `id@version`, among the published ones first, then
/// the bundled ones.
pub fn resolve_checklist(storage: &dyn Storage, spec: &str) -> Result<Arc<Checklist>, CreateError> {
    let (id, version) = match spec.split_once('@') {
        Some((i, v)) => (i, Some(v)),
        None => (spec, None),
    };
    let published: Vec<PublishedChecklist> = storage
        .checklists()?
        .into_iter()
        .filter(|c| c.id == id && version.is_none_or(|v| c.version == v))
        .collect();
    if let Some(p) = published.last() {
        let c = checklist::load_files(&p.files).map_err(|e| {
            CreateError::BadChecklist(format!("{}@{}", p.id, p.version), e.to_string())
        })?;
        return Ok(Arc::new(c));
    }
    checklist::bundled()
        .into_iter()
        .find(|c| c.id == id && version.is_none_or(|v| c.version == v))
        .map(Arc::new)
        .ok_or_else(|| CreateError::UnknownChecklist(spec.to_owned()))
}

/// The checklist an inspection pins, for reading its document.
pub fn pinned_checklist(
    storage: &dyn Storage,
    rec: &InspectionRecord,
) -> Result<Arc<Checklist>, CreateError> {
    let spec = format!("{}@{}", rec.checklist_id, rec.checklist_version);
    let c = resolve_checklist(storage, &spec)?;
    if c.pin.sha256 != rec.checklist_sha256 {
        return Err(CreateError::BadChecklist(
            spec,
            "its SHA-256 differs from the pinned one".into(),
        ));
    }
    Ok(c)
}

/// Creates an inspection and its trust response document, stored in one transaction.
pub fn create(
    storage: &dyn Storage,
    req: &CreateInspection,
    by: &str,
    now: DateTime<Utc>,
) -> Result<InspectionRecord, CreateError> {
    let checklist = resolve_checklist(storage, &req.checklist)?;
    for user in &req.assign {
        if storage.user_by_name(user)?.is_none() {
            return Err(CreateError::UnknownUser(user.clone()));
        }
    }
    let id = Uuid::new_v4();
    let response_id = Uuid::new_v4();
    let stamp = Stamp::new(by, now);
    // The server's own actor for documents it creates.
    let actor = ActorId::random();
    let mut insp = Inspection::create(
        NewInspection {
            id,
            trust: req.trust.clone(),
            sites: req.sites.clone(),
            team: vec![],
            visit_start: None,
            visit_end: None,
        },
        checklist.clone(),
        actor.clone(),
        &stamp,
    )?;
    let mut resp = TrustResponse::create(id, actor, &stamp)?;
    let record = InspectionRecord {
        id,
        trust: req.trust.clone(),
        sites: req.sites.clone(),
        checklist_id: checklist.pin.id.clone(),
        checklist_version: checklist.pin.version.clone(),
        checklist_sha256: checklist.pin.sha256.clone(),
        state: State::Draft,
        response_doc: response_id,
        shared_at: None,
        created_at: now,
        created_by: by.to_owned(),
        assignees: req.assign.clone(),
    };
    let insp_doc = StoredDoc {
        heads: encode_heads(&insp.heads()),
        snapshot: insp.save(),
        changes: vec![],
    };
    let resp_doc = StoredDoc {
        heads: encode_heads(&resp.heads()),
        snapshot: resp.save(),
        changes: vec![],
    };
    storage.create_inspection(&record, &insp_doc, &resp_doc)?;
    Ok(record)
}

/// Heads as stored: sorted, 32 bytes each (the same encoding as the field app's store).
pub use wardcheck_core::store::{decode_heads, encode_heads};
