//! `vouch query`: what nodes hold for a sha256 or a package name.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use comfy_table::Table;
use futures::future::join_all;
use serde_json::{Value, json};
use vouch_attest::{Digest, VerifiedVerdict, open};

use crate::args::QueryArgs;
use crate::client::{self, NodeReport};
use crate::exit::Exit;
use crate::output;

pub(crate) fn run(a: &QueryArgs) -> Result<Exit> {
    let query: Vec<(&str, String)> = match (&a.sha256, &a.name) {
        (Some(hex), _) => {
            let sha: Digest = hex.parse().with_context(|| format!("--sha256 {hex}"))?;
            vec![("sha256", sha.to_hex())]
        }
        (None, Some(name)) => {
            let mut q = vec![
                ("distribution", a.distribution.clone()),
                ("name", name.clone()),
            ];
            if let Some(v) = &a.version {
                q.push(("version", v.clone()));
            }
            q
        }
        (None, None) => anyhow::bail!("give --sha256 or --name"),
    };
    let http = client::http(Duration::from_secs(a.timeout.max(1)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let answers = runtime.block_on(join_all(a.nodes.iter().map(|url| {
        let req = http
            .get(format!(
                "{}/api/vouch/v1/verdicts",
                url.trim_end_matches('/')
            ))
            .query(&query);
        client::read_body(req)
    })));

    // id -> (verified verdict, nodes that hold it)
    let mut found: BTreeMap<Digest, (VerifiedVerdict, Vec<String>)> = BTreeMap::new();
    let mut forks: BTreeMap<String, Value> = BTreeMap::new();
    let mut reports = Vec::new();
    for (url, answer) in a.nodes.iter().zip(answers) {
        let mut report = NodeReport {
            url: url.clone(),
            reachable: false,
            error: None,
            verdicts: 0,
            forks: 0,
            invalid: Vec::new(),
        };
        match answer.and_then(|body| serde_json::from_slice::<Value>(&body).context("not JSON")) {
            Err(e) => report.error = Some(format!("{e:#}")),
            Ok(body) => {
                report.reachable = true;
                for item in body["verdicts"].as_array().into_iter().flatten() {
                    match check_item(item) {
                        Ok(v) => {
                            report.verdicts += 1;
                            found
                                .entry(v.id())
                                .or_insert_with(|| (v, Vec::new()))
                                .1
                                .push(url.clone());
                        }
                        Err(e) => report.invalid.push(json!({ "error": e })),
                    }
                }
                for f in body["forks"].as_array().into_iter().flatten() {
                    let checked = f["proof"]
                        .as_str()
                        .and_then(|b| STANDARD.decode(b).ok())
                        .and_then(|b| vouch_attest::ForkProof::open(&b).ok());
                    match checked {
                        Some(c) => {
                            report.forks += 1;
                            forks.insert(
                                c.id.to_hex(),
                                json!({ "id": c.id, "signer": c.signer, "seq": c.seq() }),
                            );
                        }
                        None => report
                            .invalid
                            .push(json!({ "error": "a fork proof that does not check" })),
                    }
                }
            }
        }
        reports.push(report);
    }
    let exit = if reports.iter().any(|r| r.reachable) {
        Exit::Ok
    } else {
        Exit::Unreachable
    };
    if a.json {
        let verdicts: Vec<Value> = found
            .values()
            .map(|(v, nodes)| json!({ "id": v.id(), "verdict": v.verdict(), "nodes": nodes }))
            .collect();
        output::json(
            &json!({ "verdicts": verdicts, "forks": forks.values().collect::<Vec<_>>(), "nodes": reports }),
        )?;
        return Ok(exit);
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["signer", "seq", "package", "outcome", "sha256", "nodes"]);
    for (v, nodes) in found.values() {
        let d = v.verdict();
        table.add_row([
            d.signer.to_text(),
            d.seq.to_string(),
            format!("{} {}", d.subject.name, d.subject.version),
            d.outcome.to_string(),
            d.subject.sha256.to_hex()[..16].to_string(),
            nodes.len().to_string(),
        ]);
    }
    let mut text = format!("{} verified verdicts\n{table}\n", found.len());
    for f in forks.values() {
        text += &format!(
            "- FORK: signer {} equivocated at seq {}\n",
            f["signer"].as_str().unwrap_or("?"),
            f["seq"]
        );
    }
    for r in &reports {
        text += &match &r.error {
            Some(e) => format!("- node {}: unreachable ({e})\n", r.url),
            None => format!(
                "- node {}: {} verdicts, {} invalid\n",
                r.url,
                r.verdicts,
                r.invalid.len()
            ),
        };
        for bad in &r.invalid {
            text += &format!("  ! {}\n", bad["error"].as_str().unwrap_or("?"));
        }
    }
    output::text(&text)?;
    Ok(exit)
}

/// Verifies the envelope of one JSON item and checks that what the node
/// claims about it (id, decoded fields) is what the envelope says.
fn check_item(item: &Value) -> Result<VerifiedVerdict, String> {
    let b64 = item["envelope"]
        .as_str()
        .ok_or("an item without an envelope")?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| "an envelope that is not base64".to_string())?;
    let v = open(&bytes).map_err(|e| format!("an invalid envelope ({}): {e}", e.code()))?;
    if item["id"].as_str() != Some(v.id().to_hex().as_str()) {
        return Err(format!(
            "lies about verdict {}: claims id {}",
            v.id(),
            item["id"]
        ));
    }
    let claimed = &item["verdict"];
    let actual = serde_json::to_value(v.verdict()).map_err(|e| e.to_string())?;
    if *claimed != actual {
        return Err(format!(
            "lies about the content of verdict {}: its JSON differs from the signed envelope",
            v.id()
        ));
    }
    Ok(v)
}

/// `vouch peers`
pub(crate) fn peers(node: &str, as_json: bool) -> Result<Exit> {
    let v = match client::node_answer(
        node,
        "/api/vouch/v1/peers",
        Duration::from_secs(10),
        as_json,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["peer", "signer", "address", "score"]);
    for p in v["peers"].as_array().into_iter().flatten() {
        table.add_row([
            p["peer_id"].as_str().unwrap_or("?").to_string(),
            p["signer"].as_str().unwrap_or("-").to_string(),
            p["address"].as_str().unwrap_or("-").to_string(),
            p["score"]
                .as_f64()
                .map_or("-".to_string(), |s| format!("{s:.2}")),
        ]);
    }
    output::text(&format!(
        "node {}\n{table}\n",
        v["peer_id"].as_str().unwrap_or("(p2p off)")
    ))?;
    Ok(Exit::Ok)
}
