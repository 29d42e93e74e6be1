//! What this node's own verdicts say about the packages it follows, kept in
//! memory: the latest outcome per artifact, and counts per origin
//! (`distribution/release/component/architecture`) of packages GOOD, BAD,
//! FAIL and not yet rebuilt — all of them, and those still published. It is
//! built once at open and moved by every write after it commits, so the
//! dashboard and the rebuilderd API's totals never count rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;
use vouch_attest::{Digest, OutcomeKind};

use super::packages::PackageRow;

/// This node's latest verdict about one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Own {
    /// Its outcome.
    pub outcome: OutcomeKind,
    /// Its id.
    pub verdict: Digest,
    /// When it was signed (unix seconds).
    pub issued_at: u64,
    /// Whether it names a build log.
    pub has_log: bool,
    /// Whether it names a diffoscope.
    pub has_diffoscope: bool,
}

/// Package counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Reproduced.
    pub good: u64,
    /// Built, differs.
    pub bad: u64,
    /// Did not build.
    pub fail: u64,
    /// No verdict yet.
    pub unknown: u64,
}

impl StatusCounts {
    fn slot(&mut self, s: Option<OutcomeKind>) -> &mut u64 {
        match s {
            Some(OutcomeKind::Good) => &mut self.good,
            Some(OutcomeKind::Bad) => &mut self.bad,
            Some(OutcomeKind::Fail) => &mut self.fail,
            None => &mut self.unknown,
        }
    }

    /// All packages counted.
    pub fn total(&self) -> u64 {
        self.good + self.bad + self.fail + self.unknown
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &StatusCounts) {
        self.good += other.good;
        self.bad += other.bad;
        self.fail += other.fail;
        self.unknown += other.unknown;
    }

    /// How many have status `s` (None: no verdict).
    pub fn get(&self, s: Option<OutcomeKind>) -> u64 {
        let mut c = *self;
        *c.slot(s)
    }
}

/// Counts of one origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OriginCounts {
    /// Every package ever published there.
    pub all: StatusCounts,
    /// Those in the last sync.
    pub published: StatusCounts,
}

#[derive(Default)]
struct Inner {
    status: HashMap<Digest, Own>,
    origins: BTreeMap<String, OriginCounts>,
    unpublished: HashSet<u32>,
    queued: BTreeSet<u32>,
}

/// The in-memory standing.
#[derive(Default)]
pub(crate) struct Standing {
    inner: Mutex<Inner>,
}

impl Standing {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the statuses and counts (before counting them again); the
    /// sets of unpublished and queued jobs, kept from the store's open,
    /// stay.
    pub(crate) fn reset(&self) {
        let mut g = self.lock();
        g.status.clear();
        g.origins.clear();
    }

    /// A package was registered (or counted at open), with this node's
    /// latest verdict about its artifact.
    pub(crate) fn added(&self, row: &PackageRow, own: Option<Own>) {
        self.job_added(&row.origin(), row.job_id, &[(row.sha256, own)]);
    }

    /// The packages of the job `job_id` of `origin` were registered, each
    /// artifact with this node's latest verdict about it.
    pub(crate) fn job_added(&self, origin: &str, job_id: u32, packages: &[(Digest, Option<Own>)]) {
        let mut g = self.lock();
        let published = !g.unpublished.contains(&job_id);
        for (sha, own) in packages {
            if let Some(o) = own {
                g.status.insert(*sha, *o);
            }
        }
        let c = g.origins.entry(origin.to_string()).or_default();
        for (_, own) in packages {
            let status = own.map(|o| o.outcome);
            *c.all.slot(status) += 1;
            if published {
                *c.published.slot(status) += 1;
            }
        }
    }

    /// A new verdict of this node about the artifact of `rows`.
    pub(crate) fn verdict(&self, sha: Digest, own: Own, rows: &[PackageRow]) {
        let mut g = self.lock();
        let before = g.status.get(&sha).map(|o| o.outcome);
        if g.status
            .get(&sha)
            .is_some_and(|o| o.issued_at > own.issued_at)
        {
            return;
        }
        g.status.insert(sha, own);
        if before == Some(own.outcome) {
            return;
        }
        for row in rows {
            let published = !g.unpublished.contains(&row.job_id);
            let c = g.origins.entry(row.origin()).or_default();
            move_count(&mut c.all, before, Some(own.outcome));
            if published {
                move_count(&mut c.published, before, Some(own.outcome));
            }
        }
    }

    /// The job `job_id` (whose packages are `rows`) left or came back to
    /// its repository.
    pub(crate) fn published(&self, job_id: u32, published: bool, rows: &[PackageRow]) {
        let mut g = self.lock();
        let was = !g.unpublished.contains(&job_id);
        if was == published {
            return;
        }
        if published {
            g.unpublished.remove(&job_id);
        } else {
            g.unpublished.insert(job_id);
        }
        for row in rows {
            let status = g.status.get(&row.sha256).map(|o| o.outcome);
            let c = g.origins.entry(row.origin()).or_default();
            let slot = c.published.slot(status);
            if published {
                *slot += 1;
            } else {
                *slot = slot.saturating_sub(1);
            }
        }
    }

    /// The job `job_id` is queued, or no longer.
    pub(crate) fn queued(&self, job_id: u32, queued: bool) {
        let mut g = self.lock();
        if queued {
            g.queued.insert(job_id);
        } else {
            g.queued.remove(&job_id);
        }
    }

    /// Up to `limit` queued job ids after `after`, in id order.
    pub(crate) fn queued_after(&self, after: u32, limit: usize) -> Vec<u32> {
        self.lock()
            .queued
            .range(after.saturating_add(1)..)
            .take(limit)
            .copied()
            .collect()
    }

    /// How many jobs are queued.
    pub(crate) fn queued_count(&self) -> usize {
        self.lock().queued.len()
    }

    /// This node's latest verdict about `sha`.
    pub(crate) fn own(&self, sha: &Digest) -> Option<Own> {
        self.lock().status.get(sha).copied()
    }

    /// Whether the job `job_id` was in its repository's last sync.
    pub(crate) fn is_published(&self, job_id: u32) -> bool {
        !self.lock().unpublished.contains(&job_id)
    }

    /// Counts per origin.
    pub(crate) fn origins(&self) -> BTreeMap<String, OriginCounts> {
        self.lock().origins.clone()
    }
}

fn move_count(c: &mut StatusCounts, from: Option<OutcomeKind>, to: Option<OutcomeKind>) {
    let f = c.slot(from);
    *f = f.saturating_sub(1);
    *c.slot(to) += 1;
}
