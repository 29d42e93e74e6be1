//! What is installed on a system, and the sha256 of each installed
//! package's artifact, read from the package managers' own files under a
//! root directory. Everything read is size-limited; a malformed entry is
//! skipped and counted, never fatal.

mod decompress;
pub(crate) mod dpkg;
pub(crate) mod pacman;

use std::path::{Path, PathBuf};

use serde::Serialize;
use vouch_attest::Digest;

/// One installed package.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Installed {
    /// `debian` or `archlinux`.
    pub(crate) distribution: &'static str,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) architecture: String,
    /// The artifact's sha256, when it could be found.
    pub(crate) sha256: Option<Digest>,
    /// Where the sha256 came from (an index or a hashed file).
    pub(crate) hash_from: Option<String>,
}

/// A system's packages and what could not be read.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub(crate) packages: Vec<Installed>,
    /// Entries or files skipped, with why.
    pub(crate) skipped: Vec<String>,
}

/// Every package installed under `root`, by dpkg and by pacman.
pub(crate) fn inventory(root: &Path) -> Inventory {
    let mut inv = Inventory::default();
    if root.join("var/lib/dpkg/status").exists() {
        dpkg::read(root, &mut inv);
    }
    if root.join("var/lib/pacman/local").is_dir() {
        pacman::read(root, &mut inv);
    }
    inv
}

/// `rel` (an absolute path inside the system) under `root`.
pub(crate) fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// The sha256 of a file, streaming.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<Digest> {
    Digest::of_reader(std::fs::File::open(path)?)
}
