//! What requests anyone can make leave behind, without a write each: a device's
//! last-seen time, and the audit events of refusals that need no sign-in (a device token
//! that is not valid, a wipe report without a wiped device's token, a sign-in refused
//! as malformed or past its limit).
//!
//! Both are kept in memory and written in batches, every [`limits::ACTIVITY_FLUSH_EVERY`]
//! and when the server is stopped with SIGTERM or Ctrl-C ([`crate::serve`]), each batch
//! in one transaction. So a flood of such requests costs a bounded number of writes a
//! minute, whatever its size: it cannot delay the writes that acknowledge inspectors'
//! changes (one SQLite connection takes them all), and it cannot grow the audit log
//! without bound.
//!
//! - **Last seen**: a device's first sighting since the server started is written at
//!   once; after that, the latest time at the next flush (so `device list` may be up to
//!   [`limits::ACTIVITY_FLUSH_EVERY`] behind; a SIGKILL loses at most that much of it).
//! - **Refusals**, counted per kind (action and outcome) and address (an IPv6 client's
//!   /64 counts as one, as for sign-in limits) per minute of the server's clock: the
//!   first of a kind from an address in a minute is audited at once, as it always was,
//!   up to [`limits::MAX_IMMEDIATE_REFUSAL_AUDITS`] a minute in all; the others are
//!   counted and written as one row for that kind, address and minute, whose detail
//!   says how many. At most [`limits::MAX_TALLIED_ADDRESSES`] are told apart in a minute;
//!   refusals past that are counted together in one row per kind ("other addresses").
//!   So a minute's flood writes at most `MAX_IMMEDIATE_REFUSAL_AUDITS` rows at once and
//!   about `MAX_TALLIED_ADDRESSES` at its end. A wiped device is tallied per device.
//!   Targets are cut to 200 characters, control characters dropped; actors (a refused
//!   sign-in's name) to 200 characters. Sign-ins refused under different names are
//!   told apart.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};

use crate::limits;
use crate::logins::addr_key;
use crate::storage::{AuditEvent, audit_target};

/// The origin recorded for refusals from addresses past the per-minute limit.
pub const OTHER_ADDRESSES: &str = "other addresses";

#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<Seen>,
    refused: Mutex<Refused>,
    /// Held across a flush's take and write, so that the one at shutdown writes after
    /// (and as well as) one under way.
    pub(crate) flushing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Devices whose last-seen time was written since the server started.
    written: std::collections::HashSet<i64>,
    latest: HashMap<i64, DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Refused {
    /// The minute (seconds since 1970 / 60) `tally` counts.
    minute: i64,
    /// Refusals audited at once this minute.
    immediate: usize,
    tally: HashMap<String, Tally>,
    /// Rows for minutes gone by, waiting for the next flush.
    done: Vec<AuditEvent>,
}

#[derive(Debug)]
struct Tally {
    /// The first refusal of its kind from its address (or, past the address limit, of
    /// its kind).
    first: AuditEvent,
    /// Whether `first` was audited at once.
    audited: bool,
    /// Refusals not audited one by one.
    counted: u64,
}

impl Tally {
    /// Every refusal it stands for: those counted, and the first if audited.
    fn seen(&self) -> u64 {
        self.counted + u64::from(self.audited)
    }
}

impl Activity {
    /// Device `id` was seen at `at`: `true` when it is its first sighting since the
    /// server started, which the caller writes at once.
    pub fn seen(&self, id: i64, at: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.written.insert(id) {
            return true;
        }
        seen.keep_latest(id, at);
        false
    }

    /// Accounts for refusal `e` (its target cleaned here): `true` when it is to be
    /// audited at once (the first of its kind from its address, or wiped device, this
    /// minute, within the minute's budget); otherwise it is counted.
    pub fn refused(&self, e: &mut AuditEvent) -> bool {
        self.refused_counting(e).0
    }

    /// The same, with how many refusals of its kind, from its address (or wiped device),
    /// this minute has seen so far, this one too (past [`limits::MAX_TALLIED_ADDRESSES`],
    /// those of every other address together).
    pub fn refused_counting(&self, e: &mut AuditEvent) -> (bool, u64) {
        e.target = audit_target(&e.target);
        // A refused sign-in's actor is the name it gave, which may be long: cut too (its
        // control characters are kept, as given; the CLI shows them neutralised).
        if e.actor.chars().count() > 200 {
            e.actor = e.actor.chars().take(200).collect();
        }
        let minute = e.at.timestamp().div_euclid(60);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if minute != refused.minute {
            refused.close_minute(e.at);
            refused.minute = minute;
        }
        // A kind is the action, the outcome and who it names: sign-ins refused under
        // different names are told apart (within the minute's budget).
        let kind = format!("{}\t{}\t{}", e.action, e.outcome, e.actor);
        let key = match e.device {
            Some(d) => format!("{kind}\tdevice {d}"),
            None => format!("{kind}\t{}", addr_key(&e.from)),
        };
        if let Some(t) = refused.tally.get_mut(&key) {
            t.counted += 1;
            return (false, t.seen());
        }
        if refused.tally.len() < limits::MAX_TALLIED_ADDRESSES {
            let audited = refused.immediate < limits::MAX_IMMEDIATE_REFUSAL_AUDITS;
            refused.immediate += usize::from(audited);
            refused.tally.insert(
                key,
                Tally {
                    first: e.clone(),
                    audited,
                    counted: u64::from(!audited),
                },
            );
            return (audited, 1);
        }
        let other = refused
            .tally
            .entry(format!("{}\t{}\t{OTHER_ADDRESSES}", e.action, e.outcome))
            .or_insert_with(|| Tally {
                first: AuditEvent {
                    actor: "-".into(),
                    device: None,
                    from: OTHER_ADDRESSES.into(),
                    ..e.clone()
                },
                audited: false,
                counted: 0,
            });
        other.counted += 1;
        (false, other.seen())
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
            std::mem::take(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()).latest)
                .into_iter()
                .collect();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let minute = now.timestamp().div_euclid(60);
        if all || minute != refused.minute {
            refused.close_minute(now);
            refused.minute = minute;
        }
        (seen, std::mem::take(&mut refused.done))
    }

    /// Puts back what a failed flush took, so that the next one writes it.
    pub fn put_back(&self, seen: Vec<(i64, DateTime<Utc>)>, rows: Vec<AuditEvent>) {
        {
            let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (id, at) in seen {
                s.keep_latest(id, at);
            }
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = rows;
        rows.append(&mut refused.done);
        refused.done = rows;
    }
}

impl Seen {
    /// Keeps `at` for device `id` unless a later time is already held.
    fn keep_latest(&mut self, id: i64, at: DateTime<Utc>) {
        let t = self.latest.entry(id).or_insert(at);
        if *t < at {
            *t = at;
        }
    }
}

impl Refused {
    /// Turns the current minute's counts into rows waiting for the next flush, dated
    /// `now` (the detail names the minute they count).
    fn close_minute(&mut self, now: DateTime<Utc>) {
        let start = Utc
            .timestamp_opt(self.minute * 60, 0)
            .single()
            .unwrap_or_default();
        self.immediate = 0;
        let mut rows: Vec<AuditEvent> = self
            .tally
            .drain()
            .filter(|(_, t)| t.counted > 0)
            .map(|(_, t)| {
                let one = t.first.from != OTHER_ADDRESSES;
                let more = if t.audited { "more " } else { "" };
                AuditEvent {
                    at: now,
                    detail: Some(format!(
                        "{} {more}such refusal{} in the minute from {} ({}; counted, not \
                         audited one by one{})",
                        t.counted,
                        if t.counted == 1 { "" } else { "s" },
                        start.format("%Y-%m-%d %H:%M UTC"),
                        if one {
                            "from this address"
                        } else {
                            "from addresses past the number told apart in a minute"
                        },
                        if t.audited {
                            "; the first was audited on its own"
                        } else {
                            ""
                        },
                    )),
                    ..t.first
                }
            })
            .collect();
        // A stable order: by address, then kind.
        rows.sort_by(|a, b| {
            (&a.from, &a.action, &a.outcome).cmp(&(&b.from, &b.action, &b.outcome))
        });
        self.done.append(&mut rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(from: &str, at: &str) -> AuditEvent {
        AuditEvent {
            at: DateTime::parse_from_rfc3339(at).unwrap().to_utc(),
            actor: "-".into(),
            device: None,
            action: "token_rejected".into(),
            target: "/api/v1/me".into(),
            from: from.into(),
            outcome: "denied".into(),
            detail: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    const T: &str = "2026-12-06T10:00:05Z";

    #[test]
    fn each_refusal_says_how_many_its_address_has_had_this_minute() {
        let a = Activity::default();
        for n in 1..=5 {
            assert_eq!(a.refused_counting(&mut refusal("10.0.0.1", T)).1, n);
        }
        assert_eq!(
            a.refused_counting(&mut refusal("10.0.0.2", T)).1,
            1,
            "per address"
        );
        let next_minute = "2026-12-06T10:01:05Z";
        assert_eq!(
            a.refused_counting(&mut refusal("10.0.0.1", next_minute)).1,
            1,
            "counted afresh each minute"
        );
    }

    #[test]
    fn the_first_refusal_of_a_kind_from_an_address_in_a_minute_is_audited_the_rest_counted() {
        let a = Activity::default();
        assert!(a.refused(&mut refusal("10.0.0.1", T)));
        for _ in 0..499 {
            assert!(!a.refused(&mut refusal("10.0.0.1", T)));
        }
        // Another kind from the same address is audited once too.
        let mut login = AuditEvent {
            action: "login".into(),
            outcome: "rate_limited".into(),
            ..refusal("10.0.0.1", T)
        };
        assert!(a.refused(&mut login.clone()));
        assert!(!a.refused(&mut login));
        assert!(a.refused(&mut refusal("10.0.0.2", T)));
        // An IPv6 /64 is one address.
        assert!(a.refused(&mut refusal("2001:db8::1", T)));
        assert!(!a.refused(&mut refusal("2001:db8::2", T)));
        // Nothing to write until the minute is over.
        assert!(a.take(at("2026-12-06T10:00:59Z"), false).1.is_empty());
        let (_, rows) = a.take(at("2026-12-06T10:01:00Z"), false);
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(rows[0].from, "10.0.0.1");
        assert!(rows.iter().any(|r| {
            r.action == "login"
                && r.detail
                    .as_deref()
                    .unwrap()
                    .starts_with("1 more such refusal ")
        }));
        let tokens = rows
            .iter()
            .find(|r| r.from == "10.0.0.1" && r.action == "token_rejected");
        assert!(
            tokens
                .unwrap()
                .detail
                .as_deref()
                .unwrap()
                .starts_with("499 more such refusals")
        );
        assert_eq!(rows[0].at, at("2026-12-06T10:01:00Z"));
        // A new minute: audited at once again.
        assert!(a.refused(&mut refusal("10.0.0.1", "2026-12-06T10:01:01Z")));
        assert!(a.take(at("2026-12-06T10:01:02Z"), true).1.is_empty());
    }

    #[test]
    fn a_minute_audits_a_bounded_number_at_once_and_counts_the_rest() {
        let a = Activity::default();
        let n = limits::MAX_TALLIED_ADDRESSES;
        let mut immediate = 0;
        for i in 0..n + 1000 {
            let from = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
            immediate += usize::from(a.refused(&mut refusal(&from, T)));
        }
        assert_eq!(immediate, limits::MAX_IMMEDIATE_REFUSAL_AUDITS);
        let (_, rows) = a.take(at(T), true);
        // One count per address past the budget, and one for addresses past the limit.
        assert_eq!(rows.len(), n - limits::MAX_IMMEDIATE_REFUSAL_AUDITS + 1);
        let total: u64 = rows
            .iter()
            .map(|r| {
                r.detail
                    .as_deref()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        assert_eq!(
            total as usize + immediate,
            n + 1000,
            "every refusal is accounted for"
        );
        let other = rows.iter().find(|r| r.from == OTHER_ADDRESSES).unwrap();
        assert!(
            other
                .detail
                .as_deref()
                .unwrap()
                .starts_with("1000 such refusals")
        );
    }

    #[test]
    fn targets_are_cut_and_cleaned() {
        let a = Activity::default();
        let mut e = refusal("10.0.0.1", T);
        e.target = format!("/api/v1/blobs/{}\nforged", "x".repeat(70_000));
        assert!(a.refused(&mut e));
        assert_eq!(e.target.chars().count(), 200);
        assert!(!e.target.contains('\n'));
    }

    #[test]
    fn last_seen_is_written_at_once_the_first_time_then_batched_keeping_the_latest() {
        let a = Activity::default();
        assert!(a.seen(1, at("2026-12-06T10:00:01Z")), "first sighting");
        assert!(!a.seen(1, at("2026-12-06T10:00:05Z")));
        assert!(!a.seen(1, at("2026-12-06T10:00:04Z")));
        assert!(a.seen(2, at("2026-12-06T10:00:01Z")));
        assert!(!a.seen(2, at("2026-12-06T10:00:02Z")));
        let (mut seen, rows) = a.take(at("2026-12-06T10:00:06Z"), false);
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (1, at("2026-12-06T10:00:05Z")),
                (2, at("2026-12-06T10:00:02Z"))
            ]
        );
        a.put_back(seen, rows);
        assert!(!a.seen(1, at("2026-12-06T10:00:07Z")));
        let (mut again, _) = a.take(at("2026-12-06T10:00:08Z"), false);
        again.sort();
        assert_eq!(
            again,
            vec![
                (1, at("2026-12-06T10:00:07Z")),
                (2, at("2026-12-06T10:00:02Z"))
            ]
        );
    }
}
