//! `cargo bench -p vouch-node`: the issue-3 figures, each measured in this
//! run.
//!
//! (a) ingest through the whole pipeline (decode, batch verify, chain check,
//!     transactional write, group-commit flush) into an on-disk sled store,
//!     as a ratio to raw ed25519-dalek single verification of the same
//!     envelopes (goal >= 0.5);
//! (b) `POST /verdicts/lookup` for 2,000 artifacts against a store of
//!     1,000,000 verdicts from 5 signers, over loopback: time and bytes, JSON
//!     and CBOR;
//! (c) the store's disk size per verdict at 1,000,000 verdicts.
//!
//! `VOUCH_BENCH_VERDICTS` scales (b) and (c) down (default 1,000,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use vouch_attest::*;
use vouch_node::admission::{Admission, AdmissionConfig};
use vouch_node::config::Config;
use vouch_node::daemon::Daemon;
use vouch_node::datadir::DataDir;
use vouch_node::ingest::{Ingest, IngestConfig, Status};
use vouch_node::metrics::Metrics;
use vouch_node::store::Store;

const SIGNERS: usize = 5;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // (a)
    let per_signer = 10_000;
    let chains = make_chains(per_signer);
    let all: Vec<Vec<u8>> = interleave(&chains);
    let raw = raw_verify_rate(&all);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("store");
    let (ingest, writer) = Ingest::start(
        store.clone(),
        IngestConfig::default(),
        Arc::new(Metrics::new()),
        Arc::new(Admission::new(unlimited(), Default::default())),
        None,
    );
    let start = Instant::now();
    rt.block_on(ingest_all(&ingest, &all, 1000, 4));
    let secs = start.elapsed().as_secs_f64();
    let rate = all.len() as f64 / secs;
    drop(ingest);
    let _ = writer.join();
    assert_eq!(store.counts().expect("counts").verdicts, all.len() as u64);
    println!(
        "(a) ingest, {} verdicts from {SIGNERS} signers, batches of 1000, 4 submitters",
        all.len()
    );
    println!("    raw ed25519-dalek verify (baseline) {raw:>10.0} verdicts/s  1.00x");
    println!(
        "    whole pipeline into sled (durable)  {rate:>10.0} verdicts/s  {:.2}x (goal >= 0.5x)",
        rate / raw
    );
    drop(store);
    drop(dir);

    // (b), (c)
    let total: usize = std::env::var("VOUCH_BENCH_VERDICTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_signer = total / SIGNERS;
    let t = Instant::now();
    let chains = make_chains(per_signer);
    let all = interleave(&chains);
    drop(chains);
    println!(
        "\nsigned {} verdicts in {:.1} s",
        all.len(),
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.p2p.enabled = false;
    config.admission = unlimited();
    let data = DataDir::new(dir.path().join("node"));
    rt.block_on(async {
        let daemon = Daemon::start(data.clone(), config).await.expect("daemon");
        let t = Instant::now();
        ingest_all(&daemon.ingest, &all, 5000, 4).await;
        let ingest_secs = t.elapsed().as_secs_f64();
        println!("ingested {} verdicts in {ingest_secs:.1} s ({:.0}/s)", all.len(), all.len() as f64 / ingest_secs);
        daemon.store.flush().expect("flush");
        let size = daemon.store.size_on_disk().expect("size");
        let du = dir_size(&data.store());
        println!(
            "(c) disk: sled size_on_disk {:.1} MiB, files {:.1} MiB: {:.0} bytes per verdict (files {:.0}); envelopes average {:.0} bytes",
            size as f64 / 1048576.0,
            du as f64 / 1048576.0,
            size as f64 / all.len() as f64,
            du as f64 / all.len() as f64,
            all.iter().map(Vec::len).sum::<usize>() as f64 / all.len() as f64
        );

        // 2,000 artifacts, each rebuilt by all 5 signers.
        let shas: Vec<String> = (0..2000u64)
            .map(|i| artifact(i * (per_signer as u64 / 2000).max(1)).to_hex())
            .collect();
        let body = serde_json::json!({ "sha256": shas });
        let url = format!("http://{}/api/vouch/v1/verdicts/lookup", daemon.http_addr);
        let client = reqwest::Client::new();
        for (label, accept) in [("JSON", "application/json"), ("CBOR", "application/cbor")] {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..5 {
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("accept", accept)
                    .json(&body)
                    .send()
                    .await
                    .expect("lookup");
                let b = resp.bytes().await.expect("body");
                times.push(t.elapsed());
                bytes = b.len();
            }
            times.sort();
            println!(
                "(b) lookup of 2,000 artifacts ({} verdicts) in a store of {}: {label} median {:.0} ms (min {:.0} ms), {:.1} MiB",
                2000 * SIGNERS,
                all.len(),
                ms(times[2]),
                ms(times[0]),
                bytes as f64 / 1048576.0
            );
        }
        daemon.shutdown().await.expect("shutdown");
    });
}

/// The benchmark's signers are strangers to the node: lift the quotas.
fn unlimited() -> AdmissionConfig {
    AdmissionConfig {
        unknown_signer_max_verdicts: u64::MAX,
        unknown_signer_per_minute: u32::MAX,
        unknown_total_max_verdicts: u64::MAX,
        unknown_total_per_minute: u32::MAX,
        ..AdmissionConfig::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn ingest_all(ingest: &Ingest, all: &[Vec<u8>], batch: usize, submitters: usize) {
    // Submitters take consecutive batches round-robin, so each signer's
    // entries arrive in order within a submitter and the logs still chain
    // (out-of-order arrivals are held and then appended).
    let chunks: Vec<Vec<Vec<u8>>> = all.chunks(batch).map(<[Vec<u8>]>::to_vec).collect();
    let mut next = 0;
    while next < chunks.len() {
        let mut handles = Vec::new();
        for c in chunks.iter().skip(next).take(submitters) {
            let ingest = ingest.clone();
            let c = c.clone();
            handles.push(tokio::spawn(async move { ingest.submit("bench", c).await }));
        }
        next += submitters;
        for h in handles {
            let reports = h.await.expect("task").expect("ingest");
            assert!(
                reports
                    .iter()
                    .all(|r| matches!(r.status, Status::Accepted | Status::Pending)),
                "{:?}",
                reports
                    .iter()
                    .find(|r| !matches!(r.status, Status::Accepted | Status::Pending))
            );
        }
    }
}

fn raw_verify_rate(envelopes: &[Vec<u8>]) -> f64 {
    let inputs: Vec<(VerifyingKey, Vec<u8>, Signature)> = envelopes
        .iter()
        .take(5000)
        .map(|e| {
            let v = open(e).expect("valid");
            (
                VerifyingKey::from_bytes(v.signer().as_bytes()).expect("key"),
                pae(PAYLOAD_TYPE, v.payload()),
                Signature::from_bytes(v.signature()),
            )
        })
        .collect();
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for (k, m, s) in &inputs {
                k.verify(m, s).expect("valid");
            }
            inputs.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[2]
}

fn artifact(i: u64) -> Digest {
    Digest::of(format!("artifact {i}").as_bytes())
}

/// One chain per signer, each about artifacts 0..n, signed on two threads.
fn make_chains(n: usize) -> Vec<Vec<Vec<u8>>> {
    let keys: Vec<SecretKey> = (0..SIGNERS as u8)
        .map(|i| SecretKey::from_seed(&[i + 7; 32]))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .map(|k| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(n);
                    let mut prev = Digest::ZERO;
                    for seq in 0..n as u64 {
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
                                name: format!("package-{seq}"),
                                version: "1.2.3-1".into(),
                                filename: format!("package-{seq}-1.2.3-1-x86_64.pkg.tar.zst"),
                                sha256: artifact(seq),
                            },
                            inputs: Inputs {
                                buildinfo_sha256: Some(Digest::of(&seq.to_be_bytes())),
                                source_url: None,
                                backend: "archlinux-repro".into(),
                                backend_version: "20240101".into(),
                            },
                            outcome: Outcome::Good,
                            evidence: Evidence {
                                build_log: Some(Digest::of(&seq.to_le_bytes())),
                                diffoscope: None,
                            },
                        };
                        let s = sign(&v, k).expect("sign");
                        prev = s.id();
                        out.push(s.envelope().to_vec());
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signer thread"))
            .collect()
    })
}

/// Round-robin over the signers' chains.
fn interleave(chains: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    let n = chains.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(n * chains.len());
    for i in 0..n {
        for c in chains {
            if let Some(e) = c.get(i) {
                out.push(e.clone());
            }
        }
    }
    out
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        dir_size(&path)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
