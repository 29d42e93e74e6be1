//! Fork proofs: two validly signed verdicts of one signer that cannot both be
//! in one log. Anyone can check one with nothing but the bytes.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::digest::Digest;
use crate::envelope::{Bytes, MAX_ENVELOPE, VerifiedVerdict, open};
use crate::error::{DecodeError, ForkError};
use crate::keys::PublicKey;

/// Largest accepted fork proof, in bytes.
pub const MAX_FORK_PROOF: usize = 2 * MAX_ENVELOPE + 64;
/// The fork-proof format version.
pub const FORK_PROOF_VERSION: u64 = 1;

/// Two envelopes of one signer that conflict: same `seq`, or same `prev`,
/// with different payloads. `a` is the one whose verdict id sorts lower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkProof {
    a: Vec<u8>,
    b: Vec<u8>,
}

/// A fork proof that was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFork {
    /// The signer that equivocated.
    pub signer: PublicKey,
    /// The two conflicting verdicts, `a` first.
    pub verdicts: [VerifiedVerdict; 2],
    /// The proof's id: SHA-256 of its encoding.
    pub id: Digest,
}

impl CheckedFork {
    /// The smallest seq involved in the conflict.
    pub fn seq(&self) -> u64 {
        self.verdicts[0]
            .verdict()
            .seq
            .min(self.verdicts[1].verdict().seq)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u64,
    a: Bytes,
    b: Bytes,
}

impl ForkProof {
    /// Builds a proof from two verified verdicts, if they conflict.
    pub fn new(x: &VerifiedVerdict, y: &VerifiedVerdict) -> Result<ForkProof, ForkError> {
        let (a, b) = if x.id() <= y.id() { (x, y) } else { (y, x) };
        conflict(a, b)?;
        Ok(ForkProof {
            a: a.envelope().to_vec(),
            b: b.envelope().to_vec(),
        })
    }

    /// Decodes the canonical CBOR form (without checking signatures; see
    /// [`ForkProof::check`]).
    pub fn decode(bytes: &[u8]) -> Result<ForkProof, DecodeError> {
        let wire: Wire = codec::decode(bytes, MAX_FORK_PROOF)?;
        if wire.version != FORK_PROOF_VERSION {
            return Err(DecodeError::UnknownVersion(wire.version));
        }
        Ok(ForkProof {
            a: wire.a.0,
            b: wire.b.0,
        })
    }

    /// The canonical CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&Wire {
            version: FORK_PROOF_VERSION,
            a: Bytes(self.a.clone()),
            b: Bytes(self.b.clone()),
        })
    }

    /// Verifies both envelopes and that they conflict.
    pub fn check(&self) -> Result<CheckedFork, ForkError> {
        let a = open(&self.a).map_err(|e| ForkError::Envelope {
            which: 'a',
            source: Box::new(e),
        })?;
        let b = open(&self.b).map_err(|e| ForkError::Envelope {
            which: 'b',
            source: Box::new(e),
        })?;
        if a.id() > b.id() {
            return Err(ForkError::Order);
        }
        conflict(&a, &b)?;
        Ok(CheckedFork {
            signer: *a.signer(),
            id: Digest::of(&self.encode()),
            verdicts: [a, b],
        })
    }

    /// Decodes and checks in one step.
    pub fn open(bytes: &[u8]) -> Result<CheckedFork, ForkError> {
        ForkProof::decode(bytes)
            .map_err(|e| ForkError::Envelope {
                which: '-',
                source: Box::new(e.into()),
            })?
            .check()
    }
}

/// Every fork that `verdicts` themselves prove: for each signer, each group
/// of its verdicts that share a `seq`, or share a `prev`, with more than one
/// distinct payload gives one proof, made of the group's two lowest verdict
/// ids. The result depends only on the set of verdicts, never on their
/// order, and is sorted by proof id.
pub fn find_forks<'a>(verdicts: impl IntoIterator<Item = &'a VerifiedVerdict>) -> Vec<CheckedFork> {
    use std::collections::{BTreeMap, BTreeSet};
    // (signer, which, seq or prev) → verdicts of that group, by id.
    let mut groups: BTreeMap<(PublicKey, u8, [u8; 32]), BTreeMap<Digest, &VerifiedVerdict>> =
        BTreeMap::new();
    for v in verdicts {
        let mut seq = [0u8; 32];
        seq[..8].copy_from_slice(&v.verdict().seq.to_be_bytes());
        for key in [
            (*v.signer(), 0u8, seq),
            (*v.signer(), 1, v.verdict().prev.0),
        ] {
            groups.entry(key).or_default().insert(v.id(), v);
        }
    }
    let mut out: BTreeMap<Digest, CheckedFork> = BTreeMap::new();
    let mut seen: BTreeSet<(Digest, Digest)> = BTreeSet::new();
    for group in groups.values() {
        let mut lowest = group.values();
        let (Some(a), Some(b)) = (lowest.next(), lowest.next()) else {
            continue;
        };
        if !seen.insert((a.id(), b.id())) {
            continue;
        }
        if let Ok(proof) = ForkProof::new(a, b) {
            let id = Digest::of(&proof.encode());
            out.insert(
                id,
                CheckedFork {
                    signer: *a.signer(),
                    verdicts: [(*a).clone(), (*b).clone()],
                    id,
                },
            );
        }
    }
    out.into_values().collect()
}

impl CheckedFork {
    /// The proof in its portable form, to store, gossip or submit.
    pub fn proof(&self) -> ForkProof {
        ForkProof {
            a: self.verdicts[0].envelope().to_vec(),
            b: self.verdicts[1].envelope().to_vec(),
        }
    }
}

fn conflict(a: &VerifiedVerdict, b: &VerifiedVerdict) -> Result<(), ForkError> {
    if a.signer() != b.signer() {
        return Err(ForkError::DifferentSigners);
    }
    if a.id() == b.id() {
        return Err(ForkError::SamePayload);
    }
    let (va, vb) = (a.verdict(), b.verdict());
    if va.seq != vb.seq && va.prev != vb.prev {
        return Err(ForkError::NotConflicting);
    }
    Ok(())
}
