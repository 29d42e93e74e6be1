//! Builds: `GET /api/v1/builds/{id}[/log|/artifacts|/artifacts/{aid}/diffoscope]`,
//! `GET /api/v0/builds/{id}/log`, `GET /api/v1/meta/public-keys`. A build
//! is one verdict, named by its number; its one artifact has the same id.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use vouch_attest::{Digest, Envelope, OutcomeKind, Verdict};

use super::model::{Naive, PublicKeys, Rebuild, RebuildArtifact};
use super::packages::run;
use super::parse_id;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::store::{Store, unpack_blob};

/// The verdict with number `n`.
fn numbered(store: &Store, n: u32) -> Result<Verdict, ApiError> {
    let id = store
        .numbered_verdict(n)?
        .ok_or_else(|| ApiError::not_found(format!("no build {n}")))?;
    let bytes = store
        .envelope(&id)?
        .ok_or_else(|| ApiError::not_found(format!("build {n}: verdict {id} is not stored")))?;
    Envelope::decode(&bytes)
        .and_then(|e| e.unverified_verdict())
        .map_err(ApiError::internal)
}

fn build_status(o: OutcomeKind) -> &'static str {
    o.as_str()
}

/// `GET /api/v1/builds/{id}`.
pub async fn build(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let n = parse_id("build id", &id)?;
    let store = s.store.clone();
    let body = run(move || {
        let v = numbered(&store, n)?;
        // The source it was built from, when the artifact is in the
        // package table.
        let (name, version) = match store.packages_with_sha(&v.subject.sha256)?.first() {
            Some(row) => (row.source.clone(), row.source_version.clone()),
            None => (v.subject.name.clone(), v.subject.version.clone()),
        };
        Ok(Rebuild {
            id: n,
            name,
            version,
            distribution: v.subject.distribution,
            release: v.subject.release,
            architecture: v.subject.architecture,
            backend: v.inputs.backend,
            retries: 0,
            started_at: None,
            built_at: Some(Naive(v.issued_at)),
            status: Some(build_status(v.outcome.result())),
        })
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /api/v1/builds/{id}/artifacts`.
pub async fn artifacts(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let n = parse_id("build id", &id)?;
    let store = s.store.clone();
    let body = run(move || {
        let v = numbered(&store, n)?;
        Ok(vec![RebuildArtifact {
            id: n,
            name: v.subject.name,
            has_diffoscope: v.evidence.diffoscope.is_some(),
            has_attestation: false,
            status: match v.outcome.result() {
                OutcomeKind::Good => Some("GOOD"),
                OutcomeKind::Bad => Some("BAD"),
                OutcomeKind::Fail => None,
            },
        }])
    })
    .await?;
    Ok(Json(body).into_response())
}

/// The content of the evidence blob `id`, from the store or from peers
/// (decompressed, capped).
async fn blob_text(s: &AppState, id: Digest, what: &'static str) -> Result<Vec<u8>, ApiError> {
    let compressed = s.find_blob(id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "the {what} {id} is held neither by this node nor by its peers"
        ))
    })?;
    run(move || Ok(unpack_blob(&compressed)?)).await
}

fn text(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Which evidence of a verdict.
#[derive(Clone, Copy)]
enum Kind {
    Log,
    Diffoscope,
}

/// The text of the evidence `kind` that build `n` names.
async fn evidence(s: &AppState, n: u32, kind: Kind) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let (blob, what) = run(move || {
        let e = numbered(&store, n)?.evidence;
        let (blob, what) = match kind {
            Kind::Log => (e.build_log, "build log"),
            Kind::Diffoscope => (e.diffoscope, "diffoscope"),
        };
        blob.map(|b| (b, what))
            .ok_or_else(|| ApiError::not_found(format!("build {n} names no {what}")))
    })
    .await?;
    Ok(text(blob_text(s, blob, what).await?))
}

/// `GET /api/v1/builds/{id}/log` (and v0's).
pub async fn log(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    evidence(&s, parse_id("build id", &id)?, Kind::Log).await
}

/// `GET /api/v1/builds/{id}/artifacts/{aid}/diffoscope`.
pub async fn diffoscope(
    State(s): State<AppState>,
    Path((id, aid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let n = parse_id("build id", &id)?;
    let a = parse_id("artifact id", &aid)?;
    if a != n {
        return Err(ApiError::not_found(format!(
            "build {n} has one artifact, {n}; not {a}"
        )));
    }
    evidence(&s, n, Kind::Diffoscope).await
}

/// `GET /api/v1/meta/public-keys`: this node's verdict key.
pub async fn public_keys(State(s): State<AppState>) -> Json<PublicKeys> {
    Json(PublicKeys {
        current: vec![s.node_key.to_string()],
    })
}
