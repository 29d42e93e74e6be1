//! The README's first command: a local federation that rebuilds, signs,
//! gossips and answers queries. Three `vouchd` nodes (with the test-only
//! keys of `keys/testnet/`) watch a local demo mirror of an Arch-style
//! repository, rebuild every package with the deterministic demo backend,
//! sign one verdict per package each, and gossip them; `vouch verify
//! --node` then asks a single node and checks every package against a
//! 2-of-3 policy, verifying every signature itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::keys::{node_key, node_name};
use crate::net::{Options, Testnet};

/// The demo repository: (name, version).
pub const PACKAGES: &[(&str, &str)] = &[
    ("pacman", "7.0.0-1"),
    ("filesystem", "2025.10.12-1"),
    ("zstd", "1.5.7-2"),
    ("unrepro-kernel", "6.12.1-1"),
    ("flaky-llvm", "19.1.7-1"),
];

/// One line of the demo's result.
#[derive(Debug, Clone)]
pub struct Row {
    /// Package name.
    pub name: String,
    /// `VERIFIED`, `REJECTED` or `UNKNOWN`.
    pub status: String,
    /// `vouch verify`'s exit code.
    pub exit: i32,
}

/// Finds a sibling binary of the running one (`vouch`, `vouchd`).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running binary")?;
    let mut dirs: Vec<PathBuf> = exe.parent().map(Path::to_path_buf).into_iter().collect();
    // Test binaries live in target/<profile>/deps.
    if let Some(p) = exe.parent().and_then(Path::parent) {
        dirs.push(p.to_path_buf());
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "`{name}` is not built next to {}; run `cargo build --release` first",
                exe.display()
            )
        })
}

/// Runs the demo in `dir` with `nodes` rebuilders and prints what happens.
pub fn run(dir: &Path, nodes: usize, quiet: bool) -> Result<Vec<Row>> {
    let vouch = sibling_binary("vouch")?;
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    std::fs::create_dir_all(dir)?;
    let mirror = crate::mirror::write_arch_mirror(&dir.join("mirror"), "core", PACKAGES)?;
    say(format!(
        "demo mirror: {} packages at {mirror}",
        PACKAGES.len()
    ));

    let config = format!(
        "[[sync]]\nname = \"demo-core\"\ndistribution = \"archlinux\"\nmirror = \"{mirror}\"\n\
         repos = [\"core\"]\narchitectures = [\"x86_64\"]\ninterval_secs = 600\n\n\
         [rebuild]\nworkers = 1\n\n[[rebuild.backends]]\ndistribution = \"archlinux\"\nbackend = {{ kind = \"demo\" }}\n"
    );
    let mut net = Testnet::start(
        &dir.join("federation"),
        nodes,
        Options {
            keyring_keys: true,
            config: Some(config),
            ..Options::default()
        },
    )?;
    for node in &net.nodes {
        say(format!("vouchd {}  peer {}", node.url(), node.peer_id()?));
    }
    let total = (PACKAGES.len() * nodes) as u64;
    let took = net.wait_all(Duration::from_secs(120), |n| {
        let s = crate::http::get_json(n.url(), "/api/vouch/v1/status")?;
        Ok(s["store"]["verdicts"].as_u64() == Some(total))
    })?;
    let node = net.nodes.last().context("no nodes")?;
    say(format!(
        "each node synced the mirror, rebuilt {} packages and signed a verdict for each; \
         gossip gave every node all {total} verdicts after {:.1} s",
        PACKAGES.len(),
        took.as_secs_f64()
    ));
    let answer = crate::http::get_json(
        node.url(),
        "/api/vouch/v1/verdicts?distribution=archlinux&name=unrepro-kernel",
    )?;
    for v in answer["verdicts"].as_array().into_iter().flatten() {
        say(format!(
            "  {} says {} about unrepro-kernel (evidence: build log {})",
            v["verdict"]["signer"].as_str().unwrap_or("?"),
            v["verdict"]["outcome"]["result"].as_str().unwrap_or("?"),
            v["verdict"]["evidence"]["build_log"]
                .as_str()
                .unwrap_or("-")
        ));
    }

    let mut policy = String::from("threshold = 2\nveto_on_bad = true\n");
    for n in 1..=nodes {
        policy += &format!(
            "\n[[signer]]\nname = \"{}\"\noperator = \"operator-{n}\"\nkey = \"{}\"\n",
            node_name(n),
            node_key(n).public_key()
        );
    }
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy)?;
    say(format!(
        "\npolicy: 2 of {nodes} ({}); asking only {}\n",
        policy_path.display(),
        node.url()
    ));

    let repo = dir.join("mirror/core/os/x86_64");
    let mut rows = Vec::new();
    for (name, version) in PACKAGES {
        let filename = format!("{name}-{version}-x86_64.pkg.tar.zst");
        let out = Command::new(&vouch)
            .arg("verify")
            .arg(repo.join(&filename))
            .arg("--policy")
            .arg(&policy_path)
            .arg("--node")
            .arg(node.url())
            .arg("--json")
            .output()
            .context("running vouch verify")?;
        let exit = out.status.code().unwrap_or(-1);
        let decision: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("vouch verify: {}", String::from_utf8_lossy(&out.stderr)))?;
        let status = decision["status"].as_str().unwrap_or("?").to_string();
        say(format!(
            "vouch verify {filename:<42} {status:<9} exit {exit}  ({} GOOD, {} needed)",
            decision["good"], decision["threshold"]
        ));
        rows.push(Row {
            name: name.to_string(),
            status,
            exit,
        });
    }
    net.stop()?;
    Ok(rows)
}
