//! `vouch-testnet`: a local vouch federation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use vouch_testnet::{demo, keys, rogue, sybil};

/// A local vouch federation for demos and scenario tests.
#[derive(Debug, Parser)]
#[command(name = "vouch-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local federation: N real vouchd processes on loopback with the
    /// test-only keys of keys/testnet, wired through bootstrap peers only
    /// (every node is given node 1's address and finds the rest itself).
    /// They sync a demo mirror served on loopback, rebuild it with the demo
    /// backend, sign and gossip until they converge. Prints one line per
    /// node (HTTP URL, peer id, data directory) and a `vouch verify` command
    /// to paste; Ctrl-C or SIGTERM stops them all.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
        nodes: u16,
        /// Keep data directories here (default: a temporary directory,
        /// removed at exit).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Seconds between anti-entropy rounds.
        #[arg(long, default_value_t = 5)]
        sync_interval: u64,
        /// One JSON object per line: {"http", "peer_id", "data_dir"}.
        #[arg(long)]
        json: bool,
    },
    /// Three demo rebuilders sign verdicts about a demo repository with
    /// `vouch sign`, a vouchd node stores them, and `vouch verify --node`
    /// checks each package against a 2-of-3 policy. Needs `vouch` and
    /// `vouchd` built next to this binary.
    Demo {
        /// Work in this directory (default: a fresh temporary one, removed
        /// afterwards).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Number of rebuilders.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=5))]
        nodes: u8,
    },
    /// Write the demo federation's keyring files (test-only keys).
    Keyring {
        /// The directory, normally keys/testnet.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A rogue peer for fault tests: joins through BOOTSTRAP and gossips
    /// envelopes with invalid signatures. Prints its peer id.
    Rogue {
        /// A node's multiaddr with /p2p/<peer id>.
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: String,
        /// How many invalid envelopes.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Seconds to stay connected afterwards.
        #[arg(long, default_value_t = 5)]
        linger: u64,
    },
    /// A Sybil flood for abuse tests: PEERS fresh peer ids dial TARGET and
    /// each gossips VERDICTS validly signed verdicts of each of SIGNERS
    /// fresh keys. Prints a JSON report when done.
    Sybil {
        /// The node's multiaddr with /p2p/<peer id>.
        #[arg(long, value_name = "MULTIADDR")]
        target: String,
        /// Fresh peer ids.
        #[arg(long, default_value_t = 20)]
        peers: usize,
        /// Fresh signer keys per peer.
        #[arg(long, default_value_t = 10)]
        signers: usize,
        /// Verdicts per signer.
        #[arg(long, default_value_t = 10)]
        verdicts: u64,
        /// Seconds to stay connected afterwards.
        #[arg(long, default_value_t = 2)]
        linger: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouch-testnet: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn temp_or(dir: Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    Ok(match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            (d, None)
        }
        None => {
            let t = tempfile::tempdir().context("creating a temporary directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            nodes,
            dir,
            sync_interval,
            json,
        } => {
            let (dir, _tmp) = temp_or(dir)?;
            eprintln!(
                "starting {nodes} nodes; they sync the demo mirror, rebuild, sign and gossip..."
            );
            let mut fed = demo::start_federation(&dir, nodes.into(), sync_interval)?;
            for n in &fed.net.nodes {
                let peer = n.peer_id()?;
                if json {
                    println!(
                        "{}",
                        json!({ "http": n.url(), "peer_id": peer, "data_dir": n.data_dir() })
                    );
                } else {
                    println!("{}  {peer}  {}", n.url(), n.data_dir().display());
                }
            }
            let vouch = demo::sibling_binary("vouch")?;
            let node = fed
                .net
                .nodes
                .first()
                .map(|n| n.url().to_string())
                .unwrap_or_default();
            eprintln!(
                "\nconverged after {:.1} s: every node rebuilt the {} demo packages (mirror {}) and holds every verdict.\n\
                 Try (exit 0 VERIFIED; unrepro-kernel is REJECTED, flaky-llvm UNKNOWN):\n\n  {} verify {} --policy {} --node {}\n\n\
                 Ctrl-C stops the federation.",
                fed.converged.as_secs_f64(),
                demo::PACKAGES.len(),
                fed.mirror.url,
                vouch.display(),
                fed.packages_dir
                    .join("pacman-7.0.0-1-x86_64.pkg.tar.zst")
                    .display(),
                fed.policy.display(),
                node
            );
            runtime()?.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r,
                    _ = term.recv() => Ok(()),
                }
            })?;
            eprintln!("stopping {} nodes", fed.net.nodes.len());
            fed.net.stop()
        }
        Command::Demo { dir, nodes } => {
            let (dir, _tmp) = temp_or(dir)?;
            demo::run(&dir, nodes.into(), false)?;
            Ok(())
        }
        Command::Keyring { out } => {
            std::fs::create_dir_all(&out)?;
            for n in 1..=keys::KEYRING_NODES {
                let path = out.join(format!("{}.toml", keys::node_name(n)));
                std::fs::write(&path, keys::keyring_file(n))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Rogue {
            bootstrap,
            count,
            linger,
        } => {
            let addr = bootstrap
                .parse()
                .with_context(|| format!("`{bootstrap}` is not a multiaddr"))?;
            runtime()?.block_on(rogue::run(addr, count, Duration::from_secs(linger)))
        }
        Command::Sybil {
            target,
            peers,
            signers,
            verdicts,
            linger,
        } => {
            let addr = target
                .parse()
                .with_context(|| format!("`{target}` is not a multiaddr"))?;
            let r = runtime()?.block_on(sybil::run(
                addr,
                peers,
                signers,
                verdicts,
                Duration::from_secs(linger),
            ))?;
            println!(
                "{}",
                json!({ "connected": r.connected, "subscribed": r.subscribed, "published": r.published })
            );
            Ok(())
        }
    }
}
