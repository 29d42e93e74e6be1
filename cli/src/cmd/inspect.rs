//! `vouch inspect`: decode, verify, print.

use anyhow::Result;
use serde_json::json;
use vouch_attest::{Envelope, Error, MAX_ENVELOPE, Verdict, decode_verdict};

use crate::args::InspectArgs;
use crate::exit::Exit;
use crate::output;

pub(crate) fn run(a: &InspectArgs) -> Result<Exit> {
    let bytes = output::read_limited(&a.file, MAX_ENVELOPE as u64 * 4)?;
    // Decode as far as possible, so that a bad signature still shows what
    // it claims.
    let (verdict, id, result) = match Envelope::decode(&bytes) {
        Err(e) => (None, None, Err(Error::from(e))),
        Ok(env) => {
            let decoded = decode_verdict(env.payload()).ok();
            let id = env.id();
            let result = env.verify().map(|_| ());
            (decoded, Some(id), result)
        }
    };
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(Error::Signature(_)) => Exit::Rejected,
        Err(_) => Exit::Input,
    };
    if a.json {
        output::json(&json!({
            "file": a.file,
            "valid": result.is_ok(),
            "id": id,
            "verdict": verdict,
            "error": result.as_ref().err().map(|e| json!({"code": e.code(), "message": e.to_string()})),
        }))?;
    } else {
        let mut s = String::new();
        match &result {
            Ok(()) => s += "signature   VALID\n",
            Err(e) => s += &format!("signature   INVALID: {e} [{}]\n", e.code()),
        }
        if let Some(id) = id {
            s += &format!("id          {id}\n");
        }
        if let Some(v) = &verdict {
            s += &describe(v);
        }
        output::text(&s)?;
    }
    Ok(exit)
}

fn describe(v: &Verdict) -> String {
    let s = &v.subject;
    let mut out = format!(
        "signer      {}\nseq         {}\nprev        {}\nissued_at   {} ({})\n",
        v.signer,
        v.seq,
        v.prev,
        output::rfc3339(v.issued_at),
        v.issued_at
    );
    let place = [
        Some(&s.distribution),
        s.release.as_ref(),
        s.component.as_ref(),
        Some(&s.architecture),
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect::<Vec<_>>()
    .join("/");
    out += &format!(
        "subject     {} {} ({place})\nfilename    {}\nsha256      {}\n",
        s.name, s.version, s.filename, s.sha256
    );
    out += &format!(
        "backend     {} {}\n",
        v.inputs.backend, v.inputs.backend_version
    );
    if let Some(b) = &v.inputs.buildinfo_sha256 {
        out += &format!("buildinfo   {b}\n");
    }
    if let Some(u) = &v.inputs.source_url {
        out += &format!("source      {u}\n");
    }
    out += &format!("outcome     {}\n", v.outcome);
    if let Some(l) = &v.evidence.build_log {
        out += &format!("build log   {l}\n");
    }
    if let Some(d) = &v.evidence.diffoscope {
        out += &format!("diffoscope  {d}\n");
    }
    out
}
