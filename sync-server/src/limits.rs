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
/// The smallest chunk of a photo a request may carry, but the last: each chunk is a row
/// and a commit, so a 40 MiB photo is then at most 10,240 of them, not 40 million (the
/// field app sends 256 KiB).
pub const MIN_PHOTO_CHUNK: u64 = 4 * 1024;
/// Photo uploads one user may have in progress at once (each holds its bytes until it
/// completes or is dropped after `PARTIAL_UPLOAD_TTL`).
pub const MAX_PARTIAL_UPLOADS_PER_USER: i64 = 64;
/// Largest WebSocket message (one automerge-repo message). A first sync of a large
/// inspection carries the whole document: inspections are well under 8 MiB.
pub const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest WebSocket frame. Browsers, the JS `ws` library and tungstenite send each
/// message as one frame, so this is the message limit too.
pub const MAX_WS_FRAME: usize = MAX_WS_MESSAGE;
/// Largest document the server keeps (bytes of its saved form); a sync that would
/// grow a document past this is refused.
pub const MAX_DOC_BYTES: usize = 32 * 1024 * 1024;
/// Page size for listings when none is asked for, and the most a page may hold.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// Sign-in throttling ([`crate::logins`]), each in LOGIN_WINDOW. An address's failures
/// at one user name: the first LOGIN_FREE_FAILURES are free, then each next attempt
/// waits 1 s, 2 s, ..., and at LOGIN_FAILURES_PER_PAIR the pair is locked. An address's
/// failures at any names: locked at LOGIN_FAILURES_PER_ADDR (spraying). A user's
/// failures from every address: at LOGIN_FAILURES_PER_USER attempts from addresses the
/// user has not signed in from within LOGIN_KNOWN_FOR are held back (guessing spread
/// over many addresses); their known addresses still sign in.
pub const LOGIN_FREE_FAILURES: usize = 3;
pub const LOGIN_FAILURES_PER_PAIR: usize = 5;
pub const LOGIN_FAILURES_PER_ADDR: usize = 20;
pub const LOGIN_FAILURES_PER_USER: usize = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOGIN_KNOWN_FOR: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// A device token not used for this long has expired: the device must sign in again
/// (its unsent changes stay on it and go once it has). Every use renews it; a sync
/// connection renews it while it stays open.
pub const TOKEN_IDLE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
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
/// Most documents one connection may follow at once. An inspector carries about 50
/// (RELIABILITY §2); a reviewer's dashboard may open a few hundred.
pub const MAX_DOCS_PER_CONNECTION: usize = 1000;
/// How often the server pings a connection. A peer that has gone without a word
/// (WebSocket clients answer pings by themselves) for `SILENT_KEEPALIVES` of these
/// is gone: a half-open TCP connection would otherwise hold its documents in memory
/// for ever. automerge-repo's own server pings every 5 seconds.
pub const KEEPALIVE: Duration = Duration::from_secs(20);
pub const SILENT_KEEPALIVES: u32 = 3;
/// Bytes the changes of one sync message may inflate to, all chunks together (counted
/// while inflating, so nothing past it is ever held; `wardcheck_core::chunks`). A first
/// sync of the largest document the server keeps ([`MAX_DOC_BYTES`]) fits; one compressed
/// change that inflates to zeros, the attack this stops, does not.
pub const MAX_INFLATED_CHANGES: usize = 2 * MAX_DOC_BYTES;
/// Operations the changes of one sync message may hold, counted from their columns'
/// run headers before anything expands them. A 300-item inspection with 5,000 changes
/// holds about 60,000 (notes are one operation per character); half a million leaves
/// room for a long offline day on a large inspection, while a run of a billion (a few
/// bytes on the wire) is refused. Automerge holds tens of bytes per operation: measured
/// in BENCHMARKS.md ("the largest message").
pub const MAX_OPS_PER_MESSAGE: u64 = 500_000;
/// Bytes (once inflated) of a peer's changes that may wait, per connection, for changes
/// they depend on that the peer left out (the sync protocol asks for them, and an honest
/// peer sends them in its next message). Waiting changes are parsed again with each of
/// the connection's messages, so they are held to a message's worth of work, and counted
/// inflated: an offline week of one inspector is about a megabyte. Past this nothing
/// waits and the connection is closed, as a writer could otherwise hold the server's
/// memory and time with changes that depend on nothing it will ever send.
pub const MAX_PENDING_INFLATED: usize = 16 * 1024 * 1024;
/// Writers' large messages inflated, checked and applied at once, server-wide. Each
/// may hold up to [`MAX_INFLATED_CHANGES`] inflated, and Automerge holds copies of what
/// it applies (about 160 MiB at peak for a message at the limit, BENCHMARKS.md "The
/// largest message"): two at once keep both cores busy, and a crowd of such messages
/// waits its turn rather than adding up past the machine's memory. A user has one turn
/// at a time, whatever their connections, so one account never holds both.
pub const MAX_INFLATING: usize = 2;
/// A writer's message (with what waits on its connection) at most this large once
/// inflated lets go of the server-wide turn as soon as its size is known: an edit is a
/// few hundred bytes, an offline day a few hundred kilobytes.
pub const SMALL_MESSAGE: usize = 1024 * 1024;
/// Changes one sync message may hold: an offline week of one inspector is a few thousand.
pub const MAX_CHANGES_PER_MESSAGE: u64 = 50_000;
/// Sync connections one user may hold open at once: a field device holds one, a
/// reviewer's dashboard tabs a few each; past this the upgrade is refused with 429, so
/// one account cannot hold the server's memory with idle connections.
pub const MAX_CONNECTIONS_PER_USER: usize = 16;
/// Automerge actors one device may bind. The field app binds one; a JavaScript client
/// may make a new one each session. Past this the device must sign in afresh, so the
/// table of bindings cannot be grown without end by one token.
pub const MAX_ACTORS_PER_DEVICE: usize = 256;

/// How often an open sync connection checks that its device is still signed in (not
/// revoked, user not disabled), at the most: on every keepalive, and before taking a
/// peer's message when the last check is older than this. A revocation from the CLI or
/// a sign-out therefore ends the device's open connections within this long of its next
/// message, or one keepalive.
pub const DEVICE_RECHECK: Duration = Duration::from_secs(5);
/// How long a closing connection waits for the peer's close frame.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

// Telemetry feeds (`crate::telemetry`).

/// Largest telemetry file accepted over HTTP. A national endpoint export of 2.5 million
/// rows is about 500 MB as CSV (a little more as JSON Lines); 1 GiB leaves room for
/// growth and still refuses anything absurd before it fills the disk.
pub const MAX_TELEMETRY_BODY: u64 = 1024 * 1024 * 1024;
/// Longest a telemetry upload may take, body and import included (in place of
/// `REQUEST_TIMEOUT`): 1 GiB at 1 MB/s takes 17 minutes, and the import under a minute.
pub const TELEMETRY_REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest field in a telemetry row. The longest real value is an FQDN (at most 253
/// bytes) or a firmware string; 4 KiB is generous and bounds what one bad row can cost.
pub const MAX_TELEMETRY_FIELD: usize = 4 * 1024;
/// Largest telemetry record (a CSV record, quoted line breaks included, or a JSON line).
/// Past this, reading stops holding the record, so a 10 MB field never reaches memory.
pub const MAX_TELEMETRY_RECORD: usize = 128 * 1024;
/// Bad rows an import lists (all are counted): enough to see the pattern and fix a file
/// in one pass, without a 2.5-million-line answer.
pub const MAX_REPORTED_BAD_ROWS: usize = 100;
/// How long an import waits for another import (in this process or another, such as the
/// CLI beside the server) to finish, before giving up with "busy".
pub const TELEMETRY_IMPORT_WAIT: Duration = Duration::from_secs(10 * 60);
/// SQLite page cache of the import's connection, in KiB. Rows are appended to a table
/// with no index and the indexes are built once at the end, so a large cache buys
/// nothing: measured at 2.5 million rows, 256 MiB was no faster than 64 MiB and added
/// 200 MiB to the peak.
pub const TELEMETRY_IMPORT_CACHE_KIB: i64 = 64 * 1024;
/// After an import, `telemetry.db`'s write-ahead log is cut back to this size once
/// checkpointed, rather than keeping the size of the largest import on disk.
pub const TELEMETRY_WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;
/// Most OS platform and build groups the trust's telemetry summary lists one by one
/// (the rest are summed): a trust runs a dozen or two builds, and a chart of more bars
/// than this is not read.
pub const TELEMETRY_SUMMARY_OS_GROUPS: usize = 12;

/// An incomplete photo upload that has received nothing for this long is dropped: a
/// client resumes within hours of a network coming back, and a week covers a long
/// inspection visit with no signal. Its bytes would otherwise stay for ever.
pub const PARTIAL_UPLOAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the server looks for such uploads (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often devices' last-seen times and the counts of refused tokens are written
/// (`activity.rs`): each request costs no write of its own.
pub const ACTIVITY_FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How long a stopping server (SIGTERM) lets open requests finish before it cuts them
/// off and exits: well inside systemd's default `TimeoutStopSec` (90 s). Sync
/// connections and event streams are closed at once, between messages.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// Most peers' sync states held in memory between two flushes (each is a few hundred
/// bytes at most: the heads both sides share). Past it, a new peer's state is not kept,
/// which costs it only a longer sync the next time it connects.
pub const MAX_HELD_SYNC_STATES: usize = 100_000;
/// Sync states written in one transaction by a flush.
pub const SYNC_STATES_PER_WRITE: usize = 2_000;

/// Refused tokens one address may present in a minute and be answered at once. Past
/// this, each refusal is answered after [`REFUSAL_DELAY`]: a field device with a revoked
/// token is refused once and signs in again; only a flood waits.
pub const FREE_REFUSALS_PER_MINUTE: u64 = 30;
/// How long the answer to a refused token waits past the free ones.
pub const REFUSAL_DELAY: Duration = Duration::from_secs(1);
/// Answers to refused tokens held back at once (each holds a connection open); past
/// this they are answered at once, so a flood from many addresses cannot make the
/// server hold connections without bound.
pub const MAX_HELD_REFUSALS: usize = 4096;

/// A sync connection pushes what others changed at once, then waits this long for each
/// other connection following the same document, past the first, before it pushes
/// again (what changed meanwhile goes in that one push): the work a change costs grows
/// with the followers, and this keeps a busy shared inspection from spending it on
/// every keystroke. Two people on one inspection hear each other at once.
pub const PUSH_GAP_PER_FOLLOWER: Duration = Duration::from_millis(2);
/// The longest wait between two pushes (the JavaScript server waits 100 ms always).
pub const MAX_PUSH_GAP: Duration = Duration::from_millis(100);

/// Event streams one user may hold open at once (dashboard tabs), counted apart from
/// sync connections; past this the request is refused with 429.
pub const MAX_EVENT_STREAMS_PER_USER: usize = 8;
/// An event stream ends (`closed`, `expired`) after this long, and the page subscribes
/// again: no stream holds its place for ever.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An event stream (`/api/v1/inspections/{id}/events`) tells changes that come closer
/// together than this in one event: a burst of edits costs an open page one read.
pub const EVENTS_MIN_GAP: Duration = Duration::from_millis(250);
/// A quiet event stream checks the caller's sign-in and rights again this often (and
/// before every event), and ends when they are gone.
pub const EVENTS_RECHECK: Duration = Duration::from_secs(30);
/// A comment line on a quiet event stream this often, so that proxies and browsers keep
/// it open, and a page that went away is noticed.
pub const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Addresses (and kinds of refusal) told apart in a minute; refusals past that are
/// counted together (`activity.rs`). Bounds the memory a flood from many addresses
/// takes, and the count rows written at the end of its minute, to about this many.
pub const MAX_TALLIED_ADDRESSES: usize = 10_000;
/// Refusals audited at once in a minute, in all (`activity.rs`): past this, the first
/// of a kind from a new address is counted too, so a flood from rotating addresses
/// cannot make a write a request.
pub const MAX_IMMEDIATE_REFUSAL_AUDITS: usize = 120;

/// Snapshots of each feed the national page draws each trust's trend over (about a
/// quarter of weekly snapshots: 209 trusts' points stay a few hundred KB).
pub const NATIONAL_TREND_POINTS: usize = 12;
/// Snapshots of each feed the trust page draws its trend over (about a year of weekly
/// snapshots).
pub const TRUST_TREND_POINTS: usize = 60;
/// Most inspections whose verdict counts the server keeps in memory for the national page
/// (one per trust's latest inspection is what it reads; beyond this the memory is cleared).
pub const VERDICT_MEMO_MAX: usize = 10_000;
/// Longest region filter of the national page, in characters.
pub const NATIONAL_FILTER_MAX_CHARS: usize = 100;
/// Longest search, in characters.
pub const SEARCH_MAX_CHARS: usize = 100;
/// Most inspections one search reads (the newest the caller may see): each is a document
/// view built as the inspection page builds it.
pub const SEARCH_INSPECTIONS: usize = 300;
/// Searches the server runs at once (each reads documents and matches text on the
/// blocking pool); another waits up to [`SEARCH_WAIT`], then gets 429.
pub const SEARCHES_AT_ONCE: usize = 2;
pub const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long one search reads documents; what is left unread sets `truncated`.
pub const SEARCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// Most corrective actions one search reads (the newest raised).
pub const SEARCH_ACTIONS: usize = 1000;
/// Most hits one search returns.
pub const SEARCH_HITS: usize = 50;
/// Characters of text shown around a hit.
pub const SEARCH_SNIPPET_CHARS: usize = 160;

/// Reports and evidence packs the server makes at once (each reads every photo of an
/// inspection and renders on the blocking pool); another waits up to [`EXPORT_WAIT`],
/// then gets 429.
pub const EXPORTS_AT_ONCE: usize = 2;
pub const EXPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Most bytes of stored photos and evidence one report or pack reads (a pack is built
/// in memory). 300 photos of the app's usual 0.5-1 MB fit; past it the pack is refused
/// with 413 `pack_too_large` before anything is read.
pub const MAX_EXPORT_BYTES: u64 = 512 * 1024 * 1024;
/// Most inspections in a trust's evidence pack (the newest the caller may read).
pub const TRUST_PACK_INSPECTIONS: usize = 20;
/// Most reports listed for one inspection (newest first).
pub const REPORTS_LISTED: usize = 100;

/// How long a one-time code for setting a password is good for (issue 14, item 4).
pub const PASSWORD_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(72);
/// Most audit events on one page of the admin's audit log.
pub const AUDIT_PAGE: usize = 200;
/// Most audit events in one CSV export of the audit log.
pub const AUDIT_EXPORT_ROWS: usize = 100_000;
/// Most of a trust's inspections an audit search by trust looks for.
pub const AUDIT_TRUST_INSPECTIONS: usize = 200;
