//! Search ([`crate::service::search`]): `GET /api/v1/search?q=WORDS`, within what the
//! caller may see.

use axum::Json;
use axum::extract::{Query, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::service::search::{SearchQuery, SearchResults};

pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchResults>, AppError> {
    let parse = || {
        q.map(|Query(q)| q)
            .map_err(|e| AppError::bad_request("bad_query", e.body_text()))
    };
    Ok(Json(state.acting(&caller).search(parse).await?))
}
