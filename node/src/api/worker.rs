//! `/api/vouch/v1/worker/*`: remote workers lease jobs, send heartbeats and
//! upload results, every request signed by an authorized worker key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vouch_attest::PublicKey;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::remote::{Completion, Lease};
use crate::worker::{NotHeld, record_attempt, unix_now};

fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<PublicKey, ApiError> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    s.workers
        .check(
            &crate::remote::SignedHeaders {
                key: h("x-vouch-worker-key"),
                timestamp: h("x-vouch-timestamp"),
                nonce: h("x-vouch-nonce"),
                signature: h("x-vouch-signature"),
            },
            "POST",
            path,
            body,
            unix_now(),
        )
        .map_err(|e| {
            tracing::warn!(error = %e, "worker request refused");
            ApiError::unauthorized_because(e.to_string())
        })
}

fn worker_name(key: &PublicKey) -> String {
    format!("remote:{key}")
}

/// `POST /api/vouch/v1/worker/lease`: 200 with a job, 204 when none is ready.
pub async fn lease(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = authenticate(&s, &headers, "/api/vouch/v1/worker/lease", &body)?;
    let Some(ctx) = s.rebuild.clone() else {
        return Err(ApiError::not_found("this node does not hand out jobs"));
    };
    let lease_secs = ctx.config.lease_secs;
    let store = s.store.clone();
    let name = worker_name(&key);
    ctx.activity.seen(&name);
    let leased =
        tokio::task::spawn_blocking(move || store.lease_job(&name, unix_now(), lease_secs))
            .await
            .map_err(ApiError::internal)??;
    match leased {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(r) => Ok(Json(Lease {
            job: r.job,
            node_key: s.node_key.to_text(),
            lease_secs,
        })
        .into_response()),
    }
}

#[derive(Deserialize)]
struct Heartbeat {
    key: String,
}

/// `POST /api/vouch/v1/worker/heartbeat` with `{"key": JOB}`.
pub async fn heartbeat(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = authenticate(&s, &headers, "/api/vouch/v1/worker/heartbeat", &body)?;
    let hb: Heartbeat = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
    let lease = s.rebuild.as_ref().map_or(300, |c| c.config.lease_secs);
    let store = s.store.clone();
    let name = worker_name(&key);
    let held =
        tokio::task::spawn_blocking(move || store.heartbeat_job(&hb.key, &name, unix_now(), lease))
            .await
            .map_err(ApiError::internal)??;
    Ok(Json(json!({ "held": held })).into_response())
}

/// `POST /api/vouch/v1/worker/complete` with `{"key": JOB, "attempt": ...}`:
/// the node checks that this worker holds the job, stores the evidence,
/// signs the verdicts and records the outcome.
pub async fn complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = authenticate(&s, &headers, "/api/vouch/v1/worker/complete", &body)?;
    let Some(ctx) = s.rebuild.clone() else {
        return Err(ApiError::not_found("this node does not hand out jobs"));
    };
    let c: Completion = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
    let store = s.store.clone();
    let k = c.key.clone();
    let record = tokio::task::spawn_blocking(move || store.job(&k))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::not_found(format!("no job {}", c.key)))?;
    // record_attempt claims the attempt (compare-and-set in the store)
    // before it signs anything: of two completions, one wins.
    let summary = record_attempt(&ctx, &worker_name(&key), &record.job, c.attempt)
        .await
        .map_err(|e| {
            if e.is::<NotHeld>() {
                ApiError::conflict(e.to_string())
            } else {
                ApiError::bad_request("bad_attempt", format!("{e:#}"))
            }
        })?;
    Ok(Json(json!({ "outcome": summary })).into_response())
}
