//! Limits and tunables of the field app's service layer, in one place, each with why it
//! has its value.

use std::time::Duration;

/// Largest photo the app accepts, in bytes (25 MiB, the UI's `MAX_PHOTO_BYTES` too). A
/// 12-megapixel camera JPEG is 3-8 MB and the largest phone and tablet cameras in use
/// write under 20 MB; past this it is more likely a wrong file than a photo, and holding
/// it (and its decode) costs memory on a tablet. The server accepts up to 40 MiB, so
/// anything the app takes it takes too.
pub const MAX_PHOTO_BYTES: usize = 25 * 1024 * 1024;

/// Bytes of a photo sent per upload request. Small enough that a chunk over a poor
/// hospital Wi-Fi link (100 KB/s) finishes in a few seconds, so little is re-sent after
/// a lost connection; large enough that a 5 MB photo takes 20 requests, not hundreds.
pub const UPLOAD_CHUNK: usize = 256 * 1024;
/// How often to ask again for a photo another device has not finished uploading (the
/// document with its reference usually arrives before the photo's last chunk). One
/// small request per such photo.
pub const PHOTO_FETCH_RETRY: Duration = Duration::from_secs(15);

/// First wait after the server could not be reached; it doubles on each failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest wait between attempts to reach the server: a network that comes back is
/// noticed within half a minute, while an absent one costs one attempt per 30 s.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Connecting (TCP and, for HTTPS/WSS, TLS) to the server: a reachable server answers
/// in well under a second; a black-holed network should count as offline quickly.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Any one HTTP request, body included: a 256 KiB chunk at 100 KB/s takes about 3 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence on the sync connection before it is taken for dead. The server
/// pings every 20 s (its `KEEPALIVE`), so three missed pings mean it is gone.
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(70);
/// How often the worker asks the server for the list of this user's inspections while
/// connected, to pick up newly assigned ones (sync_now asks at once).
pub const LIST_REFRESH: Duration = Duration::from_secs(120);

/// Longest server address accepted at sign-in.
pub const MAX_SERVER_URL_CHARS: usize = 2048;
/// Longest user name and device name the server accepts (its `MAX_NAME_CHARS`).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest password the server accepts (its `MAX_PASSWORD_BYTES`).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Largest JSON answer read from the server (an inspections page is a few tens of KB).
pub const MAX_JSON_ANSWER: usize = 8 * 1024 * 1024;
/// Pages of the inspections list read at most (200 per page): an inspector has about
/// 50 inspections; this only stops a server that never ends its pages.
pub const MAX_LIST_PAGES: usize = 50;
/// The most checklists a server's list may name (each fetched only when missing).
pub const MAX_HELD_CHECKLISTS: usize = 500;
/// Largest sign-in answer read (a token, a few names: well under 1 KiB).
pub const MAX_LOGIN_ANSWER: usize = 64 * 1024;
/// Largest error body read from the server (its `{"error": {...}}` is a few hundred
/// bytes); the rest of a longer one is not read.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest device token accepted from the server (it sends 64 hex characters).
pub const MAX_TOKEN_BYTES: usize = 512;
/// Longest display name accepted from the server (it allows 100 characters; this
/// leaves room without letting a wrong server fill the header with a novel).
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Most inspection ids accepted from the server's list: 50 pages of 200. An inspector
/// has about 50; a server listing more is not one to trust with the worker's memory.
pub const MAX_LISTED_INSPECTIONS: usize = MAX_LIST_PAGES * 200;
/// Longest wait for one WebSocket send (or close) to go out: a 16 MiB sync message at
/// 1 MB/s takes 16 s. Past it the connection is taken for dead.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the `leave` message and close on a sign-in or sign-out: only a
/// courtesy to the server, so it never holds up the switch.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most open actions kept for one trust (carried over to a visit): far more than a trust
/// is ever given; past it, the server's answer is refused as not a Wardcheck server's.
pub const MAX_CARRIED_ACTIONS: usize = 1000;
