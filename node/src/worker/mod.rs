//! In-process workers: lease a job, fetch the published artifacts (checking
//! their sha256 against the index), run the backend, compare every artifact,
//! keep the evidence (build log; diffoscope output for BAD), sign one
//! verdict per artifact with the node's key, ingest and publish them, and
//! record the outcome in the queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::jobs::JobRecord;

mod attempt;
mod config;
mod record;

pub use attempt::{Attempt, SubjectResult, attempt};
pub use config::{BackendFor, RebuildConfig, backend_for};
pub use record::{Draft, NotHeld, Signer, record_attempt};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Recent activity, for `/api/vouch/v1/status`.
#[derive(Default)]
pub struct Activity {
    builds: std::sync::Mutex<std::collections::VecDeque<serde_json::Value>>,
    workers: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Activity {
    /// Remembers a finished build (the last 50 are kept).
    pub fn build(&self, job: &str, outcome: &str, backend: &str) {
        let mut b = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= 50 {
            b.pop_front();
        }
        b.push_back(serde_json::json!({
            "job": job, "outcome": outcome, "backend": backend, "finished_at": unix_now(),
        }));
    }
    /// Notes that a worker was seen now.
    pub fn seen(&self, worker: &str) {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(worker.to_string(), unix_now());
    }
    /// The last builds, newest first, and the workers with when they were
    /// last seen.
    pub fn snapshot(&self) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let builds = self
            .builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect();
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(w, at)| serde_json::json!({ "worker": w, "last_seen": at }))
            .collect();
        (builds, workers)
    }
}

/// Everything a worker needs.
#[derive(Clone)]
pub struct WorkerContext {
    /// Recent builds and workers.
    pub activity: Arc<Activity>,
    /// The store (queue, blobs).
    pub store: Store,
    /// Signs and stores verdicts.
    pub signer: Arc<Signer>,
    /// Settings.
    pub config: Arc<RebuildConfig>,
    /// For fetching artifacts.
    pub http: reqwest::Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where work directories go.
    pub work_root: PathBuf,
}

/// Runs one worker until the process stops.
pub async fn run_worker(ctx: WorkerContext, name: String) {
    loop {
        ctx.activity.seen(&name);
        let store = ctx.store.clone();
        let lease = ctx.config.lease_secs;
        let worker = name.clone();
        let leased =
            tokio::task::spawn_blocking(move || store.lease_job(&worker, unix_now(), lease)).await;
        match leased {
            Ok(Ok(Some(record))) => {
                if let Err(e) = process(&ctx, &name, record).await {
                    tracing::error!(error = %format!("{e:#}"), "rebuild failed");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            Ok(Ok(None)) => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "leasing a job");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "lease task");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Rebuilds one leased job and records everything.
pub async fn process(
    ctx: &WorkerContext,
    worker: &str,
    record: JobRecord,
) -> anyhow::Result<String> {
    let job = record.job.clone();
    let key = job.key();
    let backend = backend_for(&ctx.config, &job);
    tracing::info!(job = %key, backend = %backend.name(), "rebuilding");
    let workdir = tempfile::Builder::new()
        .prefix("vouch-build-")
        .tempdir_in(&ctx.work_root)?;

    // Heartbeats while the build runs.
    let hb_store = ctx.store.clone();
    let (hb_key, hb_worker, lease) = (key.clone(), worker.to_string(), ctx.config.lease_secs);
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs((lease / 3).max(1))).await;
            let (s, k, w) = (hb_store.clone(), hb_key.clone(), hb_worker.clone());
            let _ = tokio::task::spawn_blocking(move || s.heartbeat_job(&k, &w, unix_now(), lease))
                .await;
        }
    });
    let attempt = attempt(
        &ctx.http,
        &ctx.config,
        &backend,
        &job,
        workdir.path(),
        ctx.signer.public().as_bytes(),
    )
    .await;
    heartbeat.abort();
    record_attempt(ctx, worker, &job, attempt).await
}

/// Records `outcome` for the attempt `worker` holds on job `key`.
pub(super) async fn complete(
    ctx: &WorkerContext,
    key: &str,
    worker: &str,
    outcome: &str,
) -> anyhow::Result<()> {
    let (store, retry) = (ctx.store.clone(), ctx.config.retry);
    let (k, w, o) = (key.to_string(), worker.to_string(), outcome.to_string());
    tokio::task::spawn_blocking(move || store.complete_job(&k, &w, &o, unix_now(), &retry))
        .await??;
    Ok(())
}
