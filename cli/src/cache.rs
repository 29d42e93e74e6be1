//! Answers kept for when no node answers: the signed envelopes of every
//! verdict and fork proof the nodes served, per artifact. Nothing in the
//! cache is trusted: each envelope is verified again when it is read, and a
//! file that does not verify is ignored.
//!
//! Layout: `DIR/verdicts/HEX(artifact).cbor` (a CBOR array of envelopes,
//! the latest answer about that artifact) and `DIR/forks/HEX(id).cbor`.

use std::collections::BTreeSet;
use std::path::Path;

use vouch_attest::{
    CheckedFork, Digest, ForkProof, MAX_ENVELOPE, MAX_FORK_PROOF, VerifiedVerdict, join_envelopes,
    split_envelopes, verify_batch,
};

/// Most envelopes kept per artifact.
const MAX_PER_ARTIFACT: usize = 4096;

/// Keeps what the nodes answered about `artifacts`. Errors are ignored: a
/// cache that cannot be written only costs the offline answer.
pub(crate) fn store(
    dir: &Path,
    artifacts: &[Digest],
    verdicts: &[VerifiedVerdict],
    forks: &[CheckedFork],
) {
    let vdir = dir.join("verdicts");
    let fdir = dir.join("forks");
    if std::fs::create_dir_all(&vdir).is_err() || std::fs::create_dir_all(&fdir).is_err() {
        return;
    }
    for a in artifacts {
        let mine: Vec<&[u8]> = verdicts
            .iter()
            .filter(|v| v.verdict().subject.sha256 == *a)
            .take(MAX_PER_ARTIFACT)
            .map(VerifiedVerdict::envelope)
            .collect();
        let path = vdir.join(format!("{}.cbor", a.to_hex()));
        if mine.is_empty() {
            continue;
        }
        let tmp = path.with_extension("partial");
        if std::fs::write(&tmp, join_envelopes(mine.into_iter())).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    for f in forks {
        let _ = std::fs::write(
            fdir.join(format!("{}.cbor", f.id.to_hex())),
            f.proof().encode(),
        );
    }
}

/// What the cache holds about `artifacts`, verified again.
pub(crate) fn load(dir: &Path, artifacts: &[Digest]) -> (Vec<VerifiedVerdict>, Vec<CheckedFork>) {
    let mut verdicts = Vec::new();
    let mut seen = BTreeSet::new();
    for a in artifacts {
        let path = dir.join("verdicts").join(format!("{}.cbor", a.to_hex()));
        let Ok(bytes) =
            crate::output::read_limited(&path, (MAX_PER_ARTIFACT * MAX_ENVELOPE) as u64)
        else {
            continue;
        };
        let Ok(items) = split_envelopes(&bytes, MAX_PER_ARTIFACT) else {
            continue;
        };
        for v in verify_batch(&items).into_iter().flatten() {
            if v.verdict().subject.sha256 == *a && seen.insert(v.id()) {
                verdicts.push(v);
            }
        }
    }
    let mut forks = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("forks")) {
        for e in rd.flatten().take(100_000) {
            if let Ok(bytes) = crate::output::read_limited(&e.path(), MAX_FORK_PROOF as u64)
                && let Ok(f) = ForkProof::open(&bytes)
            {
                forks.push(f);
            }
        }
    }
    (verdicts, forks)
}
