//! What requests leave behind that need not cost a write each: a device's last-seen time,
//! and refused device tokens.
//!
//! Both are kept in memory and written in batches, every [`limits::ACTIVITY_FLUSH_EVERY`]
//! and when the server is stopped with SIGTERM or Ctrl-C ([`crate::serve`]), each batch
//! in one transaction. So a flood of requests, or of made-up tokens, costs no write of
//! its own: it cannot delay the writes that acknowledge inspectors' changes (one SQLite
//! connection takes them all), and it cannot grow the audit log without bound.
//!
//! - **Last seen**: the latest time per device, written at the next flush (so `device
//!   list` may be up to [`limits::ACTIVITY_FLUSH_EVERY`] behind; a SIGKILL loses at most
//!   that much of it, and nothing else).
//! - **Refused tokens**, counted per address (an IPv6 client's /64 counts as one, as for
//!   sign-in limits) per minute of the server's clock: the first refusal from an address
//!   in a minute is audited at once, as it always was; the others are counted and
//!   written as one `token_rejected` row for that address and minute, whose detail says
//!   how many. At most [`limits::MAX_TALLIED_ADDRESSES`] addresses are told apart in a
//!   minute; refusals from further addresses are counted together in one row ("other
//!   addresses"). A device that was wiped is tallied the same way, per device.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};

use crate::auth::addr_key;
use crate::limits;
use crate::storage::AuditEvent;

/// The origin recorded for refusals from addresses past the per-minute limit.
pub const OTHER_ADDRESSES: &str = "other addresses";

#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<HashMap<i64, DateTime<Utc>>>,
    refused: Mutex<Refused>,
}

/// A refused token to account for.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Whose device, when the token was a wiped device's (`None`: not known).
    pub actor: String,
    pub device: Option<i64>,
    /// The request's path.
    pub target: String,
    /// The client's address.
    pub from: String,
    /// `denied`, or `wipe` for a wiped device told to delete its data.
    pub outcome: &'static str,
}

#[derive(Debug, Default)]
struct Refused {
    /// The minute (seconds since 1970 / 60) `tally` counts.
    minute: i64,
    tally: HashMap<String, Tally>,
    /// Rows for minutes gone by, waiting for the next flush.
    done: Vec<AuditEvent>,
}

#[derive(Debug)]
struct Tally {
    /// The first refusal, as audited (or, past the address limit, as summed up).
    first: Refusal,
    /// Refusals not audited one by one.
    counted: u64,
}

impl Activity {
    /// Device `id` was seen at `at`.
    pub fn seen(&self, id: i64, at: DateTime<Utc>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let t = seen.entry(id).or_insert(at);
        if *t < at {
            *t = at;
        }
    }

    /// Accounts for a refused token at `now`: `true` when it is the first from its
    /// address (or wiped device) this minute, which the caller audits at once.
    pub fn refused(&self, r: &Refusal, now: DateTime<Utc>) -> bool {
        let minute = now.timestamp().div_euclid(60);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if minute != refused.minute {
            refused.close_minute();
            refused.minute = minute;
        }
        let key = match r.device {
            Some(d) => format!("wiped device {d}"),
            None => addr_key(&r.from),
        };
        if let Some(t) = refused.tally.get_mut(&key) {
            t.counted += 1;
            return false;
        }
        if refused.tally.len() < limits::MAX_TALLIED_ADDRESSES {
            refused.tally.insert(
                key,
                Tally {
                    first: r.clone(),
                    counted: 0,
                },
            );
            return true;
        }
        let other = refused
            .tally
            .entry(OTHER_ADDRESSES.to_owned())
            .or_insert_with(|| Tally {
                first: Refusal {
                    actor: "-".into(),
                    device: None,
                    target: r.target.clone(),
                    from: OTHER_ADDRESSES.into(),
                    outcome: "denied",
                },
                counted: 0,
            });
        other.counted += 1;
        false
    }

    /// What to write now: every device's latest last-seen time, and the rows of the
    /// refusals counted in minutes before `now`'s (all of them, the current minute's
    /// too, when `all`: the server is stopping).
    pub fn take(
        &self,
        now: DateTime<Utc>,
        all: bool,
    ) -> (Vec<(i64, DateTime<Utc>)>, Vec<AuditEvent>) {
        let seen: Vec<_> =
            std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if all || now.timestamp().div_euclid(60) != refused.minute {
            refused.close_minute();
        }
        (seen, std::mem::take(&mut refused.done))
    }

    /// Puts back what a failed flush took, so that the next one writes it.
    pub fn put_back(&self, seen: Vec<(i64, DateTime<Utc>)>, rows: Vec<AuditEvent>) {
        for (id, at) in seen {
            self.seen(id, at);
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = rows;
        rows.append(&mut refused.done);
        refused.done = rows;
    }
}

impl Refused {
    /// Turns the current minute's counts into rows waiting for the next flush.
    fn close_minute(&mut self) {
        let start = Utc
            .timestamp_opt(self.minute * 60, 0)
            .single()
            .unwrap_or_default();
        let mut rows: Vec<AuditEvent> = self
            .tally
            .drain()
            .filter(|(_, t)| t.counted > 0)
            .map(|(_, t)| {
                let one = t.first.from != OTHER_ADDRESSES;
                AuditEvent {
                    at: start + chrono::Duration::seconds(59),
                    actor: t.first.actor,
                    device: t.first.device,
                    action: "token_rejected".into(),
                    target: t.first.target,
                    from: t.first.from,
                    outcome: t.first.outcome.into(),
                    detail: Some(format!(
                        "{} more request{} with a device token that is not valid in the minute \
                         from {} ({}; counted, not audited one by one{})",
                        t.counted,
                        if t.counted == 1 { "" } else { "s" },
                        start.format("%Y-%m-%d %H:%M UTC"),
                        if one {
                            "from this address"
                        } else {
                            "from addresses past the number told apart in a minute"
                        },
                        if one {
                            "; the first was audited on its own"
                        } else {
                            ""
                        },
                    )),
                }
            })
            .collect();
        // A stable order: by address.
        rows.sort_by(|a, b| a.from.cmp(&b.from));
        self.done.append(&mut rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(from: &str) -> Refusal {
        Refusal {
            actor: "-".into(),
            device: None,
            target: "/api/v1/me".into(),
            from: from.into(),
            outcome: "denied",
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_first_refusal_an_address_makes_in_a_minute_is_audited_the_rest_counted() {
        let a = Activity::default();
        let t = at("2026-12-06T10:00:05Z");
        assert!(a.refused(&refusal("10.0.0.1"), t));
        for _ in 0..499 {
            assert!(!a.refused(&refusal("10.0.0.1"), t));
        }
        assert!(a.refused(&refusal("10.0.0.2"), t));
        // An IPv6 /64 is one address.
        assert!(a.refused(&refusal("2001:db8::1"), t));
        assert!(!a.refused(&refusal("2001:db8::2"), t));
        // Nothing to write until the minute is over.
        assert!(a.take(at("2026-12-06T10:00:59Z"), false).1.is_empty());
        let (_, rows) = a.take(at("2026-12-06T10:01:00Z"), false);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].from, "10.0.0.1");
        assert!(
            rows[0]
                .detail
                .as_deref()
                .unwrap()
                .starts_with("499 more requests")
        );
        assert_eq!(rows[0].at, at("2026-12-06T10:00:59Z"));
        assert!(
            rows[1]
                .detail
                .as_deref()
                .unwrap()
                .starts_with("1 more request ")
        );
        // A new minute: audited at once again.
        assert!(a.refused(&refusal("10.0.0.1"), at("2026-12-06T10:01:01Z")));
        assert!(a.take(at("2026-12-06T10:01:02Z"), true).1.is_empty());
    }

    #[test]
    fn addresses_past_the_limit_are_counted_together() {
        let a = Activity::default();
        let t = at("2026-12-06T10:00:05Z");
        let n = limits::MAX_TALLIED_ADDRESSES;
        for i in 0..n + 1000 {
            let from = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
            assert_eq!(a.refused(&refusal(&from), t), i < n, "address {i}");
        }
        let (_, rows) = a.take(t, true);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].from, OTHER_ADDRESSES);
        assert!(
            rows[0]
                .detail
                .as_deref()
                .unwrap()
                .starts_with("1000 more requests")
        );
    }

    #[test]
    fn last_seen_keeps_the_latest_time_and_a_failed_flush_is_put_back() {
        let a = Activity::default();
        a.seen(1, at("2026-12-06T10:00:05Z"));
        a.seen(1, at("2026-12-06T10:00:04Z"));
        a.seen(2, at("2026-12-06T10:00:01Z"));
        let (mut seen, rows) = a.take(at("2026-12-06T10:00:06Z"), false);
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (1, at("2026-12-06T10:00:05Z")),
                (2, at("2026-12-06T10:00:01Z"))
            ]
        );
        a.put_back(seen.clone(), rows);
        a.seen(1, at("2026-12-06T10:00:07Z"));
        let (mut again, _) = a.take(at("2026-12-06T10:00:08Z"), false);
        again.sort();
        assert_eq!(
            again,
            vec![
                (1, at("2026-12-06T10:00:07Z")),
                (2, at("2026-12-06T10:00:01Z"))
            ]
        );
    }
}
