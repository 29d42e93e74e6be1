//! Segment files in memory: the segments of a temporary store, and the
//! test double that shows what a power cut leaves behind.
//!
//! Each file keeps what a reader sees and, apart, what is durable: the
//! bytes as of its last `sync`. [`MemIo::power_cut`] returns the disk as it
//! would be found after losing power now: every file back to its durable
//! bytes, optionally with a torn piece of the first write that was not yet
//! synced. [`MemIo::fail_after`] makes every operation from the `n`th on fail,
//! as a process sees nothing more once the power is gone.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::io::{Kind, SegmentFile, SegmentIo};

/// Segment files in memory.
#[derive(Default)]
pub struct MemIo {
    files: Mutex<BTreeMap<(u32, Kind), Arc<MemFile>>>,
    /// Operations left before the power goes (`u64::MAX`: never).
    budget: Arc<AtomicU64>,
}

#[derive(Default)]
struct MemFile {
    state: Mutex<FileState>,
    budget: Arc<AtomicU64>,
}

#[derive(Default, Clone)]
struct FileState {
    /// What readers see.
    data: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Writes since the last sync, in order.
    unsynced: Vec<(u64, Vec<u8>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spend(budget: &AtomicU64) -> io::Result<()> {
    let ok = budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
            u64::MAX => Some(u64::MAX),
            0 => None,
            b => Some(b - 1),
        })
        .is_ok();
    if ok {
        Ok(())
    } else {
        Err(io::Error::other("power cut (simulated)"))
    }
}

fn write_into(data: &mut Vec<u8>, off: u64, buf: &[u8]) {
    let off = off as usize;
    if data.len() < off + buf.len() {
        data.resize(off + buf.len(), 0);
    }
    data[off..off + buf.len()].copy_from_slice(buf);
}

impl MemIo {
    /// Empty, and never failing.
    pub fn new() -> MemIo {
        MemIo {
            files: Mutex::default(),
            budget: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Empty, losing power together with `other` (one budget of
    /// operations for both).
    pub fn sharing_power_with(other: &MemIo) -> MemIo {
        MemIo {
            files: Mutex::default(),
            budget: other.budget.clone(),
        }
    }

    /// From now on, operations after the next `n` fail.
    pub fn fail_after(&self, n: u64) {
        self.budget.store(n, Ordering::SeqCst);
    }

    /// The disk as found after a power cut now: each file's durable bytes;
    /// with `torn`, plus the first `torn` bytes of its first unsynced write.
    pub fn power_cut(&self, torn: usize) -> MemIo {
        let files = lock(&self.files);
        let out = MemIo::new();
        {
            let mut copy = lock(&out.files);
            for (n, f) in files.iter() {
                let s = lock(&f.state);
                let mut data = s.durable.clone();
                if let Some((off, bytes)) = s.unsynced.first() {
                    let piece = &bytes[..torn.min(bytes.len())];
                    write_into(&mut data, *off, piece);
                }
                copy.insert(
                    *n,
                    Arc::new(MemFile {
                        state: Mutex::new(FileState {
                            durable: data.clone(),
                            data,
                            unsynced: Vec::new(),
                        }),
                        budget: out.budget.clone(),
                    }),
                );
            }
        }
        out
    }
}

impl SegmentIo for MemIo {
    fn list(&self) -> io::Result<Vec<(u32, Kind)>> {
        Ok(lock(&self.files).keys().copied().collect())
    }

    fn open(&self, n: u32, kind: Kind) -> io::Result<Arc<dyn SegmentFile>> {
        match lock(&self.files).get(&(n, kind)) {
            Some(f) => Ok(f.clone()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no segment {n}"),
            )),
        }
    }

    fn create(&self, n: u32, kind: Kind, header: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        spend(&self.budget)?;
        let f = Arc::new(MemFile {
            state: Mutex::new(FileState {
                data: header.to_vec(),
                durable: header.to_vec(),
                unsynced: Vec::new(),
            }),
            budget: self.budget.clone(),
        });
        lock(&self.files).insert((n, kind), f.clone());
        Ok(f)
    }

    fn remove(&self, n: u32, kind: Kind) -> io::Result<()> {
        spend(&self.budget)?;
        lock(&self.files).remove(&(n, kind));
        Ok(())
    }
}

impl SegmentFile for MemFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let s = lock(&self.state);
        let end = (off as usize).checked_add(buf.len());
        match end.and_then(|end| s.data.get(off as usize..end)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the segment",
            )),
        }
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        spend(&self.budget)?;
        let mut s = lock(&self.state);
        write_into(&mut s.data, off, buf);
        s.unsynced.push((off, buf.to_vec()));
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        spend(&self.budget)?;
        let mut s = lock(&self.state);
        s.durable = s.data.clone();
        s.unsynced.clear();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(lock(&self.state).data.len() as u64)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        spend(&self.budget)?;
        let mut s = lock(&self.state);
        s.data.truncate(len as usize);
        s.durable = s.data.clone();
        s.unsynced.clear();
        Ok(())
    }
}
