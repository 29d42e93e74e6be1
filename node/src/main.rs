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

/// The vouch rebuilder daemon.
///
/// Everything lives in one data directory (--data-dir, default ./vouch-data):
/// the node's ed25519 key (node.key, mode 0600), the admin token for writes
/// (admin-token, mode 0600), the configuration (vouchd.toml, every setting
/// shown commented at its default) and the sled store (store/).
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

#[derive(Debug, clap::Args)]
struct SyncArgs {
    /// A [[sync]] profile of the config.
    #[arg(long, value_name = "NAME", conflicts_with = "distribution")]
    profile: Option<String>,
    /// Print what would be queued, touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// One-off: `archlinux` or `debian`.
    #[arg(long, value_name = "DIST", requires = "mirror")]
    distribution: Option<vouch_node::sync::Distribution>,
    /// One-off: Arch mirror with $repo and $arch, or the Debian archive root.
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// One-off (Arch): repository, repeatable.
    #[arg(long = "repo", value_name = "REPO")]
    repos: Vec<String>,
    /// One-off (Debian): release, repeatable.
    #[arg(long = "release", value_name = "RELEASE")]
    releases: Vec<String>,
    /// One-off (Debian): component, repeatable.
    #[arg(long = "component", value_name = "COMPONENT")]
    components: Vec<String>,
    /// One-off: architecture, repeatable.
    #[arg(long = "architecture", value_name = "ARCH")]
    architectures: Vec<String>,
    /// One-off: only package names matching this glob, repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// One-off: never package names matching this glob, repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// One-off: the OpenPGP keyring that signs the repository (Debian
    /// default: /usr/share/keyrings/debian-archive-keyring.gpg; Arch: none,
    /// given one each database is checked against its .db.sig).
    #[arg(long = "repo-keyring", value_name = "PATH")]
    repo_keyring: Option<PathBuf>,
    /// One-off, Debian: read the archive without verifying InRelease.
    #[arg(long)]
    allow_unsigned: bool,
}

#[derive(Debug, Subcommand)]
enum VmCommand {
    /// Boot a tiny guest (a kernel and a busybox initramfs that prints a
    /// marker on the serial console) under each accelerator --accel allows,
    /// with a short timeout, and say whether it came up and why not. Exit 0
    /// when one accelerator works, 1 when none does.
    Check {
        /// kvm, tcg (software emulation) or kvm-or-tcg.
        #[arg(long, value_enum, default_value = "kvm-or-tcg")]
        accel: vouch_node::vm::Accel,
        /// The guest kernel (default: the newest /boot/vmlinuz-*, e.g. from
        /// linux-image-cloud-amd64).
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// A static busybox for the guest's init (busybox-static).
        #[arg(long, value_name = "PATH", default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// Boot this build image (from `vouchd vm build-image`) instead of
        /// the kernel and busybox.
        #[arg(long, value_name = "IMAGE", conflicts_with_all = ["kernel", "busybox"])]
        image: Option<PathBuf>,
        /// The qemu binary.
        #[arg(long, default_value = "qemu-system-x86_64")]
        qemu: String,
        /// Seconds a KVM guest gets to come up (software emulation gets 4x).
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a guest image for `isolation = "vm"` from a distribution's
    /// packages (a kernel package and busybox-static, fetched with
    /// mmdebstrap) and the in-guest runner; print its sha256, which
    /// verdicts built in it name.
    BuildImage {
        /// Only `debian` so far.
        #[arg(long, default_value = "debian")]
        distribution: String,
        /// The release the packages come from.
        #[arg(long, default_value = "bookworm")]
        release: String,
        /// The archive.
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// The kernel package.
        #[arg(long, default_value = "linux-image-cloud-amd64")]
        kernel_package: String,
        /// Where the image is written.
        #[arg(long, value_name = "IMAGE")]
        out: PathBuf,
        /// When run as root: the unprivileged user that runs mmdebstrap.
        #[arg(long, default_value = "vouch-build")]
        build_user: String,
        /// Print the manifest and sha256 as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn vm_build_image(c: VmCommand) -> Result<ExitCode> {
    let VmCommand::BuildImage {
        distribution,
        release,
        mirror,
        kernel_package,
        out,
        build_user,
        json,
    } = c
    else {
        return Ok(ExitCode::from(2));
    };
    let recipe = vouch_node::vm::image::ImageRecipe {
        distribution,
        release,
        mirror,
        kernel_package,
        mmdebstrap: "mmdebstrap".into(),
        staging: std::env::temp_dir(),
        build_user,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (manifest, sha) = runtime
        .block_on(vouch_node::vm::image::build(&recipe, &out))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("building the guest image {}", out.display()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "image": out.display().to_string(),
                "sha256": sha,
                "manifest": manifest,
            }))?
        );
    } else {
        println!("{}: sha256 {sha}", out.display());
        println!(
            "{} {}: {}, {}, runner {}, modules {}",
            manifest.distribution,
            manifest.release,
            manifest.kernel,
            manifest.busybox,
            manifest.runner,
            manifest.modules.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn vm_command(c: VmCommand) -> Result<ExitCode> {
    if matches!(c, VmCommand::BuildImage { .. }) {
        return vm_build_image(c);
    }
    let VmCommand::Check {
        accel,
        kernel,
        busybox,
        image,
        qemu,
        timeout,
        json,
    } = c
    else {
        return Ok(ExitCode::from(2));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let timeout = std::time::Duration::from_secs(timeout.max(1));
    let report = if let Some(image) = image {
        let dir = tempfile::tempdir().context("a temporary directory")?;
        let unpacked = vouch_node::vm::image::unpack(&image, dir.path())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        runtime.block_on(vouch_node::vm::check_guest(
            &qemu,
            &unpacked.kernel,
            &unpacked.initrd,
            "vouch.mode=check",
            accel,
            timeout,
        ))
    } else {
        let kernel = kernel.or_else(vouch_node::vm::default_kernel).context(
            "no guest kernel: give --kernel, or apt-get install linux-image-cloud-amd64",
        )?;
        runtime
            .block_on(vouch_node::vm::check(
                &qemu, &kernel, &busybox, accel, timeout,
            ))
            .with_context(|| format!("preparing the check guest from {}", busybox.display()))?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("kernel: {}", report.kernel);
        for b in &report.boots {
            match &b.reason {
                None => println!(
                    "{}: works, the guest came up in {:.1} s",
                    b.accel, b.seconds
                ),
                Some(r) => println!("{}: does not work: {r}", b.accel),
            }
        }
        match report.usable {
            Some("tcg") => println!(
                "builds would use software emulation (slow; the status page and verdicts say so)"
            ),
            Some(a) => println!("builds would use {a}"),
            None => {
                println!("no accelerator works: builds with isolation = \"vm\" cannot run here")
            }
        }
    }
    Ok(if report.usable.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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

fn sync_command(config_path: &Option<PathBuf>, data: &DataDir, a: SyncArgs) -> Result<()> {
    use vouch_node::sync::SyncProfile;
    let profile = match (&a.profile, a.distribution) {
        (Some(name), _) => {
            let path = config_path.clone().unwrap_or_else(|| data.config());
            let config = config::load(&path)?;
            config
                .sync
                .into_iter()
                .find(|p| &p.name == name)
                .with_context(|| format!("no [[sync]] profile `{name}` in {}", path.display()))?
        }
        (None, Some(distribution)) => SyncProfile {
            name: "one-off".into(),
            distribution,
            mirror: a.mirror.clone().context("--mirror is required")?,
            repos: a.repos.clone(),
            releases: a.releases.clone(),
            components: a.components.clone(),
            architectures: a.architectures.clone(),
            include: a.include.clone(),
            exclude: a.exclude.clone(),
            maintainer: None,
            interval_secs: 0,
            keyring: a.repo_keyring.clone(),
            allow_unsigned: a.allow_unsigned,
            buildinfo: None,
        },
        (None, None) => {
            anyhow::bail!("give --profile NAME, or --distribution and --mirror for a one-off look")
        }
    };
    if !a.dry_run {
        anyhow::bail!(
            "only --dry-run is available from the command line; a running node syncs its profiles itself"
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("vouchd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let result = runtime
        .block_on(vouch_node::sync::run_profile(&client, &profile))
        .map_err(|e| anyhow::anyhow!(e))?;
    use std::io::Write as _;
    // The second half of the lines is written into memory on another
    // thread while the first goes straight to stdout.
    let (first, second) = result.jobs.split_at(result.jobs.len() / 2);
    let json = a.json;
    let second = std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut buf = Vec::new();
            write_jobs(&mut buf, second, json).map(|()| buf)
        });
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        write_jobs(&mut out, first, json)?;
        out.flush()?;
        second
            .join()
            .map_err(|_| anyhow::anyhow!("writing the jobs stopped"))?
    })?;
    std::io::stdout().lock().write_all(&second)?;
    for r in &result.refused {
        if a.json {
            eprintln!("{}", serde_json::json!({ "refused": r }));
        } else {
            eprintln!("refused {}: {}", r.entry, r.reason);
        }
    }
    eprintln!(
        "{} jobs, {} refused entries",
        result.jobs.len(),
        result.refused.len()
    );
    // The process ends here: freeing tens of thousands of jobs one by one
    // would only delay its exit.
    std::mem::forget(result);
    Ok(())
}

/// Writes `jobs` one per line: JSON, or a line for people.
fn write_jobs(
    out: &mut impl std::io::Write,
    jobs: &[vouch_node::sync::Job],
    json: bool,
) -> Result<()> {
    for job in jobs {
        if json {
            serde_json::to_writer(&mut *out, job)?;
            out.write_all(b"\n")?;
        } else {
            writeln!(
                out,
                "{} {} {} ({} artifacts: {})",
                job.key(),
                job.source,
                job.version,
                job.subjects.len(),
                job.subjects
                    .iter()
                    .map(|s| s.filename.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    Ok(())
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
