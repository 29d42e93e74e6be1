//! End to end through real HTTP mirrors served on loopback: the real Arch
//! fixture entries in gzip and zstd repository databases, and a real Debian
//! rebuild of `hello` 2.10-3 by two nodes.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::http::get_json;
use vouch_testnet::net::{Options, Testnet};
use vouch_testnet::serve::FileServer;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../testdata/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn arch_db(entries: &[(&str, String)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn arch_databases_in_gzip_and_zstd_over_http_sync_into_the_right_jobs() {
    let t = tempfile::tempdir().unwrap();
    let pacman = fixture("arch/repo-db_pacman-5.2.2-1.desc");
    // A split package of the same base, made from the real entry.
    let libalpm = pacman
        .replacen("%NAME%\npacman\n", "%NAME%\nlibalpm\n", 1)
        .replace(
            "pacman-5.2.2-1-x86_64.pkg.tar.zst",
            "libalpm-5.2.2-1-x86_64.pkg.tar.zst",
        );
    let tar = arch_db(&[
        ("pacman-5.2.2-1/desc", pacman.clone()),
        ("libalpm-5.2.2-1/desc", libalpm),
    ]);
    let core = t.path().join("core/os/x86_64");
    let extra = t.path().join("extra/os/x86_64");
    std::fs::create_dir_all(&core).unwrap();
    std::fs::create_dir_all(&extra).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    std::fs::write(core.join("core.db"), gz.finish().unwrap()).unwrap();
    let zs = {
        let mut e = zstd_encode(&arch_db(&[("pacman-5.2.2-1/desc", pacman)]));
        std::mem::take(&mut e)
    };
    std::fs::write(extra.join("extra.db"), zs).unwrap();
    let server = FileServer::start(t.path().to_path_buf()).unwrap();
    let out = Command::new(sibling_binary("vouchd").unwrap())
        .args(["--data-dir", t.path().join("d").to_str().unwrap()])
        .args(["sync", "--dry-run", "--json", "--distribution", "archlinux"])
        .args(["--mirror", &format!("{}/$repo/os/$arch", server.url)])
        .args([
            "--repo",
            "core",
            "--repo",
            "extra",
            "--architecture",
            "x86_64",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let core_job = jobs.iter().find(|j| j["component"] == "core").unwrap();
    assert_eq!(core_job["source"], "pacman");
    assert_eq!(
        core_job["subjects"].as_array().unwrap().len(),
        2,
        "split packages in one job"
    );
    assert_eq!(
        core_job["subjects"][0]["sha256"],
        "d78ea84801548dee105dfaf1b59a9b07fbf7fe5bc26414df27ca376ac46c3000"
    );
    let extra_job = jobs.iter().find(|j| j["component"] == "extra").unwrap();
    assert_eq!(extra_job["subjects"].as_array().unwrap().len(), 1);
}

fn zstd_encode(bytes: &[u8]) -> Vec<u8> {
    // The zstd crate is not a dependency of the testnet: use the command
    // line tool when present, else the node's own decoder test covers it.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("db");
    std::fs::write(&input, bytes).unwrap();
    let ok = Command::new("zstd")
        .arg("-q")
        .arg("-f")
        .arg(&input)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "zstd(1) is needed for this test");
    std::fs::read(dir.path().join("db.zst")).unwrap()
}

fn root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

fn fetch(url: &str, to: &Path) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bytes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::get(url)
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .bytes()
                .await
                .unwrap()
        });
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, bytes).unwrap();
}

fn xz(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f");
    std::fs::write(&input, text).unwrap();
    assert!(
        Command::new("xz")
            .arg("-k")
            .arg(&input)
            .status()
            .unwrap()
            .success()
    );
    std::fs::read(dir.path().join("f.xz")).unwrap()
}

/// The real `hello` from Debian 12, served by a local mirror; two nodes
/// rebuild it with the debian backend. Both find it BAD with the same
/// rebuilt sha256, and diffoscope names usr/bin/hello (the build year in
/// the binary, see testdata/SOURCES.md).
#[test]
fn two_nodes_rebuild_the_real_hello_and_agree_it_is_bad() {
    if !root() {
        // CI runs as root and must skip nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must not skip: the Debian rebuild installs build dependencies with apt and needs root"
        );
        eprintln!(
            "SKIPPED: the Debian rebuild installs build dependencies with apt and needs root"
        );
        return;
    }
    let archive = std::env::var("VOUCH_DEBIAN_ARCHIVE")
        .unwrap_or_else(|_| "https://deb.debian.org/debian".into());
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    let packages = fixture("debian/Packages_hello.stanza");
    let sources = fixture("debian/Sources_hello.stanza");
    // The archive's files, fetched now, served from loopback.
    let deb_path = packages
        .lines()
        .find_map(|l| l.strip_prefix("Filename: "))
        .unwrap()
        .trim()
        .to_string();
    fetch(&format!("{archive}/{deb_path}"), &mirror.join(&deb_path));
    let dir = sources
        .lines()
        .find_map(|l| l.strip_prefix("Directory: "))
        .unwrap()
        .trim()
        .to_string();
    let mut in_files = false;
    for line in sources.lines() {
        if line.starts_with("Checksums-Sha256:") {
            in_files = true;
            continue;
        }
        if in_files {
            if !line.starts_with(' ') {
                break;
            }
            let name = line.split_whitespace().nth(2).unwrap();
            fetch(
                &format!("{archive}/{dir}/{name}"),
                &mirror.join(&dir).join(name),
            );
        }
    }
    let bin = mirror.join("dists/bookworm/main/binary-amd64");
    let src = mirror.join("dists/bookworm/main/source");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(bin.join("Packages.xz"), xz(&packages)).unwrap();
    std::fs::write(src.join("Sources.xz"), xz(&sources)).unwrap();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys");
    vouch_node::sync::release::write_inrelease(
        &mirror.join("dists/bookworm"),
        "bookworm",
        &std::fs::read_to_string(keys.join("test-archive.sec.asc")).unwrap(),
    )
    .unwrap();
    let server = FileServer::start(mirror.clone()).unwrap();

    let config = format!(
        "[[sync]]\nname = \"bookworm\"\ndistribution = \"debian\"\nmirror = \"{}\"\nreleases = [\"bookworm\"]\n\
         components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n\n[rebuild]\nworkers = 1\ntimeout_secs = 1800\n\n\
         [[rebuild.backends]]\ndistribution = \"debian\"\nbackend = {{ kind = \"debian\" }}\n",
        server.url,
        keys.join("test-archive.pub.asc").display()
    );
    let mut net = Testnet::start(
        &t.path().join("net"),
        2,
        Options {
            config: Some(config),
            ..Options::default()
        },
    )
    .unwrap();
    let start = Instant::now();
    net.wait_all(Duration::from_secs(1500), |n| {
        let s = get_json(n.url(), "/api/vouch/v1/status")?;
        Ok(s["store"]["verdicts"] == 2)
    })
    .unwrap_or_else(|e| {
        let logs: Vec<String> = (1..=2)
            .map(|i| {
                std::fs::read_to_string(t.path().join(format!("net/node-{i}.log")))
                    .unwrap_or_default()
            })
            .collect();
        panic!("{e}: {logs:#?}")
    });
    eprintln!(
        "both nodes rebuilt hello and exchanged verdicts in {:?}",
        start.elapsed()
    );
    let v = get_json(
        net.nodes[0].url(),
        "/api/vouch/v1/verdicts?distribution=debian&name=hello",
    )
    .unwrap();
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    let rebuilt: Vec<&Value> = verdicts.iter().map(|x| &x["verdict"]["outcome"]).collect();
    for o in &rebuilt {
        assert_eq!(o["result"], "BAD", "{o}");
    }
    assert_eq!(
        rebuilt[0]["rebuilt_sha256"], rebuilt[1]["rebuilt_sha256"],
        "two rebuilds agree byte for byte"
    );
    // Evidence lives with the node that signed: ask each node for its own.
    for (i, node) in net.nodes.iter().enumerate() {
        let me =
            get_json(node.url(), "/api/vouch/v1/status").unwrap()["node"]["public_key"].clone();
        let mine = verdicts
            .iter()
            .find(|x| x["verdict"]["signer"] == me)
            .expect("each node signed one");
        let diff = mine["verdict"]["evidence"]["diffoscope"]
            .as_str()
            .expect("a diffoscope blob");
        let blob = t.path().join(format!("diffoscope-{i}.txt"));
        fetch(&format!("{}/api/vouch/v1/blobs/{diff}", node.url()), &blob);
        let text = std::fs::read_to_string(&blob).unwrap();
        assert!(text.contains("usr/bin/hello"), "diffoscope output: {text}");
    }
}
