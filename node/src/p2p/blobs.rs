//! `/vouch/blobs/1`: evidence (build logs, diffoscope output) from any peer
//! that holds it. A request names a blob by the SHA-256 of its content; the
//! answer carries the holder's zstd-compressed copy. The asker decompresses
//! it with a cap and checks the hash before it stores or serves anything.
//! Written down in `spec/p2p.md` §4a.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use vouch_attest::Digest;

use crate::store::MAX_BLOB;

/// The protocol name.
pub const PROTOCOL: &str = "/vouch/blobs/1";
/// Largest request on the wire.
pub const MAX_REQUEST_BYTES: u64 = 1024;
/// Largest response on the wire: a compressed blob of the largest size
/// zstd can produce for [`MAX_BLOB`] bytes, and framing.
pub const MAX_RESPONSE_BYTES: u64 = MAX_BLOB as u64 + (MAX_BLOB as u64 >> 7) + 4096;
/// Peers asked for one blob, at most, one after the other.
pub const MAX_TRIES: usize = 8;
/// Blob requests served at once per connection.
pub const MAX_STREAMS: usize = 2;
/// Blob answers being prepared or sent at once, in total.
pub const MAX_SERVING: usize = 4;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRequest {
    /// The SHA-256 of the content wanted.
    pub sha256: ByteBuf,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The blob, zstd-compressed.
    Found {
        /// The compressed bytes.
        zstd: ByteBuf,
    },
    /// Not held here.
    Missing,
    /// Refused (rate limit, malformed request).
    Refused {
        /// Why.
        reason: String,
    },
}

/// Why a received blob is not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    /// It does not decompress.
    #[error("not zstd: {0}")]
    Encoding(String),
    /// It is larger than [`MAX_BLOB`] once decompressed.
    #[error("over {MAX_BLOB} bytes once decompressed")]
    TooLarge,
    /// Its content has another hash.
    #[error("content hashes to {0}, not the blob asked for")]
    WrongHash(Digest),
}

/// Decompresses a received blob (at most [`MAX_BLOB`] bytes) and checks
/// that its content hashes to `want`. Returns the content.
pub fn check(want: &Digest, zstd: &[u8]) -> Result<Vec<u8>, BlobError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(zstd)
        .map_err(|e| BlobError::Encoding(e.to_string()))?
        .take(MAX_BLOB as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BlobError::Encoding(e.to_string()))?;
    if out.len() > MAX_BLOB {
        return Err(BlobError::TooLarge);
    }
    let got = Digest::of(&out);
    if got != *want {
        return Err(BlobError::WrongHash(got));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_content_asked_for_is_taken() {
        let content = b"build log line\n".repeat(100);
        let want = Digest::of(&content);
        let z = zstd::bulk::compress(&content, 3).unwrap();
        assert_eq!(check(&want, &z).unwrap(), content);
        // Another content under the asked-for name.
        let other = zstd::bulk::compress(b"something else", 3).unwrap();
        assert!(matches!(check(&want, &other), Err(BlobError::WrongHash(_))));
        // Garbage.
        assert!(matches!(
            check(&want, b"not zstd"),
            Err(BlobError::Encoding(_))
        ));
        // A bomb: small on the wire, over the cap once decompressed.
        let big = vec![0u8; MAX_BLOB + 1];
        let bomb = zstd::bulk::compress(&big, 3).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(check(&Digest::of(&big), &bomb), Err(BlobError::TooLarge));
    }
}
