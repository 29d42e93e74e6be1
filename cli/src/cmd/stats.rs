//! `vouch stats --node URL`: the node's counters per signer and
//! repository, and how its tracked signers agree.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use comfy_table::Table;
use serde_json::Value;

use crate::client;
use crate::exit::Exit;
use crate::output;

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

fn short(k: &str) -> String {
    let body = k.strip_prefix("ed25519:").unwrap_or(k);
    format!("{}…", body.chars().take(8).collect::<String>())
}

/// Runs the command.
pub(crate) fn run(node: &str, as_json: bool) -> Result<Exit> {
    let v = match client::node_answer(
        node,
        "/api/vouch/v1/stats",
        Duration::from_secs(30),
        as_json,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let mut per = Table::new();
    per.load_preset(comfy_table::presets::NOTHING);
    per.set_header(["signer", "repository", "GOOD", "BAD", "FAIL", "reproduced"]);
    for s in v["signers"].as_array().into_iter().flatten() {
        let key = s["signer"].as_str().unwrap_or("?");
        let who = if s["this_node"] == true {
            format!("{} (this node)", short(key))
        } else {
            short(key)
        };
        for r in s["repositories"].as_array().into_iter().flatten() {
            let repo = [&r["distribution"], &r["release"], &r["repository"]]
                .iter()
                .filter_map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            per.add_row([
                who.clone(),
                repo,
                r["good"].to_string(),
                r["bad"].to_string(),
                r["fail"].to_string(),
                pct(&r["rate"]),
            ]);
        }
        per.add_row([
            who,
            "all".to_string(),
            s["good"].to_string(),
            s["bad"].to_string(),
            s["fail"].to_string(),
            pct(&s["rate"]),
        ]);
    }
    // The agreement matrix: same outcome over artifacts both spoke about;
    // below the diagonal, the same rebuilt bytes when both said BAD.
    let keys: Vec<String> = v["tracked"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let mut cells: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for p in v["agreement"].as_array().into_iter().flatten() {
        let (a, b) = (
            p["a"].as_str().unwrap_or_default().to_string(),
            p["b"].as_str().unwrap_or_default().to_string(),
        );
        let outcome = format!("{} of {}", p["same_outcome"], p["both"]);
        let rebuilt = format!("{} of {}", p["same_rebuilt"], p["both_bad"]);
        cells.insert((a.clone(), b.clone()), (outcome.clone(), rebuilt.clone()));
        cells.insert((b, a), (outcome, rebuilt));
    }
    let mut matrix = Table::new();
    matrix.load_preset(comfy_table::presets::NOTHING);
    let mut header = vec![String::new()];
    header.extend(keys.iter().map(|k| short(k)));
    matrix.set_header(header);
    for (i, a) in keys.iter().enumerate() {
        let mut row = vec![short(a)];
        for (j, b) in keys.iter().enumerate() {
            row.push(match (i.cmp(&j), cells.get(&(a.clone(), b.clone()))) {
                (std::cmp::Ordering::Equal, _) => "·".to_string(),
                (std::cmp::Ordering::Less, Some((o, _))) => o.clone(),
                (std::cmp::Ordering::Greater, Some((_, r))) => r.clone(),
                _ => "-".to_string(),
            });
        }
        matrix.add_row(row);
    }
    let others = &v["others"];
    output::text(&format!(
        "{} verdicts counted\n\n{per}\n\nagreement (above the diagonal: same outcome, of the artifacts both \
         judged; below: same rebuilt sha256, of those both called BAD)\n{matrix}\n\n\
         other signers: {} GOOD, {} BAD, {} FAIL (every verdict)\n",
        v["verdicts"], others["good"], others["bad"], others["fail"]
    ))?;
    Ok(Exit::Ok)
}
