//! `vouch export --bundle`: what is needed to judge a set of artifacts
//! offline, in one file.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use vouch_attest::{Bundle, Digest};

use crate::args::ExportArgs;
use crate::client;
use crate::exit::Exit;
use crate::output;

pub(crate) fn run(a: &ExportArgs, config: Option<&Path>) -> Result<Exit> {
    if let Some(format) = a.format {
        return super::stream::run(a, format, config);
    }
    let Some(bundle_path) = &a.bundle else {
        bail!("give --bundle FILE or --format jsonl|csv");
    };
    if !a.installed && a.sha256.is_empty() {
        bail!("a bundle needs --installed or --sha256 HEX");
    }
    let settings = a.trust.settings(config, true)?;
    if settings.nodes.is_empty() {
        bail!("no node to ask: give --node or set nodes in the client configuration");
    }
    let mut artifacts: Vec<Digest> = Vec::new();
    for h in &a.sha256 {
        artifacts.push(h.parse().with_context(|| format!("--sha256 {h}"))?);
    }
    if a.installed {
        let inv = crate::system::inventory(&a.root);
        if inv.packages.is_empty() {
            bail!("no installed packages found under {}", a.root.display());
        }
        artifacts.extend(inv.packages.iter().filter_map(|p| p.sha256));
    }
    artifacts.sort();
    artifacts.dedup();
    let c = client::ask_nodes(
        &settings.policy,
        &settings.nodes,
        settings.timeout_secs,
        &artifacts,
    )?;
    if c.nodes.iter().all(|n| !n.reachable) {
        for n in &c.nodes {
            eprintln!("vouch: {}: {}", n.url, n.error.as_deref().unwrap_or("?"));
        }
        return Ok(Exit::Unreachable);
    }
    let forks = super::judge::with_found_forks(c.forks, &c.verdicts);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let bundle = Bundle::new(now, &artifacts, &c.verdicts, &forks);
    let bytes = bundle.encode();
    let tmp = bundle_path.with_extension("partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, bundle_path)
        .with_context(|| format!("writing {}", bundle_path.display()))?;
    if a.json {
        output::json(&json!({
            "bundle": bundle_path,
            "bytes": bytes.len(),
            "artifacts": bundle.artifacts.len(),
            "verdicts": bundle.verdicts.len(),
            "forks": bundle.forks.len(),
            "nodes": c.nodes,
        }))?;
    } else {
        output::text(&format!(
            "{}: {} artifacts, {} verdicts, {} fork proofs ({} bytes)\n",
            bundle_path.display(),
            bundle.artifacts.len(),
            bundle.verdicts.len(),
            bundle.forks.len(),
            bytes.len()
        ))?;
    }
    Ok(Exit::Ok)
}
