//! Small blocking helpers to talk to nodes from tests and the testnet tool.

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

fn runtime() -> Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// POSTs a CBOR body of envelopes with the admin token.
pub fn post_envelopes(url: &str, token: &str, body: Vec<u8>) -> Result<Value> {
    runtime()?.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{url}/api/vouch/v1/verdicts"))
            .bearer_auth(token)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .await
            .context("posting verdicts")?;
        let status = resp.status();
        let value: Value = resp.json().await.context("reading the node's answer")?;
        if !status.is_success() {
            bail!("the node refused the verdicts: {status} {value}");
        }
        Ok(value)
    })
}

/// GETs a JSON document.
pub fn get_json(url: &str, path: &str) -> Result<Value> {
    serde_json::from_slice(&get_bytes(url, path)?).context("not JSON")
}

/// The node's signer heads: signer text -> (seq, id), every page.
pub fn heads(url: &str) -> Result<std::collections::BTreeMap<String, (u64, String)>> {
    let mut out = std::collections::BTreeMap::new();
    let mut path = "/api/vouch/v1/signers".to_string();
    loop {
        let v = get_json(url, &path)?;
        for s in v["signers"].as_array().into_iter().flatten() {
            if let (Some(k), Some(seq), Some(id)) =
                (s["signer"].as_str(), s["seq"].as_u64(), s["id"].as_str())
            {
                out.insert(k.to_string(), (seq, id.to_string()));
            }
        }
        match v["next"].as_str() {
            Some(next) => {
                path = format!(
                    "/api/vouch/v1/signers?after={}",
                    next.replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D")
                );
            }
            None => return Ok(out),
        }
    }
}

/// Sends `method path` with `headers` and `body`; the status and the body
/// as text, whatever the status.
pub fn request(
    method: &str,
    url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, String)> {
    runtime()?.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("method")?;
        let mut req = reqwest::Client::new().request(method, format!("{url}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .with_context(|| path.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.context("reading the answer")?))
    })
}

/// GETs raw bytes (a CBOR answer).
pub fn get_bytes(url: &str, path: &str) -> Result<Vec<u8>> {
    runtime()?.block_on(async {
        let resp = reqwest::get(format!("{url}{path}"))
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET {path}: {status}");
        }
        Ok(resp.bytes().await.context("reading the answer")?.to_vec())
    })
}
