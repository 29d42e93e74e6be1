//! Tree names and key encodings. Integers are big-endian so that the
//! engine's byte order is numeric order. Changing anything here changes the
//! store format: bump [`FORMAT`].

/// The store format this build reads and writes.
pub(crate) const FORMAT: &str = "vouch-store-4";
/// The formats before, which `vouchd migrate` converts (see `migrate/`).
/// All three were sled databases; format 3 has format 4's trees.
pub(crate) const FORMAT_V1: &str = "vouch-store-1";
pub(crate) const FORMAT_V2: &str = "vouch-store-2";
pub(crate) const FORMAT_V3: &str = "vouch-store-3";

pub(crate) const META: &str = "meta";
/// Verdict id → [`super::segments::Ptr`] of its envelope.
pub(crate) const ENVELOPES: &str = "envelope-ptrs-1";
/// Format 2 kept the envelopes themselves in sled, by id.
pub(crate) const ENVELOPES_V2: &str = "envelopes-1";
/// signer ‖ seq → pointer.
pub(crate) const LOG: &str = "log-2";
/// artifact ‖ signer ‖ seq → pointer.
pub(crate) const BY_ARTIFACT: &str = "by-artifact-signer-3";
/// distribution NUL name NUL version NUL ‖ pointer → empty.
pub(crate) const BY_NAME: &str = "by-name-2";
/// Format 2's trees, whose entries named verdict ids.
pub(crate) const LOG_V2: &str = "log-1";
pub(crate) const BY_ARTIFACT_V2: &str = "by-artifact-signer-2";
pub(crate) const BY_NAME_V2: &str = "by-name-1";
/// The trees of format 2 that format 3 replaces (dropped once migrated).
pub(crate) const REPLACED_BY_V3: [&str; 5] =
    [ENVELOPES_V2, LOG_V2, BY_ARTIFACT_V2, BY_NAME_V2, BLOBS_V2];
pub(crate) const HEADS: &str = "heads-1";
pub(crate) const PENDING: &str = "pending-1";
pub(crate) const FORKS: &str = "forks-2";
pub(crate) const FORK_COUNTS: &str = "fork-counts-2";
/// Trees of format 1 that the migration replaces.
pub(crate) const BY_ARTIFACT_V1: &str = "by-artifact-1";
pub(crate) const FORKS_V1: &str = "forks-1";
pub(crate) const FORKS_BY_SIGNER_V1: &str = "forks-by-signer-1";
/// Blob content sha256 → pointer into the evidence segments.
pub(crate) const BLOBS: &str = "blob-ptrs-1";
/// Format 2 kept the compressed blobs themselves in sled.
pub(crate) const BLOBS_V2: &str = "blobs-1";
pub(crate) const JOBS: &str = "jobs-1";
pub(crate) const QUEUE: &str = "queue-1";
/// The package table (`packages.rs`): added without a format change, and
/// filled from the jobs at open when empty.
pub(crate) const PACKAGES: &str = "packages-1";
pub(crate) const PACKAGES_BY_NAME: &str = "packages-by-name-1";
pub(crate) const PACKAGES_BY_SHA: &str = "packages-by-sha-1";
pub(crate) const JOB_IDS: &str = "job-ids-1";
pub(crate) const JOBS_BY_ID: &str = "jobs-by-id-1";
pub(crate) const NUMBERS: &str = "verdict-numbers-1";
pub(crate) const NUMBERED: &str = "numbered-verdicts-1";

/// `meta` keys.
pub(crate) const META_FORMAT: &[u8] = b"format";
pub(crate) const META_VERDICTS: &[u8] = b"verdicts";
pub(crate) const META_PENDING: &[u8] = b"pending";
pub(crate) const META_NEXT_JOB: &[u8] = b"next-job-id";
pub(crate) const META_NEXT_PACKAGE: &[u8] = b"next-package-id";
pub(crate) const META_NEXT_NUMBER: &[u8] = b"next-verdict-number";
/// The researchers' counters (`stats.rs`), with the verdicts they reflect.
pub(crate) const META_STATS: &[u8] = b"stats";
/// The segments' durable end ([`super::segments::End`]), committed with the
/// index entries that point below it.
pub(crate) const META_SEGMENT_END: &[u8] = b"segment-end";
/// The evidence segments' durable end, committed with the blob pointers.
pub(crate) const META_EVIDENCE_END: &[u8] = b"evidence-end";

/// `log`, `pending`: signer ‖ seq.
pub(crate) fn signer_seq(signer: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(signer);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `by-artifact-signer`: artifact sha256 ‖ signer ‖ seq → pointer. The
/// last key under `artifact ‖ signer` is that signer's latest verdict about
/// the artifact.
pub(crate) fn artifact_signer_seq(artifact: &[u8; 32], signer: &[u8; 32], seq: u64) -> [u8; 72] {
    let mut k = [0u8; 72];
    k[..32].copy_from_slice(artifact);
    k[32..64].copy_from_slice(signer);
    k[64..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Two 32-byte values one after the other (`artifact ‖ signer` prefixes).
pub(crate) fn pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(a);
    k[32..].copy_from_slice(b);
    k
}

/// `by-name`: distribution NUL name NUL version NUL, then the envelope's
/// pointer (format 2: its id). Text fields never contain NUL (control
/// characters are refused by the verdict format).
pub(crate) fn by_name(distribution: &str, name: &str, version: &str, tail: &[u8]) -> Vec<u8> {
    let mut k = by_name_prefix(distribution, name, Some(version));
    k.extend_from_slice(tail);
    k
}

/// The prefix of `by-name` keys for a name, or a name and version.
pub(crate) fn by_name_prefix(distribution: &str, name: &str, version: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(distribution.len() + name.len() + 40);
    k.extend_from_slice(distribution.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    if let Some(v) = version {
        k.extend_from_slice(v.as_bytes());
        k.push(0);
    }
    k
}

/// `heads` value: seq ‖ id.
pub(crate) fn head_value(seq: u64, id: &[u8; 32]) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(id);
    v
}

/// Parses a `heads` value.
pub(crate) fn parse_head(v: &[u8]) -> Option<(u64, [u8; 32])> {
    let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let id: [u8; 32] = v.get(8..40)?.try_into().ok()?;
    Some((seq, id))
}

pub(crate) fn u64_value(v: Option<&[u8]>) -> u64 {
    v.and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

pub(crate) fn id32(v: &[u8]) -> Option<[u8; 32]> {
    v.try_into().ok()
}
