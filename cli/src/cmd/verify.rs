//! `vouch verify`: an artifact against a policy, with verdicts from files.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use comfy_table::Table;
use serde_json::json;
use vouch_attest::{
    CheckedFork, Decision, Digest, ForkProof, Hasher, MAX_FORK_PROOF, SignerState, VerifiedVerdict,
    split_envelopes, verify_batch,
};

use crate::args::VerifyArgs;
use crate::exit::Exit;
use crate::output;

/// Most envelopes read from one file.
const MAX_PER_FILE: usize = 100_000;

pub(crate) fn run(a: &VerifyArgs) -> Result<Exit> {
    let policy = super::policy::load(&a.policy)?;
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let decision = policy.evaluate(&artifact, &verdicts, &forks, now);
    if a.json {
        let mut value = serde_json::to_value(&decision)?;
        value["dropped"] = json!(dropped);
        output::json(&value)?;
    } else {
        output::text(&render(&decision, &dropped))?;
    }
    Ok(decision.status.into())
}

fn hash_file(path: &Path) -> Result<Digest> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
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
