//! `cargo bench -p vouch-node --bench ingest`: the store at scale, every
//! figure measured in this run.
//!
//! `VOUCH_BENCH_VERDICTS` verdicts (default 1,000,000) from 20 signers over
//! 500,000 artifacts (each signer judges artifacts 0, 1, 2, … in order, so
//! every artifact a lookup names has a verdict from each of the 20) are
//! signed in chunks of 100,000 and ingested through the whole pipeline
//! (decode, batch verify, chain check, segment write, index transaction,
//! group-commit sync) of an in-process node. Reported:
//!
//! - ingest rate, as a ratio to raw ed25519-dalek single verification of the
//!   same envelopes, overall and for the first and last chunk (flatness);
//! - disk bytes per verdict (segments, keyspace, total) against the raw envelope
//!   bytes;
//! - then the real `vouchd` binary is started on the store: start-up time
//!   until its HTTP API answers, `POST /verdicts/lookup` for 2,000
//!   artifacts (40,000 verdicts), its RSS (current and peak);
//! - the time of `vouchd check` on the store.
//!
//! With `VOUCH_BENCH_KEEP` set, the store is left behind (its path printed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use vouch_attest::*;
use vouch_node::admission::AdmissionConfig;
use vouch_node::config::Config;
use vouch_node::daemon::Daemon;
use vouch_node::datadir::DataDir;
use vouch_node::ingest::{Ingest, Status};

const SIGNERS: u64 = 20;
const ARTIFACTS: u64 = 500_000;
const CHUNK: u64 = 100_000;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let total: u64 = std::env::var("VOUCH_BENCH_VERDICTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(CHUNK);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<SecretKey> = (0..SIGNERS as u8)
        .map(|i| SecretKey::from_seed(&[i + 7; 32]))
        .collect();
    let mut prevs = vec![Digest::ZERO; SIGNERS as usize];
    let per_chunk = CHUNK / SIGNERS;
    let keep = std::env::var_os("VOUCH_BENCH_KEEP").is_some();

    let dir =
        tempfile::tempdir_in(std::env::var_os("VOUCH_BENCH_DIR").unwrap_or("/var/tmp".into()))
            .expect("tempdir");
    let root = dir.path().join("node");
    let data = DataDir::new(&root);
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.p2p.enabled = false;
    config.admission = unlimited();

    let mut raw = 0.0;
    let mut held = 0u64;
    let mut raw_bytes = 0u64;
    let mut chunk_secs = Vec::new();
    let (mut compress_secs, mut compressed) = (0.0, 0);
    rt.block_on(async {
        let daemon = Daemon::start(data.clone(), config).await.expect("daemon");
        let mut done = 0u64;
        while done < total {
            let first_seq = done / SIGNERS;
            let chunk = make_chunk(&keys, &mut prevs, first_seq, per_chunk);
            if done == 0 {
                raw = raw_verify_rate(&chunk);
            }
            raw_bytes += chunk.iter().map(|e| e.len() as u64).sum::<u64>();
            let t = Instant::now();
            held += ingest_all(&daemon.ingest, &chunk, 1000, 4).await;
            chunk_secs.push(t.elapsed().as_secs_f64());
            done += chunk.len() as u64;
            if chunk_secs.len() % 10 == 0 {
                eprintln!(
                    "  {done} verdicts, last chunk {:.0}/s",
                    chunk.len() as f64 / chunk_secs[chunk_secs.len() - 1]
                );
            }
        }
        daemon.store.flush().expect("flush");
        // The node compresses full segments once a minute; finish the rest.
        let store = daemon.store.clone();
        let t = Instant::now();
        let c = tokio::task::spawn_blocking(move || store.compress_segments())
            .await
            .expect("task")
            .expect("compress");
        compress_secs = t.elapsed().as_secs_f64();
        compressed = c.segments;
        daemon.shutdown().await.expect("shutdown");
    });
    let ingest_secs: f64 = chunk_secs.iter().sum();
    let rate = total as f64 / ingest_secs;
    let first = CHUNK as f64 / chunk_secs[0];
    let last = CHUNK as f64 / chunk_secs[chunk_secs.len() - 1];
    println!("{total} verdicts from {SIGNERS} signers over {ARTIFACTS} artifacts");
    println!("ingest (batches of 1000, 4 submitters, durable group commits):");
    println!("    raw ed25519-dalek verify (baseline) {raw:>8.0} verdicts/s  1.00x");
    println!(
        "    whole pipeline into the store       {rate:>8.0} verdicts/s  {:.2}x (goal >= 1.0x)",
        rate / raw
    );
    println!(
        "    first chunk {first:.0}/s, last chunk {last:.0}/s: last/first {:.2}",
        last / first
    );
    // Each tenth of the run (its chunks' verdicts over their time).
    let tenth = chunk_secs.len().div_ceil(10);
    let tenths: Vec<String> = chunk_secs
        .chunks(tenth)
        .map(|c| {
            format!(
                "{:.0}",
                (c.len() as u64 * CHUNK) as f64 / c.iter().sum::<f64>()
            )
        })
        .collect();
    println!("    by tenths of the run, verdicts/s: {}", tenths.join(" "));
    println!(
        "    held until a gap closed, then appended: {held} ({:.1}%)",
        held as f64 * 100.0 / total as f64
    );

    let store = data.store();
    let seg = dir_size(&store.join("segments"));
    let all = dir_size(&store);
    let keyspace = all - seg;
    let per = |b: u64| b as f64 / total as f64;
    let envelope = raw_bytes as f64 / total as f64;
    // Uncompressed, the segments hold each envelope with an 8-byte head.
    let seg_raw = raw_bytes + 8 * total;
    println!(
        "disk per verdict, envelopes {envelope:.0} B: keyspace (indexes, heads, meta) {:.0} B; segments uncompressed {:.0} B, compressed {:.0} B; total {:.0} B = {:.2}x raw uncompressed (goal <= 1.3x), {:.0} B = {:.2}x compressed (goal <= 1.0x)",
        per(keyspace),
        per(seg_raw),
        per(seg),
        per(keyspace + seg_raw),
        per(keyspace + seg_raw) / envelope,
        per(all),
        per(all) / envelope
    );
    println!(
        "    (the last {compressed} full segments compressed after the ingest in {compress_secs:.1} s; the node compressed the others while ingesting)"
    );

    // The real daemon on this store.
    let vouchd = env!("CARGO_BIN_EXE_vouchd");
    let t = Instant::now();
    let mut child = Command::new(vouchd)
        .args(["--data-dir"])
        .arg(&root)
        .args(["run", "--no-p2p", "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(if keep {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("vouchd");
    let client = reqwest::Client::new();
    let get_ok = |url: String| {
        rt.block_on(async {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    };
    let base = loop {
        if let Ok(addr) = std::fs::read_to_string(data.http_addr()) {
            let base = format!("http://{}", addr.trim());
            if get_ok(format!("{base}/api/vouch/v1/status")) {
                break base;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "vouchd did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let startup = t.elapsed();
    println!(
        "vouchd start-up until its API answers: {:.2} s (goal < 2 s)",
        startup.as_secs_f64()
    );

    let covered = (total / SIGNERS).min(ARTIFACTS);
    let shas: Vec<String> = (0..2000u64)
        .map(|i| artifact(i * covered / 2000).to_hex())
        .collect();
    let body = serde_json::json!({ "sha256": shas });
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let b = rt.block_on(async {
            client
                .post(format!("{base}/api/vouch/v1/verdicts/lookup"))
                .header("accept", "application/json")
                .json(&body)
                .send()
                .await
                .expect("lookup")
                .bytes()
                .await
                .expect("body")
        });
        times.push(t.elapsed());
        bytes = b.len();
    }
    times.sort();
    println!(
        "lookup of 2,000 artifacts ({} verdicts): median {:.0} ms (min {:.0} ms), {:.1} MiB JSON",
        2000 * SIGNERS,
        ms(times[3]),
        ms(times[0]),
        bytes as f64 / 1048576.0
    );
    let (rss, hwm) = rss(child.id());
    println!("vouchd RSS after the lookups: {rss:.0} MiB (peak {hwm:.0} MiB; goal < 512 MiB)");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();

    let t = Instant::now();
    let out = Command::new(vouchd)
        .args(["--data-dir"])
        .arg(&root)
        .arg("check")
        .output()
        .expect("vouchd check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "vouchd check: {:.1} s ({})",
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    if keep {
        println!("the store is kept in {}", dir.keep().display());
    }
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

/// Current and peak resident memory of process `pid`, in MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Submits `all`; returns how many were held (arrived ahead of a gap).
async fn ingest_all(ingest: &Ingest, all: &[Vec<u8>], batch: usize, submitters: usize) -> u64 {
    use futures::StreamExt as _;
    // `submitters` batches in flight at all times, started in order, so each
    // signer's entries mostly arrive in order (those that overtake are held
    // and then appended).
    let mut answers = futures::stream::iter(all.chunks(batch).map(|c| {
        let ingest = ingest.clone();
        let c = c.to_vec();
        async move { ingest.submit("bench", c).await }
    }))
    .buffer_unordered(submitters);
    let mut held = 0;
    while let Some(answer) = answers.next().await {
        let reports = answer.expect("ingest");
        held += reports
            .iter()
            .filter(|r| r.status == Status::Pending)
            .count() as u64;
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
    held
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

/// The next `n` verdicts of every signer from `first_seq`, signed on two
/// threads, round-robin over the signers.
fn make_chunk(keys: &[SecretKey], prevs: &mut [Digest], first_seq: u64, n: u64) -> Vec<Vec<u8>> {
    let half = keys.len() / 2;
    let (k1, k2) = keys.split_at(half);
    let (p1, p2) = prevs.split_at_mut(half);
    let chains: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let a = scope.spawn(|| sign_chains(k1, p1, first_seq, n));
        let b = scope.spawn(|| sign_chains(k2, p2, first_seq, n));
        let mut out = a.join().expect("signer thread");
        out.extend(b.join().expect("signer thread"));
        out
    });
    let mut out = Vec::with_capacity(chains.len() * n as usize);
    for i in 0..n as usize {
        for c in &chains {
            out.push(c[i].clone());
        }
    }
    out
}

fn sign_chains(
    keys: &[SecretKey],
    prevs: &mut [Digest],
    first_seq: u64,
    n: u64,
) -> Vec<Vec<Vec<u8>>> {
    keys.iter()
        .zip(prevs.iter_mut())
        .map(|(k, prev)| {
            (first_seq..first_seq + n)
                .map(|seq| {
                    let a = seq % ARTIFACTS;
                    let v = Verdict {
                        version: FORMAT_VERSION,
                        signer: k.public_key(),
                        seq,
                        prev: *prev,
                        issued_at: 1_795_651_200 + seq,
                        subject: Subject {
                            distribution: "archlinux".into(),
                            release: None,
                            component: Some("extra".into()),
                            architecture: "x86_64".into(),
                            name: format!("package-{a}"),
                            version: format!("1.2.{}-1", seq / ARTIFACTS),
                            filename: format!(
                                "package-{a}-1.2.{}-1-x86_64.pkg.tar.zst",
                                seq / ARTIFACTS
                            ),
                            sha256: artifact(a),
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
                    *prev = s.id();
                    s.envelope().to_vec()
                })
                .collect()
        })
        .collect()
}

fn dir_size(p: &Path) -> u64 {
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
