//! Signed verdicts for scenario tests and benchmarks.

use vouch_attest::{
    Digest, Evidence, FORMAT_VERSION, Inputs, Outcome, SecretKey, Subject, Verdict,
    VerifiedVerdict, sign,
};

/// A test-only key: seed = SHA-256(`tag`).
pub fn key(tag: &str) -> SecretKey {
    SecretKey::from_seed(Digest::of(tag.as_bytes()).as_bytes())
}

/// An Arch Linux verdict of `k` at `seq` about package `name` with sha256
/// `sha`.
pub fn verdict(
    k: &SecretKey,
    seq: u64,
    prev: Digest,
    sha: Digest,
    name: &str,
    outcome: Outcome,
) -> VerifiedVerdict {
    let v = Verdict {
        version: FORMAT_VERSION,
        signer: k.public_key(),
        seq,
        prev,
        issued_at: 1_795_651_200 + seq,
        subject: Subject {
            distribution: "archlinux".into(),
            release: None,
            component: Some("extra".into()),
            architecture: "x86_64".into(),
            name: name.into(),
            version: "1.0-1".into(),
            filename: format!("{name}-1.0-1-x86_64.pkg.tar.zst"),
            sha256: sha,
        },
        inputs: Inputs {
            buildinfo_sha256: None,
            source_url: None,
            backend: "demo".into(),
            backend_version: "1".into(),
        },
        outcome,
        evidence: Evidence::default(),
    };
    // The fields above are valid by construction.
    sign(&v, k).expect("a well-formed test verdict signs")
}

/// A chain of `n` GOOD verdicts of `k`, entry `seq` about package
/// `pkg{seq}` with sha256 of `"{tag} {seq}"`.
pub fn chain(k: &SecretKey, n: u64, tag: &str) -> Vec<VerifiedVerdict> {
    let mut out: Vec<VerifiedVerdict> = Vec::with_capacity(n as usize);
    for seq in 0..n {
        let prev = out.last().map_or(Digest::ZERO, |v| v.id());
        let sha = Digest::of(format!("{tag} {seq}").as_bytes());
        out.push(verdict(
            k,
            seq,
            prev,
            sha,
            &format!("pkg{seq}"),
            Outcome::Good,
        ));
    }
    out
}

/// One signer's log: entry `seq` is `items[seq]` (sha256, package name,
/// outcome), chained.
pub fn log(k: &SecretKey, items: &[(Digest, &str, Outcome)]) -> Vec<VerifiedVerdict> {
    let mut out: Vec<VerifiedVerdict> = Vec::with_capacity(items.len());
    for (seq, (sha, name, outcome)) in items.iter().enumerate() {
        let prev = out.last().map_or(Digest::ZERO, |v| v.id());
        out.push(verdict(k, seq as u64, prev, *sha, name, *outcome));
    }
    out
}
