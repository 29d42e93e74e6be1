//! The pacman hook with the real pacman (Debian's pacman-package-manager,
//! pacman 6): packages built with makepkg, published with repo-add in a
//! loopback repository, a running `vouchd` holding verdicts of two test
//! signers, and `pacman --root R --dbpath R/var/lib/pacman --hookdir H
//! --config C -S PKG` into a throw-away root holding `vouch` (pacman runs
//! hooks chrooted into the root) and `/etc/vouch/client.toml`.
//! Then `vouch check-installed --root R` audits what got installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use vouch_attest::{Digest, Outcome};
use vouch_testnet::demo::sibling_binary;
use vouch_testnet::node::NodeProcess;
use vouch_testnet::{archrepo, client, fixtures};

/// Copies `vouch` and the libraries it links into `root`.
fn install_vouch(root: &Path) {
    let vouch = sibling_binary("vouch").unwrap();
    std::fs::copy(&vouch, root.join("usr/bin/vouch")).unwrap();
    let ldd = Command::new("ldd").arg(&vouch).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = path {
            let to = root.join(p.strip_prefix("/").unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

struct Pacman {
    root: PathBuf,
    conf: PathBuf,
    hooks: PathBuf,
}

impl Pacman {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let r = self.root.display().to_string();
        let out = Command::new("pacman")
            .args(["--noconfirm", "--root", &r])
            .arg("--dbpath")
            .arg(self.root.join("var/lib/pacman"))
            .arg("--cachedir")
            .arg(self.root.join("var/cache/pacman/pkg"))
            .arg("--hookdir")
            .arg(&self.hooks)
            .arg("--config")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn installed(&self, name: &str) -> bool {
        self.root.join(format!("usr/share/{name}/payload")).exists()
    }
}

#[test]
fn the_pacman_hook_lets_good_packages_in_and_stops_the_rest() {
    if !archrepo::tools_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let pkgs = t.path().join("pkgs");
    std::fs::create_dir_all(&pkgs).unwrap();
    let names = ["vouch-good", "vouch-bad", "vouch-unknown", "vouch-altered"];
    let built: Vec<PathBuf> = names
        .iter()
        .map(|n| archrepo::build(&pkgs, n, "as published"))
        .collect();
    let sha = |p: &Path| Digest::of(&std::fs::read(p).unwrap());
    let repo = t.path().join("repo");
    archrepo::publish(&repo, "vouchtest", &built);

    // Two rebuilders: both vouch for vouch-good and for vouch-altered as
    // first published; one says vouch-bad does not reproduce.
    let (a, b) = (
        fixtures::key("hook signer a"),
        fixtures::key("hook signer b"),
    );
    let rebuilt = Digest::of(b"what the rebuilder got");
    let log_a = fixtures::log(
        &a,
        &[
            (sha(&built[0]), "vouch-good", Outcome::Good),
            (
                sha(&built[1]),
                "vouch-bad",
                Outcome::Bad {
                    rebuilt_sha256: rebuilt,
                },
            ),
            (sha(&built[3]), "vouch-altered", Outcome::Good),
        ],
    );
    let log_b = fixtures::log(
        &b,
        &[
            (sha(&built[0]), "vouch-good", Outcome::Good),
            (sha(&built[1]), "vouch-bad", Outcome::Good),
            (sha(&built[3]), "vouch-altered", Outcome::Good),
        ],
    );
    let node_dir = t.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut node = NodeProcess::start(&node_dir, &[]).unwrap();
    node.submit(&[log_a, log_b].concat()).unwrap();

    // The mirror then serves another vouch-altered under the same version.
    let other = t.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let altered = archrepo::build(&other, "vouch-altered", "altered after signing");
    assert_ne!(sha(&altered), sha(&built[3]));
    archrepo::publish(&repo, "vouchtest", &[altered]);

    let root = t.path().join("root");
    let conf = archrepo::root(&root, &archrepo::pacman_conf("vouchtest", &repo));
    install_vouch(&root);
    let etc = root.join("etc/vouch");
    let config = |on_unknown: &str, node: &str| {
        client::write_config(
            &etc,
            "/etc/vouch/keys.d",
            &[node],
            &[("a", &a), ("b", &b)],
            2,
            on_unknown,
            "/var/cache/vouch",
        )
    };
    config("deny", node.url());
    let hooks = t.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/pacman/vouch.hook"),
        hooks.join("vouch.hook"),
    )
    .unwrap();
    let pacman = Pacman {
        root: root.clone(),
        conf,
        hooks,
    };
    let (ok, out) = pacman.run(&["-Sy"]);
    assert!(ok, "{out}");

    // Two GOOD verdicts: installed.
    let (ok, out) = pacman.run(&["-S", "vouch-good"]);
    assert!(ok && pacman.installed("vouch-good"), "{out}");
    assert!(out.contains("vouch: 1 of 1 packages verified"), "{out}");

    // A trusted BAD: refused, nothing installed.
    let (ok, out) = pacman.run(&["-S", "vouch-bad"]);
    assert!(!ok && !pacman.installed("vouch-bad"), "{out}");
    assert!(out.contains("vouch-bad-1.0-1: REJECTED"), "{out}");
    // Several at once: one at fault stops them all.
    let (ok, out) = pacman.run(&["-S", "vouch-bad", "vouch-unknown"]);
    assert!(!ok && !pacman.installed("vouch-unknown"), "{out}");

    // Unknown, under on_unknown = "deny": refused.
    let (ok, out) = pacman.run(&["-S", "vouch-unknown"]);
    assert!(!ok && !pacman.installed("vouch-unknown"), "{out}");
    assert!(out.contains("vouch-unknown-1.0-1: UNKNOWN"), "{out}");

    // Altered after its verdicts were signed: nobody vouches for these
    // bytes, refused.
    let (ok, out) = pacman.run(&["-S", "vouch-altered"]);
    assert!(!ok && !pacman.installed("vouch-altered"), "{out}");
    assert!(out.contains("vouch-altered-1.0-1: UNKNOWN"), "{out}");

    // A local file (pacman -U): nothing published to check it against, so
    // it is unknown: refused under "deny"...
    let local = archrepo::build(&other, "vouch-local", "from a file");
    let local_arg = local.display().to_string();
    let (ok, out) = pacman.run(&["-U", &local_arg]);
    assert!(!ok && !pacman.installed("vouch-local"), "{out}");
    assert!(out.contains("vouch-local: in no sync database"), "{out}");

    // Unknown, under on_unknown = "warn": installed, with a warning.
    config("warn", node.url());
    let (ok, out) = pacman.run(&["-U", &local_arg]);
    assert!(ok && pacman.installed("vouch-local"), "{out}");
    assert!(
        out.contains("warning: vouch-local: in no sync database"),
        "{out}"
    );
    let (ok, out) = pacman.run(&["-S", "vouch-unknown"]);
    assert!(ok && pacman.installed("vouch-unknown"), "{out}");
    assert!(
        out.contains("warning: vouch-unknown-1.0-1: UNKNOWN"),
        "{out}"
    );
    // ...but a trusted BAD still is not.
    let (ok, out) = pacman.run(&["-S", "vouch-bad"]);
    assert!(!ok && !pacman.installed("vouch-bad"), "{out}");

    // The audit of the root: one verified (hash from the sync database),
    // one unknown.
    let outside = t.path().join("outside");
    let outside_config = client::write_config(
        &outside,
        &outside.join("keys.d").display().to_string(),
        &[node.url()],
        &[("a", &a), ("b", &b)],
        2,
        "deny",
        &outside.join("cache").display().to_string(),
    );
    let r_str = root.display().to_string();
    let audit = || {
        let (code, out, err) = client::vouch(
            Some(&outside_config),
            &["check-installed", "--json", "--root", &r_str],
        );
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        (code, report)
    };
    let (code, report) = audit();
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["summary"]["verified"], 1, "{report}");
    assert_eq!(report["summary"]["unknown"], 1, "{report}");
    let good = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vouch-good")
        .unwrap();
    assert_eq!(good["sha256"], sha(&built[0]).to_hex(), "{report}");
    assert_eq!(good["status"], "VERIFIED");
    // Without sync databases, the hash comes from the package cache.
    let sync = root.join("var/lib/pacman/sync");
    let aside = root.join("var/lib/pacman/sync-aside");
    std::fs::rename(&sync, &aside).unwrap();
    let (_, cached) = audit();
    std::fs::rename(&aside, &sync).unwrap();
    let good = cached["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vouch-good")
        .unwrap();
    assert_eq!(good["sha256"], sha(&built[0]).to_hex(), "{cached}");
    assert!(
        good["hash_from"]
            .as_str()
            .unwrap()
            .contains("var/cache/pacman/pkg/vouch-good-1.0-1-any.pkg.tar.zst"),
        "{good}"
    );
    assert_eq!(good["status"], "VERIFIED");

    // A bundle of what judges the installed system (and vouch-bad), made
    // while the node answers...
    let vouch_cmd = |args: &[&str]| client::vouch(Some(&outside_config), args);
    let bundle = t.path().join("system.bundle");
    let b_str = bundle.display().to_string();
    let bad_hex = sha(&built[1]).to_hex();
    let (code, out, err) = vouch_cmd(&[
        "export",
        "--bundle",
        &b_str,
        "--installed",
        "--root",
        &r_str,
        "--sha256",
        &bad_hex,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let written: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["artifacts"], 3, "{written}");
    assert_eq!(written["verdicts"], 4, "{written}");

    // No node answers: the cached envelopes (verified again) still decide.
    node.stop().unwrap();
    // ...and judges alone, with the same answers.
    let (code, out, err) = vouch_cmd(&[
        "check-installed",
        "--root",
        &r_str,
        "--bundle",
        &b_str,
        "--json",
    ]);
    let offline: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(code, 2);
    assert_eq!(
        offline["summary"]["verified"],
        report["summary"]["verified"]
    );
    assert_eq!(offline["summary"]["unknown"], report["summary"]["unknown"]);
    let (code, out, _) = vouch_cmd(&["verify", "--sha256", &bad_hex, "--bundle", &b_str]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("REJECTED"), "{out}");
    let good_hex = sha(&built[0]).to_hex();
    let (code, out, _) = vouch_cmd(&["verify", "--sha256", &good_hex, "--bundle", &b_str]);
    assert_eq!(code, 0, "{out}");
    config("deny", "http://127.0.0.1:9");
    let (ok, out) = pacman.run(&["-S", "vouch-good"]);
    assert!(ok, "{out}");
    assert!(out.contains("no node answered; judging from"), "{out}");
    let (ok, out) = pacman.run(&["-S", "vouch-bad"]);
    assert!(!ok && out.contains("REJECTED"), "{out}");
}
