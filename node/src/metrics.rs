//! Prometheus metrics, served as text at `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::Counts;

/// Labels of ingest results.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// Where the envelope came from: `http`, `gossip`, `sync`, `local`.
    pub source: &'static str,
    /// `accepted`, `duplicate`, `pending`, `fork` or `rejected`.
    pub result: &'static str,
}

/// Labels of HTTP requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The matched route, e.g. `/api/vouch/v1/verdicts`.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Labels of dropped input.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why it was dropped (`quota.signer_rate`, `p2p.peer_rate`, ...).
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    /// Envelopes ingested, by source and result.
    pub ingest: Family<ResultLabel, Counter>,
    /// Input dropped by abuse limits, by reason.
    pub dropped: Family<ReasonLabel, Counter>,
    /// Gossip messages received, by topic and validation result.
    pub gossip: Family<ResultLabel, Counter>,
    /// Rebuilds finished, by outcome.
    pub builds: Family<ResultLabel, Counter>,
    /// Verdicts per group commit.
    pub group_size: Histogram,
    /// Seconds per group commit (apply + flush).
    pub group_seconds: Histogram,
    /// HTTP request latencies.
    pub http: HistogramFamily<RouteLabel>,
    verdicts: Gauge<u64, AtomicU64>,
    pending: Gauge<u64, AtomicU64>,
    signers: Gauge<u64, AtomicU64>,
    forks: Gauge<u64, AtomicU64>,
    blobs: Gauge<u64, AtomicU64>,
    jobs: Family<StateLabel, Gauge<u64, AtomicU64>>,
}

/// Labels of job states.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `queued`, `running`, `done`.
    pub state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vouch");
        let ingest = Family::<ResultLabel, Counter>::default();
        registry.register(
            "ingest_envelopes",
            "Envelopes ingested, by source and result",
            ingest.clone(),
        );
        let dropped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "dropped",
            "Input dropped by abuse limits, by reason",
            dropped.clone(),
        );
        let gossip = Family::<ResultLabel, Counter>::default();
        registry.register(
            "gossip_messages",
            "Gossip messages received, by topic and validation result",
            gossip.clone(),
        );
        let builds = Family::<ResultLabel, Counter>::default();
        registry.register("builds", "Rebuilds finished, by outcome", builds.clone());
        let group_size = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "ingest_group_size",
            "Verdicts written per group commit",
            group_size.clone(),
        );
        let group_seconds = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        registry.register(
            "ingest_group_duration_seconds",
            "Time to apply and flush one group commit",
            group_seconds.clone(),
        );
        let http: HistogramFamily<RouteLabel> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latencies",
            http.clone(),
        );
        let verdicts = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "verdicts_stored",
            "Verdicts stored in signer logs",
            verdicts.clone(),
        );
        let pending = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "verdicts_pending",
            "Verdicts held until a gap in their log closes",
            pending.clone(),
        );
        let signers = Gauge::<u64, AtomicU64>::default();
        registry.register("signers", "Signers with a stored log", signers.clone());
        let forks = Gauge::<u64, AtomicU64>::default();
        registry.register("fork_proofs", "Fork proofs stored", forks.clone());
        let blobs = Gauge::<u64, AtomicU64>::default();
        registry.register("evidence_blobs", "Evidence blobs stored", blobs.clone());
        let jobs = Family::<StateLabel, Gauge<u64, AtomicU64>>::default();
        registry.register("jobs", "Rebuild jobs by state", jobs.clone());
        Metrics {
            jobs,
            registry,
            ingest,
            dropped,
            gossip,
            builds,
            group_size,
            group_seconds,
            http,
            verdicts,
            pending,
            signers,
            forks,
            blobs,
        }
    }

    /// Refreshes the job gauges.
    pub fn set_queue(&self, q: &crate::store::jobs::QueueCounts) {
        self.jobs
            .get_or_create(&StateLabel { state: "queued" })
            .set(q.queued);
        self.jobs
            .get_or_create(&StateLabel { state: "running" })
            .set(q.running);
        self.jobs
            .get_or_create(&StateLabel { state: "done" })
            .set(q.done);
    }

    /// The Prometheus text exposition, with the store gauges refreshed.
    pub fn render(&self, counts: &Counts) -> String {
        self.verdicts.set(counts.verdicts);
        self.pending.set(counts.pending);
        self.signers.set(counts.signers);
        self.forks.set(counts.forks);
        self.blobs.set(counts.blobs);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
