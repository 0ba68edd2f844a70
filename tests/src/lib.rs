//! Shared support for the end-to-end tests: fixtures that both the test binaries
//! and the helper processes they start must agree on.

use wardcheck_core::checklist::{Checklist, Scope, bundled};
use wardcheck_core::store::StoreKey;

/// The store key the crash test and its writer process share (test data only).
pub fn store_key() -> StoreKey {
    StoreKey::from_bytes([0x5a; 32])
}

/// The checklist inspectors take on site: the shipped CQC template.
pub fn crash_checklist() -> Checklist {
    bundled()
        .into_iter()
        .find(|c| c.id == "cqc-onsite-cyber")
        .expect("the CQC on-site template is bundled")
}

/// The inspection-scope items the writer edits notes on, in a fixed order.
pub fn crash_items(checklist: &Checklist) -> Vec<String> {
    checklist
        .items()
        .filter(|(s, _)| s.scope == Scope::Inspection)
        .map(|(_, i)| i.id.clone())
        .take(40)
        .collect()
}
