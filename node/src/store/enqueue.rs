//! Queueing what a repository sync found: new jobs in chunks, each chunk
//! one transaction with its ids and package rows; known jobs marked
//! published again, vanished ones unpublished (never deleted).

use super::jobs::{JobState, Priority, decode, encode, encode_queued, queue_key};
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
        let keys: Vec<String> = jobs.iter().map(Job::key).collect();
        let mut present = std::collections::HashSet::with_capacity(keys.len());
        let mut fresh: Vec<(&Job, &str)> = Vec::new();
        for (job, key) in jobs.iter().zip(&keys) {
            if !present.insert(key.as_str()) {
                continue; // listed twice in one index: queued once
            }
            match self.jobs.get(key.as_bytes())? {
                Some(v) => {
                    let mut r = decode(&v)?;
                    if !r.published {
                        r.published = true;
                        self.jobs.insert(key.as_bytes(), encode(&r)?)?;
                        self.note_published(key, true)?;
                    }
                }
                None => fresh.push((job, key)),
            }
        }
        // Known jobs of `scope` that the index no longer lists; the new
        // ones queued below are all listed.
        for prefix in scope {
            self.meta
                .insert(synced_key(prefix.trim_end_matches('/')), now.to_be_bytes())?;
            for item in self.jobs.scan_prefix(prefix.as_bytes()) {
                let (k, v) = item?;
                let key = String::from_utf8_lossy(&k);
                if present.contains(key.as_ref()) {
                    continue;
                }
                let mut r = decode(&v)?;
                if r.published {
                    r.published = false;
                    self.jobs.insert(&k, encode(&r)?)?;
                    self.note_published(&key, false)?;
                }
            }
        }
        let new = self.queue_new(&fresh, now)?;
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

    /// Queues `fresh` jobs (none of them known when the sync looked) at
    /// `now`, in batches of [`QUEUE_CHUNK`]: each job's record, its queue
    /// entry, its ids and its package rows, so that a crash leaves all of
    /// them or none. A job that another sync queued meanwhile is left as it
    /// is. Records are encoded while the previous batch is committed.
    fn queue_new(&self, fresh: &[(&Job, &str)], now: u64) -> Result<usize, StoreError> {
        let each = self.registering_each(fresh.chunks(QUEUE_CHUNK), |next, batch, chunk| {
            let mut queued = Vec::with_capacity(chunk.len());
            for &(job, key) in chunk {
                // Queued by another sync: registrations take turns, and the
                // keys of one sync are distinct.
                if self.jobs.contains_key(key.as_bytes())? {
                    continue;
                }
                batch.insert(&self.jobs, key.as_bytes(), encode_queued(job, now)?);
                batch.insert(&self.queue, queue_key(Priority::New, now, key), []);
                queued.push((key, self.assign_into(batch, next, key, job)?));
            }
            Ok(queued)
        });
        let mut n = 0;
        for (key, (ids, registered)) in each.committed.into_iter().flatten() {
            self.note_registered([registered])?;
            self.job_moved_as(key, Some(ids.id), None, JobState::Queued);
            n += 1;
        }
        match each.stopped {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}
