//! The signed record on the server ([`wardcheck_core::seal`]): each link of an
//! inspection's sign-off chain is recorded in the audit log's chain when the server takes
//! it, and [`verify`] (`wardcheck-server inspection verify ID`) recomputes the chain from
//! storage and names every link that no longer matches:
//!
//! - the stored rows of the document: each that no longer loads is named;
//! - the links: one chain, each following the one before;
//! - each link's heads are in the document, and the signed content at those heads hashes
//!   to the link's content hash;
//! - the standing lead inspector's sign-off still matches the content now (frozen);
//! - the audit log holds each link (by hash), and every link it holds is in the
//!   document: rewriting the document's history means rewriting the audit chain too.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ChangeHash, ReadDoc};
use serde::Serialize;
use uuid::Uuid;
use wardcheck_core::inspection::{LinkKind, Signoff, SignoffRole};
use wardcheck_core::seal::Chain;

use crate::inspections;
use crate::storage::Storage;

/// The audit log's actions for the links of the chain.
pub const LINK_ACTIONS: [&str; 2] = ["signed_off", "reopened"];

/// What the audit log's detail says of a link: its hash first (what [`verify`] reads).
pub(crate) fn audit_detail(
    link: &Signoff,
    hash: &str,
    change: Option<&ChangeHash>,
    role: SignoffRole,
) -> String {
    format!(
        "link {hash} change {} role {} content {} prev {}",
        change.map_or_else(|| "-".to_owned(), ToString::to_string),
        match role {
            SignoffRole::LeadInspector => "lead_inspector",
            SignoffRole::Reviewer => "reviewer",
        },
        link.content.as_deref().unwrap_or("-"),
        link.prev.as_deref().unwrap_or("-"),
    )
}

/// The sign-off chain of an inspection document, read without its checklist. Values
/// that do not parse are left out (a document the server took holds none).
pub fn chain_of(doc: &AutoCommit) -> Chain {
    let mut links = Vec::new();
    if let Ok(Some((automerge::Value::Object(_), obj))) = doc.get(automerge::ROOT, "signoffs") {
        for k in doc.keys(&obj) {
            if let Ok(Some((automerge::Value::Scalar(v), _))) = doc.get(&obj, k.as_str())
                && let automerge::ScalarValue::Str(s) = v.as_ref()
                && let Ok(l) = serde_json::from_str(s)
            {
                links.push(l);
            }
        }
    }
    Chain::from_links(links)
}

/// One link, as [`verify`] found it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedLink {
    pub link: Signoff,
    /// Why it no longer matches; empty if it does.
    pub problems: Vec<String>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub inspection: Uuid,
    /// The links, in chain order.
    pub links: Vec<CheckedLink>,
    /// Sign-offs from before sign-offs were sealed: listed, not verifiable.
    pub unsealed: Vec<Signoff>,
    /// What is wrong outside any one link (rows that do not load, a broken chain, links
    /// the audit log holds that the document does not).
    pub problems: Vec<String>,
    /// The last link's hash: keep it elsewhere to tell later that no link was taken off.
    pub tip: Option<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.links.iter().all(|l| l.problems.is_empty())
    }
}

/// Names a link for a person: its place, what it is, who and when.
pub fn describe(n: usize, l: &Signoff) -> String {
    let what = match (l.kind, l.role) {
        (LinkKind::Reopen, _) => "reopened by reviewer",
        (LinkKind::SignOff, SignoffRole::LeadInspector) => "signed off by lead inspector",
        (LinkKind::SignOff, SignoffRole::Reviewer) => "signed off by reviewer",
    };
    format!(
        "link {n} ({what} {} at {})",
        l.by,
        l.at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// Recomputes the inspection's sign-off chain from storage ([`self`]).
pub fn verify(storage: &dyn Storage, id: Uuid) -> anyhow::Result<Verdict> {
    let rec = storage
        .inspection(id)?
        .ok_or_else(|| anyhow::anyhow!("no inspection {id}"))?;
    let checklist = inspections::pinned_checklist(storage, &rec)?;
    let stored = storage
        .load_doc(id)?
        .ok_or_else(|| anyhow::anyhow!("inspection {id} has no stored document"))?;
    let mut problems = Vec::new();
    // Every stored row, each on its own: one that no longer loads is named, and the rest
    // are read without it.
    let mut doc = match AutoCommit::load(&stored.snapshot) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("the document's snapshot does not load: {e}"));
            AutoCommit::new()
        }
    };
    for (bytes, seq) in stored.changes.iter().zip(&stored.change_seqs) {
        let mut trial = doc.clone();
        match trial.load_incremental(bytes) {
            Ok(_) => doc = trial,
            Err(e) => problems.push(format!("change row {seq} does not load: {e}")),
        }
    }
    // Rows removed whole: changes left waiting for what they depend on, or heads short of
    // those the server recorded with its last write.
    let missing = doc.get_missing_deps(&[]);
    if !missing.is_empty() {
        problems.push(format!(
            "the stored changes depend on {} change(s) no row holds (first {}): rows were removed",
            missing.len(),
            missing[0]
        ));
    }
    if let Ok(recorded) = wardcheck_core::store::decode_heads(&stored.heads) {
        let mut recorded: Vec<String> = recorded.iter().map(ToString::to_string).collect();
        let mut held: Vec<String> = doc.get_heads().iter().map(ToString::to_string).collect();
        recorded.sort();
        held.sort();
        if recorded != held {
            problems.push(format!(
                "the stored rows reach heads {held:?}, not the {recorded:?} the server recorded with its last write"
            ));
        }
    }
    // The audit log's own chain: its record of the links is worth only as much.
    let audit = storage.audit_verify()?;
    if let Some((seq, why)) = audit.broken {
        problems.push(format!("the audit log's chain breaks at row {seq}: {why}"));
    }
    let chain = chain_of(&doc);
    problems.extend(chain.broken.iter().cloned());

    // The audit log's record of the links.
    // link hash -> (row, action, the change that held it, when the sync path recorded it)
    let audited: BTreeMap<String, (i64, String, Option<ChangeHash>)> = storage
        .audit_about(&format!("inspection:{id}"), &LINK_ACTIONS)?
        .into_iter()
        .filter_map(|(seq, e)| {
            let d = e.detail?;
            let mut words = d.split(' ');
            let hash = (words.next()? == "link").then(|| words.next())??.to_owned();
            let change = (words.next() == Some("change"))
                .then(|| words.next().and_then(|c| c.parse().ok()))
                .flatten();
            Some((hash, (seq, e.action, change)))
        })
        .collect();

    let content_at = |doc: &mut AutoCommit, heads: &[ChangeHash]| {
        wardcheck_core::seal::content_at(doc, heads, checklist.clone()).map_err(|e| e.to_string())
    };
    let standing = chain.standing().and_then(|l| l.hash.clone());
    let mut links = Vec::new();
    for l in &chain.links {
        let mut why = Vec::new();
        let hash = l.hash.clone().unwrap_or_default();
        let heads: Result<Vec<ChangeHash>, _> = l.heads.iter().map(|h| h.parse()).collect();
        match heads {
            Err(_) => why.push("its heads are not change hashes".to_owned()),
            Ok(heads) if heads.iter().any(|h| doc.get_change_by_hash(h).is_none()) => why.push(
                "the history it signed is not in the document: changes before it were removed or rewritten"
                    .to_owned(),
            ),
            Ok(heads) => match content_at(&mut doc, &heads) {
                Ok(c) if Some(&c) == l.content.as_ref() => {}
                Ok(c) => why.push(format!(
                    "it signs content {}, but the document at its heads hashes to {c}",
                    l.content.as_deref().unwrap_or("-")
                )),
                Err(e) => why.push(format!("the document at its heads does not read: {e}")),
            },
        }
        if standing.as_deref() == Some(hash.as_str()) {
            let heads = doc.get_heads();
            match content_at(&mut doc, &heads) {
                Ok(c) if Some(&c) == l.content.as_ref() => {}
                Ok(c) => why.push(format!(
                    "what it signed changed after it (the content now hashes to {c})"
                )),
                Err(e) => why.push(format!("the document now does not read: {e}")),
            }
        }
        match audited.get(&hash) {
            None => why.push("the audit log has no record of it".to_owned()),
            // The change the audit log says held it: in the document, made on its heads.
            Some((seq, _, Some(change))) => match doc.get_change_by_hash(change) {
                None => why.push(format!(
                    "the change audit row {seq} says held it, {change}, is not in the document"
                )),
                Some(c) => {
                    let mut deps: Vec<String> = c.deps().iter().map(ToString::to_string).collect();
                    deps.sort();
                    if deps != l.heads {
                        why.push(format!(
                            "the change audit row {seq} says held it was not made on its heads"
                        ));
                    }
                }
            },
            Some((_, _, None)) => {}
        }
        links.push(CheckedLink {
            link: l.clone(),
            problems: why,
        });
    }
    for (hash, (seq, action, _)) in &audited {
        if !chain.links.iter().any(|l| l.hash.as_deref() == Some(hash)) {
            problems.push(format!(
                "audit row {seq} records a link ({action}) {hash} that the document no longer holds"
            ));
        }
    }
    Ok(Verdict {
        inspection: id,
        tip: chain.links.last().and_then(|l| l.hash.clone()),
        links,
        unsealed: chain.unsealed,
        problems,
    })
}

/// Records the links of a document the server made itself (demo data, imports) in the
/// audit log, as the sync path does for the links it takes.
pub fn audit_links(storage: &dyn Storage, id: Uuid, doc: &AutoCommit) -> anyhow::Result<()> {
    let chain = chain_of(doc);
    for l in &chain.links {
        let hash = l.hash.clone().unwrap_or_default();
        let event = crate::storage::AuditEvent {
            at: l.at,
            actor: l.by.clone(),
            device: None,
            action: match l.kind {
                LinkKind::SignOff => "signed_off",
                LinkKind::Reopen => "reopened",
            }
            .into(),
            target: format!("inspection:{id}"),
            from: "-".into(),
            outcome: "ok".into(),
            detail: Some(audit_detail(l, &hash, None, l.role)),
        };
        storage.audit(&event)?;
    }
    Ok(())
}
