//! The files of `contrib/` are real: the systemd units pass
//! `systemd-analyze verify` (pointed at the built `vouchd`), and the hook
//! files say what the hooks need.

use std::path::Path;
use std::process::Command;

use vouch_testnet::demo::sibling_binary;
use vouch_testnet::rebuild::have_tools;

fn contrib(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contrib")
            .join(rel),
    )
    .unwrap()
}

#[test]
fn the_systemd_units_verify() {
    if !have_tools(&["systemd-analyze"], "apt-get install systemd") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let vouchd = sibling_binary("vouchd").unwrap();
    let mut units = Vec::new();
    for name in ["vouchd.service", "vouchd-worker.service"] {
        let text = contrib(&format!("systemd/{name}"))
            .replace("/usr/bin/vouchd", &vouchd.display().to_string())
            .replace("/etc/default/vouchd-worker", "-/etc/default/vouchd-worker");
        assert!(text.contains("ProtectSystem=strict"), "{name} is hardened");
        assert!(
            !text.lines().any(|l| l.starts_with("RestrictNamespaces=")),
            "{name}: builds need namespaces"
        );
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        units.push(p);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

#[test]
fn the_hooks_are_wired_as_pacman_and_apt_expect() {
    let hook = contrib("pacman/vouch.hook");
    for line in [
        "Operation = Install",
        "Operation = Upgrade",
        "Type = Package",
        "Target = *",
        "When = PreTransaction",
        "Exec = /usr/bin/vouch pacman-hook",
        "NeedsTargets",
        "AbortOnFail",
    ] {
        assert!(
            hook.lines().any(|l| l.trim() == line),
            "vouch.hook lacks {line}"
        );
    }
    let apt = contrib("apt/80vouch");
    assert!(apt.contains("DPkg::Pre-Install-Pkgs { \"/usr/bin/vouch apt-hook\"; };"));
    assert!(apt.contains("DPkg::Tools::Options::/usr/bin/vouch::Version \"3\";"));
}
