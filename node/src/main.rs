//! `vouchd`, the rebuilder daemon.
//!
//! This first version only prepares a node's data directory and key; the
//! store, the HTTP API, the federation and the rebuild pipeline follow.

use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use vouch_attest::{
    SecretKey, public_key_path, read_secret_key, write_public_key, write_secret_key,
};

/// The vouch rebuilder daemon.
#[derive(Debug, Parser)]
#[command(name = "vouchd", version)]
struct Cli {
    /// The node's data directory.
    #[arg(
        long,
        global = true,
        default_value = "./vouch-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory (mode 0700) and the node's signing key
    /// (DATA_DIR/node.key, mode 0600) if they do not exist, and print the
    /// node's public key.
    Init,
    /// Print the node's public key.
    Key,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init => init(&cli.data_dir),
        Command::Key => key(&cli.data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouchd: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.key")
}

fn init(data_dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = key_path(data_dir);
    let key = if path.exists() {
        read_secret_key(&path)?
    } else {
        let key = SecretKey::generate()?;
        write_secret_key(&path, &key)?;
        write_public_key(&public_key_path(&path), &key.public_key())?;
        eprintln!("created {}", path.display());
        key
    };
    println!("{}", key.public_key());
    Ok(())
}

fn key(data_dir: &Path) -> Result<()> {
    let key =
        read_secret_key(&key_path(data_dir)).context("no node key; run `vouchd init` first")?;
    println!("{}", key.public_key());
    Ok(())
}
