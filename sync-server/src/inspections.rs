//! Creating inspections and resolving the checklists they pin: shared by the admin
//! command line and the HTTP API, so both make inspections the same way.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use automerge::ActorId;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist, Org, OrgType};
use wardcheck_core::inspection::{Inspection, NewInspection, Stamp, State, TeamMember, TeamRole};
use wardcheck_core::response::TrustResponse;
use wardcheck_core::review::Review;

use crate::storage::{
    DocKind, InspectionRecord, LEGACY_AUTHOR, PublishedChecklist, SERVER_AUTHOR, Storage, StoredDoc,
};
use crate::telemetry::TelemetryStore;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("no checklist {0:?}: use a bundled one or publish it first")]
    UnknownChecklist(String),
    #[error("published checklist {0} no longer validates: {1}")]
    BadChecklist(String, String),
    #[error("no user {0:?} to assign")]
    UnknownUser(String),
    #[error("{0:?} is not an inspector whose account is enabled: only inspectors join a team")]
    NotAnInspector(String),
    #[error(transparent)]
    Inspection(#[from] wardcheck_core::inspection::InspectionError),
    #[error(transparent)]
    Response(#[from] wardcheck_core::response::ResponseError),
    #[error(transparent)]
    Review(#[from] wardcheck_core::review::ReviewError),
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
    /// Inspectors to assign: the first is the team's lead inspector.
    #[serde(default)]
    pub assign: Vec<String>,
    /// The visit's first and last days, when planned (`YYYY-MM-DD`).
    #[serde(default)]
    pub visit_start: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub visit_end: Option<chrono::NaiveDate>,
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

/// The checklist an inspection pins, for reading its document and checking changes to
/// it. A pin names its bytes (id, version and SHA-256), so what it resolves to never
/// changes: each is parsed once per process and kept.
pub fn pinned_checklist(
    storage: &dyn Storage,
    rec: &InspectionRecord,
) -> Result<Arc<Checklist>, CreateError> {
    type Pins = HashMap<(String, String, String), Arc<Checklist>>;
    static PINNED: LazyLock<Mutex<Pins>> = LazyLock::new(Default::default);
    let key = (
        rec.checklist_id.clone(),
        rec.checklist_version.clone(),
        rec.checklist_sha256.clone(),
    );
    if let Some(c) = PINNED.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let spec = format!("{}@{}", rec.checklist_id, rec.checklist_version);
    let c = resolve_checklist(storage, &spec)?;
    if c.pin.sha256 != rec.checklist_sha256 {
        return Err(CreateError::BadChecklist(
            spec,
            "its SHA-256 differs from the pinned one".into(),
        ));
    }
    PINNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, c.clone());
    Ok(c)
}

/// Stores a bundled checklist's files the first time an inspection pins it, so that the
/// pin still resolves after an upgrade ships a newer version of the file (pins name
/// bytes; a build carries only its own). A checklist already stored under its id and
/// version is left as it is.
pub fn keep_bundled(storage: &dyn Storage, c: &Checklist) -> Result<(), CreateError> {
    let stored_other = |storage: &dyn Storage| -> Result<bool, CreateError> {
        Ok(storage
            .checklist(&c.pin.id, &c.pin.version)?
            .is_some_and(|p| p.sha256 != c.pin.sha256))
    };
    if stored_other(storage)? {
        // Another file was published under this id and version: an inspection pinned to
        // these bytes could never be read back.
        return Err(CreateError::BadChecklist(
            format!("{}@{}", c.pin.id, c.pin.version),
            "another file is stored under this id and version; bump the version".into(),
        ));
    }
    if storage.checklist(&c.pin.id, &c.pin.version)?.is_some() {
        return Ok(());
    }
    let Some(files) = checklist::bundled_files(&c.id) else {
        return Ok(());
    };
    let stored = PublishedChecklist {
        id: c.pin.id.clone(),
        version: c.pin.version.clone(),
        sha256: c.pin.sha256.clone(),
        files,
    };
    if checklist::load_files(&stored.files).map(|again| again.pin) != Ok(c.pin.clone()) {
        // Not this build's bytes (a published file of the same id): nothing to keep.
        return Ok(());
    }
    match storage.publish_checklist(&stored) {
        Ok(()) => Ok(()),
        // Published meanwhile: fine if it is these bytes.
        Err(crate::storage::StorageError::Exists(_)) if !stored_other(storage)? => Ok(()),
        Err(crate::storage::StorageError::Exists(_)) => Err(CreateError::BadChecklist(
            format!("{}@{}", c.pin.id, c.pin.version),
            "another file was stored under this id and version meanwhile".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The trust's type and trauma-centre flag from the trusts feed: they choose the sections
/// an inspection holds (an ambulance trust's has the ambulance section, an acute trust's
/// does not). `None` for a trust the feed does not list: every section.
pub fn org_of(
    telemetry: &dyn TelemetryStore,
    trust: &str,
) -> Result<Option<Org>, crate::storage::StorageError> {
    Ok(telemetry.trust(trust)?.and_then(|t| {
        Some(Org {
            kind: OrgType::from_name(t.trust_type.as_str())?,
            major_trauma_centre: t.major_trauma_centre,
        })
    }))
}

/// Creates an inspection and its trust response document, stored in one transaction;
/// the trust's type (which sections it holds) from the trusts feed in `telemetry`.
pub fn create(
    storage: &dyn Storage,
    telemetry: &dyn TelemetryStore,
    req: &CreateInspection,
    by: &str,
    now: DateTime<Utc>,
) -> Result<InspectionRecord, CreateError> {
    // Everything the caller sent is checked before anything is written.
    wardcheck_core::inspection::validate_trust(&req.trust)?;
    for site in &req.sites {
        wardcheck_core::inspection::validate_site(site, &req.trust)?;
    }
    wardcheck_core::inspection::validate_dates(req.visit_start, req.visit_end, now.date_naive())?;
    let checklist = resolve_checklist(storage, &req.checklist)?;
    let mut team = Vec::new();
    for (i, name) in req.assign.iter().enumerate() {
        let Some(user) = storage.user_by_name(name)? else {
            return Err(CreateError::UnknownUser(name.clone()));
        };
        if user.role != crate::storage::Role::Inspector || user.disabled {
            return Err(CreateError::NotAnInspector(name.clone()));
        }
        if team.iter().any(|m: &TeamMember| &m.user == name) {
            continue;
        }
        team.push(TeamMember {
            user: user.name,
            name: user.display_name,
            role: if i == 0 {
                TeamRole::LeadInspector
            } else {
                TeamRole::Inspector
            },
        });
    }
    keep_bundled(storage, &checklist)?;
    let id = Uuid::new_v4();
    let response_id = Uuid::new_v4();
    let review_id = Uuid::new_v4();
    let stamp = Stamp::new(by, now);
    // The server's own actor for the documents it makes, bound to the server.
    let actor = ActorId::random();
    storage.bind_actor(actor.to_bytes(), SERVER_AUTHOR, None, now)?;
    let org = org_of(telemetry, &req.trust)?;
    let mut insp = Inspection::create(
        NewInspection {
            id,
            trust: req.trust.clone(),
            sites: req.sites.clone(),
            team: team.clone(),
            visit_start: req.visit_start,
            visit_end: req.visit_end,
            org,
        },
        checklist.clone(),
        actor.clone(),
        &stamp,
    )?;
    let mut resp = TrustResponse::create(id, actor.clone(), &stamp)?;
    let mut review = Review::create(id, actor, &stamp)?;
    let record = InspectionRecord {
        id,
        trust: req.trust.clone(),
        sites: req.sites.clone(),
        checklist_id: checklist.pin.id.clone(),
        checklist_version: checklist.pin.version.clone(),
        checklist_sha256: checklist.pin.sha256.clone(),
        state: State::Draft,
        response_doc: response_id,
        review_doc: review_id,
        shared_at: None,
        created_at: now,
        created_by: by.to_owned(),
        assignees: {
            let mut a: Vec<String> = team.iter().map(|m| m.user.clone()).collect();
            a.sort();
            a
        },
        lead: team.first().map(|m| m.user.clone()),
        history_holds_comments: false,
    };
    let insp_doc = StoredDoc::new(insp.save(), encode_heads(&insp.heads()));
    let resp_doc = StoredDoc::new(resp.save(), encode_heads(&resp.heads()));
    let review_doc = StoredDoc::new(review.save(), encode_heads(&review.heads()));
    storage.create_inspection(
        &record,
        &[
            (id, DocKind::Inspection, &insp_doc),
            (response_id, DocKind::TrustResponse, &resp_doc),
            (review_id, DocKind::Review, &review_doc),
        ],
    )?;
    Ok(record)
}

/// Gives every inspection from before review documents its review document, moving the
/// comments its inspection document kept into it (and out of the inspection document,
/// which its trust lead reads). The history of such an inspection document still holds
/// the comments, so its record says so, and its trust lead reads it only through the
/// API's views from then on. Runs when a data folder is opened; does nothing the second
/// time. Returns how many inspections it moved.
pub fn migrate(storage: &dyn Storage, now: DateTime<Utc>) -> Result<usize, CreateError> {
    let ids = storage.without_review_doc()?;
    for id in &ids {
        let Some(rec) = storage.inspection(*id)? else {
            continue;
        };
        let stamp = Stamp::new(SERVER_AUTHOR, now);
        bind_history_actors(storage, &[rec.id, rec.response_doc], now)?;
        let actor = ActorId::random();
        storage.bind_actor(actor.to_bytes(), SERVER_AUTHOR, None, now)?;
        let mut moved = None;
        let mut comments = Vec::new();
        let mut unread = false;
        let opened = pinned_checklist(storage, &rec).ok().and_then(|c| {
            let stored = storage.load_doc(rec.id).ok().flatten()?;
            let doc = wardcheck_core::store::load_checked(
                rec.id,
                &stored.snapshot,
                stored.changes.iter().map(Vec::as_slice),
                &stored.heads,
            )
            .ok()?;
            Inspection::from_doc(doc.with_actor(actor.clone()), c).ok()
        });
        match opened {
            Some(mut insp) => {
                comments = insp.legacy_comments()?;
                if !comments.is_empty() {
                    let before = insp.heads();
                    insp.remove_legacy_comments(&stamp)?;
                    let after = insp.heads();
                    moved = Some((insp.save_after(&before), encode_heads(&after)));
                }
            }
            None => {
                // Whatever it holds stays unread: its trust lead reads views only.
                unread = true;
                tracing::warn!(
                    inspection = %rec.id,
                    "the inspection document did not open while moving its comments out; \
                     its trust lead will read it through the views only"
                )
            }
        }
        let mut review = Review::create(rec.id, actor, &stamp)?;
        review.import(&comments, &stamp)?;
        let review_doc = StoredDoc::new(review.save(), encode_heads(&review.heads()));
        let holds = moved.is_some() || unread;
        storage.add_review_doc(
            rec.id,
            Uuid::new_v4(),
            &review_doc,
            moved.as_ref().map(|(c, h)| (c.as_slice(), h.as_slice())),
            holds,
        )?;
        tracing::info!(inspection = %rec.id, comments = comments.len(), "gave an inspection its review document");
    }
    Ok(ids.len())
}

/// Binds the actors that wrote the history of documents from before actors were bound
/// (found by [`migrate`]): each to the one user its changes name (their commit
/// messages' `by`), or to [`LEGACY_AUTHOR`] when they name none, several, or no user
/// that exists, so that no one can write with it again. Until bound, anyone could claim
/// such an actor, seen in a document they read, and so lock its device out.
fn bind_history_actors(
    storage: &dyn Storage,
    docs: &[Uuid],
    now: DateTime<Utc>,
) -> Result<usize, CreateError> {
    let mut names: HashMap<ActorId, std::collections::BTreeSet<String>> = HashMap::new();
    for id in docs {
        let Some(stored) = storage.load_doc(*id)? else {
            continue;
        };
        let Ok(mut doc) = wardcheck_core::store::load_checked(
            *id,
            &stored.snapshot,
            stored.changes.iter().map(Vec::as_slice),
            &stored.heads,
        ) else {
            continue;
        };
        for c in doc.get_changes(&[]) {
            let by = c
                .message()
                .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .and_then(|v| v.get("by").and_then(|b| b.as_str().map(str::to_owned)));
            let entry = names.entry(c.actor_id().clone()).or_default();
            entry.insert(by.unwrap_or_default());
        }
    }
    let mut bound = 0;
    for (actor, by) in names {
        if storage.actor_binding(actor.to_bytes())?.is_some() {
            continue;
        }
        let one = (by.len() == 1).then(|| by.iter().next().cloned()).flatten();
        let user = match one {
            Some(n) if n == SERVER_AUTHOR => n,
            Some(n) if !n.is_empty() && storage.user_by_name(&n)?.is_some() => n,
            _ => LEGACY_AUTHOR.to_owned(),
        };
        storage.bind_actor(actor.to_bytes(), &user, None, now)?;
        bound += 1;
    }
    Ok(bound)
}

/// Heads as stored: sorted, 32 bytes each (the same encoding as the field app's store).
pub use wardcheck_core::store::{decode_heads, encode_heads};
