//! Bundles: everything needed to judge a set of artifacts offline, in one
//! file (`spec/bundle.md`). A bundle is canonical CBOR like every vouch
//! structure: a map of `version`, `created_at`, `artifacts` (sorted, unique
//! 32-byte digests), `verdicts` (envelopes) and `forks` (fork proofs), each
//! list sorted by the sha256 of its items' bytes, without repeats. Nothing in it is trusted: opening a
//! bundle verifies every envelope and proof, and the policy judges from
//! what verified, exactly as from nodes' answers.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::envelope::{Bytes, VerifiedVerdict};
use crate::error::DecodeError;
use crate::fork::{CheckedFork, ForkProof};
use crate::{Digest, MAX_ENVELOPE, MAX_FORK_PROOF};

/// The bundle format version.
pub const BUNDLE_VERSION: u64 = 1;

/// Largest bundle read (bytes).
pub const MAX_BUNDLE: usize = 1 << 30;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u64,
    created_at: u64,
    artifacts: Vec<Bytes>,
    verdicts: Vec<Bytes>,
    forks: Vec<Bytes>,
}

/// A bundle's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// When it was made (seconds since the epoch), for people.
    pub created_at: u64,
    /// The artifacts it is meant to judge, sorted.
    pub artifacts: Vec<Digest>,
    /// Envelopes, sorted by the sha256 of their bytes.
    pub verdicts: Vec<Vec<u8>>,
    /// Fork proofs, sorted by the sha256 of their bytes (their id).
    pub forks: Vec<Vec<u8>>,
}

/// What verified in a bundle.
#[derive(Debug, Default)]
pub struct Opened {
    /// Verdicts whose envelope verified.
    pub verdicts: Vec<VerifiedVerdict>,
    /// Fork proofs that verified.
    pub forks: Vec<CheckedFork>,
    /// Envelopes and proofs that did not.
    pub invalid: usize,
}

impl Bundle {
    /// A bundle of `verdicts` and `forks` about `artifacts`, in canonical
    /// order.
    pub fn new(
        created_at: u64,
        artifacts: &[Digest],
        verdicts: &[VerifiedVerdict],
        forks: &[CheckedFork],
    ) -> Bundle {
        let mut artifacts = artifacts.to_vec();
        artifacts.sort();
        artifacts.dedup();
        let mut v: Vec<(Digest, Vec<u8>)> = verdicts
            .iter()
            .map(|v| (Digest::of(v.envelope()), v.envelope().to_vec()))
            .collect();
        v.sort_by_key(|x| x.0);
        v.dedup_by(|a, b| a.0 == b.0);
        let mut f: Vec<(Digest, Vec<u8>)> =
            forks.iter().map(|f| (f.id, f.proof().encode())).collect();
        f.sort_by_key(|x| x.0);
        f.dedup_by(|a, b| a.0 == b.0);
        Bundle {
            created_at,
            artifacts,
            verdicts: v.into_iter().map(|x| x.1).collect(),
            forks: f.into_iter().map(|x| x.1).collect(),
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&Wire {
            version: BUNDLE_VERSION,
            created_at: self.created_at,
            artifacts: self
                .artifacts
                .iter()
                .map(|d| Bytes(d.as_bytes().to_vec()))
                .collect(),
            verdicts: self.verdicts.iter().cloned().map(Bytes).collect(),
            forks: self.forks.iter().cloned().map(Bytes).collect(),
        })
    }

    /// Decodes a bundle, refusing anything but the canonical encoding:
    /// unsorted or repeated entries, a digest that is not 32 bytes, an
    /// envelope or proof over its size limit.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, DecodeError> {
        if let Some(v) = codec::peek_version(bytes)?
            && v != BUNDLE_VERSION
        {
            return Err(DecodeError::UnknownVersion(v));
        }
        let wire: Wire = codec::decode(bytes, MAX_BUNDLE)?;
        let mut artifacts = Vec::with_capacity(wire.artifacts.len());
        for a in &wire.artifacts {
            let arr: [u8; 32] = a.0.as_slice().try_into().map_err(|_| {
                DecodeError::InvalidValue(format!("an artifact of {} bytes, not 32", a.0.len()))
            })?;
            artifacts.push(Digest(arr));
        }
        if !artifacts.windows(2).all(|w| w[0] < w[1]) {
            return Err(DecodeError::NonCanonical);
        }
        let verdicts: Vec<Vec<u8>> = wire.verdicts.into_iter().map(|b| b.0).collect();
        let forks: Vec<Vec<u8>> = wire.forks.into_iter().map(|b| b.0).collect();
        if verdicts.iter().any(|v| v.len() > MAX_ENVELOPE)
            || forks.iter().any(|f| f.len() > MAX_FORK_PROOF)
        {
            return Err(DecodeError::InvalidValue(
                "an envelope or fork proof over its size limit".into(),
            ));
        }
        let ids =
            |items: &[Vec<u8>]| -> Vec<Digest> { items.iter().map(|i| Digest::of(i)).collect() };
        let sorted = |d: Vec<Digest>| d.windows(2).all(|w| w[0] < w[1]);
        if !sorted(ids(&verdicts)) || !sorted(ids(&forks)) {
            return Err(DecodeError::NonCanonical);
        }
        Ok(Bundle {
            created_at: wire.created_at,
            artifacts,
            verdicts,
            forks,
        })
    }

    /// Verifies every envelope and fork proof.
    pub fn open(&self) -> Opened {
        let mut out = Opened::default();
        let items: Vec<&[u8]> = self.verdicts.iter().map(Vec::as_slice).collect();
        for r in crate::verify_batch(&items) {
            match r {
                Ok(v) => out.verdicts.push(v),
                Err(_) => out.invalid += 1,
            }
        }
        for f in &self.forks {
            match ForkProof::open(f) {
                Ok(f) => out.forks.push(f),
                Err(_) => out.invalid += 1,
            }
        }
        out
    }
}
