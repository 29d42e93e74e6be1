//! The HTTP API: `app(state)` builds the router; one file per resource.
//! Written down in `spec/http-api.md`.

pub mod answer;
pub mod blobs;
pub mod dashboard;
pub mod error;
pub mod rebuilderd;
pub mod serve;
pub mod signers;
pub mod state;
pub mod stats;
pub mod status;
pub mod verdicts;
pub mod worker;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

pub use state::AppState;

use crate::api::error::ApiError;
use crate::metrics::RouteLabel;

/// The router over `state`.
pub fn app(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route(
            "/api/vouch/v1/verdicts",
            post(verdicts::post).get(verdicts::get),
        )
        .route("/api/vouch/v1/verdicts/lookup", post(verdicts::lookup))
        .route("/api/vouch/v1/signers", get(signers::list))
        .route("/api/vouch/v1/log/{signer}", get(signers::log))
        .route("/api/vouch/v1/forks", get(signers::forks))
        .route("/api/vouch/v1/blobs/{sha256}", get(blobs::get))
        .route("/api/vouch/v1/status", get(status::status))
        .route("/api/vouch/v1/peers", get(status::peers))
        .route("/api/vouch/v1/stats", get(stats::stats))
        .route("/metrics", get(status::metrics))
        .route("/api/vouch/v1/worker/lease", post(worker::lease))
        .route("/api/vouch/v1/worker/heartbeat", post(worker::heartbeat))
        .route("/api/vouch/v1/worker/complete", post(worker::complete))
        .merge(rebuilderd::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint; see spec/http-api.md") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Records each request's latency by route, method and status.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // The label set stays bounded: a client's method is named only when it
    // is one of the standard ones.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH") => m.to_string(),
        _ => "other".to_string(),
    };
    let start = Instant::now();
    let limit = std::time::Duration::from_secs(s.limits.request_timeout_secs.max(1));
    let response = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::timeout(limit).into_response(),
    };
    s.metrics
        .http
        .get_or_create(&RouteLabel {
            route,
            method,
            status: response.status().as_u16(),
        })
        .observe(start.elapsed().as_secs_f64());
    response
}
