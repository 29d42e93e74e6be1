//! `vouch sign`: a verdict from JSON to a signed CBOR envelope.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use serde_json::json;
use vouch_attest::{
    Digest, Evidence, FORMAT_VERSION, Inputs, Outcome, PublicKey, Subject, Verdict, intoto,
    read_secret_key, sign,
};

use crate::args::SignArgs;
use crate::exit::Exit;
use crate::output;

/// The JSON a user writes; missing fields take the defaults in `--help`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Draft {
    version: Option<u64>,
    signer: Option<PublicKey>,
    seq: Option<u64>,
    prev: Option<Digest>,
    issued_at: Option<u64>,
    subject: Subject,
    inputs: Inputs,
    outcome: Outcome,
    #[serde(default)]
    evidence: Evidence,
}

pub(crate) fn run(a: &SignArgs) -> Result<Exit> {
    let key = read_secret_key(&a.key)?;
    let text = output::read_limited(&a.verdict, 1 << 20)?;
    let draft: Draft = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a verdict", a.verdict.display()))?;
    if let Some(signer) = draft.signer
        && signer != key.public_key()
    {
        bail!(
            "{}: signer {signer} is not the key in {} ({})",
            a.verdict.display(),
            a.key.display(),
            key.public_key()
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let verdict = Verdict {
        version: draft.version.unwrap_or(FORMAT_VERSION),
        signer: key.public_key(),
        seq: draft.seq.unwrap_or(0),
        prev: draft.prev.unwrap_or(Digest::ZERO),
        issued_at: draft.issued_at.unwrap_or(now),
        subject: draft.subject,
        inputs: draft.inputs,
        outcome: draft.outcome,
        evidence: draft.evidence,
    };
    let signed = sign(&verdict, &key).with_context(|| format!("{}", a.verdict.display()))?;
    std::fs::write(&a.out, signed.envelope())
        .with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(path) = &a.intoto {
        let exported = intoto::export(&signed, &key)?;
        std::fs::write(path, exported).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        output::json(&json!({
            "id": signed.id(),
            "out": a.out,
            "bytes": signed.envelope().len(),
            "intoto": a.intoto,
        }))?;
    } else {
        output::text(&format!(
            "signed {} ({} bytes) -> {}\n",
            signed.id(),
            signed.envelope().len(),
            a.out.display()
        ))?;
    }
    Ok(Exit::Ok)
}
