//! `GET /api/v1/inspections/{id}/events`: an inspection's changes as server-sent events
//! ([`crate::service::events`]).

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};

use crate::auth::Caller;
use crate::error::AppError;
use crate::{AppState, limits};

pub(super) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let following = state.acting(&caller).follow(&id).await?;
    let mut stopping = state.stopping.subscribe();
    let events = stream::unfold(following, |mut f| async move {
        let (name, data) = f.next().await?;
        let event = Event::default().event(name).data(data.to_string());
        Some((Ok::<_, Infallible>(event), f))
    })
    // Ends when the server stops; the browser's EventSource connects again by itself.
    .take_until(async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    let keep_alive = KeepAlive::new().interval(limits::EVENTS_KEEP_ALIVE);
    let mut res = Sse::new(events).keep_alive(keep_alive).into_response();
    // A proxy must pass each event on as it comes (nginx buffers otherwise).
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}
