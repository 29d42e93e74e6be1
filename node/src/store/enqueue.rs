//! Queueing what a repository sync found: new jobs in chunks, each chunk
//! one transaction with its ids and package rows; known jobs marked
//! published again, vanished ones unpublished (never deleted).

use super::jobs::{JobRecord, JobState, decode, encode, queue_key};
use super::{Store, StoreError};
use crate::sync::Job;

/// New jobs queued in one transaction, at most.
const QUEUE_CHUNK: usize = 1000;

fn synced_key(origin: &str) -> Vec<u8> {
    format!("synced:{origin}").into_bytes()
}

impl Store {
    /// Queues the jobs of a sync that are new (by key), marks known ones
    /// published again, and marks every known job of `scope` (a key prefix:
    /// distribution/release/component/architecture) that is absent from
    /// `jobs` as no longer published — never deleting it. Returns how many
    /// it queued (a job another sync queued first is not counted).
    pub fn enqueue_sync(
        &self,
        scope: &[String],
        jobs: &[Job],
        now: u64,
    ) -> Result<usize, StoreError> {
        let present: std::collections::HashSet<String> = jobs.iter().map(Job::key).collect();
        let mut fresh: Vec<&Job> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for job in jobs {
            let key = job.key();
            if !seen.insert(key.clone()) {
                continue; // listed twice in one index: queued once
            }
            match self.jobs.get(key.as_bytes())? {
                Some(v) => {
                    let mut r = decode(&v)?;
                    if !r.published {
                        r.published = true;
                        self.jobs.insert(key.as_bytes(), encode(&r)?)?;
                        self.note_published(&key, true)?;
                    }
                }
                None => fresh.push(job),
            }
        }
        let mut new = 0;
        for chunk in fresh.chunks(QUEUE_CHUNK) {
            new += self.queue_new(chunk, now)?;
        }
        for prefix in scope {
            self.meta
                .insert(synced_key(prefix.trim_end_matches('/')), now.to_be_bytes())?;
            for item in self.jobs.scan_prefix(prefix.as_bytes()) {
                let (k, v) = item?;
                let key = String::from_utf8_lossy(&k).into_owned();
                if present.contains(&key) {
                    continue;
                }
                let mut r = decode(&v)?;
                if r.published {
                    r.published = false;
                    self.jobs.insert(k, encode(&r)?)?;
                    self.note_published(&key, false)?;
                }
            }
        }
        self.flush()?;
        Ok(new)
    }

    /// When the index of `origin` (`distribution/release/component/arch`)
    /// was last read in full (unix seconds; 0 when never).
    pub fn last_synced(&self, origin: &str) -> Result<u64, StoreError> {
        Ok(super::keys::u64_value(
            self.meta.get(synced_key(origin))?.as_deref(),
        ))
    }

    /// Queues `fresh` jobs (none of them known when the sync looked) in
    /// one batch: each job's record, its queue entry, its ids and its
    /// package rows, so that a crash leaves all of them or none. A job that
    /// another sync queued meanwhile is left as it is.
    fn queue_new(&self, fresh: &[&Job], now: u64) -> Result<usize, StoreError> {
        let records: Vec<(String, Vec<u8>, Vec<u8>)> = fresh
            .iter()
            .map(|job| {
                let key = job.key();
                let r = JobRecord::queued((*job).clone(), now);
                let qk = queue_key(r.priority, r.next_at, &key);
                encode(&r).map(|v| (key, v, qk))
            })
            .collect::<Result<_, _>>()?;
        let (queued, rows) = self.registering(|next, batch| {
            let mut queued = Vec::with_capacity(fresh.len());
            let mut rows = Vec::new();
            for (job, (key, v, qk)) in fresh.iter().zip(&records) {
                if self.jobs.contains_key(key.as_bytes())? {
                    continue;
                }
                batch.insert(&self.jobs, key.as_bytes(), v);
                batch.insert(&self.queue, qk, []);
                let (ids, mut new) = self.register_into(batch, next, key, job)?;
                rows.append(&mut new);
                queued.push((key, ids));
            }
            Ok((queued, rows))
        })?;
        self.note_rows(rows)?;
        let n = queued.len();
        for (key, ids) in queued {
            self.job_moved_as(key, Some(ids.id), None, JobState::Queued);
        }
        Ok(n)
    }
}
