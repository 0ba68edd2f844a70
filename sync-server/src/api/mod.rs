//! The JSON API for dashboards: inspections listed, read, created, assigned, shared and
//! moved through their life; reviewers' comments and sign-offs and trust leads'
//! responses; corrective actions; the national picture and trust pages; search; the telemetry join and summary; history; pushed updates; and the OpenAPI
//! document that describes every route.
//!
//! Each handler extracts its input, calls one method of the service layer
//! ([`crate::service::Acting`], which checks access, does the work and audits it) and
//! converts the result. Shared here:
//!
//! - [`JsonBody`]: a JSON body, read under [`limits::MAX_JSON_BODY`] and parsed with
//!   serde_json's default recursion limit (never `unbounded_depth`), every failure a 400
//!   with a code (`bad_json`, `invalid_field`) and the parser's message, a body too large a
//!   413 `too_large`; bodies declared larger than the limit are refused before they are
//!   read.
//!
//! A resource the caller may not see and one that does not exist get the same 404
//! (`AppError::not_found`), so ids cannot be probed.

mod actions;
mod admin;
mod checklists;
mod events;
mod history;
mod inspections;
mod join;
mod national;
mod reports;
mod review;
mod search;
mod updates;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

use crate::error::{AppError, is_length_limit};
use crate::{AppState, limits};

/// The OpenAPI 3.1 description of every route, kept beside the routes (a test checks
/// that every route in the source appears in it).
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/inspections",
            get(inspections::list).post(inspections::create),
        )
        .route("/api/v1/inspections/{id}", get(inspections::get_one))
        .route("/api/v1/inspections/{id}/join", get(join::get_join))
        .route("/api/v1/inspections/{id}/events", get(events::events))
        .route("/api/v1/inspections/{id}/assign", post(inspections::assign))
        .route(
            "/api/v1/inspections/{id}/schedule",
            post(inspections::reschedule),
        )
        .route("/api/v1/inspections/{id}/cancel", post(inspections::cancel))
        .route("/api/v1/inspections/{id}/share", post(inspections::share))
        .route(
            "/api/v1/inspections/{id}/state",
            post(inspections::change_state),
        )
        .route(
            "/api/v1/inspections/{id}/telemetry-summary",
            get(join::get_summary),
        )
        .route("/api/v1/inspections/{id}/comments", post(review::comment))
        .route(
            "/api/v1/inspections/{id}/comments/{comment}/release",
            post(review::release),
        )
        .route("/api/v1/inspections/{id}/signoffs", post(review::sign_off))
        .route("/api/v1/inspections/{id}/reopen", post(review::reopen))
        .route(
            "/api/v1/inspections/{id}/history",
            get(history::get_history),
        )
        .route(
            "/api/v1/inspections/{id}/responses/{finding}",
            put(review::respond),
        )
        .route("/api/v1/inspections/{id}/actions", post(actions::raise))
        .route("/api/v1/actions", get(actions::list))
        .route("/api/v1/actions/{id}", get(actions::get_one))
        .route("/api/v1/actions/{id}/steps", post(actions::step))
        .route(
            "/api/v1/inspections/{id}/reports",
            get(reports::list).post(reports::make),
        )
        .route(
            "/api/v1/inspections/{id}/evidence-pack",
            post(reports::inspection_pack),
        )
        .route("/api/v1/inspections/{id}/export.csv", get(reports::csv))
        .route("/api/v1/reports/{sha256}", get(reports::pdf))
        .route(
            "/api/v1/trusts/{code}/evidence-pack",
            post(reports::trust_pack),
        )
        .route("/api/v1/checklists", get(checklists::list))
        .route("/api/v1/checklists/{id}/{version}", get(checklists::files))
        .route(
            "/api/v1/app/updates/{target}/{arch}/{bundle}/{current_version}",
            get(updates::check),
        )
        .route("/api/v1/app/packages/{sha256}", get(updates::package))
        .route("/api/v1/national", get(national::national))
        .route("/api/v1/trusts/{code}", get(national::trust))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/users", get(admin::users).post(admin::add_user))
        .route("/api/v1/users/{name}/disable", post(admin::disable))
        .route("/api/v1/users/{name}/enable", post(admin::enable))
        .route(
            "/api/v1/users/{name}/password-code",
            post(admin::password_code),
        )
        .route("/api/v1/devices", get(admin::devices))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/audit.csv", get(admin::audit_csv))
        .route("/api/v1/telemetry/imports", get(admin::telemetry_imports))
        .route("/api/v1/openapi.json", get(openapi))
        .route_layer(middleware::from_fn(refuse_large_bodies))
}

async fn openapi() -> Response {
    let mut res = OPENAPI.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Refuses a body whose declared length is over [`limits::MAX_JSON_BODY`] before
/// reading any of it. (A body with no declared length is cut off at the same limit while
/// it is read: see [`JsonBody`].)
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits::MAX_JSON_BODY as u64) {
        return too_large().into_response();
    }
    next.run(req).await
}

fn too_large() -> AppError {
    AppError::too_large(format!(
        "a JSON body may be at most {} bytes",
        limits::MAX_JSON_BODY
    ))
}

/// A JSON request body, read (under the size limit) but not yet parsed, so that a
/// handler decides access before it looks at what was sent: [`JsonBody::parse`].
#[derive(Debug, Clone)]
pub struct JsonBody {
    bytes: axum::body::Bytes,
    is_json: bool,
}

impl JsonBody {
    /// Parses the body as `T` (see [`parse_json`]); a body not sent as
    /// `application/json` is a 415.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        if !self.is_json {
            return Err(AppError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        parse_json(&self.bytes)
    }
}

impl<S> FromRequest<S> for JsonBody
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        let body: Body = req.into_body();
        let bytes = axum::body::to_bytes(body, limits::MAX_JSON_BODY)
            .await
            .map_err(|e| {
                if is_length_limit(&e) {
                    too_large()
                } else {
                    AppError::bad_request("bad_request", "the request body could not be read")
                }
            })?;
        Ok(JsonBody { bytes, is_json })
    }
}

/// Parses a JSON body: syntax errors (including nesting deeper than serde_json's limit
/// of 128) are `bad_json`; well-formed JSON of the wrong shape (an unknown or missing
/// field, a wrong type) is `invalid_field`. The message says where.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let code = match e.classify() {
            Category::Data => "invalid_field",
            Category::Syntax | Category::Eof | Category::Io => "bad_json",
        };
        AppError::bad_request(code, format!("the JSON body was refused: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        user: String,
    }

    #[test]
    fn json_errors_have_codes() {
        assert_eq!(
            parse_json::<Body>(b"{\"user\":").unwrap_err().code,
            "bad_json"
        );
        assert_eq!(
            parse_json::<Body>(br#"{"user":"a","role":"admin"}"#)
                .unwrap_err()
                .code,
            "invalid_field",
            "unknown fields are refused"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(e.code, "bad_json", "nesting past the recursion limit: {e}");
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }

    /// Handlers extract, call the service and convert: none grows past this many lines
    /// (the work, the access check and the audit belong in `crate::service`).
    const MAX_HANDLER_LINES: usize = 25;

    #[test]
    fn handlers_stay_short() {
        let files = [
            ("inspections.rs", include_str!("inspections.rs")),
            ("review.rs", include_str!("review.rs")),
            ("join.rs", include_str!("join.rs")),
            ("history.rs", include_str!("history.rs")),
            ("events.rs", include_str!("events.rs")),
            ("actions.rs", include_str!("actions.rs")),
            ("national.rs", include_str!("national.rs")),
            ("search.rs", include_str!("search.rs")),
            ("reports.rs", include_str!("reports.rs")),
            ("checklists.rs", include_str!("checklists.rs")),
            ("admin.rs", include_str!("admin.rs")),
            ("updates.rs", include_str!("updates.rs")),
        ];
        let mut handlers = 0;
        for (file, source) in files {
            let lines: Vec<&str> = source.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !line.starts_with("pub(super) async fn ") {
                    continue;
                }
                handlers += 1;
                let end = lines[i..]
                    .iter()
                    .position(|l| *l == "}")
                    .unwrap_or_else(|| panic!("{file}:{}: no end", i + 1));
                assert!(
                    end < MAX_HANDLER_LINES,
                    "{file}:{}: a handler of {} lines: move its work into crate::service",
                    i + 1,
                    end + 1
                );
            }
        }
        assert_eq!(handlers, 43, "every route's handler is measured");
    }

    #[test]
    fn the_openapi_document_is_json() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
    }
}
