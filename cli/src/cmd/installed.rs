//! `vouch check-installed`: every installed package against the policy.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Result, bail};
use comfy_table::Table;
use serde_json::json;
use vouch_attest::Digest;

use super::judge::{self, signers_line};
use crate::args::CheckInstalledArgs;
use crate::exit::Exit;
use crate::output;
use crate::system;

pub(crate) fn run(a: &CheckInstalledArgs, config: Option<&Path>) -> Result<Exit> {
    let settings = a.trust.settings(config, a.bundle.is_none())?;
    let progress = !a.json && std::io::stderr().is_terminal();
    let spinner = |msg: &str| {
        if !progress {
            return None;
        }
        let p = indicatif::ProgressBar::new_spinner();
        p.set_message(msg.to_string());
        p.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(p)
    };
    let s = spinner(&format!(
        "reading the packages installed under {}",
        a.root.display()
    ));
    let inv = system::inventory(&a.root);
    if let Some(s) = s {
        s.finish_and_clear();
    }
    if inv.packages.is_empty() {
        bail!(
            "no installed packages found under {} (no var/lib/dpkg/status or var/lib/pacman/local)",
            a.root.display()
        );
    }
    let mut artifacts: Vec<Digest> = inv.packages.iter().filter_map(|p| p.sha256).collect();
    artifacts.sort();
    artifacts.dedup();
    let s = spinner(&format!(
        "asking {} node(s) about {} artifacts",
        settings.nodes.len(),
        artifacts.len()
    ));
    let judged = match &a.bundle {
        Some(b) => judge::judge_bundle(&settings, &artifacts, b)?,
        None => judge::judge(&settings, &artifacts)?,
    };
    if let Some(s) = s {
        s.finish_and_clear();
    }
    if judged.offline && judged.verdicts == 0 && !settings.nodes.is_empty() {
        let mut msg = String::from("no node could be reached, and nothing is cached:\n");
        for n in &judged.nodes {
            msg += &format!("  {}: {}\n", n.url, n.error.as_deref().unwrap_or("?"));
        }
        if a.json {
            output::json(&json!({ "error": "unreachable", "nodes": judged.nodes }))?;
        } else {
            eprint!("vouch: {msg}");
        }
        return Ok(Exit::Unreachable);
    }
    let (mut verified, mut rejected, mut unknown, mut no_hash) = (0, 0, 0, 0);
    let mut rows = Vec::new();
    for p in &inv.packages {
        let (status, who) = match p.sha256.and_then(|s| judged.decisions.get(&s)) {
            Some(d) => (d.status.as_str(), signers_line(d)),
            None => ("NO HASH", "no artifact hash found".to_string()),
        };
        match status {
            "VERIFIED" => verified += 1,
            "REJECTED" => rejected += 1,
            "UNKNOWN" => unknown += 1,
            _ => no_hash += 1,
        }
        rows.push((status, p, who));
    }
    let summary = json!({
        "packages": inv.packages.len(),
        "verified": verified,
        "rejected": rejected,
        "unknown": unknown,
        "no_hash": no_hash,
        "offline": judged.offline,
    });
    if a.json {
        output::json(&json!({
            "summary": summary,
            "packages": rows.iter().map(|(status, p, who)| json!({
                "distribution": p.distribution,
                "name": p.name,
                "version": p.version,
                "architecture": p.architecture,
                "sha256": p.sha256,
                "hash_from": p.hash_from,
                "status": status,
                "signers": who,
            })).collect::<Vec<_>>(),
            "nodes": judged.nodes,
            "skipped": inv.skipped,
        }))?;
    } else {
        let mut text = format!(
            "{} packages: {verified} verified, {rejected} rejected, {unknown} unknown, {no_hash} without an artifact hash{}\n",
            inv.packages.len(),
            match (&a.bundle, judged.offline) {
                (Some(_), _) => " (judged from the bundle, verified here)",
                (None, true) => " (no node answered: judged from cached verdicts, verified again)",
                (None, false) => "",
            }
        );
        for group in ["REJECTED", "UNKNOWN", "NO HASH"] {
            let mine: Vec<_> = rows.iter().filter(|(s, _, _)| *s == group).collect();
            if mine.is_empty() {
                continue;
            }
            let mut table = Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["package", "version", "arch", "signers"]);
            for (_, p, who) in mine {
                table.add_row([
                    p.name.clone(),
                    p.version.clone(),
                    p.architecture.clone(),
                    who.clone(),
                ]);
            }
            text += &format!("\n{group}\n{table}\n");
        }
        for n in &judged.nodes {
            if let Some(e) = &n.error {
                text += &format!("- node {}: unreachable ({e})\n", n.url);
            }
        }
        if !inv.skipped.is_empty() {
            text += &format!(
                "- {} entries or files could not be read (see --json)\n",
                inv.skipped.len()
            );
        }
        output::text(&text)?;
    }
    Ok(if rejected > 0 {
        Exit::Rejected
    } else if unknown > 0 || no_hash > 0 {
        Exit::Unknown
    } else {
        Exit::Ok
    })
}
