//! Fork proofs: one per signer is enough to prove that it forked. The store
//! keeps the one with the lowest proof id (so every node converges on the
//! same proof whatever the order proofs arrive in) and counts the others.

use std::ops::Bound;

use super::kv::TxTree;
use vouch_attest::{Digest, ForkProof, PublicKey};

use super::{Store, StoreError, TxResult, keys};

/// A page of kept fork proofs: (signer, proof) pairs, and whether more
/// follow.
pub type ForksPage = (Vec<(PublicKey, Vec<u8>)>, bool);

/// What offering a proof did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Offered {
    /// It is now the proof kept for its signer.
    pub(crate) kept: bool,
    /// It is the first proof against its signer.
    pub(crate) first: bool,
}

/// Inside a transaction: offers `proof` (encoded) against `signer`.
pub(crate) fn offer(
    forks: &TxTree<'_, '_>,
    counts: &TxTree<'_, '_>,
    signer: &PublicKey,
    proof: &[u8],
) -> TxResult<Offered> {
    let key = signer.as_bytes();
    let kept = forks.get(key)?;
    if kept.as_deref() == Some(proof) {
        return Ok(Offered::default());
    }
    let first = kept.is_none();
    let n = keys::u64_value(counts.get(key)?.as_deref()) + 1;
    counts.insert(&key[..], n.to_be_bytes())?;
    let lower = kept.is_none_or(|k| Digest::of(proof) < Digest::of(&k));
    if lower {
        forks.insert(&key[..], proof)?;
    }
    Ok(Offered { kept: lower, first })
}

impl Store {
    /// Stores a checked fork proof (from gossip or a peer) if it is the
    /// first against `signer` or has a lower id than the one kept. Returns
    /// whether it was kept (and so is worth passing on).
    pub fn put_fork(&self, proof: &ForkProof, signer: &PublicKey) -> Result<bool, StoreError> {
        let bytes = proof.encode();
        let offered = self
            .db
            .transaction(|t| offer(&t.on(&self.forks), &t.on(&self.fork_counts), signer, &bytes))?;
        if offered.first {
            super::tally::Tally::add(&self.tally.forks, 1);
        }
        Ok(offered.kept)
    }

    /// The fork proof kept against `signer`, and how many distinct proofs
    /// against it were offered.
    pub fn fork_for(&self, signer: &PublicKey) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let Some(p) = self.forks.get(signer.as_bytes())? else {
            return Ok(None);
        };
        let n = keys::u64_value(self.fork_counts.get(signer.as_bytes())?.as_deref());
        Ok(Some((p.to_vec(), n.max(1))))
    }

    /// Kept fork proofs in signer order, after `after`: at most `limit`
    /// proofs and about `max_bytes` bytes (at least one proof when there is
    /// one). The second value says whether more follow.
    pub fn forks_page(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ForksPage, StoreError> {
        let start = match after {
            Some(s) => Bound::Excluded(s.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in self.forks.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (k, v) = item?;
            if out.len() >= limit || (!out.is_empty() && bytes + v.len() > max_bytes) {
                return Ok((out, true));
            }
            let Some(signer) = keys::id32(&k).and_then(|b| PublicKey::from_bytes(&b).ok()) else {
                return Err(StoreError::Damaged {
                    tree: keys::FORKS,
                    detail: format!("bad signer key {}", hex::encode(&k)),
                });
            };
            bytes += v.len();
            out.push((signer, v.to_vec()));
        }
        Ok((out, false))
    }
}
