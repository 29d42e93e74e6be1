//! Handing out job and package ids.
//!
//! A job gets its id and a contiguous range of package ids (one per
//! artifact) in the same batch that writes its ids, its package rows and
//! their name and sha256 indexes. Registrations take turns under one lock
//! ([`Store::registering`]), which reads the counters from `meta` once and
//! writes them back with the batch, so ids are dense, never skipped and
//! never given twice.

use vouch_attest::Digest;

use super::kv::{Batch, TxTree};
use super::packages::{JobIds, RowRef, name_key, sha_key};
use super::{Store, StoreError, damaged, keys};
use crate::sync::Job;

/// The next job id and package id, read from `meta` once by a writer that
/// holds [`Store::registering`] and written back once with its batch, so
/// ids are neither skipped nor given twice.
pub(crate) struct NextIds {
    job: u64,
    package: u64,
    /// The sha256 index entries of the batch being filled, put into it in
    /// key order at its end: their keys are random, and a memtable takes
    /// them faster in order (its search path stays in the cache).
    by_sha: Vec<[u8; 36]>,
}

impl NextIds {
    fn take(&mut self, packages: u32) -> Result<(u32, u32), StoreError> {
        let (job, package) = (self.job, self.package);
        (self.job, self.package) = (advance(job, 1)?, advance(package, packages)?);
        Ok((job as u32, package as u32))
    }

    /// Puts the sha256 index entries and the counters into `batch`, to land
    /// with the ids it hands out.
    fn write(&mut self, store: &Store, batch: &mut Batch) {
        self.by_sha.sort_unstable();
        for key in self.by_sha.drain(..) {
            batch.insert(&store.packages_by_sha, key, []);
        }
        batch.insert(&store.meta, keys::META_NEXT_JOB, self.job.to_be_bytes());
        batch.insert(
            &store.meta,
            keys::META_NEXT_PACKAGE,
            self.package.to_be_bytes(),
        );
    }
}

/// A job [`Store::assign_into`] gave ids to, as the standing counts it.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(super) job_id: u32,
    /// `distribution/release/component/architecture`.
    pub(super) origin: String,
    /// The artifacts of its packages, in package order.
    pub(super) shas: Vec<Digest>,
}

/// What [`Store::registering_each`] did: the results of the parts whose
/// batches were committed, in order, and what stopped it, if anything.
pub(crate) struct EachRegistered<T> {
    pub(crate) committed: Vec<T>,
    pub(crate) stopped: Option<StoreError>,
}

impl Store {
    fn registration_turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.registering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_ids(&self) -> Result<NextIds, StoreError> {
        let read =
            |key| -> Result<u64, StoreError> { Ok(first_free(self.meta.get(key)?.as_deref())) };
        Ok(NextIds {
            job: read(keys::META_NEXT_JOB)?,
            package: read(keys::META_NEXT_PACKAGE)?,
            by_sha: Vec::new(),
        })
    }

    /// Hands out ids to jobs while `f` runs (with the next ids, and a batch
    /// to write into), then commits the batch with the counters moved.
    /// Registrations take turns, so a job is registered once.
    pub(crate) fn registering<T>(
        &self,
        f: impl FnOnce(&mut NextIds, &mut Batch) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _turn = self.registration_turn();
        let mut next = self.next_ids()?;
        let mut batch = self.db.batch();
        let out = f(&mut next, &mut batch)?;
        next.write(self, &mut batch);
        self.db.commit(batch)?;
        Ok(out)
    }

    /// [`Store::registering`] for each of `parts` in one turn, one batch
    /// per part: a part's batch is committed on a second thread while `f`
    /// fills the next one. Batches are committed in order, each with the
    /// counters as they stand after it, so a crash keeps a prefix of the
    /// parts. `f` must not need to read what an earlier part of the same
    /// turn wrote (it may not be committed yet).
    pub(crate) fn registering_each<P, T>(
        &self,
        parts: impl IntoIterator<Item = P>,
        mut f: impl FnMut(&mut NextIds, &mut Batch, P) -> Result<T, StoreError>,
    ) -> EachRegistered<T> {
        let _turn = self.registration_turn();
        let mut next = match self.next_ids() {
            Ok(next) => next,
            Err(e) => {
                return EachRegistered {
                    committed: Vec::new(),
                    stopped: Some(e),
                };
            }
        };
        std::thread::scope(|s| {
            let (to_commit, batches) = std::sync::mpsc::sync_channel::<Batch>(1);
            let committer = s.spawn(move || {
                let mut n = 0usize;
                for batch in batches {
                    if let Err(e) = self.db.commit(batch) {
                        return (n, Some(e));
                    }
                    n += 1;
                }
                (n, None)
            });
            let mut built = Vec::new();
            let mut stopped = None;
            for part in parts {
                let mut batch = self.db.batch();
                match f(&mut next, &mut batch, part) {
                    Ok(out) => built.push(out),
                    Err(e) => {
                        stopped = Some(e);
                        break;
                    }
                }
                next.write(self, &mut batch);
                if to_commit.send(batch).is_err() {
                    break; // the committer stopped: its error says why
                }
            }
            drop(to_commit);
            let committed = match committer.join() {
                Ok((n, failed)) => {
                    stopped = failed.or(stopped);
                    n
                }
                Err(_) => {
                    stopped = Some(StoreError::Io(
                        "the thread committing registrations panicked".into(),
                    ));
                    0
                }
            };
            built.truncate(committed);
            EachRegistered {
                committed: built,
                stopped,
            }
        })
    }

    /// Puts into `batch` the ids and package rows of `job` (whose key is
    /// `key`), unless it has them: its ids, and what the standing counts
    /// (nothing when it had ids). Only inside [`Store::registering`].
    pub(crate) fn register_into(
        &self,
        batch: &mut Batch,
        next: &mut NextIds,
        key: &str,
        job: &Job,
    ) -> Result<(JobIds, Option<Registered>), StoreError> {
        if let Some(ids) = self.job_ids(key)? {
            return Ok((ids, None));
        }
        let (ids, new) = self.assign_into(batch, next, key, job)?;
        Ok((ids, Some(new)))
    }

    /// [`Store::register_into`] for a job known to have no ids: one whose
    /// record is not stored (ids are only ever written beside it, in the
    /// batch that queues it or for a job already stored).
    pub(crate) fn assign_into(
        &self,
        batch: &mut Batch,
        next: &mut NextIds,
        key: &str,
        job: &Job,
    ) -> Result<(JobIds, Registered), StoreError> {
        let n = u32::try_from(job.subjects.len())
            .map_err(|_| damaged(keys::PACKAGES, "job too large"))?;
        let (job_id, first) = next.take(n)?;
        let ids = JobIds {
            id: job_id,
            first_package: first,
            packages: n,
        };
        batch.insert(&self.job_ids, key.as_bytes(), ids.encode());
        batch.insert(&self.jobs_by_id, job_id.to_be_bytes(), key.as_bytes());
        for ((index, s), id) in (0..n).zip(&job.subjects).zip(first..) {
            let at = RowRef { job_id, index };
            batch.insert(&self.packages, id.to_be_bytes(), at.encode());
            batch.insert(&self.packages_by_name, name_key(&s.name, id), []);
            next.by_sha.push(sha_key(&s.sha256, id));
        }
        Ok((
            ids,
            Registered {
                job_id,
                origin: job.origin(),
                shas: job.subjects.iter().map(|s| s.sha256).collect(),
            },
        ))
    }

    /// Gives `job` (already queued) its job id and its artifacts package
    /// ids, unless it has them. Returns its ids.
    pub fn register_job(&self, job: &Job) -> Result<JobIds, StoreError> {
        let key = job.key();
        let (ids, new) =
            self.registering(|next, batch| self.register_into(batch, next, &key, job))?;
        self.note_registered(new)?;
        Ok(ids)
    }

    /// Counts the packages of newly registered jobs in the standing.
    pub(crate) fn note_registered(
        &self,
        jobs: impl IntoIterator<Item = Registered>,
    ) -> Result<(), StoreError> {
        let standing = self.tally.packages();
        for job in jobs {
            let packages = job
                .shas
                .iter()
                .map(|sha| Ok((*sha, self.own_status(sha)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            standing.job_added(&job.origin, job.job_id, &packages);
        }
        Ok(())
    }

    /// Assigns ids to every job that has none (after a crash between
    /// queueing and registering, or in a store written before the table
    /// existed).
    pub(crate) fn register_missing(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.jobs.iter() {
            let (k, v) = item?;
            if self.job_ids.contains_key(&k)? {
                continue;
            }
            let r = super::jobs::decode(&v)?;
            self.register_job(&r.job)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Takes `n` ids from the counter at `key` (ids start at 1).
pub(super) fn next_id(meta: &TxTree<'_, '_>, key: &[u8], n: u32) -> super::TxResult<u32> {
    let next = first_free(meta.get(key)?.as_deref());
    meta.insert(key, advance(next, n)?.to_be_bytes())?;
    Ok(next as u32)
}

/// The first free id of a counter stored as `v` (ids start at 1).
fn first_free(v: Option<&[u8]>) -> u64 {
    keys::u64_value(v).max(1)
}

/// The counter after taking `n` ids from `next`; ids stay within 31 bits.
fn advance(next: u64, n: u32) -> Result<u64, StoreError> {
    let end = next + u64::from(n);
    if end > i32::MAX as u64 {
        return Err(damaged(keys::META, "out of 31-bit ids"));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(n: usize) -> Vec<Job> {
        (0..n)
            .map(|i| Job {
                version: format!("2.12-{i}"),
                ..Job::debian_hello(&["hello", "hello-dbgsym"])
            })
            .collect()
    }

    #[test]
    fn a_failing_part_keeps_the_parts_before_it_and_nothing_after() {
        let store = Store::temporary().unwrap();
        let jobs = jobs(4);
        let each = store.registering_each(jobs.iter().enumerate(), |next, batch, (i, job)| {
            if i == 2 {
                return Err(damaged(keys::META, "part 2 fails"));
            }
            Ok(store.assign_into(batch, next, &job.key(), job)?.0)
        });
        let ids: Vec<(u32, u32)> = each
            .committed
            .iter()
            .map(|ids| (ids.id, ids.first_package))
            .collect();
        assert_eq!(ids, [(1, 1), (2, 3)]);
        assert!(
            matches!(&each.stopped, Some(StoreError::Damaged { detail, .. }) if detail == "part 2 fails"),
            "{:?}",
            each.stopped
        );
        assert_eq!(
            store.job_ids(&jobs[1].key()).unwrap(),
            Some(each.committed[1])
        );
        assert_eq!(store.job_ids(&jobs[2].key()).unwrap(), None);
        assert_eq!(store.job_ids(&jobs[3].key()).unwrap(), None);
        // The counters moved with the committed parts only.
        let next = store.register_job(&jobs[3]).unwrap();
        assert_eq!((next.id, next.first_package), (3, 5));
    }

    #[test]
    fn parts_are_committed_in_order_with_dense_ids() {
        let store = Store::temporary().unwrap();
        let jobs = jobs(50);
        let each = store.registering_each(jobs.chunks(7), |next, batch, part| {
            part.iter()
                .map(|job| Ok(store.assign_into(batch, next, &job.key(), job)?.0))
                .collect::<Result<Vec<_>, StoreError>>()
        });
        assert!(each.stopped.is_none());
        let ids: Vec<JobIds> = each.committed.into_iter().flatten().collect();
        for (i, (ids, job)) in ids.iter().zip(&jobs).enumerate() {
            assert_eq!(
                (ids.id, ids.first_package),
                (i as u32 + 1, 2 * i as u32 + 1)
            );
            assert_eq!(store.job_ids(&job.key()).unwrap(), Some(*ids));
        }
        assert_eq!(ids.len(), 50);
    }
}
