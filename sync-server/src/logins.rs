//! Sign-in throttling an attacker cannot turn against a user (issue 15, item 6).
//!
//! Every attempt (a sign-in, or setting a password with a one-time code) is checked
//! against, and counted as a failure on, three keys until its password proves right:
//!
//! - **the pair** of the guessing address and the user name it guesses: the first
//!   [`limits::LOGIN_FREE_FAILURES`] failures are free (typing mistakes), then each
//!   next attempt waits twice as long as the one before (1 s, 2 s, ...), and at
//!   [`limits::LOGIN_FAILURES_PER_PAIR`] the pair is locked until its oldest failure
//!   leaves [`limits::LOGIN_WINDOW`];
//! - **the address**, whatever names it tries: at [`limits::LOGIN_FAILURES_PER_ADDR`]
//!   (a spray of names from one place) it holds back attempts at users who have never
//!   signed in from it; a user who has (everyone behind one hospital gateway) still
//!   signs in, within the pair's limits;
//! - **the user name**, from every address together: at
//!   [`limits::LOGIN_FAILURES_PER_USER`] (guesses spread over many addresses) it holds
//!   back attempts from addresses the user has never signed in from
//!   ([`limits::LOGIN_KNOWN_FOR`]); from an address they have, the right password still
//!   works.
//!
//! So a stranger who knows a user name can lock only their own address out of that
//! account, and at worst keep the user from signing in somewhere new for a window; the
//! user's usual places keep working. A right password forgets the pair's failures (not
//! the user's count across addresses, which would hand a distributed guesser a fresh
//! budget each time the user signs in).
//!
//! Counted in memory by [`LoginLimiter`] for one process on SQLite, or in the database
//! ([`crate::storage::Storage::begin_login`]) where several processes share it; the
//! rule ([`LoginKey::holds_back`]) is the same code for both.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limits;

/// One count an attempt is checked and counted against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoginKey {
    pub key: String,
    /// Failures in the window that lock it.
    pub max: usize,
    /// Whether failures short of `max` slow the next attempt ([`pause_after`]).
    pub slows: bool,
    /// Whether it may hold this attempt back (counted either way): a user's count
    /// does not, from an address they have signed in from.
    pub holds: bool,
}

/// The pause after `failures` failures of a slowing key before its next attempt: none
/// for the first [`limits::LOGIN_FREE_FAILURES`], then 1 s, doubling.
pub fn pause_after(failures: usize) -> Duration {
    match failures.checked_sub(limits::LOGIN_FREE_FAILURES) {
        None => Duration::ZERO,
        Some(n) => Duration::from_secs(1u64 << n.min(10)),
    }
}

impl LoginKey {
    /// How long this key holds an attempt back, given its failures in the window, how
    /// long ago the oldest and the latest of them were.
    pub fn holds_back(
        &self,
        failures: usize,
        since_oldest: Duration,
        since_latest: Duration,
    ) -> Option<Duration> {
        if !self.holds || failures == 0 {
            return None;
        }
        if failures >= self.max {
            return Some(limits::LOGIN_WINDOW.saturating_sub(since_oldest));
        }
        let pause = if self.slows {
            pause_after(failures)
        } else {
            Duration::ZERO
        };
        (since_latest < pause).then(|| pause - since_latest)
    }
}

/// Whole seconds to wait, rounded up (a client that waits exactly this long is let
/// in), at least 1.
pub fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The per-address part of a key. An IPv6 client usually holds a whole /64, so its
/// addresses share one budget; anything that is not an IP address is used as it is.
pub fn addr_key(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => format!("a:{}", v6.to_ipv4_mapped().expect("mapped")),
        _ => format!("a:{addr}"),
    }
}

/// What an attempt tries: a password, or a one-time code (counted apart, so that a
/// stranger's wrong codes never hold back the user's sign-ins, nor the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    Password,
    Code,
}

impl Attempted {
    fn prefix(self) -> &'static str {
        match self {
            Attempted::Password => "",
            Attempted::Code => "code",
        }
    }
}

/// The key of a user's failures from every address.
pub fn user_key(what: Attempted, user: &str) -> String {
    format!("u{}:{user}", what.prefix())
}

/// The key of an address's failures at one user name.
pub fn pair_key(what: Attempted, user: &str, addr: &str) -> String {
    format!("p{}:{}\u{1f}{user}", what.prefix(), addr_key(addr))
}

/// The keys of an attempt at `user` from `addr`; `known` when the user has signed in
/// from `addr` before.
pub fn keys(what: Attempted, user: &str, addr: &str, known: bool) -> Vec<LoginKey> {
    vec![
        LoginKey {
            key: pair_key(what, user, addr),
            max: limits::LOGIN_FAILURES_PER_PAIR,
            slows: true,
            holds: true,
        },
        LoginKey {
            key: addr_key(addr),
            max: limits::LOGIN_FAILURES_PER_ADDR,
            slows: false,
            holds: !known,
        },
        LoginKey {
            key: user_key(what, user),
            max: limits::LOGIN_FAILURES_PER_USER,
            slows: false,
            holds: !known,
        },
    ]
}

/// What a right password forgets: the pair's failures.
pub fn forgotten_on_success(what: Attempted, user: &str, addr: &str) -> Vec<String> {
    vec![pair_key(what, user, addr)]
}

/// Failed attempts in a sliding window, by key, in this process's memory.
///
/// [`LoginLimiter::begin`] counts an attempt as a failure *before* its password is
/// checked, and [`LoginLimiter::succeeded`] takes it back: checking first and recording
/// after the (slow, by design) Argon2 verification would let a burst of concurrent
/// guesses all pass the check before any failure was recorded.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// An attempt that [`LoginLimiter::begin`] let through, counted as a failure until
/// [`LoginLimiter::succeeded`].
#[derive(Debug)]
#[must_use = "a successful sign-in must be reported with LoginLimiter::succeeded"]
pub struct Attempt {
    keys: Vec<String>,
    at: Instant,
}

impl LoginLimiter {
    /// Lets an attempt go ahead, counted as a failure on every key until it is reported
    /// as a success; or the seconds to wait. The check and the count are one step.
    pub fn begin(&self, keys: &[LoginKey]) -> Result<Attempt, u64> {
        self.begin_at(keys, Instant::now())
    }

    fn begin_at(&self, keys: &[LoginKey], now: Instant) -> Result<Attempt, u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait: Option<Duration> = None;
        for k in keys {
            let Some(q) = map.get_mut(&k.key) else {
                continue;
            };
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) > limits::LOGIN_WINDOW)
            {
                q.pop_front();
            }
            let (Some(oldest), Some(latest)) = (q.front(), q.back()) else {
                continue;
            };
            if let Some(w) = k.holds_back(
                q.len(),
                now.duration_since(*oldest),
                now.duration_since(*latest),
            ) {
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let Some(w) = wait {
            return Err(whole_seconds(w));
        }
        // Bound memory: forget everything stale when the map grows large.
        if map.len() > 100_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < limits::LOGIN_WINDOW)
            });
        }
        for k in keys {
            map.entry(k.key.clone()).or_default().push_back(now);
        }
        Ok(Attempt {
            keys: keys.iter().map(|k| k.key.clone()).collect(),
            at: now,
        })
    }

    /// The attempt proved wrong: its failure is dated now, when its answer goes out, so
    /// that the pause before the next attempt starts when the guesser hears (not when
    /// the slow password check began).
    pub fn failed(&self, attempt: Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for k in &attempt.keys {
            if let Some(q) = map.get_mut(k)
                && let Some(i) = q.iter().position(|t| *t == attempt.at)
            {
                q.remove(i);
                q.push_back(now);
            }
        }
    }

    /// The attempt proved right: the `forget` keys' failures go, and the attempt no
    /// longer counts against the others.
    pub fn succeeded(&self, attempt: Attempt, forget: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in forget {
            map.remove(k);
        }
        for k in &attempt.keys {
            if let Some(q) = map.get_mut(k)
                && let Some(i) = q.iter().position(|t| *t == attempt.at)
            {
                q.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt at `user` from `addr`, `secs` seconds into the test (left counted).
    fn at(
        l: &LoginLimiter,
        start: Instant,
        secs: u64,
        user: &str,
        addr: &str,
        known: bool,
    ) -> Result<(), u64> {
        attempt(l, start, secs, user, addr, known).map(drop)
    }

    /// The same, kept to be reported.
    fn attempt(
        l: &LoginLimiter,
        start: Instant,
        secs: u64,
        user: &str,
        addr: &str,
        known: bool,
    ) -> Result<Attempt, u64> {
        l.begin_at(
            &keys(Attempted::Password, user, addr, known),
            start + Duration::from_secs(secs),
        )
    }

    #[test]
    fn a_guessing_pair_slows_down_then_locks_and_only_that_pair() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        // Free failures: typing mistakes.
        for _ in 0..limits::LOGIN_FREE_FAILURES {
            at(&l, t0, 0, "ann", "6.6.6.6", false).unwrap();
        }
        // Then 1 s, 2 s, ... between attempts.
        assert_eq!(at(&l, t0, 0, "ann", "6.6.6.6", false).unwrap_err(), 1);
        at(&l, t0, 1, "ann", "6.6.6.6", false).unwrap();
        assert_eq!(at(&l, t0, 2, "ann", "6.6.6.6", false).unwrap_err(), 1);
        at(&l, t0, 3, "ann", "6.6.6.6", false).unwrap();
        assert_eq!(
            limits::LOGIN_FAILURES_PER_PAIR,
            limits::LOGIN_FREE_FAILURES + 2
        );
        // Locked: however long it waits within the window.
        let wait = at(&l, t0, 60, "ann", "6.6.6.6", false).unwrap_err();
        assert!(
            wait > 800 && wait <= limits::LOGIN_WINDOW.as_secs(),
            "{wait}"
        );
        // Ann from her own address, and from a new one, is not held back by it.
        at(&l, t0, 60, "ann", "10.1.1.1", true).unwrap();
        at(&l, t0, 60, "ann", "192.0.2.1", false).unwrap();
        // Nor is anyone else from the guessing address.
        at(&l, t0, 60, "bob", "6.6.6.6", false).unwrap();
    }

    #[test]
    fn guesses_from_many_addresses_lock_the_user_only_where_they_never_signed_in() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..limits::LOGIN_FAILURES_PER_USER {
            at(&l, t0, 0, "ann", &format!("203.0.113.{i}"), false).unwrap();
        }
        assert!(at(&l, t0, 1, "ann", "198.51.100.9", false).is_err());
        let ok = attempt(&l, t0, 1, "ann", "10.1.1.1", true).unwrap();
        // Her right password forgets the pair's failures, not the count across
        // addresses: a new address is still held back.
        l.succeeded(
            ok,
            &forgotten_on_success(Attempted::Password, "ann", "10.1.1.1"),
        );
        assert!(at(&l, t0, 2, "ann", "198.51.100.9", false).is_err());
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_limit() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let through = (0..20)
            .filter(|_| at(&l, t0, 0, "ann", "6.6.6.6", false).is_ok())
            .count();
        assert_eq!(through, limits::LOGIN_FREE_FAILURES);
    }

    #[test]
    fn an_address_spraying_names_is_locked() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..limits::LOGIN_FAILURES_PER_ADDR {
            at(&l, t0, 0, &format!("ghost{i}"), "6.6.6.6", false).unwrap();
        }
        assert!(at(&l, t0, 0, "bob", "6.6.6.6", false).is_err());
        // A user who signs in from there (a hospital's gateway) is not held back.
        at(&l, t0, 0, "ann", "6.6.6.6", true).unwrap();
    }

    #[test]
    fn codes_and_passwords_are_counted_apart() {
        let pw = keys(Attempted::Password, "code:ann", "6.6.6.6", false);
        let code = keys(Attempted::Code, "ann", "6.6.6.6", false);
        assert!(
            pw.iter()
                .zip(&code)
                .all(|(a, b)| a.key != b.key || a.key.starts_with("a:"))
        );
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key() {
        assert_eq!(
            addr_key("2001:db8:1:2::1"),
            addr_key("2001:db8:1:2:ffff::9")
        );
        assert_ne!(addr_key("2001:db8:1:2::1"), addr_key("2001:db8:1:3::1"));
        assert_eq!(addr_key("::ffff:1.2.3.4"), "a:1.2.3.4");
    }
}
