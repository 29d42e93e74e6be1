//! `/api/vouch/v1/verdicts`: submit, query, lookup.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use vouch_attest::{Digest, ForkProof, PublicKey, split_envelopes};

use crate::api::answer::{Found, respond};
use crate::api::error::ApiError;
use crate::api::state::AppState;

/// `POST /api/vouch/v1/verdicts`
pub async fn post(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    s.authorize(&headers)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/cbor") {
        return Err(ApiError::media_type("application/cbor"));
    }
    let items = split_envelopes(&body, s.limits.max_batch).map_err(|e| {
        ApiError::bad_request(
            "bad_body",
            format!("not an envelope or a CBOR array of envelopes: {e}"),
        )
    })?;
    let envelopes: Vec<Vec<u8>> = items.into_iter().map(<[u8]>::to_vec).collect();
    let reports = s
        .ingest
        .submit("http", envelopes)
        .await
        .map_err(ApiError::unavailable)?;
    let count = |st| reports.iter().filter(|r| r.status == st).count();
    use crate::ingest::Status;
    Ok(Json(json!({
        "accepted": count(Status::Accepted),
        "duplicate": count(Status::Duplicate),
        "pending": count(Status::Pending),
        "rejected": count(Status::Rejected),
        "results": reports,
    }))
    .into_response())
}

/// Most signers one lookup may name.
pub const MAX_LOOKUP_SIGNERS: usize = 1024;

/// Query of `GET /api/vouch/v1/verdicts`.
#[derive(Debug, Deserialize)]
pub struct VerdictQuery {
    sha256: Option<String>,
    signers: Option<String>,
    after: Option<String>,
    distribution: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

/// `GET /api/vouch/v1/verdicts?sha256=HEX[&signers=K,K,...][&after=K]` or
/// `?distribution=D&name=N[&version=V]`
pub async fn get(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VerdictQuery>,
) -> Result<Response, ApiError> {
    let limit = s.limits.max_per_artifact;
    let store = s.store.clone();
    let found = match (&q.sha256, &q.distribution, &q.name) {
        (Some(sha), None, None) => {
            let sha = parse_sha(sha)?;
            let after = q.after.as_deref().map(parse_signer).transpose()?;
            match q.signers.as_deref() {
                Some(list) => {
                    let signers = parse_signers(list.split(',').filter(|k| !k.is_empty()))?;
                    blocking(move || {
                        Ok(Found {
                            ptrs: store.latest_ptrs_of(&sha, &signers)?,
                            truncated: false,
                        })
                    })
                    .await?
                }
                None => {
                    blocking(move || {
                        let (ptrs, truncated) =
                            store.latest_ptrs_by_artifact(&sha, after.as_ref(), limit)?;
                        Ok(Found { ptrs, truncated })
                    })
                    .await?
                }
            }
        }
        (None, Some(d), Some(n)) => {
            for (what, v) in [("distribution", d), ("name", n)] {
                if v.is_empty() || v.len() > 255 {
                    return Err(ApiError::bad_request(
                        "bad_query",
                        format!("{what} must be 1 to 255 bytes"),
                    ));
                }
            }
            if q.version.as_ref().is_some_and(|v| v.len() > 255) {
                return Err(ApiError::bad_request(
                    "bad_query",
                    "version must be at most 255 bytes",
                ));
            }
            let (d, n, v) = (d.clone(), n.clone(), q.version.clone());
            blocking(move || {
                let ptrs = store.by_name_ptrs(&d, &n, v.as_deref(), limit)?;
                let truncated = ptrs.len() >= limit;
                Ok(Found { ptrs, truncated })
            })
            .await?
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_query",
                "give sha256=HEX (and optionally signers=K,K,...), or distribution=D and name=N (and optionally version=V)",
            ));
        }
    };
    respond(&s, &headers, found).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    sha256: Vec<String>,
    #[serde(default)]
    signers: Option<Vec<String>>,
}

/// `POST /api/vouch/v1/verdicts/lookup` with
/// `{"sha256": [HEX, ...], "signers": [KEY, ...]}`: for each artifact, the
/// latest verdict of each named signer (or, without `signers`, of every
/// signer, at most `max_per_artifact` signers per artifact).
pub async fn lookup(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: LookupBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_body",
            format!("expected {{\"sha256\": [HEX, ...], \"signers\": [KEY, ...]}}: {e}"),
        )
    })?;
    if req.sha256.len() > s.limits.max_lookup {
        return Err(ApiError::too_large(format!(
            "{} sha256 values, at most {} per lookup",
            req.sha256.len(),
            s.limits.max_lookup
        )));
    }
    let shas: BTreeSet<Digest> = req
        .sha256
        .iter()
        .map(|h| parse_sha(h))
        .collect::<Result<_, _>>()?;
    let signers = match &req.signers {
        Some(list) => Some(parse_signers(list.iter().map(String::as_str))?),
        None => None,
    };
    let (per, max) = (s.limits.max_per_artifact, s.limits.max_results);
    if let Some(signers) = &signers
        && shas.len().saturating_mul(signers.len()) > max
    {
        return Err(ApiError::too_large(format!(
            "{} artifacts × {} signers, at most {max} verdicts per lookup",
            shas.len(),
            signers.len()
        )));
    }
    let store = s.store.clone();
    // Only pointers are gathered here; the envelopes are read as the
    // answer is written.
    let found = blocking(move || {
        let mut ptrs = Vec::new();
        let mut truncated = false;
        for sha in shas {
            match &signers {
                Some(signers) => ptrs.extend(store.latest_ptrs_of(&sha, signers)?),
                None => {
                    let (found, more) = store.latest_ptrs_by_artifact(&sha, None, per)?;
                    truncated |= more;
                    ptrs.extend(found);
                    if ptrs.len() >= max {
                        ptrs.truncate(max);
                        truncated = true;
                        break;
                    }
                }
            }
        }
        Ok(Found { ptrs, truncated })
    })
    .await?;
    respond(&s, &headers, found).await
}

/// Signer keys (hex or text form), deduplicated, at most
/// [`MAX_LOOKUP_SIGNERS`].
pub(crate) fn parse_signers<'a>(
    keys: impl Iterator<Item = &'a str>,
) -> Result<Vec<PublicKey>, ApiError> {
    let mut out = BTreeSet::new();
    for k in keys {
        out.insert(parse_signer(k)?);
        if out.len() > MAX_LOOKUP_SIGNERS {
            return Err(ApiError::too_large(format!(
                "more than {MAX_LOOKUP_SIGNERS} signers in one request"
            )));
        }
    }
    Ok(out.into_iter().collect())
}

/// A signer key as 64 hex digits or in its text form (`ed25519:...`).
pub(crate) fn parse_signer(s: &str) -> Result<PublicKey, ApiError> {
    let bad = |e: String| {
        ApiError::bad_request(
            "bad_signer",
            format!("`{}`: {e}", s.chars().take(80).collect::<String>()),
        )
    };
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(s, &mut raw).map_err(|e| bad(e.to_string()))?;
        return PublicKey::from_bytes(&raw).map_err(|e| bad(e.to_string()));
    }
    s.parse()
        .map_err(|e: vouch_attest::ParseError| bad(e.to_string()))
}

/// One fork proof as JSON.
pub fn fork_item(proof: &[u8]) -> Value {
    let checked = ForkProof::open(proof).ok();
    json!({
        "id": Digest::of(proof).to_hex(),
        "signer": checked.as_ref().map(|c| c.signer.to_text()),
        "seq": checked.as_ref().map(|c| c.seq()),
        "proof": STANDARD.encode(proof),
    })
}

pub(crate) fn parse_sha(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|e| {
        ApiError::bad_request(
            "bad_sha256",
            format!("`{}`: {e}", s.chars().take(80).collect::<String>()),
        )
    })
}

/// Runs store reads on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}
