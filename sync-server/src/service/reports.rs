//! Reports that stand on their own (issue 14, item 5): the PDF report the server
//! renders ([`crate::report`]) and keeps under its SHA-256, and evidence packs (ZIP).
//!
//! - `POST /api/v1/inspections/{id}/reports` renders the report from what the caller
//!   may read (the inspection page's views: a trust lead's holds released comments
//!   only), keeps it, audits `export` with its SHA-256, and answers with its record.
//! - `GET /api/v1/inspections/{id}/reports` lists the reports kept, newest first.
//! - `GET /api/v1/reports/{sha256}` downloads one (audited).
//! - `POST /api/v1/inspections/{id}/evidence-pack` and
//!   `POST /api/v1/trusts/{code}/evidence-pack` make a ZIP: each inspection's report
//!   (rendered and kept as above), its photos and action evidence as stored, CSVs, and a
//!   manifest of every file's SHA-256; the ZIP's own SHA-256 goes in the audit and in a
//!   response header.
//!
//! Who: whoever reads the inspection's view (its assigned inspectors, reviewers, the
//! trust lead once shared); admins hold no document rights (403). A report made under a
//! regulator's rights (every comment) is never listed to or downloaded by a trust lead:
//! the same 404 as a report that does not exist. At most [`limits::EXPORTS_AT_ONCE`]
//! exports run at once (another waits, then 429), and one reads at most
//! [`limits::MAX_EXPORT_BYTES`] of stored photos (413 `pack_too_large` before reading).

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wardcheck_core::actions::{Action, Step};
use wardcheck_core::checklist::Checklist;
use wardcheck_core::inspection::InspectionView;
use wardcheck_core::policy::DocKind;
use wardcheck_core::response::ResponseView;

use super::actions::visible_actions;
use super::documents::checklist_of;
use super::inspections::all_visible;
use super::{Acting, blocking, target};
use crate::AppState;
use crate::access;
use crate::auth::Caller;
use crate::error::AppError;
use crate::join::Join;
use crate::limits;
use crate::report::pack::{self, PackFile};
use crate::report::{self, Audience, PhotoBytes, ReportInput};
use crate::storage::{AuditEvent, DocAccess, InspectionRecord, ReportMeta, Role};
use crate::telemetry::TelemetryStore;

/// Whether `s` is a SHA-256 as the server names files: 64 lowercase hex digits.
fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The reports kept for an inspection.
#[derive(Debug, Serialize)]
pub struct ReportList {
    pub reports: Vec<ReportMeta>,
}

/// A file to send: a kept report or a pack.
#[derive(Debug)]
pub struct Download {
    pub file_name: String,
    pub content_type: &'static str,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// What one inspection's report and pack are made from, read under the caller's rights.
struct Gathered {
    rec: InspectionRecord,
    view: InspectionView,
    checklist: std::sync::Arc<Checklist>,
    response: Option<ResponseView>,
    join: Result<Join, String>,
    actions: Vec<Action>,
    trust_name: Option<String>,
}

impl Gathered {
    /// Every stored file it names: photos of answers, then evidence of actions' progress.
    fn evidence(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let photos = self
            .view
            .responses
            .values()
            .flat_map(|r| r.photos.iter().map(|p| p.value.hash.clone()));
        let progress = self.actions.iter().flat_map(|a| {
            a.steps.iter().flat_map(|s| match &s.step {
                Step::Progress(p) => p.evidence.clone(),
                _ => Vec::new(),
            })
        });
        photos
            .chain(progress)
            .filter(|h| seen.insert(h.clone()))
            .collect()
    }
}

/// The stored files an export reads, by SHA-256: bytes and type, or why absent.
type Stored = BTreeMap<String, Result<(Vec<u8>, String), String>>;

impl Acting<'_> {
    fn audience(&self) -> Audience {
        match self.caller.user.role {
            Role::TrustLead(_) => Audience::Trust,
            _ => Audience::Regulator,
        }
    }

    /// Writes an `export` audit event; an export whose event cannot be written is not
    /// handed out (500).
    pub(super) async fn export_audit(
        &self,
        target: &str,
        outcome: &str,
        detail: String,
    ) -> Result<(), AppError> {
        let c = self.caller;
        let event = AuditEvent {
            at: Utc::now(),
            actor: c.user.name.clone(),
            device: Some(c.device.id),
            action: "export".into(),
            target: crate::storage::audit_target(target),
            from: c.from.clone(),
            outcome: outcome.into(),
            detail: Some(detail),
        };
        let storage = self.state.storage.clone();
        blocking(move || Ok(storage.audit(&event)?)).await
    }

    /// Runs an export to its end in a task of its own, holding a turn: a caller that goes
    /// away (or a request timed out) neither frees the turn while the work goes on nor
    /// leaves a report kept without its audit event.
    async fn detached<T, F>(&self, work: impl FnOnce(AppState, Caller) -> F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
    {
        let turn = self.export_turn().await?;
        let task = work(self.state.clone(), self.caller.clone());
        tokio::spawn(async move {
            let out = task.await;
            drop(turn);
            out
        })
        .await?
    }

    /// A turn at exporting, or 429.
    async fn export_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        match tokio::time::timeout(
            limits::EXPORT_WAIT,
            self.state.exports.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(AppError::rate_limited(limits::EXPORT_WAIT.as_secs())),
        }
    }

    /// The record of `id` if the caller may read it for a report (403 for admins).
    async fn exportable(&self, id: &str, what: &str) -> Result<InspectionRecord, AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            let t = id.parse().map_or("inspection:(malformed)".into(), target);
            return Err(self.forbidden(&t, what).await);
        }
        self.readable(id).await
    }

    async fn gather_report(&self, rec: InspectionRecord) -> Result<Gathered, AppError> {
        let view = self.inspection_view(&rec).await?;
        let read_response = access::doc_right(
            &self.caller.user,
            &DocAccess {
                doc: rec.response_doc,
                kind: DocKind::TrustResponse,
                inspection: rec.clone(),
            },
        )
        .can_read();
        let response = if read_response {
            Some(self.response_view(&rec).await?)
        } else {
            None
        };
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        let user = self.caller.user.clone();
        let (r, v) = (rec.clone(), view.clone());
        let (checklist, join, actions, trust_name) = blocking(move || {
            let checklist = checklist_of(&*storage, &r)?;
            let join =
                crate::join::join(&telemetry.reader(), &v, &checklist).map_err(|e| e.to_string());
            let actions: Vec<Action> = visible_actions(&*storage, &user, Some(r.trust.clone()))?
                .into_iter()
                .filter(|a| a.inspection == r.id)
                .collect();
            let trust_name = telemetry.trust(&r.trust)?.map(|t| t.name);
            Ok((checklist, join, actions, trust_name))
        })
        .await?;
        Ok(Gathered {
            rec,
            view,
            checklist,
            response,
            join,
            actions,
            trust_name,
        })
    }

    /// Reads the stored files `hashes` names, refusing (413) before reading when they
    /// come to more than `budget` bytes.
    async fn read_stored(
        &self,
        hashes: Vec<String>,
        what: &str,
        budget: u64,
    ) -> Result<Stored, AppError> {
        let storage = self.state.storage.clone();
        let sized = blocking(move || {
            let mut total = 0u64;
            let mut sized = Vec::new();
            for h in hashes {
                // Only a photo id (64 lowercase hex digits) ever names a stored file, or a
                // path in a pack.
                if !is_sha256(&h) {
                    sized.push((h, false));
                    continue;
                }
                let status = storage.blob_status(&h)?;
                let complete = status.as_ref().is_some_and(|s| s.complete);
                if complete {
                    total += status.map_or(0, |s| s.received);
                }
                sized.push((h, complete));
            }
            Ok((total, sized))
        })
        .await?;
        let (total, sized) = sized;
        if total > budget {
            self.export_audit(what, "pack_too_large", format!("{total} bytes of evidence"))
                .await?;
            return Err(AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "pack_too_large",
                format!(
                    "the evidence comes to {total} bytes, more than the {budget} one export may \
                     hold: export the inspections one at a time"
                ),
            ));
        }
        let storage = self.state.storage.clone();
        blocking(move || {
            let mut out = Stored::new();
            for (h, complete) in sized {
                let got = if complete {
                    storage
                        .blob(&h)?
                        .ok_or_else(|| "not on the server".to_string())
                } else {
                    Err("not yet uploaded to the server".to_string())
                };
                out.insert(h, got);
            }
            Ok(out)
        })
        .await
    }

    /// Renders the report of `g`, keeps it and audits it.
    async fn render_kept(
        &self,
        g: &std::sync::Arc<Gathered>,
        stored: &std::sync::Arc<Stored>,
    ) -> Result<(ReportMeta, Vec<u8>), AppError> {
        let (g2, s2) = (g.clone(), stored.clone());
        let made_by = self.caller.user.name.clone();
        let audience = self.audience();
        let made_at = Utc::now();
        let rendered = blocking(move || {
            // Each distinct photo once, whatever number of items name it.
            let mut pixels_left = report::MAX_REENCODED_PIXELS;
            let photos = g2
                .view
                .responses
                .values()
                .flat_map(|r| r.photos.iter())
                .map(|p| p.value.hash.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|hash| {
                    let shown = match s2.get(&hash) {
                        Some(Ok((bytes, _))) => {
                            report::prepare_photo(bytes.clone(), &mut pixels_left).map_or_else(
                                |e| PhotoBytes::Missing(format!("cannot be drawn: {e}")),
                                PhotoBytes::Image,
                            )
                        }
                        Some(Err(why)) => PhotoBytes::Missing(why.clone()),
                        None => PhotoBytes::Missing("not read".into()),
                    };
                    (hash, shown)
                })
                .collect();
            let input = ReportInput {
                record: &g2.rec,
                trust_name: g2.trust_name.as_deref(),
                view: &g2.view,
                checklist: &g2.checklist,
                response: g2.response.as_ref(),
                join: g2.join.as_ref().ok(),
                join_error: g2.join.as_ref().err().map(String::as_str),
                actions: &g2.actions,
                made_by: &made_by,
                made_at,
                audience,
            };
            Ok(report::render(&input, photos))
        })
        .await?;
        let meta = ReportMeta {
            sha256: hex::encode(Sha256::digest(&rendered.pdf)),
            inspection: g.rec.id,
            audience: audience.as_str().into(),
            made_by: self.caller.user.name.clone(),
            made_at,
            size: rendered.pdf.len() as u64,
            pages: rendered.pages as u32,
        };
        let storage = self.state.storage.clone();
        let (m, pdf) = (meta.clone(), rendered.pdf);
        let pdf = blocking(move || {
            storage.add_report(&m, &pdf)?;
            Ok(pdf)
        })
        .await?;
        self.export_audit(
            &target(g.rec.id),
            "report",
            format!(
                "sha256 {}, {} bytes, {} pages, audience {}",
                meta.sha256, meta.size, meta.pages, meta.audience
            ),
        )
        .await?;
        Ok((meta, pdf))
    }

    /// Renders, keeps and audits the report of inspection `id`.
    pub async fn make_report(&self, id: &str) -> Result<ReportMeta, AppError> {
        let rec = self.exportable(id, "make reports").await?;
        self.detached(|state, caller| async move {
            let acting = state.acting(&caller);
            let g = acting.gather_report(rec).await?;
            let photos: Vec<String> = g
                .view
                .responses
                .values()
                .flat_map(|r| r.photos.iter().map(|p| p.value.hash.clone()))
                .collect();
            let stored = acting
                .read_stored(photos, &target(g.rec.id), limits::MAX_EXPORT_BYTES)
                .await?;
            let (meta, _) = acting
                .render_kept(&std::sync::Arc::new(g), &std::sync::Arc::new(stored))
                .await?;
            Ok(meta)
        })
        .await
    }

    /// The inspection as one CSV ([`pack::inspection_csv`]), read under the caller's
    /// rights (a trust lead's holds what the trust lead reads), and audited.
    pub async fn inspection_csv(&self, id: &str) -> Result<Download, AppError> {
        let rec = self.exportable(id, "export").await?;
        // A turn like any export: it reads the documents and runs the join.
        self.detached(|state, caller| async move {
            let acting = state.acting(&caller);
            let g = acting.gather_report(rec).await?;
            let csv = pack::inspection_csv(
                &g.view,
                &g.checklist,
                g.join.as_ref().ok(),
                g.response.as_ref(),
            );
            let download = Download {
                file_name: format!("wardcheck-{}-{}.csv", g.rec.trust, g.rec.id),
                content_type: "text/csv; charset=utf-8",
                sha256: hex::encode(Sha256::digest(&csv)),
                bytes: csv,
            };
            acting
                .export_audit(
                    &target(g.rec.id),
                    "csv",
                    format!(
                        "sha256 {}, {} bytes, audience {}",
                        download.sha256,
                        download.bytes.len(),
                        acting.audience().as_str()
                    ),
                )
                .await?;
            Ok(download)
        })
        .await
    }

    /// Whether the caller may read a report made for `audience`.
    fn may_read(&self, audience: &str) -> bool {
        !matches!(self.caller.user.role, Role::TrustLead(_))
            || Audience::parse(audience) == Some(Audience::Trust)
    }

    /// The reports kept for inspection `id` that the caller may read.
    pub async fn reports(&self, id: &str) -> Result<ReportList, AppError> {
        let rec = self.exportable(id, "read reports").await?;
        let storage = self.state.storage.clone();
        // A trust lead reads the reports made for the trust only (filtered before the limit).
        let only = match self.caller.user.role {
            Role::TrustLead(_) => Some(Audience::Trust.as_str()),
            _ => None,
        };
        let reports =
            blocking(move || Ok(storage.reports(rec.id, only, limits::REPORTS_LISTED)?)).await?;
        Ok(ReportList { reports })
    }

    /// A kept report's PDF (audited).
    pub async fn report_pdf(&self, sha256: &str) -> Result<Download, AppError> {
        let what = format!("report:{}", crate::storage::audit_target(sha256));
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden(&what, "read reports").await);
        }
        let valid = is_sha256(sha256);
        let storage = self.state.storage.clone();
        let key = sha256.to_string();
        let found = if valid {
            blocking(move || Ok(storage.report(&key)?)).await?
        } else {
            None
        };
        let Some(meta) = found else {
            self.audit("denied", &what, "not_found").await;
            return Err(AppError::not_found());
        };
        // The report's inspection decides, as the inspection page does (the same 404).
        self.readable(&meta.inspection.to_string()).await?;
        if !self.may_read(&meta.audience) {
            self.audit("denied", &what, "denied").await;
            return Err(AppError::not_found());
        }
        // Read only once access is decided; the hash recomputed, so a PDF changed where it
        // is stored is never handed out as the one the audit names.
        let storage = self.state.storage.clone();
        let key = meta.sha256.clone();
        let pdf = blocking(move || Ok(storage.report_pdf(&key)?))
            .await?
            .ok_or_else(AppError::not_found)?;
        if hex::encode(Sha256::digest(&pdf)) != meta.sha256 {
            self.export_audit(
                &target(meta.inspection),
                "download_refused",
                format!("report sha256 {} no longer hashes to its id", meta.sha256),
            )
            .await?;
            return Err(AppError::internal(format!(
                "the stored report {} no longer hashes to its id",
                meta.sha256
            )));
        }
        self.export_audit(
            &target(meta.inspection),
            "download",
            format!("report sha256 {}", meta.sha256),
        )
        .await?;
        Ok(Download {
            file_name: format!(
                "wardcheck-report-{}-{}.pdf",
                meta.inspection,
                &meta.sha256[..12]
            ),
            content_type: "application/pdf",
            sha256: meta.sha256,
            bytes: pdf,
        })
    }

    /// The files of one inspection's pack, under `dir`: its report (kept and audited),
    /// its evidence as stored, and CSVs. Returns the report's SHA-256.
    async fn pack_files(
        &self,
        rec: InspectionRecord,
        dir: &str,
        budget: &mut u64,
        files: &mut Vec<PackFile>,
    ) -> Result<String, AppError> {
        let g = self.gather_report(rec).await?;
        let stored = self
            .read_stored(g.evidence(), &target(g.rec.id), *budget)
            .await?;
        *budget =
            budget.saturating_sub(stored.values().flatten().map(|(b, _)| b.len() as u64).sum());
        let (g, stored) = (std::sync::Arc::new(g), std::sync::Arc::new(stored));
        let (meta, pdf) = self.render_kept(&g, &stored).await?;
        *budget = budget.saturating_sub(pdf.len() as u64);
        files.push(PackFile {
            path: format!("{dir}report.pdf"),
            bytes: pdf,
        });
        let photo_hashes: std::collections::BTreeSet<String> = g
            .view
            .responses
            .values()
            .flat_map(|r| r.photos.iter().map(|p| p.value.hash.clone()))
            .collect();
        let stored = std::sync::Arc::try_unwrap(stored).unwrap_or_else(|s| (*s).clone());
        let mut missing = Vec::new();
        for (hash, got) in stored {
            let folder = if photo_hashes.contains(&hash) {
                "photos"
            } else {
                "evidence"
            };
            match got {
                Ok((bytes, mime)) => files.push(PackFile {
                    path: format!("{dir}{folder}/{}", pack::evidence_name(&hash, &mime)),
                    bytes,
                }),
                Err(why) => missing.push(format!("{hash}: {why}")),
            }
        }
        files.push(PackFile {
            path: format!("{dir}answers.csv"),
            bytes: pack::answers_csv(&g.view, &g.checklist, g.join.as_ref().ok()),
        });
        files.push(PackFile {
            path: format!("{dir}findings.csv"),
            bytes: pack::findings_csv(&g.view, g.response.as_ref()),
        });
        files.push(PackFile {
            path: format!("{dir}actions.csv"),
            bytes: pack::actions_csv(&g.actions),
        });
        if !missing.is_empty() {
            files.push(PackFile {
                path: format!("{dir}MISSING.txt"),
                bytes: format!(
                    "Files the record names that the server does not hold (not uploaded yet, or \
                     refused):\n{}\n",
                    missing.join("\n")
                )
                .into_bytes(),
            });
        }
        Ok(meta.sha256)
    }

    /// The evidence pack of inspection `id`.
    pub async fn inspection_pack(&self, id: &str) -> Result<Download, AppError> {
        let rec = self.exportable(id, "make evidence packs").await?;
        self.detached(
            |state, caller| async move { state.acting(&caller).inspection_pack_of(rec).await },
        )
        .await
    }

    async fn inspection_pack_of(&self, rec: InspectionRecord) -> Result<Download, AppError> {
        let what = target(rec.id);
        let (inspection, trust) = (rec.id, rec.trust.clone());
        let mut files = Vec::new();
        let mut budget = limits::MAX_EXPORT_BYTES;
        let report = self.pack_files(rec, "", &mut budget, &mut files).await?;
        let about = serde_json::json!({
            "inspection": inspection,
            "trust": trust,
            "report_sha256": report,
            "made_by": self.caller.user.name,
            "audience": self.audience().as_str(),
        });
        let download = self
            .zip(
                files,
                about,
                &what,
                format!("wardcheck-evidence-{inspection}.zip"),
            )
            .await?;
        Ok(download)
    }

    /// The evidence pack of trust `code`: the newest
    /// [`limits::TRUST_PACK_INSPECTIONS`] inspections the caller may read, one folder
    /// each. Another trust, for a trust lead, is the same 404 as a trust with none.
    pub async fn trust_pack(&self, code: &str) -> Result<Download, AppError> {
        let what = format!("trust:{}", crate::storage::audit_target(code));
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden(&what, "make evidence packs").await);
        }
        let storage = self.state.storage.clone();
        let user = self.caller.user.clone();
        let valid = wardcheck_core::inspection::validate_trust(code).is_ok();
        let t = code.to_string();
        let mut recs = if valid {
            blocking(move || Ok(all_visible(&*storage, &user, Some(t))?)).await?
        } else {
            Vec::new()
        };
        recs.retain(|r| access::can_read_view(&self.caller.user, r));
        if recs.is_empty() {
            self.audit("denied", &what, "not_found").await;
            return Err(AppError::not_found());
        }
        let code = code.to_string();
        self.detached(|state, caller| async move {
            state.acting(&caller).trust_pack_of(&code, recs).await
        })
        .await
    }

    async fn trust_pack_of(
        &self,
        code: &str,
        mut recs: Vec<InspectionRecord>,
    ) -> Result<Download, AppError> {
        let what = format!("trust:{code}");
        recs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let left_out = recs.len().saturating_sub(limits::TRUST_PACK_INSPECTIONS);
        recs.truncate(limits::TRUST_PACK_INSPECTIONS);
        let mut files = Vec::new();
        let mut budget = limits::MAX_EXPORT_BYTES;
        let mut reports = Vec::new();
        for rec in recs {
            let id = rec.id;
            let sha = self
                .pack_files(rec, &format!("{id}/"), &mut budget, &mut files)
                .await?;
            reports.push(serde_json::json!({ "inspection": id, "report_sha256": sha }));
        }
        let about = serde_json::json!({
            "trust": code,
            "inspections": reports,
            "left_out": left_out,
            "made_by": self.caller.user.name,
            "audience": self.audience().as_str(),
        });
        self.zip(
            files,
            about,
            &what,
            format!("wardcheck-evidence-{code}.zip"),
        )
        .await
    }

    async fn zip(
        &self,
        files: Vec<PackFile>,
        about: serde_json::Value,
        what: &str,
        file_name: String,
    ) -> Result<Download, AppError> {
        let made_at = Utc::now();
        let packed =
            blocking(move || pack::zip(files, about, made_at).map_err(AppError::internal)).await?;
        self.export_audit(
            what,
            "evidence_pack",
            format!(
                "sha256 {}, {} bytes, {} files",
                packed.sha256,
                packed.zip.len(),
                packed.files.len()
            ),
        )
        .await?;
        Ok(Download {
            file_name,
            content_type: "application/zip",
            sha256: packed.sha256,
            bytes: packed.zip,
        })
    }
}
