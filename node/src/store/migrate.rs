//! Migration of older store formats, run on open.
//!
//! Format 1 → 2: the artifact index becomes (artifact, signer, seq) → id, so
//! that lookups name the signers they want and find each one's latest
//! verdict with one seek; fork proofs are kept one per signer (the lowest
//! proof id) with a count of the others. Envelopes, logs, heads, pending
//! entries, blobs and jobs are unchanged. The new trees are cleared first and
//! the format mark is written last, so a migration cut short by a crash is
//! simply run again on the next open.

use std::collections::BTreeMap;

use vouch_attest::{Digest, Envelope, ForkProof};

use super::{StoreError, keys};

pub(crate) fn v1_to_v2(db: &sled::Db) -> Result<(), StoreError> {
    let damaged = |tree, detail: String| StoreError::Damaged { tree, detail };
    let envelopes = db.open_tree(keys::ENVELOPES)?;
    let log = db.open_tree(keys::LOG)?;
    let by_artifact = db.open_tree(keys::BY_ARTIFACT)?;
    let forks = db.open_tree(keys::FORKS)?;
    let counts = db.open_tree(keys::FORK_COUNTS)?;
    by_artifact.clear()?;
    forks.clear()?;
    counts.clear()?;
    let mut n = 0u64;
    for item in log.iter() {
        let (_, id) = item?;
        let bytes = envelopes.get(&id)?.ok_or_else(|| {
            damaged(
                keys::LOG,
                format!("logged verdict {} missing", hex::encode(&id)),
            )
        })?;
        let v = Envelope::decode(&bytes)
            .and_then(|e| e.unverified_verdict())
            .map_err(|e| damaged(keys::ENVELOPES, e.to_string()))?;
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
        .insert(keys::META_FORMAT, keys::FORMAT.as_bytes())?;
    db.flush()?;
    tracing::info!(
        verdicts = n,
        forked_signers = kept.len(),
        "migrated the store from {} to {}",
        keys::FORMAT_V1,
        keys::FORMAT
    );
    Ok(())
}
