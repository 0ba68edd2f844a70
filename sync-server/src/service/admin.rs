//! Administration (issue 14, item 4), for admins only: everyone else gets 403 (audited)
//! before anything is looked up.
//!
//! - Users: list; add (no password: the answer carries a one-time code the admin hands
//!   over, which the user turns into a password with `POST /api/v1/password`); disable and
//!   re-enable; a new one-time code (a password reset). A code is kept only as its argon2
//!   hash, is good for [`limits::PASSWORD_CODE_TTL`] and for one use, and a new one
//!   replaces the old. An admin cannot disable their own account (409).
//! - Devices: list, with last seen (revoking and wiping is `POST /api/v1/devices/{id}/revoke`).
//! - The audit log: search by user, action, inspection, trust and time, newest first, a
//!   page at a time; and the same search as a CSV export (itself audited).
//! - Telemetry imports: every snapshot imported (newest first), and the newest import
//!   attempts from the audit log, refused ones with their error code. An import runs
//!   within its upload request, so there is no progress to follow apart from it.
//!
//! Every change is audited (`user_add`, `user_disable`, `user_enable`, `password_code`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Acting, Input, blocking};
use crate::auth;
use crate::error::AppError;
use crate::limits;
use crate::report::pack;
use crate::service::reports::Download;
use crate::storage::{AuditEvent, AuditQuery, Device, Role, StorageError, User};

/// A user as the admin pages show one (never the password's hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub name: String,
    pub display_name: String,
    pub role: &'static str,
    pub trust: Option<String>,
    pub disabled: bool,
}

impl std::fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeCode")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            role: u.role.name(),
            trust: match u.role {
                Role::TrustLead(t) => Some(t),
                _ => None,
            },
            name: u.name,
            display_name: u.display_name,
            disabled: u.disabled,
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    /// `inspector`, `reviewer`, `trust-lead` or `admin`.
    role: String,
    /// A trust lead's trust (ODS code); for no one else.
    #[serde(default)]
    trust: Option<String>,
}

/// A one-time code, shown once (never in a log: its `Debug` leaves the code out).
#[derive(Serialize)]
pub struct OneTimeCode {
    pub user: String,
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/v1/audit` and `/api/v1/audit.csv`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    inspection: Option<uuid::Uuid>,
    #[serde(default)]
    trust: Option<String>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
    /// The `next` of the page before.
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
    /// `before` for the next (older) page; null on the last.
    pub next: Option<i64>,
}

/// `GET /api/v1/telemetry/imports`.
#[derive(Debug, Serialize)]
pub struct TelemetryImports {
    pub snapshots: Vec<crate::telemetry::Snapshot>,
    /// The newest [`limits::AUDIT_PAGE`] import attempts (`telemetry_import` events).
    pub attempts: Vec<AuditEntry>,
}

impl Acting<'_> {
    /// 403 for anyone but an admin (audited against `what`).
    async fn admin_only(&self, what: &str, action: &str) -> Result<(), AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            Ok(())
        } else {
            Err(self.forbidden(what, action).await)
        }
    }

    pub async fn users(&self) -> Result<Vec<UserView>, AppError> {
        self.admin_only("users", "list users").await?;
        let storage = self.state.storage.clone();
        let users = blocking(move || Ok(storage.list_users()?)).await?;
        Ok(users.into_iter().map(UserView::from).collect())
    }

    /// Adds a user with no password; the answer's code sets one.
    pub async fn add_user(&self, input: impl Input<NewUser>) -> Result<OneTimeCode, AppError> {
        self.admin_only("users", "add users").await?;
        let new = input()?;
        let bad = |why: String| AppError::bad_request("invalid_user", why);
        if let Some(why) = auth::bad_user_name(&new.name) {
            return Err(bad(why));
        }
        let display = new.display_name.clone().unwrap_or_else(|| new.name.clone());
        if let Some(why) = auth::bad_display_name(&display) {
            return Err(bad(why));
        }
        let role = match (new.role.as_str(), new.trust) {
            ("trust-lead", Some(t)) => {
                wardcheck_core::inspection::validate_trust(&t).map_err(|e| bad(e.to_string()))?;
                Role::TrustLead(t)
            }
            ("trust-lead", None) => return Err(bad("a trust lead needs a trust".into())),
            (_, Some(_)) => return Err(bad("only a trust lead has a trust".into())),
            ("inspector", None) => Role::Inspector,
            ("reviewer", None) => Role::Reviewer,
            ("admin", None) => Role::Admin,
            (other, None) => {
                return Err(bad(format!(
                    "no role {other:?}: inspector, reviewer, trust-lead or admin"
                )));
            }
        };
        let role_named = match &role {
            Role::TrustLead(t) => format!("trust-lead of {t}"),
            r => r.name().to_string(),
        };
        // No password anyone knows: a hash of 32 random bytes, until the code is used.
        let (unguessable, _) = auth::new_token();
        let storage = self.state.storage.clone();
        let name = new.name.clone();
        let added = blocking(move || {
            let hash = auth::hash_password(&unguessable).map_err(AppError::internal)?;
            match storage.add_user(&name, &display, &role, &hash) {
                Ok(_) => Ok(()),
                Err(StorageError::Exists(_)) => Err(AppError::conflict(
                    "user_exists",
                    format!("there is already a user {name:?}"),
                )),
                Err(e) if storage.user_by_name(&name)?.is_some() => {
                    drop(e);
                    Err(AppError::conflict(
                        "user_exists",
                        format!("there is already a user {name:?}"),
                    ))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await;
        let what = format!("user:{}", crate::storage::audit_target(&new.name));
        let outcome = added.as_ref().map_or_else(|e| e.code, |_| "ok");
        crate::audit_detail(
            self.state,
            Some(self.caller),
            "user_add",
            &what,
            outcome,
            Some(format!("role {}", role_named)),
        )
        .await;
        added?;
        self.one_time_code(&new.name).await
    }

    /// Disables or re-enables `name`.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<UserView, AppError> {
        let what = format!("user:{}", crate::storage::audit_target(name));
        let action = if disabled {
            "user_disable"
        } else {
            "user_enable"
        };
        self.admin_only(&what, "change users").await?;
        if disabled && name == self.caller.user.name {
            self.audit(action, &what, "own_account").await;
            return Err(AppError::conflict(
                "own_account",
                "this is your own account: another admin disables it",
            ));
        }
        let storage = self.state.storage.clone();
        let n = name.to_string();
        let user = blocking(move || match storage.set_user_disabled(&n, disabled) {
            Ok(()) => Ok(storage.user_by_name(&n)?),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await;
        match user {
            Ok(Some(u)) => {
                self.audit(action, &what, "ok").await;
                Ok(u.into())
            }
            Ok(None) => {
                self.audit(action, &what, "not_found").await;
                Err(AppError::not_found())
            }
            Err(e) => {
                self.audit(action, &what, e.code).await;
                Err(e)
            }
        }
    }

    /// A new one-time code for `name` (a password reset); the old password still works
    /// until the code is used.
    pub async fn reset_password(&self, name: &str) -> Result<OneTimeCode, AppError> {
        let what = format!("user:{}", crate::storage::audit_target(name));
        self.admin_only(&what, "reset passwords").await?;
        let storage = self.state.storage.clone();
        let n = name.to_string();
        if blocking(move || Ok(storage.user_by_name(&n)?))
            .await?
            .is_none()
        {
            self.audit("password_code", &what, "not_found").await;
            return Err(AppError::not_found());
        }
        self.one_time_code(name).await
    }

    async fn one_time_code(&self, name: &str) -> Result<OneTimeCode, AppError> {
        let code = auth::new_password_code();
        let expires_at = Utc::now() + limits::PASSWORD_CODE_TTL;
        let storage = self.state.storage.clone();
        let (n, c) = (name.to_string(), code.clone());
        blocking(move || {
            let hash = auth::hash_password(&c).map_err(AppError::internal)?;
            Ok(storage.put_password_code(&n, &hash, expires_at)?)
        })
        .await?;
        let what = format!("user:{}", crate::storage::audit_target(name));
        self.audit("password_code", &what, "ok").await;
        Ok(OneTimeCode {
            user: name.to_string(),
            code,
            expires_at,
        })
    }

    pub async fn devices(&self) -> Result<Vec<Device>, AppError> {
        self.admin_only("devices", "list devices").await?;
        // Last-seen times are held in memory between flushes: written first, so the list
        // says when each device was last seen, not when that was last written.
        self.state.flush_activity(false).await;
        let storage = self.state.storage.clone();
        blocking(move || Ok(storage.list_devices()?)).await
    }

    pub async fn telemetry_imports(&self) -> Result<TelemetryImports, AppError> {
        self.admin_only("telemetry", "read telemetry imports")
            .await?;
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        blocking(move || {
            use crate::telemetry::TelemetryStore;
            let mut snapshots = telemetry.snapshots()?;
            snapshots.sort_by(|a, b| b.imported_at.cmp(&a.imported_at).then(b.id.cmp(&a.id)));
            let attempts = storage
                .audit_search(&AuditQuery {
                    action: Some("telemetry_import".into()),
                    limit: limits::AUDIT_PAGE,
                    ..AuditQuery::default()
                })?
                .into_iter()
                .map(|(seq, event)| AuditEntry { seq, event })
                .collect();
            Ok(TelemetryImports {
                snapshots,
                attempts,
            })
        })
        .await
    }

    /// The audit query of `p`: a trust's events are those whose target names the trust
    /// or one of its inspections or their documents.
    async fn audit_query(&self, p: AuditParams) -> Result<AuditQuery, AppError> {
        let mut targets = Vec::new();
        let trust = match p.trust {
            Some(t) => {
                wardcheck_core::inspection::validate_trust(&t)
                    .map_err(|e| AppError::bad_request("bad_query", e.to_string()))?;
                Some(t)
            }
            None => None,
        };
        if let Some(id) = p.inspection {
            let storage = self.state.storage.clone();
            let rec = blocking(move || Ok(storage.inspection(id)?)).await?;
            match rec {
                // Both filters: the inspection's events if it is the trust's, else none.
                // (A line break: no stored target holds one, `audit_target` drops them.)
                Some(r) if trust.as_ref().is_some_and(|t| *t != r.trust) => {
                    targets.push("\n".into())
                }
                Some(r) => targets.extend([
                    r.id.to_string(),
                    r.response_doc.to_string(),
                    r.review_doc.to_string(),
                ]),
                None => targets.push(id.to_string()),
            }
        } else if let Some(t) = trust {
            // Every inspection of the trust, a page at a time.
            let storage = self.state.storage.clone();
            let code = t.clone();
            let recs = blocking(move || {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let page = storage.list_inspections(&crate::storage::InspectionQuery {
                        trust: Some(code.clone()),
                        state: None,
                        assignee: None,
                        shared_only: false,
                        after,
                        limit: limits::MAX_PAGE,
                    })?;
                    let full = page.len() >= limits::MAX_PAGE;
                    after = page.last().map(|r| r.id);
                    all.extend(page);
                    if !full {
                        return Ok(all);
                    }
                }
            })
            .await?;
            if recs.len() > limits::AUDIT_TRUST_INSPECTIONS {
                return Err(AppError::bad_request(
                    "bad_query",
                    format!(
                        "{t} has {} inspections, more than a search by trust reads ({}): search \
                         by inspection, or by time",
                        recs.len(),
                        limits::AUDIT_TRUST_INSPECTIONS
                    ),
                ));
            }
            for r in recs {
                targets.extend([
                    r.id.to_string(),
                    r.response_doc.to_string(),
                    r.review_doc.to_string(),
                ]);
            }
            targets.push(format!("trust:{t}"));
        }
        Ok(AuditQuery {
            actor: p.user.filter(|u| !u.is_empty()),
            action: p.action.filter(|a| !a.is_empty()),
            targets,
            from: p.from,
            to: p.to,
            before: p.before,
            limit: p
                .limit
                .unwrap_or(limits::AUDIT_PAGE)
                .clamp(1, limits::AUDIT_PAGE),
        })
    }

    /// A page of the audit log, newest first.
    pub async fn audit_log(&self, input: impl Input<AuditParams>) -> Result<AuditPage, AppError> {
        self.admin_only("audit", "read the audit log").await?;
        let q = self.audit_query(input()?).await?;
        let limit = q.limit;
        let storage = self.state.storage.clone();
        let rows = blocking(move || Ok(storage.audit_search(&q)?)).await?;
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|(seq, _)| *seq))
            .flatten();
        Ok(AuditPage {
            events: rows
                .into_iter()
                .map(|(seq, event)| AuditEntry { seq, event })
                .collect(),
            next,
        })
    }

    /// The audit log's search as CSV, at most [`limits::AUDIT_EXPORT_ROWS`] rows (audited).
    pub async fn audit_export(&self, input: impl Input<AuditParams>) -> Result<Download, AppError> {
        self.admin_only("audit", "export the audit log").await?;
        let mut q = self.audit_query(input()?).await?;
        q.limit = limits::AUDIT_EXPORT_ROWS;
        let storage = self.state.storage.clone();
        let rows = blocking(move || Ok(storage.audit_search(&q)?)).await?;
        let n = rows.len();
        let csv = pack::audit_csv(&rows);
        let download = Download {
            file_name: format!("wardcheck-audit-{}.csv", Utc::now().format("%Y%m%d-%H%M%S")),
            content_type: "text/csv; charset=utf-8",
            sha256: hex::encode(sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(&csv),
            )),
            bytes: csv,
        };
        self.export_audit(
            "audit",
            "audit_csv",
            format!("sha256 {}, {n} events", download.sha256),
        )
        .await?;
        Ok(download)
    }
}
