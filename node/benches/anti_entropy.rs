//! `cargo bench -p vouch-node --bench anti_entropy`: one anti-entropy
//! round between two stores holding the heads of 10,000 signers
//! (`VOUCH_BENCH_SIGNERS` to change it), when they agree and when 10 heads
//! differ: bytes on the wire (the CBOR of requests and answers, as the
//! request-response codec sends them) and time to answer and compare,
//! against the full exchange of every head in the same run.

use std::collections::HashSet;
use std::time::Instant;

use serde_bytes::ByteBuf;
use vouch_attest::{Digest, SecretKey, VerifiedVerdict};
use vouch_node::p2p::sync::{self, SyncRequest, SyncResponse};
use vouch_node::store::Store;

fn verdict(k: &SecretKey, seq: u64, prev: Digest, n: u64) -> VerifiedVerdict {
    let v = vouch_attest::Verdict {
        version: vouch_attest::FORMAT_VERSION,
        signer: k.public_key(),
        seq,
        prev,
        issued_at: 1_795_651_200 + seq,
        subject: vouch_attest::Subject {
            distribution: "archlinux".into(),
            release: None,
            component: Some("core".into()),
            architecture: "x86_64".into(),
            name: format!("pkg{n}"),
            version: "1-1".into(),
            filename: format!("pkg{n}-1-1-x86_64.pkg.tar.zst"),
            sha256: Digest::of(format!("artifact {n}").as_bytes()),
        },
        inputs: vouch_attest::Inputs {
            buildinfo_sha256: None,
            source_url: None,
            backend: "bench".into(),
            backend_version: "1".into(),
        },
        outcome: vouch_attest::Outcome::Good,
        evidence: vouch_attest::Evidence::default(),
    };
    vouch_attest::sign(&v, k).expect("sign")
}

fn size<T: serde::Serialize>(v: &T) -> usize {
    serde_cbor::to_vec(v).map(|b| b.len()).unwrap_or(0)
}

/// One round as the asker runs it: digest, then the differing buckets'
/// heads. Bytes sent both ways, seconds, heads received.
fn digest_round(
    asker: &Store,
    peer: &Store,
    known: &HashSet<vouch_attest::PublicKey>,
) -> (usize, f64, usize) {
    let t = Instant::now();
    let mine = asker.head_digest().expect("digest");
    let req = SyncRequest::Digest {
        root: ByteBuf::from(mine.root.as_bytes().to_vec()),
    };
    let mut bytes = size(&req);
    let resp = sync::serve(peer, known, req);
    bytes += size(&resp);
    let mut heads = 0;
    if let SyncResponse::Buckets(theirs) = resp {
        let differ = sync::differing_buckets(&mine.buckets, &theirs);
        let req = SyncRequest::HeadsIn {
            buckets: ByteBuf::from(differ),
        };
        bytes += size(&req);
        let resp = sync::serve(peer, known, req);
        bytes += size(&resp);
        if let SyncResponse::Heads(h) = resp {
            heads = h.len();
        }
    }
    (bytes, t.elapsed().as_secs_f64(), heads)
}

/// The exchange of every head (the round before digests).
fn heads_round(peer: &Store, known: &HashSet<vouch_attest::PublicKey>) -> (usize, f64, usize) {
    let t = Instant::now();
    let req = SyncRequest::Heads;
    let mut bytes = size(&req);
    let resp = sync::serve(peer, known, req);
    bytes += size(&resp);
    let n = match &resp {
        SyncResponse::Heads(h) => h.len(),
        _ => 0,
    };
    (bytes, t.elapsed().as_secs_f64(), n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let signers: u64 = std::env::var("VOUCH_BENCH_SIGNERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let keys: Vec<SecretKey> = (0..signers)
        .map(|i| {
            SecretKey::from_seed(Digest::of(format!("bench signer {i}").as_bytes()).as_bytes())
        })
        .collect();
    let first: Vec<VerifiedVerdict> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| verdict(k, 0, Digest::ZERO, i as u64))
        .collect();
    let (a, b) = (
        Store::temporary().expect("store"),
        Store::temporary().expect("store"),
    );
    for chunk in first.chunks(1000) {
        a.apply(chunk, 16).expect("apply");
        b.apply(chunk, 16).expect("apply");
    }
    let known = HashSet::new();
    let runs = 9;
    let measure = |label: &str| {
        let mut d_time = Vec::new();
        let mut h_time = Vec::new();
        let mut d = (0, 0.0, 0);
        let mut h = (0, 0.0, 0);
        for _ in 0..runs {
            d = digest_round(&a, &b, &known);
            d_time.push(d.1);
            h = heads_round(&b, &known);
            h_time.push(h.1);
        }
        let (dt, ht) = (median(d_time), median(h_time));
        println!(
            "{label}: digest round {} bytes, {:.2} ms, {} heads received; every head {} bytes, {:.2} ms, {} heads; bytes {:.4}x, time {:.3}x",
            d.0,
            dt * 1e3,
            d.2,
            h.0,
            ht * 1e3,
            h.2,
            d.0 as f64 / h.0 as f64,
            dt / ht
        );
    };
    println!("{signers} signers, one head each, on both stores");
    measure("agree");
    // Ten signers move on b.
    let next: Vec<VerifiedVerdict> = keys
        .iter()
        .take(10)
        .zip(&first)
        .enumerate()
        .map(|(i, (k, v))| verdict(k, 1, v.id(), signers + i as u64))
        .collect();
    b.apply(&next, 16).expect("apply");
    measure("10 heads differ");
}
