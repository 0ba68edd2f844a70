//! Corrective actions carried over to a visit (issue 14, item 1): the open actions of
//! the trust an inspector is about to visit, taken while online so that they can be
//! checked on site with no network, and each check sent once the network is back.
//!
//! - **Taken while online.** On every list refresh the worker asks the server, for each
//!   trust of an inspection of this user that is a draft or in progress, for the actions
//!   it lets the user see (`GET /api/v1/actions?trust=T`: the server's carry-over rule)
//!   and keeps what it answered in the encrypted store (`settings`, `actions.carried:T`):
//!   each action's id, trust, inspection and steps, from which core's rules rebuild it
//!   ([`Action::fold`]), so status, plan and due date are core's reading of the steps the
//!   server stamped, not fields an answer could set apart from them.
//! - **Checked offline.** A check (done, partly, not done, with a note) is judged by
//!   core's rules first ([`Action::take`]: who may check, from which statuses, the
//!   note's length), then kept in the store (`actions.check:ID`) as waiting, before the
//!   command returns: closing the app or losing power loses nothing.
//! - **Sent when back.** The worker sends each waiting check (`POST
//!   /api/v1/actions/{id}/steps`, `check`) before it asks for the actions again. A check
//!   the server took is marked sent; one it refused (the action closed meanwhile, or the
//!   inspector no longer on the visit) is marked refused with the server's words, shown,
//!   and not sent again (the action stays listed while this device holds a check of it
//!   the server did not take); an unreachable server leaves it waiting.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::actions::{Action, Outcome, Status, Step, Taken};
use wardcheck_core::inspection::Stamp;
use wardcheck_core::policy::Role;

use super::remote::{self, Listed, RemoteError};
use super::{App, local::Local};
use crate::error::{AppError, ErrorCode};

const CARRIED: &str = "actions.carried:";
const CHECK: &str = "actions.check:";

/// An action as the server sent it: what the app keeps of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wire {
    id: Uuid,
    trust: String,
    inspection: Uuid,
    steps: Vec<Taken>,
}

/// A trust's actions as last taken from the server.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    taken_at: DateTime<Utc>,
    actions: Vec<Wire>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Kept on this device, not yet taken by the server.
    Waiting,
    /// Taken by the server.
    Sent,
    /// Refused by the server (see `message`); not sent again.
    Refused,
}

/// An inspector's check of an action on site, as this device keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalCheck {
    /// Who made it (the user signed in then): only their own checks are sent.
    #[serde(default)]
    pub by: String,
    pub outcome: Outcome,
    pub note: String,
    pub checked_at: DateTime<Utc>,
    pub state: CheckState,
    /// The server's words, when it refused the check.
    pub message: Option<String>,
}

/// One carried-over action as the field app shows it.
#[derive(Debug, Serialize)]
pub struct CarriedAction {
    #[serde(flatten)]
    pub action: Action,
    /// Not closed, and due before today.
    pub overdue: bool,
    /// This device's latest check of it, if any.
    pub check: Option<LocalCheck>,
}

/// The open actions carried over to one inspection.
#[derive(Debug, Serialize)]
pub struct Carried {
    /// When they were last taken from the server; null if never (not yet online since
    /// the visit was assigned).
    pub taken_at: Option<DateTime<Utc>>,
    pub actions: Vec<CarriedAction>,
}

fn kept(local: &Local, trust: &str) -> Option<Kept> {
    let bytes = local.store.setting(&format!("{CARRIED}{trust}")).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn local_check(local: &Local, action: Uuid) -> Option<LocalCheck> {
    let bytes = local.store.setting(&format!("{CHECK}{action}")).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn put_check(local: &mut Local, action: Uuid, check: &LocalCheck) -> Result<(), AppError> {
    let bytes = serde_json::to_vec(check).map_err(AppError::internal)?;
    local
        .store
        .put_setting(&format!("{CHECK}{action}"), &bytes)?;
    Ok(())
}

/// The actions kept for the trust of inspection `id`, rebuilt by core's rules: those
/// raised in earlier inspections and not closed.
fn carried(local: &mut Local, id: Uuid) -> Result<Carried, AppError> {
    let trust = local.doc(id)?.view()?.meta.trust;
    let Some(k) = kept(local, &trust) else {
        return Ok(Carried {
            taken_at: None,
            actions: Vec::new(),
        });
    };
    let today = Utc::now().date_naive();
    let mut actions = Vec::new();
    for w in k.actions {
        if w.trust != trust || w.inspection == id {
            continue;
        }
        match Action::fold(w.id, &w.trust, w.inspection, w.steps) {
            Ok(action) if action.status != Status::Closed => actions.push(CarriedAction {
                overdue: action.overdue(today),
                check: local_check(local, action.id),
                action,
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("action {} as the server sent it does not fold: {e}", w.id),
        }
    }
    actions.sort_by_key(|a| (a.action.due, a.action.id));
    Ok(Carried {
        taken_at: Some(k.taken_at),
        actions,
    })
}

impl App {
    /// The open actions of earlier visits carried over to inspection `id`, as this device
    /// last took them from the server, each with this device's check of it.
    pub fn carried_actions(&self, id: Uuid) -> Result<Carried, AppError> {
        self.signed_in()?;
        let mut local = self.local()?;
        carried(&mut local, id)
    }

    /// Records the signed-in inspector's check of carried-over `action` on inspection
    /// `id`, judged by core's rules, kept before this returns, and sent when online.
    pub fn check_action(
        &self,
        id: Uuid,
        action: Uuid,
        outcome: Outcome,
        note: &str,
    ) -> Result<Carried, AppError> {
        let session = self.signed_in()?;
        if session.settings.role != "inspector" {
            return Err(AppError::new(
                ErrorCode::Invalid,
                "only an inspector on the visit checks an action on site",
            ));
        }
        let mut local = self.local()?;
        let state = local
            .doc(id)?
            .view()?
            .meta
            .state
            .values
            .first()
            .map(|v| v.value.value);
        if !matches!(
            state,
            Some(
                wardcheck_core::inspection::State::Draft
                    | wardcheck_core::inspection::State::InProgress
            )
        ) {
            return Err(AppError::new(
                ErrorCode::Invalid,
                "actions are checked on a visit not yet submitted",
            ));
        }
        let now = carried(&mut local, id)?;
        let Some(a) = now.actions.iter().find(|a| a.action.id == action) else {
            return Err(AppError::new(
                ErrorCode::NotFound,
                "no such open action of an earlier visit to this trust",
            ));
        };
        let stamp = Stamp::new(session.settings.user.clone(), Utc::now());
        let step = Step::Check {
            outcome,
            note: note.to_owned(),
        };
        // The server decides by the team role; an inspector's and a lead's checks are
        // judged alike.
        a.action
            .take(step, Role::Inspector, &stamp)
            .map_err(|r| AppError::new(ErrorCode::Invalid, r.message))?;
        put_check(
            &mut local,
            action,
            &LocalCheck {
                by: session.settings.user.clone(),
                outcome,
                note: note.to_owned(),
                checked_at: stamp.at,
                state: CheckState::Waiting,
                message: None,
            },
        )?;
        let out = carried(&mut local, id)?;
        let checks = waiting_count(&local);
        drop(local);
        self.inner().hub.set_pending_checks(checks);
        self.sync_now();
        Ok(out)
    }
}

/// How many checks are still to send.
pub(crate) fn waiting_count(local: &Local) -> u64 {
    waiting(local).len() as u64
}

/// Checks still to send, oldest first.
fn waiting(local: &Local) -> Vec<(Uuid, LocalCheck)> {
    let mut out: Vec<(Uuid, LocalCheck)> = local
        .store
        .settings_with_prefix(CHECK)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix(CHECK)?.parse().ok()?;
            let c: LocalCheck = serde_json::from_slice(&v).ok()?;
            (c.state == CheckState::Waiting).then_some((id, c))
        })
        .collect();
    out.sort_by_key(|(_, c)| c.checked_at);
    out
}

/// Most trusts whose actions one exchange takes: an inspector has a handful of visits
/// to prepare at a time.
const MAX_TRUSTS_PER_EXCHANGE: usize = 50;
/// How long one exchange may take in all; what is left is tried at the next refresh.
const EXCHANGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs [`exchange`] in its own task, never in the sync connection's (which must keep
/// reading the server's frames), one at a time: a refresh while one runs adds nothing.
/// Only for inspectors, who are the ones to check actions on site.
pub(crate) fn spawn(app: &App, server: &str, token: &str, listed: Vec<Listed>) {
    let Some(session) = app.session() else { return };
    if session.settings.role != "inspector" {
        return;
    }
    let Ok(guard) = app.inner().exchanging.clone().try_lock_owned() else {
        return;
    };
    let (app, server, token, user) = (
        app.clone(),
        server.to_owned(),
        token.to_owned(),
        session.settings.user,
    );
    tokio::spawn(async move {
        let _guard = guard;
        let run = exchange(&app, &server, &token, &user, &listed);
        if tokio::time::timeout(EXCHANGE_DEADLINE, run).await.is_err() {
            tracing::info!("actions: the exchange ran out of time; the next refresh goes on");
        }
    });
}

/// Marks `sent` as the server's answer made it, unless the check kept now is another
/// one (made while this one was being sent): that one stays waiting.
fn settle(app: &App, id: Uuid, sent: &LocalCheck) {
    let Ok(mut local) = app.local() else { return };
    let now = local_check(&local, id);
    let same = now
        .as_ref()
        .is_some_and(|c| c.checked_at == sent.checked_at && c.state == CheckState::Waiting);
    if same && let Err(e) = put_check(&mut local, id, sent) {
        tracing::warn!("actions: could not record the check of {id}: {e:?}");
    }
    let checks = waiting_count(&local);
    drop(local);
    app.inner().hub.set_pending_checks(checks);
}

/// Sends every waiting check of `user`, then takes again the actions of each trust the
/// user has a visit to prepare or under way (see the module doc). A check the server
/// answers with a transient error, or a 409 (changed elsewhere: read again), stays
/// waiting and the others go on; an unreachable server ends the exchange.
async fn exchange(app: &App, server: &str, token: &str, user: &str, listed: &[Listed]) {
    let http = app.inner().http();
    let to_send = match app.local() {
        Ok(local) => waiting(&local),
        Err(_) => return,
    };
    for (id, check) in to_send.into_iter().filter(|(_, c)| c.by == user) {
        let body = serde_json::json!({
            "step": "check",
            "outcome": check.outcome,
            "note": check.note,
        });
        let mut done = check.clone();
        match remote::action_step(http, server, token, id, &body).await {
            Ok(()) => done.state = CheckState::Sent,
            Err(RemoteError::Offline(why)) => {
                tracing::info!("actions: not sent, the server cannot be reached: {why}");
                return;
            }
            Err(e) if e.is_transient() => {
                tracing::info!("actions: check of {id} not sent yet: {e}");
                continue;
            }
            // Another step was kept first (read again), or the answer is not a Wardcheck
            // server's (a proxy's page): tried again at the next refresh.
            Err(RemoteError::Refused {
                status,
                code,
                message,
            }) if status == 409 || code.is_empty() => {
                tracing::info!(
                    "actions: check of {id} answered {status} ({message}); tried again later"
                );
                continue;
            }
            Err(RemoteError::Refused { message, .. }) => {
                done.state = CheckState::Refused;
                done.message = Some(message);
            }
            Err(e) => {
                tracing::warn!("actions: check of {id} not sent: {e}");
                continue;
            }
        }
        settle(app, id, &done);
    }
    let open: BTreeSet<&str> = listed
        .iter()
        .filter(|l| matches!(l.state.as_deref(), Some("draft" | "in_progress")))
        .filter_map(|l| l.trust.as_deref())
        .collect();
    // Kept lists of trusts with no visit to prepare any more are dropped, unless they
    // hold an action with a check this device has not had taken.
    if let Ok(mut local) = app.local() {
        for (key, _) in local
            .store
            .settings_with_prefix(CARRIED)
            .unwrap_or_default()
        {
            let Some(trust) = key.strip_prefix(CARRIED) else {
                continue;
            };
            if open.contains(trust) {
                continue;
            }
            let unsent = kept(&local, trust).is_some_and(|k| {
                k.actions
                    .iter()
                    .any(|w| local_check(&local, w.id).is_some_and(|c| c.state != CheckState::Sent))
            });
            if !unsent && let Err(e) = local.store.delete_setting(&key) {
                tracing::warn!("actions: could not drop {trust}'s actions: {e}");
            }
        }
    }
    for trust in open.into_iter().take(MAX_TRUSTS_PER_EXCHANGE) {
        let answer =
            match remote::trust_actions::<serde_json::Value>(http, server, token, trust).await {
                Ok(a) => a,
                Err(RemoteError::Offline(why)) => {
                    tracing::info!("actions: the server cannot be reached: {why}");
                    return;
                }
                Err(e) => {
                    tracing::info!("actions: {trust}'s actions not taken: {e}");
                    continue;
                }
            };
        // One action this build cannot read (a step kind a newer server knows) is left
        // out, not the trust's whole list.
        let mut actions: Vec<Wire> = Vec::with_capacity(answer.len());
        for v in answer {
            match serde_json::from_value::<Wire>(v) {
                Ok(w) if !actions.iter().any(|a| a.id == w.id) => actions.push(w),
                Ok(_) => {}
                Err(e) => tracing::warn!("actions: an action of {trust} left out: {e}"),
            }
        }
        let Ok(mut local) = app.local() else { return };
        // An action the server no longer lists to this user (closed, or the visit
        // submitted) stays while this device holds a check of it not taken: its
        // refusal is shown where the inspector made it.
        let before = kept(&local, trust);
        if let Some(before) = &before {
            for w in &before.actions {
                let unsent = local_check(&local, w.id).is_some_and(|c| c.state != CheckState::Sent);
                if unsent && !actions.iter().any(|a| a.id == w.id) {
                    actions.push(w.clone());
                }
            }
        }
        let k = Kept {
            taken_at: Utc::now(),
            actions,
        };
        let bytes = serde_json::to_vec(&k).expect("actions serialise");
        if let Err(e) = local
            .store
            .put_setting(&format!("{CARRIED}{trust}"), &bytes)
        {
            tracing::warn!("actions: could not keep {trust}'s actions: {e}");
        }
    }
}
