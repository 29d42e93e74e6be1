//! The HTTP API in process: evidence blobs with and without zstd, status,
//! unknown routes.

mod common;

use vouch_node::config::Config;
use vouch_node::daemon::Daemon;
use vouch_node::datadir::DataDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_served_compressed_or_plain() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), |_| {}).await;
    let log = "build log line\n".repeat(10_000);
    let id = daemon.store.put_blob(log.as_bytes()).unwrap();
    let url = format!("http://{}/api/vouch/v1/blobs/{id}", daemon.http_addr);
    let client = reqwest::Client::new();

    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap(), log.as_bytes());

    let z = client
        .get(&url)
        .header("accept-encoding", "gzip, zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(z.headers()["content-encoding"], "zstd");
    let compressed = z.bytes().await.unwrap();
    assert!(
        compressed.len() < log.len() / 20,
        "{} bytes",
        compressed.len()
    );
    assert_eq!(
        zstd::stream::decode_all(&compressed[..]).unwrap(),
        log.as_bytes()
    );

    let missing = client
        .get(format!(
            "http://{}/api/vouch/v1/blobs/{}",
            daemon.http_addr,
            "00".repeat(32)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    let nowhere = client
        .get(format!("http://{}/nowhere", daemon.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);

    let status: serde_json::Value = client
        .get(format!("http://{}/api/vouch/v1/status", daemon.http_addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["store"]["blobs"], 1);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_ingest_groups_concurrent_submissions() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), |_| {}).await;
    // 8 signers submit their chains concurrently, one envelope per call.
    let mut tasks = Vec::new();
    for s in 0..8 {
        let ingest = daemon.ingest.clone();
        tasks.push(tokio::spawn(async move {
            let k = common::key(&format!("S{s}"));
            for v in common::chain(&k, 50) {
                let r = ingest
                    .submit("local", vec![v.envelope().to_vec()])
                    .await
                    .unwrap();
                assert_eq!(r[0].status, vouch_node::ingest::Status::Accepted, "{r:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(daemon.store.check_consistency().unwrap(), 400);
    // The signers come in pages that join up.
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    let mut url = format!("http://{}/api/vouch/v1/signers?limit=3", daemon.http_addr);
    loop {
        let page: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let signers = page["signers"].as_array().unwrap();
        assert!(signers.len() <= 3);
        seen.extend(
            signers
                .iter()
                .map(|s| s["signer"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => {
                url = format!(
                    "http://{}/api/vouch/v1/signers?limit=3&after={}",
                    daemon.http_addr,
                    next.replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D")
                )
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    seen.dedup();
    assert_eq!(seen.len(), 8);
    daemon.shutdown().await.unwrap();
}

/// A node in `dir` on a free loopback port, without p2p, its config
/// changed by `tweak`.
async fn start(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Daemon {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.p2p.enabled = false;
    tweak(&mut config);
    Daemon::start(DataDir::new(dir.join("d")), config)
        .await
        .unwrap()
}

async fn start_limited(dir: &std::path::Path) -> Daemon {
    start(dir, |c| {
        c.http.max_connections = 2;
        c.http.request_timeout_secs = 1;
    })
    .await
}

/// Reads what the server sends until it closes the connection.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut out),
    )
    .await
    .expect("the server never closed a stalled connection");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_limited(dir.path()).await;
    // Headers that never end: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(daemon.http_addr)
        .await
        .unwrap();
    slow.write_all(b"GET /api/vouch/v1/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_to_close(&mut slow).await;
    // A body that never ends: answered 408.
    let mut slow = tokio::net::TcpStream::connect(daemon.http_addr)
        .await
        .unwrap();
    slow.write_all(
        b"POST /api/vouch/v1/verdicts HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\n\
          Authorization: Bearer x\r\nContent-Length: 100000\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.max_connections = 2;
    config.p2p.enabled = false;
    let daemon = Daemon::start(DataDir::new(dir.path().join("d")), config)
        .await
        .unwrap();
    // Two connections hold both slots (they send nothing).
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            tokio::net::TcpStream::connect(daemon.http_addr)
                .await
                .unwrap(),
        );
    }
    let url = format!("http://{}/api/vouch/v1/status", daemon.http_addr);
    let third = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    // One slot frees: the third is served.
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    drop(first);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), third)
        .await
        .expect("the waiting connection was never served")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    daemon.shutdown().await.unwrap();
}

/// A lookup whose answer is many parts long comes whole, in the order the
/// verdicts were found, as JSON and as CBOR, with the forks of its signers
/// after the verdicts; cut at `max_results`, it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lookup_answer_is_streamed_whole() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use vouch_attest::{Outcome, sign, split_envelopes};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), |c| c.http.max_results = 1000).await;
    let signers: Vec<_> = (0..3).map(|i| common::key(&format!("L{i}"))).collect();
    for k in &signers {
        daemon.store.apply(&common::chain(k, 400), 1000).unwrap();
    }
    // The first signer forks at seq 1.
    let first = common::chain(&signers[0], 1);
    let other = common::verdict(
        &signers[0],
        1,
        first[0].id(),
        common::artifact(9999),
        Outcome::Good,
    );
    daemon
        .store
        .apply(&[sign(&other, &signers[0]).unwrap()], 1000)
        .unwrap();

    let client = reqwest::Client::new();
    let url = format!("http://{}/api/vouch/v1/verdicts/lookup", daemon.http_addr);
    let ask = |n: u64, cbor: bool, named: bool| {
        let mut body = serde_json::json!({
            "sha256": (0..n).map(|i| common::artifact(i).to_hex()).collect::<Vec<_>>()
        });
        if named {
            body["signers"] = signers.iter().map(|k| k.public_key().to_text()).collect();
        }
        let accept = if cbor {
            "application/cbor"
        } else {
            "application/json"
        };
        client
            .post(&url)
            .header("accept", accept)
            .json(&body)
            .send()
    };

    // 300 artifacts × 3 signers: 900 verdicts, over three parts.
    let json: serde_json::Value = ask(300, false, true).await.unwrap().json().await.unwrap();
    let items = json["verdicts"].as_array().unwrap();
    assert_eq!(items.len(), 900);
    // Artifacts come in digest order, signers in key order.
    let mut shas: Vec<_> = (0..300).map(common::artifact).collect();
    shas.sort_by_key(|d| *d.as_bytes());
    let mut keys: Vec<_> = signers.iter().map(|k| k.public_key()).collect();
    keys.sort_by_key(|k| *k.as_bytes());
    let mut expect = Vec::new();
    for sha in &shas {
        for k in &keys {
            expect.push((sha, daemon.store.latest(sha, k).unwrap().unwrap()));
        }
    }
    for (item, (sha, e)) in items.iter().zip(&expect) {
        let id = vouch_attest::Envelope::decode(e).unwrap().id();
        assert_eq!(item["id"], id.to_hex());
        assert_eq!(item["verdict"]["subject"]["sha256"], sha.to_hex());
        assert_eq!(item["envelope"], STANDARD.encode(e));
    }
    let forks = json["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{forks:?}");
    assert_eq!(forks[0]["signer"], signers[0].public_key().to_text());
    assert_eq!(json["truncated"], false);

    let cbor = ask(300, true, true).await.unwrap();
    assert!(cbor.headers().get("x-vouch-truncated").is_none());
    let bytes = cbor.bytes().await.unwrap();
    let envelopes = split_envelopes(&bytes, 10_000).unwrap();
    assert_eq!(
        envelopes,
        expect.iter().map(|(_, e)| e.as_slice()).collect::<Vec<_>>()
    );

    // Without signers, 400 artifacts × 3 is over max_results: cut at 1000.
    let json: serde_json::Value = ask(400, false, false).await.unwrap().json().await.unwrap();
    assert_eq!(json["verdicts"].as_array().unwrap().len(), 1000);
    assert_eq!(json["truncated"], true);
    let cbor = ask(400, true, false).await.unwrap();
    assert_eq!(cbor.headers()["x-vouch-truncated"], "true");
    let bytes = cbor.bytes().await.unwrap();
    assert_eq!(split_envelopes(&bytes, 10_000).unwrap().len(), 1000);
    daemon.shutdown().await.unwrap();
}
