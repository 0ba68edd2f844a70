//! The verdict: an inspector's answer set beside what telemetry counts.
//!
//! # An item's verdict ([`judge`])
//!
//! Each item's check counts, under the item's judge (`wardcheck_core::judge`), the bad
//! ones among the devices (firewalls, alerts) it selects: `count` of `total`, of which
//! `unknown` give no data and `esu_only` are Windows 10 22H2, supported only with ESU
//! evidence telemetry cannot show (neither bad nor known good).
//! `known = total - unknown - esu_only`. In this order:
//!
//! 1. no rows for the trust in the feed's latest snapshot: **no_telemetry**;
//! 2. no compliance answer, or 'not applicable': **unanswered** (the figures beside);
//! 3. no device the judge selects (`total` 0): **no_telemetry**;
//! 4. more bad ones than the tolerance allows (a count, or a share of `known`): 'met' is
//!    **contradicted**, 'partly met' and 'not met' **corroborated**, whatever the
//!    coverage: those bad devices are facts;
//! 5. 'partly met' or 'not met' beside bad ones within the tolerance: **corroborated**
//!    (the telemetry sees the problem, at a level the check would let pass as 'met');
//! 6. nothing known, or too few (`known / total` below the judge's coverage):
//!    **insufficient_coverage**: a clean count over a fraction of the estate
//!    corroborates nothing (an estate of Windows 10 22H2 does not corroborate "no
//!    unsupported OS": its ESU licences are not in telemetry);
//! 7. 'met': **corroborated**; 'partly met' or 'not met' beside none: **telemetry_silent**
//!    (a problem the telemetry cannot see: never a contradiction).
//!
//! # One sampled device ([`verdict`])
//!
//! A device-scope item's answer for one device is set beside that device's own record,
//! which shows the problem or not (tolerance and coverage are the estate's, not a
//! device's). Every telemetry check counts something bad (`TelemetryCheck`'s contract), so:
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
use wardcheck_core::judge::{Judge, trim_float};

use super::query::Counts;

/// How an answer stands against telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Corroborated,
    Contradicted,
    /// The answer reports a problem the telemetry does not see: never a contradiction.
    TelemetrySilent,
    /// Too large a share of the devices the check counts gives no data for a clean
    /// count to mean anything (the threshold is the item's judge's).
    InsufficientCoverage,
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

impl Verdict {
    /// Every verdict, in the order totals list them.
    pub const ALL: [Verdict; 6] = [
        Verdict::Corroborated,
        Verdict::Contradicted,
        Verdict::TelemetrySilent,
        Verdict::InsufficientCoverage,
        Verdict::Unanswered,
        Verdict::NoTelemetry,
    ];

    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Corroborated => "corroborated",
            Verdict::Contradicted => "contradicted",
            Verdict::TelemetrySilent => "telemetry_silent",
            Verdict::InsufficientCoverage => "insufficient_coverage",
            Verdict::Unanswered => "unanswered",
            Verdict::NoTelemetry => "no_telemetry",
        }
    }
}

/// An item's verdict: its answer beside the figures its judge counted (`None`: the
/// trust has no rows in the feed), by the rules of the module doc.
pub fn judge(answer: Option<Compliance>, counts: Option<&Counts>, rule: &Judge) -> Verdict {
    let Some(c) = counts else {
        return Verdict::NoTelemetry;
    };
    let answer = match answer {
        None | Some(Compliance::NotApplicable) => return Verdict::Unanswered,
        Some(a) => a,
    };
    if c.total == 0 {
        return Verdict::NoTelemetry;
    }
    let known = known(c);
    if rule.tolerance.exceeded(c.count, known) {
        return match answer {
            Compliance::Met => Verdict::Contradicted,
            _ => Verdict::Corroborated,
        };
    }
    if answer != Compliance::Met && c.count > 0 {
        return Verdict::Corroborated;
    }
    // Nothing known at all corroborates nothing, whatever coverage the judge asks for.
    if known == 0 || coverage(c) < rule.coverage {
        return Verdict::InsufficientCoverage;
    }
    match answer {
        Compliance::Met => Verdict::Corroborated,
        _ => Verdict::TelemetrySilent,
    }
}

/// Those counted whose state telemetry knows: neither without data nor supported only
/// with ESU evidence telemetry cannot show (a Windows 10 22H2 device is not known good).
pub fn known(c: &Counts) -> u64 {
    c.total.saturating_sub(c.unknown).saturating_sub(c.esu_only)
}

/// The share (percent) of those counted whose state telemetry knows.
pub fn coverage(c: &Counts) -> f64 {
    if c.total == 0 {
        return 0.0;
    }
    known(c) as f64 * 100.0 / c.total as f64
}

/// "0.07%": a share with enough decimals to not read as zero when it is not.
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if part > 0 && p < 0.01 {
        "<0.01%".into()
    } else if p < 1.0 && part > 0 {
        format!("{p:.2}%")
    } else {
        format!("{}%", trim_float((p * 10.0).round() / 10.0))
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
    fn an_item_is_judged_by_its_tolerance_and_coverage() {
        use Compliance::*;
        use wardcheck_core::judge::Tolerance;
        let rule = Judge {
            tolerance: Tolerance::Share(1.0),
            coverage: 80.0,
            ..Judge::default_for(wardcheck_core::checklist::TelemetryCheck::EndpointsBitlockerOff)
        };
        let c = |count, total, unknown| Counts {
            count,
            total,
            unknown,
            ..Counts::default()
        };
        let v = |a, counts: Counts| judge(Some(a), Some(&counts), &rule);
        assert_eq!(
            v(Met, c(3, 4_250, 0)),
            Verdict::Corroborated,
            "0.07% within 1%"
        );
        assert_eq!(
            v(Met, c(100, 4_250, 0)),
            Verdict::Contradicted,
            "2.4% over 1%"
        );
        assert_eq!(v(NotMet, c(100, 4_250, 0)), Verdict::Corroborated);
        assert_eq!(
            v(NotMet, c(3, 4_250, 0)),
            Verdict::Corroborated,
            "seen, within"
        );
        assert_eq!(v(NotMet, c(0, 4_250, 0)), Verdict::TelemetrySilent);
        assert_eq!(
            v(Met, c(0, 4_250, 3_000)),
            Verdict::InsufficientCoverage,
            "clean, over 29% of the estate"
        );
        assert_eq!(v(NotMet, c(0, 4_250, 3_000)), Verdict::InsufficientCoverage);
        assert_eq!(
            v(Met, c(200, 4_250, 3_000)),
            Verdict::Contradicted,
            "16% of those with data are bad: a fact, whatever the coverage"
        );
        assert_eq!(v(Met, c(0, 0, 0)), Verdict::NoTelemetry, "none selected");
        let lax = Judge {
            coverage: 0.0,
            ..rule.clone()
        };
        assert_eq!(
            judge(Some(Met), Some(&c(0, 100, 100)), &lax),
            Verdict::InsufficientCoverage,
            "nothing known corroborates nothing, even with no coverage asked for"
        );
        let esu = Counts {
            esu_only: 100,
            ..c(0, 100, 0)
        };
        assert_eq!(
            judge(Some(Met), Some(&esu), &rule),
            Verdict::InsufficientCoverage,
            "an all-22H2 estate is not known to be supported"
        );
        assert_eq!(judge(None, Some(&c(3, 10, 0)), &rule), Verdict::Unanswered);
        assert_eq!(judge(Some(Met), None, &rule), Verdict::NoTelemetry);
        assert_eq!(share(3, 4_250), "0.07%");
        assert_eq!(share(1, 1_000_000), "<0.01%");
        assert_eq!(share(412, 9_860), "4.2%");
        assert_eq!(share(0, 10), "0%");
    }

    #[test]
    fn a_device_item_is_met_only_when_every_sampled_device_met_it() {
        use Compliance::*;
        assert_eq!(Compliance::worst([Met, NotMet, Met]), Some(NotMet));
        assert_eq!(Compliance::worst([Met, NotApplicable]), Some(Met));
        assert_eq!(Compliance::worst([]), None);
    }
}
