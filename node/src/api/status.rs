//! `/api/vouch/v1/status` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::api::verdicts::blocking;

/// `GET /api/vouch/v1/status`
pub async fn status(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let (counts, size) = blocking(move || Ok((store.counts()?, store.size_on_disk()?))).await?;
    Ok(Json(json!({
        "node": {
            "version": env!("CARGO_PKG_VERSION"),
            "public_key": s.node_key.to_text(),
            "uptime_seconds": s.started.elapsed().as_secs(),
        },
        "store": {
            "verdicts": counts.verdicts,
            "pending": counts.pending,
            "signers": counts.signers,
            "forks": counts.forks,
            "blobs": counts.blobs,
            "size_on_disk": size,
        },
    }))
    .into_response())
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let counts = blocking(move || store.counts()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&counts),
    )
        .into_response())
}
