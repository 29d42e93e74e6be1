//! `vouchd check`: every segment record is intact and indexed where it is,
//! and every index entry names a stored envelope: both ways.

use vouch_attest::{ForkProof, verify_batch};

use super::jobs::JobState;
use super::segments::Ptr;
use super::{Store, StoreError, damaged, keys};

/// Records verified in one batch by `vouchd check`.
const CHECK_BATCH: usize = 1024;

impl Store {
    /// Checks that every index agrees with the stored envelopes: each log
    /// entry and index entry names a stored envelope that verifies and says
    /// what the index claims; each envelope is in the log; heads match the
    /// logs; the verdict count matches. Returns the number of verdicts.
    pub fn check_consistency(&self) -> Result<u64, StoreError> {
        let damaged = |tree, detail: String| StoreError::Damaged { tree, detail };
        // Every record: intact, verifies, and indexed at exactly its place.
        // Signatures are checked in batches (about twice as fast as one by
        // one); a batch with a bad one names each that fails.
        let mut batch: Vec<(Ptr, Vec<u8>)> = Vec::with_capacity(CHECK_BATCH);
        let records = self.segments.scan(|ptr, bytes| {
            batch.push((ptr, bytes.to_vec()));
            if batch.len() >= CHECK_BATCH {
                self.check_records(&std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        self.check_records(&batch)?;
        // Every pointer: one of those records (ids are unique keys, so
        // equal counts make it one to one).
        let n = self.envelopes.len()? as u64;
        if n != records {
            return Err(damaged(
                keys::ENVELOPES,
                format!("{n} pointers for {records} records in the segments"),
            ));
        }
        // Each record has its own entry in each index (its key holds its
        // signer and seq, or its pointer), so equal counts leave no entry
        // naming anything else.
        for (tree, name) in [
            (&self.by_artifact, keys::BY_ARTIFACT),
            (&self.by_name, keys::BY_NAME),
        ] {
            if tree.len()? as u64 != n {
                return Err(damaged(
                    name,
                    format!("{} entries for {n} verdicts", tree.len()?),
                ));
            }
        }
        for item in self.forks.iter() {
            let (k, proof) = item?;
            let signer = ForkProof::open(&proof)
                .map_err(|e| damaged(keys::FORKS, e.to_string()))?
                .signer;
            if signer.as_bytes()[..] != k[..] {
                return Err(damaged(
                    keys::FORKS,
                    format!("proof against {signer} kept under {}", hex::encode(&k)),
                ));
            }
        }
        let mut logged = 0u64;
        for head in self.heads()? {
            let entries = self.log.scan_prefix(head.signer.as_bytes()).count() as u64;
            if entries != head.count {
                return Err(damaged(
                    keys::HEADS,
                    format!(
                        "signer {} has {entries} log entries, head says {}",
                        head.signer, head.count
                    ),
                ));
            }
            logged += entries;
        }
        if logged != n || self.log.len()? as u64 != n {
            return Err(damaged(
                keys::LOG,
                format!("{} log entries for {n} envelopes", self.log.len()?),
            ));
        }
        let counted = self.counts()?.verdicts;
        if counted != n {
            return Err(damaged(
                keys::META,
                format!("count says {counted}, {n} stored"),
            ));
        }
        self.check_blobs()?;
        self.check_tally()?;
        Ok(n)
    }

    /// Checks a batch of segment records: each verifies and is indexed at
    /// its own pointer.
    fn check_records(&self, batch: &[(Ptr, Vec<u8>)]) -> Result<(), StoreError> {
        let refs: Vec<&[u8]> = batch.iter().map(|(_, b)| b.as_slice()).collect();
        for ((ptr, _), v) in batch.iter().zip(verify_batch(&refs)) {
            let v = v.map_err(|e| StoreError::Damaged {
                tree: keys::ENVELOPES,
                detail: format!("record {ptr:?} does not verify: {e}"),
            })?;
            let id = v.id();
            let stored = ptr.encode();
            let indexed = self.envelopes.get(id.as_bytes())?;
            if indexed.as_deref() != Some(&stored[..]) {
                return Err(StoreError::Damaged {
                    tree: keys::ENVELOPES,
                    detail: format!("verdict {id} in record {ptr:?} is not indexed there"),
                });
            }
            self.check_indexed(&v, &stored)?;
        }
        Ok(())
    }

    /// Checks that the verdict `v` is in its signer's log and both indexes.
    fn check_indexed(
        &self,
        v: &vouch_attest::VerifiedVerdict,
        ptr: &[u8; 12],
    ) -> Result<(), StoreError> {
        let damaged = |tree, detail: String| StoreError::Damaged { tree, detail };
        let vd = v.verdict();
        let id = v.id();
        let s = vd.signer.as_bytes();
        let logged = self.log.get(keys::signer_seq(s, vd.seq))?;
        if logged.as_deref() != Some(&ptr[..]) {
            return Err(damaged(
                keys::LOG,
                format!("verdict {id} is not in its signer's log"),
            ));
        }
        let indexed = self.by_artifact.get(keys::artifact_signer_seq(
            vd.subject.sha256.as_bytes(),
            s,
            vd.seq,
        ))?;
        if indexed.as_deref() != Some(&ptr[..]) {
            return Err(damaged(
                keys::BY_ARTIFACT,
                format!("verdict {id} is not indexed"),
            ));
        }
        let name_key = keys::by_name(
            &vd.subject.distribution,
            &vd.subject.name,
            &vd.subject.version,
            ptr,
        );
        if !self.by_name.contains_key(name_key)? {
            return Err(damaged(
                keys::BY_NAME,
                format!("verdict {id} is not indexed by name"),
            ));
        }
        Ok(())
    }

    /// Checks the in-memory counts against a walk of the trees.
    pub fn check_tally(&self) -> Result<(), StoreError> {
        let counts = self.counts()?;
        let walked = [
            ("signers", counts.signers, self.heads.len()? as u64),
            ("fork proofs", counts.forks, self.forks.len()? as u64),
            ("blobs", counts.blobs, self.blobs.len()? as u64),
            ("held entries", counts.pending, self.pending.len()? as u64),
        ];
        // The held entries per signer, as the writer and admission see them.
        let held = self.walk_held()?;
        let in_memory = self.head_cache.pending_total();
        let walked_total: u64 = held.values().sum();
        if in_memory != walked_total {
            return Err(damaged(
                keys::PENDING,
                format!("{walked_total} entries held, {in_memory} in memory"),
            ));
        }
        for (signer, n) in &held {
            let kept = self.head_cache.pending(signer);
            if *n != kept {
                return Err(damaged(
                    keys::PENDING,
                    format!(
                        "{} holds {n} entries, {kept} in memory",
                        hex::encode(signer)
                    ),
                ));
            }
        }
        let mut queue = super::jobs::QueueCounts::default();
        for item in self.jobs.iter() {
            let (_, v) = item?;
            match super::jobs::decode(&v)?.state {
                JobState::Queued => queue.queued += 1,
                JobState::Running | JobState::Recording => queue.running += 1,
                JobState::Done => queue.done += 1,
            }
        }
        let kept = self.queue_counts()?;
        let jobs = [
            ("queued jobs", kept.queued, queue.queued),
            ("running jobs", kept.running, queue.running),
            ("finished jobs", kept.done, queue.done),
        ];
        for (what, kept, walked) in walked.into_iter().chain(jobs) {
            if kept != walked {
                return Err(StoreError::Damaged {
                    tree: keys::META,
                    detail: format!("{what}: counted {kept}, {walked} stored"),
                });
            }
        }
        Ok(())
    }
}
