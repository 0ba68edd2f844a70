//! The telemetry join of an inspection ([`crate::join`]): its answers beside the latest
//! telemetry for its trust; and the figures behind the trust's charts.
//!
//! Whoever may read the inspection document may read both: reviewers, the assigned
//! inspectors, and the trust's lead once the inspection is shared. Everyone else, admins
//! included (they hold no document rights), gets the 404 of an id that does not exist.

use super::{Acting, blocking, target};
use crate::error::AppError;
use crate::inspections;
use crate::join::{Join, TrustSummary};
use crate::storage::{InspectionRecord, StorageError};

impl Acting<'_> {
    /// The join of inspection `id`. The view carries the record's trust and sites: the
    /// join reads the telemetry of the trust the server assigned the inspection to,
    /// whatever its document says.
    pub async fn join(&self, id: &str) -> Result<Join, AppError> {
        let rec = self.readable(id).await?;
        let join = self.join_of(&rec).await?;
        self.audit("doc_read", &target(rec.id), "join").await;
        Ok(join)
    }

    /// The join of `rec`, which the caller may read (not audited: the caller's is).
    pub(super) async fn join_of(&self, rec: &InspectionRecord) -> Result<Join, AppError> {
        let view = self.inspection_view(rec).await?;
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        let r = rec.clone();
        blocking(move || {
            let checklist =
                inspections::pinned_checklist(&*storage, &r).map_err(AppError::internal)?;
            Ok(crate::join::join(&telemetry.reader(), &view, &checklist)
                .map_err(StorageError::from)?)
        })
        .await
    }

    /// The figures behind the charts of the trust of inspection `id`
    /// ([`crate::join::telemetry_summary`]), under the same right as the join.
    pub async fn telemetry_summary(&self, id: &str) -> Result<TrustSummary, AppError> {
        let rec = self.readable(id).await?;
        let telemetry = self.state.telemetry.clone();
        let trust = rec.trust.clone();
        let summary = blocking(move || {
            let summary = crate::join::telemetry_summary(&telemetry.reader(), &trust);
            Ok(summary.map_err(StorageError::from)?)
        })
        .await?;
        self.audit("doc_read", &target(rec.id), "telemetry_summary")
            .await;
        Ok(summary)
    }
}
