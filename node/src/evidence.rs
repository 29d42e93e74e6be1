//! Keeping evidence: the build logs and diffoscopes named by verdicts of the
//! signers this node knows are fetched from peers over `/vouch/blobs/1`
//! (the signer's own node asked first) and stored, within a quota, so that
//! they outlive the node that made them. A blob this node lacks is also
//! fetched for whoever asks for it (`find`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, mpsc};
use vouch_attest::{Digest, PublicKey};

use crate::config::{EvidenceConfig, KeepEvidence};
use crate::p2p::{Network, peer_id_of};
use crate::store::{Store, StoreError};

/// Wants waiting to be fetched, at most; more are dropped (a reader still
/// finds them on demand).
const QUEUE: usize = 4096;
/// Blobs fetched at once.
const PARALLEL: usize = 4;
/// Wait before asking again for a blob no peer gave.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts keeping the evidence of tracked signers (when `config.keep` says
/// so).
pub fn start(store: &Store, network: Network, config: EvidenceConfig) {
    if config.keep == KeepEvidence::None {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<(Digest, PublicKey, u8)>(QUEUE);
    let retry = tx.clone();
    store.on_missing_evidence(move |d, k| {
        if tx.try_send((d, k, 0)).is_err() {
            tracing::debug!(blob = %d, "evidence queue full; left for readers to fetch");
        }
    });
    let store = store.clone();
    let quota = config.quota_mib.saturating_mul(1 << 20);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(PARALLEL));
        let warned = Arc::new(AtomicBool::new(false));
        while let Some((blob, signer, attempt)) = rx.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (store, network, warned, retry) = (
                store.clone(),
                network.clone(),
                warned.clone(),
                retry.clone(),
            );
            tokio::spawn(async move {
                let found = {
                    let _permit = permit;
                    if store.blob_bytes() >= quota {
                        if !warned.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                quota_mib = quota >> 20,
                                "the evidence quota is full; others' evidence is no longer kept"
                            );
                        }
                        return;
                    }
                    keep(&store, &network, blob, Some(signer), quota).await
                };
                match found {
                    Ok(true) => tracing::debug!(%blob, %signer, "evidence kept"),
                    // Peers may be busy, or not hold it yet: asked once
                    // more later (without holding a slot meanwhile).
                    Ok(false) if attempt == 0 => {
                        tokio::time::sleep(RETRY_AFTER).await;
                        let _ = retry.try_send((blob, signer, 1));
                    }
                    Ok(false) => tracing::debug!(%blob, %signer, "evidence not found at peers"),
                    Err(e) => tracing::warn!(%blob, error = %e, "storing evidence"),
                }
            });
        }
    });
}

/// Fetches `blob` from peers (the node of `signer` first) and stores it
/// within `quota`. Whether it was found.
async fn keep(
    store: &Store,
    network: &Network,
    blob: Digest,
    signer: Option<PublicKey>,
    quota: u64,
) -> Result<bool, StoreError> {
    if store.has_blob(&blob)? {
        return Ok(true);
    }
    let Some(content) = network
        .fetch_blob(blob, signer.as_ref().and_then(peer_id_of))
        .await
    else {
        return Ok(false);
    };
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.put_fetched_blob(&content, quota))
        .await
        .map_err(|e| StoreError::Blob(e.to_string()))??;
    Ok(true)
}

/// The zstd-compressed blob `blob`: from the store, or else fetched from
/// peers (checked, and kept within `quota`). None when nobody has it.
pub async fn find(
    store: &Store,
    network: Option<&Network>,
    blob: Digest,
    quota: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let s = store.clone();
    let held = tokio::task::spawn_blocking(move || s.blob(&blob))
        .await
        .map_err(|e| StoreError::Blob(e.to_string()))??;
    if held.is_some() {
        return Ok(held);
    }
    let Some(network) = network else {
        return Ok(None);
    };
    let Some(content) = network.fetch_blob(blob, None).await else {
        return Ok(None);
    };
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        s.put_fetched_blob(&content, quota)?;
        match s.blob(&blob)? {
            Some(z) => Ok(Some(z)),
            // Over the quota: served, not kept.
            None => zstd::bulk::compress(&content, 3)
                .map(Some)
                .map_err(|e| StoreError::Blob(e.to_string())),
        }
    })
    .await
    .map_err(|e| StoreError::Blob(e.to_string()))?
}
