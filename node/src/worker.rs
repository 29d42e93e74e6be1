//! In-process workers: lease a job, fetch the published artifacts (checking
//! their sha256 against the index), run the backend, compare every artifact,
//! keep the evidence (build log; diffoscope output for BAD), sign one
//! verdict per artifact with the node's key, ingest and publish them, and
//! record the outcome in the queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use vouch_attest::{
    Digest, Evidence, FORMAT_VERSION, FailReason, Hasher, Inputs, Outcome, PublicKey, SecretKey,
    Subject, Verdict, sign,
};

use crate::backend::{BackendConfig, BuildStatus, run_command};
use crate::ingest::{Ingest, Status};
use crate::metrics::{Metrics, ResultLabel};
use crate::store::Store;
use crate::store::jobs::{JobRecord, RetryPolicy};
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

/// Signs verdicts with the node's key, one at a time, so that each gets the
/// next seq of the node's log.
pub struct Signer {
    key: SecretKey,
    store: Store,
    ingest: Ingest,
    lock: Mutex<()>,
}

/// A verdict before it gets its place in the log.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The artifact.
    pub subject: Subject,
    /// The inputs.
    pub inputs: Inputs,
    /// The result.
    pub outcome: Outcome,
    /// The evidence.
    pub evidence: Evidence,
}

impl Draft {
    /// The verdict this draft becomes at `seq` of `signer`'s log.
    fn into_verdict(self, signer: PublicKey, seq: u64, prev: Digest, issued_at: u64) -> Verdict {
        Verdict {
            version: FORMAT_VERSION,
            signer,
            seq,
            prev,
            issued_at,
            subject: self.subject,
            inputs: self.inputs,
            outcome: self.outcome,
            evidence: self.evidence,
        }
    }

    /// Why this draft cannot become a valid verdict (a field over its
    /// limit, a path in a file name...), if it cannot.
    pub fn invalid(&self, signer: PublicKey) -> Option<String> {
        self.clone()
            .into_verdict(signer, 0, Digest::ZERO, 0)
            .check()
            .err()
    }
}

/// The worker completing an attempt does not hold its job (the lease ran
/// out, or another completion of the same attempt claimed it first).
#[derive(Debug, thiserror::Error)]
#[error(
    "this worker does not hold the job (its lease ran out, or the attempt was already completed)"
)]
pub struct NotHeld;

impl Signer {
    /// A signer over the node's key.
    pub fn new(key: SecretKey, store: Store, ingest: Ingest) -> Signer {
        Signer {
            key,
            store,
            ingest,
            lock: Mutex::new(()),
        }
    }

    /// The node's public key.
    pub fn public(&self) -> vouch_attest::PublicKey {
        self.key.public_key()
    }

    /// Signs the drafts as the next entries of the node's log, stores them
    /// through the ingest pipeline (which publishes them), and returns their
    /// ids.
    pub async fn sign_and_store(&self, drafts: Vec<Draft>) -> anyhow::Result<Vec<Digest>> {
        let _guard = self.lock.lock().await;
        let head = self.store.head(&self.key.public_key())?;
        let (mut seq, mut prev) = match head {
            Some(h) => (h.seq + 1, h.id),
            None => (0, Digest::ZERO),
        };
        let now = unix_now();
        let mut envelopes = Vec::new();
        let mut ids = Vec::new();
        for d in drafts {
            let v = d.into_verdict(self.key.public_key(), seq, prev, now);
            let signed = sign(&v, &self.key)?;
            prev = signed.id();
            seq += 1;
            ids.push(signed.id());
            envelopes.push(signed.envelope().to_vec());
        }
        let reports = self.ingest.submit("local", envelopes).await?;
        if let Some(bad) = reports.iter().find(|r| r.status != Status::Accepted) {
            anyhow::bail!("own verdict not stored: {:?} {:?}", bad.code, bad.reason);
        }
        Ok(ids)
    }
}

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
async fn complete(
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

/// The backend configured for a job's distribution (demo when none is).
pub fn backend_for(config: &RebuildConfig, job: &Job) -> BackendConfig {
    config
        .backends
        .iter()
        .find(|b| b.distribution == job.distribution)
        .map(|b| b.backend.clone())
        .unwrap_or(BackendConfig::Demo)
}

/// What one rebuild attempt found, before anything is signed. Local workers
/// hand it to [`record_attempt`] directly; remote workers upload it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// One result per subject of the job, by file name.
    pub results: Vec<SubjectResult>,
    /// The build log (capped), base64.
    pub log: String,
    /// The backend's name.
    pub backend: String,
    /// The backend's version.
    pub backend_version: String,
    /// The `.buildinfo` the build followed, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildinfo_sha256: Option<Digest>,
}

/// The result for one artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectResult {
    /// The artifact's file name.
    pub filename: String,
    /// GOOD, BAD (with the rebuilt sha256) or FAIL (with a reason).
    pub outcome: Outcome,
    /// diffoscope's output for BAD, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffoscope: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

/// Fetches the published artifacts (sha-checked), runs the backend and
/// compares every artifact.
pub async fn attempt(
    http: &reqwest::Client,
    config: &RebuildConfig,
    backend: &BackendConfig,
    job: &Job,
    workdir: &Path,
    node_key: &[u8; 32],
) -> Attempt {
    let input = workdir.join("input");
    let mut log = Vec::new();
    let fail_all = |reason: FailReason, log: Vec<u8>| Attempt {
        results: job
            .subjects
            .iter()
            .map(|s| SubjectResult {
                filename: s.filename.clone(),
                outcome: Outcome::Fail { reason },
                diffoscope: None,
            })
            .collect(),
        log: b64(&log),
        backend: backend.name(),
        backend_version: backend.version(),
        buildinfo_sha256: None,
    };
    if let Err(e) = std::fs::create_dir_all(&input) {
        log.extend_from_slice(format!("cannot create the work directory: {e}\n").as_bytes());
        return fail_all(FailReason::Backend, log);
    }
    for s in &job.subjects {
        let url = format!("{}/{}", job.mirror.trim_end_matches('/'), s.path);
        match download(
            http,
            &url,
            &input.join(&s.filename),
            config.max_artifact_bytes,
        )
        .await
        {
            Ok(sha) if sha == s.sha256 => {
                log.extend_from_slice(format!("fetched {url} (sha256 {sha})\n").as_bytes());
            }
            Ok(sha) => {
                log.extend_from_slice(
                    format!(
                        "fetched {url}: sha256 {sha}, but the index says {}\n",
                        s.sha256
                    )
                    .as_bytes(),
                );
                return fail_all(FailReason::Fetch, log);
            }
            Err(e) => {
                log.extend_from_slice(format!("cannot fetch {url}: {e}\n").as_bytes());
                return fail_all(FailReason::Fetch, log);
            }
        }
    }
    // Source packages (Debian): the files named by the Sources index.
    if !job.source_files.is_empty() {
        let src = input.join("src");
        if let Err(e) = std::fs::create_dir_all(&src) {
            log.extend_from_slice(format!("cannot create {}: {e}\n", src.display()).as_bytes());
            return fail_all(FailReason::Backend, log);
        }
        let dir = job.source_dir.as_deref().unwrap_or("");
        for f in &job.source_files {
            let url = format!("{}/{dir}/{}", job.mirror.trim_end_matches('/'), f.name);
            match download(http, &url, &src.join(&f.name), config.max_artifact_bytes).await {
                Ok(sha) if sha == f.sha256 => {
                    log.extend_from_slice(format!("fetched {url} (sha256 {sha})\n").as_bytes());
                }
                Ok(sha) => {
                    log.extend_from_slice(
                        format!(
                            "fetched {url}: sha256 {sha}, but Sources says {}\n",
                            f.sha256
                        )
                        .as_bytes(),
                    );
                    return fail_all(FailReason::Fetch, log);
                }
                Err(e) => {
                    log.extend_from_slice(format!("cannot fetch {url}: {e}\n").as_bytes());
                    return fail_all(FailReason::Fetch, log);
                }
            }
        }
    }
    // The recorded build environment (Debian), when the profile says where.
    let mut buildinfo_sha256 = None;
    if let Some(url) = &job.buildinfo_url {
        let dest = input.join("buildinfo");
        match download(http, url, &dest, crate::backend::buildinfo::MAX_BUILDINFO).await {
            Ok(sha) => {
                log.extend_from_slice(format!("fetched {url} (sha256 {sha})\n").as_bytes());
                buildinfo_sha256 = Some(sha);
            }
            Err(e) => {
                log.extend_from_slice(format!("cannot fetch {url}: {e}\n").as_bytes());
                return fail_all(FailReason::Fetch, log);
            }
        }
    }
    let run = backend
        .build(
            job,
            workdir,
            Duration::from_secs(config.timeout_secs),
            config.max_log_bytes,
            node_key,
        )
        .await;
    log.extend_from_slice(&run.log);
    match run.status {
        BuildStatus::Ok => {}
        BuildStatus::Failed => return fail_all(FailReason::Build, log),
        BuildStatus::Timeout => return fail_all(FailReason::Timeout, log),
        BuildStatus::BackendError => return fail_all(FailReason::Backend, log),
        BuildStatus::Unavailable => return fail_all(FailReason::Fetch, log),
    }
    let mut results = Vec::new();
    for s in &job.subjects {
        let rebuilt = run.output_dir.join(&s.filename);
        let (outcome, diff) = match hash_file(&rebuilt) {
            Ok(h) if h == s.sha256 => (Outcome::Good, None),
            Ok(h) => (
                Outcome::Bad { rebuilt_sha256: h },
                diffoscope(config, &input.join(&s.filename), &rebuilt, workdir).await,
            ),
            Err(_) => {
                log.extend_from_slice(
                    format!("the backend produced no {}\n", s.filename).as_bytes(),
                );
                (
                    Outcome::Fail {
                        reason: FailReason::Build,
                    },
                    None,
                )
            }
        };
        results.push(SubjectResult {
            filename: s.filename.clone(),
            outcome,
            diffoscope: diff.map(|d| b64(&d)),
        });
    }
    let backend_version = match &run.version_note {
        Some(note) => format!("{}; {note}", backend.version()),
        None => backend.version(),
    };
    Attempt {
        results,
        log: b64(&log),
        backend: backend.name(),
        backend_version,
        buildinfo_sha256,
    }
}

/// Stores the evidence of an attempt, signs one verdict per artifact with
/// the node's key (storing and publishing them), and records the outcome in
/// the queue. The attempt must name exactly the job's artifacts.
pub async fn record_attempt(
    ctx: &WorkerContext,
    worker: &str,
    job: &Job,
    attempt: Attempt,
) -> anyhow::Result<String> {
    let key = job.key();
    anyhow::ensure!(
        attempt.results.len() == job.subjects.len(),
        "the attempt has {} results for {} artifacts",
        attempt.results.len(),
        job.subjects.len()
    );
    let log = unb64(&attempt.log)?;
    anyhow::ensure!(
        log.len() <= ctx.config.max_log_bytes + 4096,
        "build log over the limit"
    );
    let build_log = Some(ctx.store.put_blob(&log)?);
    let backend_name = attempt.backend.clone();
    let mut drafts = Vec::new();
    let mut summary = "GOOD";
    for s in &job.subjects {
        let r = attempt
            .results
            .iter()
            .find(|r| r.filename == s.filename)
            .ok_or_else(|| anyhow::anyhow!("no result for {}", s.filename))?;
        let diffoscope = match (&r.outcome, &r.diffoscope) {
            (Outcome::Bad { .. }, Some(d)) => {
                let d = unb64(d)?;
                anyhow::ensure!(
                    d.len() <= ctx.config.max_diffoscope_bytes + 4096,
                    "diffoscope output over the limit"
                );
                Some(ctx.store.put_blob(&d)?)
            }
            _ => None,
        };
        match r.outcome {
            Outcome::Good => {}
            Outcome::Bad { .. } => {
                if summary == "GOOD" {
                    summary = "BAD";
                }
            }
            Outcome::Fail { .. } => summary = "FAIL",
        }
        drafts.push(Draft {
            subject: subject(job, s),
            inputs: inputs(job, s, &attempt),
            outcome: r.outcome,
            evidence: Evidence {
                build_log,
                diffoscope,
            },
        });
    }
    // The attempt is well-formed. Exactly one completion of it may sign:
    // claim it first (compare-and-set Running → Recording, durable); a
    // malformed one above left the job to its worker.
    let (store, k, w, lease) = (
        ctx.store.clone(),
        key.clone(),
        worker.to_string(),
        ctx.config.lease_secs,
    );
    let claimed =
        tokio::task::spawn_blocking(move || store.claim_job(&k, &w, unix_now(), lease)).await??;
    if claimed.is_none() {
        return Err(NotHeld.into());
    }
    // A subject that cannot become a valid verdict (a field over its limit)
    // ends the job as FAIL with the reason, instead of being retried forever.
    if let Some(why) = drafts.iter().find_map(|d| d.invalid(ctx.signer.public())) {
        let outcome = format!("FAIL (unsignable: {why})");
        complete(ctx, &key, worker, &outcome).await?;
        tracing::warn!(job = %key, %why, "job cannot become a valid verdict");
        return Ok(outcome);
    }
    ctx.signer.sign_and_store(drafts).await?;
    ctx.metrics
        .builds
        .get_or_create(&ResultLabel {
            source: "local",
            result: match summary {
                "GOOD" => "good",
                "BAD" => "bad",
                _ => "fail",
            },
        })
        .inc();
    complete(ctx, &key, worker, summary).await?;
    ctx.activity.build(&key, summary, &backend_name);
    tracing::info!(job = %key, outcome = %summary, backend = %backend_name, "rebuilt");
    Ok(summary.to_string())
}

async fn diffoscope(
    config: &RebuildConfig,
    published: &Path,
    rebuilt: &Path,
    workdir: &Path,
) -> Option<Vec<u8>> {
    if config.diffoscope.is_empty() {
        return None;
    }
    let mut args = config.diffoscope.clone();
    args.push(published.display().to_string());
    args.push(rebuilt.display().to_string());
    let out = run_command(
        &args,
        workdir,
        &[],
        Duration::from_secs(config.diffoscope_timeout_secs),
        config.max_diffoscope_bytes,
    )
    .await;
    // diffoscope exits 1 when the files differ; a start failure means it is
    // not installed.
    if out.status == BuildStatus::BackendError {
        tracing::warn!("diffoscope is not available; BAD verdicts carry no diffoscope evidence");
        return None;
    }
    Some(out.log)
}

fn subject(job: &Job, s: &crate::sync::JobSubject) -> Subject {
    Subject {
        distribution: job.distribution.clone(),
        release: job.release.clone(),
        component: Some(job.component.clone()),
        architecture: job.architecture.clone(),
        name: s.name.clone(),
        version: s.version.clone(),
        filename: s.filename.clone(),
        sha256: s.sha256,
    }
}

fn inputs(job: &Job, s: &crate::sync::JobSubject, attempt: &Attempt) -> Inputs {
    let url = format!("{}/{}", job.mirror.trim_end_matches('/'), s.path);
    Inputs {
        buildinfo_sha256: attempt.buildinfo_sha256,
        source_url: (url.len() <= vouch_attest::MAX_URL).then_some(url),
        backend: attempt.backend.clone(),
        backend_version: attempt.backend_version.clone(),
    }
}

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    Digest::of_reader(std::fs::File::open(path)?)
}

/// Streams `url` to `dest` (at most `max` bytes) and returns its sha256.
async fn download(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    max: u64,
) -> anyhow::Result<Digest> {
    use tokio::io::AsyncWriteExt as _;
    if let Some(path) = url.strip_prefix("file://") {
        let len = std::fs::metadata(path)?.len();
        anyhow::ensure!(len <= max, "{len} bytes, over the limit of {max}");
        std::fs::copy(path, dest)?;
        return Ok(hash_file(dest)?);
    }
    let mut resp = client.get(url).send().await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let mut file = tokio::fs::File::create(dest).await?;
    let mut h = Hasher::new();
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        total += chunk.len() as u64;
        anyhow::ensure!(total <= max, "over the limit of {max} bytes");
        h.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(h.finish())
}
