//! Every signer's head and count of held (pending) entries, kept in memory
//! beside the `heads` and `pending` trees. The writer and admission read
//! them from here: the keyspace keeps each overwritten version of a key, and
//! each removed key's tombstone, until compaction drops them. A head is
//! overwritten by every append and a held entry removed when its gap closes,
//! so reading a head, or counting a signer's held entries with a scan, costs
//! more the busier the signer (measured: the ingest rate fell by half over a
//! million verdicts, a third of the writer's time in those scans). Loaded at
//! open; moved by the single writer after each transaction commits.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A head: seq and verdict id.
pub(crate) type Head = (u64, [u8; 32]);

#[derive(Default, Clone, Copy)]
struct Signer {
    head: Option<Head>,
    pending: u64,
}

#[derive(Default)]
pub(crate) struct Heads(RwLock<HashMap<[u8; 32], Signer>>);

impl Heads {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<[u8; 32], Signer>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<[u8; 32], Signer>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `signer`'s head, if it has a log.
    pub(crate) fn head(&self, signer: &[u8; 32]) -> Option<Head> {
        self.read().get(signer).and_then(|s| s.head)
    }

    /// How many of `signer`'s entries are held.
    pub(crate) fn pending(&self, signer: &[u8; 32]) -> u64 {
        self.read().get(signer).map_or(0, |s| s.pending)
    }

    /// How many entries are held in all.
    pub(crate) fn pending_total(&self) -> u64 {
        self.read().values().map(|s| s.pending).sum()
    }

    /// Records heads a committed transaction wrote.
    pub(crate) fn moved(&self, heads: impl IntoIterator<Item = ([u8; 32], Head)>) {
        let mut map = self.write();
        for (signer, head) in heads {
            map.entry(signer).or_default().head = Some(head);
        }
    }

    /// Records how many entries signers hold after a committed transaction.
    pub(crate) fn held(&self, counts: impl IntoIterator<Item = ([u8; 32], u64)>) {
        let mut map = self.write();
        for (signer, n) in counts {
            map.entry(signer).or_default().pending = n;
        }
    }
}
