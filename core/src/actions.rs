//! Corrective actions (issue 14, item 1): what a trust must change after an inspection,
//! and its way from being raised to being closed.
//!
//! An action is raised from a finding or a failed item by an inspector of the inspection
//! or a reviewer: what must change, its priority (the finding's or the item's severity,
//! [`Priority::from`]), and the date it is due. The trust lead proposes how (steps, the
//! role that owns them, a date); a reviewer accepts the plan or sends it back with a
//! reason; once accepted, the trust lead reports progress, with evidence (photos or
//! documents, by SHA-256, stored like photos); a reviewer verifies the work and closes
//! the action, which needs at least one progress report to verify.
//!
//! An action is its steps ([`Step`]), each stamped with who took it and when (the
//! server's stamp: the signed-in user and the server's clock), kept in order and never
//! changed; its [`Status`] and the rest of [`Action`] are what the steps add up to
//! ([`Action::fold`]). [`Action::take`] is the one place that decides whether a step may
//! follow, for whom: the server asks it before it keeps any step, so an API client that
//! sends what a typed client would not is refused the same way.
//!
//! | step | who | from |
//! |---|---|---|
//! | raise | lead inspector, inspector (of the inspection), reviewer | (new) |
//! | propose | trust lead | raised, sent back |
//! | accept, send back | reviewer | proposed |
//! | report progress | trust lead | accepted |
//! | close (verified) | reviewer | accepted, with a progress report |
//! | check (on site, a later visit) | lead inspector, inspector | any but closed; the status stays |
//!
//! An action not closed is **overdue** the day after its due date ([`Action::overdue`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checklist::Severity;
use crate::inspection::{MAX_SHORT_CHARS, MAX_TEXT_CHARS, Stamp};
use crate::policy::{Code, Refusal, Role};

/// Most evidence files one progress report names.
pub const MAX_EVIDENCE: usize = 20;

/// Most steps one action takes (plans sent back and progress reports included): past it,
/// raise another action.
pub const MAX_STEPS: usize = 200;

/// How soon an action must be dealt with: the severity of what it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl From<Severity> for Priority {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Low => Priority::Low,
            Severity::Medium => Priority::Medium,
            Severity::High => Priority::High,
            Severity::Critical => Priority::Critical,
        }
    }
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// What an action was raised from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A finding of the inspection, by its id.
    Finding { finding: Uuid },
    /// A checklist item answered "not met" or "partly met", by its id.
    Item { item: String },
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Raised: waiting for the trust's plan.
    Raised,
    /// The trust proposed a plan: waiting for a reviewer.
    Proposed,
    /// A reviewer sent the plan back: waiting for another.
    SentBack,
    /// A reviewer accepted the plan: the trust reports progress.
    Accepted,
    /// A reviewer verified the work and closed the action.
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Raised => "raised",
            Status::Proposed => "proposed",
            Status::SentBack => "sent_back",
            Status::Accepted => "accepted",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Raised,
            Status::Proposed,
            Status::SentBack,
            Status::Accepted,
            Status::Closed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    fn label(self) -> &'static str {
        match self {
            Status::Raised => "raised",
            Status::Proposed => "proposed",
            Status::SentBack => "sent back",
            Status::Accepted => "accepted",
            Status::Closed => "closed",
        }
    }
}

/// What was raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raise {
    pub source: Source,
    /// What must change.
    pub what: String,
    pub priority: Priority,
    pub due: NaiveDate,
}

/// The trust's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// How: the steps the trust will take.
    pub steps: String,
    /// The role at the trust that owns the steps (a role, not a person's name).
    pub owner_role: String,
    /// When the trust says it will be done.
    pub date: NaiveDate,
}

/// A progress report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub text: String,
    /// Evidence files (photos or documents) by SHA-256, each uploaded to the server's
    /// store like a photo.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// What an inspector found on site of an action carried over to the next visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Partly,
    NotDone,
}

/// One step of an action's way, as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Raise(Raise),
    Propose(Plan),
    Accept {
        #[serde(default)]
        note: Option<String>,
    },
    SendBack {
        note: String,
    },
    Progress(Progress),
    Close {
        /// What the reviewer saw that verifies the work.
        note: String,
    },
    /// An inspector's check on site, on a later visit (the action carried over): what
    /// they found. Leaves the status as it was: a reviewer still verifies and closes.
    Check {
        outcome: Outcome,
        note: String,
    },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Raise(_) => "raise",
            Step::Propose(_) => "propose",
            Step::Accept { .. } => "accept",
            Step::SendBack { .. } => "send_back",
            Step::Progress(_) => "progress",
            Step::Close { .. } => "close",
            Step::Check { .. } => "check",
        }
    }

    /// The roles that take this step (an inspector only on their own inspection, which
    /// the caller decides when it works out the role).
    pub fn roles(&self) -> &'static [Role] {
        match self {
            Step::Raise(_) => &[Role::LeadInspector, Role::Inspector, Role::Reviewer],
            Step::Propose(_) | Step::Progress(_) => &[Role::TrustLead],
            Step::Accept { .. } | Step::SendBack { .. } | Step::Close { .. } => &[Role::Reviewer],
            Step::Check { .. } => &[Role::LeadInspector, Role::Inspector],
        }
    }

    /// The statuses this step follows (`None`: it starts an action).
    fn from(&self) -> Option<&'static [Status]> {
        match self {
            Step::Raise(_) => None,
            Step::Propose(_) => Some(&[Status::Raised, Status::SentBack]),
            Step::Accept { .. } | Step::SendBack { .. } => Some(&[Status::Proposed]),
            Step::Progress(_) | Step::Close { .. } => Some(&[Status::Accepted]),
            Step::Check { .. } => Some(&[
                Status::Raised,
                Status::Proposed,
                Status::SentBack,
                Status::Accepted,
            ]),
        }
    }

    /// The status after this step (`None`: as it was).
    fn to(&self) -> Option<Status> {
        match self {
            Step::Raise(_) => Some(Status::Raised),
            Step::Propose(_) => Some(Status::Proposed),
            Step::Accept { .. } => Some(Status::Accepted),
            Step::SendBack { .. } => Some(Status::SentBack),
            Step::Progress(_) => Some(Status::Accepted),
            Step::Close { .. } => Some(Status::Closed),
            Step::Check { .. } => None,
        }
    }

    /// Checks the step's own content: texts not empty and within their limits, evidence
    /// named by SHA-256.
    pub fn check(&self) -> Result<(), Refusal> {
        match self {
            Step::Raise(r) => text("what", &r.what, MAX_TEXT_CHARS),
            Step::Propose(p) => {
                text("steps", &p.steps, MAX_TEXT_CHARS)?;
                text("owner_role", &p.owner_role, MAX_SHORT_CHARS)
            }
            Step::Accept { note } => match note {
                Some(n) if !n.trim().is_empty() => text("note", n, MAX_TEXT_CHARS),
                _ => Ok(()),
            },
            Step::SendBack { note } | Step::Close { note } | Step::Check { note, .. } => {
                text("note", note, MAX_TEXT_CHARS)
            }
            Step::Progress(p) => {
                text("text", &p.text, MAX_TEXT_CHARS)?;
                if p.evidence.len() > MAX_EVIDENCE {
                    return Err(refuse(
                        Code::TooLong,
                        format!(
                            "a progress report names at most {MAX_EVIDENCE} evidence files, not {}",
                            p.evidence.len()
                        ),
                    ));
                }
                for e in &p.evidence {
                    if !crate::seal::is_hash(e) {
                        return Err(refuse(
                            Code::Malformed,
                            format!("evidence {e:?} is not a SHA-256 in lowercase hex"),
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

/// A step kept: what was asked, who took it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    #[serde(flatten)]
    pub step: Step,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// An action: what its steps add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub id: Uuid,
    pub trust: String,
    /// The inspection it was raised in.
    pub inspection: Uuid,
    pub source: Source,
    pub what: String,
    pub priority: Priority,
    pub due: NaiveDate,
    pub status: Status,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    /// The plan standing (the last proposed), if any.
    pub plan: Option<Plan>,
    /// Every step, oldest first.
    pub steps: Vec<Taken>,
}

fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn text(field: &str, s: &str, max: usize) -> Result<(), Refusal> {
    if s.trim().is_empty() {
        return Err(refuse(
            Code::Malformed,
            format!("{field} must not be empty"),
        ));
    }
    let len = s.chars().count();
    if len > max {
        return Err(refuse(
            Code::TooLong,
            format!("{field} is {len} characters, more than the {max} allowed"),
        ));
    }
    Ok(())
}

impl Action {
    /// A new action, raised by `stamp.by` as `role` in `inspection` of `trust`.
    pub fn raise(
        id: Uuid,
        trust: &str,
        inspection: Uuid,
        role: Role,
        raise: Raise,
        stamp: &Stamp,
    ) -> Result<Action, Refusal> {
        let step = Step::Raise(raise);
        allowed(&step, role)?;
        step.check()?;
        if let Step::Raise(r) = &step
            && r.due < stamp.at.date_naive()
        {
            return Err(refuse(
                Code::Malformed,
                format!("the due date {} has passed", r.due),
            ));
        }
        let taken = Taken {
            step,
            by: stamp.by.clone(),
            at: stamp.at,
        };
        Action::fold(id, trust, inspection, vec![taken])
            .map_err(|e| refuse(Code::Malformed, e.to_string()))
    }

    /// What `steps` (oldest first, the first a raise) add up to. Steps kept are taken
    /// as they are: each was checked by [`Action::take`] when it was kept.
    pub fn fold(
        id: Uuid,
        trust: &str,
        inspection: Uuid,
        steps: Vec<Taken>,
    ) -> Result<Action, FoldError> {
        let Some(Taken {
            step: Step::Raise(raise),
            by,
            at,
        }) = steps.first().cloned()
        else {
            return Err(FoldError(
                "an action's first step is not its raising".into(),
            ));
        };
        let mut action = Action {
            id,
            trust: trust.to_owned(),
            inspection,
            source: raise.source,
            what: raise.what,
            priority: raise.priority,
            due: raise.due,
            status: Status::Raised,
            raised_by: by,
            raised_at: at,
            plan: None,
            steps: Vec::new(),
        };
        for (n, t) in steps.iter().enumerate().skip(1) {
            match t.step.from() {
                Some(from) if from.contains(&action.status) => {}
                _ => {
                    return Err(FoldError(format!(
                        "step {n} ({}) cannot follow {}",
                        t.step.name(),
                        action.status.label()
                    )));
                }
            }
            if let Step::Propose(p) = &t.step {
                action.plan = Some(p.clone());
            }
            action.status = t.step.to().unwrap_or(action.status);
        }
        action.steps = steps;
        Ok(action)
    }

    /// Takes `step` as `role`, stamped `stamp`: the action as it then stands, or why
    /// the step may not follow.
    pub fn take(&self, step: Step, role: Role, stamp: &Stamp) -> Result<Action, Refusal> {
        allowed(&step, role)?;
        step.check()?;
        let from = step.from().ok_or_else(|| {
            refuse(
                Code::IllegalTransition,
                "an action is raised once; raise another for more",
            )
        })?;
        if !from.contains(&self.status) {
            return Err(refuse(
                Code::WrongState,
                format!(
                    "an action that is {} cannot be {}",
                    self.status.label(),
                    past(&step)
                ),
            ));
        }
        if matches!(step, Step::Close { .. })
            && !self
                .steps
                .iter()
                .any(|t| matches!(t.step, Step::Progress(_)))
        {
            return Err(refuse(
                Code::WrongState,
                "an action is closed once the trust has reported progress to verify",
            ));
        }
        if self.steps.len() >= MAX_STEPS {
            return Err(refuse(
                Code::TooLong,
                format!("an action takes at most {MAX_STEPS} steps: raise another"),
            ));
        }
        let mut steps = self.steps.clone();
        steps.push(Taken {
            step,
            by: stamp.by.clone(),
            at: stamp.at,
        });
        Action::fold(self.id, &self.trust, self.inspection, steps)
            .map_err(|e| refuse(Code::Malformed, e.to_string()))
    }

    /// Whether the action is overdue on `today`: not closed, and due before it.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.status != Status::Closed && self.due < today
    }

    /// Every evidence file its progress reports name.
    pub fn evidence(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().flat_map(|t| match &t.step {
            Step::Progress(p) => p.evidence.iter().map(String::as_str).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

fn past(step: &Step) -> &'static str {
    match step {
        Step::Raise(_) => "raised",
        Step::Propose(_) => "given a plan",
        Step::Accept { .. } => "accepted",
        Step::SendBack { .. } => "sent back",
        Step::Progress(_) => "reported on",
        Step::Close { .. } => "closed",
        Step::Check { .. } => "checked",
    }
}

fn allowed(step: &Step, role: Role) -> Result<(), Refusal> {
    if step.roles().contains(&role) {
        return Ok(());
    }
    Err(refuse(
        Code::Forbidden,
        format!(
            "a {} may not {} an action",
            role.label(),
            step.name().replace('_', " ")
        ),
    ))
}

/// Steps kept that do not add up to an action (a damaged record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the steps of an action do not add up: {0}")]
pub struct FoldError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stamp(by: &str, day: u32) -> Stamp {
        Stamp::new(by, Utc.with_ymd_and_hms(2026, 12, day, 10, 0, 0).unwrap())
    }

    fn raised() -> Action {
        Action::raise(
            Uuid::from_u128(1),
            "RJ1",
            Uuid::from_u128(2),
            Role::Reviewer,
            Raise {
                source: Source::Finding {
                    finding: Uuid::from_u128(3),
                },
                what: "Replace the Windows 7 PCs in pathology".into(),
                priority: Severity::High.into(),
                due: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
            },
            &stamp("rita", 1),
        )
        .unwrap()
    }

    fn plan() -> Step {
        Step::Propose(Plan {
            steps: "Order 40 PCs; image; swap by ward".into(),
            owner_role: "Head of IT".into(),
            date: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
        })
    }

    fn progress() -> Step {
        Step::Progress(Progress {
            text: "30 of 40 swapped".into(),
            evidence: vec!["a".repeat(64)],
        })
    }

    #[test]
    fn the_whole_way_from_raised_to_closed() {
        let a = raised();
        assert_eq!((a.status, a.priority), (Status::Raised, Priority::High));
        let a = a.take(plan(), Role::TrustLead, &stamp("tess", 2)).unwrap();
        assert_eq!(a.status, Status::Proposed);
        let a = a
            .take(
                Step::SendBack {
                    note: "Name a date for the last ward".into(),
                },
                Role::Reviewer,
                &stamp("rita", 3),
            )
            .unwrap();
        assert_eq!(a.status, Status::SentBack);
        let a = a.take(plan(), Role::TrustLead, &stamp("tess", 4)).unwrap();
        let a = a
            .take(
                Step::Accept { note: None },
                Role::Reviewer,
                &stamp("rita", 5),
            )
            .unwrap();
        assert_eq!(a.status, Status::Accepted);
        let close = Step::Close {
            note: "Saw the asset list".into(),
        };
        let e = a
            .take(close.clone(), Role::Reviewer, &stamp("rita", 6))
            .unwrap_err();
        assert_eq!(e.code, Code::WrongState, "nothing to verify yet");
        let a = a
            .take(progress(), Role::TrustLead, &stamp("tess", 6))
            .unwrap();
        let a = a
            .take(progress(), Role::TrustLead, &stamp("tess", 7))
            .unwrap();
        assert_eq!(a.evidence().count(), 2);
        let a = a.take(close, Role::Reviewer, &stamp("rita", 8)).unwrap();
        assert_eq!(a.status, Status::Closed);
        assert_eq!(a.steps.len(), 8);
        // What was kept adds up to the same action.
        let again = Action::fold(a.id, &a.trust, a.inspection, a.steps.clone()).unwrap();
        assert_eq!(again, a);
        assert!(!a.overdue(NaiveDate::from_ymd_opt(2028, 1, 1).unwrap()));
    }

    #[test]
    fn each_step_only_by_its_roles_and_from_its_statuses() {
        let a = raised();
        for role in [
            Role::Inspector,
            Role::Reviewer,
            Role::Admin,
            Role::LeadInspector,
        ] {
            let e = a.take(plan(), role, &stamp("x", 2)).unwrap_err();
            assert_eq!(e.code, Code::Forbidden, "{role:?}");
        }
        let e = a
            .take(
                Step::Accept { note: None },
                Role::TrustLead,
                &stamp("tess", 2),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::Forbidden);
        let e = a
            .take(
                Step::Accept { note: None },
                Role::Reviewer,
                &stamp("rita", 2),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::WrongState, "nothing proposed yet");
        let e = a
            .take(progress(), Role::TrustLead, &stamp("tess", 2))
            .unwrap_err();
        assert_eq!(e.code, Code::WrongState, "no plan accepted yet");
        let e = a
            .take(
                Step::Raise(Raise {
                    source: a.source.clone(),
                    what: "again".into(),
                    priority: Priority::Low,
                    due: a.due,
                }),
                Role::Reviewer,
                &stamp("rita", 2),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::IllegalTransition);
    }

    #[test]
    fn contents_are_checked() {
        let a = raised();
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let e = a
            .take(
                Step::Propose(Plan {
                    steps: long,
                    owner_role: "IT".into(),
                    date: a.due,
                }),
                Role::TrustLead,
                &stamp("tess", 2),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::TooLong);
        let e = a
            .take(
                Step::Propose(Plan {
                    steps: " ".into(),
                    owner_role: "IT".into(),
                    date: a.due,
                }),
                Role::TrustLead,
                &stamp("tess", 2),
            )
            .unwrap_err();
        assert_eq!(e.code, Code::Malformed);
        let bad = Step::Progress(Progress {
            text: "done".into(),
            evidence: vec!["../../etc/passwd".into()],
        });
        assert_eq!(bad.check().unwrap_err().code, Code::Malformed);
        let many = Step::Progress(Progress {
            text: "done".into(),
            evidence: vec!["b".repeat(64); MAX_EVIDENCE + 1],
        });
        assert_eq!(many.check().unwrap_err().code, Code::TooLong);
        let past = Action::raise(
            Uuid::from_u128(9),
            "RJ1",
            Uuid::from_u128(2),
            Role::Inspector,
            Raise {
                source: Source::Item {
                    item: "ndg1.ico".into(),
                },
                what: "Renew".into(),
                priority: Priority::Low,
                due: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            },
            &stamp("ian", 1),
        )
        .unwrap_err();
        assert!(past.message.contains("has passed"), "{past:?}");
    }

    #[test]
    fn an_inspector_checks_on_site_and_the_status_stays() {
        let check = |outcome| Step::Check {
            outcome,
            note: "Rota seen on the wall of the SOC".into(),
        };
        let a = raised()
            .take(check(Outcome::Partly), Role::Inspector, &stamp("ian", 2))
            .unwrap();
        assert_eq!(a.status, Status::Raised);
        let e = a
            .take(check(Outcome::Done), Role::Reviewer, &stamp("rita", 3))
            .unwrap_err();
        assert_eq!(e.code, Code::Forbidden);
        let e = a
            .take(check(Outcome::Done), Role::TrustLead, &stamp("tess", 3))
            .unwrap_err();
        assert_eq!(e.code, Code::Forbidden);
        let closed = a
            .take(plan(), Role::TrustLead, &stamp("tess", 3))
            .unwrap()
            .take(
                Step::Accept { note: None },
                Role::Reviewer,
                &stamp("rita", 4),
            )
            .unwrap()
            .take(progress(), Role::TrustLead, &stamp("tess", 5))
            .unwrap()
            .take(
                Step::Close {
                    note: "seen".into(),
                },
                Role::Reviewer,
                &stamp("rita", 6),
            )
            .unwrap();
        let e = closed
            .take(check(Outcome::Done), Role::LeadInspector, &stamp("lin", 7))
            .unwrap_err();
        assert_eq!(e.code, Code::WrongState, "a closed action is not checked");
    }

    #[test]
    fn an_action_takes_at_most_max_steps() {
        let mut a = raised()
            .take(plan(), Role::TrustLead, &stamp("tess", 2))
            .unwrap()
            .take(
                Step::Accept { note: None },
                Role::Reviewer,
                &stamp("rita", 3),
            )
            .unwrap();
        while a.steps.len() < MAX_STEPS {
            a = a
                .take(progress(), Role::TrustLead, &stamp("tess", 4))
                .unwrap();
        }
        let e = a
            .take(progress(), Role::TrustLead, &stamp("tess", 5))
            .unwrap_err();
        assert_eq!(e.code, Code::TooLong);
    }

    #[test]
    fn overdue_the_day_after_it_is_due_until_closed() {
        let a = raised();
        let due = a.due;
        assert!(!a.overdue(due));
        assert!(a.overdue(due.succ_opt().unwrap()));
    }

    #[test]
    fn steps_that_do_not_add_up_are_a_damaged_record() {
        let a = raised();
        let mut steps = a.steps.clone();
        steps.push(Taken {
            step: Step::Close { note: "x".into() },
            by: "rita".into(),
            at: a.raised_at,
        });
        assert!(Action::fold(a.id, "RJ1", a.inspection, steps).is_err());
        assert!(Action::fold(a.id, "RJ1", a.inspection, Vec::new()).is_err());
    }

    #[test]
    fn a_step_is_kept_as_json_and_read_back() {
        let t = Taken {
            step: progress(),
            by: "tess".into(),
            at: stamp("tess", 2).at,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"step\":\"progress\""), "{json}");
        assert_eq!(serde_json::from_str::<Taken>(&json).unwrap(), t);
    }
}
