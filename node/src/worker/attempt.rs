//! One rebuild attempt: fetch the published artifacts (sha256-checked),
//! run the backend, compare every artifact, diffoscope what differs.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vouch_attest::{Digest, FailReason, Hasher, Outcome};

use crate::backend::{BackendConfig, BuildStatus, run_command};
use crate::sync::Job;

use super::RebuildConfig;

/// What one rebuild attempt found, before anything is signed. Local workers
/// hand it to [`super::record_attempt`] directly; remote workers upload it.
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
        let dest = input.join(&s.filename);
        let max = config.max_artifact_bytes;
        if !fetch_checked(http, &url, &dest, max, &s.sha256, "the index", &mut log).await {
            return fail_all(FailReason::Fetch, log);
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
            let dest = src.join(&f.name);
            let max = config.max_artifact_bytes;
            if !fetch_checked(http, &url, &dest, max, &f.sha256, "Sources", &mut log).await {
                return fail_all(FailReason::Fetch, log);
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

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    Digest::of_reader(std::fs::File::open(path)?)
}

/// Downloads `url` to `dest` (at most `max` bytes) and checks it against
/// the `expected` sha256 that `listed_in` gives, saying in `log` what
/// happened. False when it cannot be fetched or does not match.
async fn fetch_checked(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    max: u64,
    expected: &Digest,
    listed_in: &str,
    log: &mut Vec<u8>,
) -> bool {
    let (line, ok) = match download(client, url, dest, max).await {
        Ok(sha) if sha == *expected => (format!("fetched {url} (sha256 {sha})\n"), true),
        Ok(sha) => (
            format!("fetched {url}: sha256 {sha}, but {listed_in} says {expected}\n"),
            false,
        ),
        Err(e) => (format!("cannot fetch {url}: {e}\n"), false),
    };
    log.extend_from_slice(line.as_bytes());
    ok
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
