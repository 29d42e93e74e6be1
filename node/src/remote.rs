//! Remote workers: `vouchd worker --connect URL --key PATH` pulls jobs from
//! a node over HTTP, rebuilds them on its own machine, and uploads what it
//! found; only the node signs verdicts.
//!
//! Every request is signed by the worker's own ed25519 key over
//! `vouch-worker-request-v1\n METHOD \n PATH \n TIMESTAMP \n NONCE \n
//! sha256(body)` (newlines, no spaces), sent as `X-Vouch-Worker-Key`,
//! `X-Vouch-Timestamp`, `X-Vouch-Nonce` (16 random bytes, hex) and
//! `X-Vouch-Signature` (base64). The node accepts only keys its config
//! authorizes, timestamps within 5 minutes, and each signature once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use vouch_attest::{Digest, PublicKey, SecretKey};

use crate::sync::Job;
use crate::worker::{Attempt, RebuildConfig, attempt, backend_for, unix_now};

/// How far a request's timestamp may be from the node's clock.
pub const MAX_SKEW: u64 = 300;

/// The signed message of a request.
pub fn request_message(
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    format!(
        "vouch-worker-request-v1\n{method}\n{path}\n{timestamp}\n{nonce}\n{}",
        Digest::of(body)
    )
    .into_bytes()
}

/// Why a worker request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Headers missing or malformed.
    #[error("missing or malformed X-Vouch-Worker-Key, X-Vouch-Timestamp or X-Vouch-Signature")]
    Malformed,
    /// The key is not authorized.
    #[error("this worker key is not authorized by the node's [workers] authorized")]
    NotAuthorized,
    /// The timestamp is too far off.
    #[error("the request's timestamp is more than {MAX_SKEW} s from the node's clock")]
    Stale,
    /// The signature does not verify.
    #[error("the request's signature does not verify")]
    BadSignature,
    /// The same signed request was seen before.
    #[error("replayed request")]
    Replay,
}

/// The node's side: authorized worker keys and recently seen signatures.
pub struct WorkerAuth {
    authorized: Vec<PublicKey>,
    seen: Mutex<HashMap<[u8; 64], u64>>,
}

impl WorkerAuth {
    /// Authorizes `keys`.
    pub fn new(authorized: Vec<PublicKey>) -> WorkerAuth {
        WorkerAuth {
            authorized,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any worker is authorized.
    pub fn any(&self) -> bool {
        !self.authorized.is_empty()
    }

    /// Checks one request; returns the worker's key.
    pub fn check(
        &self,
        h: &SignedHeaders<'_>,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<PublicKey, AuthError> {
        let SignedHeaders {
            key,
            timestamp,
            nonce,
            signature,
        } = *h;
        let key: PublicKey = key
            .and_then(|k| k.parse().ok())
            .ok_or(AuthError::Malformed)?;
        let ts: u64 = timestamp
            .and_then(|t| t.parse().ok())
            .ok_or(AuthError::Malformed)?;
        let nonce = nonce
            .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(AuthError::Malformed)?;
        let sig: [u8; 64] = signature
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::Malformed)?;
        if !self.authorized.contains(&key) {
            return Err(AuthError::NotAuthorized);
        }
        if ts.abs_diff(now) > MAX_SKEW {
            return Err(AuthError::Stale);
        }
        key.verify(&request_message(method, path, ts, nonce, body), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| now.saturating_sub(*at) <= 2 * MAX_SKEW);
        if seen.insert(sig, now).is_some() {
            return Err(AuthError::Replay);
        }
        Ok(key)
    }
}

/// The authentication headers of a worker request, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    /// `X-Vouch-Worker-Key`
    pub key: Option<&'a str>,
    /// `X-Vouch-Timestamp`
    pub timestamp: Option<&'a str>,
    /// `X-Vouch-Nonce`
    pub nonce: Option<&'a str>,
    /// `X-Vouch-Signature`
    pub signature: Option<&'a str>,
}

/// A leased job as the node hands it to a remote worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub job: Job,
    /// The node's public key (the demo backend's seed).
    pub node_key: String,
    /// Seconds the lease lasts without a heartbeat.
    pub lease_secs: u64,
}

/// The upload of a finished attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    /// The job's key.
    pub key: String,
    /// What the worker found.
    pub attempt: Attempt,
}

/// The worker's side: a signed HTTP client.
struct Client {
    http: reqwest::Client,
    base: String,
    key: SecretKey,
}

impl Client {
    async fn post(&self, path: &str, body: Vec<u8>) -> Result<reqwest::Response> {
        let ts = unix_now();
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let nonce = hex::encode(raw);
        let sig = self
            .key
            .sign(&request_message("POST", path, ts, &nonce, &body));
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-vouch-worker-key", self.key.public_key().to_text())
            .header("x-vouch-timestamp", ts.to_string())
            .header("x-vouch-nonce", nonce)
            .header("x-vouch-signature", STANDARD.encode(sig))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))
    }
}

/// Runs a remote worker until interrupted.
pub async fn run(url: &str, key: SecretKey, config: RebuildConfig, once: bool) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .user_agent(concat!("vouchd-worker/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .timeout(std::time::Duration::from_secs(3600))
        .build()?;
    let client = std::sync::Arc::new(Client {
        http: http.clone(),
        base: url.trim_end_matches('/').to_string(),
        key,
    });
    tracing::info!(node = %client.base, worker = %client.key.public_key(), "worker started");
    loop {
        let resp = client
            .post("/api/vouch/v1/worker/lease", Vec::new())
            .await?;
        match resp.status().as_u16() {
            200 => {}
            204 => {
                if once {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            s => bail!(
                "the node refused the lease request: HTTP {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
        let lease: Lease = resp.json().await.context("the node's lease is not JSON")?;
        let job_key = lease.job.key();
        tracing::info!(job = %job_key, "leased");
        let node_key: PublicKey = lease.node_key.parse().context("node key")?;
        let hb = {
            let client = client.clone();
            let body = serde_json::to_vec(&serde_json::json!({ "key": job_key }))?;
            let every = Duration::from_secs((lease.lease_secs / 3).max(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = client
                        .post("/api/vouch/v1/worker/heartbeat", body.clone())
                        .await;
                }
            })
        };
        let workdir = tempfile::Builder::new().prefix("vouch-worker-").tempdir()?;
        let backend = backend_for(&config, &lease.job);
        let found = attempt(
            &http,
            &config,
            &backend,
            &lease.job,
            workdir.path(),
            node_key.as_bytes(),
        )
        .await;
        hb.abort();
        let body = serde_json::to_vec(&Completion {
            key: job_key.clone(),
            attempt: found,
        })?;
        let resp = client.post("/api/vouch/v1/worker/complete", body).await?;
        if !resp.status().is_success() {
            bail!(
                "the node refused the result of {job_key}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        tracing::info!(job = %job_key, "uploaded");
        if once {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_authenticated_once() {
        const N: &str = "00112233445566778899aabbccddeeff";
        let worker = SecretKey::from_seed(&[5; 32]);
        let stranger = SecretKey::from_seed(&[6; 32]);
        let auth = WorkerAuth::new(vec![worker.public_key()]);
        let sign = |k: &SecretKey, ts: u64, path: &str, body: &[u8]| {
            STANDARD.encode(k.sign(&request_message("POST", path, ts, N, body)))
        };
        let chk = |key: Option<&str>, ts: &str, sig: &str, path: &str, body: &[u8]| {
            let h = SignedHeaders {
                key,
                timestamp: Some(ts),
                nonce: Some(N),
                signature: Some(sig),
            };
            auth.check(&h, "POST", path, body, 1010)
        };
        let key = worker.public_key().to_text();
        let s = sign(&worker, 1000, "/p", b"{}");
        assert!(chk(Some(&key), "1000", &s, "/p", b"{}").is_ok());
        assert_eq!(
            chk(Some(&key), "1000", &s, "/p", b"{}"),
            Err(AuthError::Replay)
        );
        let s = sign(&worker, 1001, "/p", b"{}");
        assert_eq!(
            chk(Some(&key), "1001", &s, "/p", b"{\"x\":1}"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            chk(Some(&key), "1001", &s, "/other", b"{}"),
            Err(AuthError::BadSignature)
        );
        let s = sign(&worker, 100, "/p", b"{}");
        assert_eq!(
            chk(Some(&key), "100", &s, "/p", b"{}"),
            Err(AuthError::Stale)
        );
        let s = sign(&stranger, 1000, "/p", b"{}");
        let skey = stranger.public_key().to_text();
        assert_eq!(
            chk(Some(&skey), "1000", &s, "/p", b"{}"),
            Err(AuthError::NotAuthorized)
        );
        assert_eq!(
            chk(None, "1000", &s, "/p", b"{}"),
            Err(AuthError::Malformed)
        );
    }
}
