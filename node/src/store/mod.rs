//! The verdict store on sled. Only this module names sled; callers see typed
//! methods.
//!
//! Trees (names in [`keys`]): envelopes by id; the signers' logs by (signer,
//! seq); indexes by artifact sha256 and by (distribution, name, version);
//! each signer's head; pending entries held until a gap closes; fork proofs
//! (and an index by signer); evidence blobs. Every verdict and all its index
//! entries are written in one transaction; [`Store::flush`] makes them
//! durable.

pub mod jobs;
mod keys;

use std::collections::HashMap;
use std::path::Path;

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use thiserror::Error;
use vouch_attest::{
    Digest, Envelope, ForkProof, PublicKey, Verdict, VerifiedVerdict, decode_verdict, open,
};

/// Largest evidence blob accepted (uncompressed), in bytes.
pub const MAX_BLOB: usize = 64 << 20;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// The store was written in another format.
    #[error(
        "the store at {path} has format `{found}`, this vouchd reads `{expected}`; \
         refusing to open it (start this vouchd on a fresh --data-dir, or run the vouchd that wrote it)"
    )]
    Format {
        /// The data directory.
        path: String,
        /// The format found.
        found: String,
        /// The format this build reads.
        expected: &'static str,
    },
    /// A stored entry does not decode: the store is damaged.
    #[error("damaged store entry in {tree}: {detail}")]
    Damaged {
        /// Which tree.
        tree: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Compressing or decompressing a blob failed.
    #[error("blob: {0}")]
    Blob(String),
}

/// What happened to one verified envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Appended to its signer's log (and indexed).
    Accepted,
    /// Already stored; nothing changed.
    Duplicate,
    /// Held until the entries before it arrive.
    Pending {
        /// The first missing seq.
        missing_from: u64,
    },
    /// Conflicts with a stored entry: a fork proof was stored.
    Fork {
        /// The fork proof's id.
        proof: Digest,
        /// The stored verdict it conflicts with.
        existing: Digest,
        /// The encoded fork proof.
        bytes: Vec<u8>,
    },
    /// Refused, with an error code and a reason.
    Rejected {
        /// Stable code (`chain.prev_mismatch`, `quota.pending`).
        code: &'static str,
        /// For people.
        reason: String,
    },
}

/// A signer's log head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerHead {
    /// The signer.
    pub signer: PublicKey,
    /// Newest contiguous seq.
    pub seq: u64,
    /// Its id.
    pub id: Digest,
    /// Entries in the log (seq + 1: logs start at 0).
    pub count: u64,
}

/// Counts for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Stored (appended) verdicts.
    pub verdicts: u64,
    /// Verdicts held pending.
    pub pending: u64,
    /// Signers with a log.
    pub signers: u64,
    /// Fork proofs.
    pub forks: u64,
    /// Evidence blobs.
    pub blobs: u64,
}

/// The store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    envelopes: sled::Tree,
    log: sled::Tree,
    by_artifact: sled::Tree,
    by_name: sled::Tree,
    heads: sled::Tree,
    pending: sled::Tree,
    forks: sled::Tree,
    forks_by_signer: sled::Tree,
    blobs: sled::Tree,
    jobs: sled::Tree,
    queue: sled::Tree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// Opens (or creates) the store in `dir`, refusing another format.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 << 20)
            .mode(sled::Mode::LowSpace)
            .open()?;
        Store::from_db(db, dir)
    }

    /// A temporary in-memory store, for tests and benchmarks.
    pub fn temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Store::from_db(db, Path::new("(temporary)"))
    }

    fn from_db(db: sled::Db, dir: &Path) -> Result<Store, StoreError> {
        let meta = db.open_tree(keys::META)?;
        match meta.get(keys::META_FORMAT)? {
            Some(found) if found.as_ref() != keys::FORMAT.as_bytes() => {
                return Err(StoreError::Format {
                    path: dir.display().to_string(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: keys::FORMAT,
                });
            }
            Some(_) => {}
            None => {
                // A database with trees but no format mark was not written
                // by vouchd: refuse rather than misread it.
                let foreign = db.tree_names().iter().any(|n| {
                    n.as_ref() != b"__sled__default" && n.as_ref() != keys::META.as_bytes()
                });
                if foreign || !db.is_empty() {
                    return Err(StoreError::Format {
                        path: dir.display().to_string(),
                        found: "(no format mark)".to_string(),
                        expected: keys::FORMAT,
                    });
                }
                meta.insert(keys::META_FORMAT, keys::FORMAT.as_bytes())?;
                db.flush()?;
            }
        }
        Ok(Store {
            envelopes: db.open_tree(keys::ENVELOPES)?,
            log: db.open_tree(keys::LOG)?,
            by_artifact: db.open_tree(keys::BY_ARTIFACT)?,
            by_name: db.open_tree(keys::BY_NAME)?,
            heads: db.open_tree(keys::HEADS)?,
            pending: db.open_tree(keys::PENDING)?,
            forks: db.open_tree(keys::FORKS)?,
            forks_by_signer: db.open_tree(keys::FORKS_BY_SIGNER)?,
            blobs: db.open_tree(keys::BLOBS)?,
            jobs: db.open_tree(keys::JOBS)?,
            queue: db.open_tree(keys::QUEUE)?,
            meta,
            db,
        })
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

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
            pending_counts.entry(s).or_insert_with(|| {
                self.pending
                    .scan_prefix(s)
                    .take(max_pending as usize + 1)
                    .count() as u64
            });
        }
        let trees = (
            &self.meta,
            &self.envelopes,
            &self.log,
            &self.by_artifact,
            &self.by_name,
            &self.heads,
            &self.pending,
            &self.forks,
            &self.forks_by_signer,
        );
        let result = trees.transaction(|t| {
            let tx = Tx {
                meta: &t.0,
                envelopes: &t.1,
                log: &t.2,
                by_artifact: &t.3,
                by_name: &t.4,
                heads: &t.5,
                pending: &t.6,
                forks: &t.7,
                forks_by_signer: &t.8,
            };
            let mut counts = pending_counts.clone();
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
            let n = keys::u64_value(tx.meta.get(keys::META_VERDICTS)?.as_deref()) + appended;
            tx.meta.insert(keys::META_VERDICTS, &n.to_be_bytes())?;
            let p =
                keys::u64_value(tx.meta.get(keys::META_PENDING)?.as_deref()) as i64 + pending_delta;
            tx.meta
                .insert(keys::META_PENDING, &(p.max(0) as u64).to_be_bytes())?;
            Ok(out)
        });
        result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
        })
    }

    /// The envelope with verdict id `id`.
    pub fn envelope(&self, id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.envelopes.get(id.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Envelopes of verdicts about the artifact `sha256`, at most `limit`.
    pub fn by_artifact(&self, sha256: &Digest, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for item in self.by_artifact.scan_prefix(sha256.as_bytes()).take(limit) {
            let (k, _) = item?;
            out.push(self.envelope_at(&k[32..])?);
        }
        Ok(out)
    }

    /// Envelopes of verdicts about (distribution, name[, version]).
    pub fn by_name(
        &self,
        distribution: &str,
        name: &str,
        version: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = keys::by_name_prefix(distribution, name, version);
        let mut out = Vec::new();
        for item in self.by_name.scan_prefix(&prefix).take(limit) {
            let (k, _) = item?;
            let id = k.len().checked_sub(32).map(|at| &k[at..]).unwrap_or(&[]);
            out.push(self.envelope_at(id)?);
        }
        Ok(out)
    }

    fn envelope_at(&self, id: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.envelopes
            .get(id)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Damaged {
                tree: keys::ENVELOPES,
                detail: format!(
                    "index names verdict {} which is not stored",
                    hex::encode(id)
                ),
            })
    }

    /// Every signer's head.
    pub fn heads(&self) -> Result<Vec<SignerHead>, StoreError> {
        self.heads
            .iter()
            .map(|item| {
                let (k, v) = item?;
                parse_signer_head(&k, &v)
            })
            .collect()
    }

    /// One signer's head.
    pub fn head(&self, signer: &PublicKey) -> Result<Option<SignerHead>, StoreError> {
        match self.heads.get(signer.as_bytes())? {
            Some(v) => parse_signer_head(signer.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Envelopes of `signer`'s log from `from`, at most `limit`.
    pub fn log_range(
        &self,
        signer: &PublicKey,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let start = keys::signer_seq(signer.as_bytes(), from);
        let end = keys::signer_seq(signer.as_bytes(), u64::MAX);
        let mut out = Vec::new();
        for item in self.log.range(start..=end).take(limit) {
            let (_, id) = item?;
            out.push(self.envelope_at(&id)?);
        }
        Ok(out)
    }

    /// All fork proofs, encoded.
    pub fn forks(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.forks.iter().map(|item| Ok(item?.1.to_vec())).collect()
    }

    /// Fork proofs against `signer`.
    pub fn forks_for(&self, signer: &PublicKey) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for item in self.forks_by_signer.scan_prefix(signer.as_bytes()) {
            let (k, _) = item?;
            if let Some(p) = self.forks.get(&k[32..])? {
                out.push(p.to_vec());
            }
        }
        Ok(out)
    }

    /// Stores a checked fork proof (from gossip or a peer). Returns whether it
    /// was new.
    pub fn put_fork(&self, proof: &ForkProof, signer: &PublicKey) -> Result<bool, StoreError> {
        let bytes = proof.encode();
        let id = Digest::of(&bytes);
        let new = self.forks.insert(id.as_bytes(), bytes)?.is_none();
        self.forks_by_signer
            .insert(keys::pair(signer.as_bytes(), id.as_bytes()), &[])?;
        Ok(new)
    }

    /// Stores an evidence blob (zstd-compressed), addressed by the sha256 of
    /// `content`.
    pub fn put_blob(&self, content: &[u8]) -> Result<Digest, StoreError> {
        if content.len() > MAX_BLOB {
            return Err(StoreError::Blob(format!(
                "{} bytes, over the limit of {MAX_BLOB}",
                content.len()
            )));
        }
        let id = Digest::of(content);
        if !self.blobs.contains_key(id.as_bytes())? {
            let compressed =
                zstd::bulk::compress(content, 3).map_err(|e| StoreError::Blob(e.to_string()))?;
            self.blobs.insert(id.as_bytes(), compressed)?;
        }
        Ok(id)
    }

    /// The zstd-compressed blob with content sha256 `id`.
    pub fn blob(&self, id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(id.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Counts for status and metrics.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            verdicts: keys::u64_value(self.meta.get(keys::META_VERDICTS)?.as_deref()),
            pending: keys::u64_value(self.meta.get(keys::META_PENDING)?.as_deref()),
            signers: self.heads.len() as u64,
            forks: self.forks.len() as u64,
            blobs: self.blobs.len() as u64,
        })
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Checks that every index agrees with the stored envelopes: each log
    /// entry and index entry names a stored envelope that verifies and says
    /// what the index claims; each envelope is in the log; heads match the
    /// logs; the verdict count matches. Returns the number of verdicts.
    pub fn check_consistency(&self) -> Result<u64, StoreError> {
        let damaged = |tree, detail: String| StoreError::Damaged { tree, detail };
        let mut n = 0u64;
        for item in self.envelopes.iter() {
            let (id, bytes) = item?;
            let v = open(&bytes).map_err(|e| damaged(keys::ENVELOPES, e.to_string()))?;
            if v.id().as_bytes()[..] != id[..] {
                return Err(damaged(
                    keys::ENVELOPES,
                    format!("key {} holds verdict {}", hex::encode(&id), v.id()),
                ));
            }
            let vd = v.verdict();
            let s = vd.signer.as_bytes();
            let logged = self.log.get(keys::signer_seq(s, vd.seq))?;
            if logged.as_deref() != Some(&id[..]) {
                return Err(damaged(
                    keys::LOG,
                    format!("verdict {} is not in its signer's log", v.id()),
                ));
            }
            if !self
                .by_artifact
                .contains_key(keys::pair(vd.subject.sha256.as_bytes(), v.id().as_bytes()))?
            {
                return Err(damaged(
                    keys::BY_ARTIFACT,
                    format!("verdict {} is not indexed", v.id()),
                ));
            }
            let name_key = keys::by_name(
                &vd.subject.distribution,
                &vd.subject.name,
                &vd.subject.version,
                v.id().as_bytes(),
            );
            if !self.by_name.contains_key(name_key)? {
                return Err(damaged(
                    keys::BY_NAME,
                    format!("verdict {} is not indexed", v.id()),
                ));
            }
            n += 1;
        }
        for (tree, t, id_at) in [
            (keys::BY_ARTIFACT, &self.by_artifact, 32usize),
            (keys::BY_NAME, &self.by_name, 0),
        ] {
            for item in t.iter() {
                let (k, _) = item?;
                let at = if id_at == 0 {
                    k.len().saturating_sub(32)
                } else {
                    id_at
                };
                if !self.envelopes.contains_key(&k[at..])? {
                    return Err(damaged(
                        tree,
                        format!("entry names missing verdict {}", hex::encode(&k[at..])),
                    ));
                }
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
        if logged != n || self.log.len() as u64 != n {
            return Err(damaged(
                keys::LOG,
                format!("{} log entries for {n} envelopes", self.log.len()),
            ));
        }
        let counted = self.counts()?.verdicts;
        if counted != n {
            return Err(damaged(
                keys::META,
                format!("count says {counted}, {n} stored"),
            ));
        }
        Ok(n)
    }
}

fn parse_signer_head(k: &[u8], v: &[u8]) -> Result<SignerHead, StoreError> {
    let damaged = || StoreError::Damaged {
        tree: keys::HEADS,
        detail: format!("bad head entry {}", hex::encode(k)),
    };
    let signer_bytes = keys::id32(k).ok_or_else(damaged)?;
    let signer = PublicKey::from_bytes(&signer_bytes).map_err(|_| damaged())?;
    let (seq, id) = keys::parse_head(v).ok_or_else(damaged)?;
    Ok(SignerHead {
        signer,
        seq,
        id: Digest(id),
        count: seq + 1,
    })
}

/// The trees inside one transaction.
struct Tx<'a> {
    meta: &'a TransactionalTree,
    envelopes: &'a TransactionalTree,
    log: &'a TransactionalTree,
    by_artifact: &'a TransactionalTree,
    by_name: &'a TransactionalTree,
    heads: &'a TransactionalTree,
    pending: &'a TransactionalTree,
    forks: &'a TransactionalTree,
    forks_by_signer: &'a TransactionalTree,
}

/// A verdict to write: what [`VerifiedVerdict`] has, also rebuilt from a
/// pending entry that was verified when it arrived.
struct Entry<'a> {
    id: Digest,
    verdict: &'a Verdict,
    envelope: &'a [u8],
}

impl Tx<'_> {
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
        let head = match self.heads.get(signer)? {
            Some(h) => {
                Some(keys::parse_head(&h).ok_or_else(|| abort_damaged(keys::HEADS, "bad head"))?)
            }
            None => None,
        };
        let next = head.map_or(0, |(seq, _)| seq + 1);

        if vd.seq < next {
            // At or below the head: the same entry, or a fork.
            let stored = self
                .log
                .get(keys::signer_seq(signer, vd.seq))?
                .ok_or_else(|| abort_damaged(keys::LOG, "log shorter than its head"))?;
            if stored.as_ref() == v.id().as_bytes() {
                return Ok(Applied::Duplicate);
            }
            let existing_bytes = self
                .envelopes
                .get(&stored)?
                .ok_or_else(|| abort_damaged(keys::ENVELOPES, "logged verdict missing"))?;
            return self.fork(v, &existing_bytes);
        }
        if vd.seq > next {
            // A gap: hold it, unless it conflicts with what is held.
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
            // A pending entry at this seq with a different payload proves a
            // fork with this one only if they share seq: it is not held
            // here (seq == next is never pending), so just refuse.
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
            let env = Envelope::decode(&held)
                .map_err(|e| abort_damaged(keys::PENDING, &e.to_string()))?;
            let verdict = decode_verdict(env.payload())
                .map_err(|e| abort_damaged(keys::PENDING, &e.to_string()))?;
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
        self.envelopes.insert(id, e.envelope)?;
        self.log.insert(&keys::signer_seq(signer, v.seq)[..], id)?;
        self.by_artifact
            .insert(&keys::pair(v.subject.sha256.as_bytes(), id)[..], &[])?;
        self.by_name.insert(
            keys::by_name(
                &v.subject.distribution,
                &v.subject.name,
                &v.subject.version,
                id,
            ),
            &[],
        )?;
        self.heads
            .insert(signer, &keys::head_value(v.seq, id)[..])?;
        Ok(())
    }

    fn fork(&self, v: &VerifiedVerdict, other: &[u8]) -> TxResult<Applied> {
        let other = open(other).map_err(|e| abort_damaged(keys::ENVELOPES, &e.to_string()))?;
        let Ok(proof) = ForkProof::new(v, &other) else {
            // Same seq (or same prev) and a different payload always
            // conflict; anything else means the stored entry is damaged.
            return Err(abort_damaged(
                keys::LOG,
                "stored entry does not conflict as expected",
            ));
        };
        let bytes = proof.encode();
        let proof_id = Digest::of(&bytes);
        self.forks.insert(proof_id.as_bytes(), bytes.clone())?;
        self.forks_by_signer.insert(
            &keys::pair(v.signer().as_bytes(), proof_id.as_bytes())[..],
            &[],
        )?;
        Ok(Applied::Fork {
            proof: proof_id,
            existing: other.id(),
            bytes,
        })
    }
}

fn abort_damaged(tree: &'static str, detail: &str) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(StoreError::Damaged {
        tree,
        detail: detail.to_string(),
    })
}
