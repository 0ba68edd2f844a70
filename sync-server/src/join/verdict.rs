//! The verdict: an inspector's answer set beside what telemetry counts.
//!
//! Every telemetry check counts something bad (`TelemetryCheck`'s contract), so:
//!
//! | answer | count > 0 | count == 0 |
//! |---|---|---|
//! | met | contradicted | corroborated |
//! | partly met | corroborated | telemetry silent |
//! | not met | corroborated | telemetry silent |
//! | not applicable, or none yet | unanswered | unanswered |
//!
//! **Telemetry silent**, not a contradiction: many items join paperwork with a technical
//! fact (a patching strategy, a registration, a process), so a problem the inspector saw
//! is one the telemetry may simply not see (issue 12: "'Not met' beside a zero count is
//! called a contradiction").
//!
//! and `no_telemetry` whatever the answer when the feed has no rows for the trust (or
//! does not carry the field the check needs).

use serde::Serialize;
use wardcheck_core::inspection::Answer;

/// How an answer stands against telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Corroborated,
    Contradicted,
    /// The answer reports a problem the telemetry does not see: never a contradiction.
    TelemetrySilent,
    /// The figures, beside an item that has no compliance answer to judge.
    Unanswered,
    NoTelemetry,
}

/// A compliance answer as the join reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compliance {
    Met,
    PartlyMet,
    NotMet,
    NotApplicable,
}

impl Compliance {
    pub fn of(answer: &Answer) -> Option<Compliance> {
        match answer {
            Answer::Met => Some(Compliance::Met),
            Answer::PartlyMet => Some(Compliance::PartlyMet),
            Answer::NotMet => Some(Compliance::NotMet),
            Answer::NotApplicable { .. } => Some(Compliance::NotApplicable),
            // Numbers, dates and text are never set beside a telemetry check.
            Answer::Number { .. } | Answer::Date { .. } | Answer::Text { .. } => None,
        }
    }

    /// How bad an answer is, for taking the worst of several sampled devices' answers.
    fn rank(self) -> u8 {
        match self {
            Compliance::NotApplicable => 0,
            Compliance::Met => 1,
            Compliance::PartlyMet => 2,
            Compliance::NotMet => 3,
        }
    }

    /// The worst of several answers (a device-scope item is 'met' only when every
    /// sampled device met it); `None` when there are none.
    pub fn worst(answers: impl IntoIterator<Item = Compliance>) -> Option<Compliance> {
        answers.into_iter().max_by_key(|c| c.rank())
    }
}

/// The verdict for an answer beside a count of bad things; `None` figures mean the
/// feed has nothing for the trust.
pub fn verdict(answer: Option<Compliance>, count: Option<u64>) -> Verdict {
    let Some(count) = count else {
        return Verdict::NoTelemetry;
    };
    match (answer, count > 0) {
        (Some(Compliance::Met), true) => Verdict::Contradicted,
        (Some(Compliance::Met), false) => Verdict::Corroborated,
        (Some(Compliance::PartlyMet | Compliance::NotMet), true) => Verdict::Corroborated,
        (Some(Compliance::PartlyMet | Compliance::NotMet), false) => Verdict::TelemetrySilent,
        (Some(Compliance::NotApplicable) | None, _) => Verdict::Unanswered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_in_the_module_doc_holds() {
        use Compliance::*;
        assert_eq!(verdict(Some(Met), Some(412)), Verdict::Contradicted);
        assert_eq!(verdict(Some(Met), Some(0)), Verdict::Corroborated);
        assert_eq!(verdict(Some(NotMet), Some(3)), Verdict::Corroborated);
        assert_eq!(verdict(Some(PartlyMet), Some(3)), Verdict::Corroborated);
        assert_eq!(verdict(Some(NotMet), Some(0)), Verdict::TelemetrySilent);
        assert_eq!(verdict(Some(PartlyMet), Some(0)), Verdict::TelemetrySilent);
        assert_eq!(verdict(Some(NotApplicable), Some(5)), Verdict::Unanswered);
        assert_eq!(verdict(None, Some(5)), Verdict::Unanswered);
        assert_eq!(verdict(Some(Met), None), Verdict::NoTelemetry);
        assert_eq!(verdict(None, None), Verdict::NoTelemetry);
    }

    #[test]
    fn a_device_item_is_met_only_when_every_sampled_device_met_it() {
        use Compliance::*;
        assert_eq!(Compliance::worst([Met, NotMet, Met]), Some(NotMet));
        assert_eq!(Compliance::worst([Met, NotApplicable]), Some(Met));
        assert_eq!(Compliance::worst([]), None);
    }
}
