//! Shared test helpers: test keys and signed verdicts.
#![allow(dead_code)]

use vouch_attest::*;

pub fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(Digest::of(format!("vouch test key {name}").as_bytes()).as_bytes())
}

pub fn artifact(n: u64) -> Digest {
    Digest::of(format!("artifact {n}").as_bytes())
}

pub fn verdict(k: &SecretKey, seq: u64, prev: Digest, sha: Digest, outcome: Outcome) -> Verdict {
    Verdict {
        version: FORMAT_VERSION,
        signer: k.public_key(),
        seq,
        prev,
        issued_at: 1_795_651_200 + seq,
        subject: Subject {
            distribution: "archlinux".into(),
            release: None,
            component: Some("core".into()),
            architecture: "x86_64".into(),
            name: format!("pkg-{}", seq % 7),
            version: "1.0-1".into(),
            filename: format!("pkg-{}-1.0-1-x86_64.pkg.tar.zst", seq % 7),
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
    }
}

/// `n` chained verdicts by `k`, verdict i about artifact(i).
pub fn chain(k: &SecretKey, n: u64) -> Vec<VerifiedVerdict> {
    chain_of(k, n, artifact)
}

/// `n` chained verdicts by `k`, all about the artifact `sha`.
pub fn chain_about(k: &SecretKey, n: u64, sha: Digest) -> Vec<VerifiedVerdict> {
    chain_of(k, n, |_| sha)
}

fn chain_of(k: &SecretKey, n: u64, about: impl Fn(u64) -> Digest) -> Vec<VerifiedVerdict> {
    let mut out: Vec<VerifiedVerdict> = Vec::new();
    let mut prev = Digest::ZERO;
    for seq in 0..n {
        let v = sign(&verdict(k, seq, prev, about(seq), Outcome::Good), k).unwrap();
        prev = v.id();
        out.push(v);
    }
    out
}

/// An Arch job of `source` whose artifacts are `files` (name, content).
pub fn job(source: &str, files: &[(&str, &[u8])], mirror: &str) -> vouch_node::sync::Job {
    vouch_node::sync::Job {
        distribution: "archlinux".into(),
        release: None,
        component: "core".into(),
        architecture: "x86_64".into(),
        source: source.into(),
        version: "1.0-1".into(),
        mirror: mirror.into(),
        subjects: files
            .iter()
            .map(|(name, content)| vouch_node::sync::JobSubject {
                name: name.to_string(),
                version: "1.0-1".into(),
                filename: format!("{name}-1.0-1-x86_64.pkg.tar.zst"),
                sha256: Digest::of(content),
                path: format!("{name}-1.0-1-x86_64.pkg.tar.zst"),
            })
            .collect(),
        source_dir: None,
        source_files: Vec::new(),
        buildinfo_url: None,
    }
}

/// Waits (up to 10 s) for an ingest writer thread to end, once every
/// `Ingest` handle is dropped, so that the temporary store it holds is
/// removed before the test process exits.
pub fn join_writer(writer: std::thread::JoinHandle<()>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !writer.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(writer.is_finished(), "the ingest writer did not end");
    writer.join().unwrap();
}
