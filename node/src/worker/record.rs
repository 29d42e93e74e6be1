//! Signing and recording an attempt: the evidence stored, one verdict per
//! artifact signed with the node's key (each the next of its log), the
//! outcome recorded in the queue.

use tokio::sync::Mutex;
use vouch_attest::{
    Digest, Evidence, FORMAT_VERSION, Inputs, Outcome, PublicKey, SecretKey, Subject, Verdict, sign,
};

use crate::ingest::{Ingest, Status};
use crate::metrics::ResultLabel;
use crate::store::Store;
use crate::sync::Job;

use super::{Attempt, WorkerContext, complete, unix_now};

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

fn unb64(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
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
