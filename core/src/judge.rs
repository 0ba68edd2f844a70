//! How a telemetry check judges an answer: which devices it counts, how many bad ones it
//! tolerates, the time window it looks at and the coverage it needs. A checklist item
//! declares it next to its check (`judge = { ... }`, `checklists/README.md`); an item
//! that declares nothing gets its check's [`Judge::default_for`].
//!
//! The server applies a judge to the figures of the trust
//! (`sync-server/src/join/verdict.rs`); the field app shows it beside the item.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checklist::TelemetryCheck;

/// A kind of device in the endpoint inventory, as the importer derives it from the
/// row: `medical` when the row says it is a medical device; otherwise `server` for
/// Windows Server and Linux; `end-user` for Windows client, macOS, iOS and Android;
/// `other` for an unknown platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    EndUser,
    Server,
    Medical,
    Other,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::EndUser,
        DeviceKind::Server,
        DeviceKind::Medical,
        DeviceKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::EndUser => "end-user",
            DeviceKind::Server => "server",
            DeviceKind::Medical => "medical",
            DeviceKind::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<DeviceKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The plural a sentence uses: "end-user devices", "servers".
    pub fn plural(self) -> &'static str {
        match self {
            DeviceKind::EndUser => "end-user devices",
            DeviceKind::Server => "servers",
            DeviceKind::Medical => "medical devices",
            DeviceKind::Other => "other devices",
        }
    }
}

/// How many bad things a 'met' answer tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// At most this many.
    Count(u64),
    /// At most this percentage of the devices (or firewalls, or alerts) with data.
    Share(f64),
}

impl Tolerance {
    /// Whether `bad` of `known` exceeds the tolerance.
    pub fn exceeded(self, bad: u64, known: u64) -> bool {
        match self {
            Tolerance::Count(n) => bad > n,
            Tolerance::Share(p) => {
                bad > 0 && (known == 0 || (bad as f64) * 100.0 > p * known as f64)
            }
        }
    }

    /// Parses `3` (a count, given as an integer) or `"1%"` / `"0.5%"` (a share).
    pub fn parse_share(text: &str) -> Result<Tolerance, String> {
        percent(text).map(Tolerance::Share)
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Count(0) => f.write_str("none"),
            Tolerance::Count(n) => write!(f, "{n}"),
            Tolerance::Share(p) => write!(f, "{}%", trim_float(*p)),
        }
    }
}

/// "1", "0.5", "12.25": at most two decimals, no trailing zeros.
pub fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A percentage written `"80%"` or `"0.5%"`, 0 to 100.
pub fn percent(text: &str) -> Result<f64, String> {
    let Some(number) = text.trim().strip_suffix('%') else {
        return Err(format!(
            "'{text}' is not a percentage: write it with a % sign, e.g. \"1%\""
        ));
    };
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a percentage"))?;
    if !(0.0..=100.0).contains(&v) || !v.is_finite() {
        return Err(format!("'{text}' is outside 0% to 100%"));
    }
    Ok(v)
}

/// A length of time: `"48 hours"`, `"14 days"`, `"12 months"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub amount: u32,
    pub unit: SpanUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanUnit {
    Hours,
    Days,
    Months,
}

impl Span {
    pub const fn days(amount: u32) -> Span {
        Span {
            amount,
            unit: SpanUnit::Days,
        }
    }

    pub const fn months(amount: u32) -> Span {
        Span {
            amount,
            unit: SpanUnit::Months,
        }
    }

    /// Most of any unit: ten years' worth, so a typo of an extra digit is caught.
    pub fn parse(text: &str) -> Result<Span, String> {
        let bad = || {
            format!(
                "'{text}' is not a length of time; write e.g. \"48 hours\", \"14 days\" or \"12 months\""
            )
        };
        let mut parts = text.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let amount: u32 = n.parse().map_err(|_| bad())?;
        let (unit, max) = match unit {
            "hour" | "hours" => (SpanUnit::Hours, 87_600),
            "day" | "days" => (SpanUnit::Days, 3_650),
            "month" | "months" => (SpanUnit::Months, 120),
            _ => return Err(bad()),
        };
        if amount == 0 || amount > max {
            return Err(format!("'{text}': between 1 and {max} {unit:?}").to_lowercase());
        }
        Ok(Span { amount, unit })
    }

    /// The moment this long before `t`.
    pub fn before(self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self.unit {
            SpanUnit::Hours => t - chrono::Duration::hours(i64::from(self.amount)),
            SpanUnit::Days => t - chrono::Duration::days(i64::from(self.amount)),
            SpanUnit::Months => t
                .checked_sub_months(chrono::Months::new(self.amount))
                .unwrap_or(t),
        }
    }

    /// The moment this long after `t`.
    pub fn after(self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self.unit {
            SpanUnit::Hours => t + chrono::Duration::hours(i64::from(self.amount)),
            SpanUnit::Days => t + chrono::Duration::days(i64::from(self.amount)),
            SpanUnit::Months => t
                .checked_add_months(chrono::Months::new(self.amount))
                .unwrap_or(t),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match (self.unit, self.amount) {
            (SpanUnit::Hours, 1) => "hour",
            (SpanUnit::Hours, _) => "hours",
            (SpanUnit::Days, 1) => "day",
            (SpanUnit::Days, _) => "days",
            (SpanUnit::Months, 1) => "month",
            (SpanUnit::Months, _) => "months",
        };
        write!(f, "{} {unit}", self.amount)
    }
}

/// How one item's telemetry check judges its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judge {
    /// Endpoint checks: the kinds of device counted.
    pub devices: Vec<DeviceKind>,
    /// Endpoint checks: whether devices Defender only *discovered* (no sensor can run on
    /// them: onboarding status `Unsupported` or `InsufficientInfo`) are counted.
    pub discovered: bool,
    /// How many bad ones a 'met' answer tolerates.
    pub tolerance: Tolerance,
    /// The share of the counted devices (percent) that must report the field for a
    /// clean count to corroborate anything; below it the verdict is
    /// `insufficient_coverage`.
    pub coverage: f64,
    /// Alerts: only those issued this long before the snapshot's day or since.
    /// `firewalls.rule_review_overdue`: a review older than this is overdue.
    pub window: Option<Span>,
    /// `alerts.unremediated`: how long after issue an alert must be closed.
    pub deadline: Option<Span>,
}

/// The checks whose feed carries dates a window can apply to.
pub fn takes_window(check: TelemetryCheck) -> bool {
    use TelemetryCheck::*;
    matches!(
        check,
        AlertsUnacknowledged48h | AlertsUnremediated | FirewallsRuleReviewOverdue
    )
}

/// The checks that count endpoints (and so take `devices` and `discovered`).
pub fn counts_endpoints(check: TelemetryCheck) -> bool {
    check.name().starts_with("endpoints.")
}

impl Judge {
    /// What a check judges by when its item declares nothing: every kind of device that
    /// can carry a sensor, no bad one tolerated, 80% coverage (90% for the inventory's
    /// own fields), alerts over 12 months, rule reviews within 12 months, alerts closed
    /// within 14 days (DSPT 9.2.3's fix-within-14-days, REFERENCE §5 [C]).
    pub fn default_for(check: TelemetryCheck) -> Judge {
        use TelemetryCheck::*;
        let mut j = Judge {
            devices: DeviceKind::ALL.to_vec(),
            discovered: false,
            tolerance: Tolerance::Count(0),
            coverage: 80.0,
            window: None,
            deadline: None,
        };
        match check {
            // The OS is known for every device the inventory holds, discovered or not;
            // a discovered Windows 7 imaging console is exactly the risk.
            EndpointsUnsupportedOs => {
                j.discovered = true;
                j.coverage = 90.0;
            }
            // Onboarding is known for every device; only those a sensor can run on count.
            EndpointsNotOnboarded => {
                j.devices = vec![DeviceKind::EndUser, DeviceKind::Server];
                j.coverage = 0.0;
            }
            FirewallsUnsupportedFirmware | FirewallsAdminInterfaceExposed => j.coverage = 0.0,
            FirewallsRuleReviewOverdue => {
                j.coverage = 0.0;
                j.window = Some(Span::months(12));
            }
            AlertsUnacknowledged48h => {
                j.coverage = 0.0;
                j.window = Some(Span::months(12));
            }
            AlertsUnremediated => {
                j.coverage = 0.0;
                j.window = Some(Span::months(12));
                j.deadline = Some(Span::days(14));
            }
            _ => {}
        }
        j
    }

    /// The rule in words: "end-user devices with a sensor; tolerance 1%; coverage 80%".
    pub fn describe(&self, check: TelemetryCheck) -> String {
        let mut parts = Vec::new();
        if counts_endpoints(check) {
            let kinds: Vec<&str> = self.devices.iter().map(|k| k.plural()).collect();
            let kinds = if self.devices.len() == DeviceKind::ALL.len() {
                "all devices".to_owned()
            } else {
                kinds.join(", ")
            };
            parts.push(if self.discovered {
                format!("{kinds}, discovered ones too")
            } else {
                format!("{kinds} that can carry a sensor")
            });
        }
        parts.push(format!("tolerance {}", self.tolerance));
        if self.coverage > 0.0 {
            parts.push(format!("needs {}% coverage", trim_float(self.coverage)));
        }
        if let Some(w) = self.window {
            parts.push(match check {
                TelemetryCheck::FirewallsRuleReviewOverdue => format!("review within {w}"),
                _ => format!("alerts of the last {w}"),
            });
        }
        if let Some(d) = self.deadline {
            parts.push(format!("closed within {d}"));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_count_and_share() {
        assert!(!Tolerance::Count(0).exceeded(0, 10));
        assert!(Tolerance::Count(0).exceeded(1, 100_000));
        assert!(!Tolerance::Count(5).exceeded(5, 10));
        let one = Tolerance::parse_share("1%").unwrap();
        assert!(!one.exceeded(3, 4_250), "0.07% is within 1%");
        assert!(!one.exceeded(10, 1_000), "exactly 1% is within it");
        assert!(one.exceeded(11, 1_000));
        assert!(
            one.exceeded(1, 0),
            "bad ones with no known base exceed any share"
        );
        assert_eq!(one.to_string(), "1%");
        assert_eq!(Tolerance::parse_share("0.5%").unwrap().to_string(), "0.5%");
        assert!(Tolerance::parse_share("1").is_err());
        assert!(Tolerance::parse_share("101%").is_err());
        assert!(Tolerance::parse_share("-1%").is_err());
        assert!(Tolerance::parse_share("NaN%").is_err());
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("12 months").unwrap(), Span::months(12));
        assert_eq!(Span::parse("14 days").unwrap().to_string(), "14 days");
        assert_eq!(Span::parse("1 day").unwrap().to_string(), "1 day");
        assert_eq!(Span::parse("48 hours").unwrap().unit, SpanUnit::Hours);
        for bad in [
            "",
            "12",
            "twelve months",
            "12 weeks",
            "0 days",
            "121 months",
            "1 2 days",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad:?}");
        }
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            Span::months(12).before(t).to_rfc3339(),
            "2025-11-29T00:00:00+00:00"
        );
    }

    #[test]
    fn every_check_has_a_default_that_describes_itself() {
        for check in TelemetryCheck::ALL {
            let j = Judge::default_for(check);
            assert!(!j.describe(check).is_empty());
            assert_eq!(j.window.is_some(), takes_window(check), "{check}");
        }
        assert_eq!(
            Judge::default_for(TelemetryCheck::EndpointsBitlockerOff)
                .describe(TelemetryCheck::EndpointsBitlockerOff),
            "all devices that can carry a sensor; tolerance none; needs 80% coverage"
        );
    }
}
