//! The researchers' commands across a testnet: `vouch stats` (counters the
//! node keeps as verdicts arrive) and `vouch watch` (a light gossip peer).

use serde_json::Value;
use vouch_testnet::client;
use vouch_testnet::demo::{PACKAGES, start_federation};
use vouch_testnet::keys::node_key;

#[test]
fn stats_count_each_signers_latest_outcomes_and_how_they_agree() {
    let t = tempfile::tempdir().unwrap();
    let fed = start_federation(t.path(), 3, 2).unwrap();
    let node = &fed.net.nodes[2];
    let (code, out, err) = client::vouch(None, &["stats", "--node", node.url(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdicts"], PACKAGES.len() * 3, "{v}");
    let key = |n: usize| node_key(n).public_key().to_text();
    let signer = |n: usize| -> Value {
        v["signers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signer"] == key(n))
            .unwrap_or_else(|| panic!("node {n} is not tracked: {v}"))
            .clone()
    };
    // Node 1 reproduces the flaky package; nodes 2 and 3 fail it.
    let n1 = signer(1);
    assert_eq!(
        (n1["good"].as_u64(), n1["bad"].as_u64(), n1["fail"].as_u64()),
        (Some(4), Some(1), Some(0))
    );
    let n3 = signer(3);
    assert_eq!(
        (n3["good"].as_u64(), n3["bad"].as_u64(), n3["fail"].as_u64()),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(n3["this_node"], true);
    assert_eq!(n3["repositories"][0]["distribution"], "archlinux");
    assert_eq!(n3["repositories"][0]["repository"], "core");
    assert_eq!(n3["rate"], 0.6);
    let pair = |a: usize, b: usize| -> Value {
        v["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                (p["a"] == key(a) && p["b"] == key(b)) || (p["a"] == key(b) && p["b"] == key(a))
            })
            .unwrap_or_else(|| panic!("no pair {a} {b}: {v}"))
            .clone()
    };
    // 2 and 3 agree on every outcome; both call the kernel BAD, but each
    // rebuilt different bytes.
    let p23 = pair(2, 3);
    assert_eq!(p23["both"], 5);
    assert_eq!(p23["same_outcome"], 5);
    assert_eq!(p23["both_bad"], 1);
    assert_eq!(p23["same_rebuilt"], 0);
    // 1 and 2 disagree on the flaky package only.
    let p12 = pair(1, 2);
    assert_eq!(p12["same_outcome"], 4, "{p12}");

    // The table.
    let (code, out, err) = client::vouch(None, &["stats", "--node", node.url()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("archlinux core"), "{out}");
    assert!(out.contains("60.0%"), "{out}");
    assert!(out.contains("5 of 5"), "{out}");
    assert!(out.contains("0 of 1"), "{out}");

    // Unreachable node: exit 4.
    let (code, _, _) = client::vouch(None, &["stats", "--node", "http://127.0.0.1:9"]);
    assert_eq!(code, 4);
}
