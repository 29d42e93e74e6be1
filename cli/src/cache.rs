//! Answers kept for when no node answers: the signed envelopes of every
//! verdict and fork proof the nodes served, in one bundle file
//! (`DIR/answers.bundle`, the format of `spec/bundle.md`), rewritten once
//! per run: the verdicts about the artifacts just asked replace the older
//! ones about them, the rest is kept (at most [`MAX_CACHED`] verdicts).
//! Nothing in the cache is trusted: each envelope is verified again when
//! it is used, and one that does not verify is ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use vouch_attest::{Bundle, CheckedFork, Digest, Envelope, ForkProof, VerifiedVerdict};

/// Most verdicts kept.
const MAX_CACHED: usize = 1_000_000;
/// Most fork proofs kept.
const MAX_FORKS: usize = 10_000;

fn file(dir: &Path) -> PathBuf {
    dir.join("answers.bundle")
}

fn read(dir: &Path) -> Option<Bundle> {
    let bytes = crate::output::read_limited(&file(dir), vouch_attest::MAX_BUNDLE as u64).ok()?;
    Bundle::decode(&bytes).ok()
}

/// The subject sha256 an envelope claims (not verified).
fn claimed_subject(envelope: &[u8]) -> Option<Digest> {
    Envelope::decode(envelope)
        .ok()?
        .unverified_verdict()
        .ok()
        .map(|v| v.subject.sha256)
}

/// Keeps what the nodes answered about `artifacts`. Errors are ignored: a
/// cache that cannot be written only costs the offline answer.
pub(crate) fn store(
    dir: &Path,
    artifacts: &[Digest],
    verdicts: &[VerifiedVerdict],
    forks: &[CheckedFork],
) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let asked: BTreeSet<Digest> = artifacts.iter().copied().collect();
    let old = read(dir);
    let mut envelopes: Vec<Vec<u8>> = verdicts.iter().map(|v| v.envelope().to_vec()).collect();
    let mut proofs: Vec<Vec<u8>> = forks.iter().map(|f| f.proof().encode()).collect();
    let mut all_artifacts: BTreeSet<Digest> = asked.clone();
    if let Some(old) = old {
        all_artifacts.extend(old.artifacts.iter().copied());
        for e in old.verdicts {
            if envelopes.len() >= MAX_CACHED {
                break;
            }
            if claimed_subject(&e).is_some_and(|s| !asked.contains(&s)) {
                envelopes.push(e);
            }
        }
        proofs.extend(old.forks);
    }
    proofs.sort();
    proofs.dedup();
    proofs.truncate(MAX_FORKS);
    // The bundle wants them sorted by the sha256 of their bytes, unique.
    let mut keyed: Vec<(Digest, Vec<u8>)> =
        envelopes.into_iter().map(|e| (Digest::of(&e), e)).collect();
    keyed.sort_by_key(|x| x.0);
    keyed.dedup_by_key(|x| x.0);
    let mut fkeyed: Vec<(Digest, Vec<u8>)> =
        proofs.into_iter().map(|p| (Digest::of(&p), p)).collect();
    fkeyed.sort_by_key(|x| x.0);
    fkeyed.dedup_by_key(|x| x.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let bundle = Bundle {
        created_at: now,
        artifacts: all_artifacts.into_iter().collect(),
        verdicts: keyed.into_iter().map(|x| x.1).collect(),
        forks: fkeyed.into_iter().map(|x| x.1).collect(),
    };
    let path = file(dir);
    let tmp = path.with_extension("partial");
    if std::fs::write(&tmp, bundle.encode()).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// What the cache holds about `artifacts`, verified again.
pub(crate) fn load(dir: &Path, artifacts: &[Digest]) -> (Vec<VerifiedVerdict>, Vec<CheckedFork>) {
    let Some(bundle) = read(dir) else {
        return (Vec::new(), Vec::new());
    };
    let wanted: BTreeSet<Digest> = artifacts.iter().copied().collect();
    let relevant: Vec<&[u8]> = bundle
        .verdicts
        .iter()
        .filter(|e| claimed_subject(e).is_some_and(|s| wanted.contains(&s)))
        .map(Vec::as_slice)
        .collect();
    let verdicts = vouch_attest::verify_batch(&relevant)
        .into_iter()
        .flatten()
        .filter(|v| wanted.contains(&v.verdict().subject.sha256))
        .collect();
    let forks = bundle
        .forks
        .iter()
        .filter_map(|f| ForkProof::open(f).ok())
        .collect();
    (verdicts, forks)
}
