//! Counts kept in memory so that `/status` and `/metrics` cost the same
//! with ten jobs or ten million: a tree's `len()` reads all of it. They are
//! counted once when the store opens and moved by every write after its
//! transaction commits.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::jobs::{JobState, QueueCounts};

/// A callback told of missing evidence.
pub(crate) type EvidenceWanted =
    Box<dyn Fn(vouch_attest::Digest, vouch_attest::PublicKey) + Send + Sync>;

/// The counters.
#[derive(Default)]
pub(crate) struct Tally {
    /// Appended verdicts and held entries, as in `meta`: the writer reads
    /// them from here (see `heads.rs` for why not from the tree).
    pub(crate) verdicts: AtomicU64,
    pub(crate) pending: AtomicU64,
    pub(crate) signers: AtomicU64,
    pub(crate) forks: AtomicU64,
    pub(crate) blobs: AtomicU64,
    /// Bytes of the stored (compressed) blobs.
    pub(crate) blob_bytes: AtomicU64,
    queued: AtomicU64,
    done: AtomicU64,
    /// Keys of jobs held by workers (Running or Recording): few, and what
    /// `/status` lists.
    running: Mutex<BTreeSet<String>>,
    /// What this node's own verdicts say about the packages it follows.
    standing: super::standing::Standing,
    /// The researchers' counters.
    stats: super::stats::Stats,
    /// The head digest's buckets.
    head_buckets: super::digest::HeadBuckets,
    /// Told about evidence that new verdicts name and this node lacks.
    evidence_wanted: Mutex<Option<EvidenceWanted>>,
    /// This node's key, once the daemon names it.
    own: Mutex<Option<vouch_attest::PublicKey>>,
}

impl Tally {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The package standing.
    pub(crate) fn packages(&self) -> &super::standing::Standing {
        &self.standing
    }

    /// The researchers' counters.
    pub(crate) fn stats(&self) -> &super::stats::Stats {
        &self.stats
    }

    /// The head digest's buckets.
    pub(crate) fn head_buckets(&self) -> &super::digest::HeadBuckets {
        &self.head_buckets
    }

    /// The evidence callback.
    pub(crate) fn evidence_wanted(&self) -> std::sync::MutexGuard<'_, Option<EvidenceWanted>> {
        self.evidence_wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// This node's key, when set.
    pub(crate) fn own(&self) -> Option<vouch_attest::PublicKey> {
        *self.own.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets this node's key.
    pub(crate) fn set_own(&self, key: vouch_attest::PublicKey) {
        *self.own.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    /// A job `key` moved from `from` (None: new) to `to`.
    pub(crate) fn job_moved(&self, key: &str, from: Option<JobState>, to: JobState) {
        if from == Some(to) {
            return;
        }
        match from {
            Some(JobState::Queued) => dec(&self.queued),
            Some(JobState::Done) => dec(&self.done),
            Some(JobState::Running | JobState::Recording)
                if !matches!(to, JobState::Running | JobState::Recording) =>
            {
                self.running_keys().remove(key);
            }
            Some(JobState::Running | JobState::Recording) | None => {}
        }
        match to {
            JobState::Queued => Tally::add(&self.queued, 1),
            JobState::Done => Tally::add(&self.done, 1),
            JobState::Running | JobState::Recording => {
                self.running_keys().insert(key.to_string());
            }
        }
    }

    /// Counts of the queue.
    pub(crate) fn queue(&self) -> QueueCounts {
        QueueCounts {
            queued: self.queued.load(Ordering::Relaxed),
            running: self.running_keys().len() as u64,
            done: self.done.load(Ordering::Relaxed),
        }
    }

    /// The keys of the jobs held now.
    pub(crate) fn running(&self) -> Vec<String> {
        self.running_keys().iter().cloned().collect()
    }

    fn running_keys(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn dec(counter: &AtomicU64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        Some(n.saturating_sub(1))
    });
}
