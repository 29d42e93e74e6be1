//! Queueing what a repository sync found: new jobs in chunks, each chunk
//! one batch with their ids and package rows (see [`super::register`]);
//! known jobs marked published again, vanished ones unpublished (never
//! deleted).

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
        let listed: Vec<(&Job, &str)> = jobs
            .iter()
            .zip(&keys)
            .filter(|(_, key)| present.insert(key.as_str())) // listed twice: once
            .map(|(job, key)| (job, key.as_str()))
            .collect();
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
        let new = self.queue_new(&listed, now)?;
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

    /// Queues the `listed` jobs that are new at `now`, in batches of
    /// [`QUEUE_CHUNK`]: each job's record, its queue entry, its ids and its
    /// package rows, so that a crash leaves all of them or none; marks
    /// known ones published again. Records are encoded while the previous
    /// batch is committed. Returns how many it queued (a job another sync
    /// queued first is known by the time this one looks).
    fn queue_new(&self, listed: &[(&Job, &str)], now: u64) -> Result<usize, StoreError> {
        let mut back: Vec<&str> = Vec::new();
        let each = self.registering_each(listed.chunks(QUEUE_CHUNK), |next, batch, chunk| {
            let mut queued = Vec::with_capacity(chunk.len());
            for &(job, key) in chunk {
                // Registrations take turns and the keys of one sync are
                // distinct, so this sees every job queued before.
                if let Some(v) = self.jobs.get(key.as_bytes())? {
                    if !decode(&v)?.published {
                        back.push(key);
                    }
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
        if let Some(e) = each.stopped {
            return Err(e);
        }
        for key in back {
            if let Some(v) = self.jobs.get(key.as_bytes())? {
                let mut r = decode(&v)?;
                r.published = true;
                self.jobs.insert(key.as_bytes(), encode(&r)?)?;
                self.note_published(key, true)?;
            }
        }
        Ok(n)
    }
}
