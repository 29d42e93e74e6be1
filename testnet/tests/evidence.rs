//! Evidence from any peer (`/vouch/blobs/1`): nodes keep the build logs of
//! the signers they know, a node that keeps none finds a log at its peers
//! when asked, the evidence outlives the node that made it, and a peer that
//! sends other bytes under the asked-for hash is not believed.

use std::time::{Duration, Instant};

use serde_json::Value;
use vouch_attest::Digest;
use vouch_testnet::demo::{PACKAGES, start_federation};
use vouch_testnet::http::{get_json, request};
use vouch_testnet::keys::node_key;
use vouch_testnet::node::NodeProcess;

fn blobs(url: &str) -> u64 {
    get_json(url, "/api/vouch/v1/status").unwrap()["store"]["blobs"]
        .as_u64()
        .unwrap()
}

/// The build logs named by `signer`'s verdicts, as node `url` holds them.
fn logs_of(url: &str, signer: &str) -> Vec<Digest> {
    let mut out = Vec::new();
    for (name, _) in PACKAGES {
        let v = get_json(
            url,
            &format!("/api/vouch/v1/verdicts?distribution=archlinux&name={name}"),
        )
        .unwrap();
        for e in v["verdicts"].as_array().unwrap() {
            if e["verdict"]["signer"] == signer
                && let Some(l) = e["verdict"]["evidence"]["build_log"].as_str()
            {
                out.push(l.parse().unwrap());
            }
        }
    }
    out
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn evidence_is_kept_found_at_peers_outlives_its_node_and_lies_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut fed = start_federation(t.path(), 3, 2).unwrap();
    let k1 = node_key(1).public_key().to_text();
    let url3 = fed.net.nodes[2].url().to_string();
    let logs1 = logs_of(&url3, &k1);
    assert_eq!(logs1.len(), PACKAGES.len());
    // Node 3 keeps the logs of nodes 1 and 2 (keep = "keyring": they are
    // trusted) beside its own, without anyone asking for them.
    let mut all: Vec<Digest> = (1..=3)
        .flat_map(|n| logs_of(&url3, &node_key(n).public_key().to_text()))
        .collect();
    all.sort();
    all.dedup();
    // (The demo's logs depend on the package and the outcome: node 1's
    // log of the package it alone reproduces is the one node 3 lacks.)
    assert!(all.len() > PACKAGES.len(), "{all:?}");
    let held = |url: &str, l: &Digest| {
        request(
            "GET",
            url,
            &format!("/api/vouch/v1/blobs/{l}?peers=false"),
            &[],
            Vec::new(),
        )
        .unwrap()
        .0 == 200
    };
    wait("node 3 keeps every trusted signer's logs", || {
        all.iter().all(|l| held(&url3, l))
    });

    // A fourth node that keeps nobody's evidence, joined to node 3 only.
    let dir4 = t.path().join("node-4");
    std::fs::create_dir_all(&dir4).unwrap();
    std::fs::write(
        dir4.join("vouchd.toml"),
        format!(
            "[evidence]\nkeep = \"none\"\n\n[[sync]]\nname = \"demo-core\"\ndistribution = \"archlinux\"\n\
             mirror = \"{}/$repo/os/$arch\"\nrepos = [\"core\"]\narchitectures = [\"x86_64\"]\n",
            fed.mirror.url
        ),
    )
    .unwrap();
    let boot = fed.net.nodes[2].p2p_addrs().unwrap()[0].clone();
    let n4 = NodeProcess::start(&dir4, &["--sync-interval", "1", "--bootstrap", &boot]).unwrap();
    let url4 = n4.url().to_string();
    wait("node 4 syncs the verdicts", || {
        get_json(&url4, "/api/vouch/v1/status").unwrap()["store"]["verdicts"] == PACKAGES.len() * 3
    });
    assert_eq!(blobs(&url4), 0, "keep = none fetched evidence");
    assert!(!held(&url4, &logs1[0]));

    // The node that made the evidence goes away.
    fed.net.nodes[0].kill9().unwrap();

    // Node 4 is asked for node 1's log: found at node 3, checked, served
    // and kept.
    let (status, body) = request(
        "GET",
        &url4,
        &format!("/api/vouch/v1/blobs/{}", logs1[0]),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(Digest::of(body.as_bytes()), logs1[0]);
    assert_eq!(blobs(&url4), 1);
    // Through the rebuilderd API and the dashboard too.
    wait("node 4 syncs the mirror", || {
        get_json(&url4, "/api/v1/packages/binary").unwrap()["total"] == PACKAGES.len()
    });
    let rows: Value = get_json(
        &url4,
        &format!("/api/v1/packages/binary?signer={}", k1.replace('+', "%2B")),
    )
    .unwrap();
    let build = rows["records"][0]["build_id"].as_u64().unwrap();
    let (status, _) = request(
        "GET",
        &url4,
        &format!("/api/v1/builds/{build}/log"),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let (status, _) = request(
        "GET",
        &url4,
        &format!("/evidence/{}", logs1[1]),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 200);

    // A liar joins node 4 and answers every request with other bytes. A
    // blob only the liar "has" is not served and not stored; one an honest
    // peer has is still found.
    vouch_testnet::rogue::lying_blob_server(n4.p2p_addrs().unwrap()[0].parse().unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let before = blobs(&url4);
    let nobody = Digest::of(b"a blob nobody holds");
    let (status, body) = request(
        "GET",
        &url4,
        &format!("/api/vouch/v1/blobs/{nobody}"),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
    assert_eq!(blobs(&url4), before);
    let metrics = request("GET", &url4, "/metrics", &[], Vec::new())
        .unwrap()
        .1;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("p2p.invalid_blob") && !l.trim_end().ends_with(" 0")),
        "the liar's answer was not counted: {}",
        metrics
            .lines()
            .filter(|l| l.contains("dropped"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (status, body) = request(
        "GET",
        &url4,
        &format!("/api/vouch/v1/blobs/{}", logs1[2]),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(Digest::of(body.as_bytes()), logs1[2]);
}
