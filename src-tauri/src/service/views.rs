//! What the commands return, beyond the core's own views (docs/APP-IPC.md).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;
use wardcheck_core::checklist::{AnswerKind, Checklist, Evidence, References, Scope};
use wardcheck_core::inspection::{InspectionView, State};

use super::keystore::KeystoreKind;

/// `app_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppStatus {
    pub version: &'static str,
    pub keystore: KeystoreKind,
    pub keystore_error: Option<String>,
    pub signed_in: Option<SignedIn>,
    /// This device's Wardcheck data was deleted because the server asked (the device was
    /// revoked with a wipe): why, when, and what was lost with it. Kept until the next
    /// sign-in.
    pub wiped: Option<Wiped>,
}

/// What the app says after it deleted its data at the server's request (`wiped.json`
/// in the data folder: nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Wiped {
    pub at: DateTime<Utc>,
    /// The server's words.
    pub reason: String,
    /// Changes and photos that had not reached the server, deleted with the rest.
    pub unsynced_changes: u64,
    pub unsynced_photos: u64,
    /// Whether the server heard the count (its audit log records it).
    pub reported: bool,
    /// The server to tell, while it has not heard.
    #[serde(default)]
    pub server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedIn {
    pub server: String,
    pub user: String,
    pub display_name: String,
    pub role: String,
    pub device_id: i64,
}

/// One row of the home screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectionSummary {
    pub id: Uuid,
    pub trust: String,
    pub sites: Vec<String>,
    pub state: State,
    pub checklist_title: String,
    pub created_at: DateTime<Utc>,
    pub visit_start: Option<NaiveDate>,
    pub answered: usize,
    pub total: usize,
    pub conflicts: usize,
    /// Set when this device cannot open it yet: which checklist it needs, and why that
    /// cannot be had (the row is shown, not opened).
    pub unavailable: Option<String>,
}

/// An inspection the server lists that this device cannot open: its checklist could
/// not be had.
#[derive(Debug, Clone, PartialEq)]
pub struct Unavailable {
    pub trust: String,
    pub state: State,
    /// `id@version` of the checklist it pins.
    pub checklist: String,
    pub why: String,
}

impl InspectionSummary {
    /// The row of an inspection this device cannot open yet.
    pub fn unavailable(id: Uuid, u: &Unavailable) -> Self {
        InspectionSummary {
            id,
            trust: u.trust.clone(),
            sites: Vec::new(),
            state: u.state,
            checklist_title: u.checklist.clone(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            visit_start: None,
            answered: 0,
            total: 0,
            conflicts: 0,
            unavailable: Some(format!(
                "It needs checklist {}, which this device does not have: {}",
                u.checklist, u.why
            )),
        }
    }

    pub fn of(view: &InspectionView, checklist: &Checklist) -> Self {
        InspectionSummary {
            id: view.id,
            trust: view.meta.trust.clone(),
            sites: view.meta.sites.clone(),
            state: view.meta.state.current().value,
            checklist_title: checklist.title.clone(),
            created_at: view.meta.created.at,
            visit_start: view.meta.visit_start,
            answered: view.progress.iter().map(|p| p.answered).sum(),
            total: view.progress.iter().map(|p| p.total).sum(),
            conflicts: view.conflicts.len(),
            unavailable: None,
        }
    }
}

/// `open_inspection`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenInspection {
    pub view: InspectionView,
    pub checklist: ChecklistForApp,
}

/// The checklist as the app shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChecklistForApp {
    pub id: String,
    pub version: String,
    pub title: String,
    pub sections: Vec<SectionForApp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionForApp {
    pub id: String,
    pub title: String,
    pub scope: Scope,
    pub items: Vec<ItemForApp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemForApp {
    pub id: String,
    pub prompt: String,
    pub guidance: String,
    pub references: Vec<String>,
    pub scope: Scope,
    /// The answer the item takes (`{"kind": "compliance"}`, `number` with min, max and
    /// unit, `date`, `text`): additive to the contract's fields.
    pub answer: AnswerKind,
    /// For device checks: how to observe it on the device.
    pub observe: Option<String>,
    pub evidence: Vec<Evidence>,
    /// The central telemetry check set beside the answer, and how it judges, in words:
    /// "Telemetry: endpoints.bitlocker_off (endpoints whose system drive is not
    /// BitLocker-protected); judged on end-user devices ...; tolerance 1%; ..." (issue 12:
    /// the inspector knows on site what the answer will be set beside).
    pub telemetry: Option<String>,
}

impl ChecklistForApp {
    pub fn of(c: &Checklist) -> Self {
        ChecklistForApp {
            id: c.id.clone(),
            version: c.version.clone(),
            title: c.title.clone(),
            sections: c
                .sections
                .iter()
                .map(|s| SectionForApp {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    scope: s.scope,
                    items: s
                        .items
                        .iter()
                        .map(|i| ItemForApp {
                            id: i.id.clone(),
                            prompt: i.prompt.clone(),
                            guidance: i.guidance.clone(),
                            references: references(&i.refs),
                            scope: s.scope,
                            answer: i.answer.clone(),
                            observe: i.observe.clone(),
                            evidence: i.evidence.clone(),
                            telemetry: i.telemetry.map(|t| telemetry_text(t, s.scope, i)),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The check beside an item, and how it judges, in words.
fn telemetry_text(
    check: wardcheck_core::checklist::TelemetryCheck,
    scope: Scope,
    item: &wardcheck_core::checklist::Item,
) -> String {
    let how = match scope {
        Scope::Device => "each sampled device is judged by its own telemetry record".to_owned(),
        Scope::Inspection => {
            let judge = item
                .judge
                .clone()
                .unwrap_or_else(|| wardcheck_core::judge::Judge::default_for(check));
            format!("judged on {}", judge.describe(check))
        }
    };
    format!("Telemetry: {check} ({}); {how}", check.description())
}

/// An item's references as the labels an inspector knows them by.
fn references(r: &References) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = r.ndg {
        out.push(format!("NDG standard {n}"));
    }
    if let Some(d) = &r.dspt {
        out.push(format!("DSPT {d}"));
    }
    if let Some(c) = &r.caf {
        out.push(format!("CAF-aligned DSPT {c}"));
    }
    if let Some(c) = &r.cyber_essentials {
        out.push(format!("Cyber Essentials: {c}"));
    }
    if let Some(c) = &r.cis {
        out.push(format!("CIS Windows 10 {c}"));
    }
    if let Some(k) = &r.kloe {
        out.push(format!("CQC KLOE {k}"));
    }
    out
}

/// `add_photo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoAdded {
    pub sha256: String,
    /// Size of the stored (stripped, re-encoded) photo.
    pub bytes: u64,
    pub view: InspectionView,
}

/// Most entries one history lists (the oldest first).
pub const MAX_HISTORY: usize = 2_000;

/// What a history is of: exactly one of an item, a finding, a device.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySubject {
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default)]
    pub finding: Option<uuid::Uuid>,
    #[serde(default)]
    pub device: Option<uuid::Uuid>,
}

impl HistorySubject {
    pub fn into_core(self) -> Result<wardcheck_core::history::Subject, crate::error::AppError> {
        use wardcheck_core::history::Subject;
        match (self.item, self.finding, self.device) {
            (Some(i), None, None)
                if !i.is_empty()
                    && i.chars().count() <= wardcheck_core::inspection::MAX_SHORT_CHARS =>
            {
                Ok(Subject::Item(i))
            }
            (None, Some(f), None) => Ok(Subject::Finding(f)),
            (None, None, Some(d)) => Ok(Subject::Device(d)),
            _ => Err(crate::error::AppError::invalid(
                "name exactly one of item, finding or device",
            )),
        }
    }
}

/// `inspection_history`'s answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    pub entries: Vec<wardcheck_core::history::Entry>,
    pub truncated: bool,
}
