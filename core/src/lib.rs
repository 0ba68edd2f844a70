//! Wardcheck's domain, with no UI and no server.
//!
//! - [`checklist`]: checklist files (TOML), validated with every problem reported by
//!   file, line and field, and pinned into an inspection by id, version and SHA-256.
//! - [`inspection`]: the inspection document (one Automerge document per inspection),
//!   the only code that writes one, through typed operations and typed views.
//! - [`store`]: the encrypted local SQLite store (SQLCipher): documents, changes, sync
//!   states, blobs and the upload queue.
//! - [`response`]: the trust response document, written by the trust lead.
//! - [`review`]: the review document: comments between inspectors and reviewers, and
//!   which of them are released to the trust.
//! - [`policy`]: the write policy: who may change which part of each document, when;
//!   the typed operations obey it and [`policy::check_change`] holds any change to it.
//! - [`seal`]: the signed record: sign-offs that pin the content they sign, in a chain.
//! - [`history`]: every value a field of an item, finding or device has held.
//! - [`chunks`]: reading a peer's change chunks under byte and operation limits.
//! - [`judge`]: how a telemetry check judges an answer (devices, tolerance, window, coverage).
//! - [`photo`]: decoding under strict limits, stripping metadata, thumbnails, hashing.
//! - [`actions`]: corrective actions: raised from a finding or a failed item, planned by
//!   the trust, accepted, reported on and closed, each step by its roles only.
//! - [`sync`]: the automerge-repo wire protocol (CBOR messages, document ids), with
//!   no transport.

pub mod actions;
pub mod checklist;
pub mod chunks;
pub mod history;
pub mod inspection;
pub mod judge;
pub mod photo;
pub mod policy;
pub mod response;
pub mod review;
pub mod seal;
pub mod store;
pub mod sync;
