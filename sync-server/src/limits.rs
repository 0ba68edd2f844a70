//! Limits and tunables, in one place, each with why it has its value.

use std::time::Duration;

/// Largest JSON request body. Inspection operations and logins are a few KB; 1 MiB
/// leaves room for long notes while refusing anything absurd early.
pub const MAX_JSON_BODY: usize = 1024 * 1024;
/// Largest photo upload (whole file), matching the app's photo limit: a 12 MP JPEG
/// is 3-8 MB; 40 MiB admits the largest camera files without inviting abuse.
pub const MAX_PHOTO_BYTES: u64 = 40 * 1024 * 1024;
/// Largest body of one PUT of a photo chunk.
pub const MAX_PHOTO_CHUNK: usize = 8 * 1024 * 1024;
/// Largest WebSocket message (one automerge-repo message). A first sync of a large
/// inspection carries the whole document: inspections are well under 8 MiB.
pub const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest WebSocket frame.
pub const MAX_WS_FRAME: usize = 4 * 1024 * 1024;
/// Largest document the server keeps (bytes of its saved form); a sync that would
/// grow a document past this is refused.
pub const MAX_DOC_BYTES: usize = 32 * 1024 * 1024;
/// Page size for listings when none is asked for, and the most a page may hold.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// Failed logins allowed per user name, and per address, in LOGIN_WINDOW, before
/// answering 429. Per-user stops guessing one password; per-address stops spraying.
pub const LOGIN_FAILURES_PER_USER: usize = 5;
pub const LOGIN_FAILURES_PER_ADDR: usize = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest user name, device name and password accepted.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password `user add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// A document no connection has touched for this long leaves memory.
pub const DOC_IDLE: Duration = Duration::from_secs(60);
/// Incremental change rows a server document gathers before compaction.
pub const COMPACT_AFTER: i64 = 200;
/// Longest an HTTP request may take, body included: an 8 MiB photo chunk over a poor
/// hospital Wi-Fi link (100 KB/s) takes under 90 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
