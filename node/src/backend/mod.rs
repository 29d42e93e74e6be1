//! Build backends behind one interface: the published artifacts of a job go
//! in (`input/`), rebuilt artifacts come out (`output/`). Every run has a
//! timeout that kills the whole process group, a cap on the captured log,
//! and a working directory that is removed afterwards.

pub mod buildinfo;
pub mod debian;
pub mod environment;
pub mod guest;
pub mod namespace;
mod process;
pub mod sandbox;
pub mod stage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use process::{RunOutput, run_command};

use crate::sync::Job;

/// Which backend, and how to call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BackendConfig {
    /// Deterministic and fast, for demos and tests: reproduces every
    /// package but those named `unrepro-*` (BAD everywhere) and `flaky-*`
    /// (FAIL except on nodes whose key's first byte is 3 modulo 4).
    Demo,
    /// archlinux-repro: `COMMAND -o OUTDIR -- PKGFILE`, isolated from the
    /// node (see [`sandbox`]).
    ArchlinuxRepro {
        /// The command (default `repro`).
        #[serde(default = "default_repro")]
        command: String,
        /// Its version, recorded in verdicts.
        #[serde(default = "unknown")]
        version: String,
        /// `namespace` (default) or `none`.
        #[serde(default)]
        isolation: debian::Isolation,
        /// Whether the command may reach the network.
        #[serde(default)]
        network: bool,
        /// Host paths shown to it read-only.
        #[serde(default)]
        binds: Vec<PathBuf>,
        /// The user whose sub-ids run it when the daemon is root.
        #[serde(default = "default_build_user")]
        build_user: String,
        /// Where runs are staged, outside the data directory.
        #[serde(default = "std::env::temp_dir")]
        staging: PathBuf,
    },
    /// A Debian rebuild in the environment the `.buildinfo` records,
    /// isolated from the node (see [`debian`]).
    Debian(debian::DebianBackend),
    /// Any command: `COMMAND INPUT_DIR OUTPUT_DIR`, with `VOUCH_INPUT_DIR`,
    /// `VOUCH_OUTPUT_DIR`, `VOUCH_JOB` (the job as JSON) and `VOUCH_PKGFILE`
    /// (the first published artifact) in its environment.
    Exec {
        /// The command and its first arguments.
        command: Vec<String>,
        /// A name recorded in verdicts.
        #[serde(default = "exec_name")]
        name: String,
        /// Its version, recorded in verdicts.
        #[serde(default = "unknown")]
        version: String,
    },
}

fn default_repro() -> String {
    "repro".into()
}
fn default_build_user() -> String {
    "vouch-build".into()
}
fn unknown() -> String {
    "unknown".into()
}
fn exec_name() -> String {
    "exec".into()
}

/// The result of one backend run.
#[derive(Debug)]
pub struct BuildRun {
    /// Whether the backend finished successfully.
    pub status: BuildStatus,
    /// The captured log (capped).
    pub log: Vec<u8>,
    /// Where the rebuilt artifacts are.
    pub output_dir: PathBuf,
    /// What the backend's version does not say about this run (the guest
    /// image and accelerator of a `vm` build), added to the verdict's
    /// backend version.
    pub version_note: Option<String>,
}

/// How a backend run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    /// Exit 0.
    Ok,
    /// Non-zero exit: the build failed.
    Failed,
    /// Killed at the timeout.
    Timeout,
    /// The backend could not be started.
    BackendError,
    /// What the build needs could not be had: the recorded environment
    /// (a package version no configured mirror has), the `.buildinfo`.
    Unavailable,
}

impl BackendConfig {
    /// Name recorded in verdicts.
    pub fn name(&self) -> String {
        match self {
            BackendConfig::Demo => "demo".into(),
            BackendConfig::ArchlinuxRepro { .. } => "archlinux-repro".into(),
            BackendConfig::Debian(_) => "debian".into(),
            BackendConfig::Exec { name, .. } => name.clone(),
        }
    }

    /// Version recorded in verdicts.
    pub fn version(&self) -> String {
        match self {
            BackendConfig::Demo => concat!("demo-", env!("CARGO_PKG_VERSION")).into(),
            BackendConfig::Debian(b) => debian::version(b),
            BackendConfig::ArchlinuxRepro { version, .. } | BackendConfig::Exec { version, .. } => {
                version.clone()
            }
        }
    }

    /// Rebuilds `job` in `workdir` (which holds `input/` with the published
    /// artifacts). `node_key` seeds the demo backend's choices.
    pub async fn build(
        &self,
        job: &Job,
        workdir: &Path,
        timeout: Duration,
        max_log: usize,
        node_key: &[u8; 32],
    ) -> BuildRun {
        let input = workdir.join("input");
        let output = workdir.join("output");
        if let Err(e) = std::fs::create_dir_all(&output) {
            return BuildRun {
                status: BuildStatus::BackendError,
                log: format!("cannot create {}: {e}\n", output.display()).into_bytes(),
                output_dir: output,
                version_note: None,
            };
        }
        let first = job
            .subjects
            .first()
            .map(|s| input.join(&s.filename))
            .unwrap_or_else(|| input.clone());
        match self {
            BackendConfig::Demo => demo(job, &input, &output, node_key),
            BackendConfig::Debian(b) => debian::build(b, job, workdir, timeout, max_log).await,
            BackendConfig::ArchlinuxRepro {
                command,
                isolation,
                network,
                binds,
                build_user,
                staging,
                ..
            } if *isolation != debian::Isolation::None => {
                if *isolation == debian::Isolation::Vm {
                    return BuildRun {
                        status: BuildStatus::BackendError,
                        log: b"archlinux-repro has no isolation = \"vm\" yet: use \"namespace\"\n"
                            .to_vec(),
                        output_dir: output,
                        version_note: None,
                    };
                }
                let settings = sandbox::SandboxSettings {
                    isolation: *isolation,
                    build_user: build_user.clone(),
                    staging: staging.clone(),
                    network: *network,
                    binds: binds.clone(),
                };
                let name = first
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let inside = format!("/vouch/input/{name}");
                let args = vec![
                    command.clone(),
                    "-o".into(),
                    "/vouch/output".into(),
                    "--".into(),
                    inside.clone(),
                ];
                let env = vec![
                    ("VOUCH_INPUT_DIR".to_string(), "/vouch/input".to_string()),
                    ("VOUCH_OUTPUT_DIR".to_string(), "/vouch/output".to_string()),
                    ("VOUCH_PKGFILE".to_string(), inside),
                ];
                let run = sandbox::run(
                    &settings, &args, &env, &input, &output, workdir, timeout, max_log,
                )
                .await;
                match run {
                    Ok(run) => BuildRun {
                        status: run.status,
                        log: run.log,
                        output_dir: output,
                        version_note: Some("isolation namespace".into()),
                    },
                    Err(e) => BuildRun {
                        status: BuildStatus::BackendError,
                        log: format!("{e}\n").into_bytes(),
                        output_dir: output,
                        version_note: None,
                    },
                }
            }
            BackendConfig::ArchlinuxRepro { command, .. } => {
                let args = vec![
                    command.clone(),
                    "-o".into(),
                    output.display().to_string(),
                    "--".into(),
                    first.display().to_string(),
                ];
                command_build(
                    &args, job, workdir, &input, &output, &first, timeout, max_log,
                )
                .await
            }
            BackendConfig::Exec { command, .. } => {
                let mut args = command.clone();
                args.push(input.display().to_string());
                args.push(output.display().to_string());
                command_build(
                    &args, job, workdir, &input, &output, &first, timeout, max_log,
                )
                .await
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn command_build(
    args: &[String],
    job: &Job,
    workdir: &Path,
    input: &Path,
    output: &Path,
    first: &Path,
    timeout: Duration,
    max_log: usize,
) -> BuildRun {
    let job_file = workdir.join("job.json");
    let _ = std::fs::write(
        &job_file,
        serde_json::to_vec_pretty(job).unwrap_or_default(),
    );
    let env = vec![
        ("VOUCH_INPUT_DIR".to_string(), input.display().to_string()),
        ("VOUCH_OUTPUT_DIR".to_string(), output.display().to_string()),
        ("VOUCH_JOB".to_string(), job_file.display().to_string()),
        ("VOUCH_PKGFILE".to_string(), first.display().to_string()),
    ];
    let run = run_command(args, workdir, &env, timeout, max_log).await;
    BuildRun {
        status: run.status,
        log: run.log,
        output_dir: output.to_path_buf(),
        version_note: None,
    }
}

fn demo(job: &Job, input: &Path, output: &Path, node_key: &[u8; 32]) -> BuildRun {
    let mut log = format!("demo backend: {} {}\n", job.source, job.version);
    let builds_flaky = node_key[0] % 4 == 3;
    if job.source.starts_with("flaky-") && !builds_flaky {
        log.push_str("simulated build failure (flaky package on this node)\n");
        return BuildRun {
            status: BuildStatus::Failed,
            log: log.into_bytes(),
            output_dir: output.to_path_buf(),
            version_note: None,
        };
    }
    for s in &job.subjects {
        let from = input.join(&s.filename);
        let to = output.join(&s.filename);
        let result = std::fs::read(&from).and_then(|mut bytes| {
            if s.name.starts_with("unrepro-") || job.source.starts_with("unrepro-") {
                // Not reproducible: an embedded build date differs.
                bytes.extend_from_slice(
                    format!("\nbuilt on node {}\n", hex::encode(&node_key[..4])).as_bytes(),
                );
            }
            std::fs::write(&to, bytes)
        });
        match result {
            Ok(()) => log.push_str(&format!("rebuilt {}\n", s.filename)),
            Err(e) => {
                log.push_str(&format!("cannot rebuild {}: {e}\n", s.filename));
                return BuildRun {
                    status: BuildStatus::Failed,
                    log: log.into_bytes(),
                    output_dir: output.to_path_buf(),
                    version_note: None,
                };
            }
        }
    }
    BuildRun {
        status: BuildStatus::Ok,
        log: log.into_bytes(),
        output_dir: output.to_path_buf(),
        version_note: None,
    }
}
