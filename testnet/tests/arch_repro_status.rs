//! arch-repro-status (1.3.11, the last release that builds against
//! Debian's libalpm 13; installed by `.ci/run`) against a vouch node,
//! unchanged: packages built with makepkg and published with repo-add,
//! synced by the node, installed with the real pacman into a throw-away
//! root, and judged by the node's own signed verdicts through
//! `/api/v0/pkgs/list`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use vouch_attest::{Digest, Outcome};
use vouch_testnet::http::get_json;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::rebuild::have_tools;
use vouch_testnet::{archrepo, fixtures};

#[test]
fn arch_repro_status_reads_the_nodes_verdicts_for_an_installed_system() {
    if !archrepo::tools_present()
        || !have_tools(
            &["arch-repro-status"],
            "cargo install --locked arch-repro-status --version 1.3.11 (needs libalpm-dev)",
        )
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let pkgs = t.path().join("pkgs");
    std::fs::create_dir_all(&pkgs).unwrap();
    let names = ["vouch-good", "vouch-bad", "vouch-unknown"];
    let built: Vec<PathBuf> = names
        .iter()
        .map(|n| archrepo::build(&pkgs, n, &format!("payload of {n}")))
        .collect();
    let mirror = t.path().join("mirror");
    let repo = mirror.join("vouchrepo");
    archrepo::publish(&repo, "vouchrepo", &built);

    // The node, with a key of ours so that we can sign its own verdicts.
    let data = t.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let key = fixtures::key("arch-repro-status node");
    vouch_attest::write_secret_key(&data.join("node.key"), &key).unwrap();
    std::fs::write(
        data.join("vouchd.toml"),
        format!(
            "[[sync]]\nname = \"vouchrepo\"\ndistribution = \"archlinux\"\n\
             mirror = \"file://{}/$repo\"\nrepos = [\"vouchrepo\"]\narchitectures = [\"x86_64\"]\n",
            mirror.display()
        ),
    )
    .unwrap();
    let node = NodeProcess::start(&data, &["--sync-interval", "1"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(node.url(), "/api/v1/packages/binary").unwrap()["total"] != names.len() {
        assert!(
            Instant::now() < deadline,
            "the node never synced the repository"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sha = |i: usize| Digest::of(&std::fs::read(&built[i]).unwrap());
    let verdicts = fixtures::log(
        &key,
        &[
            (sha(0), names[0], Outcome::Good),
            (
                sha(1),
                names[1],
                Outcome::Bad {
                    rebuilt_sha256: Digest::of(b"something else"),
                },
            ),
        ],
    );
    node.submit(&verdicts).unwrap();

    // A system with the three packages, installed by pacman.
    let root = t.path().join("root");
    let conf = archrepo::root(&root, &archrepo::pacman_conf("vouchrepo", &repo));
    let dbpath = root.join("var/lib/pacman");
    let out = Command::new("pacman")
        .args(["--noconfirm", "--root"])
        .arg(&root)
        .arg("--dbpath")
        .arg(&dbpath)
        .arg("--cachedir")
        .arg(root.join("var/cache/pacman/pkg"))
        .arg("--config")
        .arg(&conf)
        .arg("-Sy")
        .args(names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new("arch-repro-status")
        .arg("--rebuilderd")
        .arg(node.url())
        .arg("--dbpath")
        .arg(&dbpath)
        .args(["--repos", "vouchrepo"])
        .env("NO_COLOR", "1")
        .env("CLICOLOR", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}{stderr}"))
            .to_string()
    };
    assert!(
        line("vouch-good").starts_with("[+]") && line("vouch-good").contains("GOOD"),
        "{stdout}"
    );
    assert!(
        line("vouch-bad").starts_with("[-]") && line("vouch-bad").contains("BAD"),
        "{stdout}"
    );
    assert!(
        line("vouch-unknown").starts_with("[?]") && line("vouch-unknown").contains("UNKWN"),
        "{stdout}"
    );
    assert!(
        stderr.contains("2/3 packages are not reproducible"),
        "{stderr}"
    );
}
