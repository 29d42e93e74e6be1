//! `vouchd`, the vouch rebuilder daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use vouch_node::config::{self, Config};
use vouch_node::daemon::Daemon;
use vouch_node::datadir::DataDir;

mod sync;
mod vm;

use sync::{SyncArgs, sync_command};
use vm::{VmCommand, vm_command};

/// The vouch rebuilder daemon.
///
/// Everything lives in one data directory (--data-dir, default ./vouch-data):
/// the node's ed25519 key (node.key, mode 0600), the admin token for writes
/// (admin-token, mode 0600), the configuration (vouchd.toml, every setting
/// shown commented at its default) and the store (store/).
#[derive(Debug, Parser)]
#[command(name = "vouchd", version)]
struct Cli {
    /// The node's data directory.
    #[arg(
        long,
        global = true,
        default_value = "./vouch-data",
        value_name = "DIR",
        env = "VOUCHD_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// The config file (default: DATA_DIR/vouchd.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG wins
    /// when set. Default: the config's [log] level, info (`sync`: warn).
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node: create what is missing in the data directory, open the
    /// store, serve the HTTP API until SIGINT or SIGTERM.
    Run {
        /// HTTP listen address (default: the config's [http] listen,
        /// 127.0.0.1:8484). Port 0 picks a free port; the address is written
        /// to DATA_DIR/vouchd.http.
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
        /// libp2p listen multiaddr, repeatable (replaces the config's
        /// [p2p] listen). Port 0 picks a free port; the addresses are
        /// written to DATA_DIR/vouchd.p2p.
        #[arg(long = "p2p-listen", value_name = "MULTIADDR")]
        p2p_listen: Vec<String>,
        /// A peer to start from (multiaddr ending in /p2p/<peer id>),
        /// repeatable (added to the config's [p2p] bootstrap).
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: Vec<String>,
        /// A keyring directory: its rebuilders are bootstrap peers and known
        /// signers (replaces [p2p] keyring).
        #[arg(long, value_name = "DIR")]
        keyring: Option<PathBuf>,
        /// Seconds between anti-entropy rounds (replaces [p2p]
        /// sync_interval_secs).
        #[arg(long, value_name = "SECS")]
        sync_interval: Option<u64>,
        /// Do not start the libp2p swarm.
        #[arg(long)]
        no_p2p: bool,
    },
    /// Create the data directory (mode 0700), the node's key, the admin
    /// token and the default config, where missing; print the public key.
    Init,
    /// Build guests (qemu): check whether this host can run them.
    #[command(subcommand)]
    Vm(VmCommand),
    /// Print the node's public key.
    Key,
    /// Read a repository's index and print the jobs it gives (one per source
    /// build, with its artifacts). Either a profile of the config
    /// (--profile NAME) or a one-off look (--distribution, --mirror, ...).
    #[command(
        after_help = "With --json, one JSON object per job per line: distribution, release, component, \
architecture, source, version, mirror, subjects [{name, version, filename, sha256, path}], and for Debian \
source_dir and source_files. Refused index entries go to stderr (with --json as {\"refused\": ...} lines)."
    )]
    Sync(SyncArgs),
    /// Run a remote worker: lease jobs from a node, rebuild them here, upload
    /// the results (logs, diffoscope output, rebuilt hashes); the node signs
    /// the verdicts. The node must list this worker's public key in
    /// [workers] authorized. Backends and limits come from --config's
    /// [rebuild] section (default: the demo backend).
    Worker {
        /// The node's base URL.
        #[arg(long, value_name = "URL")]
        connect: String,
        /// The worker's secret key file (mode 0600; `vouch keygen` makes one).
        #[arg(long, value_name = "PATH")]
        key: PathBuf,
        /// Take one job (or none), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Check the store (the node must be stopped): every segment record is
    /// intact, verifies and is indexed where it is; every index entry names
    /// a stored envelope; heads match logs.
    Check,
    /// Convert a store of an older format to this vouchd's (the node must
    /// be stopped). A store already in this format is left alone.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouchd: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data = DataDir::new(&cli.data_dir);
    match cli.command {
        Command::Vm(c) => match vm_command(c)? {
            code if code == ExitCode::SUCCESS => Ok(()),
            _ => std::process::exit(1),
        },
        Command::Init => {
            for path in data.init()? {
                eprintln!("created {}", path.display());
            }
            println!("{}", data.load_key()?.public_key());
            Ok(())
        }
        Command::Key => {
            let key = data
                .load_key()
                .context("no node key; run `vouchd init` first")?;
            println!("{}", key.public_key());
            Ok(())
        }
        Command::Sync(a) => {
            // Its stderr carries the refused entries: only warnings join them.
            init_tracing(cli.log_level.as_deref().unwrap_or("warn"))?;
            sync_command(&cli.config, &data, a)
        }
        Command::Worker { connect, key, once } => {
            let key = vouch_attest::read_secret_key(&key)?;
            let config: Config = match &cli.config {
                Some(p) => config::load(p)?,
                None => Config::default(),
            };
            init_tracing(cli.log_level.as_deref().unwrap_or(&config.log.level))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(vouch_node::remote::run(&connect, key, config.rebuild, once))
        }
        Command::Check => {
            let store = vouch_node::store::Store::open(&data.store())
                .with_context(|| format!("opening {}", data.store().display()))?;
            let n = store
                .check_consistency()
                .context("the store is inconsistent")?;
            let counts = store.counts()?;
            println!(
                "store consistent: {n} verdicts, {} signers, {} pending, {} fork proofs",
                counts.signers, counts.pending, counts.forks
            );
            Ok(())
        }
        Command::Migrate => {
            let path = data.store();
            match vouch_node::store::Store::migrate(&path)
                .with_context(|| format!("migrating {}", path.display()))?
            {
                Some(m) => println!(
                    "migrated {} from {} to the current format: {} verdicts moved into segment files",
                    path.display(),
                    m.from,
                    m.verdicts
                ),
                None => println!("{} already has the current format", path.display()),
            }
            Ok(())
        }
        Command::Run {
            http,
            p2p_listen,
            bootstrap,
            keyring,
            sync_interval,
            no_p2p,
        } => {
            data.init()?;
            let config_path = cli.config.clone().unwrap_or_else(|| data.config());
            let mut config: Config = config::load(&config_path)?;
            if let Some(addr) = http {
                config.http.listen = addr;
            }
            if !p2p_listen.is_empty() {
                config.p2p.listen = p2p_listen;
            }
            config.p2p.bootstrap.extend(bootstrap);
            if keyring.is_some() {
                config.p2p.keyring = keyring;
            }
            if let Some(s) = sync_interval {
                config.p2p.sync_interval_secs = s;
            }
            if no_p2p {
                config.p2p.enabled = false;
            }
            init_tracing(cli.log_level.as_deref().unwrap_or(&config.log.level))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let daemon = Daemon::start(data, config).await?;
                wait_for_signal().await?;
                tracing::info!("stopping");
                daemon.shutdown().await
            })
        }
    }
}

fn init_tracing(level: &str) -> Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::try_new(f),
        _ => EnvFilter::try_new(level),
    }
    .with_context(|| format!("bad log level `{level}`"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
