//! `vouch submit`: envelopes to a node.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;
use vouch_attest::{MAX_ENVELOPE, join_envelopes, split_envelopes};

use crate::args::SubmitArgs;
use crate::client;
use crate::exit::Exit;
use crate::output;

/// Most envelopes sent in one request (the node's default `max_batch`).
const PER_REQUEST: usize = 10_000;

pub(crate) fn run(a: &SubmitArgs) -> Result<Exit> {
    let token = std::fs::read_to_string(&a.token_file)
        .with_context(|| format!("reading {}", a.token_file.display()))?
        .trim()
        .to_string();
    let mut all: Vec<Vec<u8>> = Vec::new();
    for path in &a.files {
        let bytes = output::read_limited(path, (PER_REQUEST * MAX_ENVELOPE) as u64)?;
        let items = split_envelopes(&bytes, PER_REQUEST).with_context(|| {
            format!("{}: not an envelope or array of envelopes", path.display())
        })?;
        all.extend(items.into_iter().map(<[u8]>::to_vec));
    }
    let http = client::http(Duration::from_secs(a.timeout.max(1)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let url = format!("{}/api/vouch/v1/verdicts", a.node.trim_end_matches('/'));
    let mut answers = Vec::new();
    for chunk in all.chunks(PER_REQUEST) {
        let body = join_envelopes(chunk.iter().map(Vec::as_slice));
        let req = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/cbor")
            .body(body);
        let answer = match runtime.block_on(client::read_body(req)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("vouch: {}: {e:#}", a.node);
                return Ok(Exit::Unreachable);
            }
        };
        answers.push(
            serde_json::from_slice::<Value>(&answer).context("the node's answer is not JSON")?,
        );
    }
    let rejected: u64 = answers
        .iter()
        .map(|v| v["rejected"].as_u64().unwrap_or(0))
        .sum();
    if a.json {
        output::json(&answers)?;
    } else {
        let sum = |k: &str| {
            answers
                .iter()
                .map(|v| v[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        let mut text = format!(
            "{} envelopes: {} accepted, {} duplicate, {} pending, {rejected} rejected\n",
            all.len(),
            sum("accepted"),
            sum("duplicate"),
            sum("pending")
        );
        for (chunk, v) in answers.iter().enumerate() {
            for r in v["results"].as_array().into_iter().flatten() {
                if r["status"] == "rejected" {
                    text += &format!(
                        "- #{}: {} ({})\n",
                        chunk * PER_REQUEST + r["index"].as_u64().unwrap_or(0) as usize,
                        r["reason"].as_str().unwrap_or("?"),
                        r["code"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        output::text(&text)?;
    }
    Ok(if rejected > 0 {
        Exit::Rejected
    } else {
        Exit::Ok
    })
}
