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
