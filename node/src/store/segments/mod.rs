//! Append-only segment files holding verdict envelopes; the keyspace keeps
//! only the index entries that point into them (`spec/store.md`).
//!
//! A segment starts with a 16-byte header (`VOUCHSEG`, format, number) and
//! holds records one after another: length (u32 BE), CRC-32 of the bytes
//! (u32 BE), the bytes. A [`Ptr`] names a record by segment, offset and
//! length. The store's durable end — the segment being written and how far
//! — is kept in the keyspace, in the same transaction as the index entries; the
//! records of a group commit are written and synced before that transaction
//! is committed, so no index entry can point past what is durable. At open,
//! whatever lies past the end (a torn or unacknowledged tail, a segment
//! started but never committed) is cut off.

mod compress;
mod io;
mod mem;
mod write;

pub use compress::BLOCK;
pub use io::{DiskIo, Kind, SegmentFile, SegmentIo};
pub use mem::MemIo;
pub(crate) use write::{Staging, WriteGuard};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::StoreError;

/// Segment header: magic, format version, segment number, reserved.
pub(crate) const HEADER_LEN: u32 = 16;
const MAGIC: &[u8; 8] = b"VOUCHSEG";
const VERSION: u32 = 1;
/// Length and checksum before each record's bytes.
pub(crate) const RECORD_HEAD: u32 = 8;
/// Largest record (an envelope is at most 64 KiB; evidence is larger).
pub(crate) const MAX_RECORD: u32 = 80 << 20;
/// A segment is full once it holds this many bytes.
pub const SEGMENT_LEN: u32 = 64 << 20;

/// Where a record is: segment, offset of its record head, length of its
/// bytes. Stored as 12 bytes, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ptr {
    /// Segment number.
    pub seg: u32,
    /// Offset of the record head in the segment.
    pub off: u32,
    /// Length of the record's bytes.
    pub len: u32,
}

impl Ptr {
    /// The stored form.
    pub fn encode(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.seg.to_be_bytes());
        b[4..8].copy_from_slice(&self.off.to_be_bytes());
        b[8..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Parses the stored form.
    pub fn decode(b: &[u8]) -> Option<Ptr> {
        let b: &[u8; 12] = b.try_into().ok()?;
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Ptr {
            seg: word(0),
            off: word(4),
            len: word(8),
        })
    }
}

/// The durable end: the segment being written and the offset past its last
/// committed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// The segment being written.
    pub seg: u32,
    /// Bytes of it committed.
    pub off: u32,
}

impl End {
    /// A new store's end.
    pub const START: End = End {
        seg: 0,
        off: HEADER_LEN,
    };

    /// The stored form (in the meta tree).
    pub fn encode(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.seg.to_be_bytes());
        b[4..].copy_from_slice(&self.off.to_be_bytes());
        b
    }

    /// Parses the stored form.
    pub fn decode(b: &[u8]) -> Option<End> {
        let b: &[u8; 8] = b.try_into().ok()?;
        Some(End {
            seg: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            off: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

fn header(n: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&n.to_be_bytes());
    h
}

/// The record head of `bytes`.
pub(crate) fn record_head(bytes: &[u8]) -> [u8; RECORD_HEAD as usize] {
    let mut h = [0u8; RECORD_HEAD as usize];
    h[..4].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(bytes).to_be_bytes());
    h
}

fn damaged(detail: String) -> StoreError {
    StoreError::Damaged {
        tree: "segments",
        detail,
    }
}

fn io_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Segment(format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The segment files of one store.
pub struct Segments {
    io: Arc<dyn SegmentIo>,
    /// The durable end; held for the whole of a write.
    writer: Mutex<End>,
    files: RwLock<HashMap<u32, Seg>>,
    /// When a segment counts as full (smaller in tests).
    segment_len: u32,
    /// Held while full segments are compressed.
    compacting: Mutex<()>,
}

/// One open segment file.
#[derive(Clone)]
enum Seg {
    /// Records as written.
    Raw(Arc<dyn SegmentFile>),
    /// A full segment compressed block by block.
    Zstd(Arc<dyn SegmentFile>, Arc<compress::Index>),
}

/// What [`Segments::compress_sealed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compressed {
    /// Segments compressed.
    pub segments: u32,
    /// Their bytes before.
    pub before: u64,
    /// Their bytes after.
    pub after: u64,
}

impl Segments {
    /// Opens the segments of a store whose durable end is `end` (`None`: a
    /// new store), cutting off whatever lies past it.
    pub fn open(
        io: Arc<dyn SegmentIo>,
        end: Option<End>,
        segment_len: u32,
    ) -> Result<Segments, StoreError> {
        let end = end.unwrap_or(End::START);
        let present = io.list().map_err(|e| io_error("listing segments", e))?;
        let has = |n: u32, kind: Kind| present.contains(&(n, kind));
        for (n, kind) in present.iter().filter(|(n, _)| *n > end.seg) {
            tracing::warn!(
                segment = n,
                "removing a segment started but never committed"
            );
            io.remove(*n, *kind)
                .map_err(|e| io_error(&format!("removing segment {n}"), e))?;
        }
        let mut files = HashMap::new();
        for n in 0..end.seg {
            // The raw file is removed only once its compressed copy is
            // complete and synced: with both present, the copy may be torn.
            if has(n, Kind::Zstd) && has(n, Kind::Raw) {
                tracing::warn!(
                    segment = n,
                    "removing a compressed copy whose raw segment is still there"
                );
                io.remove(n, Kind::Zstd)
                    .map_err(|e| io_error(&format!("removing segment {n}"), e))?;
            }
            let seg = if has(n, Kind::Raw) {
                let f = io
                    .open(n, Kind::Raw)
                    .map_err(|e| io_error(&format!("opening segment {n}"), e))?;
                check_header(n, f.as_ref())?;
                Seg::Raw(f)
            } else if has(n, Kind::Zstd) {
                let f = io
                    .open(n, Kind::Zstd)
                    .map_err(|e| io_error(&format!("opening segment {n}"), e))?;
                let index = compress::Index::load(f.as_ref(), n)
                    .map_err(|e| damaged(format!("compressed segment {n}: {e}")))?;
                Seg::Zstd(f, Arc::new(index))
            } else {
                return Err(damaged(format!(
                    "segment {n} is missing (the store's end is in segment {})",
                    end.seg
                )));
            };
            files.insert(n, seg);
        }
        if has(end.seg, Kind::Zstd) {
            io.remove(end.seg, Kind::Zstd)
                .map_err(|e| io_error(&format!("removing segment {}", end.seg), e))?;
        }
        let active = if has(end.seg, Kind::Raw) {
            let f = io
                .open(end.seg, Kind::Raw)
                .map_err(|e| io_error(&format!("opening segment {}", end.seg), e))?;
            let len = f
                .size()
                .map_err(|e| io_error(&format!("segment {}", end.seg), e))?;
            if len < u64::from(end.off) {
                return Err(damaged(format!(
                    "segment {} holds {len} bytes, but {} were committed",
                    end.seg, end.off
                )));
            }
            if len > u64::from(end.off) {
                tracing::warn!(
                    segment = end.seg,
                    cut = len - u64::from(end.off),
                    "cutting an uncommitted tail off the segment being written"
                );
                f.truncate(u64::from(end.off))
                    .map_err(|e| io_error(&format!("truncating segment {}", end.seg), e))?;
            }
            f
        } else if end.off == HEADER_LEN {
            io.create(end.seg, Kind::Raw, &header(end.seg))
                .map_err(|e| io_error(&format!("creating segment {}", end.seg), e))?
        } else {
            return Err(damaged(format!(
                "segment {} is missing, but {} bytes of it were committed",
                end.seg, end.off
            )));
        };
        check_header(end.seg, active.as_ref())?;
        files.insert(end.seg, Seg::Raw(active));
        Ok(Segments {
            io,
            writer: Mutex::new(end),
            files: RwLock::new(files),
            segment_len,
            compacting: Mutex::new(()),
        })
    }

    /// Appends `records` and makes them durable, outside any index
    /// transaction: for migration and for tools. Where each one is.
    pub fn append(&self, records: &[&[u8]]) -> Result<Vec<Ptr>, StoreError> {
        let mut writer = self.writer();
        let mut staging = writer.staging();
        let ptrs = records
            .iter()
            .map(|r| staging.stage(r))
            .collect::<Result<Vec<_>, _>>()?;
        writer.write(&staging)?;
        writer.committed(&staging);
        Ok(ptrs)
    }

    /// The durable end.
    pub fn end(&self) -> End {
        *lock(&self.writer)
    }

    fn put(&self, n: u32, seg: Seg) {
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(n, seg);
    }

    fn seg(&self, n: u32) -> Result<Seg, StoreError> {
        self.files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&n)
            .cloned()
            .ok_or_else(|| damaged(format!("no segment {n}")))
    }

    /// The raw file of segment `n` (the one being written, or one this
    /// write fills).
    fn raw(&self, n: u32) -> Result<Arc<dyn SegmentFile>, StoreError> {
        match self.seg(n)? {
            Seg::Raw(f) => Ok(f),
            Seg::Zstd(..) => Err(damaged(format!("segment {n} is compressed"))),
        }
    }

    /// The bytes of the record at `ptr`, checked against its record head.
    pub fn read(&self, ptr: Ptr) -> Result<Vec<u8>, StoreError> {
        self.read_many(std::slice::from_ref(&ptr))?
            .pop()
            .ok_or_else(|| damaged(format!("record {ptr:?}: nothing read")))
    }

    /// The bytes of the records at `ptrs`, in the order given, each checked
    /// against its record head. Records are read in segment order, and a
    /// compressed block is decompressed once for all the records in it
    /// (the verdicts of one artifact, signed about the same time, mostly
    /// share a block).
    pub fn read_many(&self, ptrs: &[Ptr]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut order: Vec<usize> = (0..ptrs.len()).collect();
        order.sort_unstable_by_key(|&i| ptrs[i]);
        let mut out = vec![Vec::new(); ptrs.len()];
        // The last blocks decompressed: segment, span, bytes.
        let mut last: Option<(u32, compress::Span, Vec<u8>)> = None;
        for i in order {
            let ptr = ptrs[i];
            if ptr.len > MAX_RECORD {
                return Err(damaged(format!(
                    "pointer {ptr:?} names an oversized record"
                )));
            }
            let (off, size) = (u64::from(ptr.off), u64::from(RECORD_HEAD + ptr.len));
            let unreadable = |e: String| damaged(format!("record {ptr:?}: {e}"));
            let raw;
            let buf: &[u8] = match self.seg(ptr.seg)? {
                Seg::Raw(f) => {
                    let mut b = vec![0u8; size as usize];
                    f.read_at(&mut b, off)
                        .map_err(|e| unreadable(e.to_string()))?;
                    raw = b;
                    &raw
                }
                Seg::Zstd(f, index) => {
                    let span = index.span(off, size).map_err(unreadable)?;
                    let cached =
                        matches!(&last, Some((n, s, _)) if *n == ptr.seg && s.covers(span));
                    if !cached {
                        let plain = index.blocks(f.as_ref(), span).map_err(unreadable)?;
                        last = Some((ptr.seg, span, plain));
                    }
                    let (_, have, plain) = last
                        .as_ref()
                        .ok_or_else(|| unreadable("no block read".into()))?;
                    have.slice(plain, index.block(), off, size)
                }
            };
            let (head, bytes) = buf.split_at(RECORD_HEAD as usize);
            if head != record_head(bytes) {
                return Err(damaged(format!(
                    "record {ptr:?} fails its length or checksum"
                )));
            }
            out[i] = bytes.to_vec();
        }
        Ok(out)
    }

    /// The raw bytes of segment `n` up to `len` (all of it when `None`).
    fn whole(&self, n: u32, len: Option<u64>) -> Result<Vec<u8>, StoreError> {
        match self.seg(n)? {
            Seg::Raw(f) => {
                let len = match len {
                    Some(l) => l,
                    None => f.size().map_err(|e| io_error(&format!("segment {n}"), e))?,
                };
                let mut buf = vec![0u8; len as usize];
                f.read_at(&mut buf, 0)
                    .map_err(|e| damaged(format!("segment {n}: {e}")))?;
                Ok(buf)
            }
            Seg::Zstd(f, index) => index
                .read(f.as_ref(), 0, len.unwrap_or(index.raw_len()))
                .map_err(|e| damaged(format!("compressed segment {n}: {e}"))),
        }
    }

    /// Every committed record in order, each checked, to `visit`.
    pub fn scan(
        &self,
        mut visit: impl FnMut(Ptr, &[u8]) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let end = self.end();
        let mut n = 0u64;
        for seg in 0..=end.seg {
            let bytes = self.whole(seg, (seg == end.seg).then_some(u64::from(end.off)))?;
            if bytes.get(..HEADER_LEN as usize) != Some(&header(seg)[..]) {
                return Err(damaged(format!("segment {seg} has a wrong header")));
            }
            let len = bytes.len();
            let mut off = HEADER_LEN as usize;
            while off < len {
                let head = bytes.get(off..off + RECORD_HEAD as usize).ok_or_else(|| {
                    damaged(format!(
                        "segment {seg} at {off}: a record head runs past the end"
                    ))
                })?;
                let rlen = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                let body_at = off + RECORD_HEAD as usize;
                let body = bytes
                    .get(body_at..body_at + rlen as usize)
                    .filter(|_| rlen <= MAX_RECORD)
                    .ok_or_else(|| {
                        damaged(format!(
                            "segment {seg} at {off}: a record of {rlen} bytes runs past the end ({len})"
                        ))
                    })?;
                let ptr = Ptr {
                    seg,
                    off: off as u32,
                    len: rlen,
                };
                if head != record_head(body) {
                    return Err(damaged(format!(
                        "record {ptr:?} fails its length or checksum"
                    )));
                }
                visit(ptr, body)?;
                n += 1;
                off = body_at + rlen as usize;
            }
        }
        Ok(n)
    }

    /// Bytes in all segment files.
    pub fn size(&self) -> Result<u64, StoreError> {
        let end = self.end();
        let mut total = 0;
        for seg in 0..=end.seg {
            let f = match self.seg(seg)? {
                Seg::Raw(f) | Seg::Zstd(f, _) => f,
            };
            total += f
                .size()
                .map_err(|e| io_error(&format!("segment {seg}"), e))?;
        }
        Ok(total)
    }
}

fn check_header(n: u32, f: &dyn SegmentFile) -> Result<(), StoreError> {
    let mut h = [0u8; HEADER_LEN as usize];
    f.read_at(&mut h, 0)
        .map_err(|e| io_error(&format!("reading segment {n}'s header"), e))?;
    if h != header(n) {
        return Err(damaged(format!("segment {n} has a wrong header")));
    }
    Ok(())
}
