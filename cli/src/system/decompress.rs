//! Reading index files as they are stored: plain or compressed with gzip,
//! xz, lz4 or zstd (told apart by their magic bytes), never more than a
//! limit once decompressed.

use std::io::Read;
use std::path::Path;

/// Reads `path`, decompressing it, refusing more than `max` bytes.
pub(crate) fn read(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(file)),
        [0xfd, b'7', b'z', b'X'] => Box::new(liblzma::read::XzDecoder::new_multi_decoder(file)),
        [0x04, 0x22, 0x4d, 0x18] => Box::new(lz4_flex::frame::FrameDecoder::new(file)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            zstd::stream::read::Decoder::new(file)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        _ => Box::new(file),
    };
    let mut out = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if out.len() as u64 > max {
        return Err(format!("{}: more than {max} bytes", path.display()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn every_format_apt_and_pacman_store_is_read_and_capped() {
        let t = tempfile::tempdir().unwrap();
        let text = b"Package: a\nVersion: 1\n".repeat(100);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        let lz4 = {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&text[..], 1).unwrap();
        for (name, bytes) in [
            ("plain", text.clone()),
            ("gz", gz),
            ("xz", xz),
            ("lz4", lz4),
            ("zst", zst),
        ] {
            let p = t.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(read(&p, 1 << 20).unwrap(), text, "{name}");
            assert!(
                read(&p, 100).unwrap_err().contains("more than 100 bytes"),
                "{name}"
            );
        }
    }
}
