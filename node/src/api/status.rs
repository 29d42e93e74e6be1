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
    let (counts, size, queue, running) = blocking(move || {
        Ok((
            store.counts()?,
            store.size_on_disk()?,
            store.queue_counts()?,
            store.running_jobs()?,
        ))
    })
    .await?;
    let (last_builds, workers) = s
        .rebuild
        .as_ref()
        .map(|c| c.activity.snapshot())
        .unwrap_or_default();
    let backends: Vec<serde_json::Value> = s
        .rebuild
        .as_ref()
        .map(|c| {
            c.config
                .backends
                .iter()
                .map(|b| {
                    let mut v = json!({
                        "distribution": b.distribution,
                        "backend": b.backend.name(),
                    });
                    if let crate::backend::BackendConfig::Debian(d) = &b.backend {
                        v["isolation"] = json!(d.isolation);
                        if d.isolation == crate::backend::debian::Isolation::Vm {
                            v["guest"] = json!(crate::backend::guest::status(&d.vm));
                        }
                    }
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "rebuild": {
            "backends": backends,
            "local_workers": s.rebuild.as_ref().map_or(0, |c| c.config.workers),
            "workers": workers,
            "last_builds": last_builds,
        },
        "node": {
            "version": env!("CARGO_PKG_VERSION"),
            "public_key": s.node_key.to_text(),
            "peer_id": s.network.as_ref().map(|n| n.peer_id.to_string()),
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
        "queue": {
            "queued": queue.queued,
            "running": queue.running,
            "done": queue.done,
            "running_jobs": running.iter().map(|r| json!({
                "job": r.job.key(),
                "worker": r.worker,
                "started_at": r.started_at,
                "lease_until": r.lease_until,
            })).collect::<Vec<_>>(),
        },
    }))
    .into_response())
}

/// `GET /api/vouch/v1/peers`: connected peers with their gossip scores.
pub async fn peers(State(s): State<AppState>) -> Result<Response, ApiError> {
    let (peer_id, listen, peers) = match &s.network {
        Some(n) => (
            Some(n.peer_id.to_string()),
            n.listen_addrs()
                .await
                .iter()
                .map(ToString::to_string)
                .collect(),
            n.peers().await,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    Ok(Json(json!({ "peer_id": peer_id, "listen": listen, "peers": peers })).into_response())
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let (counts, queue) = blocking(move || Ok((store.counts()?, store.queue_counts()?))).await?;
    s.metrics.set_queue(&queue);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&counts),
    )
        .into_response())
}
