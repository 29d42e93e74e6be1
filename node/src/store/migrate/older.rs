//! The formats that were sled databases, migrated within sled up to
//! format 3, whose trees format 4 has (the copy is in `mod.rs`).
//!
//! Format 2 → 3: the envelopes move out of sled into segment files, in log
//! order, and the log and the indexes are rebuilt with pointers to them in
//! place of verdict ids. The new trees and the segments are started afresh
//! on each run; the format mark is written once they are complete and
//! durable, and only then are the old trees dropped, so a migration cut
//! short by a crash is simply run again.
//!
//! Format 1 → 2: the artifact index becomes (artifact, signer, seq) → id, so
//! that lookups name the signers they want and find each one's latest
//! verdict with one seek; fork proofs are kept one per signer (the lowest
//! proof id) with a count of the others. Envelopes, logs, heads, pending
//! entries, blobs and jobs are unchanged. The new trees are cleared first and
//! the format mark is written last, so a migration cut short by a crash is
//! simply run again on the next open.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vouch_attest::{Digest, Envelope, ForkProof, Verdict};

use super::super::segments::{SEGMENT_LEN, SegmentIo, Segments, Staging, WriteGuard};
use super::super::{LOCK_WAIT, StoreError, keys};

pub(crate) fn v1_to_v2(db: &sled::Db) -> Result<(), StoreError> {
    let envelopes = db.open_tree(keys::ENVELOPES_V2)?;
    let log = db.open_tree(keys::LOG_V2)?;
    let by_artifact = db.open_tree(keys::BY_ARTIFACT_V2)?;
    let forks = db.open_tree(keys::FORKS)?;
    let counts = db.open_tree(keys::FORK_COUNTS)?;
    by_artifact.clear()?;
    forks.clear()?;
    counts.clear()?;
    let mut n = 0u64;
    for item in log.iter() {
        let (_, id) = item?;
        let (_, v) = logged(&envelopes, &id)?;
        by_artifact.insert(
            keys::artifact_signer_seq(v.subject.sha256.as_bytes(), v.signer.as_bytes(), v.seq),
            &id,
        )?;
        n += 1;
    }
    let old_forks = db.open_tree(keys::FORKS_V1)?;
    let mut kept: BTreeMap<[u8; 32], (Digest, Vec<u8>, u64)> = BTreeMap::new();
    for item in old_forks.iter() {
        let (_, bytes) = item?;
        let Ok(checked) = ForkProof::open(&bytes) else {
            tracing::warn!("migration: dropping a stored fork proof that does not check");
            continue;
        };
        let e = kept
            .entry(*checked.signer.as_bytes())
            .or_insert((checked.id, bytes.to_vec(), 0));
        e.2 += 1;
        if checked.id < e.0 {
            e.0 = checked.id;
            e.1 = bytes.to_vec();
        }
    }
    for (signer, (_, proof, count)) in &kept {
        forks.insert(signer, proof.as_slice())?;
        counts.insert(signer, &count.to_be_bytes())?;
    }
    for old in [
        keys::BY_ARTIFACT_V1,
        keys::FORKS_V1,
        keys::FORKS_BY_SIGNER_V1,
    ] {
        db.drop_tree(old)?;
    }
    db.open_tree(keys::META)?
        .insert(keys::META_FORMAT, keys::FORMAT_V2.as_bytes())?;
    db.flush()?;
    tracing::info!(
        verdicts = n,
        forked_signers = kept.len(),
        "migrated the store from {} to {}",
        keys::FORMAT_V1,
        keys::FORMAT_V2
    );
    Ok(())
}

/// Moves the envelopes of a format-2 store into segments. The number of
/// verdicts moved.
pub(crate) fn v2_to_v3(
    db: &sled::Db,
    io: Arc<dyn SegmentIo>,
    evidence: Arc<dyn SegmentIo>,
) -> Result<u64, StoreError> {
    let old = db.open_tree(keys::ENVELOPES_V2)?;
    let old_log = db.open_tree(keys::LOG_V2)?;
    let ptrs = db.open_tree(keys::ENVELOPES)?;
    let log = db.open_tree(keys::LOG)?;
    let by_artifact = db.open_tree(keys::BY_ARTIFACT)?;
    let by_name = db.open_tree(keys::BY_NAME)?;
    let meta = db.open_tree(keys::META)?;
    // Start afresh: a run cut short leaves pointers and segments behind.
    for t in [&ptrs, &log, &by_artifact, &by_name] {
        t.clear()?;
    }
    meta.remove(keys::META_SEGMENT_END)?;
    let segments = fresh(io)?;
    let mut writer = segments.writer();
    let mut staging = writer.staging();
    let mut batch: [sled::Batch; 4] = Default::default();
    let trees = [&ptrs, &log, &by_artifact, &by_name];
    let mut n = 0u64;
    for item in old_log.iter() {
        let (k, id) = item?;
        let (bytes, v) = logged(&old, &id)?;
        let ptr = staging.stage(&bytes)?.encode();
        batch[0].insert(id, &ptr[..]);
        batch[1].insert(k, &ptr[..]);
        batch[2].insert(
            &keys::artifact_signer_seq(v.subject.sha256.as_bytes(), v.signer.as_bytes(), v.seq)[..],
            &ptr[..],
        );
        batch[3].insert(
            keys::by_name(
                &v.subject.distribution,
                &v.subject.name,
                &v.subject.version,
                &ptr,
            ),
            &[][..],
        );
        n += 1;
        if n.is_multiple_of(4096) {
            commit_moved(
                &mut writer,
                &mut staging,
                &meta,
                keys::META_SEGMENT_END,
                &trees,
                &mut batch,
            )?;
        }
    }
    commit_moved(
        &mut writer,
        &mut staging,
        &meta,
        keys::META_SEGMENT_END,
        &trees,
        &mut batch,
    )?;
    drop(writer);
    move_blobs(db, evidence)?;
    if old.len() as u64 != n {
        tracing::warn!(
            stored = old.len(),
            logged = n,
            "migration: envelopes outside any log are left behind"
        );
    }
    db.flush()?;
    meta.insert(keys::META_FORMAT, keys::FORMAT_V3.as_bytes())?;
    db.flush()?;
    for t in keys::REPLACED_BY_V3 {
        db.drop_tree(t)?;
    }
    db.flush()?;
    tracing::info!(
        verdicts = n,
        "migrated the store from {} to {}",
        keys::FORMAT_V2,
        keys::FORMAT_V3
    );
    Ok(n)
}

/// Empty segments in `io`: whatever a run cut short left there is removed.
fn fresh(io: Arc<dyn SegmentIo>) -> Result<Segments, StoreError> {
    for (n, kind) in io.list().map_err(|e| StoreError::Segment(e.to_string()))? {
        io.remove(n, kind)
            .map_err(|e| StoreError::Segment(e.to_string()))?;
    }
    Segments::open(io, None, SEGMENT_LEN)
}

/// The envelope and verdict a format-1 or -2 log entry names.
fn logged(envelopes: &sled::Tree, id: &[u8]) -> Result<(sled::IVec, Verdict), StoreError> {
    let damaged = |tree, detail: String| StoreError::Damaged { tree, detail };
    let bytes = envelopes.get(id)?.ok_or_else(|| {
        damaged(
            keys::LOG_V2,
            format!("logged verdict {} missing", hex::encode(id)),
        )
    })?;
    let v = Envelope::decode(&bytes)
        .and_then(|e| e.unverified_verdict())
        .map_err(|e| damaged(keys::ENVELOPES_V2, e.to_string()))?;
    Ok((bytes, v))
}

/// Moves format 2's evidence blobs (compressed, in sled) into evidence
/// segments, afresh on each run.
fn move_blobs(db: &sled::Db, io: Arc<dyn SegmentIo>) -> Result<(), StoreError> {
    let old = db.open_tree(keys::BLOBS_V2)?;
    let ptrs = db.open_tree(keys::BLOBS)?;
    let meta = db.open_tree(keys::META)?;
    ptrs.clear()?;
    meta.remove(keys::META_EVIDENCE_END)?;
    let segments = fresh(io)?;
    let mut writer = segments.writer();
    let mut staging = writer.staging();
    let mut batch = [sled::Batch::default()];
    let mut staged = 0usize;
    for item in old.iter() {
        let (id, bytes) = item?;
        let ptr = staging.stage(&bytes)?;
        batch[0].insert(id, &ptr.encode()[..]);
        staged += bytes.len();
        if staged >= 32 << 20 {
            commit_moved(
                &mut writer,
                &mut staging,
                &meta,
                keys::META_EVIDENCE_END,
                &[&ptrs],
                &mut batch,
            )?;
            staged = 0;
        }
    }
    commit_moved(
        &mut writer,
        &mut staging,
        &meta,
        keys::META_EVIDENCE_END,
        &[&ptrs],
        &mut batch,
    )
}

/// Writes and syncs the staged records, then applies each batch of
/// pointers to its tree and records the new durable end under `end_key`;
/// `staging` starts afresh after it.
fn commit_moved(
    writer: &mut WriteGuard<'_>,
    staging: &mut Staging,
    meta: &sled::Tree,
    end_key: &[u8],
    trees: &[&sled::Tree],
    batches: &mut [sled::Batch],
) -> Result<(), StoreError> {
    writer.write(staging)?;
    for (tree, b) in trees.iter().zip(batches.iter_mut()) {
        tree.apply_batch(std::mem::take(b))?;
    }
    meta.insert(end_key, &staging.end().encode()[..])?;
    writer.committed(staging);
    *staging = writer.staging();
    Ok(())
}

/// Opens the sled database of an older store in `dir`. sled's file lock
/// outlives a closed database for as long as its background flusher takes
/// to stop, so a lock held elsewhere is waited for up to [`LOCK_WAIT`]
/// before the store is reported in use.
pub(crate) fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(256 << 20)
            .mode(sled::Mode::LowSpace)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::InUse {
                        path: dir.display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
