//! `cargo bench -p vouch-testnet --bench check_installed`: `vouch
//! check-installed` of a pacman root with 2,000 installed packages against
//! 5 nodes on loopback, each holding verdicts for all of them from 5
//! signers (policy: 3 of the 5), against the same audit done the way
//! existing tools do it — one request per package per rebuilder, in turn —
//! measured in the same run. Hashing package files is excluded from both
//! (the sync database gives the sha256) and measured on its own.
//! `VOUCH_BENCH_PACKAGES` scales the root down for quick runs.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vouch_attest::{Digest, Outcome, Policy, VerifiedVerdict, split_envelopes, verify_batch};
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::{client, fixtures};

const NODES: usize = 5;
const SIGNERS: usize = 5;

/// A pacman root: `n` installed packages and a sync database with their
/// sha256.
fn root(dir: &Path, n: usize) -> Vec<Digest> {
    let local = dir.join("var/lib/pacman/local");
    let sync = dir.join("var/lib/pacman/sync");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::create_dir_all(&sync).unwrap();
    let mut shas = Vec::new();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(sync.join("core.db")).unwrap(),
        flate2::Compression::fast(),
    );
    let mut db = tar::Builder::new(gz);
    for i in 0..n {
        let name = format!("pkg{i}");
        let sha = Digest::of(format!("package file {i}").as_bytes());
        shas.push(sha);
        let entry = local.join(format!("{name}-1.0-1"));
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(
            entry.join("desc"),
            format!("%NAME%\n{name}\n\n%VERSION%\n1.0-1\n\n%ARCH%\nx86_64\n\n"),
        )
        .unwrap();
        let desc = format!(
            "%FILENAME%\n{name}-1.0-1-x86_64.pkg.tar.zst\n\n%NAME%\n{name}\n\n%VERSION%\n1.0-1\n\n\
             %ARCH%\nx86_64\n\n%SHA256SUM%\n{}\n\n",
            sha.to_hex()
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(desc.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        db.append_data(&mut h, format!("{name}-1.0-1/desc"), desc.as_bytes())
            .unwrap();
    }
    db.into_inner().unwrap().finish().unwrap();
    shas
}

fn main() {
    let n: usize = std::env::var("VOUCH_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("root");
    let shas = root(&r, n);
    let keys: Vec<_> = (0..SIGNERS)
        .map(|i| fixtures::key(&format!("bench signer {i}")))
        .collect();
    let logs: Vec<VerifiedVerdict> = keys
        .iter()
        .flat_map(|k| {
            let items: Vec<(Digest, &str, Outcome)> =
                shas.iter().map(|s| (*s, "pkg", Outcome::Good)).collect();
            fixtures::log(k, &items)
        })
        .collect();
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let d = t.path().join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let node = NodeProcess::start(&d, &[]).unwrap();
        for chunk in logs.chunks(5000) {
            node.submit(chunk).unwrap();
        }
        nodes.push(node);
    }
    let urls: Vec<&str> = nodes.iter().map(|n| n.url()).collect();
    let named: Vec<(String, &vouch_attest::SecretKey)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("s{i}"), k))
        .collect();
    let signers: Vec<(&str, &vouch_attest::SecretKey)> =
        named.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let config = client::write_config(
        &t.path().join("client"),
        &t.path().join("client/keys.d").display().to_string(),
        &urls,
        &signers,
        3,
        "deny",
        &t.path().join("cache").display().to_string(),
    );
    // Give the nodes time to finish writing what they acknowledged.
    std::thread::sleep(Duration::from_secs(1));

    // vouch check-installed, median of 3.
    let vouch = sibling_binary("vouch").unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = Command::new(&vouch)
            .arg("--config")
            .arg(&config)
            .args(["check-installed", "--json", "--root"])
            .arg(&r)
            .output()
            .unwrap();
        runs.push(start.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["summary"]["verified"], n, "{}", v["summary"]);
    }
    runs.sort();
    let batched = runs[1];

    // The same two audits through proxies that hold every chunk of bytes
    // for 1 ms each way (a 2 ms round trip, a near LAN): the old way pays
    // it per request, vouch a few times per node.
    let delayed: Vec<String> = urls
        .iter()
        .map(|u| delay_proxy(u.trim_start_matches("http://"), Duration::from_millis(1)))
        .collect();
    let delayed_refs: Vec<&str> = delayed.iter().map(String::as_str).collect();
    let delayed_config = client::write_config(
        &t.path().join("client-delayed"),
        &t.path().join("client-delayed/keys.d").display().to_string(),
        &delayed_refs,
        &signers,
        3,
        "deny",
        &t.path().join("cache-delayed").display().to_string(),
    );
    let start = Instant::now();
    let out = Command::new(&vouch)
        .arg("--config")
        .arg(&delayed_config)
        .args(["check-installed", "--json", "--root"])
        .arg(&r)
        .output()
        .unwrap();
    let batched_delayed = start.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["verified"], n, "{}", v["summary"]);

    // The old way: for each package, ask each rebuilder about it, verify,
    // then decide; one request after another.
    let mut policy = String::from("threshold = 3\n");
    for (name, k) in &signers {
        policy += &format!(
            "[[signer]]\nname = \"{name}\"\noperator = \"{name}\"\nkey = \"{}\"\n",
            k.public_key()
        );
    }
    let policy = Policy::from_toml(&policy).unwrap();
    let hex_keys: Vec<String> = keys
        .iter()
        .map(|k| hex::encode(k.public_key().as_bytes()))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = Instant::now();
    let verified = rt.block_on(one_request_each(
        &http, &urls, &shas, &hex_keys, &policy, now,
    ));
    let one_by_one = start.elapsed();
    assert_eq!(verified, n);
    let start = Instant::now();
    let verified_delayed = rt.block_on(one_request_each(
        &http,
        &delayed_refs,
        &shas,
        &hex_keys,
        &policy,
        now,
    ));
    let one_by_one_delayed = start.elapsed();
    assert_eq!(verified_delayed, n);

    // Hashing package files, on its own: 256 MiB in 64 files.
    let files = t.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let block = vec![0x5au8; 4 << 20];
    for i in 0..64 {
        let mut f = std::fs::File::create(files.join(format!("{i}.pkg"))).unwrap();
        f.write_all(&block).unwrap();
    }
    let start = Instant::now();
    for i in 0..64 {
        let f = std::fs::File::open(files.join(format!("{i}.pkg"))).unwrap();
        Digest::of_reader(f).unwrap();
    }
    let hashing = start.elapsed();

    println!(
        "{n} installed packages, {NODES} nodes, {SIGNERS} signers each ({} verdicts per node)",
        logs.len()
    );
    println!(
        "one request per package per rebuilder ({} requests, in turn): {:.2} s = 1.00x",
        n * NODES,
        one_by_one.as_secs_f64()
    );
    println!(
        "vouch check-installed (one batched lookup per node, all nodes at once; median of 3): {:.3} s = {:.1}x faster",
        batched.as_secs_f64(),
        one_by_one.as_secs_f64() / batched.as_secs_f64()
    );
    println!(
        "with a 2 ms round trip added: one request per package per rebuilder {:.1} s = 1.00x; vouch check-installed {:.3} s = {:.0}x faster",
        one_by_one_delayed.as_secs_f64(),
        batched_delayed.as_secs_f64(),
        one_by_one_delayed.as_secs_f64() / batched_delayed.as_secs_f64()
    );
    println!(
        "hashing package files (excluded above): 256 MiB in {:.2} s = {:.0} MiB/s",
        hashing.as_secs_f64(),
        256.0 / hashing.as_secs_f64()
    );
}

/// For each package, asks each rebuilder in turn; the number verified.
async fn one_request_each(
    http: &reqwest::Client,
    urls: &[&str],
    shas: &[Digest],
    hex_keys: &[String],
    policy: &Policy,
    now: u64,
) -> usize {
    let mut verified = 0;
    for sha in shas {
        let mut got = Vec::new();
        for url in urls {
            let body = http
                .post(format!("{url}/api/vouch/v1/verdicts/lookup"))
                .header("accept", "application/cbor")
                .json(&serde_json::json!({ "sha256": [sha.to_hex()], "signers": hex_keys }))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let items = split_envelopes(&body, 1000).unwrap();
            got.extend(verify_batch(&items).into_iter().flatten());
        }
        if policy.evaluate(sha, &got, &[], now).status == vouch_attest::Status::Verified {
            verified += 1;
        }
    }
    verified
}

/// A TCP proxy to `target` on its own thread that holds every chunk for
/// `delay` in each direction; its URL.
fn delay_proxy(target: &str, delay: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::spawn(pump(ri, wo, delay));
                    pump(ro, wi, delay).await;
                });
            }
        });
    });
    format!("http://{addr}")
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tokio::time::sleep(delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
