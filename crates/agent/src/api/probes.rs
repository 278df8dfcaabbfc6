//! The read-only probe listener: `/healthz`, `/readyz`, `/metrics`.
//!
//! `/healthz` fails only when an elector died or a leader did not end its leadership in time, like client-go's
//! HealthzAdaptor: an API server outage alone must not get a healthy agent restarted by kubelet. `/readyz` fails
//! until every election Lease has been observed once.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::view::View;

#[derive(Clone)]
struct Probes {
    view: Arc<View>,
    metrics: Arc<Metrics>,
}

/// The probe router.
pub fn router(view: Arc<View>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Probes { view, metrics })
}

async fn healthz(State(p): State<Probes>) -> Response {
    if let Some(ns) = p.view.overdue_leadership(std::time::Instant::now()) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unhealthy: still leading {ns} more than 1 s past the leadership deadline\n"),
        )
            .into_response();
    }
    match p.view.fatal() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unhealthy: {why}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(p): State<Probes>) -> Response {
    if p.view.ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: an election Lease has not been observed yet\n",
        )
            .into_response()
    }
}

async fn metrics_text(State(p): State<Probes>) -> Response {
    match p.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}\n"),
        )
            .into_response(),
    }
}
