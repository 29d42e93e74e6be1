//! `vouch pacman-hook`: run by pacman before a transaction; a non-zero
//! exit stops it (the hook has `AbortOnFail`).

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use vouch_attest::{Digest, Status};

use super::judge::{self, signers_line};
use crate::args::HookArgs;
use crate::config::OnUnknown;
use crate::exit::Exit;
use crate::system::pacman;

/// Largest list of targets read from stdin.
const MAX_TARGETS: u64 = 4 << 20;

pub(crate) fn pacman(a: &HookArgs, config: Option<&Path>) -> Result<Exit> {
    let settings = crate::config::settings(config, a.policy.as_deref(), &a.nodes, a.timeout, true)?;
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_TARGETS)
        .read_to_string(&mut input)
        .context("reading the targets on stdin")?;
    let targets: Vec<&str> = input
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut skipped = Vec::new();
    let entries = pacman::sync_entries(&a.root, &mut skipped);
    let (_, caches) = pacman::conf(&a.root);
    let mut faults: Vec<String> = Vec::new();
    let mut checked: Vec<(String, Digest)> = Vec::new();
    for name in &targets {
        // The first repository (in pacman.conf order) that has it, as pacman
        // chooses.
        let Some(e) = entries.iter().find(|e| e.name == *name) else {
            faults.push(format!("{name}: not in any sync database"));
            continue;
        };
        let label = format!("{}-{}", e.name, e.version);
        match pacman::find_in_cache(&caches, &e.name, &e.version, &e.arch, Some(&e.filename)) {
            None => faults.push(format!(
                "{label}: {} is not in the package cache",
                e.filename
            )),
            Some((path, sha)) if sha != e.sha256 => faults.push(format!(
                "{label}: {} has sha256 {sha}, but the {} database says {}",
                path.display(),
                e.repo,
                e.sha256
            )),
            Some(_) => checked.push((label, e.sha256)),
        }
    }
    let artifacts: Vec<Digest> = checked.iter().map(|(_, s)| *s).collect();
    let judged = judge::judge(&settings, &artifacts)?;
    if judged.offline && !settings.nodes.is_empty() {
        eprintln!(
            "vouch: no node answered; judging from {} cached verdicts (each verified again)",
            judged.verdicts
        );
    }
    let mut verified = 0;
    for (label, sha) in &checked {
        let Some(d) = judged.decisions.get(sha) else {
            continue;
        };
        match d.status {
            Status::Verified => verified += 1,
            Status::Rejected => faults.push(format!(
                "{label}: REJECTED ({}){}",
                signers_line(d),
                d.reasons
                    .first()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            Status::Unknown => match settings.on_unknown {
                OnUnknown::Deny => faults.push(format!(
                    "{label}: UNKNOWN, {} of {} GOOD verdicts needed ({}); on_unknown = \"deny\"",
                    d.good,
                    d.threshold,
                    signers_line(d)
                )),
                OnUnknown::Warn => eprintln!(
                    "vouch: warning: {label}: UNKNOWN ({} of {} GOOD verdicts); on_unknown = \"warn\" lets it through",
                    d.good, d.threshold
                ),
                OnUnknown::Allow => {}
            },
        }
    }
    if faults.is_empty() {
        println!("vouch: {verified} of {} packages verified", targets.len());
        return Ok(Exit::Ok);
    }
    eprintln!("vouch: refusing the transaction:");
    for f in &faults {
        eprintln!("  {f}");
    }
    Ok(Exit::Rejected)
}
