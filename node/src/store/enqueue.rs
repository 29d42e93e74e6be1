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
        let prepared = prepare(&fresh, now)?;
        let mut new = 0;
        for chunk in prepared.chunks(QUEUE_CHUNK) {
            new += self.queue_new(chunk)?;
        }
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
    fn queue_new(&self, fresh: &[Prepared]) -> Result<usize, StoreError> {
        let (queued, registered) = self.registering(|next, batch| {
            let mut queued = Vec::with_capacity(fresh.len());
            let mut registered = Vec::with_capacity(fresh.len());
            for p in fresh {
                if self.jobs.contains_key(p.key.as_bytes())? {
                    continue;
                }
                batch.insert(&self.jobs, p.key.as_bytes(), &p.record);
                batch.insert(&self.queue, &p.queue_key, []);
                let (ids, new) = self.register_into(batch, next, p.key, p.job)?;
                registered.extend(new);
                queued.push((p.key, ids));
            }
            Ok((queued, registered))
        })?;
        self.note_registered(registered)?;
        let n = queued.len();
        for (key, ids) in queued {
            self.job_moved_as(key, Some(ids.id), None, JobState::Queued);
        }
        Ok(n)
    }
}

/// A new job with its record and queue key encoded.
struct Prepared<'a> {
    job: &'a Job,
    key: &'a str,
    record: Vec<u8>,
    queue_key: Vec<u8>,
}

/// Jobs below this many are encoded on the caller's thread.
const PREPARE_ALONE: usize = 512;

/// Encodes the records and queue keys of `fresh` jobs queued at `now`, on
/// every core: outside the registration lock, this is most of queueing's
/// work.
fn prepare<'a>(fresh: &[(&'a Job, &'a str)], now: u64) -> Result<Vec<Prepared<'a>>, StoreError> {
    let one = |&(job, key): &(&'a Job, &'a str)| {
        Ok(Prepared {
            job,
            key,
            record: encode_queued(job, now)?,
            queue_key: queue_key(Priority::New, now, key),
        })
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if fresh.len() < PREPARE_ALONE || threads < 2 {
        return fresh.iter().map(one).collect();
    }
    let per = fresh.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = fresh
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut out = Vec::with_capacity(fresh.len());
        for part in parts {
            let done = part
                .join()
                .map_err(|_| StoreError::Io("a thread encoding job records panicked".into()))?;
            out.extend(done?);
        }
        Ok(out)
    })
}
