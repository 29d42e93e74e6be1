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
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.p2p.enabled = false;
    let daemon = Daemon::start(DataDir::new(dir.path().join("d")), config)
        .await
        .unwrap();
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
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.p2p.enabled = false;
    let daemon = Daemon::start(DataDir::new(dir.path().join("d")), config)
        .await
        .unwrap();
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
    daemon.shutdown().await.unwrap();
}
