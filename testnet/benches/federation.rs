//! `cargo build --release && cargo bench -p vouch-testnet`: federation
//! figures with real `vouchd` processes (release build) on loopback.
//!
//! - propagation latency of a verdict to every node of a 10- and a 20-node
//!   net (p50, p99), measured by polling every node's HTTP API;
//! - catch-up: a fresh node joins and syncs 100,000 verdicts from its peers;
//!   its rate is compared with the same node's plain ingest rate (HTTP POST
//!   of another 100,000 verdicts), measured in the same run (goal >= 0.7).
//!
//! `VOUCH_BENCH_CATCHUP` scales the catch-up (default 100,000).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vouch_attest::*;
use vouch_testnet::fixtures;
use vouch_testnet::http::{heads, post_envelopes};
use vouch_testnet::net::{Options, Testnet};
use vouch_testnet::node::NodeProcess;

fn main() {
    for n in [10usize, 20] {
        propagation(n, 30);
    }
    let total: usize = std::env::var("VOUCH_BENCH_CATCHUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    catch_up(total);
}

fn key(tag: &str, i: usize) -> SecretKey {
    SecretKey::from_seed(Digest::of(format!("bench {tag} {i}").as_bytes()).as_bytes())
}

/// `signers` chains of `per` verdicts, signed on two threads.
fn chains(tag: &str, signers: usize, per: u64) -> Vec<(SecretKey, Vec<Vec<u8>>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..signers)
            .map(|i| {
                s.spawn(move || {
                    let k = key(tag, i);
                    let mut out = Vec::with_capacity(per as usize);
                    let mut prev = Digest::ZERO;
                    for seq in 0..per {
                        let sha = Digest::of(format!("{tag} {i} {seq}").as_bytes());
                        let signed = fixtures::verdict(
                            &k,
                            seq,
                            prev,
                            sha,
                            &format!("package-{seq}"),
                            Outcome::Good,
                        );
                        prev = signed.id();
                        out.push(signed.envelope().to_vec());
                    }
                    (k, out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signer"))
            .collect()
    })
}

fn head_seq(node: &NodeProcess, signer: &PublicKey) -> Option<u64> {
    heads(node.url()).ok()?.get(&signer.to_text()).map(|h| h.0)
}

fn post_all(node: &NodeProcess, envelopes: &[Vec<u8>], batch: usize) {
    let token = node.admin_token().expect("token");
    for c in envelopes.chunks(batch) {
        post_envelopes(
            node.url(),
            &token,
            join_envelopes(c.iter().map(Vec::as_slice)),
        )
        .expect("post");
    }
}

fn propagation(n: usize, count: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut net = Testnet::start(dir.path(), n, Options::default()).expect("testnet");
    net.wait_connected(2, Duration::from_secs(120))
        .expect("connected");
    std::thread::sleep(Duration::from_secs(3));
    let (k, envs) = chains("propagation", 1, count).pop().expect("chain");
    let mut samples = Vec::new();
    for (i, e) in envs.iter().enumerate() {
        let origin = i % n;
        let start = Instant::now();
        post_all(&net.nodes[origin], std::slice::from_ref(e), 1);
        let mut arrived: BTreeMap<usize, Duration> = BTreeMap::new();
        while arrived.len() < n {
            for (j, node) in net.nodes.iter().enumerate() {
                if !arrived.contains_key(&j)
                    && head_seq(node, &k.public_key()).is_some_and(|s| s >= i as u64)
                {
                    arrived.insert(j, start.elapsed());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "verdict {i} did not reach every node"
            );
        }
        samples.extend(
            arrived
                .into_iter()
                .filter(|(j, _)| *j != origin)
                .map(|(_, d)| d),
        );
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "propagation, {n} nodes, {count} verdicts ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples.last().expect("samples").as_secs_f64() * 1e3
    );
}

fn catch_up(total: usize) {
    let signers = 5;
    let per = (total / signers) as u64;
    let t = Instant::now();
    let first = chains("catch-up", signers, per);
    let second = chains("ingest", signers, per);
    println!(
        "signed {} verdicts in {:.1} s",
        2 * signers as u64 * per,
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let mut net = Testnet::start(
        dir.path(),
        3,
        Options {
            sync_interval: 1,
            ..Options::default()
        },
    )
    .expect("testnet");
    net.wait_connected(2, Duration::from_secs(60))
        .expect("connected");
    // Seed the net: the first set goes to node 1 and spreads.
    let interleaved: Vec<Vec<u8>> = interleave(&first);
    post_all(&net.nodes[0], &interleaved, 5000);
    let signer_keys: Vec<PublicKey> = first.iter().map(|(k, _)| k.public_key()).collect();
    net.wait_all(Duration::from_secs(600), |n| {
        Ok(signer_keys.iter().all(|k| head_seq(n, k) == Some(per - 1)))
    })
    .expect("the net holds the first set");

    // A fresh node joins and catches up.
    let start = Instant::now();
    let fresh = net.add_node().expect("fresh node");
    loop {
        if signer_keys
            .iter()
            .all(|k| head_seq(fresh, k) == Some(per - 1))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "catch-up did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sync_secs = start.elapsed().as_secs_f64();
    let sync_rate = total as f64 / sync_secs;

    // The same node's plain ingest rate: POST the second set, with the
    // other nodes stopped so that relaying to them does not weigh on it.
    let fresh_index = net.nodes.len() - 1;
    for n in &mut net.nodes[..fresh_index] {
        n.stop().expect("stop");
    }
    let fresh = &net.nodes[fresh_index];
    let interleaved: Vec<Vec<u8>> = interleave(&second);
    let start = Instant::now();
    post_all(fresh, &interleaved, 5000);
    let ingest_secs = start.elapsed().as_secs_f64();
    let ingest_rate = total as f64 / ingest_secs;
    println!(
        "catch-up of a fresh node: {total} verdicts in {sync_secs:.1} s = {sync_rate:.0} verdicts/s"
    );
    println!(
        "same node alone, plain ingest (HTTP POST, batches of 5000): {ingest_rate:.0} verdicts/s"
    );
    println!(
        "catch-up / ingest = {:.2} (goal >= 0.7)",
        sync_rate / ingest_rate
    );
}

fn interleave(chains: &[(SecretKey, Vec<Vec<u8>>)]) -> Vec<Vec<u8>> {
    let n = chains.iter().map(|c| c.1.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..n {
        for (_, c) in chains {
            if let Some(e) = c.get(i) {
                out.push(e.clone());
            }
        }
    }
    out
}
