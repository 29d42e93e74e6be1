//! A digest of every signer's log head, in 256 buckets by the first byte of
//! the signer's key, so that two nodes that agree find it out with one hash
//! and two that differ exchange only the buckets that differ
//! (`spec/p2p.md` §4).
//!
//! A bucket's digest is SHA-256 over its heads in key order (signer ‖ seq ‖
//! id each): collision-resistant, so no signer can make two different
//! buckets look the same and hide a head (an XOR or sum of per-head hashes
//! could be steered that way). A bucket is hashed again only after one of
//! its heads moved; the root is SHA-256 over the 256 bucket digests.

use std::sync::Mutex;

use vouch_attest::{Digest, Hasher};

use super::{Store, StoreError};

/// Buckets in the digest.
pub const BUCKETS: usize = 256;

/// The cached bucket digests: per bucket a generation, moved by every
/// head written in it, and the digest hashed at that generation (None: to
/// be hashed again).
pub(crate) struct HeadBuckets {
    cached: Mutex<[(u64, Option<Digest>); BUCKETS]>,
}

impl Default for HeadBuckets {
    fn default() -> Self {
        HeadBuckets {
            cached: Mutex::new([(0, None); BUCKETS]),
        }
    }
}

impl HeadBuckets {
    fn lock(&self) -> std::sync::MutexGuard<'_, [(u64, Option<Digest>); BUCKETS]> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The head of a signer whose key starts with `first` moved.
    pub(crate) fn moved(&self, first: u8) {
        let mut g = self.lock();
        let e = &mut g[first as usize];
        *e = (e.0.wrapping_add(1), None);
    }
}

/// The 256 bucket digests and the root over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadDigest {
    /// SHA-256 over the bucket digests.
    pub root: Digest,
    /// One per first byte of the signer key.
    pub buckets: Vec<Digest>,
}

/// The root over bucket digests: SHA-256 of them in order.
pub fn root_of(buckets: &[Digest]) -> Digest {
    let mut h = Hasher::new();
    for d in buckets {
        h.update(d.as_bytes());
    }
    h.finish()
}

impl Store {
    /// The digest of every head (see the module doc).
    pub fn head_digest(&self) -> Result<HeadDigest, StoreError> {
        let mut buckets = Vec::with_capacity(BUCKETS);
        let cache = self.tally.head_buckets();
        for b in 0..BUCKETS {
            let (generation, cached) = cache.lock()[b];
            let d = match cached {
                Some(d) => d,
                None => {
                    let d = self.hash_bucket(b as u8)?;
                    // Kept only when no head of the bucket moved meanwhile.
                    let mut g = cache.lock();
                    if g[b].0 == generation {
                        g[b].1 = Some(d);
                    }
                    d
                }
            };
            buckets.push(d);
        }
        Ok(HeadDigest {
            root: root_of(&buckets),
            buckets,
        })
    }

    /// Hashes bucket `b` from the heads tree.
    fn hash_bucket(&self, b: u8) -> Result<Digest, StoreError> {
        let mut h = Hasher::new();
        for item in self.heads.scan_prefix([b]) {
            let (k, v) = item?;
            h.update(&k);
            h.update(&v);
        }
        Ok(h.finish())
    }

    /// After a write committed: the buckets of the heads it moved are to be
    /// hashed again.
    pub(crate) fn note_heads(&self, appended: &[super::packages::Appended]) {
        for a in appended {
            self.tally.head_buckets().moved(a.signer.as_bytes()[0]);
        }
    }

    /// The heads of the signers whose key starts with one of `buckets`.
    pub fn heads_in(&self, buckets: &[u8]) -> Result<Vec<super::SignerHead>, StoreError> {
        let mut out = Vec::new();
        for b in buckets {
            for item in self.heads.scan_prefix([*b]) {
                let (k, v) = item?;
                out.push(super::parse_signer_head(&k, &v)?);
            }
        }
        Ok(out)
    }
}
