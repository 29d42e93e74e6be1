//! Judging many artifacts at once: one batched lookup per node, all nodes
//! in parallel, every envelope verified here, forks found once over
//! everything collected, then the policy per artifact. When no node
//! answers, the cached answers are used (verified again).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use vouch_attest::{CheckedFork, Decision, Digest, SignerState, VerifiedVerdict, find_forks};

use crate::client::{self, NodeReport};
use crate::config::Settings;

/// The decisions, and how they were reached.
pub(crate) struct Judged {
    pub(crate) decisions: HashMap<Digest, Decision>,
    pub(crate) nodes: Vec<NodeReport>,
    /// No node answered and the cache was used.
    pub(crate) offline: bool,
    /// Verdicts the answer rests on.
    pub(crate) verdicts: usize,
}

/// Judges `artifacts` under `settings`.
pub(crate) fn judge(settings: &Settings, artifacts: &[Digest]) -> Result<Judged> {
    let (mut verdicts, mut forks, nodes) = if settings.nodes.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let c = client::ask_nodes(
            &settings.policy,
            &settings.nodes,
            settings.timeout_secs,
            artifacts,
        )?;
        (c.verdicts, c.forks, c.nodes)
    };
    let offline = nodes.iter().all(|n| !n.reachable);
    if offline {
        let (v, f) = crate::cache::load(&settings.cache_dir, artifacts);
        verdicts = v;
        forks = f;
    } else {
        crate::cache::store(&settings.cache_dir, artifacts, &verdicts, &forks);
    }
    Ok(Judged {
        decisions: decide(settings, artifacts, &verdicts, forks),
        verdicts: verdicts.len(),
        nodes,
        offline,
    })
}

/// Judges `artifacts` from a bundle file alone, with no network.
pub(crate) fn judge_bundle(
    settings: &Settings,
    artifacts: &[Digest],
    path: &std::path::Path,
) -> Result<Judged> {
    let opened = read_bundle(path)?;
    Ok(Judged {
        decisions: decide(settings, artifacts, &opened.verdicts, opened.forks),
        verdicts: opened.verdicts.len(),
        nodes: Vec::new(),
        offline: true,
    })
}

/// Reads, decodes and verifies a bundle file.
pub(crate) fn read_bundle(path: &std::path::Path) -> Result<vouch_attest::Opened> {
    let bytes = crate::output::read_limited(path, vouch_attest::MAX_BUNDLE as u64)?;
    let bundle = vouch_attest::Bundle::decode(&bytes)
        .with_context(|| format!("{}: not a vouch bundle", path.display()))?;
    Ok(bundle.open())
}

fn decide(
    settings: &Settings,
    artifacts: &[Digest],
    verdicts: &[VerifiedVerdict],
    mut forks: Vec<CheckedFork>,
) -> HashMap<Digest, Decision> {
    // A fork may pair verdicts about two different artifacts: looked for
    // once over everything, and handed to every decision as a proof.
    let known: std::collections::BTreeSet<Digest> = forks.iter().map(|f| f.id).collect();
    forks.extend(
        find_forks(verdicts)
            .into_iter()
            .filter(|f| !known.contains(&f.id)),
    );
    let mut by_artifact: HashMap<Digest, Vec<VerifiedVerdict>> = HashMap::new();
    for v in verdicts {
        by_artifact
            .entry(v.verdict().subject.sha256)
            .or_default()
            .push(v.clone());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let empty = Vec::new();
    artifacts
        .iter()
        .map(|a| {
            let mine = by_artifact.get(a).unwrap_or(&empty);
            (*a, settings.policy.evaluate(a, mine, &forks, now))
        })
        .collect()
}

/// `forks` and the forks `verdicts` prove by themselves that are not among
/// them. A fork may pair verdicts about two different artifacts: it is
/// looked for once over everything collected.
pub(crate) fn with_found_forks(
    mut forks: Vec<CheckedFork>,
    verdicts: &[VerifiedVerdict],
) -> Vec<CheckedFork> {
    let known: std::collections::BTreeSet<Digest> = forks.iter().map(|f| f.id).collect();
    forks.extend(
        find_forks(verdicts)
            .into_iter()
            .filter(|f| !known.contains(&f.id)),
    );
    forks
}

/// "GOOD: a, b; BAD: c" — who said what.
pub(crate) fn signers_line(d: &Decision) -> String {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut fail = Vec::new();
    let mut forked = Vec::new();
    for s in &d.signers {
        match &s.state {
            SignerState::Good { .. } => good.push(s.name.as_str()),
            SignerState::Bad { .. } => bad.push(s.name.as_str()),
            SignerState::Fail { .. } => fail.push(s.name.as_str()),
            SignerState::Forked { .. } => forked.push(s.name.as_str()),
            _ => {}
        }
    }
    let mut parts = Vec::new();
    for (label, names) in [
        ("GOOD", good),
        ("BAD", bad),
        ("FAIL", fail),
        ("FORKED", forked),
    ] {
        if !names.is_empty() {
            parts.push(format!("{label}: {}", names.join(", ")));
        }
    }
    if parts.is_empty() {
        "no verdict from a configured signer".into()
    } else {
        parts.join("; ")
    }
}
