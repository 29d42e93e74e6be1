//! Reading verdicts: by id, by (artifact, signer), by name, logs and heads.

use vouch_attest::{Digest, PublicKey};

use super::segments::Ptr;
use super::{SignerHead, Store, StoreError, keys, parse_signer_head};

/// Entries of one signer about one artifact walked before a lookup seeks
/// past the rest: walking one costs far less than a seek, and past this a
/// signer that signed many verdicts about an artifact costs one seek.
const WALK_PER_SIGNER: usize = 8;

/// A stored envelope pointer.
pub(crate) fn parse_ptr(v: &[u8]) -> Result<Ptr, StoreError> {
    Ptr::decode(v).ok_or_else(|| StoreError::Damaged {
        tree: keys::ENVELOPES,
        detail: format!("bad pointer {}", hex::encode(v)),
    })
}

impl Store {
    /// The envelope with verdict id `id`.
    pub fn envelope(&self, id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        match self.envelopes.get(id.as_bytes())? {
            Some(p) => self.at(&p).map(Some),
            None => Ok(None),
        }
    }

    /// `signer`'s latest verdict (highest seq) about the artifact `sha256`.
    pub fn latest(
        &self,
        sha256: &Digest,
        signer: &PublicKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self.latest_ptr(sha256, signer)? {
            Some(p) => self.segments.read(p).map(Some),
            None => Ok(None),
        }
    }

    /// Where `signer`'s latest verdict about `sha256` is.
    pub fn latest_ptr(
        &self,
        sha256: &Digest,
        signer: &PublicKey,
    ) -> Result<Option<Ptr>, StoreError> {
        let prefix = keys::pair(sha256.as_bytes(), signer.as_bytes());
        match self.by_artifact.scan_prefix(prefix).next_back() {
            Some(item) => parse_ptr(&item?.1).map(Some),
            None => Ok(None),
        }
    }

    /// The latest verdict of each of `signers` about the artifact `sha256`
    /// (signers with none are left out).
    pub fn latest_of(
        &self,
        sha256: &Digest,
        signers: &[PublicKey],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read_many(&self.latest_ptrs_of(sha256, signers)?)
    }

    /// Where the verdicts [`Store::latest_of`] reads are.
    pub fn latest_ptrs_of(
        &self,
        sha256: &Digest,
        signers: &[PublicKey],
    ) -> Result<Vec<Ptr>, StoreError> {
        let mut ptrs = Vec::new();
        for k in signers {
            ptrs.extend(self.latest_ptr(sha256, k)?);
        }
        Ok(ptrs)
    }

    /// The latest verdict of each signer about the artifact `sha256`, in
    /// signer order after `after`, for at most `max_signers` signers. The
    /// second value says whether more signers follow. Each signer costs at
    /// most one seek however many verdicts it signed about the artifact,
    /// so nobody can make this slow or push others out by signing many.
    pub fn latest_by_artifact(
        &self,
        sha256: &Digest,
        after: Option<&PublicKey>,
        max_signers: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), StoreError> {
        let (ptrs, more) = self.latest_ptrs_by_artifact(sha256, after, max_signers)?;
        Ok((self.read_many(&ptrs)?, more))
    }

    /// The pointers [`Store::latest_by_artifact`] reads. One iterator walks
    /// the artifact's index entries, (artifact, signer, seq) in key order,
    /// so a signer's latest is its last entry; a signer with more than
    /// [`WALK_PER_SIGNER`] entries is passed by a seek to its last.
    pub fn latest_ptrs_by_artifact(
        &self,
        sha256: &Digest,
        after: Option<&PublicKey>,
        max_signers: usize,
    ) -> Result<(Vec<Ptr>, bool), StoreError> {
        use std::ops::Bound;
        let sha = sha256.as_bytes();
        let mut lower = match after {
            Some(s) => {
                Bound::Excluded(keys::artifact_signer_seq(sha, s.as_bytes(), u64::MAX).to_vec())
            }
            None => Bound::Included(sha.to_vec()),
        };
        let mut out = Vec::new();
        'seek: loop {
            // The signer being walked, its last entry's value so far, and
            // how many entries of it were walked.
            let mut cur: Option<([u8; 32], _, usize)> = None;
            for item in self
                .by_artifact
                .range::<Vec<u8>, _>((lower.clone(), Bound::Unbounded))
            {
                let (k, v) = item?;
                if !k.starts_with(sha) || k.len() != 72 {
                    break;
                }
                let signer: [u8; 32] = keys::id32(&k[32..64]).unwrap_or([0; 32]);
                match &mut cur {
                    Some((s, last, n)) if *s == signer => {
                        *last = v;
                        *n += 1;
                        if *n >= WALK_PER_SIGNER {
                            let end = keys::artifact_signer_seq(sha, s, u64::MAX);
                            if let Some(item) = self.by_artifact.range(..=end).next_back() {
                                out.push(parse_ptr(&item?.1)?);
                            }
                            lower = Bound::Excluded(end.to_vec());
                            continue 'seek;
                        }
                    }
                    _ => {
                        if let Some((_, last, _)) = cur.take() {
                            out.push(parse_ptr(&last)?);
                        }
                        if out.len() >= max_signers {
                            return Ok((out, true));
                        }
                        cur = Some((signer, v, 1));
                    }
                }
            }
            if let Some((_, last, _)) = cur {
                out.push(parse_ptr(&last)?);
            }
            return Ok((out, false));
        }
    }

    /// Envelopes of verdicts about (distribution, name[, version]).
    pub fn by_name(
        &self,
        distribution: &str,
        name: &str,
        version: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read_many(&self.by_name_ptrs(distribution, name, version, limit)?)
    }

    /// Where the verdicts [`Store::by_name`] reads are.
    pub fn by_name_ptrs(
        &self,
        distribution: &str,
        name: &str,
        version: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Ptr>, StoreError> {
        let prefix = keys::by_name_prefix(distribution, name, version);
        let mut out = Vec::new();
        for item in self.by_name.scan_prefix(&prefix).take(limit) {
            let (k, _) = item?;
            let p = k.len().checked_sub(12).map(|at| &k[at..]).unwrap_or(&[]);
            out.push(parse_ptr(p)?);
        }
        Ok(out)
    }

    /// The envelopes at `ptrs`, in their order (read in segment order, each
    /// compressed block once).
    pub fn read_many(&self, ptrs: &[Ptr]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.segments.read_many(ptrs)
    }

    /// The envelope at a stored pointer.
    pub(crate) fn at(&self, p: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.segments.read(parse_ptr(p)?)
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

    /// Heads in signer order after `after`, at most `limit`; the second
    /// value says whether more follow.
    pub fn heads_page(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<(Vec<SignerHead>, bool), StoreError> {
        let start = match after {
            Some(s) => std::ops::Bound::Excluded(s.as_bytes().to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self
            .heads
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
        {
            let (k, v) = item?;
            if out.len() >= limit {
                return Ok((out, true));
            }
            out.push(parse_signer_head(&k, &v)?);
        }
        Ok((out, false))
    }

    /// One signer's head.
    pub fn head(&self, signer: &PublicKey) -> Result<Option<SignerHead>, StoreError> {
        Ok(self
            .head_cache
            .head(signer.as_bytes())
            .map(|(seq, id)| SignerHead::new(*signer, seq, id)))
    }

    /// Whether the envelope with id `id` is stored (appended to a log).
    pub fn contains(&self, id: &Digest) -> Result<bool, StoreError> {
        self.envelopes.contains_key(id.as_bytes())
    }

    /// Entries `signer` holds in the store, appended and pending, counted
    /// up to `cap` (a quota check needs no more).
    pub fn held_by(&self, signer: &PublicKey, cap: u64) -> Result<u64, StoreError> {
        let appended = self.head(signer)?.map_or(0, |h| h.count);
        let pending = self.head_cache.pending(signer.as_bytes());
        Ok(appended.saturating_add(pending).min(cap.max(appended)))
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
            let (_, p) = item?;
            out.push(self.at(&p)?);
        }
        Ok(out)
    }
}
