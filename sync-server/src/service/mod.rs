//! The server's service layer: one method per operation of the JSON API on the server's
//! state, on [`Acting`] (a signed-in caller and the state), each doing the access check,
//! the work and the audit event in one place. The HTTP handlers (`crate::api`) extract
//! their input, call one method and convert what it returns.
//!
//! - [`admin`]: users, devices and the audit log, for admins.
//! - [`inspections`]: list, read, create, assign, share, change state.
//! - [`review`]: reviewers' comments, releases, sign-offs and reopenings; trust leads'
//!   responses.
//! - [`join`]: the telemetry join and the trust's summary.
//! - [`national`]: the national picture across trusts, and one trust's page.
//! - [`reports`]: the PDF report, kept under its SHA-256, and evidence packs (ZIP).
//! - [`search`]: words across inspections, findings, comments and actions the caller
//!   may see.
//! - [`history`]: every value a field has held, with its author.
//! - [`events`]: following an inspection's changes (the dashboard's pushed updates).
//! - `documents`: the one path into a document, through the one owner of live
//!   documents ([`crate::sync::Documents`]): views read from the live document, typed
//!   changes made on it.
//!
//! Input is taken unparsed (a closure that parses it): access is decided before anything
//! the caller sent is looked at, so a 403 or 404 never depends on a body. A resource the
//! caller may not see and one that does not exist get the same 404, so ids cannot be
//! probed; a role that may never do an operation gets 403 before the id is looked up, so
//! a 403 never tells that an id exists.

pub mod actions;
pub mod admin;
pub mod checklists;
mod documents;
pub mod events;
pub mod history;
pub mod inspections;
pub mod join;
pub mod national;
pub mod reports;
pub mod review;
pub mod search;
pub mod updates;

use uuid::Uuid;

use crate::auth::Caller;
use crate::error::AppError;
use crate::storage::InspectionRecord;
use crate::{AppState, access};

/// A caller's input, read but not yet parsed: parsed only once access is decided.
pub trait Input<T>: FnOnce() -> Result<T, AppError> {}
impl<T, F: FnOnce() -> Result<T, AppError>> Input<T> for F {}

/// A signed-in caller acting on the server's state: the operations of the JSON API.
#[derive(Clone, Copy)]
pub struct Acting<'a> {
    state: &'a AppState,
    caller: &'a Caller,
}

impl std::fmt::Debug for Acting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acting")
            .field("user", &self.caller.user.name)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The operations `caller` may attempt on this state.
    pub fn acting<'a>(&'a self, caller: &'a Caller) -> Acting<'a> {
        Acting {
            state: self,
            caller,
        }
    }
}

/// Runs blocking work (storage) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f).await?
}

/// An inspection's audit target.
pub(crate) fn target(id: Uuid) -> String {
    format!("inspection:{id}")
}

impl Acting<'_> {
    /// Writes one audit event for the caller.
    async fn audit(&self, action: &str, target: &str, outcome: &str) {
        crate::audit(self.state, Some(self.caller), action, target, outcome).await;
    }

    /// Audits a write's outcome (`op`, or the error's code) and passes the result on.
    async fn audited<T>(
        &self,
        what: &str,
        op: &str,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outcome = match &result {
            Ok(_) => op,
            Err(e) => e.code,
        };
        self.audit("doc_write", what, outcome).await;
        result
    }

    /// The 403 of a role that may never `action` (audited against `what`).
    async fn forbidden(&self, what: &str, action: &str) -> AppError {
        self.audit("denied", what, "role").await;
        AppError::forbidden(format!(
            "{} may not {action}",
            self.caller.user.role.with_article()
        ))
    }

    /// The 404 of a missing id for an inspection the caller may not reach (audited).
    async fn hidden(&self, id: Uuid) -> AppError {
        self.audit("denied", &target(id), "denied").await;
        AppError::not_found()
    }

    /// The record of `id` if the caller may see it; else the 404 of a missing id (and an
    /// audit event for the refusal).
    async fn visible(&self, id: &str) -> Result<InspectionRecord, AppError> {
        let found = match id.parse::<Uuid>() {
            Ok(id) => {
                let storage = self.state.storage.clone();
                blocking(move || Ok(storage.inspection(id)?)).await?
            }
            Err(_) => None,
        };
        match found {
            Some(rec) if access::can_see(&self.caller.user, &rec) => Ok(rec),
            Some(rec) => Err(self.hidden(rec.id).await),
            None => {
                let what = id
                    .parse::<Uuid>()
                    .map_or("inspection:(malformed)".into(), target);
                self.audit("denied", &what, "not_found").await;
                Err(AppError::not_found())
            }
        }
    }

    /// The record of `id` if the caller may read its inspection document (its view);
    /// else the same 404.
    async fn readable(&self, id: &str) -> Result<InspectionRecord, AppError> {
        let rec = self.visible(id).await?;
        if !access::can_read_view(&self.caller.user, &rec) {
            return Err(self.hidden(rec.id).await);
        }
        Ok(rec)
    }
}
