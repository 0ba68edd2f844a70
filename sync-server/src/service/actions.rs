//! Corrective actions (issue 14, item 1; the model and its rules are core's,
//! [`wardcheck_core::actions`]): raised from a finding or a failed item of an inspection
//! that has been submitted, then planned by the trust lead, accepted or sent back by a
//! reviewer, reported on with evidence, and verified and closed.
//!
//! Who sees an action: reviewers, every one; a trust lead, their own trust's, once the
//! inspection it was raised in is shared with the trust; an inspector, those of a trust
//! they are assigned (the one it was raised in, or a later visit to the same trust not yet
//! submitted: open actions carry over to the next inspection); an admin, none (403). An action the caller may not see and one that does not
//! exist get the same 404.
//!
//! Every step is stamped by the server (the caller, the server's clock), decided by
//! core's [`Action::take`] for the caller's role, kept only on top of the steps it
//! followed (another step kept first is a 409 `changed_elsewhere`), and audited
//! (`action` events on `action:ID`, the outcome the step or the refusal's code). The
//! priority is the finding's or the item's severity, never the caller's to choose.
//! Evidence is named by SHA-256: each must be a file the caller uploaded to the server's
//! store (as photos are, `PUT /blobs/...`).

use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::actions::{Action, Priority, Raise, Source, Step};
use wardcheck_core::inspection::{Answer, Stamp, State};
use wardcheck_core::policy::Role as PolicyRole;

use super::documents::{checklist_of, refusal};
use super::{Acting, Input, blocking};
use crate::access;
use crate::error::AppError;
use crate::storage::{InspectionQuery, InspectionRecord, Role, Storage, StorageError, User};

/// `POST /api/v1/inspections/{id}/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    source: Source,
    what: String,
    due: NaiveDate,
}

/// An action as the API shows it.
#[derive(Debug, Serialize)]
pub struct ActionView {
    #[serde(flatten)]
    action: Action,
    /// Not closed, and due before today (UTC).
    overdue: bool,
}

impl From<Action> for ActionView {
    fn from(action: Action) -> Self {
        let overdue = action.overdue(Utc::now().date_naive());
        ActionView { action, overdue }
    }
}

/// `GET /api/v1/actions`: `trust` narrows to one trust.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    trust: Option<String>,
}

fn action_target(id: Uuid) -> String {
    format!("action:{id}")
}

/// Most corrective actions raised in one inspection.
pub const MAX_ACTIONS_PER_INSPECTION: usize = 200;

/// The inspection states after the visit, in which actions are raised.
const AFTER_THE_VISIT: [State; 3] = [State::Submitted, State::SharedWithTrust, State::Closed];

impl Acting<'_> {
    /// Raises an action from a finding or a failed item of inspection `id`.
    pub async fn raise_action(
        &self,
        id: &str,
        body: impl Input<NewAction>,
    ) -> Result<ActionView, AppError> {
        let user = &self.caller.user;
        if !matches!(user.role, Role::Inspector | Role::Reviewer) {
            return Err(self.forbidden("actions", "raise corrective actions").await);
        }
        let rec = self.visible(id).await?;
        // An inspector not on the inspection's team gets its 404.
        let Some(role) = access::policy_role(user, &rec) else {
            return Err(self.hidden(rec.id).await);
        };
        // Refusals are audited against the inspection (the action never was).
        let what_target = super::target(rec.id);
        let NewAction { source, what, due } = match body() {
            Ok(b) => b,
            Err(e) => return self.acted(&what_target, "raise", Err(e)).await,
        };
        let action = Uuid::new_v4();
        let storage = self.state.storage.clone();
        let trust = rec.trust.clone();
        let inspection = rec.id;
        let raised_here = blocking(move || {
            Ok(storage
                .actions(Some(&trust))?
                .iter()
                .filter(|a| a.inspection == inspection)
                .count())
        })
        .await?;
        if raised_here >= MAX_ACTIONS_PER_INSPECTION {
            let e = AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many",
                format!(
                    "an inspection has at most {MAX_ACTIONS_PER_INSPECTION} corrective actions"
                ),
            );
            return self.acted(&what_target, "raise", Err(e)).await;
        }
        if !AFTER_THE_VISIT.contains(&rec.state) {
            let e = AppError::conflict(
                "wrong_state",
                "actions are raised once the inspection is submitted",
            );
            return self.acted(&what_target, "raise", Err(e)).await;
        }
        let priority = match self.priority_of(&rec, &source).await {
            Ok(p) => p,
            Err(e) => return self.acted(&what_target, "raise", Err(e)).await,
        };
        let stamp = Stamp::new(user.name.clone(), Utc::now());
        let raised = Action::raise(
            action,
            &rec.trust,
            rec.id,
            role,
            Raise {
                source,
                what,
                priority,
                due,
            },
            &stamp,
        )
        .map_err(refusal);
        let result = match raised {
            Ok(a) => {
                let storage = self.state.storage.clone();
                blocking(move || {
                    storage.add_action(&a)?;
                    Ok(a)
                })
                .await
            }
            Err(e) => Err(e),
        };
        // Kept: audited against the action it made.
        let what_target = match &result {
            Ok(_) => action_target(action),
            Err(_) => what_target,
        };
        let a = self.acted(&what_target, "raise", result).await?;
        Ok(a.into())
    }

    /// The actions the caller may see (of `trust` only, if given), oldest first.
    pub async fn actions(&self, q: impl Input<ActionQuery>) -> Result<Vec<ActionView>, AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden("actions", "read corrective actions").await);
        }
        let ActionQuery { trust } = q()?;
        let storage = self.state.storage.clone();
        let user = self.caller.user.clone();
        let seen = blocking(move || Ok(visible_actions(&*storage, &user, trust)?)).await?;
        Ok(seen.into_iter().map(ActionView::from).collect())
    }

    /// One action, if the caller may see it.
    pub async fn action(&self, id: &str) -> Result<ActionView, AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden("actions", "read corrective actions").await);
        }
        Ok(self.seen_action(id).await?.0.into())
    }

    /// Takes one step of action `id` (any but raising: that is [`Acting::raise_action`]).
    pub async fn step_action(
        &self,
        id: &str,
        body: impl Input<Step>,
    ) -> Result<ActionView, AppError> {
        let user = &self.caller.user;
        if matches!(user.role, Role::Admin) {
            return Err(self.forbidden("actions", "change corrective actions").await);
        }
        let (action, rec) = self.seen_action(id).await?;
        let what = action_target(action.id);
        let step = match body() {
            Ok(step) => step,
            Err(e) => return self.acted(&what, "step", Err(e)).await,
        };
        let name = step.name();
        // An inspector who sees the action without being on its inspection's team (a
        // later visit to the trust) acts as an inspector.
        let role = access::policy_role(user, &rec).unwrap_or(PolicyRole::Inspector);
        // Who may take it, from where, and its content (core's rules, in memory); then
        // that each evidence file is the caller's upload; then kept.
        let stamp = Stamp::new(user.name.clone(), Utc::now());
        let evidence = match &step {
            Step::Progress(p) => p.evidence.clone(),
            _ => Vec::new(),
        };
        let next = match action.take(step, role, &stamp) {
            Ok(next) => next,
            Err(r) => return self.acted(&what, name, Err(refusal(r))).await,
        };
        if let Err(e) = self.evidence_uploaded(&evidence).await {
            return self.acted(&what, name, Err(e)).await;
        }
        let storage = self.state.storage.clone();
        let result = blocking(move || match storage.add_action_step(&next) {
            Ok(()) => Ok(next),
            Err(StorageError::Stale(_)) => Err(AppError::conflict(
                "changed_elsewhere",
                "another step of this action was taken at the same moment: nothing \
                 was kept; read the action again",
            )),
            Err(e) => Err(e.into()),
        })
        .await;
        Ok(self.acted(&what, name, result).await?.into())
    }

    /// Audits one step's outcome (`step`, or the error's code) on `what`.
    async fn acted<T>(
        &self,
        what: &str,
        step: &str,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outcome = match &result {
            Ok(_) => step,
            Err(e) => e.code,
        };
        self.audit("action", what, outcome).await;
        result
    }

    /// Action `id` and the record of the inspection it was raised in, if the caller may
    /// see it; else the 404 of a missing one (audited).
    async fn seen_action(&self, id: &str) -> Result<(Action, InspectionRecord), AppError> {
        let parsed = id.parse::<Uuid>().ok();
        let storage = self.state.storage.clone();
        let user = self.caller.user.clone();
        let found = blocking(move || {
            let Some(a) = parsed.map(|id| storage.action(id)).transpose()?.flatten() else {
                return Ok(None);
            };
            let Some(rec) = storage.inspection(a.inspection)? else {
                return Ok(None);
            };
            let sees = Seer::of(&*storage, &user.role, &user.name)?;
            Ok(sees.action(&*storage, &a)?.then_some((a, rec)))
        })
        .await?;
        match found {
            Some(found) => Ok(found),
            None => {
                let what = parsed.map_or("action:(malformed)".into(), action_target);
                self.audit("denied", &what, "not_found").await;
                Err(AppError::not_found())
            }
        }
    }

    /// The priority of what an action is raised from: a finding's severity (its
    /// current value), or a failed item's (not met, or partly met) from the checklist.
    async fn priority_of(
        &self,
        rec: &InspectionRecord,
        source: &Source,
    ) -> Result<Priority, AppError> {
        let view = self.inspection_view(rec).await?;
        let unknown = |what: String| AppError::new(StatusCode::NOT_FOUND, "unknown_source", what);
        match source {
            Source::Finding { finding } => view
                .findings
                .iter()
                .find(|f| f.id == *finding)
                .and_then(|f| f.severity.values.first())
                .map(|s| Priority::from(s.value.value))
                .ok_or_else(|| unknown(format!("the inspection has no finding {finding}"))),
            Source::Item { item } => {
                let failed = view
                    .responses
                    .get(item)
                    .and_then(|r| r.answer.as_ref())
                    .and_then(|a| a.values.first())
                    .is_some_and(|a| matches!(a.value.value, Answer::NotMet | Answer::PartlyMet));
                if !failed {
                    return Err(unknown(format!(
                        "the inspection has no item {item:?} answered not met or partly met"
                    )));
                }
                let storage = self.state.storage.clone();
                let r = rec.clone();
                let checklist = blocking(move || checklist_of(&*storage, &r)).await?;
                checklist
                    .item(item)
                    .map(|(_, i)| Priority::from(i.severity))
                    .ok_or_else(|| unknown(format!("the checklist has no item {item:?}")))
            }
        }
    }

    /// Every file named is one the caller uploaded, complete, to the server's store.
    async fn evidence_uploaded(&self, evidence: &[String]) -> Result<(), AppError> {
        let storage = self.state.storage.clone();
        let user = self.caller.user.name.clone();
        let evidence = evidence.to_vec();
        blocking(move || {
            for sha in &evidence {
                let complete = storage.blob_status(sha)?.is_some_and(|b| b.complete);
                if !complete || !storage.blob_uploaded_by(sha, &user)? {
                    return Err(AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown_evidence",
                        format!("evidence {sha} is not a file you uploaded whole to the server"),
                    ));
                }
            }
            Ok(())
        })
        .await
    }
}

/// Which actions a caller sees (see the module doc).
enum Seer {
    All,
    /// A trust lead: their trust's, of inspections shared with it.
    Trust(String),
    /// An inspector: the inspections they are assigned.
    Inspector(Vec<InspectionRecord>),
}

impl Seer {
    fn of(storage: &dyn Storage, role: &Role, name: &str) -> Result<Seer, StorageError> {
        Ok(match role {
            Role::Reviewer => Seer::All,
            Role::TrustLead(t) => Seer::Trust(t.clone()),
            Role::Inspector => Seer::Inspector(storage.list_inspections(&InspectionQuery {
                assignee: Some(name.to_owned()),
                limit: 1_000_000,
                ..Default::default()
            })?),
            Role::Admin => Seer::Inspector(Vec::new()),
        })
    }

    fn action(&self, storage: &dyn Storage, a: &Action) -> Result<bool, StorageError> {
        Ok(match self {
            Seer::All => true,
            Seer::Trust(t) => {
                *t == a.trust
                    && storage
                        .inspection(a.inspection)?
                        .is_some_and(|r| r.trust == *t && r.shared_at.is_some())
            }
            // Their own inspection's, and those carried over to a later visit of the
            // same trust they are assigned, not yet submitted.
            Seer::Inspector(assigned) => {
                if assigned.iter().any(|r| r.id == a.inspection) {
                    return Ok(true);
                }
                let Some(raised_in) = storage.inspection(a.inspection)? else {
                    return Ok(false);
                };
                assigned.iter().any(|r| {
                    r.trust == a.trust
                        && r.created_at > raised_in.created_at
                        && matches!(r.state, State::Draft | State::InProgress)
                })
            }
        })
    }
}

/// Every action `user` may see (of `trust` only, if given), oldest first. Admins see
/// none.
pub(super) fn visible_actions(
    storage: &dyn Storage,
    user: &User,
    trust: Option<String>,
) -> Result<Vec<Action>, StorageError> {
    let narrowed = match (&user.role, trust) {
        (Role::Admin, _) => return Ok(Vec::new()),
        (Role::TrustLead(own), Some(t)) if *own != t => return Ok(Vec::new()),
        (Role::TrustLead(own), _) => Some(own.clone()),
        (_, t) => t,
    };
    let all = storage.actions(narrowed.as_deref())?;
    let sees = Seer::of(storage, &user.role, &user.name)?;
    let mut seen = Vec::new();
    for a in all {
        if sees.action(storage, &a)? {
            seen.push(a);
        }
    }
    Ok(seen)
}

/// Whether `user` may see `action` (see the module doc): for reads that another route
/// decides, such as an evidence photo's.
pub fn may_see(storage: &dyn Storage, user: &User, action: &Action) -> Result<bool, StorageError> {
    Seer::of(storage, &user.role, &user.name)?.action(storage, action)
}
