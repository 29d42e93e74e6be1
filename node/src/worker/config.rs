//! `[rebuild]` in the config: workers, backends per distribution.

use serde::{Deserialize, Serialize};

use crate::backend::BackendConfig;
use crate::store::jobs::RetryPolicy;
use crate::sync::Job;

/// `[rebuild]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebuildConfig {
    /// In-process workers (0: this node does not rebuild).
    pub workers: usize,
    /// Seconds a build may run before its process group is killed.
    pub timeout_secs: u64,
    /// Bytes of build log kept.
    pub max_log_bytes: usize,
    /// Seconds a worker's lease lasts without a heartbeat.
    pub lease_secs: u64,
    /// The diffoscope command run for BAD results (skipped when missing).
    pub diffoscope: Vec<String>,
    /// Seconds diffoscope may run.
    pub diffoscope_timeout_secs: u64,
    /// Bytes of diffoscope output kept.
    pub max_diffoscope_bytes: usize,
    /// Largest published artifact fetched.
    pub max_artifact_bytes: u64,
    /// Retries and back-off.
    pub retry: RetryPolicy,
    /// Backend per distribution.
    pub backends: Vec<BackendFor>,
}

/// A backend for one distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFor {
    /// `archlinux` or `debian`.
    pub distribution: String,
    /// The backend: `{ kind = "demo" }`, `{ kind = "archlinux-repro",
    /// command = "repro" }`, `{ kind = "exec", command = ["..."] }`.
    pub backend: BackendConfig,
}

impl Default for RebuildConfig {
    fn default() -> Self {
        RebuildConfig {
            workers: 0,
            timeout_secs: 4 * 3600,
            max_log_bytes: 16 << 20,
            lease_secs: 300,
            diffoscope: vec!["diffoscope".into(), "--text".into(), "-".into()],
            diffoscope_timeout_secs: 900,
            max_diffoscope_bytes: 16 << 20,
            max_artifact_bytes: 8 << 30,
            retry: RetryPolicy::default(),
            backends: Vec::new(),
        }
    }
}

/// The backend configured for a job's distribution (demo when none is).
pub fn backend_for(config: &RebuildConfig, job: &Job) -> BackendConfig {
    config
        .backends
        .iter()
        .find(|b| b.distribution == job.distribution)
        .map(|b| b.backend.clone())
        .unwrap_or(BackendConfig::Demo)
}
