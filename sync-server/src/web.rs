//! How the server faces the web (issue 15, items 5 and 6): where a request comes from,
//! whether a browser's request comes from the server's own pages, and the access log.
//!
//! [`front`] runs before every route:
//!
//! - **The client's address.** A request's address is its peer's, unless the peer is a
//!   trusted proxy (`--trusted-proxy`): then it is the rightmost address of
//!   `X-Forwarded-For` that is not itself a trusted proxy (the one the outermost trusted
//!   proxy saw; what a client writes to the left of it is its own claim and is ignored).
//!   Sign-in limits and the audit log use it ([`ClientAddr`], [`crate::auth::remote`]).
//! - **Origin** (cross-site request forgery, cross-site WebSocket hijacking). A write
//!   (any method but GET, HEAD and OPTIONS) or a WebSocket upgrade that carries an
//!   `Origin` other than the server's own is refused (403 `bad_origin`), and so is one
//!   signed in by the browser's cookie that carries none. The server's own origin is
//!   `--public-url`'s, or, without it, the request's `Host` (either scheme). Apps and
//!   scripts that send their token in `Authorization` and no `Origin` are not browsers
//!   and pass. Refusals are audited (`origin_refused`), counted past the first per
//!   address and minute as other refusals are.
//! - **HTTPS.** With an `https://` public address the cookie is `__Host-wardcheck_token`
//!   with `Secure` (a sibling host cannot set or read it), and every answer carries
//!   `Strict-Transport-Security`.
//! - **The access log**: one line per request at `info` on the target
//!   `wardcheck_server::access`: method, path (never the query, which may hold a
//!   WebSocket's token), status, milliseconds, client address. `RUST_LOG` turns it off
//!   (`wardcheck_server::access=off`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::AppError;
use crate::storage::AuditEvent;

/// The browser cookie's name over plain HTTP (tests, a laptop).
pub const PLAIN_COOKIE: &str = "wardcheck_token";
/// Its name over HTTPS: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain` (RFC 6265bis §4.1.3.2).
pub const HOST_COOKIE: &str = "__Host-wardcheck_token";

/// HSTS: a year, the least the browsers' preload lists take.
const HSTS: &str = "max-age=31536000";

/// How the server is reached.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// The origin users reach the server at (`https://wardcheck.example.nhs.uk`), if set.
    pub public_origin: Option<String>,
}

/// The client's address as [`front`] decided it.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub IpAddr);

impl Web {
    /// From `--trusted-proxy` and `--public-url`; a public URL must be `http(s)://host[:port]`
    /// with nothing after (a path would not be an origin).
    pub fn new(trusted_proxies: Vec<IpAddr>, public_url: Option<&str>) -> Result<Web, String> {
        let public_origin = match public_url {
            None => None,
            Some(u) => Some(origin_of(u).ok_or_else(|| {
                format!(
                    "--public-url {u:?}: give the address users reach, as \
                     https://host or https://host:port (no path)"
                )
            })?),
        };
        Ok(Web {
            trusted_proxies,
            public_origin,
        })
    }

    /// Whether users reach the server over HTTPS.
    pub fn https(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }

    /// The cookie that carries the browser's token.
    pub fn cookie_name(&self) -> &'static str {
        if self.https() {
            HOST_COOKIE
        } else {
            PLAIN_COOKIE
        }
    }

    /// The `Set-Cookie` value that gives the browser `token` (or, empty, takes it away).
    pub fn cookie(&self, token: &str) -> String {
        let expire = if token.is_empty() { "; Max-Age=0" } else { "" };
        let secure = if self.https() { "; Secure" } else { "" };
        format!(
            "{}={token}; HttpOnly; SameSite=Strict; Path=/{secure}{expire}",
            self.cookie_name()
        )
    }

    /// The client's address: the peer's, or behind a trusted proxy the rightmost
    /// forwarded address that is not a trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // Something the proxy did not write as an address: trust nothing to its left.
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.iter().any(|p| canonical(*p) == ip)
    }

    /// Why a request's origin is refused, if it is.
    fn origin_refused(&self, method: &Method, headers: &HeaderMap) -> Option<String> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        // A read signed in by the cookie and made by another site's page (a sibling host
        // is the same *site*, so SameSite=Strict still sends the cookie): refused, so
        // that no other page can make an audited export in the user's name. Browsers say
        // so in Sec-Fetch-Site; one that does not is let through.
        let fetched_from = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if matches!(fetched_from, "cross-site" | "same-site") && self.carries_cookie(headers) {
            return Some(format!(
                "a request signed in by the browser's cookie from another site's page \
                 ({fetched_from}) is refused"
            ));
        }
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if safe && !upgrade {
            return None;
        }
        match headers.get(header::ORIGIN) {
            Some(o) => {
                let o = o.to_str().unwrap_or("(not text)");
                (!self.is_own_origin(o, headers)).then(|| {
                    format!(
                        "a request from {} is refused: only this server's own pages may send it",
                        crate::session::neutralise(o, 100)
                    )
                })
            }
            None => (self.carries_cookie(headers) && !headers.contains_key(header::AUTHORIZATION))
                .then(|| {
                    "a request signed in by the browser's cookie must say where it comes from \
                     (Origin)"
                        .to_string()
                }),
        }
    }

    fn is_own_origin(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some(origin) = origin_of(origin) else {
            return false;
        };
        match &self.public_origin {
            Some(own) => origin == *own,
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_ascii_lowercase);
                host.is_some_and(|h| {
                    origin == format!("http://{h}") || origin == format!("https://{h}")
                })
            }
        }
    }

    fn carries_cookie(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|c| {
                c.trim()
                    .split_once('=')
                    .is_some_and(|(name, _)| name == PLAIN_COOKIE || name == HOST_COOKIE)
            })
    }
}

/// `scheme://host[:port]`, lowercased, from an origin or a URL without a path; `None` if
/// it is not one.
fn origin_of(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://")?;
    let ok = matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !ok {
        return None;
    }
    // Browsers leave the scheme's own port out of `Origin`.
    let bare = match scheme {
        "https" => s.strip_suffix(":443"),
        _ => s.strip_suffix(":80"),
    };
    Some(bare.map_or(s.clone(), str::to_owned))
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// An IPv4 address written as IPv6 (`::ffff:1.2.3.4`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Before every route: the client's address, the origin check, HSTS and the access log.
pub async fn front(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let client = state.web.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut res = match state.web.origin_refused(&method, req.headers()) {
        Some(why) => {
            state
                .audit_refusal(AuditEvent {
                    at: chrono::Utc::now(),
                    actor: "-".into(),
                    device: None,
                    action: "origin_refused".into(),
                    target: crate::storage::audit_target(&path),
                    from: client.to_string(),
                    outcome: "denied".into(),
                    detail: Some(why.clone()),
                })
                .await;
            AppError::new(StatusCode::FORBIDDEN, "bad_origin", why).into_response()
        }
        None => next.run(req).await,
    };
    if state.web.https() {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    tracing::info!(
        target: "wardcheck_server::access",
        client = %client,
        method = %method,
        path = %crate::session::neutralise(&path, 300),
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_forwarded_address_counts_only_from_a_trusted_proxy() {
        let web = Web::new(vec![ip("10.0.0.1")], None).unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        // From the proxy: the address it saw (the rightmost), not what the client wrote.
        assert_eq!(web.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // From anyone else: the peer, whatever the header says.
        assert_eq!(web.client(ip("198.51.100.7"), &h), ip("198.51.100.7"));
        // Without a trusted proxy, never.
        assert_eq!(Web::default().client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        // Two trusted proxies in a row are skipped; ports and mapped IPv4 are read.
        let two = Web::new(vec![ip("10.0.0.1"), ip("10.0.0.2")], None).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "[::ffff:203.0.113.9]:443, 10.0.0.2"),
        ]);
        assert_eq!(two.client(ip("::ffff:10.0.0.1"), &h), ip("203.0.113.9"));
        // A hop that is not an address: nothing to its left is believed.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, garbage, 10.0.0.2")]);
        assert_eq!(two.client(ip("10.0.0.1"), &h), ip("10.0.0.2"));
        // No header: the proxy itself.
        assert_eq!(
            web.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn writes_from_another_origin_are_refused() {
        let web = Web::default();
        let own = headers(&[
            ("host", "wc.example:8080"),
            ("origin", "http://wc.example:8080"),
        ]);
        assert_eq!(web.origin_refused(&Method::POST, &own), None);
        let evil = headers(&[
            ("host", "wc.example:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert!(web.origin_refused(&Method::POST, &evil).is_some());
        assert!(web.origin_refused(&Method::PUT, &evil).is_some());
        // Reads are not checked (the browser's same-origin policy keeps their answers).
        assert_eq!(web.origin_refused(&Method::GET, &evil), None);
        // A WebSocket upgrade is, though it is a GET.
        let mut ws = evil.clone();
        ws.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(web.origin_refused(&Method::GET, &ws).is_some());
        // A cookie without an Origin is refused; a bearer token without one is an app.
        let cookie = headers(&[("host", "wc.example"), ("cookie", "a=b; wardcheck_token=x")]);
        assert!(web.origin_refused(&Method::POST, &cookie).is_some());
        let bearer = headers(&[("host", "wc.example"), ("authorization", "Bearer x")]);
        assert_eq!(web.origin_refused(&Method::POST, &bearer), None);
        // With a public URL, only its origin.
        let public = Web::new(vec![], Some("https://WC.example/")).unwrap();
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "https://wc.example")]);
        assert_eq!(public.origin_refused(&Method::POST, &h), None);
        let h = headers(&[("host", "wc.example"), ("origin", "http://wc.example")]);
        assert!(public.origin_refused(&Method::POST, &h).is_some());
        assert!(Web::new(vec![], Some("https://wc.example/path")).is_err());
        // The scheme's own port is left out, as browsers do.
        let port = Web::new(vec![], Some("https://wc.example:443")).unwrap();
        let h = headers(&[("host", "127.0.0.1"), ("origin", "https://wc.example")]);
        assert_eq!(port.origin_refused(&Method::POST, &h), None);
        // A read signed in by the cookie from a sibling host's page is refused; the same
        // read from the server's own page, or typed in, is not.
        let sibling = headers(&[
            ("cookie", "wardcheck_token=x"),
            ("sec-fetch-site", "same-site"),
        ]);
        assert!(web.origin_refused(&Method::GET, &sibling).is_some());
        for own in ["same-origin", "none"] {
            let h = headers(&[("cookie", "wardcheck_token=x"), ("sec-fetch-site", own)]);
            assert_eq!(web.origin_refused(&Method::GET, &h), None, "{own}");
        }
        assert!(Web::new(vec![], Some("ftp://wc.example")).is_err());
    }

    #[test]
    fn over_https_the_cookie_is_secure_and_host_only() {
        let web = Web::new(vec![], Some("https://wc.example")).unwrap();
        assert_eq!(
            web.cookie("t"),
            "__Host-wardcheck_token=t; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        assert_eq!(
            Web::default().cookie(""),
            "wardcheck_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }
}
