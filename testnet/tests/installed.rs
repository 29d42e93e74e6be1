//! `vouch check-installed` on this machine's own Debian system: dpkg's
//! status and apt's lists (lz4-compressed here, as apt stores them), against
//! a node holding verdicts for part of the real bookworm archive, which the
//! node's own sync read from deb.debian.org. The sha256 found for each
//! installed package must be the archive's.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use vouch_attest::{Digest, Outcome};
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::{client, fixtures};

fn audit(config: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) =
        client::vouch(Some(config), &["check-installed", "--json", "--root", "/"]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    (code, v)
}

#[test]
fn this_machines_debian_packages_are_audited_with_the_archives_hashes() {
    if !Path::new("/var/lib/dpkg/status").exists() || !Path::new("/var/lib/apt/lists").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI runs on Debian");
        eprintln!("SKIPPED: not a Debian system (no dpkg status or apt lists)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let node_dir = t.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    // The archive as the node's sync reads it.
    let sync = Command::new(sibling_binary("vouchd").unwrap())
        .arg("--data-dir")
        .arg(&node_dir)
        .args([
            "sync",
            "--dry-run",
            "--json",
            "--distribution",
            "debian",
            "--mirror",
            "http://deb.debian.org/debian",
            "--release",
            "bookworm",
            "--component",
            "main",
            "--architecture",
            "amd64",
        ])
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let mut archive: HashMap<(String, String, String), Digest> = HashMap::new();
    for line in String::from_utf8_lossy(&sync.stdout).lines() {
        let job: serde_json::Value = serde_json::from_str(line).unwrap();
        for s in job["subjects"].as_array().unwrap() {
            let file = s["filename"].as_str().unwrap();
            let arch = file
                .strip_suffix(".deb")
                .and_then(|f| f.rsplit('_').next())
                .unwrap()
                .to_string();
            archive.insert(
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["version"].as_str().unwrap().to_string(),
                    arch,
                ),
                s["sha256"].as_str().unwrap().parse().unwrap(),
            );
        }
    }
    assert!(archive.len() > 50_000, "{} artifacts", archive.len());

    let mut node = NodeProcess::start(&node_dir, &[]).unwrap();
    let (a, b) = (fixtures::key("audit a"), fixtures::key("audit b"));
    let config = client::write_config(
        &t.path().join("client"),
        &t.path().join("client/keys.d").display().to_string(),
        &[node.url()],
        &[("a", &a), ("b", &b)],
        2,
        "deny",
        &t.path().join("cache").display().to_string(),
    );
    let (code, before) = audit(&config);
    assert_eq!(code, 2, "nothing is vouched for yet: {}", before["summary"]);
    let packages = before["packages"].as_array().unwrap();
    let mut matched = Vec::new();
    for p in packages.iter().filter(|p| p["distribution"] == "debian") {
        let key = (
            p["name"].as_str().unwrap().to_string(),
            p["version"].as_str().unwrap().to_string(),
            p["architecture"].as_str().unwrap().to_string(),
        );
        if let Some(want) = archive.get(&key) {
            assert_eq!(p["sha256"], want.to_hex(), "{p}");
            assert!(
                p["hash_from"].as_str().unwrap().contains("_Packages"),
                "{p}"
            );
            matched.push((key.0, *want));
        }
    }
    assert!(
        matched.len() >= 20,
        "{} installed packages are in bookworm main",
        matched.len()
    );
    eprintln!(
        "{} installed, {} found in the bookworm index with the archive's sha256",
        packages.len(),
        matched.len()
    );

    // Verdicts for part of it: ten vouched for by both, one with a BAD.
    let good: Vec<(Digest, &str, Outcome)> = matched[..10]
        .iter()
        .map(|(n, d)| (*d, n.as_str(), Outcome::Good))
        .collect();
    let mut log_a = good.clone();
    log_a.push((
        matched[10].1,
        matched[10].0.as_str(),
        Outcome::Bad {
            rebuilt_sha256: Digest::of(b"another build"),
        },
    ));
    let mut log_b = good;
    log_b.push((matched[10].1, matched[10].0.as_str(), Outcome::Good));
    node.submit(&[fixtures::log(&a, &log_a), fixtures::log(&b, &log_b)].concat())
        .unwrap();
    let (code, after) = audit(&config);
    assert_eq!(code, 1, "one is rejected: {}", after["summary"]);
    assert_eq!(after["summary"]["rejected"], 1, "{}", after["summary"]);
    assert!(
        after["summary"]["verified"].as_u64().unwrap() >= 10,
        "{}",
        after["summary"]
    );
    let status = |name: &str| {
        after["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name && p["distribution"] == "debian")
            .map(|p| p["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    for (n, _) in &matched[..10] {
        assert_eq!(status(n), "VERIFIED");
    }
    assert_eq!(status(&matched[10].0), "REJECTED");
    node.stop().unwrap();
}
