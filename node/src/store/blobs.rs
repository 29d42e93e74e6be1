//! Evidence blobs (build logs, diffoscope output): stored zstd-compressed,
//! addressed by the SHA-256 of their content, as records of their own
//! segments (written and synced before the transaction that commits
//! their pointers and the new durable end, as for envelopes). This node's
//! own are always kept; those fetched from peers only within a quota on the
//! bytes stored.

use std::sync::atomic::Ordering;

use vouch_attest::{Digest, PublicKey};

use super::packages::Appended;
use super::read::parse_ptr;
use super::tally::Tally;
use super::{MAX_BLOB, Store, StoreError, keys};

impl Store {
    /// Stores an evidence blob (zstd-compressed), addressed by the sha256 of
    /// `content`.
    pub fn put_blob(&self, content: &[u8]) -> Result<Digest, StoreError> {
        if content.len() > MAX_BLOB {
            return Err(StoreError::Blob(format!(
                "{} bytes, over the limit of {MAX_BLOB}",
                content.len()
            )));
        }
        let id = Digest::of(content);
        if self.blobs.contains_key(id.as_bytes())? {
            return Ok(id);
        }
        let compressed =
            zstd::bulk::compress(content, 3).map_err(|e| StoreError::Blob(e.to_string()))?;
        let mut writer = self.evidence.writer();
        // Another writer may have stored it meanwhile.
        if self.blobs.contains_key(id.as_bytes())? {
            return Ok(id);
        }
        let mut staging = writer.staging();
        let ptr = staging.stage(&compressed)?;
        writer.write(&staging)?;
        self.db.transaction(|t| {
            let (meta, blobs) = (t.on(&self.meta), t.on(&self.blobs));
            blobs.insert(id.as_bytes(), &ptr.encode()[..])?;
            meta.insert(keys::META_EVIDENCE_END, &staging.end().encode()[..])?;
            Ok(())
        })?;
        writer.committed(&staging);
        Tally::add(&self.tally.blobs, 1);
        Tally::add(&self.tally.blob_bytes, u64::from(ptr.len));
        Ok(id)
    }

    /// Stores a blob fetched from a peer (its content already checked
    /// against its hash) when the blobs stored take fewer than `quota`
    /// bytes. Whether it is stored now.
    pub fn put_fetched_blob(&self, content: &[u8], quota: u64) -> Result<bool, StoreError> {
        if self.blob_bytes() >= quota {
            return Ok(false);
        }
        self.put_blob(content)?;
        Ok(true)
    }

    /// The zstd-compressed blob with content sha256 `id`.
    pub fn blob(&self, id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        match self.blobs.get(id.as_bytes())? {
            Some(p) => self.evidence.read(parse_ptr(&p)?).map(Some),
            None => Ok(None),
        }
    }

    /// Checks every evidence record: intact, its content's sha256 names a
    /// pointer to exactly it, and there are as many pointers as records.
    pub(crate) fn check_blobs(&self) -> Result<u64, StoreError> {
        let damaged = |detail: String| StoreError::Damaged {
            tree: keys::BLOBS,
            detail,
        };
        let records = self.evidence.scan(|ptr, bytes| {
            let content = unpack_blob(bytes)
                .map_err(|e| damaged(format!("record {ptr:?} does not decompress: {e}")))?;
            let id = Digest::of(&content);
            if self.blobs.get(id.as_bytes())?.as_deref() != Some(&ptr.encode()[..]) {
                return Err(damaged(format!(
                    "blob {id} in record {ptr:?} is not indexed there"
                )));
            }
            Ok(())
        })?;
        let n = self.blobs.len()? as u64;
        if n != records {
            return Err(damaged(format!(
                "{n} pointers for {records} evidence records"
            )));
        }
        Ok(records)
    }

    /// Whether the blob `id` is stored.
    pub fn has_blob(&self, id: &Digest) -> Result<bool, StoreError> {
        self.blobs.contains_key(id.as_bytes())
    }

    /// Calls `want(blob, signer)` for each build log and diffoscope, not
    /// stored here, named by a new verdict of a tracked signer (see
    /// [`Store::track_signers`]) other than this node. It must not block.
    pub fn on_missing_evidence(&self, want: impl Fn(Digest, PublicKey) + Send + Sync + 'static) {
        *self.tally.evidence_wanted() = Some(Box::new(want));
    }

    /// After a write committed: names the evidence it lacks.
    pub(crate) fn note_evidence(&self, appended: &[Appended]) -> Result<(), StoreError> {
        let wanted = self.tally.evidence_wanted();
        let Some(want) = wanted.as_ref() else {
            return Ok(());
        };
        let own = self.tally.own();
        for a in appended {
            if a.log.is_none() && a.diffoscope.is_none() {
                continue;
            }
            if Some(a.signer) == own || !self.is_tracked(&a.signer) {
                continue;
            }
            for d in [a.log, a.diffoscope].into_iter().flatten() {
                if !self.has_blob(&d)? {
                    want(d, a.signer);
                }
            }
        }
        Ok(())
    }

    /// Bytes the stored blobs take (compressed).
    pub fn blob_bytes(&self) -> u64 {
        self.tally.blob_bytes.load(Ordering::Relaxed)
    }
}

/// The content of a zstd-compressed blob, read up to [`MAX_BLOB`] bytes
/// and one more.
pub fn unpack_blob(compressed: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| StoreError::Blob(e.to_string()))?
        .take(MAX_BLOB as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Blob(e.to_string()))?;
    Ok(out)
}
