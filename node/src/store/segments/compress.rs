//! Full segments compressed block by block (`.zseg`): the segment's bytes,
//! header included, cut into blocks of [`BLOCK`] bytes, each one zstd frame,
//! so that a record is read by decompressing only the one or two blocks it
//! lies in, at the offsets its pointer already names.
//!
//! File: a 16-byte header (`VOUCHZSG`, format 1, segment number), the
//! frames, a table of the file offset of each frame and of the end of the
//! last (u64 BE each), and a 24-byte trailer: the raw segment's length (u64
//! BE), the block size (u32 BE), the number of blocks (u32 BE), the CRC-32
//! of the table (u32 BE), `VZND`.

use std::sync::Arc;

use super::io::{Kind, SegmentFile};
use super::{Compressed, Seg, Segments, StoreError, io_error, lock};

/// Bytes of raw segment per compressed block.
pub const BLOCK: u32 = 16 << 10;
const MAGIC: &[u8; 8] = b"VOUCHZSG";
const VERSION: u32 = 1;
const TRAILER_MAGIC: &[u8; 4] = b"VZND";
const TRAILER_LEN: u64 = 24;
pub(crate) const HEADER_LEN: u64 = 16;

/// The header of compressed segment `n`.
pub(crate) fn header(n: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&n.to_be_bytes());
    h
}

/// What follows the header for a raw segment's bytes `raw`.
pub(crate) fn compress(raw: &[u8], level: i32) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len() / 3);
    let mut table = Vec::with_capacity(raw.len() / BLOCK as usize + 2);
    for block in raw.chunks(BLOCK as usize) {
        table.push(HEADER_LEN + out.len() as u64);
        out.extend(zstd::bulk::compress(block, level).map_err(|e| e.to_string())?);
    }
    table.push(HEADER_LEN + out.len() as u64);
    let table: Vec<u8> = table.iter().flat_map(|o| o.to_be_bytes()).collect();
    let blocks = u32::try_from(table.len() / 8 - 1).map_err(|e| e.to_string())?;
    out.extend_from_slice(&table);
    out.extend_from_slice(&(raw.len() as u64).to_be_bytes());
    out.extend_from_slice(&BLOCK.to_be_bytes());
    out.extend_from_slice(&blocks.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&table).to_be_bytes());
    out.extend_from_slice(TRAILER_MAGIC);
    Ok(out)
}

/// Where the blocks of a compressed segment are.
pub(crate) struct Index {
    /// File offset of each frame, then of the end of the last.
    table: Vec<u64>,
    raw_len: u64,
    block: u64,
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Index {
    /// Reads and checks the header, trailer and table of compressed segment
    /// `n`.
    pub(crate) fn load(f: &dyn SegmentFile, n: u32) -> Result<Index, String> {
        let size = f.size().map_err(|e| e.to_string())?;
        if size < HEADER_LEN + TRAILER_LEN + 8 {
            return Err(format!("{size} bytes, too short"));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        f.read_at(&mut h, 0).map_err(|e| e.to_string())?;
        if h != header(n) {
            return Err("wrong header".into());
        }
        let mut t = [0u8; TRAILER_LEN as usize];
        f.read_at(&mut t, size - TRAILER_LEN)
            .map_err(|e| e.to_string())?;
        if &t[20..24] != TRAILER_MAGIC {
            return Err("no trailer".into());
        }
        let raw_len = u64::from_be_bytes(t[..8].try_into().map_err(|_| "trailer")?);
        let block = u64::from(word(&t, 8));
        let blocks = u64::from(word(&t, 12));
        if block == 0 || blocks != raw_len.div_ceil(block) {
            return Err(format!(
                "{blocks} blocks of {block} bytes for {raw_len} bytes"
            ));
        }
        let table_len = (blocks + 1) * 8;
        let table_at = (size - TRAILER_LEN)
            .checked_sub(table_len)
            .filter(|at| *at >= HEADER_LEN)
            .ok_or("table runs past the header")?;
        let mut raw_table = vec![0u8; table_len as usize];
        f.read_at(&mut raw_table, table_at)
            .map_err(|e| e.to_string())?;
        if crc32fast::hash(&raw_table) != word(&t, 16) {
            return Err("table fails its checksum".into());
        }
        let table: Vec<u64> = raw_table
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let ordered = table.windows(2).all(|w| w[0] <= w[1]);
        if table.first() != Some(&HEADER_LEN) || table.last() != Some(&table_at) || !ordered {
            return Err("table does not describe the frames".into());
        }
        Ok(Index {
            table,
            raw_len,
            block,
        })
    }

    /// The raw segment's length.
    pub(crate) fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// `len` bytes of the raw segment at `off`, from the blocks they lie in.
    pub(crate) fn read(&self, f: &dyn SegmentFile, off: u64, len: u64) -> Result<Vec<u8>, String> {
        let span = self.span(off, len)?;
        let plain = self.blocks(f, span)?;
        Ok(span.slice(&plain, self.block, off, len).to_vec())
    }

    /// The blocks that hold `len` bytes at `off`.
    pub(crate) fn span(&self, off: u64, len: u64) -> Result<Span, String> {
        if len == 0 || off.checked_add(len).is_none_or(|end| end > self.raw_len) {
            return Err(format!(
                "{len} bytes at {off} are outside {} bytes",
                self.raw_len
            ));
        }
        Ok(Span {
            first: (off / self.block) as usize,
            last: ((off + len - 1) / self.block) as usize,
        })
    }

    /// The raw bytes of the blocks of `span`, decompressed.
    pub(crate) fn blocks(&self, f: &dyn SegmentFile, span: Span) -> Result<Vec<u8>, String> {
        let Span { first, last } = span;
        let start = self.table[first];
        let mut comp = vec![0u8; (self.table[last + 1] - start) as usize];
        f.read_at(&mut comp, start).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity((last - first + 1) * self.block as usize);
        for b in first..=last {
            let frame =
                &comp[(self.table[b] - start) as usize..(self.table[b + 1] - start) as usize];
            let expect = self.block.min(self.raw_len - b as u64 * self.block) as usize;
            let plain = decompress(frame, expect).map_err(|e| format!("block {b}: {e}"))?;
            if plain.len() != expect {
                return Err(format!(
                    "block {b} holds {} bytes, not {expect}",
                    plain.len()
                ));
            }
            out.extend_from_slice(&plain);
        }
        Ok(out)
    }

    /// Bytes of raw segment per block.
    pub(crate) fn block(&self) -> u64 {
        self.block
    }
}

/// A run of blocks of one compressed segment, first to last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: usize,
    pub(crate) last: usize,
}

impl Span {
    /// Whether `other`'s blocks are all in this span.
    pub(crate) fn covers(self, other: Span) -> bool {
        self.first <= other.first && other.last <= self.last
    }

    /// The `len` bytes at segment offset `off` out of this span's
    /// decompressed bytes (`plain`), which must cover them.
    pub(crate) fn slice(self, plain: &[u8], block: u64, off: u64, len: u64) -> &[u8] {
        let at = (off - self.first as u64 * block) as usize;
        &plain[at..at + len as usize]
    }
}

thread_local! {
    /// A decompression context per thread, made once: making one costs
    /// more than decompressing a 16 KiB block (13% of a lookup's time).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses one frame of at most `capacity` bytes.
fn decompress(frame: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let mut d = match slot.take() {
            Some(d) => d,
            None => zstd::bulk::Decompressor::new()?,
        };
        let out = d.decompress(frame, capacity);
        *slot = Some(d);
        out
    })
}

impl Segments {
    /// Compresses every full segment not yet compressed (zstd at `level`),
    /// one at a time: the compressed copy is written and synced, read back
    /// and compared, and only then is the raw file removed. Readers switch
    /// over at once; a crash at any point leaves one complete copy.
    pub fn compress_sealed(&self, level: i32) -> Result<Compressed, StoreError> {
        let _one = lock(&self.compacting);
        let sealed = self.end().seg;
        let mut done = Compressed::default();
        for n in 0..sealed {
            let Seg::Raw(_) = self.seg(n)? else {
                continue;
            };
            let raw = self.whole(n, None)?;
            let body = compress(&raw, level).map_err(StoreError::Segment)?;
            let f = self
                .io
                .create(n, Kind::Zstd, &header(n))
                .map_err(|e| io_error(&format!("creating compressed segment {n}"), e))?;
            f.write_at(&body, HEADER_LEN)
                .map_err(|e| io_error(&format!("writing compressed segment {n}"), e))?;
            f.sync()
                .map_err(|e| io_error(&format!("syncing compressed segment {n}"), e))?;
            let index = Index::load(f.as_ref(), n)
                .map_err(|e| StoreError::Segment(format!("compressed segment {n}: {e}")))?;
            let back = index
                .read(f.as_ref(), 0, index.raw_len())
                .map_err(|e| StoreError::Segment(format!("compressed segment {n}: {e}")))?;
            if back != raw {
                return Err(StoreError::Segment(format!(
                    "compressed segment {n} does not read back as written"
                )));
            }
            self.put(n, Seg::Zstd(f, Arc::new(index)));
            self.io
                .remove(n, Kind::Raw)
                .map_err(|e| io_error(&format!("removing raw segment {n}"), e))?;
            done.segments += 1;
            done.before += raw.len() as u64;
            done.after += HEADER_LEN + body.len() as u64;
            tracing::info!(
                segment = n,
                ratio = (HEADER_LEN + body.len() as u64) as f64 / raw.len() as f64,
                "compressed a full segment"
            );
        }
        Ok(done)
    }
}
