//! Where segment files live: the real directory, or memory. The store only
//! sees these two traits, so a test can put a power cut between any two
//! writes (see `mem.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::Arc;

/// One segment file.
pub trait SegmentFile: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `off`.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Writes all of `buf` at `off`.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Cuts the file to `len` bytes and makes that durable.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// The two forms of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Records as written (`.seg`).
    Raw,
    /// A full segment compressed block by block (`.zseg`).
    Zstd,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Raw => ".seg",
            Kind::Zstd => ".zseg",
        }
    }
}

/// The set of segment files, by number and kind.
pub trait SegmentIo: Send + Sync {
    /// The segment files present.
    fn list(&self) -> io::Result<Vec<(u32, Kind)>>;
    /// Opens segment file `n` of `kind`, which exists.
    fn open(&self, n: u32, kind: Kind) -> io::Result<Arc<dyn SegmentFile>>;
    /// Creates segment file `n` of `kind` holding `header` (replacing any
    /// such file), durable with its directory entry when this returns.
    fn create(&self, n: u32, kind: Kind, header: &[u8]) -> io::Result<Arc<dyn SegmentFile>>;
    /// Removes segment file `n` of `kind`, durably.
    fn remove(&self, n: u32, kind: Kind) -> io::Result<()>;
}

/// Segment files in a directory, named `NNNNNNNN.seg` (and `NNNNNNNN.zseg`
/// once compressed).
pub struct DiskIo {
    dir: PathBuf,
}

impl DiskIo {
    /// Segments in `dir`, created if missing.
    pub fn new(dir: PathBuf) -> io::Result<DiskIo> {
        std::fs::create_dir_all(&dir)?;
        Ok(DiskIo { dir })
    }

    fn path(&self, n: u32, kind: Kind) -> PathBuf {
        self.dir.join(format!("{n:08}{}", kind.suffix()))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl SegmentIo for DiskIo {
    fn list(&self) -> io::Result<Vec<(u32, Kind)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            for kind in [Kind::Raw, Kind::Zstd] {
                if let Some(n) = name
                    .strip_suffix(kind.suffix())
                    .filter(|n| n.len() == 8)
                    .and_then(|n| n.parse().ok())
                {
                    out.push((n, kind));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn open(&self, n: u32, kind: Kind) -> io::Result<Arc<dyn SegmentFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(n, kind))?;
        Ok(Arc::new(DiskFile(f)))
    }

    fn create(&self, n: u32, kind: Kind, header: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(n, kind))?;
        f.write_all_at(header, 0)?;
        f.sync_all()?;
        self.sync_dir()?;
        Ok(Arc::new(DiskFile(f)))
    }

    fn remove(&self, n: u32, kind: Kind) -> io::Result<()> {
        std::fs::remove_file(self.path(n, kind))?;
        self.sync_dir()
    }
}

struct DiskFile(File);

impl SegmentFile for DiskFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, off)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.0.write_all_at(buf, off)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.sync_all()
    }
}
