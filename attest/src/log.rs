//! Signer logs: each signer's verdicts form a hash chain through `seq` and
//! `prev`.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::envelope::VerifiedVerdict;
use crate::error::ChainError;
use crate::keys::PublicKey;

/// The newest entry of a signer's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Whose log.
    pub signer: PublicKey,
    /// The newest entry's seq.
    pub seq: u64,
    /// The newest entry's id.
    pub id: Digest,
}

/// How an entry relates to a log head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// The next entry: appending it gives the new head.
    Next(Head),
    /// Already in the log at or below the head (same seq and id only known
    /// for the head itself; earlier entries must be compared by the caller).
    AtOrBelowHead,
    /// Beyond the next seq: entries are missing in between.
    Gap {
        /// The first missing seq.
        missing_from: u64,
    },
}

impl Head {
    /// The head after a log's first entry, if `entry` is one.
    pub fn genesis(entry: &VerifiedVerdict) -> Result<Head, ChainError> {
        let v = entry.verdict();
        if v.seq != 0 {
            return Err(ChainError::SeqGap {
                expected: 0,
                found: v.seq,
            });
        }
        Ok(Head {
            signer: v.signer,
            seq: 0,
            id: entry.id(),
        })
    }

    /// Where `entry` stands relative to this head.
    pub fn place(&self, entry: &VerifiedVerdict) -> Result<Placement, ChainError> {
        let v = entry.verdict();
        if v.signer != self.signer {
            return Err(ChainError::WrongSigner { seq: v.seq });
        }
        let next = self.seq.saturating_add(1);
        if v.seq <= self.seq {
            return Ok(Placement::AtOrBelowHead);
        }
        if v.seq > next {
            return Ok(Placement::Gap { missing_from: next });
        }
        if v.prev != self.id {
            return Err(ChainError::PrevMismatch {
                seq: v.seq,
                expected: self.id.to_hex(),
                found: v.prev.to_hex(),
            });
        }
        Ok(Placement::Next(Head {
            signer: self.signer,
            seq: v.seq,
            id: entry.id(),
        }))
    }

    /// Consumes the head and returns the new one after appending `entry`,
    /// which must be exactly the next entry.
    pub fn append(self, entry: &VerifiedVerdict) -> Result<Head, ChainError> {
        match self.place(entry)? {
            Placement::Next(head) => Ok(head),
            Placement::AtOrBelowHead | Placement::Gap { .. } => Err(ChainError::SeqGap {
                expected: self.seq.saturating_add(1),
                found: entry.verdict().seq,
            }),
        }
    }
}

/// Checks that `entries` form an unbroken chain, continuing `after` (or
/// starting at seq 0 when `after` is `None`), and returns the final head.
pub fn verify_chain(after: Option<Head>, entries: &[VerifiedVerdict]) -> Result<Head, ChainError> {
    let (mut head, rest) = match after {
        Some(h) => (h, entries),
        None => {
            let first = entries.first().ok_or(ChainError::Empty)?;
            (Head::genesis(first)?, &entries[1..])
        }
    };
    if after.is_some() && entries.is_empty() {
        return Err(ChainError::Empty);
    }
    for entry in rest {
        head = head.append(entry)?;
    }
    Ok(head)
}
