//! Fetching index files with size limits, and decompression detected by
//! magic bytes (never by file name) with a cap on the decompressed size.

use std::io::Read;

use super::SyncError;

/// Largest index file fetched (compressed, or plain when a mirror serves it
/// plain).
pub const MAX_DOWNLOAD: u64 = 192 << 20;
/// Largest decompressed Debian index (`Packages`, `Sources`). The biggest
/// real ones are about 51 MB (bookworm main: `Sources` 50.7 MB, amd64
/// `Packages` 50.1 MB); this leaves a margin of almost 4. When the index is
/// listed in a verified `InRelease`, the size listed there is the cap.
pub const MAX_DECOMPRESSED: u64 = 192 << 20;
/// Largest decompressed repository database (Arch `.db`).
pub const MAX_DB: u64 = 96 << 20;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// None recognized: the bytes are used as they are.
    None,
}

impl Compression {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::None => "uncompressed",
        }
    }
}

/// Detects the compression of `bytes` by its magic number.
pub fn detect(bytes: &[u8]) -> Compression {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// Who vouches for compressed bytes being the ones published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Only the compression format's own checksums: they are verified.
    Container,
    /// Their sha256 was checked against a signed list (`InRelease`), which
    /// pins the decompressed bytes too: xz's CRC64 of the output is not
    /// computed again (liblzma's portable CRC64 is a tenth of a Debian
    /// index's decompression).
    Signed,
}

/// A reader of `bytes` decompressed (format by magic).
fn decoder<'a>(what: &str, bytes: &'a [u8], check: Check) -> Result<Box<dyn Read + 'a>, SyncError> {
    Ok(match detect(bytes) {
        Compression::None => Box::new(bytes),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        Compression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::new(bytes).map_err(|e| SyncError::Format {
                    what: what.to_string(),
                    reason: format!("zstd: {e}"),
                })?,
            )
        }
        Compression::Xz => {
            let flags = match check {
                Check::Container => liblzma::stream::CONCATENATED,
                Check::Signed => liblzma::stream::CONCATENATED | liblzma::stream::IGNORE_CHECK,
            };
            let stream =
                liblzma::stream::Stream::new_stream_decoder(u64::MAX, flags).map_err(|e| {
                    SyncError::Format {
                        what: what.to_string(),
                        reason: format!("xz: {e}"),
                    }
                })?;
            Box::new(liblzma::read::XzDecoder::new_stream(bytes, stream))
        }
    })
}

fn bomb(what: &str, limit: u64) -> SyncError {
    SyncError::TooLarge {
        what: format!("{what} (decompressed; a decompression bomb?)"),
        limit,
    }
}

/// Decompresses `bytes` (format by magic) into at most `limit` bytes; more
/// is refused as a decompression bomb.
pub fn decompress(what: &str, bytes: &[u8], limit: u64) -> Result<Vec<u8>, SyncError> {
    let mut out = Vec::new();
    decompress_each(what, bytes, Check::Container, limit, |piece| {
        out.extend_from_slice(piece);
        Ok(())
    })?;
    Ok(out)
}

/// Bytes handed on at once by [`decompress_each`].
const PIECE: usize = 1 << 20;

/// Decompresses `bytes` (format by magic) and hands the output to `each`
/// piece by piece as it comes, so that reading it overlaps decompressing
/// it; stops at the first error of `each`. More than `limit` bytes are
/// refused as a decompression bomb (after at most `limit` were handed
/// on). `check` says whether the format's own checksums are worth
/// computing. Returns the decompressed length.
pub fn decompress_each(
    what: &str,
    bytes: &[u8],
    check: Check,
    limit: u64,
    mut each: impl FnMut(&[u8]) -> Result<(), SyncError>,
) -> Result<u64, SyncError> {
    let mut reader = decoder(what, bytes, check)?;
    let mut buf = vec![0u8; PIECE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SyncError::Format {
                    what: what.to_string(),
                    reason: format!("{}: {e}", detect(bytes).name()),
                });
            }
        };
        total += n as u64;
        if total > limit {
            return Err(bomb(what, limit));
        }
        each(&buf[..n])?;
    }
}

/// Fetches `url` (http, https or file) into memory, at most `limit` bytes.
pub async fn get(client: &reqwest::Client, url: &str, limit: u64) -> Result<Vec<u8>, SyncError> {
    let fail = |reason: String| SyncError::Fetch {
        url: url.to_string(),
        reason,
    };
    if let Some(path) = url.strip_prefix("file://") {
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.len() > limit {
            return Err(SyncError::TooLarge {
                what: url.to_string(),
                limit,
            });
        }
        return std::fs::read(path).map_err(|e| fail(e.to_string()));
    }
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(SyncError::TooLarge {
            what: url.to_string(),
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(SyncError::TooLarge {
                what: url.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn xz_compress(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(data, 1)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn magic_bytes_not_names() {
        let data = b"hello world\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(detect(&gz), Compression::Gzip);
        assert_eq!(decompress("x", &gz, 1 << 20).unwrap(), data);
        let zs = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(decompress("x", &zs, 1 << 20).unwrap(), data);
        let xz = xz_compress(&data);
        assert_eq!(detect(&xz), Compression::Xz);
        assert_eq!(decompress("x", &xz, 1 << 20).unwrap(), data);
        assert_eq!(decompress("x", &data, 1 << 20).unwrap(), data);
    }

    #[test]
    fn bombs_are_refused() {
        let zeros = vec![0u8; 20 << 20];
        let zs = zstd::bulk::compress(&zeros, 19).unwrap();
        assert!(zs.len() < 10_000);
        let err = decompress("bomb.db", &zs, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("larger than the limit"), "{err}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap();
        assert!(decompress("bomb.db", &gz.finish().unwrap(), 1 << 20).is_err());
        assert!(decompress("bomb.xz", &xz_compress(&zeros), 1 << 20).is_err());
    }

    #[test]
    fn xz_checks_are_verified_unless_the_bytes_were_signed() {
        let data = b"Package: hello\nVersion: 2.12-1\n\n".repeat(100);
        let mut xz = xz_compress(&data);
        // A one-block stream ends: block check (CRC64, 8 bytes), index,
        // footer (12 bytes; bytes 4..8 give the index size / 4 - 1).
        let footer = xz.len() - 12;
        let index_len =
            4 * (u32::from_le_bytes(xz[footer + 4..footer + 8].try_into().unwrap()) + 1);
        let crc64 = footer - index_len as usize - 8;
        xz[crc64] ^= 0x01;
        let each = |check| {
            let mut out = Vec::new();
            decompress_each("Packages.xz", &xz, check, 1 << 20, |piece| {
                out.extend_from_slice(piece);
                Ok(())
            })
            .map(|_| out)
        };
        let err = each(Check::Container).unwrap_err().to_string();
        assert!(err.contains("Packages.xz"), "{err}");
        assert_eq!(each(Check::Signed).unwrap(), data);
    }
}
