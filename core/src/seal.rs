//! The signed record: sign-offs that pin what was signed, and chain to each other.
//!
//! A sign-off (a [`Signoff`] in the inspection's `signoffs` map) records
//! - `heads`: the document's heads when it was made, which are exactly the change's
//!   dependencies (the server checks they are);
//! - `content`: the SHA-256 of the signed content at those heads, serialised
//!   canonically ([`content_hash`]): the inspection's id, trust, sites, checklist pin and
//!   visit dates, every answer and note with its photos, every sampled device with its
//!   observations, and every finding. Not the state, the team, comments or sign-offs;
//! - `prev`: the hash ([`link_hash`]) of the link before it, `None` for the first.
//!
//! A reviewer who reopens a signed inspection adds a link too (`kind: reopen`, the reason
//! as its statement), in the same change that moves it back to in progress. So the
//! `signoffs` map is one chain: lead inspector's sign-off, reviewer's sign-off, reopening,
//! lead inspector's sign-off again, ...
//!
//! **Frozen**: while the last lead inspector's sign-off stands (no reopening after it),
//! answers, notes, photos, devices and findings take no change from anyone
//! ([`Chain::frozen`]; the write policy refuses with `frozen`).
//!
//! # Canonical serialisation
//! [`content_hash`] is the SHA-256 of the compact JSON (serde_json) of [`SignedContent`]
//! (its `format` first, [`CONTENT_FORMAT`]): fields in declaration order, maps (answers by item id) in key order, devices and
//! findings in the order the view lists them (by creation time, then id), each field with
//! every value it holds and that value's author and time. [`link_hash`] is the SHA-256 of
//! the compact JSON of the link as stored (its fields in declaration order, `hash` left
//! out). Both are lower-case hex.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::checklist::ChecklistPin;
use crate::inspection::{
    DeviceView, FindingView, InspectionView, LinkKind, ResponseView, Signoff, SignoffRole,
};

/// The form of [`SignedContent`] this code hashes: a later form is a new number, and
/// sign-offs made under this one are checked with this one.
pub const CONTENT_FORMAT: u32 = 1;

/// What a sign-off signs, in its canonical order.
#[derive(Debug, Serialize)]
pub struct SignedContent<'a> {
    /// [`CONTENT_FORMAT`].
    pub format: u32,
    pub id: Uuid,
    pub trust: &'a str,
    pub sites: &'a [String],
    pub checklist: &'a ChecklistPin,
    pub visit_start: Option<NaiveDate>,
    pub visit_end: Option<NaiveDate>,
    pub responses: &'a BTreeMap<String, ResponseView>,
    pub devices: &'a [DeviceView],
    pub findings: &'a [FindingView],
}

impl<'a> SignedContent<'a> {
    pub fn of(v: &'a InspectionView) -> Self {
        SignedContent {
            format: CONTENT_FORMAT,
            id: v.id,
            trust: &v.meta.trust,
            sites: &v.meta.sites,
            checklist: &v.meta.checklist,
            visit_start: v.meta.visit_start,
            visit_end: v.meta.visit_end,
            responses: &v.responses,
            devices: &v.devices,
            findings: &v.findings,
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of the signed content of `view`, canonically serialised.
pub fn content_hash(view: &InspectionView) -> String {
    let json = serde_json::to_vec(&SignedContent::of(view)).expect("views serialise");
    sha256_hex(&json)
}

/// The SHA-256 of the signed content of inspection document `doc` as it stood at `heads`:
/// read in place when those are its heads now (no replay of the history), else on a copy
/// made at them.
pub fn content_at(
    doc: &mut automerge::AutoCommit,
    heads: &[automerge::ChangeHash],
    checklist: std::sync::Arc<crate::checklist::Checklist>,
) -> Result<String, crate::inspection::InspectionError> {
    use crate::inspection::Inspection;
    let mut now = doc.get_heads();
    let mut at = heads.to_vec();
    now.sort();
    at.sort();
    if now == at {
        Inspection::read_in(doc, checklist, |i| i.view().map(|v| content_hash(&v)))?
    } else {
        let fork = doc.fork_at(heads)?;
        Ok(content_hash(
            &Inspection::from_doc(fork, checklist)?.view()?,
        ))
    }
}

/// The hash of a link as stored (without its view-only `hash`).
pub fn link_hash(link: &Signoff) -> String {
    let mut l = link.clone();
    l.hash = None;
    sha256_hex(&serde_json::to_vec(&l).expect("sign-offs serialise"))
}

/// Whether `s` is a lower-case hex SHA-256.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The sign-offs and reopenings of an inspection, put in chain order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// The links, first to last, each with its `hash` set.
    pub links: Vec<Signoff>,
    /// Sign-offs from before sign-offs were sealed (no heads, no content): not links.
    pub unsealed: Vec<Signoff>,
    /// Why the links do not make one chain, if they do not (a fork, a second start, a
    /// link nothing leads to). Never the case for a document the server checked.
    pub broken: Vec<String>,
}

/// Where the chain stands, for the write policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seal {
    /// The last link's hash: the `prev` of the next one.
    pub tip: Option<String>,
    /// A lead inspector's sign-off stands: the signed parts are frozen.
    pub frozen: bool,
    /// A reviewer signed after the standing lead inspector's sign-off.
    pub reviewer_signed: bool,
}

impl Chain {
    /// Orders `all` by their `prev` links.
    pub fn from_links(all: Vec<Signoff>) -> Chain {
        let mut chain = Chain::default();
        let mut sealed = Vec::new();
        for mut s in all {
            if s.content.is_none() {
                chain.unsealed.push(s);
            } else {
                s.hash = Some(link_hash(&s));
                sealed.push(s);
            }
        }
        chain.unsealed.sort_by_key(|s| (s.at, s.id));
        sealed.sort_by_key(|s| (s.at, s.id));
        let mut prev: Option<String> = None;
        while !sealed.is_empty() {
            let next: Vec<usize> = (0..sealed.len())
                .filter(|&i| sealed[i].prev == prev)
                .collect();
            let i = match next.as_slice() {
                [] => {
                    // Nothing follows: whatever is left hangs off something else.
                    for s in &sealed {
                        chain.broken.push(format!(
                            "link {} ({}) follows {}, which is not the chain's last link",
                            s.id,
                            s.hash.as_deref().unwrap_or("-"),
                            s.prev.as_deref().unwrap_or("nothing")
                        ));
                    }
                    break;
                }
                [one] => *one,
                [first, rest @ ..] => {
                    for r in rest {
                        chain.broken.push(format!(
                            "links {} and {} both follow {}",
                            sealed[*first].id,
                            sealed[*r].id,
                            prev.as_deref().unwrap_or("nothing")
                        ));
                    }
                    *first
                }
            };
            let link = sealed.remove(i);
            prev = link.hash.clone();
            chain.links.push(link);
        }
        chain
    }

    /// Where the chain stands.
    pub fn seal(&self) -> Seal {
        let mut seal = Seal {
            tip: self.links.last().and_then(|l| l.hash.clone()),
            ..Seal::default()
        };
        for l in self.links.iter().rev() {
            match (l.kind, l.role) {
                (LinkKind::Reopen, _) => break,
                (LinkKind::SignOff, SignoffRole::LeadInspector) => {
                    seal.frozen = true;
                    break;
                }
                (LinkKind::SignOff, SignoffRole::Reviewer) => seal.reviewer_signed = true,
            }
        }
        if !seal.frozen {
            seal.reviewer_signed = false;
        }
        seal
    }

    /// The lead inspector's sign-off that stands, if one does.
    pub fn standing(&self) -> Option<&Signoff> {
        for l in self.links.iter().rev() {
            match (l.kind, l.role) {
                (LinkKind::Reopen, _) => return None,
                (LinkKind::SignOff, SignoffRole::LeadInspector) => return Some(l),
                _ => {}
            }
        }
        None
    }
}

impl Seal {
    /// No link yet.
    pub const UNSIGNED: Seal = Seal {
        tip: None,
        frozen: false,
        reviewer_signed: false,
    };

    /// Where the chain stands once `link` (already checked to follow the tip) is added.
    pub fn after(&self, link: &Signoff) -> Seal {
        let tip = Some(link_hash(link));
        match (link.kind, link.role) {
            (LinkKind::Reopen, _) => Seal {
                tip,
                frozen: false,
                reviewer_signed: false,
            },
            (LinkKind::SignOff, SignoffRole::LeadInspector) => Seal {
                tip,
                frozen: true,
                reviewer_signed: false,
            },
            (LinkKind::SignOff, SignoffRole::Reviewer) => Seal {
                tip,
                frozen: self.frozen,
                reviewer_signed: self.frozen,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn link(n: u128, role: SignoffRole, kind: LinkKind, prev: Option<String>) -> Signoff {
        Signoff {
            id: Uuid::from_u128(n),
            role,
            kind,
            statement: "s".into(),
            by: "u".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, n as u32).unwrap(),
            heads: vec!["00".repeat(32)],
            content: Some("ab".repeat(32)),
            prev,
            hash: None,
        }
    }

    #[test]
    fn links_are_ordered_by_prev_and_a_reopening_unfreezes() {
        let a = link(1, SignoffRole::LeadInspector, LinkKind::SignOff, None);
        let b = link(
            2,
            SignoffRole::Reviewer,
            LinkKind::SignOff,
            Some(link_hash(&a)),
        );
        let c = link(
            3,
            SignoffRole::Reviewer,
            LinkKind::Reopen,
            Some(link_hash(&b)),
        );
        // Given out of order: the chain still comes out a, b, c.
        let chain = Chain::from_links(vec![c.clone(), a.clone(), b.clone()]);
        assert!(chain.broken.is_empty(), "{:?}", chain.broken);
        let ids: Vec<u128> = chain.links.iter().map(|l| l.id.as_u128()).collect();
        assert_eq!(ids, [1, 2, 3]);
        let seal = chain.seal();
        assert!(!seal.frozen);
        assert_eq!(seal.tip, Some(link_hash(&c)));
        let two = Chain::from_links(vec![a.clone(), b.clone()]).seal();
        assert!(two.frozen && two.reviewer_signed);
        assert_eq!(
            Chain::from_links(vec![a.clone()]).seal(),
            Seal::default().after(&a)
        );
        assert_eq!(two, Seal::default().after(&a).after(&b));
    }

    #[test]
    fn a_fork_or_a_dangling_link_is_named() {
        let a = link(1, SignoffRole::LeadInspector, LinkKind::SignOff, None);
        let b = link(
            2,
            SignoffRole::Reviewer,
            LinkKind::SignOff,
            Some(link_hash(&a)),
        );
        let b2 = link(
            4,
            SignoffRole::Reviewer,
            LinkKind::SignOff,
            Some(link_hash(&a)),
        );
        let chain = Chain::from_links(vec![a.clone(), b, b2]);
        assert!(
            chain.broken[0].contains("both follow"),
            "{:?}",
            chain.broken
        );
        assert_eq!(chain.links.len(), 2, "the chain goes on by the first");
        let lost = link(
            5,
            SignoffRole::Reviewer,
            LinkKind::SignOff,
            Some("cd".repeat(32)),
        );
        let chain = Chain::from_links(vec![a, lost]);
        assert!(
            chain.broken[0].contains("not the chain's last link"),
            "{:?}",
            chain.broken
        );
    }

    #[test]
    fn changing_any_field_of_a_link_changes_its_hash() {
        let a = link(1, SignoffRole::LeadInspector, LinkKind::SignOff, None);
        let mut b = a.clone();
        b.statement.push('.');
        assert_ne!(link_hash(&a), link_hash(&b));
        let mut c = a.clone();
        c.hash = Some("x".into());
        assert_eq!(
            link_hash(&a),
            link_hash(&c),
            "the view-only hash is left out"
        );
    }
}
