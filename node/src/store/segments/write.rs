//! Writing records: a group commit stages them, writes and syncs them
//! before its index transaction commits, and moves the durable end once it
//! has.

use std::sync::MutexGuard;

use super::io::Kind;
use super::{
    End, HEADER_LEN, MAX_RECORD, Ptr, RECORD_HEAD, Seg, Segments, StoreError, header, io_error,
    lock, record_head,
};

impl Segments {
    /// Holds the writer's place until dropped.
    pub(crate) fn writer(&self) -> WriteGuard<'_> {
        WriteGuard {
            segments: self,
            end: lock(&self.writer),
        }
    }
}

/// Records staged by one attempt of a write, not yet on disk.
pub(crate) struct Staging {
    start: End,
    end: End,
    /// Per segment touched: its number, the offset of the first staged
    /// byte, the staged bytes.
    runs: Vec<(u32, u32, Vec<u8>)>,
    segment_len: u32,
}

impl Staging {
    /// Stages `bytes` as the next record.
    pub(crate) fn stage(&mut self, bytes: &[u8]) -> Result<Ptr, StoreError> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD)
            .ok_or_else(|| StoreError::Segment(format!("record of {} bytes", bytes.len())))?;
        let size = RECORD_HEAD + len;
        if self.end.off > HEADER_LEN && self.end.off.saturating_add(size) > self.segment_len {
            self.end = End {
                seg: self.end.seg + 1,
                off: HEADER_LEN,
            };
        }
        if self.runs.last().is_none_or(|r| r.0 != self.end.seg) {
            self.runs.push((self.end.seg, self.end.off, Vec::new()));
        }
        let ptr = Ptr {
            seg: self.end.seg,
            off: self.end.off,
            len,
        };
        if let Some(run) = self.runs.last_mut() {
            run.2.extend_from_slice(&record_head(bytes));
            run.2.extend_from_slice(bytes);
        }
        self.end.off += size;
        Ok(ptr)
    }

    /// The bytes of a record staged here, if `ptr` names one.
    pub(crate) fn staged(&self, ptr: Ptr) -> Option<&[u8]> {
        let run = self
            .runs
            .iter()
            .find(|r| r.0 == ptr.seg && ptr.off >= r.1)?;
        let at = (ptr.off - run.1 + RECORD_HEAD) as usize;
        run.2.get(at..at + ptr.len as usize)
    }

    /// Where the store ends once these records are written.
    pub(crate) fn end(&self) -> End {
        self.end
    }

    /// Whether anything is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The writer's hold on the segments, for the length of one write.
pub(crate) struct WriteGuard<'a> {
    segments: &'a Segments,
    end: MutexGuard<'a, End>,
}

impl WriteGuard<'_> {
    /// An empty staging area at the durable end.
    pub(crate) fn staging(&self) -> Staging {
        Staging {
            start: *self.end,
            end: *self.end,
            runs: Vec::new(),
            segment_len: self.segments.segment_len,
        }
    }

    /// Writes and syncs the staged records (creating segments as needed).
    /// The durable end moves only with [`WriteGuard::committed`], once the
    /// index entries are committed: until then a retry writes over them.
    pub(crate) fn write(&self, staging: &Staging) -> Result<(), StoreError> {
        for (seg, off, bytes) in &staging.runs {
            let file = if *seg == self.end.seg {
                self.segments.raw(*seg)?
            } else {
                let f = self
                    .segments
                    .io
                    .create(*seg, Kind::Raw, &header(*seg))
                    .map_err(|e| io_error(&format!("creating segment {seg}"), e))?;
                self.segments.put(*seg, Seg::Raw(f.clone()));
                f
            };
            file.write_at(bytes, u64::from(*off))
                .map_err(|e| io_error(&format!("writing segment {seg}"), e))?;
            file.sync()
                .map_err(|e| io_error(&format!("syncing segment {seg}"), e))?;
        }
        // A segment this write fills is cut to its last record, so that an
        // earlier attempt's longer tail never stays behind in it.
        if staging.end.seg > self.end.seg {
            let seg = self.end.seg;
            let len = match staging.runs.first() {
                Some((s, off, bytes)) if *s == seg => u64::from(*off) + bytes.len() as u64,
                _ => u64::from(self.end.off),
            };
            self.segments
                .raw(seg)?
                .truncate(len)
                .map_err(|e| io_error(&format!("sealing segment {seg}"), e))?;
        }
        Ok(())
    }

    /// Moves the durable end past the staged records, whose index entries
    /// are now committed.
    pub(crate) fn committed(&mut self, staging: &Staging) {
        *self.end = staging.end;
    }
}
