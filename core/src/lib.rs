//! Wardcheck's domain, with no UI and no server.
//!
//! - [`checklist`]: checklist files (TOML), validated with every problem reported by
//!   file, line and field, and pinned into an inspection by id, version and SHA-256.
//! - [`inspection`]: the inspection document (one Automerge document per inspection),
//!   the only code that writes one, through typed operations and typed views.
//! - [`store`]: the encrypted local SQLite store (SQLCipher): documents, changes, sync
//!   states, blobs and the upload queue.
//! - [`response`]: the trust response document, written by the trust lead.
//! - [`photo`]: decoding under strict limits, stripping metadata, thumbnails, hashing.
//! - [`sync`]: the automerge-repo wire protocol (CBOR messages, document ids), with
//!   no transport.

pub mod checklist;
pub mod inspection;
pub mod photo;
pub mod response;
pub mod store;
pub mod sync;
