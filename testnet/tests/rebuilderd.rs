//! rebuilderd's own client, `rebuildctl` 0.28 (installed by `.ci/run` from
//! the crate registry), against a vouch node of the demo federation: the
//! rows it prints are checked against the node's signed verdicts, and its
//! queue commands change the node's queue.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use vouch_testnet::demo::{PACKAGES, start_federation};
use vouch_testnet::http::{get_json, request};
use vouch_testnet::node::NodeProcess;
use vouch_testnet::rebuild::have_tools;

fn rebuildctl(
    url: &str,
    cookie: Option<&std::path::Path>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new("rebuildctl");
    cmd.arg("-H").arg(url).args(args).env("NO_COLOR", "1");
    // No config of the machine's: an empty one.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent")
        .env("HOME", "/nonexistent");
    if let Some(c) = cookie {
        cmd.env("REBUILDERD_COOKIE_PATH", c);
    }
    let out = cmd.output().expect("running rebuildctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// rebuildctl's `--json` output: one pretty-printed array per page.
fn json_pages(out: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Vec<Value>>()
        .flat_map(|page| page.unwrap_or_else(|e| panic!("{e}: {out}")))
        .collect()
}

/// The node's own outcome per package name, from its signed verdicts.
fn own_outcomes(url: &str) -> BTreeMap<String, String> {
    let status = get_json(url, "/api/vouch/v1/status").unwrap();
    let own = status["node"]["public_key"].as_str().unwrap().to_string();
    let mut out = BTreeMap::new();
    for (name, _) in PACKAGES {
        let v = get_json(
            url,
            &format!("/api/vouch/v1/verdicts?distribution=archlinux&name={name}"),
        )
        .unwrap();
        for e in v["verdicts"].as_array().unwrap() {
            if e["verdict"]["signer"].as_str() == Some(&own) {
                out.insert(
                    name.to_string(),
                    e["verdict"]["outcome"]["result"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }
    out
}

#[test]
fn rebuildctl_lists_filters_queues_and_reads_logs_from_a_vouch_node() {
    if !have_tools(&["rebuildctl"], "cargo install rebuildctl --version 0.28.0") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fed = start_federation(t.path(), 2, 2).unwrap();
    // Node 2 signs FAIL for the flaky package (see testnet::backend).
    let node = &fed.net.nodes[1];
    let url = node.url();
    let own = own_outcomes(url);
    assert_eq!(own.len(), PACKAGES.len(), "{own:?}");
    assert_eq!(own["flaky-llvm"], "FAIL");
    assert_eq!(own["unrepro-kernel"], "BAD");

    // `pkgs ls --json`: one row per package, its status the node's verdict
    // (FAIL has no artifact status in rebuilderd's model: null).
    let (ok, out, err) = rebuildctl(url, None, &["pkgs", "ls", "--json"]);
    assert!(ok, "{err}");
    let rows = json_pages(&out);
    assert_eq!(rows.len(), PACKAGES.len(), "{out}");
    for r in &rows {
        let name = r["name"].as_str().unwrap();
        let want = match own[name].as_str() {
            "FAIL" => Value::Null,
            s => Value::String(s.to_string()),
        };
        assert_eq!(r["status"], want, "{name}: {r}");
        assert_eq!(r["distribution"], "archlinux");
        assert_eq!(r["component"], "core");
        assert!(r["build_id"].as_u64().is_some(), "{r}");
        assert!(r["url"].as_str().unwrap().ends_with(".pkg.tar.zst"), "{r}");
        assert_eq!(r["seen_in_last_sync"], true);
    }
    // Sorted by name, as rebuildctl asks.
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // The human listing, and the filters.
    let (ok, out, err) = rebuildctl(url, None, &["pkgs", "ls"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("[GOOD ]") && l.contains("pacman 7.0.0-1")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("[BAD  ]") && l.contains("unrepro-kernel")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("[UNKWN]") && l.contains("flaky-llvm")),
        "{out}"
    );
    let (ok, out, err) = rebuildctl(url, None, &["pkgs", "ls", "--status", "BAD"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("unrepro-kernel"), "{out}");
    let (ok, out, _) = rebuildctl(
        url,
        None,
        &[
            "pkgs",
            "ls",
            "--name",
            "zstd",
            "--distro",
            "archlinux",
            "--suite",
            "core",
        ],
    );
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");
    let (ok, out, _) = rebuildctl(url, None, &["pkgs", "ls", "--distro", "debian"]);
    assert!(ok);
    assert_eq!(out.trim(), "", "{out}");

    // `pkgs log`: the build log the verdict names.
    let (ok, out, err) = rebuildctl(url, None, &["pkgs", "log", "--name", "unrepro-kernel"]);
    assert!(ok, "{err}");
    assert!(!out.trim().is_empty(), "empty build log");

    // `status`: the node's worker.
    let cookie = t.path().join("cookie");
    std::fs::write(&cookie, node.admin_token().unwrap()).unwrap();
    let (ok, out, err) = rebuildctl(url, Some(&cookie), &["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("=>"), "{out}");

    // Another signer's view: node 1 reproduces the flaky package.
    let node1 = get_json(fed.net.nodes[0].url(), "/api/vouch/v1/status").unwrap();
    let node1_key = node1["node"]["public_key"].as_str().unwrap();
    let view = |signer: Option<&str>| -> BTreeMap<String, Value> {
        let q = signer.map_or(String::new(), |k| {
            format!("&signer={}", k.replace('+', "%2B"))
        });
        let page = get_json(url, &format!("/api/v1/packages/binary?limit=100{q}")).unwrap();
        assert_eq!(page["total"], PACKAGES.len(), "{page}");
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap().to_string(), r["status"].clone()))
            .collect()
    };
    assert_eq!(view(None)["flaky-llvm"], Value::Null);
    assert_eq!(view(Some(node1_key))["flaky-llvm"], "GOOD");
    assert_eq!(view(Some(node1_key))["unrepro-kernel"], "BAD");

    // The counts, the builds, v0.
    let d = get_json(url, "/api/v1/dashboard").unwrap();
    assert_eq!(d["rebuilds"]["good"], 3, "{d}");
    assert_eq!(d["rebuilds"]["bad"], 1, "{d}");
    assert_eq!(d["rebuilds"]["fail"], 1, "{d}");
    assert_eq!(d["rebuilds"]["unknown"], 0, "{d}");
    let page = get_json(url, "/api/v1/packages/binary?name=flaky-llvm").unwrap();
    let build = page["records"][0]["build_id"].as_u64().unwrap();
    let b = get_json(url, &format!("/api/v1/builds/{build}")).unwrap();
    assert_eq!(b["status"], "FAIL", "{b}");
    assert_eq!(b["name"], "flaky-llvm", "{b}");
    let v0 = get_json(url, "/api/v0/pkgs/list").unwrap();
    let v0 = v0.as_array().unwrap();
    assert_eq!(v0.len(), PACKAGES.len());
    for r in v0 {
        let want = match own[r["name"].as_str().unwrap()].as_str() {
            "FAIL" => "UNKWN",
            s => s,
        };
        assert_eq!(r["status"], want, "{r}");
    }
    let v0 = get_json(url, "/api/v0/pkgs/list?status=BAD&distro=archlinux").unwrap();
    assert_eq!(v0.as_array().unwrap().len(), 1, "{v0}");
    let v0d = get_json(url, "/api/v0/dashboard").unwrap();
    assert_eq!(v0d["suites"]["core"]["good"], 3, "{v0d}");
    assert_eq!(v0d["suites"]["core"]["unknown"], 1, "{v0d}");

    // Bad queries get a clear error.
    for (path, says) in [
        ("/api/v1/packages/binary?before=3", "before"),
        ("/api/v1/packages/binary?status=MAYBE", "MAYBE"),
        ("/api/v1/packages/binary?limit=lots", "limit"),
        ("/api/v1/packages/binary?sort=size", "sort"),
        ("/api/v1/packages/binary?signer=nobody", "signer"),
        ("/api/v1/builds/-1", "build id"),
        ("/api/v1/builds/99999", "no build"),
    ] {
        let (status, body) = request("GET", url, path, &[], Vec::new()).unwrap();
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(body.contains(says), "{path}: {body}");
    }

    // The queue, on a node that syncs the same mirror and builds nothing,
    // so that its jobs stay queued.
    let qdir = t.path().join("queue-node");
    std::fs::create_dir_all(&qdir).unwrap();
    std::fs::write(
        qdir.join("vouchd.toml"),
        format!(
            "[[sync]]\nname = \"demo-core\"\ndistribution = \"archlinux\"\n\
             mirror = \"{}/$repo/os/$arch\"\nrepos = [\"core\"]\narchitectures = [\"x86_64\"]\n\
             interval_secs = 600\n",
            fed.mirror.url
        ),
    )
    .unwrap();
    let qnode = NodeProcess::start(&qdir, &["--sync-interval", "1"]).unwrap();
    let qurl = qnode.url();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get_json(qurl, "/api/v1/queue").unwrap()["total"] != PACKAGES.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue node never synced"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let queue = |url: &str| -> Vec<Value> {
        let (ok, out, err) = rebuildctl(url, None, &["queue", "ls", "--json"]);
        assert!(ok, "{err}");
        json_pages(&out)
    };
    let jobs = queue(qurl);
    assert_eq!(jobs.len(), PACKAGES.len(), "{jobs:?}");
    for j in &jobs {
        assert_eq!(j["priority"], 1, "{j}");
        assert!(
            j["queued_at"]
                .as_str()
                .is_some_and(|s| s.len() == 19 && !s.ends_with('Z')),
            "{j}"
        );
    }
    let (ok, out, _) = rebuildctl(qurl, None, &["queue", "ls"]);
    assert!(ok);
    assert_eq!(out.lines().count(), PACKAGES.len(), "{out}");

    // `queue push` needs the admin cookie; a wrong one is refused.
    let cookie = t.path().join("queue-cookie");
    std::fs::write(&cookie, qnode.admin_token().unwrap()).unwrap();
    let bad = t.path().join("bad-cookie");
    std::fs::write(&bad, "not the token").unwrap();
    let (ok, _, err) = rebuildctl(
        qurl,
        Some(&bad),
        &["queue", "push", "archlinux", "core", "zstd"],
    );
    assert!(!ok, "a wrong cookie was accepted");
    assert!(err.contains("401"), "{err}");
    let (ok, out, err) = rebuildctl(
        qurl,
        Some(&cookie),
        &["queue", "push", "archlinux", "core", "unrepro-kernel"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("applied to 1 builds"), "{out}");
    let jobs = queue(qurl);
    assert_eq!(jobs.len(), PACKAGES.len(), "queued twice: {jobs:?}");
    assert!(
        jobs.iter()
            .any(|j| j["name"] == "unrepro-kernel" && j["priority"] == 0),
        "{jobs:?}"
    );

    // `queue drop` takes it off.
    let (ok, _, err) = rebuildctl(
        qurl,
        Some(&cookie),
        &["queue", "drop", "archlinux", "core", "unrepro-kernel"],
    );
    assert!(ok, "{err}");
    let jobs = queue(qurl);
    assert_eq!(jobs.len(), PACKAGES.len() - 1, "{jobs:?}");
    assert!(
        jobs.iter().all(|j| j["name"] != "unrepro-kernel"),
        "{jobs:?}"
    );
}
