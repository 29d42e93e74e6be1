//! `vouch export --format jsonl|csv`: every verdict a node holds (or those
//! of some signers, issued since some time), verified here, as lines for
//! analysis.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use vouch_attest::{Outcome, PublicKey, VerifiedVerdict, split_envelopes, verify_batch};

use crate::args::{ExportArgs, ExportFormat};
use crate::client;
use crate::exit::Exit;

/// Entries asked per request (the node's maximum).
const PAGE: u64 = 1000;

const CSV_HEADER: &str = "id,signer,seq,issued_at,distribution,release,component,architecture,name,version,filename,sha256,outcome,rebuilt_sha256,fail_reason,backend,backend_version,buildinfo_sha256";

pub(crate) fn run(a: &ExportArgs, format: ExportFormat, config: Option<&Path>) -> Result<Exit> {
    let nodes = if a.trust.nodes.is_empty() {
        crate::config::load(&crate::config::path(config))?.nodes
    } else {
        a.trust.nodes.clone()
    };
    let Some(node) = nodes.first() else {
        bail!("no node to read: give --node URL");
    };
    let base = node.trim_end_matches('/').to_string();
    let since = match &a.since {
        None => 0,
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().with_context(|| format!("--since {s}"))?
        }
        Some(s) => vouch_attest::parse_date(s).map_err(|e| anyhow::anyhow!("--since: {e}"))?,
    };
    let mut wanted = Vec::new();
    for s in &a.signer {
        wanted.push(parse_key(s).with_context(|| format!("--signer {s}"))?);
    }
    let http = client::http(Duration::from_secs(a.trust.timeout.unwrap_or(60).max(1)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Which signers, and how many entries each (for the progress bar).
        let listed = match signers(&http, &base).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("vouch: {base}: {e:#}");
                return Ok(Exit::Unreachable);
            }
        };
        let todo: Vec<(PublicKey, u64)> = if wanted.is_empty() {
            listed
        } else {
            wanted
                .iter()
                .map(|k| {
                    let count = listed.iter().find(|(l, _)| l == k).map_or(0, |x| x.1);
                    (*k, count)
                })
                .collect()
        };
        let total: u64 = todo.iter().map(|x| x.1).sum();
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} verdicts {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if format == ExportFormat::Csv {
            writeln!(out, "{CSV_HEADER}")?;
        }
        let (mut written, mut dropped) = (0u64, 0u64);
        for (key, _) in &todo {
            let hex_key = hex::encode(key.as_bytes());
            let mut from = 0u64;
            loop {
                let body = client::read_body(
                    http.get(format!("{base}/api/vouch/v1/log/{hex_key}"))
                        .query(&[("from", from.to_string()), ("limit", PAGE.to_string())])
                        .header("accept", "application/cbor"),
                )
                .await
                .with_context(|| format!("{base}: the log of {key}"))?;
                let items = split_envelopes(&body, PAGE as usize * 2)
                    .context("the node's answer is not a CBOR array of envelopes")?;
                if items.is_empty() {
                    break;
                }
                let mut last = None;
                for r in verify_batch(&items) {
                    match r {
                        Ok(v) if v.signer() == key && v.verdict().seq >= from => {
                            last = Some(v.verdict().seq);
                            if v.verdict().issued_at >= since {
                                write_one(&mut out, format, &v)?;
                                written += 1;
                            }
                        }
                        _ => dropped += 1,
                    }
                }
                if let Some(b) = &bar {
                    b.inc(items.len() as u64);
                }
                match last {
                    Some(seq) => from = seq + 1,
                    None => break,
                }
            }
        }
        out.flush()?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if dropped > 0 {
            eprintln!(
                "vouch: {dropped} envelopes from {base} did not verify or were not the signer's: left out"
            );
        }
        eprintln!("vouch: {written} verdicts from {} signers", todo.len());
        Ok(Exit::Ok)
    })
}

fn parse_key(s: &str) -> Result<PublicKey> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: [u8; 32] = hex::decode(s)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("not 32 bytes"))?;
        return Ok(PublicKey::from_bytes(&bytes)?);
    }
    Ok(s.parse()?)
}

/// Every signer the node lists, with its entry count.
async fn signers(http: &reqwest::Client, base: &str) -> Result<Vec<(PublicKey, u64)>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = http.get(format!("{base}/api/vouch/v1/signers"));
        if let Some(a) = &after {
            req = req.query(&[("after", a)]);
        }
        let body = client::read_body(req).await?;
        let page: Value = serde_json::from_slice(&body).context("the node's signer list")?;
        for s in page["signers"].as_array().into_iter().flatten() {
            if let Some(k) = s["signer"]
                .as_str()
                .and_then(|k| k.parse::<PublicKey>().ok())
            {
                out.push((k, s["count"].as_u64().unwrap_or(0)));
            }
        }
        match page["next"].as_str() {
            Some(n) if Some(n) != after.as_deref() => after = Some(n.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

fn write_one(
    out: &mut impl std::io::Write,
    format: ExportFormat,
    v: &VerifiedVerdict,
) -> Result<()> {
    let d = v.verdict();
    match format {
        ExportFormat::Jsonl => {
            let line = json!({
                "id": v.id().to_hex(),
                "verdict": d,
                "envelope": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v.envelope()),
            });
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
        ExportFormat::Csv => {
            let (outcome, rebuilt, reason) = match &d.outcome {
                Outcome::Good => ("GOOD", String::new(), ""),
                Outcome::Bad { rebuilt_sha256 } => ("BAD", rebuilt_sha256.to_hex(), ""),
                Outcome::Fail { reason } => ("FAIL", String::new(), reason.as_str()),
            };
            let s = &d.subject;
            let fields = [
                v.id().to_hex(),
                d.signer.to_text(),
                d.seq.to_string(),
                d.issued_at.to_string(),
                s.distribution.clone(),
                s.release.clone().unwrap_or_default(),
                s.component.clone().unwrap_or_default(),
                s.architecture.clone(),
                s.name.clone(),
                s.version.clone(),
                s.filename.clone(),
                s.sha256.to_hex(),
                outcome.into(),
                rebuilt,
                reason.into(),
                d.inputs.backend.clone(),
                d.inputs.backend_version.clone(),
                d.inputs
                    .buildinfo_sha256
                    .map(|b| b.to_hex())
                    .unwrap_or_default(),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            writeln!(out, "{}", row.join(","))?;
        }
    }
    Ok(())
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(CSV_HEADER.split(',').count(), 18);
    }
}
