//! The ingest pipeline: one path for every source of envelopes (HTTP now,
//! gossip and sync later, the node's own verdicts).
//!
//! size limit → decode → batch signature verification (on the blocking pool)
//! → chain check against the signer's head → atomic write of the verdict and
//! its index entries → flush → acknowledge.
//!
//! One writer thread owns all writes. It takes every job that is waiting,
//! applies them in one transaction and flushes once (group commit): every
//! verdict that arrived while the last flush ran goes into the next one.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use vouch_attest::{VerifiedVerdict, verify_batch};

use crate::admission::{Admission, LedgerError, Refusal};
use crate::metrics::{Metrics, ReasonLabel, ResultLabel};
use crate::store::{Applied, Store};

/// What the pipeline hands to the network to publish: verdicts submitted to
/// this node directly (HTTP, its own rebuilds), after they are stored, and
/// every fork proof it finds.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// An accepted envelope.
    Verdict(Vec<u8>),
    /// A new fork proof.
    Fork(Vec<u8>),
}

/// Ingest settings.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Most verdicts written in one group commit.
    pub max_group: usize,
    /// Most entries held per signer while waiting for a gap to close.
    pub max_pending_per_signer: u64,
    /// Jobs waiting for the writer before submitters wait.
    pub queue: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_group: 8192,
            max_pending_per_signer: 100_000,
            queue: 256,
        }
    }
}

/// The answer for one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stored and durable.
    Accepted,
    /// Already stored.
    Duplicate,
    /// Held (durably) until the entries before it arrive.
    Pending,
    /// Not stored; see the reason.
    Rejected,
}

/// What happened to one envelope.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Position in the submitted list.
    pub index: usize,
    /// Verdict id, when the envelope decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The result.
    pub status: Status,
    /// Stable error code when rejected (`signature.invalid`, `fork`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The signer, when the envelope verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The verdict's seq, when the envelope verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// For `pending`: the first missing seq of the signer's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_from: Option<u64>,
    /// The fork proof stored when the envelope conflicts with a stored one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork_proof: Option<String>,
}

/// The pipeline failed as a whole; nothing in the submission was stored.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The writer stopped (shutdown) or the store failed.
    #[error("store unavailable: {0}")]
    Store(String),
}

struct Job {
    verified: Vec<VerifiedVerdict>,
    reply: oneshot::Sender<Result<Vec<Applied>, String>>,
}

/// A handle to the pipeline; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    outbound: Option<mpsc::Sender<Outbound>>,
}

impl Ingest {
    /// Starts the writer thread over `store`. It stops when every handle is
    /// dropped.
    ///
    /// `outbound`, when given, receives what should be published: envelopes
    /// accepted from the `http` and `local` sources, and every new fork
    /// proof.
    pub fn start(
        store: Store,
        config: IngestConfig,
        metrics: Arc<Metrics>,
        admission: Arc<Admission>,
        outbound: Option<mpsc::Sender<Outbound>>,
    ) -> (Ingest, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let m = metrics.clone();
        let writer_admission = admission.clone();
        let handle = std::thread::Builder::new()
            .name("vouch-writer".into())
            .spawn(move || writer(store, config, rx, &m, &writer_admission))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (
            Ingest {
                tx,
                metrics,
                admission,
                outbound,
            },
            handle,
        )
    }

    /// Runs `envelopes` through the whole pipeline. Returns one report per
    /// envelope, in order, once everything accepted is durable.
    pub async fn submit(
        &self,
        source: &'static str,
        envelopes: Vec<Vec<u8>>,
    ) -> Result<Vec<Report>, IngestError> {
        // verify_batch refuses anything over MAX_ENVELOPE before decoding.
        let verified = tokio::task::spawn_blocking(move || {
            let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
            verify_batch(&refs)
        })
        .await
        .map_err(|e| IngestError::Store(format!("verification task failed: {e}")))?;

        let mut reports: Vec<Option<Report>> = Vec::with_capacity(verified.len());
        let mut good = Vec::new();
        let mut good_index = Vec::new();
        for (index, result) in verified.into_iter().enumerate() {
            match result {
                Ok(v) => {
                    let signer = *v.signer();
                    if let Err(refusal) = self.admission.admit(&signer) {
                        self.metrics
                            .dropped
                            .get_or_create(&ReasonLabel {
                                reason: refusal.code(),
                            })
                            .inc();
                        reports.push(Some(Report {
                            index,
                            id: Some(v.id().to_hex()),
                            status: Status::Rejected,
                            code: Some(refusal.code().to_string()),
                            reason: Some(refusal.reason().to_string()),
                            signer: Some(signer.to_text()),
                            seq: Some(v.verdict().seq),
                            missing_from: None,
                            fork_proof: None,
                        }));
                        continue;
                    }
                    good_index.push(index);
                    good.push(v);
                    reports.push(None);
                }
                Err(e) => reports.push(Some(Report {
                    index,
                    id: None,
                    status: Status::Rejected,
                    code: Some(e.code().to_string()),
                    reason: Some(e.to_string()),
                    signer: None,
                    seq: None,
                    missing_from: None,
                    fork_proof: None,
                })),
            }
        }
        if !good.is_empty() {
            let publish = matches!(source, "http" | "local") && self.outbound.is_some();
            let meta: Vec<(String, String, u64, Option<Vec<u8>>)> = good
                .iter()
                .map(|v| {
                    (
                        v.id().to_hex(),
                        v.signer().to_text(),
                        v.verdict().seq,
                        publish.then(|| v.envelope().to_vec()),
                    )
                })
                .collect();
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Job {
                    verified: good,
                    reply,
                })
                .await
                .map_err(|_| IngestError::Store("the writer has stopped".into()))?;
            let applied = rx
                .await
                .map_err(|_| IngestError::Store("the writer has stopped".into()))?
                .map_err(IngestError::Store)?;
            for ((index, (id, signer, seq, envelope)), a) in
                good_index.into_iter().zip(meta).zip(applied)
            {
                if let Some(out) = &self.outbound {
                    match (&a, envelope) {
                        (Applied::Accepted, Some(e)) => {
                            let _ = out.send(Outbound::Verdict(e)).await;
                        }
                        (
                            Applied::Fork {
                                bytes,
                                stored: true,
                                ..
                            },
                            _,
                        ) => {
                            let _ = out.send(Outbound::Fork(bytes.clone())).await;
                        }
                        _ => {}
                    }
                }
                let mut r = report(index, id, a);
                r.signer = Some(signer);
                r.seq = Some(seq);
                reports[index] = Some(r);
            }
        }
        let reports: Vec<Report> = reports.into_iter().flatten().collect();
        for r in &reports {
            let result = match (r.status, r.code.as_deref()) {
                (Status::Rejected, Some("fork")) => "fork",
                (Status::Accepted, _) => "accepted",
                (Status::Duplicate, _) => "duplicate",
                (Status::Pending, _) => "pending",
                (Status::Rejected, _) => "rejected",
            };
            self.metrics
                .ingest
                .get_or_create(&ResultLabel { source, result })
                .inc();
        }
        Ok(reports)
    }
}

fn report(index: usize, id: String, a: Applied) -> Report {
    let mut r = Report {
        index,
        id: Some(id),
        status: Status::Accepted,
        code: None,
        reason: None,
        signer: None,
        seq: None,
        missing_from: None,
        fork_proof: None,
    };
    match a {
        Applied::Accepted => {}
        Applied::Duplicate => r.status = Status::Duplicate,
        Applied::Pending { missing_from } => {
            r.status = Status::Pending;
            r.missing_from = Some(missing_from);
            r.reason = Some(format!(
                "held until the signer's entries from seq {missing_from} arrive"
            ));
        }
        Applied::Fork {
            proof, existing, ..
        } => {
            r.status = Status::Rejected;
            r.code = Some("fork".into());
            r.reason = Some(format!(
                "conflicts with stored verdict {existing}: the signer forked its log"
            ));
            r.fork_proof = Some(proof.to_hex());
        }
        Applied::Rejected { code, reason } => {
            r.status = Status::Rejected;
            r.code = Some(code.into());
            r.reason = Some(reason);
        }
    }
    r
}

fn writer(
    store: Store,
    config: IngestConfig,
    mut rx: mpsc::Receiver<Job>,
    metrics: &Metrics,
    admission: &Admission,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut total = first.verified.len();
        let mut jobs = vec![first];
        while total < config.max_group {
            match rx.try_recv() {
                Ok(job) => {
                    total += job.verified.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let start = Instant::now();
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut all = Vec::with_capacity(total);
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.verified.len());
            all.extend(job.verified);
            replies.push(job.reply);
        }
        let result = apply_within_quota(
            &store,
            admission,
            all,
            config.max_pending_per_signer,
            metrics,
        )
        .and_then(|r| store.flush().map(|()| r));
        metrics.group_size.observe(total as f64);
        metrics.group_seconds.observe(start.elapsed().as_secs_f64());
        match result {
            Ok(applied) => {
                let mut rest = applied.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; nothing in it was acknowledged");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Applies `all` in one transaction, less what the storage quotas refuse:
/// the single writer charges every verdict in order, so the quotas hold
/// exactly, however many sources submit at once.
fn apply_within_quota(
    store: &Store,
    admission: &Admission,
    all: Vec<VerifiedVerdict>,
    max_pending: u64,
    metrics: &Metrics,
) -> Result<Vec<Applied>, crate::store::StoreError> {
    let mut ledger = admission.ledger(store)?;
    let mut refused: Vec<Option<Refusal>> = Vec::with_capacity(all.len());
    let mut admitted = Vec::with_capacity(all.len());
    for v in all {
        match ledger.charge(&v) {
            Ok(()) => {
                refused.push(None);
                admitted.push(v);
            }
            Err(LedgerError::Refused(r)) => {
                metrics
                    .dropped
                    .get_or_create(&ReasonLabel { reason: r.code() })
                    .inc();
                refused.push(Some(r));
            }
            Err(LedgerError::Store(e)) => return Err(e),
        }
    }
    let mut applied = store.apply(&admitted, max_pending)?.into_iter();
    Ok(refused
        .into_iter()
        .map(|r| match r {
            Some(r) => Applied::Rejected {
                code: r.code(),
                reason: r.reason().to_string(),
            },
            None => applied.next().unwrap_or(Applied::Rejected {
                code: "internal",
                reason: "the store answered fewer results than it was given".into(),
            }),
        })
        .collect())
}
