//! What every handler can reach.

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use vouch_attest::PublicKey;

use crate::api::error::ApiError;
use crate::config::HttpConfig;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct AppState {
    /// The store (reads).
    pub store: Store,
    /// The ingest pipeline (writes).
    pub ingest: Ingest,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The bearer token that authorizes writes.
    pub admin_token: Arc<str>,
    /// Limits.
    pub limits: Arc<HttpConfig>,
    /// This node's signing key.
    pub node_key: PublicKey,
    /// The swarm, when p2p is enabled.
    pub network: Option<crate::p2p::Network>,
    /// The rebuild pipeline, when this node hands out or runs jobs.
    pub rebuild: Option<crate::worker::WorkerContext>,
    /// Authorized remote workers.
    pub workers: Arc<crate::remote::WorkerAuth>,
    /// When the node started.
    pub started: Instant,
    /// Bytes of evidence kept at most (`[evidence] quota_mib`).
    pub evidence_quota: u64,
}

impl AppState {
    /// The zstd-compressed evidence blob `id`, from the store or fetched
    /// from peers.
    pub async fn find_blob(&self, id: vouch_attest::Digest) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(
            crate::evidence::find(&self.store, self.network.as_ref(), id, self.evidence_quota)
                .await?,
        )
    }

    /// Checks `Authorization: Bearer <admin token>` in constant time.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        if constant_time_eq(given.trim().as_bytes(), self.admin_token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the client asked for CBOR (`Accept: application/cbor`).
pub fn wants_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/cbor"))
}
