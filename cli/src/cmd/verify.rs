//! `vouch verify`: an artifact against a policy, with verdicts from files.

use std::fs::File;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use comfy_table::Table;
use serde_json::json;
use vouch_attest::{
    CheckedFork, Decision, Digest, ForkProof, MAX_FORK_PROOF, SignerState, VerifiedVerdict,
    split_envelopes, verify_batch,
};

use crate::args::VerifyArgs;
use crate::client;
use crate::exit::Exit;
use crate::output;

/// Most envelopes read from one file.
const MAX_PER_FILE: usize = 100_000;

pub(crate) fn run(a: &VerifyArgs, config: Option<&Path>) -> Result<Exit> {
    let settings = a
        .trust
        .settings(config, a.verdicts.is_empty() && a.bundle.is_none())?;
    let policy = settings.policy;
    let nodes_to_ask = if a.bundle.is_some() {
        Vec::new()
    } else {
        settings.nodes
    };
    let artifact = match (&a.file, &a.sha256) {
        (_, Some(hex)) => hex
            .parse::<Digest>()
            .with_context(|| format!("--sha256 {hex}"))?,
        (Some(path), None) => hash_file(path)?,
        (None, None) => anyhow::bail!("give a FILE or --sha256"),
    };
    let mut verdicts: Vec<VerifiedVerdict> = Vec::new();
    let mut dropped = Vec::new();
    for path in &a.verdicts {
        let bytes = output::read_limited(path, (MAX_PER_FILE * vouch_attest::MAX_ENVELOPE) as u64)?;
        let items = split_envelopes(&bytes, MAX_PER_FILE).with_context(|| {
            format!("{}: not an envelope or array of envelopes", path.display())
        })?;
        for (i, r) in verify_batch(&items).into_iter().enumerate() {
            match r {
                Ok(v) => verdicts.push(v),
                Err(e) => dropped.push(json!({
                    "source": format!("{}#{i}", path.display()),
                    "code": e.code(),
                    "error": e.to_string(),
                })),
            }
        }
    }
    let mut forks: Vec<CheckedFork> = Vec::new();
    for path in &a.forks {
        let bytes = output::read_limited(path, MAX_FORK_PROOF as u64)?;
        match ForkProof::open(&bytes) {
            Ok(f) => forks.push(f),
            Err(e) => dropped.push(json!({
                "source": path.display().to_string(),
                "code": e.code(),
                "error": e.to_string(),
            })),
        }
    }
    if let Some(path) = &a.bundle {
        let opened = super::judge::read_bundle(path)?;
        if opened.invalid > 0 {
            dropped.push(json!({
                "source": path.display().to_string(),
                "code": "bundle.invalid_items",
                "error": format!("{} envelopes or fork proofs in the bundle do not verify", opened.invalid),
            }));
        }
        verdicts.extend(opened.verdicts);
        forks.extend(opened.forks);
    }
    let mut nodes = Vec::new();
    if !nodes_to_ask.is_empty() {
        let collected =
            client::ask_nodes(&policy, &nodes_to_ask, settings.timeout_secs, &[artifact])?;
        let known: std::collections::BTreeSet<Digest> = verdicts.iter().map(|v| v.id()).collect();
        verdicts.extend(
            collected
                .verdicts
                .into_iter()
                .filter(|v| !known.contains(&v.id())),
        );
        forks.extend(collected.forks);
        for n in &collected.nodes {
            for bad in &n.invalid {
                dropped.push(json!({
                    "source": n.url,
                    "code": bad["code"],
                    "error": format!("served an invalid {}: {}", if bad.get("fork_proof").is_some() { "fork proof" } else { "envelope" }, bad["error"].as_str().unwrap_or("?")),
                }));
            }
        }
        nodes = collected.nodes;
        if a.verdicts.is_empty() && a.bundle.is_none() && nodes.iter().all(|n| !n.reachable) {
            let mut msg = String::from("no node could be reached:\n");
            for n in &nodes {
                msg += &format!("  {}: {}\n", n.url, n.error.as_deref().unwrap_or("?"));
            }
            if a.json {
                output::json(&json!({ "status": null, "error": "unreachable", "nodes": nodes }))?;
            } else {
                eprint!("vouch: {msg}");
            }
            return Ok(Exit::Unreachable);
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let decision = policy.evaluate(&artifact, &verdicts, &forks, now);
    // Forks that the collected verdicts prove by themselves (two conflicting
    // verdicts of one signer, perhaps from two nodes that each hold one
    // side): reported with the proof, so it can be passed on.
    let found = &decision.found_forks;
    if a.json {
        let mut value = serde_json::to_value(&decision)?;
        value["dropped"] = json!(dropped);
        value["nodes"] = json!(nodes);
        value["found_forks"] = json!(
            found
                .iter()
                .map(|f| json!({
                    "signer": f.signer.to_text(),
                    "id": f.id.to_hex(),
                    "proof": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        f.proof().encode()
                    ),
                }))
                .collect::<Vec<_>>()
        );
        output::json(&value)?;
    } else {
        let mut text = render(&decision, &dropped);
        for f in found {
            text += &format!(
                "- the collected verdicts prove that {} forked its log: fork proof {} (its bytes are in --json output)\n",
                f.signer, f.id
            );
        }
        for n in &nodes {
            text += &match &n.error {
                None => format!(
                    "- node {}: {} verdicts, {} fork proofs\n",
                    n.url, n.verdicts, n.forks
                ),
                Some(e) => format!("- node {}: unreachable ({e})\n", n.url),
            };
        }
        output::text(&text)?;
    }
    Ok(decision.status.into())
}

fn hash_file(path: &Path) -> Result<Digest> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Digest::of_reader(file).with_context(|| format!("reading {}", path.display()))
}

pub(crate) fn render(d: &Decision, dropped: &[serde_json::Value]) -> String {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["signer", "operator", "says", "verdict"]);
    for s in &d.signers {
        let (says, verdict) = match &s.state {
            SignerState::Good { verdict, seq } => {
                ("GOOD".to_string(), format!("{verdict} (seq {seq})"))
            }
            SignerState::Bad {
                verdict,
                seq,
                rebuilt_sha256,
            } => (
                format!("BAD, rebuilt {}", &rebuilt_sha256.to_hex()[..16]),
                format!("{verdict} (seq {seq})"),
            ),
            SignerState::Fail {
                verdict,
                seq,
                reason,
            } => (
                format!("FAIL ({})", reason.as_str()),
                format!("{verdict} (seq {seq})"),
            ),
            SignerState::NoVerdict => ("-".to_string(), String::new()),
            SignerState::Forked { proof } => {
                ("FORKED: ignored".to_string(), format!("fork proof {proof}"))
            }
            SignerState::Excluded { why } => (format!("excluded: {why:?}"), String::new()),
        };
        table.add_row([s.name.clone(), s.operator.clone(), says, verdict]);
    }
    let mut out = format!(
        "{}  {}  ({} GOOD, {} needed, {} configured)\n{table}\n",
        d.status.as_str(),
        d.artifact,
        d.good,
        d.threshold,
        d.configured
    );
    for r in &d.reasons {
        out += &format!("- {r}\n");
    }
    if d.untrusted_verdicts > 0 {
        out += &format!(
            "- {} verdicts by signers outside the policy were ignored\n",
            d.untrusted_verdicts
        );
    }
    for x in dropped {
        out += &format!(
            "- dropped {}: {}\n",
            x["source"].as_str().unwrap_or("?"),
            x["error"].as_str().unwrap_or("?")
        );
    }
    out
}
