//! The package manager hooks: `vouch pacman-hook` (run by pacman before a
//! transaction; a non-zero exit stops it, the hook has `AbortOnFail`) and
//! `vouch apt-hook` (run by apt before dpkg unpacks anything; a non-zero
//! exit makes apt stop).

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
    let settings = a.trust.settings(config, true)?;
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
    let (order, caches) = pacman::conf(&a.root);
    let entries = pacman::sync_entries(&a.root, &order, &mut skipped);
    let mut faults: Vec<String> = Vec::new();
    let mut checked: Vec<(String, Digest)> = Vec::new();
    for name in &targets {
        // The first repository (in pacman.conf order) that has it, as pacman
        // chooses.
        let Some(e) = entries.iter().find(|e| e.name == *name) else {
            // `pacman -U FILE`, or a repository the databases do not list:
            // no published sha256 to check, so it is unknown.
            let why = format!(
                "{name}: in no sync database (installed from a file with pacman -U?): \
                 nothing published to check it against; `vouch verify FILE` checks a file"
            );
            match settings.on_unknown {
                OnUnknown::Deny => faults.push(format!("{why}; on_unknown = \"deny\"")),
                OnUnknown::Warn => eprintln!("vouch: warning: {why}"),
                OnUnknown::Allow => {}
            }
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
    decide(&settings, checked, faults, targets.len())
}

/// Judges the checked packages and stops the transaction (exit 1) when one
/// is at fault: rejected, unknown under `on_unknown = "deny"`, or already
/// found wrong (`faults`).
fn decide(
    settings: &crate::config::Settings,
    checked: Vec<(String, Digest)>,
    mut faults: Vec<String>,
    total: usize,
) -> Result<Exit> {
    let artifacts: Vec<Digest> = checked.iter().map(|(_, s)| *s).collect();
    let judged = judge::judge(settings, &artifacts)?;
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
        println!("vouch: {verified} of {} packages verified", total);
        return Ok(Exit::Ok);
    }
    eprintln!("vouch: refusing the transaction:");
    for f in &faults {
        eprintln!("  {f}");
    }
    Ok(Exit::Rejected)
}

/// `vouch apt-hook`: run by apt as `DPkg::Pre-Install-Pkgs` with the
/// version 3 protocol (contrib/apt/80vouch): stdin holds `VERSION 3`, apt's
/// configuration, a blank line, then one line per package: name, old
/// version, old architecture, old multi-arch, direction, new version, new
/// architecture, new multi-arch, and the `.deb` about to be unpacked (or
/// `**CONFIGURE**`, `**REMOVE**`).
pub(crate) fn apt(a: &HookArgs, config: Option<&Path>) -> Result<Exit> {
    let settings = a.trust.settings(config, true)?;
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_TARGETS * 4)
        .read_to_string(&mut input)
        .context("reading apt's hook input on stdin")?;
    let mut lines = input.lines();
    match lines.next() {
        Some(v) if v.trim() == "VERSION 3" => {}
        other => anyhow::bail!(
            "expected the version 3 hook protocol (`VERSION 3`), got {:?}: set \
             DPkg::Tools::Options::/usr/bin/vouch::Version \"3\" (contrib/apt/80vouch)",
            other.unwrap_or("")
        ),
    }
    // apt's configuration, up to the blank line.
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
    }
    let mut faults = Vec::new();
    let mut checked = Vec::new();
    let mut total = 0;
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 9 {
            continue;
        }
        let (name, version, arch, action) = (f[0], f[5], f[6], f[f.len() - 1]);
        if !action.ends_with(".deb") {
            continue;
        }
        total += 1;
        let label = format!("{name} {version} ({arch})");
        let deb = a.root.join(action.trim_start_matches('/'));
        match crate::system::hash_file(&deb) {
            Ok(sha) => checked.push((label, sha)),
            Err(e) => faults.push(format!("{label}: cannot read {}: {e}", deb.display())),
        }
    }
    decide(&settings, checked, faults, total)
}
