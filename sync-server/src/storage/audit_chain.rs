//! The audit log's hash chain, the same in every backend.
//!
//! Each audit row carries a link: the SHA-256 of the link of the row before it (32 zero
//! bytes for the first) and of every field of its own, as stored. A row changed, removed
//! or inserted in the database afterwards breaks the chain from that row on, and
//! [`verify`] walks the rows from the first and says where. Rows are numbered from 1
//! with no gaps, and the number is hashed, so a row taken out shows as a gap. Someone who rewrites every row after the one they change makes a
//! chain that holds again; what they cannot make is the same last link, which an
//! operator can write down elsewhere ([`AuditVerdict::head`]) and compare later.
//!
//! The fields are hashed as the strings the backends store ([`super::columns::ts`] for
//! the time), so a log copied from one backend to the other verifies alike.
//!
//! Appending is each backend's: it must read the last row's link and write the new row
//! in one transaction that no other appender can interleave with (SQLite's single
//! writer; a PostgreSQL advisory lock), or two rows would claim the same predecessor.

use super::columns::ts;
use super::{AuditEvent, AuditVerdict, Result, StorageError};

/// One audit row as its link covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditRow {
    pub(crate) seq: i64,
    /// As stored (RFC 3339 text).
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) device: Option<i64>,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) origin: String,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

impl AuditRow {
    /// Every row, oldest first, with its stored link last: the columns in this order are
    /// what each backend reads into `(AuditRow, Option<Vec<u8>>)`.
    pub(crate) const SELECT: &str =
        "SELECT seq, at, actor, device, action, target, origin, outcome, detail, hash
           FROM audit ORDER BY seq";

    /// The row an event is stored as, numbered `seq`.
    pub(crate) fn new(seq: i64, e: &AuditEvent) -> AuditRow {
        AuditRow {
            seq,
            at: ts(e.at),
            actor: e.actor.clone(),
            device: e.device,
            action: e.action.clone(),
            target: e.target.clone(),
            origin: e.from.clone(),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// A row's link in the audit chain: SHA-256 of the previous link and every field of the
/// row, each length-prefixed (so no two rows serialise alike), the sequence number
/// first (so a removed row shows).
pub(crate) fn audit_link(prev: &[u8; 32], row: &AuditRow) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"wardcheck audit v1");
    h.update(prev);
    let device = row.device.map(|d| d.to_string());
    let fields: [Option<&str>; 9] = [
        Some(&row.seq.to_string()),
        Some(&row.at),
        Some(&row.actor),
        device.as_deref(),
        Some(&row.action),
        Some(&row.target),
        Some(&row.origin),
        Some(&row.outcome),
        row.detail.as_deref(),
    ];
    for f in fields {
        match f {
            Some(v) => {
                h.update([1]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

/// The last row's stored link, which the next row links to.
pub(crate) fn link_of(stored: Option<Vec<u8>>) -> Result<[u8; 32]> {
    stored
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .ok_or_else(|| StorageError::Corrupt("the audit log's last row has no link".into()))
}

/// Walks the rows of [`AuditRow::SELECT`] (each with its stored link) from the first, and
/// stops at the first that breaks the chain. An error reading a row is returned as it is.
pub(crate) fn verify<E>(
    rows: impl IntoIterator<Item = std::result::Result<(AuditRow, Option<Vec<u8>>), E>>,
) -> std::result::Result<AuditVerdict, E> {
    let mut prev = [0u8; 32];
    let mut expected_seq = 1;
    let mut n = 0;
    for r in rows {
        let (row, stored) = r?;
        let want = audit_link(&prev, &row);
        let why = if row.seq != expected_seq {
            Some(format!(
                "row {} follows row {}: the rows between are gone",
                row.seq,
                expected_seq - 1
            ))
        } else if stored.as_deref() != Some(&want[..]) {
            Some(format!(
                "row {} ({} {} {}) does not match its link: it, or a row before it, was changed, removed or inserted",
                row.seq, row.at, row.actor, row.action
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Ok(AuditVerdict {
                rows: n,
                head: hex::encode(prev),
                broken: Some((row.seq, why)),
            });
        }
        prev = want;
        expected_seq = row.seq + 1;
        n += 1;
    }
    Ok(AuditVerdict {
        rows: n,
        head: hex::encode(prev),
        broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(AuditRow, Option<Vec<u8>>)> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let row = AuditRow {
                    seq,
                    at: "2026-05-28T09:30:00.000000Z".into(),
                    actor: "ann".into(),
                    device: (seq % 2 == 0).then_some(seq),
                    action: "doc_read".into(),
                    target: format!("doc-{seq}"),
                    origin: "127.0.0.1".into(),
                    outcome: "ok".into(),
                    detail: None,
                };
                prev = audit_link(&prev, &row);
                (row, Some(prev.to_vec()))
            })
            .collect()
    }

    fn walk(rows: Vec<(AuditRow, Option<Vec<u8>>)>) -> AuditVerdict {
        verify(rows.into_iter().map(Ok::<_, StorageError>)).unwrap()
    }

    #[test]
    fn an_unbroken_chain_verifies_to_its_last_link() {
        let rows = chain(4);
        let head = hex::encode(rows[3].1.as_ref().unwrap());
        let v = walk(rows);
        assert_eq!((v.rows, v.broken, v.head), (4, None, head));
        let empty = walk(Vec::new());
        assert_eq!((empty.rows, empty.head), (0, hex::encode([0u8; 32])));
    }

    #[test]
    fn a_changed_or_missing_row_breaks_the_chain_there() {
        let mut changed = chain(4);
        changed[2].0.actor = "mallory".into();
        let v = walk(changed);
        assert_eq!((v.rows, v.broken.map(|b| b.0)), (2, Some(3)));

        let mut gone = chain(4);
        gone.remove(1);
        let v = walk(gone);
        assert_eq!(v.rows, 1);
        let (seq, why) = v.broken.unwrap();
        assert_eq!(seq, 3);
        assert!(why.contains("gone"), "{why}");
    }

    /// The link is pinned: a change to how rows are hashed would break every stored log.
    #[test]
    fn the_link_of_a_known_row_is_stable() {
        let e = AuditEvent {
            at: chrono::DateTime::parse_from_rfc3339("2026-05-28T09:30:00Z")
                .unwrap()
                .to_utc(),
            actor: "ann".into(),
            device: Some(7),
            action: "doc_read".into(),
            target: "doc-1".into(),
            from: "127.0.0.1".into(),
            outcome: "ok".into(),
            detail: None,
        };
        let row = AuditRow::new(1, &e);
        assert_eq!(row.at, "2026-05-28T09:30:00.000000Z", "the time as stored");
        assert_eq!(
            hex::encode(audit_link(&[0; 32], &row)),
            "199b918ea484d4ba7b31c5f635f35356b2e4c807857dd95487007ae7f3277a46"
        );
    }
}
