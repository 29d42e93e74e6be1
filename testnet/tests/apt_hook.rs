//! The apt hook with the real apt-get on this (Debian) machine: test
//! packages in a loopback repository, apt pointed at it alone (its own
//! source list, lists and cache directories), `vouch apt-hook` as
//! `DPkg::Pre-Install-Pkgs` with the version 3 protocol, and a running
//! `vouchd` holding verdicts of two test signers. A package with two GOOD
//! verdicts installs; one with a trusted BAD makes apt stop before dpkg
//! unpacks anything. What the test installs is purged afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use vouch_attest::{Digest, Outcome};
use vouch_testnet::debrepo::sh;
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::rebuild::have_tools;
use vouch_testnet::{client, fixtures};

const GOOD: &str = "vouch-apt-good";
const BAD: &str = "vouch-apt-bad";

fn deb(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: vouch tests <tests@vouch.invalid>\n\
             Description: vouch test package\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join(format!("usr/share/{name}/payload")), "test\n").unwrap();
    let out = dir.join(format!("{name}_1.0_all.deb"));
    sh(
        dir,
        &format!(
            "dpkg-deb --root-owner-group -Zgzip --build {} {} >/dev/null",
            root.display(),
            out.display()
        ),
    );
    out
}

fn installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains("installed")
                && !String::from_utf8_lossy(&o.stdout).contains("not-installed")
        })
}

fn purge() {
    let _ = Command::new("dpkg").args(["--purge", GOOD, BAD]).output();
}

#[test]
fn the_apt_hook_stops_a_rejected_package_before_dpkg_runs() {
    if !have_tools(
        &["apt-get", "dpkg-deb", "dpkg-scanpackages"],
        "apt-get install dpkg-dev",
    ) {
        return;
    }
    purge();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let good = deb(&repo, GOOD);
    let bad = deb(&repo, BAD);
    sh(
        &repo,
        "dpkg-scanpackages --multiversion . > Packages 2>/dev/null",
    );

    let (a, b) = (fixtures::key("apt a"), fixtures::key("apt b"));
    let sha = |p: &Path| Digest::of(&std::fs::read(p).unwrap());
    let log_a = fixtures::log(
        &a,
        &[
            (sha(&good), GOOD, Outcome::Good),
            (
                sha(&bad),
                BAD,
                Outcome::Bad {
                    rebuilt_sha256: Digest::of(b"another build"),
                },
            ),
        ],
    );
    let log_b = fixtures::log(
        &b,
        &[
            (sha(&good), GOOD, Outcome::Good),
            (sha(&bad), BAD, Outcome::Good),
        ],
    );
    let node_dir = t.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut node = NodeProcess::start(&node_dir, &[]).unwrap();
    node.submit(&[log_a, log_b].concat()).unwrap();
    let config = client::write_config(
        &t.path().join("client"),
        &t.path().join("client/keys.d").display().to_string(),
        &[node.url()],
        &[("a", &a), ("b", &b)],
        2,
        "deny",
        &t.path().join("cache").display().to_string(),
    );

    let apt_dir = t.path().join("apt");
    for d in ["lists/partial", "cache/archives/partial", "parts"] {
        std::fs::create_dir_all(apt_dir.join(d)).unwrap();
    }
    std::fs::write(
        apt_dir.join("sources.list"),
        format!("deb [trusted=yes] file://{} ./\n", repo.display()),
    )
    .unwrap();
    let vouch = sibling_binary("vouch").unwrap();
    let apt = |args: &[&str]| {
        let out = Command::new("apt-get")
            .args(["-y", "-q"])
            .arg("-o")
            .arg(format!(
                "Dir::Etc::SourceList={}",
                apt_dir.join("sources.list").display()
            ))
            .arg("-o")
            .arg(format!(
                "Dir::Etc::SourceParts={}",
                apt_dir.join("parts").display()
            ))
            .arg("-o")
            .arg(format!(
                "Dir::State::Lists={}",
                apt_dir.join("lists").display()
            ))
            .arg("-o")
            .arg(format!("Dir::Cache={}", apt_dir.join("cache").display()))
            .arg("-o")
            .arg(format!(
                "DPkg::Pre-Install-Pkgs::={} --config {} apt-hook",
                vouch.display(),
                config.display()
            ))
            .arg("-o")
            .arg(format!(
                "DPkg::Tools::Options::{}::Version=3",
                vouch.display()
            ))
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = apt(&["update"]);
    assert!(ok, "{out}");
    let (ok, out) = apt(&["install", "--no-install-recommends", GOOD]);
    let good_installed = installed(GOOD);
    let (bad_ok, bad_out) = apt(&["install", "--no-install-recommends", BAD]);
    let bad_installed = installed(BAD);
    purge();
    node.stop().unwrap();
    assert!(ok && good_installed, "{out}");
    assert!(out.contains("vouch: 1 of 1 packages verified"), "{out}");
    assert!(!bad_ok && !bad_installed, "{bad_out}");
    assert!(
        bad_out.contains("vouch-apt-bad 1.0 (all): REJECTED"),
        "{bad_out}"
    );
    assert!(!bad_out.contains("Unpacking vouch-apt-bad"), "{bad_out}");
}
