//! How the record's values are written into columns, the same in every backend.
//!
//! Times are RFC 3339 text in UTC with microseconds (`2026-05-28T09:30:00.000000Z`):
//! text of one fixed width compares in time order, byte by byte, so "never back in
//! time" and "untouched since" are plain comparisons; and the audit log's chain hashes
//! these very strings ([`super::audit_chain`]), so a row reads back to the same link in
//! either backend. Ids are UUIDs in their lowercase hyphenated form, which sort as
//! their bytes do. States are their serde names (`draft`, `shared_with_trust`), and a
//! role is its name with the trust's code beside it for a trust lead.
//!
//! Each reader returns the parse error as it is; each backend wraps it in its own way.

use chrono::{DateTime, Utc};
use wardcheck_core::inspection::State;

use super::{Role, StorageError};

/// A time as stored.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A time stored by [`ts`] (or any RFC 3339 time, from older rows).
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// An inspection's state as stored.
pub(crate) fn state_name(s: State) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a state serialises to a string")
}

pub(crate) fn parse_state(s: &str) -> Result<State, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
}

/// A role as its two columns: its name, and the trust a trust lead leads.
pub(crate) fn role_columns(role: &Role) -> (&'static str, Option<&str>) {
    let trust = match role {
        Role::TrustLead(t) => Some(t.as_str()),
        _ => None,
    };
    (role.name(), trust)
}

/// The role its two columns name ([`role_columns`]).
pub(crate) fn parse_role(name: &str, trust: Option<String>) -> Result<Role, StorageError> {
    Ok(match (name, trust) {
        ("inspector", _) => Role::Inspector,
        ("reviewer", _) => Role::Reviewer,
        ("admin", _) => Role::Admin,
        ("trust-lead", Some(t)) => Role::TrustLead(t),
        (other, _) => return Err(StorageError::Corrupt(format!("unknown role {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored times of one width sort as the times do: the backends compare them as text.
    #[test]
    fn stored_times_sort_as_times() {
        let a = DateTime::parse_from_rfc3339("2026-05-28T09:30:00Z")
            .unwrap()
            .to_utc();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::days(400);
        assert!(
            ts(a) < ts(b) && ts(b) < ts(c),
            "{} {} {}",
            ts(a),
            ts(b),
            ts(c)
        );
        assert_eq!(parse_ts(&ts(b)).unwrap(), b, "a stored time reads back");
    }

    #[test]
    fn roles_read_back() {
        for role in [
            Role::Inspector,
            Role::Reviewer,
            Role::Admin,
            Role::TrustLead("RJ1".into()),
        ] {
            let (name, trust) = role_columns(&role);
            assert_eq!(parse_role(name, trust.map(str::to_owned)).unwrap(), role);
        }
        assert!(matches!(
            parse_role("trust-lead", None),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn states_read_back() {
        for s in [
            State::Draft,
            State::InProgress,
            State::Submitted,
            State::SharedWithTrust,
            State::Closed,
            State::Cancelled,
        ] {
            assert_eq!(parse_state(&state_name(s)).unwrap(), s);
        }
    }
}
