//! Migration of older store formats, run by `vouchd migrate` (an older
//! store is refused at open with a message naming it).
//!
//! Formats 1 to 3 were sled databases in the store directory itself; format
//! 4 keeps the same trees in a fjall keyspace under `index/`. A sled store
//! is first brought to format 3 within sled (`older.rs`), then every tree is
//! copied as it is. The keyspace is started afresh on each run and its
//! format mark written last, once everything is durable; only then are
//! sled's files removed. So a migration cut short at any point is simply
//! run again: before the mark it starts over, after it only the removal is
//! left.
//!
//! The segment files (`segments/`, `evidence/`) are the same in formats 3
//! and 4 and stay where they are.

mod older;

use std::path::Path;
use std::sync::Arc;

use super::kv;
use super::segments::DiskIo;
use super::{StoreError, index_dir, keys};

/// The files sled keeps in a store directory.
const SLED_FILES: [&str; 3] = ["conf", "db", "blobs"];

/// Entries copied per transaction.
const COPY_CHUNK: usize = 4096;

/// What `vouchd migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The format the store had.
    pub from: String,
    /// Verdicts the store holds.
    pub verdicts: u64,
}

/// Whether `dir` holds a store of an older format (a sled database), and
/// which one.
pub(crate) fn old_format(dir: &Path) -> Result<Option<String>, StoreError> {
    if !is_sled(dir) {
        return Ok(None);
    }
    Ok(Some(sled_format(&older::open_sled(dir)?)?.unwrap_or_else(
        || "(a sled database without a format mark)".to_string(),
    )))
}

/// The format mark of a sled store.
fn sled_format(db: &sled::Db) -> Result<Option<String>, StoreError> {
    let found = db.open_tree(keys::META)?.get(keys::META_FORMAT)?;
    Ok(found.map(|f| String::from_utf8_lossy(&f).into_owned()))
}

fn is_sled(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

impl super::Store {
    /// Converts the store in `dir` to this build's format. `None` when it
    /// already has it.
    pub fn migrate(dir: &Path) -> Result<Option<Migrated>, StoreError> {
        if !dir.exists() {
            return Err(StoreError::NoStore {
                path: dir.display().to_string(),
            });
        }
        if !is_sled(dir) {
            // Opening checks the format mark.
            super::Store::open(dir)?;
            return Ok(None);
        }
        let db = older::open_sled(dir)?;
        let Some(found) = sled_format(&db)? else {
            return Err(StoreError::Format {
                path: dir.display().to_string(),
                found: "(no format mark)".into(),
                expected: keys::FORMAT,
            });
        };
        if found == keys::FORMAT_V1 {
            older::v1_to_v2(&db)?;
        }
        if found == keys::FORMAT_V1 || found == keys::FORMAT_V2 {
            let io = DiskIo::new(dir.join("segments"))
                .map_err(|e| StoreError::Segment(format!("{}: {e}", dir.display())))?;
            older::v2_to_v3(&db, Arc::new(io), super::evidence_io(dir)?)?;
        } else if found != keys::FORMAT_V3 {
            return Err(StoreError::Format {
                path: dir.display().to_string(),
                found,
                expected: keys::FORMAT,
            });
        }
        let verdicts = v3_to_v4(&db, dir)?;
        drop(db);
        remove_sled(dir)?;
        Ok(Some(Migrated {
            from: found,
            verdicts,
        }))
    }
}

/// Copies every tree of a format-3 sled database into a fresh keyspace
/// with format 4's mark. Returns the verdicts stored. A keyspace that
/// already has the mark (a run cut short after it) is kept.
fn v3_to_v4(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    let path = index_dir(dir);
    let mut ks = kv::Db::open(&path, dir)?;
    let mut meta = ks.tree(keys::META)?;
    if meta.get(keys::META_FORMAT)?.as_deref() != Some(keys::FORMAT.as_bytes()) {
        // Start over: the whole keyspace goes (its journal names trees, so
        // emptying them one by one could bring entries back at the next
        // open).
        drop((meta, ks));
        std::fs::remove_dir_all(&path)
            .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        ks = kv::Db::open(&path, dir)?;
        meta = ks.tree(keys::META)?;
        let mut entries = 0u64;
        for name in db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            // sled's own tree, and format 2's trees if a migration to 3
            // stopped before dropping them.
            if name == "__sled__default" || keys::REPLACED_BY_V3.contains(&name.as_str()) {
                continue;
            }
            let from = db.open_tree(&name)?;
            let to = ks.tree(&name)?;
            let mut chunk = Vec::with_capacity(COPY_CHUNK);
            let mut items = from.iter();
            loop {
                chunk.clear();
                for item in items.by_ref().take(COPY_CHUNK) {
                    chunk.push(item?);
                }
                if chunk.is_empty() {
                    break;
                }
                ks.transaction(|t| {
                    let to = t.on(&to);
                    for (k, v) in &chunk {
                        if !(name == keys::META && k.as_ref() == keys::META_FORMAT) {
                            to.insert(k, v)?;
                        }
                    }
                    Ok(())
                })?;
                entries += chunk.len() as u64;
            }
        }
        ks.persist()?;
        meta.insert(keys::META_FORMAT, keys::FORMAT.as_bytes())?;
        ks.persist()?;
        tracing::info!(
            entries,
            "migrated the store from {} to {}",
            keys::FORMAT_V3,
            keys::FORMAT
        );
    }
    Ok(keys::u64_value(meta.get(keys::META_VERDICTS)?.as_deref()))
}

/// Removes sled's files from `dir`, once the keyspace holds everything.
fn remove_sled(dir: &Path) -> Result<(), StoreError> {
    let gone = |p: &Path, e: std::io::Error| StoreError::Io(format!("{}: {e}", p.display()));
    for name in SLED_FILES {
        let p = dir.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(|e| gone(&p, e))?;
        } else if p.exists() {
            std::fs::remove_file(&p).map_err(|e| gone(&p, e))?;
        }
    }
    for entry in std::fs::read_dir(dir).map_err(|e| gone(dir, e))? {
        let entry = entry.map_err(|e| gone(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            std::fs::remove_file(entry.path()).map_err(|e| gone(&entry.path(), e))?;
        }
    }
    Ok(())
}
