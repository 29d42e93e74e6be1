//! rebuilderd's HTTP API (v1 of rebuilderd 0.26+, and the read-only v0), so
//! that `rebuildctl`, arch-repro-status and other rebuilderd clients work
//! against a vouch node unchanged. Written down in `spec/rebuilderd-api.md`.
//!
//! The node's own verdicts decide a package's status; `?signer=KEY` shows
//! another signer's view instead. A build is one verdict: its build id and
//! artifact id are the verdict's number (see `store::packages`).

pub mod builds;
pub mod model;
pub mod packages;
pub mod queue;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use serde::de::DeserializeOwned;
use vouch_attest::{Digest, Envelope, OutcomeKind, PublicKey};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::store::{Store, StoreError};

/// Largest request body after zstd decompression.
const MAX_DECODED_BODY: u64 = 1 << 20;

/// The routes, under `/api/v1` and `/api/v0`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/packages/binary", get(packages::binary))
        .route("/api/v1/packages/binary/{id}", get(packages::binary_one))
        .route(
            "/api/v1/queue",
            get(queue::list).post(queue::push).delete(queue::drop),
        )
        .route("/api/v1/workers", get(queue::workers))
        .route("/api/v1/dashboard", get(queue::dashboard))
        .route("/api/v1/builds/{id}", get(builds::build))
        .route("/api/v1/builds/{id}/log", get(builds::log))
        .route("/api/v1/builds/{id}/artifacts", get(builds::artifacts))
        .route(
            "/api/v1/builds/{id}/artifacts/{aid}/diffoscope",
            get(builds::diffoscope),
        )
        .route("/api/v1/meta/public-keys", get(builds::public_keys))
        .route("/api/v0/pkgs/list", get(packages::list_v0))
        .route("/api/v0/dashboard", get(queue::dashboard_v0))
        .route("/api/v0/builds/{id}/log", get(builds::log))
}

/// Admin requests: `Authorization: Bearer TOKEN`, or rebuilderd's
/// `X-Auth-Cookie: TOKEN`.
pub fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(cookie) = headers.get("x-auth-cookie").and_then(|v| v.to_str().ok()) {
        let mut h = HeaderMap::new();
        if let Ok(v) = format!("Bearer {}", cookie.trim()).parse() {
            h.insert(header::AUTHORIZATION, v);
        }
        return s.authorize(&h);
    }
    s.authorize(headers)
}

/// A JSON body, zstd-compressed when `Content-Encoding: zstd` says so
/// (rebuilderd's clients compress what they send); decompressed with a cap.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let decoded;
    let bytes: &[u8] = match encoding.as_str() {
        "identity" | "" => body,
        "zstd" => {
            use std::io::Read as _;
            let mut out = Vec::new();
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| ApiError::bad_request("bad_body", format!("zstd body: {e}")))?;
            decoder
                .take(MAX_DECODED_BODY + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request("bad_body", format!("zstd body: {e}")))?;
            if out.len() as u64 > MAX_DECODED_BODY {
                return Err(ApiError::bad_request(
                    "too_large",
                    format!("the decompressed body is over {MAX_DECODED_BODY} bytes"),
                ));
            }
            decoded = out;
            &decoded
        }
        other => {
            return Err(ApiError::bad_request(
                "bad_body",
                format!("Content-Encoding `{other}` is not supported (send identity or zstd)"),
            ));
        }
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("bad_body", format!("request body: {e}")))
}

/// Whose verdicts decide the status.
#[derive(Debug, Clone, Copy)]
pub enum View {
    /// This node's (from memory).
    Own,
    /// Another signer's (read from the store).
    Signer(PublicKey),
}

impl View {
    /// From `?signer=`.
    pub fn parse(signer: Option<&str>, own: &PublicKey) -> Result<View, ApiError> {
        match signer {
            None | Some("") => Ok(View::Own),
            Some(k) => {
                let key: PublicKey = k.parse().map_err(|e| {
                    ApiError::bad_request("bad_query", format!("signer `{k}`: {e}"))
                })?;
                Ok(if key == *own {
                    View::Own
                } else {
                    View::Signer(key)
                })
            }
        }
    }
}

/// One verdict about an artifact, as the compatible API shows it.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub outcome: OutcomeKind,
    pub verdict: Digest,
    pub issued_at: u64,
    pub has_log: bool,
    pub has_diffoscope: bool,
}

/// The verdict `view` holds about the artifact `sha`.
pub fn shown(store: &Store, view: View, sha: &Digest) -> Result<Option<Shown>, StoreError> {
    match view {
        View::Own => Ok(store.own_verdict(sha).map(|o| Shown {
            outcome: o.outcome,
            verdict: o.verdict,
            issued_at: o.issued_at,
            has_log: o.has_log,
            has_diffoscope: o.has_diffoscope,
        })),
        View::Signer(k) => {
            let Some(bytes) = store.latest(sha, &k)? else {
                return Ok(None);
            };
            let env = Envelope::decode(&bytes).map_err(|e| StoreError::Damaged {
                tree: "envelopes",
                detail: e.to_string(),
            })?;
            let v = env.unverified_verdict().map_err(|e| StoreError::Damaged {
                tree: "envelopes",
                detail: e.to_string(),
            })?;
            Ok(Some(Shown {
                outcome: v.outcome.result(),
                verdict: env.id(),
                issued_at: v.issued_at,
                has_log: v.evidence.build_log.is_some(),
                has_diffoscope: v.evidence.diffoscope.is_some(),
            }))
        }
    }
}

/// A status filter: `GOOD`, `BAD`, `FAIL` or `UNKWN` (no verdict).
pub fn parse_status(s: Option<&str>) -> Result<Option<Option<OutcomeKind>>, ApiError> {
    match s {
        None | Some("") => Ok(None),
        Some("GOOD") => Ok(Some(Some(OutcomeKind::Good))),
        Some("BAD") => Ok(Some(Some(OutcomeKind::Bad))),
        Some("FAIL") => Ok(Some(Some(OutcomeKind::Fail))),
        Some("UNKWN") => Ok(Some(None)),
        Some(other) => Err(ApiError::bad_request(
            "bad_query",
            format!("status `{other}`: expected GOOD, BAD, FAIL or UNKWN"),
        )),
    }
}

/// An integer id from a path or query.
pub fn parse_id(what: &'static str, s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n <= i32::MAX as u32)
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("{what}: `{s}` is not an integer from 0 to 2147483647"),
            )
        })
}

/// `limit` (default 1000, at most [`packages::MAX_LIMIT`]) and `after` of
/// a page.
pub fn parse_page(
    limit: Option<&str>,
    after: Option<&str>,
) -> Result<(usize, Option<u32>), ApiError> {
    let limit = match limit {
        None | Some("") => 1000,
        Some(l) => (parse_id("limit", l)? as usize).min(packages::MAX_LIMIT),
    };
    let after = match after {
        None | Some("") => None,
        Some(a) => Some(parse_id("after", a)?),
    };
    Ok((limit, after))
}
