//! Writing verdicts: one transaction per group commit appends what
//! continues a log, holds what follows a gap, and turns conflicts into fork
//! proofs. The envelopes it appends go to the segment files, written and
//! synced inside the transaction before it commits, with the new durable
//! end committed beside the index entries (see `segments`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::heads::Head;
use super::kv::TxTree;
use vouch_attest::{Digest, Envelope, ForkProof, Verdict, VerifiedVerdict, open};

use super::packages::Appended;
use super::read::parse_ptr;
use super::segments::Staging;
use super::tally::Tally;
use super::{Applied, Store, StoreError, TxResult, damaged, forks, keys};

impl Store {
    /// Applies verified verdicts in order, in one transaction: appends what
    /// continues a log (and any pending entries that then follow), holds what
    /// comes after a gap, stores fork proofs for conflicts. Not durable until
    /// [`Store::flush`].
    ///
    /// `max_pending` caps the entries held per signer.
    pub fn apply(
        &self,
        batch: &[VerifiedVerdict],
        max_pending: u64,
    ) -> Result<Vec<Applied>, StoreError> {
        // Pending counts per signer, read before the transaction (the
        // store has a single writer, so they stay true).
        let mut pending_counts: HashMap<[u8; 32], u64> = HashMap::new();
        for v in batch {
            let s = *v.signer().as_bytes();
            pending_counts
                .entry(s)
                .or_insert_with(|| self.head_cache.pending(&s));
        }
        let mut writer = self.segments.writer();
        let result = self.db.transaction(|t| {
            let tx = Tx {
                store: self,
                staging: RefCell::new(writer.staging()),
                meta: t.on(&self.meta),
                envelopes: t.on(&self.envelopes),
                log: t.on(&self.log),
                by_artifact: t.on(&self.by_artifact),
                by_name: t.on(&self.by_name),
                heads: t.on(&self.heads),
                pending: t.on(&self.pending),
                forks: t.on(&self.forks),
                fork_counts: t.on(&self.fork_counts),
                new_signers: Cell::new(0),
                new_forks: Cell::new(0),
                appended: RefCell::new(Vec::new()),
                moved_heads: RefCell::new(HashMap::new()),
            };
            let mut counts = pending_counts;
            let mut appended = 0u64;
            let mut pending_delta = 0i64;
            let mut out = Vec::with_capacity(batch.len());
            for v in batch {
                out.push(tx.apply_one(
                    v,
                    max_pending,
                    &mut counts,
                    &mut appended,
                    &mut pending_delta,
                )?);
            }
            let n = self.tally.verdicts.load(Ordering::Relaxed) + appended;
            tx.meta.insert(keys::META_VERDICTS, n.to_be_bytes())?;
            let p =
                (self.tally.pending.load(Ordering::Relaxed) as i64 + pending_delta).max(0) as u64;
            tx.meta.insert(keys::META_PENDING, p.to_be_bytes())?;
            let staging = tx.staging.into_inner();
            if !staging.is_empty() {
                // Durable before the entries that point at it can commit.
                writer.write(&staging)?;
                tx.meta
                    .insert(keys::META_SEGMENT_END, &staging.end().encode()[..])?;
            }
            Ok((
                out,
                tx.new_signers.get(),
                tx.new_forks.get(),
                tx.appended.take(),
                staging,
                tx.moved_heads.take(),
                counts,
                (n, p),
            ))
        });
        let (out, signers, forks, appended, staging, moved_heads, held, (n, p)) = result?;
        writer.committed(&staging);
        self.head_cache.moved(moved_heads);
        self.head_cache.held(held);
        self.tally.verdicts.store(n, Ordering::Relaxed);
        self.tally.pending.store(p, Ordering::Relaxed);
        drop(writer);
        Tally::add(&self.tally.signers, signers);
        Tally::add(&self.tally.forks, forks);
        self.note_heads(&appended);
        self.note_appended(&appended)?;
        self.note_stats(&appended)?;
        self.note_evidence(&appended)?;
        Ok(out)
    }
}

/// The trees inside one transaction.
struct Tx<'a, 'w> {
    store: &'a Store,
    /// The envelopes this attempt appends, until they are written.
    staging: RefCell<Staging>,
    meta: TxTree<'a, 'w>,
    envelopes: TxTree<'a, 'w>,
    log: TxTree<'a, 'w>,
    by_artifact: TxTree<'a, 'w>,
    by_name: TxTree<'a, 'w>,
    heads: TxTree<'a, 'w>,
    pending: TxTree<'a, 'w>,
    forks: TxTree<'a, 'w>,
    fork_counts: TxTree<'a, 'w>,
    /// Heads and fork proofs this attempt created (for the in-memory
    /// counts, applied once the transaction commits).
    new_signers: Cell<u64>,
    new_forks: Cell<u64>,
    /// What this attempt appended.
    appended: RefCell<Vec<Appended>>,
    /// Heads this transaction moved (read before the cache).
    moved_heads: RefCell<HashMap<[u8; 32], Head>>,
}

/// A verdict to write: what [`VerifiedVerdict`] has, also rebuilt from a
/// pending entry that was verified when it arrived.
struct Entry<'a> {
    id: Digest,
    verdict: &'a Verdict,
    envelope: &'a [u8],
}

impl Tx<'_, '_> {
    /// `signer`'s head as this transaction sees it.
    fn head(&self, signer: &[u8; 32]) -> Option<Head> {
        let moved = self.moved_heads.borrow().get(signer).copied();
        moved.or_else(|| self.store.head_cache.head(signer))
    }

    fn apply_one(
        &self,
        v: &VerifiedVerdict,
        max_pending: u64,
        pending_counts: &mut HashMap<[u8; 32], u64>,
        appended: &mut u64,
        pending_delta: &mut i64,
    ) -> TxResult<Applied> {
        let vd = v.verdict();
        let signer = vd.signer.as_bytes();
        let head = self.head(signer);
        let next = head.map_or(0, |(seq, _)| seq + 1);

        if vd.seq < next {
            // At or below the head: the same entry, or a fork.
            let stored = self
                .log
                .get(keys::signer_seq(signer, vd.seq))?
                .ok_or_else(|| damaged(keys::LOG, "log shorter than its head"))?;
            if self.envelopes.get(v.id().as_bytes())?.as_deref() == Some(&stored[..]) {
                return Ok(Applied::Duplicate);
            }
            let existing_bytes = self.at(&stored)?;
            return self.fork(v, &existing_bytes);
        }
        if vd.seq > next {
            // A gap: hold it, unless it conflicts with the log (same prev)
            // or with what is held (same seq).
            if let Some(other) = self.same_prev(v)? {
                return self.fork(v, &other);
            }
            let key = keys::signer_seq(signer, vd.seq);
            if let Some(held) = self.pending.get(key)? {
                if held.as_ref() == v.envelope() {
                    return Ok(Applied::Pending { missing_from: next });
                }
                return self.fork(v, &held);
            }
            let count = pending_counts.entry(*signer).or_insert(0);
            if *count >= max_pending {
                return Ok(Applied::Rejected {
                    code: "quota.pending",
                    reason: format!(
                        "{max_pending} entries of this signer are already held waiting for seq {next}"
                    ),
                });
            }
            *count += 1;
            *pending_delta += 1;
            self.pending.insert(&key[..], v.envelope())?;
            return Ok(Applied::Pending { missing_from: next });
        }
        // The next entry.
        let expected_prev = head.map_or([0u8; 32], |(_, id)| id);
        if vd.prev.as_bytes() != &expected_prev {
            // Another stored entry with the same prev is a fork (§6).
            if let Some(other) = self.same_prev(v)? {
                return self.fork(v, &other);
            }
            return Ok(Applied::Rejected {
                code: "chain.prev_mismatch",
                reason: format!(
                    "seq {} names prev {}, but this node's entry at seq {} is {}",
                    vd.seq,
                    vd.prev,
                    vd.seq.wrapping_sub(1),
                    Digest(expected_prev)
                ),
            });
        }
        self.append(&Entry {
            id: v.id(),
            verdict: vd,
            envelope: v.envelope(),
        })?;
        *appended += 1;
        // Entries held for this gap may now follow.
        let mut head_id = v.id();
        let mut seq = vd.seq;
        loop {
            let key = keys::signer_seq(signer, seq + 1);
            let Some(held) = self.pending.get(key)? else {
                break;
            };
            self.pending.remove(&key[..])?;
            *pending_delta -= 1;
            if let Some(c) = pending_counts.get_mut(signer) {
                *c = c.saturating_sub(1);
            }
            let env = Envelope::decode(&held).map_err(|e| damaged(keys::PENDING, e.to_string()))?;
            let verdict = env
                .unverified_verdict()
                .map_err(|e| damaged(keys::PENDING, e.to_string()))?;
            if verdict.prev != head_id {
                // It was held for a predecessor that never came: drop it.
                tracing::warn!(signer = %vd.signer, seq = seq + 1, "dropping held entry whose prev does not match the log");
                break;
            }
            let id = env.id();
            self.append(&Entry {
                id,
                verdict: &verdict,
                envelope: &held,
            })?;
            *appended += 1;
            head_id = id;
            seq += 1;
        }
        Ok(Applied::Accepted)
    }

    fn append(&self, e: &Entry<'_>) -> TxResult<()> {
        let v = e.verdict;
        let signer = v.signer.as_bytes();
        let id = e.id.as_bytes();
        let ptr = self.staging.borrow_mut().stage(e.envelope)?.encode();
        self.envelopes.insert(id, &ptr[..])?;
        self.log
            .insert(&keys::signer_seq(signer, v.seq)[..], &ptr[..])?;
        self.by_artifact.insert(
            &keys::artifact_signer_seq(v.subject.sha256.as_bytes(), signer, v.seq)[..],
            &ptr[..],
        )?;
        self.by_name.insert(
            keys::by_name(
                &v.subject.distribution,
                &v.subject.name,
                &v.subject.version,
                &ptr,
            ),
            [],
        )?;
        let first = self.head(signer).is_none();
        self.heads
            .insert(signer, &keys::head_value(v.seq, id)[..])?;
        self.moved_heads.borrow_mut().insert(*signer, (v.seq, *id));
        if first {
            self.new_signers.set(self.new_signers.get() + 1);
        }
        self.appended.borrow_mut().push(Appended {
            signer: v.signer,
            sha256: v.subject.sha256,
            outcome: v.outcome.result(),
            id: e.id,
            issued_at: v.issued_at,
            log: v.evidence.build_log,
            diffoscope: v.evidence.diffoscope,
            seq: v.seq,
            group: super::stats::group_of(v),
            rebuilt: match v.outcome {
                vouch_attest::Outcome::Bad { rebuilt_sha256 } => Some(rebuilt_sha256),
                _ => None,
            },
        });
        Ok(())
    }

    /// The stored log entry of `v`'s signer that names the same `prev` as
    /// `v` (and so conflicts with it), if there is one: the entry after the
    /// one `v.prev` names, when that one is this signer's and not its head.
    fn same_prev(&self, v: &VerifiedVerdict) -> TxResult<Option<Vec<u8>>> {
        let vd = v.verdict();
        if vd.seq == 0 {
            return Ok(None);
        }
        let Some(prev_bytes) = self.envelope(vd.prev.as_bytes())? else {
            return Ok(None);
        };
        let Ok(prev) = Envelope::decode(&prev_bytes).and_then(|e| e.unverified_verdict()) else {
            return Ok(None);
        };
        if prev.signer != vd.signer {
            return Ok(None);
        }
        let Some(after) = self
            .log
            .get(keys::signer_seq(vd.signer.as_bytes(), prev.seq + 1))?
        else {
            return Ok(None);
        };
        if self.envelopes.get(v.id().as_bytes())?.as_deref() == Some(&after[..]) {
            return Ok(None);
        }
        self.at(&after).map(Some)
    }

    /// The envelope of a verdict appended before or in this attempt.
    fn envelope(&self, id: &[u8]) -> TxResult<Option<Vec<u8>>> {
        match self.envelopes.get(id)? {
            Some(p) => self.at(&p).map(Some),
            None => Ok(None),
        }
    }

    /// The envelope at a stored pointer, appended before or in this
    /// attempt.
    fn at(&self, p: &[u8]) -> TxResult<Vec<u8>> {
        let ptr = parse_ptr(p)?;
        if let Some(bytes) = self.staging.borrow().staged(ptr) {
            return Ok(bytes.to_vec());
        }
        self.store.segments.read(ptr)
    }

    /// Records that `v` conflicts with the stored or held envelope `other`.
    /// One proof per signer is kept: the one with the lowest proof id; the
    /// others are counted. A stored envelope that no longer verifies (which
    /// the one signature rule rules out, but media can rot) refuses this
    /// one verdict and never aborts the group commit.
    fn fork(&self, v: &VerifiedVerdict, other: &[u8]) -> TxResult<Applied> {
        let refuse = |detail: String| {
            tracing::error!(verdict = %v.id(), %detail, "cannot build a fork proof");
            Ok(Applied::Rejected {
                code: "store.unverifiable",
                reason: format!("conflicts with a stored entry that cannot be checked: {detail}"),
            })
        };
        let other = match open(other) {
            Ok(o) => o,
            Err(e) => return refuse(e.to_string()),
        };
        let proof = match ForkProof::new(v, &other) {
            Ok(p) => p,
            Err(e) => return refuse(e.to_string()),
        };
        let bytes = proof.encode();
        let proof_id = Digest::of(&bytes);
        let offered = forks::offer(&self.forks, &self.fork_counts, v.signer(), &bytes)?;
        if offered.first {
            self.new_forks.set(self.new_forks.get() + 1);
        }
        Ok(Applied::Fork {
            proof: proof_id,
            existing: other.id(),
            bytes,
            stored: offered.kept,
        })
    }
}
