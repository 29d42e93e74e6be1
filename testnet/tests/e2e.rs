//! End to end through real HTTP mirrors served on loopback: the real Arch
//! fixture entries in gzip and zstd repository databases, and a real Debian
//! rebuild of `hello` 2.10-3 by two nodes.

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vouch_testnet::debrepo;
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

/// The test package, built the way a distribution builds it and served
/// by a signed loopback mirror with its `.buildinfo`; two nodes sync it
/// and rebuild it with the debian backend, isolated, in its recorded
/// environment. Both sign GOOD for the published sha256.
#[test]
fn two_nodes_rebuild_the_test_package_in_its_recorded_environment_and_agree_it_is_good() {
    if !debrepo::tools_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (src, built, mirror) = (
        t.path().join("src"),
        t.path().join("built"),
        t.path().join("mirror"),
    );
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&built).unwrap();
    let name = "vouch-repro-test";
    debrepo::source_package(
        &src,
        &debrepo::Variant {
            name,
            build_extra: String::new(),
        },
    );
    debrepo::distribution_build(&src, &built, &[name]);
    debrepo::publish(&src, &built, &mirror, &[name]);
    let published = vouch_attest::Digest::of(
        &std::fs::read(mirror.join(format!("pool/main/v/{name}/{name}_1.0_amd64.deb"))).unwrap(),
    );
    let server = FileServer::start(mirror.clone()).unwrap();
    let config = format!(
        "[[sync]]\nname = \"test\"\ndistribution = \"debian\"\nmirror = \"{}\"\nreleases = [\"bookworm\"]\n\
         components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n\
         buildinfo = \"{}\"\n\n\
         [rebuild]\nworkers = 1\ntimeout_secs = 1800\n\n\
         [[rebuild.backends]]\ndistribution = \"debian\"\nbackend = {{ kind = \"debian\" }}\n",
        server.url,
        debrepo::archive_keyring().display(),
        debrepo::BUILDINFO_TEMPLATE
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
        "both nodes rebuilt {name} isolated and exchanged verdicts in {:?}",
        start.elapsed()
    );
    let v = get_json(
        net.nodes[0].url(),
        &format!("/api/vouch/v1/verdicts?distribution=debian&name={name}"),
    )
    .unwrap();
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    for x in verdicts {
        assert_eq!(x["verdict"]["outcome"]["result"], "GOOD", "{x}");
        assert_eq!(x["verdict"]["subject"]["sha256"], published.to_hex());
        assert!(
            x["verdict"]["inputs"]["buildinfo_sha256"].is_string(),
            "{x}"
        );
    }
}
