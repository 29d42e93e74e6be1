//! The README's first command: a local federation of real `vouchd` nodes;
//! three demo rebuilders sign verdicts about a small demo repository with
//! the `vouch` command, each hands its verdicts to its own node, gossip
//! spreads them to every node, and `vouch verify --node` asks one node and
//! checks every package against a 2-of-3 policy, verifying every signature
//! itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use vouch_attest::{Digest, Outcome, join_envelopes, write_secret_key};

use crate::backend;
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
    fs::create_dir_all(dir)?;
    let repo = dir.join("repo");
    fs::create_dir_all(&repo)?;

    // The demo repository: one file per package.
    let mut artifacts = Vec::new();
    for (name, version) in PACKAGES {
        let filename = format!("{name}-{version}-x86_64.pkg.tar.zst");
        let content = format!("demo package {name} {version}\n");
        fs::write(repo.join(&filename), &content)?;
        artifacts.push((
            name.to_string(),
            version.to_string(),
            filename,
            Digest::of(content.as_bytes()),
        ));
    }
    say(format!(
        "demo repository: {} packages in {}",
        artifacts.len(),
        repo.display()
    ));

    // Each node: a test-only key, a rebuild of every package by the demo
    // backend, a signed verdict chain.
    let mut policy = String::from("threshold = 2\nveto_on_bad = true\n");
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    let mut per_node: Vec<Vec<Vec<u8>>> = Vec::new();
    for n in 1..=nodes {
        let mut mine: Vec<Vec<u8>> = Vec::new();
        let key = node_key(n);
        let key_path = dir.join(format!("{}.key", node_name(n)));
        if !key_path.exists() {
            write_secret_key(&key_path, &key)?;
        }
        policy += &format!(
            "\n[[signer]]\nname = \"{}\"\noperator = \"operator-{n}\"\nkey = \"{}\"\n",
            node_name(n),
            key.public_key()
        );
        let mut prev = Digest::ZERO;
        for (seq, (name, version, filename, sha)) in artifacts.iter().enumerate() {
            let outcome = backend::rebuild(n, name, sha);
            let draft = json!({
                "seq": seq,
                "prev": prev,
                "subject": {
                    "distribution": "archlinux", "component": "core", "architecture": "x86_64",
                    "name": name, "version": version, "filename": filename, "sha256": sha,
                },
                "inputs": {"backend": "demo", "backend_version": backend::VERSION},
                "outcome": outcome_json(&outcome),
            });
            let base = dir.join(format!("{}-{seq}", node_name(n)));
            let json_path = base.with_extension("json");
            let cbor_path = base.with_extension("cbor");
            fs::write(&json_path, draft.to_string())?;
            let out = Command::new(&vouch)
                .args(["sign", "--key"])
                .arg(&key_path)
                .arg("--verdict")
                .arg(&json_path)
                .arg("--out")
                .arg(&cbor_path)
                .arg("--json")
                .output()
                .context("running vouch sign")?;
            if !out.status.success() {
                bail!(
                    "vouch sign failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let signed: Value = serde_json::from_slice(&out.stdout)?;
            prev = signed["id"]
                .as_str()
                .context("vouch sign --json printed no id")?
                .parse()?;
            let bytes = fs::read(&cbor_path)?;
            mine.push(bytes.clone());
            envelopes.push(bytes);
            say(format!(
                "{}  seq {seq}  {name:<16} {}",
                node_name(n),
                outcome
            ));
        }
        per_node.push(mine);
    }
    let policy_path = dir.join("policy.toml");
    fs::write(&policy_path, policy)?;
    let bundle = dir.join("verdicts.cbor");
    fs::write(&bundle, join_envelopes(envelopes.iter().map(Vec::as_slice)))?;
    say(format!(
        "\n{} signed verdicts in {}; policy: 2 of {nodes} ({})\n",
        envelopes.len(),
        bundle.display(),
        policy_path.display()
    ));

    // A federation of real nodes: each rebuilder hands its verdicts to its
    // own node; gossip carries them to the others.
    let mut net = Testnet::start(&dir.join("federation"), nodes, Options::default())?;
    net.wait_connected(1, Duration::from_secs(60))?;
    for (n, node) in net.nodes.iter().enumerate() {
        say(format!(
            "vouchd {} at {}  peer {}",
            node_name(n + 1),
            node.url(),
            node.peer_id()?
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    for (node, mine) in net.nodes.iter().zip(&per_node) {
        crate::http::post_envelopes(
            node.url(),
            &node.admin_token()?,
            join_envelopes(mine.iter().map(Vec::as_slice)),
        )?;
    }
    let total = envelopes.len() as u64;
    let took = net.wait_all(Duration::from_secs(60), |n| {
        let s = crate::http::get_json(n.url(), "/api/vouch/v1/status")?;
        Ok(s["store"]["verdicts"].as_u64() == Some(total))
    })?;
    let node = net.nodes.last().context("no nodes")?;
    say(format!(
        "gossip: every node holds all {total} verdicts after {:.0} ms; asking only {}\n",
        took.as_secs_f64() * 1000.0,
        node.url()
    ));

    let mut rows = Vec::new();
    for (name, _, filename, _) in &artifacts {
        let out = Command::new(&vouch)
            .arg("verify")
            .arg(repo.join(filename))
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
            name: name.clone(),
            status,
            exit,
        });
    }
    Ok(rows)
}

fn outcome_json(o: &Outcome) -> Value {
    match o {
        Outcome::Good => json!({"result": "GOOD"}),
        Outcome::Bad { rebuilt_sha256 } => {
            json!({"result": "BAD", "rebuilt_sha256": rebuilt_sha256})
        }
        Outcome::Fail { reason } => json!({"result": "FAIL", "reason": reason.as_str()}),
    }
}
