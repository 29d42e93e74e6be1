//! Signers, their logs, and fork proofs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vouch_attest::join_envelopes;

use crate::api::error::ApiError;
use crate::api::state::{AppState, wants_cbor};
use crate::api::verdicts::{blocking, fork_item, parse_signer, parse_signers};

/// Most log entries in one page.
pub const MAX_LOG_PAGE: usize = 1000;

/// Most signers in one page of `/signers`.
pub const MAX_SIGNERS_PAGE: usize = 10_000;

/// Query of the signers listing.
#[derive(Debug, Deserialize)]
pub struct SignersQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/vouch/v1/signers[?after=K][&limit=N]`: heads in signer-key
/// order, at most `limit` (default and maximum 10,000); `next` names the
/// signer to continue after when more follow.
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<SignersQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.as_deref().map(parse_signer).transpose()?;
    let limit = q
        .limit
        .unwrap_or(MAX_SIGNERS_PAGE)
        .clamp(1, MAX_SIGNERS_PAGE);
    let store = s.store.clone();
    let (heads, more) = blocking(move || store.heads_page(after.as_ref(), limit)).await?;
    let items: Vec<_> = heads
        .iter()
        .map(|h| json!({ "signer": h.signer.to_text(), "seq": h.seq, "id": h.id.to_hex(), "count": h.count }))
        .collect();
    let next = if more {
        heads.last().map(|h| h.signer.to_text())
    } else {
        None
    };
    Ok(Json(json!({ "signers": items, "next": next })).into_response())
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

/// Most fork proofs in one page of `GET /api/vouch/v1/forks`.
pub const MAX_FORKS_PAGE: usize = 256;
/// About the most bytes of fork proofs in one answer.
pub const MAX_FORKS_BYTES: usize = 4 << 20;

/// Query of the forks endpoint.
#[derive(Debug, Deserialize)]
pub struct ForksQuery {
    signers: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/vouch/v1/forks[?signers=K,K,...][?after=K&limit=N]`: the fork
/// proof kept against each named signer, or a page of all of them in signer
/// order (one proof per signer; `x-vouch-next` names the signer to continue
/// after when more follow). JSON, or with `Accept: application/cbor` a CBOR
/// array of the proofs.
pub async fn forks(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ForksQuery>,
) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let (proofs, next) = match q.signers.as_deref() {
        Some(list) => {
            let signers = parse_signers(list.split(',').filter(|k| !k.is_empty()))?;
            blocking(move || {
                let mut out = Vec::new();
                for k in &signers {
                    if let Some((p, _)) = store.fork_for(k)? {
                        out.push(p);
                    }
                }
                Ok((out, None))
            })
            .await?
        }
        None => {
            let after = q.after.as_deref().map(parse_signer).transpose()?;
            let limit = q.limit.unwrap_or(MAX_FORKS_PAGE).clamp(1, MAX_FORKS_PAGE);
            blocking(move || {
                let (page, more) = store.forks_page(after.as_ref(), limit, MAX_FORKS_BYTES)?;
                let next = if more {
                    page.last().map(|(k, _)| k.to_text())
                } else {
                    None
                };
                Ok((page.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), next))
            })
            .await?
        }
    };
    if wants_cbor(&headers) {
        let body = join_envelopes(proofs.iter().map(Vec::as_slice));
        let mut r = ([(header::CONTENT_TYPE, "application/cbor")], body).into_response();
        if let Some(n) = next
            .as_deref()
            .and_then(|n| header::HeaderValue::from_str(n).ok())
        {
            r.headers_mut().insert("x-vouch-next", n);
        }
        return Ok(r);
    }
    let items: Vec<_> = proofs.iter().map(|p| fork_item(p)).collect();
    Ok(Json(json!({ "forks": items, "next": next })).into_response())
}
