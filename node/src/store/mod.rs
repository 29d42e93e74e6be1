//! The verdict store: envelopes in segment files, everything else in a
//! fjall keyspace (see [`kv`]). Only this module names the engine; callers
//! see typed methods.
//!
//! Trees (names in [`keys`]): envelopes by id; the signers' logs by (signer,
//! seq); indexes by (artifact sha256, signer, seq) and by (distribution,
//! name, version); each signer's head; pending entries held until a gap
//! closes; one fork proof per signer (and how many were seen); evidence
//! blobs; jobs and the package table. Every verdict and all its index entries
//! are written in one transaction; [`Store::flush`] makes them durable.

mod blobs;
pub use blobs::unpack_blob;
mod check;
pub mod digest;
mod enqueue;
mod forks;
mod heads;
pub mod jobs;
mod keys;
mod kv;
mod migrate;
pub use migrate::Migrated;
pub mod packages;
mod packed;
mod read;
mod register;
pub mod segments;
pub mod standing;
pub mod stats;
mod tally;
mod write;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kv::{Reads, Spread};
use thiserror::Error;
use vouch_attest::{Digest, PublicKey};

/// How long [`Store::open`] waits for the store's lock.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The zstd level full segments are compressed at.
pub const SEGMENT_ZSTD_LEVEL: i32 = 3;

/// Largest evidence blob accepted (uncompressed), in bytes.
pub const MAX_BLOB: usize = 64 << 20;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The key-value engine failed (I/O, corruption).
    #[error("database: {0}")]
    Db(#[from] fjall::Error),
    /// Reading a store of an older format (a sled database) failed.
    #[error("older store's database: {0}")]
    OldDb(#[from] sled::Error),
    /// A file of the store could not be read or written.
    #[error("{0}")]
    Io(String),
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
    /// The store is of an older format that `vouchd migrate` converts.
    #[error(
        "the store at {path} has the older format `{found}`, this vouchd reads `{expected}`; \
         stop the node and run `vouchd migrate` (with the same --data-dir) to convert it"
    )]
    NeedsMigration {
        /// The data directory.
        path: String,
        /// The format found.
        found: String,
        /// The format this build reads.
        expected: &'static str,
    },
    /// There is no store where one was named.
    #[error("there is no store at {path}")]
    NoStore {
        /// The data directory.
        path: String,
    },
    /// Another process (or a store not yet closed) holds the store.
    #[error("the store at {path} is in use (is another vouchd running on this data directory?)")]
    InUse {
        /// The data directory.
        path: String,
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
    /// Reading or writing a segment file failed.
    #[error("segment file: {0}")]
    Segment(String),
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
    /// Conflicts with a stored entry: the signer forked.
    Fork {
        /// The fork proof's id.
        proof: Digest,
        /// The stored verdict it conflicts with.
        existing: Digest,
        /// The encoded fork proof.
        bytes: Vec<u8>,
        /// Whether this proof is now the one kept for the signer (the first,
        /// or one with a lower id): only then is it worth gossiping.
        stored: bool,
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

impl SignerHead {
    /// `signer`'s head at `seq`, verdict `id` (logs start at 0).
    pub(crate) fn new(signer: PublicKey, seq: u64, id: [u8; 32]) -> SignerHead {
        SignerHead {
            signer,
            seq,
            id: Digest(id),
            count: seq + 1,
        }
    }
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
    db: Arc<kv::Db>,
    meta: kv::Tree,
    /// Verdict id → where its envelope is in the segments.
    envelopes: kv::Tree,
    segments: Arc<segments::Segments>,
    /// Evidence blobs (zstd-compressed), in their own segments.
    evidence: Arc<segments::Segments>,
    log: kv::Tree,
    by_artifact: kv::Tree,
    by_name: kv::Tree,
    heads: kv::Tree,
    pending: kv::Tree,
    forks: kv::Tree,
    fork_counts: kv::Tree,
    blobs: kv::Tree,
    jobs: kv::Tree,
    queue: kv::Tree,
    packages: kv::Tree,
    packages_by_name: kv::Tree,
    packages_by_sha: kv::Tree,
    job_ids: kv::Tree,
    jobs_by_id: kv::Tree,
    numbers: kv::Tree,
    numbered: kv::Tree,
    tally: Arc<tally::Tally>,
    /// Every head and count of held entries, as in `heads` and `pending`
    /// (see [`heads`]).
    head_cache: Arc<heads::Heads>,
    /// Held while job and package ids are handed out (see
    /// [`packages::NextIds`]).
    registering: Arc<std::sync::Mutex<()>>,
}

pub(crate) type TxResult<T> = Result<T, StoreError>;

impl Store {
    /// Opens (or creates) the store in `dir`, refusing another format,
    /// and cuts off whatever the segment files hold past the committed end
    /// (see [`segments`]).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let started = std::time::Instant::now();
        let db = open_db(dir)?;
        let db_secs = started.elapsed().as_secs_f64();
        let io = segments::DiskIo::new(dir.join("segments"))
            .map_err(|e| StoreError::Segment(format!("{}: {e}", dir.display())))?;
        let store = Store::from_db(
            db,
            dir,
            Arc::new(io),
            evidence_io(dir)?,
            segments::SEGMENT_LEN,
        )?;
        tracing::info!(
            index_seconds = db_secs,
            seconds = started.elapsed().as_secs_f64(),
            "store opened"
        );
        Ok(store)
    }

    /// Opens the store in `dir` with its verdict segments in `io`, each
    /// full at `segment_len` bytes, and its evidence segments in `evidence`:
    /// for the tests that cut the power between writes.
    #[doc(hidden)]
    pub fn open_with(
        dir: &Path,
        io: Arc<dyn segments::SegmentIo>,
        evidence: Arc<dyn segments::SegmentIo>,
        segment_len: u32,
    ) -> Result<Store, StoreError> {
        Store::from_db(open_db(dir)?, dir, io, evidence, segment_len)
    }

    /// A temporary in-memory store, for tests and benchmarks.
    pub fn temporary() -> Result<Store, StoreError> {
        let db = kv::Db::temporary()?;
        Store::from_db(
            db,
            Path::new("(temporary)"),
            Arc::new(segments::MemIo::new()),
            Arc::new(segments::MemIo::new()),
            segments::SEGMENT_LEN,
        )
    }

    fn from_db(
        db: kv::Db,
        dir: &Path,
        io: Arc<dyn segments::SegmentIo>,
        evidence: Arc<dyn segments::SegmentIo>,
        segment_len: u32,
    ) -> Result<Store, StoreError> {
        let meta = db.tree(keys::META)?;
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
                // A keyspace with trees but no format mark was not written
                // by vouchd: refuse rather than misread it.
                let foreign = db.tree_names().iter().any(|n| n != keys::META);
                if foreign || !meta.is_empty()? {
                    return Err(StoreError::Format {
                        path: dir.display().to_string(),
                        found: "(no format mark)".to_string(),
                        expected: keys::FORMAT,
                    });
                }
                meta.insert(keys::META_FORMAT, keys::FORMAT.as_bytes())?;
                db.persist()?;
            }
        }
        let segments = Arc::new(segments::Segments::open(
            io,
            durable_end(&meta, keys::META_SEGMENT_END)?,
            segment_len,
        )?);
        let evidence = Arc::new(segments::Segments::open(
            evidence,
            durable_end(&meta, keys::META_EVIDENCE_END)?,
            segments::SEGMENT_LEN,
        )?);
        let store = Store {
            envelopes: db.tree_for(keys::ENVELOPES, Reads::Keys, Spread::Random)?,
            segments,
            evidence,
            log: db.tree_for(keys::LOG, Reads::Ranges, Spread::Ordered)?,
            by_artifact: db.tree_for(keys::BY_ARTIFACT, Reads::Ranges, Spread::Random)?,
            by_name: db.tree_for(keys::BY_NAME, Reads::Ranges, Spread::Ordered)?,
            heads: db.tree(keys::HEADS)?,
            pending: db.tree(keys::PENDING)?,
            forks: db.tree(keys::FORKS)?,
            fork_counts: db.tree(keys::FORK_COUNTS)?,
            blobs: db.tree(keys::BLOBS)?,
            jobs: db.tree(keys::JOBS)?,
            queue: db.tree(keys::QUEUE)?,
            packages: db.tree(keys::PACKAGES)?,
            packages_by_name: db.tree(keys::PACKAGES_BY_NAME)?,
            packages_by_sha: db.tree(keys::PACKAGES_BY_SHA)?,
            job_ids: db.tree(keys::JOB_IDS)?,
            jobs_by_id: db.tree(keys::JOBS_BY_ID)?,
            numbers: db.tree(keys::NUMBERS)?,
            numbered: db.tree(keys::NUMBERED)?,
            meta,
            db: Arc::new(db),
            tally: Arc::default(),
            head_cache: Arc::default(),
            registering: Arc::default(),
        };
        // Jobs get their ids first, so that one pass over the jobs counts
        // them and their standing.
        store.register_missing()?;
        store.count_all()?;
        Ok(store)
    }

    /// Fills the in-memory counts from the trees (once, at open).
    fn count_all(&self) -> Result<(), StoreError> {
        let t = &self.tally;
        let mut heads = Vec::new();
        for item in self.heads.iter() {
            let (k, v) = item?;
            let h = parse_signer_head(&k, &v)?;
            heads.push((*h.signer.as_bytes(), (h.seq, h.id.0)));
        }
        t.signers.store(heads.len() as u64, Ordering::Relaxed);
        self.head_cache.moved(heads);
        self.head_cache.held(self.walk_held()?);
        let meta_u64 = |key| -> Result<u64, StoreError> {
            Ok(keys::u64_value(self.meta.get(key)?.as_deref()))
        };
        t.verdicts
            .store(meta_u64(keys::META_VERDICTS)?, Ordering::Relaxed);
        t.pending
            .store(meta_u64(keys::META_PENDING)?, Ordering::Relaxed);
        t.forks.store(self.forks.len()? as u64, Ordering::Relaxed);
        let (mut n, mut bytes) = (0u64, 0u64);
        for item in self.blobs.iter() {
            let (_, v) = item?;
            n += 1;
            bytes += u64::from(read::parse_ptr(&v)?.len);
        }
        t.blobs.store(n, Ordering::Relaxed);
        t.blob_bytes.store(bytes, Ordering::Relaxed);
        for item in self.jobs.iter() {
            let (k, v) = item?;
            let r = jobs::decode(&v)?;
            let key = String::from_utf8_lossy(&k);
            t.job_moved(&key, None, r.state);
            if let Some(ids) = self.job_ids(&key)? {
                if !r.published {
                    t.packages().published(ids.id, false, &[]);
                }
                if r.state == jobs::JobState::Queued {
                    t.packages().queued(ids.id, true);
                }
            }
        }
        Ok(())
    }

    /// How many entries each signer holds, counted from the pending tree
    /// (its keys are signer ‖ seq).
    fn walk_held(&self) -> Result<std::collections::BTreeMap<[u8; 32], u64>, StoreError> {
        let mut held = std::collections::BTreeMap::new();
        for item in self.pending.iter() {
            let (k, _) = item?;
            let signer = k
                .get(..32)
                .and_then(keys::id32)
                .ok_or_else(|| damaged(keys::PENDING, format!("bad key {}", hex::encode(&k))))?;
            *held.entry(signer).or_default() += 1;
        }
        Ok(held)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.maybe_save_stats(false)?;
        self.db.persist()?;
        Ok(())
    }

    /// Counts for status and metrics.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            verdicts: self.tally.verdicts.load(Ordering::Relaxed),
            pending: self.tally.pending.load(Ordering::Relaxed),
            signers: self.tally.signers.load(Ordering::Relaxed),
            forks: self.tally.forks.load(Ordering::Relaxed),
            blobs: self.tally.blobs.load(Ordering::Relaxed),
        })
    }

    /// Writes every tree's memtable to a compressed table on disk and
    /// waits for it (the journal behind them is then dropped): what the
    /// store settles to in the background, for measuring it, and what a
    /// clean shutdown leaves, so that the next open replays no journal.
    pub fn settle(&self) -> Result<(), StoreError> {
        self.db.flush_all()
    }

    /// Bytes on disk (allocated, as `du` counts them, so fjall's sparse
    /// preallocated journal counts what it holds): the keyspace's files
    /// and the segment files.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.segments.size()? + self.evidence.size()?)
    }

    /// For each tree: its name, entries, and bytes of keys and values
    /// (before the engine's own overhead and compression). Reads every
    /// entry.
    pub fn tree_sizes(&self) -> Result<Vec<TreeSize>, StoreError> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.tree(&name)?;
            let mut size = TreeSize {
                name,
                entries: 0,
                bytes: 0,
            };
            for item in tree.iter() {
                let (k, v) = item?;
                size.entries += 1;
                size.bytes += (k.len() + v.len()) as u64;
            }
            out.push(size);
        }
        Ok(out)
    }

    /// Bytes in the segment files.
    pub fn segments_size(&self) -> Result<u64, StoreError> {
        self.segments.size()
    }

    /// Compresses every full segment not yet compressed (see
    /// [`segments::Segments::compress_sealed`]).
    pub fn compress_segments(&self) -> Result<segments::Compressed, StoreError> {
        self.segments.compress_sealed(SEGMENT_ZSTD_LEVEL)
    }
}

/// The size of one tree (see [`Store::tree_sizes`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeSize {
    /// The tree.
    pub name: String,
    /// Its entries.
    pub entries: u64,
    /// Bytes of its keys and values.
    pub bytes: u64,
}

pub(crate) fn parse_signer_head(k: &[u8], v: &[u8]) -> Result<SignerHead, StoreError> {
    let damaged = || StoreError::Damaged {
        tree: keys::HEADS,
        detail: format!("bad head entry {}", hex::encode(k)),
    };
    let signer_bytes = keys::id32(k).ok_or_else(damaged)?;
    let signer = PublicKey::from_bytes(&signer_bytes).map_err(|_| damaged())?;
    let (seq, id) = keys::parse_head(v).ok_or_else(damaged)?;
    Ok(SignerHead::new(signer, seq, id))
}

/// A stored entry of `tree` that does not decode.
pub(crate) fn damaged(tree: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        tree,
        detail: detail.into(),
    }
}

/// Where the keyspace of the store in `dir` lives.
pub(crate) fn index_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("index")
}

/// Opens the keyspace of the store in `dir`, refusing a store that is still
/// a sled database (formats 1 to 3) with a message naming `vouchd migrate`.
fn open_db(dir: &Path) -> Result<kv::Db, StoreError> {
    if let Some(found) = migrate::old_format(dir)? {
        let path = dir.display().to_string();
        let expected = keys::FORMAT;
        return Err(
            if [keys::FORMAT_V1, keys::FORMAT_V2, keys::FORMAT_V3].contains(&found.as_str()) {
                StoreError::NeedsMigration {
                    path,
                    found,
                    expected,
                }
            } else {
                StoreError::Format {
                    path,
                    found,
                    expected,
                }
            },
        );
    }
    kv::Db::open(&index_dir(dir), dir)
}

/// Where the evidence segments of the store in `dir` live (not `blobs/`,
/// which was sled's in older formats).
fn evidence_io(dir: &Path) -> Result<Arc<dyn segments::SegmentIo>, StoreError> {
    let io = segments::DiskIo::new(dir.join("evidence"))
        .map_err(|e| StoreError::Segment(format!("{}: {e}", dir.display())))?;
    Ok(Arc::new(io))
}

/// A segments' durable end as committed in `meta` under `key` (`None`: none
/// committed yet).
fn durable_end(meta: &kv::Tree, key: &[u8]) -> Result<Option<segments::End>, StoreError> {
    match meta.get(key)? {
        Some(v) => segments::End::decode(&v)
            .map(Some)
            .ok_or_else(|| StoreError::Damaged {
                tree: keys::META,
                detail: format!("bad {}", String::from_utf8_lossy(key)),
            }),
        None => Ok(None),
    }
}
