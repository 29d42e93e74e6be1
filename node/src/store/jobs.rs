//! The job queue: one record per source build, an ordered index of
//! ready jobs, leases held by workers. State changes are transactions over
//! both trees, flushed before they are reported, so a crash never loses a
//! job and never runs one twice to a second verdict (see
//! [`Store::reap_jobs`]).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::sync::Job;

/// Why a job is queued, in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Asked for by an operator.
    Manual = 0,
    /// New in the repository.
    New = 1,
    /// A retry after FAIL or BAD.
    Retry = 2,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (at `next_at`).
    Queued,
    /// Held by a worker until `lease_until`.
    Running,
    /// Its attempt is being signed and recorded (claimed by one completion;
    /// any other completion of the same attempt is refused).
    Recording,
    /// Finished: reproduced, or out of retries.
    Done,
}

/// A job and its history. (`J` is the job or a reference to it: a record
/// is encoded from a borrowed job without copying it.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord<J = Job> {
    /// The job.
    pub job: J,
    /// Its state.
    pub state: JobState,
    /// Its priority while queued.
    pub priority: Priority,
    /// Unix seconds from when it may run.
    pub next_at: u64,
    /// Attempts that ended FAIL.
    pub fails: u32,
    /// Attempts that ended BAD.
    pub bads: u32,
    /// The last outcome (`GOOD`, `BAD`, `FAIL`).
    pub last: Option<String>,
    /// Who holds it.
    pub worker: Option<String>,
    /// Until when the lease holds (unix seconds).
    pub lease_until: u64,
    /// When the running attempt started (unix seconds).
    pub started_at: u64,
    /// Still in the repository index.
    pub published: bool,
    /// When it was last queued (unix seconds; 0 in records written before
    /// it was kept).
    #[serde(default)]
    pub queued_at: u64,
}

impl<J> JobRecord<J> {
    /// `job` as newly queued at `now`: ready at once, nothing tried yet.
    pub fn queued(job: J, now: u64) -> JobRecord<J> {
        JobRecord {
            job,
            state: JobState::Queued,
            priority: Priority::New,
            next_at: now,
            fails: 0,
            bads: 0,
            last: None,
            worker: None,
            lease_until: 0,
            started_at: 0,
            published: true,
            queued_at: now,
        }
    }
}

/// Counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Queued (ready or waiting for back-off).
    pub queued: u64,
    /// Held by workers.
    pub running: u64,
    /// Finished.
    pub done: u64,
}

pub(super) fn queue_key(priority: Priority, next_at: u64, job_key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + job_key.len());
    k.push(priority as u8);
    k.extend_from_slice(&next_at.to_be_bytes());
    k.extend_from_slice(job_key.as_bytes());
    k
}

pub(super) fn encode(r: &JobRecord) -> Result<Vec<u8>, StoreError> {
    super::packed::encode(r, "jobs")
}

/// [`JobRecord::queued`]`(job, now)` encoded without copying `job`.
pub(super) fn encode_queued(job: &Job, now: u64) -> Result<Vec<u8>, StoreError> {
    super::packed::encode(&JobRecord::queued(job, now), "jobs")
}

pub(crate) fn decode(v: &[u8]) -> Result<JobRecord, StoreError> {
    super::packed::decode(v, "jobs")
}

impl Store {
    /// Gives the next ready job to `worker` for `lease` seconds.
    pub fn lease_job(
        &self,
        worker: &str,
        now: u64,
        lease: u64,
    ) -> Result<Option<JobRecord>, StoreError> {
        for item in self.queue.iter() {
            let (qk, _) = item?;
            if qk.len() < 9 {
                continue;
            }
            let next_at = u64::from_be_bytes(qk[1..9].try_into().unwrap_or([0; 8]));
            if next_at > now {
                continue; // another priority class may have a ready job
            }
            let key = qk[9..].to_vec();
            let leased = self.db.transaction(|t| {
                let (jobs, queue) = (t.on(&self.jobs), t.on(&self.queue));
                let Some(v) = jobs.get(&key)? else {
                    queue.remove(&qk)?;
                    return Ok(None);
                };
                let mut r = decode(&v)?;
                queue.remove(&qk)?;
                if r.state != JobState::Queued {
                    return Ok(None);
                }
                r.state = JobState::Running;
                r.worker = Some(worker.to_string());
                r.lease_until = now + lease;
                r.started_at = now;
                jobs.insert(key.as_slice(), encode(&r)?)?;
                Ok(Some(r))
            })?;
            if let Some(r) = leased {
                self.job_moved(
                    &String::from_utf8_lossy(&key),
                    Some(JobState::Queued),
                    r.state,
                );
                self.flush()?;
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Extends a lease (a worker's heartbeat). False when the worker no
    /// longer holds the job. Compare-and-set in one transaction.
    pub fn heartbeat_job(
        &self,
        key: &str,
        worker: &str,
        now: u64,
        lease: u64,
    ) -> Result<bool, StoreError> {
        let held = self.update_held(key, worker, |r| r.lease_until = now + lease)?;
        Ok(held.is_some())
    }

    /// Claims the right to record the attempt `worker` ran: compare-and-set
    /// from Running (held by `worker`) to Recording, in one transaction and
    /// durable before it returns. Exactly one claim of an attempt succeeds;
    /// only its holder signs verdicts. `None` when `worker` does not hold
    /// the job (its lease ran out, or another completion claimed it).
    pub fn claim_job(
        &self,
        key: &str,
        worker: &str,
        now: u64,
        lease: u64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let claimed = self.update_held(key, worker, |r| {
            r.state = JobState::Recording;
            r.lease_until = now + lease;
        })?;
        if claimed.is_some() {
            self.flush()?;
        }
        Ok(claimed)
    }

    /// In one transaction: when `worker` holds the running job `key`,
    /// changes its record with `change` and returns it; otherwise changes
    /// nothing and returns `None`.
    fn update_held(
        &self,
        key: &str,
        worker: &str,
        change: impl Fn(&mut JobRecord),
    ) -> Result<Option<JobRecord>, StoreError> {
        self.db.transaction(|t| {
            let jobs = t.on(&self.jobs);
            let Some(v) = jobs.get(key.as_bytes())? else {
                return Ok(None);
            };
            let mut r = decode(&v)?;
            if r.state != JobState::Running || r.worker.as_deref() != Some(worker) {
                return Ok(None);
            }
            change(&mut r);
            jobs.insert(key.as_bytes(), encode(&r)?)?;
            Ok(Some(r))
        })
    }

    /// Records the outcome of a finished attempt: GOOD ends the job; FAIL
    /// and BAD are retried with their own limits and back-off. Only while
    /// `worker` holds the job (Running or Recording), compare-and-set in one
    /// transaction; `None` when it does not, and nothing changes.
    pub fn complete_job(
        &self,
        key: &str,
        worker: &str,
        outcome: &str,
        now: u64,
        retry: &RetryPolicy,
    ) -> Result<Option<JobRecord>, StoreError> {
        let done = self.db.transaction(|t| {
            let (jobs, queue) = (t.on(&self.jobs), t.on(&self.queue));
            let Some(v) = jobs.get(key.as_bytes())? else {
                return Ok(None);
            };
            let mut r = decode(&v)?;
            if !matches!(r.state, JobState::Running | JobState::Recording)
                || r.worker.as_deref() != Some(worker)
            {
                return Ok(None);
            }
            r.last = Some(outcome.to_string());
            r.worker = None;
            r.lease_until = 0;
            let again = match outcome {
                "FAIL" => {
                    r.fails += 1;
                    (r.fails <= retry.fail_retries).then(|| retry.backoff(r.fails))
                }
                "BAD" => {
                    r.bads += 1;
                    (r.bads <= retry.bad_retries).then(|| retry.backoff(r.bads))
                }
                _ => None,
            };
            match again {
                Some(delay) if r.published => {
                    r.state = JobState::Queued;
                    r.priority = Priority::Retry;
                    r.next_at = now + delay;
                    r.queued_at = now;
                    queue.insert(queue_key(r.priority, r.next_at, key), [])?;
                }
                _ => r.state = JobState::Done,
            }
            jobs.insert(key.as_bytes(), encode(&r)?)?;
            Ok(Some(r))
        })?;
        if let Some(r) = &done {
            self.job_moved(key, Some(JobState::Running), r.state);
        }
        self.flush()?;
        Ok(done)
    }

    /// Requeues a job by hand (priority manual).
    pub fn requeue_job(&self, key: &str, now: u64) -> Result<bool, StoreError> {
        self.requeue_job_with(key, now, Priority::Manual)
    }

    /// Requeues a job with `priority`: off the queue first when it was
    /// queued, so that it is queued once.
    pub fn requeue_job_with(
        &self,
        key: &str,
        now: u64,
        priority: Priority,
    ) -> Result<bool, StoreError> {
        let before = self.db.transaction(|t| {
            let (jobs, queue) = (t.on(&self.jobs), t.on(&self.queue));
            let Some(v) = jobs.get(key.as_bytes())? else {
                return Ok(None);
            };
            let mut r = decode(&v)?;
            let before = r.state;
            if before == JobState::Queued {
                queue.remove(queue_key(r.priority, r.next_at, key))?;
            }
            r.state = JobState::Queued;
            r.priority = priority;
            r.next_at = now;
            r.queued_at = now;
            jobs.insert(key.as_bytes(), encode(&r)?)?;
            queue.insert(queue_key(r.priority, r.next_at, key), [])?;
            Ok(Some(before))
        })?;
        let Some(before) = before else {
            return Ok(false);
        };
        self.job_moved(key, Some(before), JobState::Queued);
        self.flush()?;
        Ok(true)
    }

    /// Takes a queued job off the queue (rebuilderd's `DELETE /queue`): it
    /// is done until a sync or an operator queues it again. False when it
    /// was not queued.
    pub fn drop_job(&self, key: &str) -> Result<bool, StoreError> {
        let dropped = self.db.transaction(|t| {
            let (jobs, queue) = (t.on(&self.jobs), t.on(&self.queue));
            let Some(v) = jobs.get(key.as_bytes())? else {
                return Ok(false);
            };
            let mut r = decode(&v)?;
            if r.state != JobState::Queued {
                return Ok(false);
            }
            queue.remove(queue_key(r.priority, r.next_at, key))?;
            r.state = JobState::Done;
            jobs.insert(key.as_bytes(), encode(&r)?)?;
            Ok(true)
        })?;
        if dropped {
            self.job_moved(key, Some(JobState::Queued), JobState::Done);
            self.flush()?;
        }
        Ok(dropped)
    }

    /// A job moved from `from` (None: new) to `to`: the in-memory counts
    /// and the set of queued job ids follow.
    pub(super) fn job_moved(&self, key: &str, from: Option<JobState>, to: JobState) {
        let job_id = self.job_ids(key).ok().flatten().map(|ids| ids.id);
        self.job_moved_as(key, job_id, from, to);
    }

    /// [`Store::job_moved`] for a job whose id (if it has one) is known.
    pub(super) fn job_moved_as(
        &self,
        key: &str,
        job_id: Option<u32>,
        from: Option<JobState>,
        to: JobState,
    ) {
        self.tally.job_moved(key, from, to);
        if let Some(id) = job_id {
            self.tally.packages().queued(id, to == JobState::Queued);
        }
    }

    /// How many queued jobs may run at `now`: walks each priority class
    /// of the queue up to the first that may not.
    pub fn queue_ready(&self, now: u64) -> Result<u64, StoreError> {
        let mut n = 0;
        for class in [Priority::Manual, Priority::New, Priority::Retry] {
            for item in self.queue.scan_prefix([class as u8]) {
                let (qk, _) = item?;
                let at = qk
                    .get(1..9)
                    .and_then(|b| b.try_into().ok())
                    .map_or(u64::MAX, u64::from_be_bytes);
                if at > now {
                    break;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Every job whose key starts with `prefix`, calling `visit` on each.
    pub fn scan_jobs(
        &self,
        prefix: &str,
        mut visit: impl FnMut(JobRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.jobs.scan_prefix(prefix.as_bytes()) {
            let (_, v) = item?;
            visit(decode(&v)?)?;
        }
        Ok(())
    }

    /// Jobs whose lease ran out (a worker that stopped sending heartbeats,
    /// or a node that crashed). `finished` tells whether the attempt did
    /// finish — its verdicts are in the store — in which case the job is
    /// completed with that outcome instead of run again; otherwise it goes
    /// back to the queue. Returns the keys requeued.
    pub fn reap_jobs(
        &self,
        now: u64,
        retry: &RetryPolicy,
        finished: &dyn Fn(&JobRecord) -> Option<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut requeued = Vec::new();
        for item in self.jobs.iter() {
            let (k, v) = item?;
            let r = decode(&v)?;
            if !matches!(r.state, JobState::Running | JobState::Recording) || r.lease_until > now {
                continue;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some(outcome) = finished(&r) {
                let worker = r.worker.clone().unwrap_or_default();
                self.complete_job(&key, &worker, &outcome, now, retry)?;
                continue;
            }
            let mut r = r;
            r.state = JobState::Queued;
            r.worker = None;
            r.next_at = now;
            self.db.transaction(|t| {
                let (jobs, queue) = (t.on(&self.jobs), t.on(&self.queue));
                jobs.insert(k.as_ref(), encode(&r)?)?;
                queue.insert(queue_key(r.priority, r.next_at, &key), [])?;
                Ok(())
            })?;
            self.tally
                .job_moved(&key, Some(JobState::Running), JobState::Queued);
            requeued.push(key);
        }
        if !requeued.is_empty() {
            self.flush()?;
        }
        Ok(requeued)
    }

    /// One job's record.
    pub fn job(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        self.jobs
            .get(key.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Counts by state.
    pub fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        Ok(self.tally.queue())
    }

    /// Running jobs (for status): read by key from the in-memory set of
    /// held jobs, never by walking every job.
    pub fn running_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for key in self.tally.running() {
            if let Some(r) = self.job(&key)?
                && matches!(r.state, JobState::Running | JobState::Recording)
            {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// Retry limits and back-off, separate for FAIL (did not build) and BAD
/// (built, differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Retries after FAIL.
    pub fail_retries: u32,
    /// Retries after BAD.
    pub bad_retries: u32,
    /// First back-off in seconds, doubled per attempt.
    pub backoff_secs: u64,
    /// Longest back-off in seconds.
    pub max_backoff_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            fail_retries: 3,
            bad_retries: 1,
            backoff_secs: 3600,
            max_backoff_secs: 7 * 86_400,
        }
    }
}

impl RetryPolicy {
    /// Back-off before attempt `n + 1`.
    pub fn backoff(&self, n: u32) -> u64 {
        self.backoff_secs
            .saturating_mul(1u64 << n.saturating_sub(1).min(20))
            .min(self.max_backoff_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_record_encoded_by_reference_is_the_records_encoding() {
        let job = Job::debian_hello(&["hello", "hello-dbgsym"]);
        let whole = encode(&JobRecord::queued(job.clone(), 1_700_000_000)).unwrap();
        assert_eq!(encode_queued(&job, 1_700_000_000).unwrap(), whole);
        assert_eq!(
            decode(&whole).unwrap(),
            JobRecord::queued(job, 1_700_000_000)
        );
    }
}
