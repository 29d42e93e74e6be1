//! `cargo bench -p vouch-attest`: verification throughput, each figure as
//! verdicts per second and as a ratio to raw ed25519-dalek single
//! verification measured in the same run.
//!
//! Goals (issue 2): decode + verify >= 0.8x raw; batch of 256 >= 1.8x raw.
//! vouch verifies with the cofactored (ZIP-215) rule; "raw" is
//! ed25519-dalek's cofactorless single verification.
//! Each figure is the median of several rounds, so one noisy round on a
//! shared machine does not decide it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use vouch_attest::*;

const ROUNDS: usize = 7;
const POOL: usize = 1024;

fn main() {
    let envelopes = make_envelopes(POOL);
    let raw_inputs: Vec<(VerifyingKey, Vec<u8>, Signature)> = envelopes
        .iter()
        .map(|e| {
            let v = open(e).expect("bench envelopes verify");
            let key = VerifyingKey::from_bytes(v.signer().as_bytes()).expect("valid key");
            (
                key,
                pae(PAYLOAD_TYPE, v.payload()),
                Signature::from_bytes(v.signature()),
            )
        })
        .collect();

    let raw = rate(|| {
        for (k, m, s) in &raw_inputs {
            black_box(k.verify(m, s)).expect("valid");
        }
        raw_inputs.len()
    });
    let raw_strict = rate(|| {
        for (k, m, s) in &raw_inputs {
            black_box(k.verify_strict(m, s)).expect("valid");
        }
        raw_inputs.len()
    });
    let decode_verify = rate(|| {
        for e in &envelopes {
            black_box(open(e)).expect("valid");
        }
        envelopes.len()
    });
    let decode_only = rate(|| {
        for e in &envelopes {
            let env = Envelope::decode(e).expect("valid");
            black_box(decode_verdict(env.payload())).expect("valid");
        }
        envelopes.len()
    });
    let key_parse = rate(|| {
        for (k, _, _) in &raw_inputs {
            black_box(PublicKey::from_bytes(k.as_bytes())).expect("valid");
        }
        raw_inputs.len()
    });
    println!(
        "decode only (no signature check): {decode_only:.0}/s; key decompression: {key_parse:.0}/s"
    );
    let mut rows = vec![
        ("raw ed25519-dalek verify (baseline)".to_string(), raw),
        ("raw ed25519-dalek verify_strict".to_string(), raw_strict),
        ("envelope decode + verify (open)".to_string(), decode_verify),
    ];
    for size in [64usize, 256, 1024] {
        let chunks: Vec<Vec<&[u8]>> = envelopes
            .chunks(size)
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        let r = rate(|| {
            let mut n = 0;
            for c in &chunks {
                let out = black_box(verify_batch(c));
                debug_assert!(out.iter().all(Result::is_ok));
                n += out.len();
            }
            n
        });
        rows.push((format!("decode + batch verify, batches of {size}"), r));
    }
    println!(
        "{:<44} {:>14} {:>10}",
        "measurement", "verdicts/s", "vs raw"
    );
    for (name, r) in &rows {
        println!("{name:<44} {r:>14.0} {:>9.2}x", r / raw);
    }
    let goal = |name: &str, got: f64, want: f64| {
        println!(
            "goal {name}: {got:.2}x (want >= {want:.1}x) {}",
            if got >= want { "met" } else { "NOT MET" }
        );
    };
    goal("decode + verify", decode_verify / raw, 0.8);
    goal("batch of 256", rows[4].1 / raw, 1.8);
}

/// Median verdicts per second over `ROUNDS` rounds of `f` (which returns
/// how many it verified), after one warm-up round.
fn rate(mut f: impl FnMut() -> usize) -> f64 {
    f();
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let n = f();
            n as f64 / start.elapsed().max(Duration::from_nanos(1)).as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}

/// `n` realistic envelopes from 16 signers, each signer's a valid chain.
fn make_envelopes(n: usize) -> Vec<Vec<u8>> {
    let keys: Vec<SecretKey> = (0..16u8)
        .map(|i| SecretKey::from_seed(&[i + 1; 32]))
        .collect();
    let mut prev = vec![Digest::ZERO; keys.len()];
    let mut seq = vec![0u64; keys.len()];
    (0..n)
        .map(|i| {
            let k = i % keys.len();
            let v = Verdict {
                version: FORMAT_VERSION,
                signer: keys[k].public_key(),
                seq: seq[k],
                prev: prev[k],
                issued_at: 1_795_651_200 + i as u64,
                subject: Subject {
                    distribution: "archlinux".into(),
                    release: None,
                    component: Some("extra".into()),
                    architecture: "x86_64".into(),
                    name: format!("package-{i}"),
                    version: "1.2.3-1".into(),
                    filename: format!("package-{i}-1.2.3-1-x86_64.pkg.tar.zst"),
                    sha256: Digest::of(&i.to_be_bytes()),
                },
                inputs: Inputs {
                    buildinfo_sha256: Some(Digest::of(b"buildinfo")),
                    source_url: None,
                    backend: "archlinux-repro".into(),
                    backend_version: "20240101".into(),
                },
                outcome: Outcome::Good,
                evidence: Evidence {
                    build_log: Some(Digest::of(b"log")),
                    diffoscope: None,
                },
            };
            let signed = sign(&v, &keys[k]).expect("sign");
            prev[k] = signed.id();
            seq[k] += 1;
            signed.envelope().to_vec()
        })
        .collect()
}
