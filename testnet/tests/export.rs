//! `vouch export --format jsonl|csv` against a real `vouchd`: every
//! verdict of every signer, in pages, verified, filtered by signer and
//! by time.

use vouch_attest::*;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::{client, fixtures};

fn export(node: &NodeProcess, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["export", "--node", node.url()];
    all.extend_from_slice(args);
    client::vouch(None, &all)
}

#[test]
fn every_verdict_is_streamed_verified_and_filtered() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (fixtures::key("export a"), fixtures::key("export b"));
    let node_dir = t.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut node = NodeProcess::start(&node_dir, &[]).unwrap();
    let log_a = fixtures::chain(&a, 1500, "a");
    let log_b = fixtures::chain(&b, 10, "b");
    for part in log_a.chunks(500) {
        node.submit(part).unwrap();
    }
    node.submit(&log_b).unwrap();
    // The node answers once what it acknowledged is readable.
    std::thread::sleep(std::time::Duration::from_millis(500));

    let (code, out, err) = export(&node, &["--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1510, "{err}");
    for l in lines.iter().step_by(97) {
        let env = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            l["envelope"].as_str().unwrap(),
        )
        .unwrap();
        let v = open(&env).unwrap();
        assert_eq!(l["id"], v.id().to_hex());
        assert_eq!(l["verdict"]["seq"], v.verdict().seq);
    }

    let hex_a = hex::encode(a.public_key().as_bytes());
    let (code, out, _) = export(&node, &["--format", "jsonl", "--signer", &hex_a]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1500);
    // fixtures issue entry `seq` at 2026-11-26T00:00:00Z + seq seconds.
    let (_, out, _) = export(
        &node,
        &["--format", "csv", "--since", "2026-11-26T00:16:40Z"],
    );
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].starts_with("id,signer,seq,issued_at,"),
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), 1 + 500, "seq 1000..1499 of a, nothing of b");
    assert!(rows[1..].iter().all(|r| r.split(',').count() == 18));
    let b_text = b.public_key().to_text();
    let (_, out, _) = export(&node, &["--format", "csv", "--signer", &b_text]);
    assert_eq!(out.lines().count(), 11);
    let (code, _, err) = export(&node, &["--format", "csv", "--since", "yesterday"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--since"), "{err}");
    node.stop().unwrap();
}
