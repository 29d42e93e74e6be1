//! `vouch-testnet`: a local vouch federation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use vouch_testnet::{demo, keys};

/// A local vouch federation for demos and scenario tests.
#[derive(Debug, Parser)]
#[command(name = "vouch-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Three demo rebuilders sign verdicts about a demo repository with
    /// `vouch sign`; `vouch verify` checks each package against a 2-of-3
    /// policy. Needs `vouch` built next to this binary.
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { dir, nodes } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::tempdir().context("creating a temporary directory")?;
                    tmp.path().to_path_buf()
                }
            };
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
    }
}
