//! The national picture (issue 14, item 2): every trust's latest inspection and its
//! state, its open and overdue corrective actions, the contradicted items of the telemetry
//! join of its newest inspection that has been submitted (a visit planned since does not
//! hide what the last one found), and its telemetry headline figures with their trend
//! across snapshots (`GET /api/v1/national`); and one trust's page, which needs no
//! inspection (`GET /api/v1/trusts/{code}`).
//!
//! Each figure counts only what the caller may see, by the rules of the routes that show
//! the records themselves: a reviewer sees every trust and everything in it; a trust lead
//! only their own trust (another trust's page is the 404 of a trust that does not exist),
//! its inspections once shared and their actions; an inspector every trust's telemetry
//! (which a visit is prepared from) but only the inspections they are assigned and the
//! actions those show them; an admin, who holds no document rights, nothing (403).
//!
//! The trusts are the trusts feed's (REFERENCE §7.6), with any trust an inspection the
//! caller sees names although the feed does not. The contradicted items are the join's
//! (`crate::join`) of the trust's newest submitted inspection, kept in memory by the inspection
//! document's stored heads and the three snapshots it read ([`VerdictMemo`]): the page
//! joins only what changed since it was last drawn.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::actions::{Action, Status};
use wardcheck_core::inspection::State;

use super::actions::{ActionView, visible_actions};
use super::inspections::all_visible;
use super::{Acting, Input, blocking};
use crate::error::AppError;
use crate::join::{
    AlertPoint, EndpointPoint, SnapshotRef, Trend, TrustSummary, headlines, latest_snapshot,
    telemetry_summary,
};
use crate::limits;
use crate::storage::{InspectionRecord, Role, StorageError};
use crate::telemetry::{TelemetryStore, Trust, TrustType};

/// `GET /api/v1/national`: `region` (as the trusts feed spells it, any letter case) and
/// `trust_type` (`acute`, `ambulance`, `mental-health`, `community`, or
/// `major-trauma-centre`) narrow the trusts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalQuery {
    region: Option<String>,
    trust_type: Option<String>,
}

/// The national page.
#[derive(Debug, Serialize)]
pub struct National {
    /// The days of the endpoint and alert snapshots the trends are drawn over, oldest
    /// first.
    pub endpoint_days: Vec<NaiveDate>,
    pub alert_days: Vec<NaiveDate>,
    /// Every region and trust type among the trusts the caller sees, whatever the
    /// filters: the filters' choices.
    pub regions: Vec<String>,
    pub trust_types: Vec<&'static str>,
    /// Today (UTC), by which actions are overdue.
    pub today: NaiveDate,
    pub trusts: Vec<TrustRow>,
}

/// One trust on the national page.
#[derive(Debug, Serialize)]
pub struct TrustRow {
    pub ods_code: String,
    /// The trusts feed's name; the code when the feed does not list the trust.
    pub name: String,
    /// Null when the trusts feed does not list the trust.
    pub trust_type: Option<&'static str>,
    pub major_trauma_centre: bool,
    pub region: Option<String>,
    /// The newest inspection the caller sees, by when it was created, in any state (a
    /// visit being planned or under way).
    pub latest_inspection: Option<InspectionRef>,
    /// The newest inspection the caller sees that has been submitted (submitted, shared
    /// or closed), with its join's verdict counts: what the trust was last found to be.
    /// A visit planned since does not hide it.
    pub reported_inspection: Option<Reported>,
    pub actions: ActionCounts,
    /// The newest snapshots' figures, null when the trust has no rows in them.
    pub endpoints: Option<EndpointPoint>,
    pub alerts: Option<AlertPoint>,
    pub trend: Trend,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectionRef {
    pub id: Uuid,
    pub state: State,
    pub created_at: DateTime<Utc>,
    pub shared_at: Option<DateTime<Utc>>,
}

impl From<&InspectionRecord> for InspectionRef {
    fn from(r: &InspectionRecord) -> Self {
        InspectionRef {
            id: r.id,
            state: r.state,
            created_at: r.created_at,
            shared_at: r.shared_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    #[serde(flatten)]
    pub inspection: InspectionRef,
    /// The join's items by verdict (`contradicted`, `corroborated`, ...); null when the
    /// join could not be made (the server's log says why).
    pub verdicts: Option<BTreeMap<String, usize>>,
    pub contradicted: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    /// Not closed.
    pub open: usize,
    /// Not closed and past their due date.
    pub overdue: usize,
}

/// One trust's page.
#[derive(Debug, Serialize)]
pub struct TrustPage {
    pub today: NaiveDate,
    pub endpoint_days: Vec<NaiveDate>,
    pub alert_days: Vec<NaiveDate>,
    pub trust: TrustRow,
    /// The trust's telemetry as the inspection page charts it.
    pub summary: TrustSummary,
    /// The trust's inspections the caller sees, newest first.
    pub inspections: Vec<InspectionRecord>,
    /// The trust's actions the caller sees, oldest first.
    pub actions: Vec<ActionView>,
}

/// The join's verdict counts of inspections, by the document's stored heads and the
/// snapshots read (see the module doc).
#[derive(Debug, Default)]
pub struct VerdictMemo(Mutex<HashMap<Uuid, Memo>>);

#[derive(Debug, Clone)]
struct Memo {
    heads: Vec<u8>,
    snapshots: [Option<(i64, String)>; 3],
    /// None: the join failed (logged once, when it did; tried again once the document
    /// or the telemetry changes).
    verdicts: Option<BTreeMap<String, usize>>,
}

/// What the two pages read in one go, on the blocking pool.
struct Gathered {
    trusts: Vec<Trust>,
    inspections: Vec<InspectionRecord>,
    actions: Vec<Action>,
    headlines: crate::join::Headlines,
    heads: HashMap<Uuid, Vec<u8>>,
    snapshots: [Option<(i64, String)>; 3],
    summary: Option<TrustSummary>,
}

fn snapshot_key(s: Option<SnapshotRef>) -> Option<(i64, String)> {
    s.map(|s| (s.id, s.sha256))
}

/// The states of an inspection whose verdicts the national page reports.
const REPORTED: [State; 3] = [State::Submitted, State::SharedWithTrust, State::Closed];

/// The type filter's choices: the trusts feed's types, and major trauma centres.
const MAJOR_TRAUMA_CENTRE: &str = "major-trauma-centre";

fn parse_type(s: &str) -> Result<Option<TrustType>, AppError> {
    if s.eq_ignore_ascii_case(MAJOR_TRAUMA_CENTRE) {
        return Ok(None);
    }
    TrustType::parse(s).map(Some).map_err(|e| {
        AppError::bad_request(
            "bad_filter",
            format!("trust_type: {e}, or {MAJOR_TRAUMA_CENTRE}"),
        )
    })
}

impl Acting<'_> {
    /// The national page (see the module doc).
    pub async fn national(&self, q: impl Input<NationalQuery>) -> Result<National, AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self
                .forbidden("national", "read the national picture")
                .await);
        }
        let NationalQuery { region, trust_type } = q()?;
        let region = region.filter(|r| !r.trim().is_empty());
        let trust_type = trust_type.filter(|t| !t.trim().is_empty());
        if region
            .as_ref()
            .is_some_and(|r| r.chars().count() > limits::NATIONAL_FILTER_MAX_CHARS)
        {
            return Err(AppError::bad_request(
                "bad_filter",
                format!(
                    "region: at most {} characters",
                    limits::NATIONAL_FILTER_MAX_CHARS
                ),
            ));
        }
        let kind = trust_type.as_deref().map(parse_type).transpose()?;
        // A trust lead's page is their trust's: nothing is read of the others.
        let only = match &self.caller.user.role {
            Role::TrustLead(own) => Some(own.clone()),
            _ => None,
        };
        let g = self.gather(only, limits::NATIONAL_TREND_POINTS).await?;
        let mut rows = self.rows(&g).await?;
        let regions: BTreeSet<String> = rows.iter().filter_map(|r| r.region.clone()).collect();
        let types: BTreeSet<&'static str> = rows
            .iter()
            .filter_map(|r| r.trust_type)
            .chain(
                rows.iter()
                    .any(|r| r.major_trauma_centre)
                    .then_some(MAJOR_TRAUMA_CENTRE),
            )
            .collect();
        rows.retain(|r| {
            region.as_ref().is_none_or(|want| {
                r.region
                    .as_ref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(want))
            }) && match kind {
                None => true,
                Some(None) => r.major_trauma_centre,
                Some(Some(t)) => r.trust_type == Some(t.as_str()),
            }
        });
        let filters = [("region", &region), ("trust_type", &trust_type)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("; {k}={v}")))
            .collect::<String>();
        self.audit(
            "read",
            "national",
            &format!("{} trusts{filters}", rows.len()),
        )
        .await;
        Ok(National {
            endpoint_days: days(&g.headlines.endpoint_snapshots),
            alert_days: days(&g.headlines.alert_snapshots),
            regions: regions.into_iter().collect(),
            trust_types: types.into_iter().collect(),
            today: Utc::now().date_naive(),
            trusts: rows,
        })
    }

    /// One trust's page: its row of the national page with a longer trend, its telemetry
    /// summary, and its inspections and actions the caller sees.
    pub async fn trust_page(&self, code: &str) -> Result<TrustPage, AppError> {
        let what = format!("trust:{}", crate::storage::audit_target(code));
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden(&what, "read a trust's page").await);
        }
        let hidden = match &self.caller.user.role {
            Role::TrustLead(own) => own != code,
            _ => wardcheck_core::inspection::validate_trust(code).is_err(),
        };
        if hidden {
            self.audit("denied", &what, "denied").await;
            return Err(AppError::not_found());
        }
        let mut g = self
            .gather(Some(code.to_owned()), limits::TRUST_TREND_POINTS)
            .await?;
        let summary = g.summary.take();
        let mut rows = self.rows(&g).await?;
        let (Some(trust), Some(summary)) = (rows.pop(), summary) else {
            self.audit("denied", &what, "not_found").await;
            return Err(AppError::not_found());
        };
        self.audit("read", &what, "trust_page").await;
        let mut inspections = g.inspections;
        inspections.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(TrustPage {
            today: Utc::now().date_naive(),
            endpoint_days: days(&g.headlines.endpoint_snapshots),
            alert_days: days(&g.headlines.alert_snapshots),
            trust,
            summary,
            inspections,
            actions: g.actions.into_iter().map(ActionView::from).collect(),
        })
    }

    /// Reads the trusts, the inspections and actions the caller sees, the telemetry
    /// headlines, the inspections' stored heads and the newest snapshots (of `trust`
    /// only, if given).
    async fn gather(&self, trust: Option<String>, points: usize) -> Result<Gathered, AppError> {
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        let user = self.caller.user.clone();
        blocking(move || {
            let mut trusts = telemetry.trusts()?;
            if let Role::TrustLead(own) = &user.role {
                trusts.retain(|t| t.ods_code == *own);
            }
            if let Some(t) = &trust {
                trusts.retain(|x| x.ods_code == *t);
            }
            let inspections = all_visible(&*storage, &user, trust.clone())?;
            let actions = visible_actions(&*storage, &user, trust.clone())?;
            let conn = telemetry.reader();
            let headlines =
                headlines(&conn, trust.as_deref(), points).map_err(StorageError::from)?;
            let snapshots = ["endpoints", "network", "alerts"]
                .map(|k| latest_snapshot(&conn, k).map(snapshot_key));
            let [e, n, a] = snapshots;
            let snapshots = [
                e.map_err(StorageError::from)?,
                n.map_err(StorageError::from)?,
                a.map_err(StorageError::from)?,
            ];
            let summary = match &trust {
                Some(t) => Some(telemetry_summary(&conn, t).map_err(StorageError::from)?),
                None => None,
            };
            drop(conn);
            let latest: Vec<Uuid> = newest_by_trust(&inspections, true)
                .values()
                .map(|r| r.id)
                .collect();
            let heads = storage.doc_heads(&latest)?.into_iter().collect();
            Ok(Gathered {
                trusts,
                inspections,
                actions,
                headlines,
                heads,
                snapshots,
                summary,
            })
        })
        .await
    }

    /// The rows of the trusts gathered, by code: the feed's trusts, and those the
    /// caller's inspections and actions name.
    async fn rows(&self, g: &Gathered) -> Result<Vec<TrustRow>, AppError> {
        let today = Utc::now().date_naive();
        let mut codes: BTreeMap<String, Option<&Trust>> = g
            .trusts
            .iter()
            .map(|t| (t.ods_code.clone(), Some(t)))
            .collect();
        if let Role::TrustLead(own) = &self.caller.user.role {
            codes.entry(own.clone()).or_insert(None);
        }
        for t in g
            .inspections
            .iter()
            .map(|r| &r.trust)
            .chain(g.actions.iter().map(|a| &a.trust))
        {
            codes.entry(t.clone()).or_insert(None);
        }
        let latest = newest_by_trust(&g.inspections, false);
        let reported = newest_by_trust(&g.inspections, true);
        self.keep_memo_to(&reported);
        let mut counts: HashMap<&str, ActionCounts> = HashMap::new();
        for a in &g.actions {
            let c = counts.entry(a.trust.as_str()).or_default();
            if a.status != Status::Closed {
                c.open += 1;
            }
            if a.overdue(today) {
                c.overdue += 1;
            }
        }
        let (newest_e, newest_a) = (
            g.headlines.endpoint_snapshots.last(),
            g.headlines.alert_snapshots.last(),
        );
        let mut rows = Vec::with_capacity(codes.len());
        for (code, trust) in codes {
            let reported_inspection = match reported.get(code.as_str()) {
                Some(rec) => Some(self.reported(rec, g).await?),
                None => None,
            };
            let trend = g.headlines.trusts.get(&code).cloned().unwrap_or_default();
            rows.push(TrustRow {
                name: trust.map_or_else(|| code.clone(), |t| t.name.clone()),
                trust_type: trust.map(|t| t.trust_type.as_str()),
                major_trauma_centre: trust.is_some_and(|t| t.major_trauma_centre),
                region: trust.map(|t| t.region.clone()),
                latest_inspection: latest.get(code.as_str()).map(|r| InspectionRef::from(*r)),
                reported_inspection,
                actions: counts.get(code.as_str()).copied().unwrap_or_default(),
                endpoints: trend.latest_endpoints(newest_e).copied(),
                alerts: trend.latest_alerts(newest_a).copied(),
                trend,
                ods_code: code,
            });
        }
        Ok(rows)
    }

    /// Drops from the memo every inspection not among `kept` once it is full (an
    /// inspection no longer any trust's newest reported one is not read again).
    fn keep_memo_to(&self, kept: &BTreeMap<&str, &InspectionRecord>) {
        let mut m = self
            .state
            .verdicts
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if m.len() >= limits::VERDICT_MEMO_MAX {
            let ids: std::collections::HashSet<Uuid> = kept.values().map(|r| r.id).collect();
            m.retain(|id, _| ids.contains(id));
        }
    }

    /// `rec` as the national page reports it, its verdicts from the memo or joined now.
    async fn reported(&self, rec: &InspectionRecord, g: &Gathered) -> Result<Reported, AppError> {
        let heads = g.heads.get(&rec.id);
        let memo = &self.state.verdicts.0;
        let kept = heads.and_then(|h| {
            let m = memo.lock().unwrap_or_else(|p| p.into_inner());
            m.get(&rec.id)
                .filter(|m| m.heads == *h && m.snapshots == g.snapshots)
                .map(|m| m.verdicts.clone())
        });
        let verdicts = match kept {
            Some(v) => v,
            None => {
                let verdicts = match self.join_of(rec).await {
                    Ok(join) => Some(
                        join.totals
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), *v))
                            .collect::<BTreeMap<String, usize>>(),
                    ),
                    Err(e) => {
                        tracing::warn!(inspection = %rec.id, "national page: no join: {e:?}");
                        None
                    }
                };
                if let Some(h) = heads {
                    let mut m = memo.lock().unwrap_or_else(|p| p.into_inner());
                    if m.len() >= limits::VERDICT_MEMO_MAX {
                        m.clear();
                    }
                    m.insert(
                        rec.id,
                        Memo {
                            heads: h.clone(),
                            snapshots: g.snapshots.clone(),
                            verdicts: verdicts.clone(),
                        },
                    );
                }
                verdicts
            }
        };
        Ok(Reported {
            inspection: rec.into(),
            contradicted: verdicts
                .as_ref()
                .map(|v| v.get("contradicted").copied().unwrap_or(0)),
            verdicts,
        })
    }
}

/// The days of `snapshots`, in their order.
fn days(snapshots: &[SnapshotRef]) -> Vec<NaiveDate> {
    snapshots.iter().map(|s| s.as_of).collect()
}

/// Each trust's newest inspection by when it was created (ties: the larger id), a
/// cancelled visit never; of those submitted or later only, if `reported`.
fn newest_by_trust(
    inspections: &[InspectionRecord],
    reported: bool,
) -> BTreeMap<&str, &InspectionRecord> {
    let mut latest: BTreeMap<&str, &InspectionRecord> = BTreeMap::new();
    for r in inspections
        .iter()
        .filter(|r| r.state != State::Cancelled && (!reported || REPORTED.contains(&r.state)))
    {
        let e = latest.entry(r.trust.as_str()).or_insert(r);
        if (r.created_at, r.id) > (e.created_at, e.id) {
            *e = r;
        }
    }
    latest
}
