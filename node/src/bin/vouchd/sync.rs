//! `vouchd sync`: a look at what a repository sync would queue.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use vouch_node::config;
use vouch_node::datadir::DataDir;

#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
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

pub(crate) fn sync_command(
    config_path: &Option<PathBuf>,
    data: &DataDir,
    a: SyncArgs,
) -> Result<()> {
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
