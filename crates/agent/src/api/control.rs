//! The control API: `GET /v1/election`, `GET /v1/election/stream` (server-sent events), `POST
//! /v1/election/{ns}/impeach`, and `GET|POST|DELETE /v1/global/election/tags`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use leasehold_policy::tags::Tags;
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::WatchStream;

use crate::view::View;

/// A request to step down in one election namespace; the answer says whether it was done.
pub struct ImpeachRequest {
    /// The election namespace.
    pub namespace: String,
    /// Where the outcome goes: `Err` names why it could not be done.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// What the control API can change in the running agent.
#[derive(Clone)]
pub struct Controls {
    /// Impeach requests, served by the elections.
    pub impeach: mpsc::Sender<ImpeachRequest>,
    /// Runtime election tags, applied to tasks started afterwards (over the configured ones).
    pub tags: Arc<RwLock<Tags>>,
}

#[derive(Clone)]
struct AppState {
    view: Arc<View>,
    controls: Controls,
    token: Option<Arc<str>>,
}

/// The control router; `token` is required on mutating endpoints when set.
pub fn router(view: Arc<View>, controls: Controls, token: Option<String>) -> Router {
    Router::new()
        .route("/v1/election", get(election))
        .route("/v1/election/stream", get(stream))
        .route("/v1/election/{ns}/impeach", post(impeach))
        .route(
            "/v1/global/election/tags",
            get(get_tags).post(set_tags).delete(delete_tags),
        )
        .with_state(AppState {
            view,
            controls,
            token: token.map(Arc::from),
        })
}

fn document(view: &View) -> serde_json::Value {
    view.document().to_json()
}

async fn election(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(document(&s.view))
}

async fn stream(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // WatchStream yields the current value first, then once per change: one event per state the client sees.
    let view = s.view.clone();
    let events = WatchStream::new(s.view.subscribe()).map(move |_| {
        Ok(Event::default()
            .event("election")
            .data(document(&view).to_string()))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn authorized(s: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(want) = &s.token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "this endpoint needs Authorization: Bearer <LEASEHOLD_API_TOKEN> when the API listens off loopback" })),
            )
                .into_response(),
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn impeach(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> Response {
    if let Err(r) = authorized(&s, &headers) {
        return *r;
    }
    let (reply, rx) = oneshot::channel();
    if s.controls
        .impeach
        .send(ImpeachRequest {
            namespace: ns.clone(),
            reply,
        })
        .await
        .is_err()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the agent is shutting down" })),
        )
            .into_response();
    }
    match rx.await {
        Ok(Ok(())) => Json(document(&s.view)).into_response(),
        Ok(Err(why)) => (StatusCode::NOT_FOUND, Json(json!({ "error": why }))).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the agent is shutting down" })),
        )
            .into_response(),
    }
}

fn tags_document(tags: &Tags) -> serde_json::Value {
    json!({ "tags": tags.as_map() })
}

async fn get_tags(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(tags_document(&s.controls.tags.read()))
}

#[derive(Deserialize)]
struct TagsBody {
    tags: BTreeMap<String, String>,
}

async fn set_tags(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorized(&s, &headers) {
        return *r;
    }
    let parsed: TagsBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("body must be {{\"tags\": {{\"key\": \"value\", ...}}}}: {e}") })),
            )
                .into_response();
        }
    };
    if let Some((k, _)) = parsed.tags.iter().find(|(k, _)| k.is_empty()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("tag key {k:?} is empty") })),
        )
            .into_response();
    }
    let mut tags = s.controls.tags.write();
    *tags = Tags::new();
    for (k, v) in parsed.tags {
        tags.insert(k, v);
    }
    Json(tags_document(&tags)).into_response()
}

async fn delete_tags(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&s, &headers) {
        return *r;
    }
    let mut tags = s.controls.tags.write();
    *tags = Tags::new();
    Json(tags_document(&tags)).into_response()
}
