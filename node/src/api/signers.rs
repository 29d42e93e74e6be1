//! Signers, their logs, and fork proofs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vouch_attest::{PublicKey, join_envelopes};

use crate::api::error::ApiError;
use crate::api::state::{AppState, wants_cbor};
use crate::api::verdicts::{blocking, fork_item};

/// Most log entries in one page.
pub const MAX_LOG_PAGE: usize = 1000;

/// `GET /api/vouch/v1/signers`
pub async fn list(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let heads = blocking(move || store.heads()).await?;
    let items: Vec<_> = heads
        .iter()
        .map(|h| json!({ "signer": h.signer.to_text(), "seq": h.seq, "id": h.id.to_hex(), "count": h.count }))
        .collect();
    Ok(Json(json!({ "signers": items })).into_response())
}

/// Query of the log endpoint.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/vouch/v1/log/SIGNER?from=SEQ&limit=N`: a CBOR array of the
/// signer's envelopes from `from` (default 0), at most `limit` (default and
/// maximum 1000). SIGNER is the key as 64 hex digits or its text form
/// (`ed25519:...`, percent-encoded).
pub async fn log(
    State(s): State<AppState>,
    Path(signer): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let signer = parse_signer(&signer)?;
    let limit = q.limit.unwrap_or(MAX_LOG_PAGE).min(MAX_LOG_PAGE);
    let from = q.from.unwrap_or(0);
    let store = s.store.clone();
    let page = blocking(move || store.log_range(&signer, from, limit)).await?;
    let body = join_envelopes(page.iter().map(Vec::as_slice));
    Ok(([(header::CONTENT_TYPE, "application/cbor")], body).into_response())
}

/// `GET /api/vouch/v1/forks`: JSON, or with `Accept: application/cbor` a CBOR
/// array of the fork proofs.
pub async fn forks(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let proofs = blocking(move || store.forks()).await?;
    if wants_cbor(&headers) {
        let body = join_envelopes(proofs.iter().map(Vec::as_slice));
        return Ok(([(header::CONTENT_TYPE, "application/cbor")], body).into_response());
    }
    let items: Vec<_> = proofs.iter().map(|p| fork_item(p)).collect();
    Ok(Json(json!({ "forks": items })).into_response())
}

fn parse_signer(s: &str) -> Result<PublicKey, ApiError> {
    let bad = |e: String| ApiError::bad_request("bad_signer", e);
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(s, &mut raw).map_err(|e| bad(e.to_string()))?;
        return PublicKey::from_bytes(&raw).map_err(|e| bad(e.to_string()));
    }
    s.parse()
        .map_err(|e: vouch_attest::ParseError| bad(e.to_string()))
}
