//! Shared by the API, photo and access-matrix tests: an HTTP client, sign-in, error
//! answers, photos made in memory, and the routes the server's source declares.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode, header};
use serde_json::{Value, json};
use wardcheck_tests::client::{Login, SyncClient};
use wardcheck_tests::server::{PASSWORD, Server};

pub fn client() -> Client {
    // No proxy: nothing from the environment may stand between a test and its
    // loopback server.
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// Signs `user` in with [`PASSWORD`]; returns the device token.
pub async fn token(c: &Client, s: &Server, user: &str) -> String {
    let res = c
        .post(s.url("/api/v1/login"))
        .json(&json!({ "user": user, "password": PASSWORD, "device": "test laptop" }))
        .send()
        .await
        .expect("the server answers a login");
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{user} signs in: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().expect("a token").to_owned()
}

/// The `{error: {code, message}}` of an answer, after checking its status.
pub async fn error(res: Response, status: StatusCode, what: &str) -> (String, String) {
    let got = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: status (body {body})");
    assert!(
        ct.starts_with("application/json"),
        "{what}: an error is JSON, got {ct:?}: {body}"
    );
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: JSON error body: {e}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: body is {{error: {{code, message}}}}: {body}"));
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: body is {{error: {{code, message}}}}: {body}"));
    (code.to_owned(), message.to_owned())
}

/// The JSON of a successful answer, after checking its status.
pub async fn json_ok(res: Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: status (body {body})");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: JSON body: {e}: {body}"))
}

/// A photo-like RGB image: smooth gradients and some noise from `seed`, so that each
/// seed gives different bytes (and a different id).
pub fn pixels(width: u32, height: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(2_654_435_761))
            % 23;
        image::Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            (seed as u8).wrapping_add(n as u8),
        ])
    })
}

/// A baseline JPEG as a camera-less encoder writes it.
pub fn jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(pixels(width, height, seed))
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    out
}

/// The same JPEG with an EXIF segment (APP1) after SOI carrying a GPS-like marker and a
/// camera serial, as a phone camera writes.
pub fn jpeg_with_exif(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let plain = jpeg(width, height, seed);
    let mut payload = b"Exif\0\0MM\0*\0\0\0\x08".to_vec();
    payload.extend_from_slice(b"GPS 51.5074N 0.1278W SERIAL CAM-123456 ");
    let len = (payload.len() + 2) as u16;
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn sha256(bytes: &[u8]) -> String {
    wardcheck_core::photo::sha256_hex(bytes)
}

/// Uploads `bytes` whole as `token`; returns the answer.
pub async fn put_photo(c: &Client, s: &Server, token: &str, bytes: &[u8]) -> Response {
    c.put(s.url(&format!("/api/v1/blobs/{}", sha256(bytes))))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the server answers an upload")
}

/// One route the server declares: method (upper case) and path as axum spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// Every `.route("PATH", get(..).post(..))` in the server's source, with each method.
///
/// Reading the source rather than a list kept by hand is the point: a route added
/// anywhere in `sync-server/src` shows up here, and the tests that use this fail until
/// the route is in the OpenAPI document and the access table. A `.nest(` or
/// `.route_service(` (which this reader does not follow) fails the read outright.
pub fn declared_routes() -> Vec<Route> {
    let root = wardcheck_tests::workspace_root().join("sync-server/src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut routes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [".nest(", ".nest_service(", ".route_service(", ".fallback("] {
            assert!(
                !text.contains(forbidden),
                "{}: uses {forbidden}, which the route reader in tests/tests/api_support does not follow: teach it",
                file.display()
            );
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let args = balanced(rest);
            let path = args
                .trim_start()
                .strip_prefix('"')
                .and_then(|p| p.split_once('"'))
                .map(|(p, _)| p.to_owned())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a .route( whose path is not a string literal: {args}",
                        file.display()
                    )
                });
            let handlers = &args[args.find(',').expect("route(path, handler)") + 1..];
            let methods = methods_in(handlers);
            assert!(
                !methods.is_empty(),
                "{}: route {path} with no method this reader knows: {handlers}",
                file.display()
            );
            for method in methods {
                routes.push(Route {
                    method,
                    path: path.clone(),
                });
            }
        }
    }
    routes.sort();
    routes.dedup();
    routes
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text up to the parenthesis that closes the one just opened.
fn balanced(s: &str) -> &str {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after .route(");
}

/// The HTTP methods of a method-router expression: `get(a).post(b)`, `put(x).head(y)`,
/// `any(..)` (refused), at nesting depth 0 only, so closures inside do not count.
fn methods_in(expr: &str) -> Vec<String> {
    const KNOWN: [&str; 7] = ["get", "post", "put", "head", "delete", "patch", "options"];
    let mut found = Vec::new();
    let mut depth = 0;
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b if depth == 0 && b.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &expr[start..i];
                let preceded = expr[..start].trim_end();
                let at_call = expr[i..].starts_with('(');
                let first_or_chained = preceded.is_empty() || preceded.ends_with('.');
                if at_call && first_or_chained {
                    assert!(
                        word != "any",
                        "a route with any(): list its methods instead"
                    );
                    if KNOWN.contains(&word) {
                        found.push(word.to_ascii_uppercase());
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// A stream of server-sent events (`GET /api/v1/inspections/{id}/events`), read one
/// event at a time; keep-alive comments are skipped.
pub struct Events {
    res: Response,
    buf: String,
}

impl Events {
    pub fn new(res: Response) -> Events {
        assert_eq!(res.status(), StatusCode::OK, "the event stream opens");
        let kind = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Events {
            res,
            buf: String::new(),
        }
    }

    /// Opens the stream of inspection `id` as `token`, and checks it opened.
    pub async fn open(c: &Client, s: &Server, token: &str, id: impl std::fmt::Display) -> Events {
        Events::new(
            c.get(s.url(&format!("/api/v1/inspections/{id}/events")))
                .bearer_auth(token)
                .send()
                .await
                .expect("the server answers"),
        )
    }

    /// The next event's name and data, or `None` if the stream ended or `limit` passed
    /// first (a bound on a failure, not a measure of speed).
    pub async fn next(&mut self, limit: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(name) = name {
                    let data = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("event {name}'s data is JSON: {data:?}: {e}"));
                    return Some((name, data));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The parts an event names.
    pub fn parts(data: &Value) -> Vec<String> {
        data["parts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Adds a finding (on the checklist's first item) to inspection `id` as `user`, through
/// sync from `login`'s device; returns its id.
pub async fn finding_by_sync(s: &Server, login: &Login, user: &str, id: uuid::Uuid) -> uuid::Uuid {
    use wardcheck_core::checklist::Severity;
    use wardcheck_core::inspection::{Inspection, NewFinding, Stamp};
    let mut client = SyncClient::connect(&s.ws_url(), Some(&login.token))
        .await
        .unwrap();
    let doc = client.fetch(id).await.unwrap();
    let cl = std::sync::Arc::new(wardcheck_tests::crash_checklist());
    let item = wardcheck_tests::crash_items(&cl)[0].clone();
    let mut insp = Inspection::from_doc(doc.with_actor(login.actor.clone()), cl).unwrap();
    let finding = uuid::Uuid::new_v4();
    insp.add_finding(
        NewFinding {
            id: finding,
            severity: Severity::High,
            text: "Windows 7 on the imaging workstations.".into(),
            items: vec![item],
            recommendation: "Replace or isolate them.".into(),
        },
        &Stamp::new(user, chrono::Utc::now()),
    )
    .unwrap();
    client.sync(id, &mut insp).await.unwrap();
    client.close().await;
    finding
}

/// A real server on a fresh copy of the demo data (`demo-data`), and a client.
pub struct Demo {
    pub s: Server,
    pub c: Client,
    _scratch: tempfile::TempDir,
}

impl Demo {
    /// Loads the demo data into a scratch folder and starts the server on it (SQLite, or
    /// PostgreSQL under `WARDCHECK_TEST_BACKEND=postgres`).
    pub async fn start() -> Demo {
        let scratch = tempfile::tempdir().unwrap();
        let data = scratch.path().join("data");
        let (ok, out, err) = wardcheck_tests::server::cli(&data, &["demo-data"], "");
        assert!(ok, "demo-data: {out}\n{err}");
        Demo {
            s: Server::start_on(&data, "127.0.0.1:0"),
            c: client(),
            _scratch: scratch,
        }
    }

    /// Signs a demo user in; returns the device token.
    pub async fn token(&self, user: &str) -> String {
        let res = self
            .c
            .post(self.s.url("/api/v1/login"))
            .json(&json!({
                "user": user,
                "password": wardcheck_server::demo::DEMO_PASSWORD,
                "device": "test",
            }))
            .send()
            .await
            .unwrap();
        json_ok(res, StatusCode::OK, user).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.c
            .get(self.s.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, token: &str, path: &str) -> Response {
        self.c
            .post(self.s.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}
