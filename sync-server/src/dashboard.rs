//! The review dashboard: the built Svelte app (`ui/dist`, made by `npm run build` in
//! `ui/`) served as static files for every path no API route takes.
//!
//! - A path under `/api/` that no route takes is the API's JSON 404, never the page.
//! - Any other path that is not a file gets `index.html` (the dashboard routes in the
//!   browser: `/inspections/ID` reloaded must show the page), except under `/assets/`,
//!   where a missing file is a plain 404 rather than HTML served as a script.
//! - Every answer carries strict security headers ([`CONTENT_SECURITY_POLICY`]): only
//!   this origin's scripts, styles, images and connections; no inline script; no framing.
//!
//! The dashboard talks to the same JSON API as everyone else, signed in with the
//! HttpOnly cookie `POST /api/v1/login` sets; it holds no rights of its own.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::AppError;

/// The dashboard's Content-Security-Policy. Everything from this origin only: no inline
/// script or style, no `eval`, no remote fonts (the NHS font falls back to Arial), no
/// plugins; `frame-ancestors 'none'` stops clickjacking.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether `dir` holds a built dashboard.
pub fn is_built(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

/// The router that serves the dashboard from `dir`, for [`Router::fallback_service`].
pub fn service(dir: &Path) -> Router {
    let dir: Arc<Path> = Arc::from(dir);
    Router::new()
        .fallback_service(axum::routing::any(dispatch).with_state(dir))
        .layer(middleware::from_fn(security_headers))
}

/// An unknown API path is the API's 404; a file is served as it is; any other path is
/// the page, except under `/assets/`, where a missing script is a 404 and not HTML.
async fn dispatch(State(dir): State<Arc<Path>>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return AppError::not_found().into_response();
    }
    let is_asset = path.starts_with("/assets/");
    // Only GET and HEAD reach files (ServeDir answers anything else 405); their bodies
    // are empty, so the request can be made twice.
    let (parts, _) = req.into_parts();
    let again = || Request::from_parts(parts.clone(), Body::empty());
    let Ok(res) = ServeDir::new(&*dir).oneshot(again()).await;
    if res.status() != StatusCode::NOT_FOUND || is_asset {
        return res.map(Body::new);
    }
    let Ok(page) = ServeFile::new(dir.join("index.html"))
        .oneshot(again())
        .await;
    page.map(Body::new)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let hashed_asset = req.uri().path().starts_with("/assets/");
    let mut res = next.run(req).await;
    let found = res.status().is_success();
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // For browsers that predate `frame-ancestors`.
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Vite names assets by their content hash, so they never change; the page itself
    // is revalidated, so a new build is picked up at once.
    let cache = if hashed_asset && found {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(app: &Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn pages_fall_back_to_the_app_but_api_paths_and_assets_do_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html>app").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets").join("a-1.js"), "x").unwrap();
        assert!(is_built(dir.path()));
        let app = service(dir.path());

        for path in [
            "/",
            "/inspections/d3e00000-0000-4000-8000-000000000001",
            "/signin",
        ] {
            let (status, headers, body) = get(&app, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains("app"), "{path} is the page: {body}");
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        }
        let (status, headers, _) = get(&app, "/assets/a-1.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let (status, _, body) = get(&app, "/assets/missing.js").await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a missing asset is not the page"
        );
        assert!(!body.contains("app"));
        for path in ["/api", "/api/v1/nothing", "/api/v2/x"] {
            let (status, headers, body) = get(&app, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(
                body.contains("\"not_found\""),
                "{path} is the API's JSON 404: {body}"
            );
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
        }
        let (status, _, _) = get(&app, "/../../etc/passwd").await;
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn the_policy_allows_nothing_inline_or_remote() {
        let p = CONTENT_SECURITY_POLICY;
        for must in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(p.contains(must), "{must} in {p}");
        }
        for never in [
            "unsafe-inline",
            "unsafe-eval",
            "http:",
            "https:",
            "data:",
            "*",
        ] {
            assert!(!p.contains(never), "{never} in {p}");
        }
    }
}
