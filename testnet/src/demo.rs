//! The README's first command: a local federation that rebuilds, signs,
//! gossips and answers queries. A demo mirror of an Arch-style repository is
//! served over HTTP on loopback; three `vouchd` nodes (with the test-only
//! keys of `keys/testnet/`) sync it, rebuild every package with the
//! deterministic demo backend, sign one verdict per package each, and gossip
//! them; `vouch verify --node` asks a single node and checks every package
//! against a 2-of-3 policy, verifying every signature itself.

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

/// Finds a sibling binary of the running one (`vouch`, `vouchd`); when this
/// binary was built by `cargo run -p vouch-testnet` alone, builds them the
/// same way first.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running binary")?;
    let mut dirs: Vec<PathBuf> = exe.parent().map(Path::to_path_buf).into_iter().collect();
    // Test binaries live in target/<profile>/deps.
    if let Some(p) = exe.parent().and_then(Path::parent) {
        dirs.push(p.to_path_buf());
    }
    if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let release = dirs.iter().any(|d| d.ends_with("release"));
    if workspace.join("Cargo.toml").is_file() {
        eprintln!(
            "building vouchd and vouch ({})...",
            if release { "release" } else { "debug" }
        );
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&workspace).args([
            "build",
            "-q",
            "-p",
            "vouch-node",
            "-p",
            "vouch-cli",
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
        }
        if cmd.status().is_ok_and(|s| s.success())
            && let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
        {
            return Ok(found);
        }
    }
    anyhow::bail!(
        "`{name}` is not built next to {}; run `cargo build --release` first",
        exe.display()
    )
}

/// The demo federation, converged.
pub struct Federation {
    /// The nodes.
    pub net: Testnet,
    /// The mirror's file server.
    pub mirror: crate::serve::FileServer,
    /// Where the demo packages are on disk.
    pub packages_dir: PathBuf,
    /// A 2-of-N policy of the nodes' keys.
    pub policy: PathBuf,
    /// Time until every node held every verdict.
    pub converged: Duration,
}

/// Starts the demo federation in `dir` and waits until every node holds
/// every verdict.
pub fn start_federation(dir: &Path, nodes: usize, sync_interval: u64) -> Result<Federation> {
    std::fs::create_dir_all(dir)?;
    let root = dir.join("mirror");
    crate::mirror::write_arch_mirror(&root, "core", PACKAGES)?;
    let mirror = crate::serve::FileServer::start(root.clone())?;
    let config = format!(
        "[[sync]]\nname = \"demo-core\"\ndistribution = \"archlinux\"\nmirror = \"{}/$repo/os/$arch\"\n\
         repos = [\"core\"]\narchitectures = [\"x86_64\"]\ninterval_secs = 600\n\n\
         [rebuild]\nworkers = 1\n\n[[rebuild.backends]]\ndistribution = \"archlinux\"\nbackend = {{ kind = \"demo\" }}\n\n\
         [admission]\ntrusted = [{}]\n",
        mirror.url,
        (1..=nodes)
            .map(|n| format!("\"{}\"", node_key(n).public_key()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut net = Testnet::start(
        &dir.join("federation"),
        nodes,
        Options {
            keyring_keys: true,
            config: Some(config),
            sync_interval,
            ..Options::default()
        },
    )?;
    let total = (PACKAGES.len() * nodes) as u64;
    let converged = net.wait_all(Duration::from_secs(120), |n| {
        let s = crate::http::get_json(n.url(), "/api/vouch/v1/status")?;
        Ok(s["store"]["verdicts"].as_u64() == Some(total))
    })?;
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
    Ok(Federation {
        net,
        mirror,
        packages_dir: root.join("core/os/x86_64"),
        policy: policy_path,
        converged,
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
    let mut fed = start_federation(dir, nodes, 2)?;
    say(format!(
        "demo mirror: {} packages at {}",
        PACKAGES.len(),
        fed.mirror.url
    ));
    for node in &fed.net.nodes {
        say(format!("vouchd {}  peer {}", node.url(), node.peer_id()?));
    }
    say(format!(
        "each node synced the mirror, rebuilt {} packages and signed a verdict for each; \
         gossip gave every node all {} verdicts after {:.1} s",
        PACKAGES.len(),
        PACKAGES.len() * nodes,
        fed.converged.as_secs_f64()
    ));
    let node = fed.net.nodes.last().context("no nodes")?;
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
    say(format!(
        "\npolicy: 2 of {nodes} ({}); asking only {}\n",
        fed.policy.display(),
        node.url()
    ));

    let mut rows = Vec::new();
    for (name, version) in PACKAGES {
        let filename = format!("{name}-{version}-x86_64.pkg.tar.zst");
        let out = Command::new(&vouch)
            .arg("verify")
            .arg(fed.packages_dir.join(&filename))
            .arg("--policy")
            .arg(&fed.policy)
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
    fed.net.stop()?;
    Ok(rows)
}
