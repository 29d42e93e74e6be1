//! SHA-256 digests: artifact hashes, verdict ids, evidence addresses.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::ParseError;

/// A SHA-256 digest. Encoded in CBOR as a 32-byte byte string, shown as
/// lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used as `prev` of a signer's first verdict.
    pub const ZERO: Digest = Digest([0u8; 32]);

    /// Hashes `bytes` with SHA-256.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// Hashes everything `reader` yields, streaming (files of any size).
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<Digest> {
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finish());
            }
            h.update(&buf[..n]);
        }
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is the all-zero digest.
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.hex().as_str().to_string()
    }

    /// Lowercase hex on the stack (no allocation).
    fn hex(&self) -> HexDigest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        HexDigest(out)
    }
}

/// The 64 lowercase hex digits of a digest.
struct HexDigest([u8; 64]);

impl HexDigest {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A streaming SHA-256 hasher, for files of any size.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl FromStr for Digest {
    type Err = ParseError;
    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.len() != 64 {
            return Err(ParseError::DigestLength(s.len()));
        }
        // A digit's value, 0x10 for anything else. Indexes full of
        // digests are parsed here, so no per-character branching.
        const VALUE: [u8; 256] = {
            let mut t = [0x10u8; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let (hi, lo) = (VALUE[usize::from(pair[0])], VALUE[usize::from(pair[1])]);
            bad |= hi | lo;
            *o = (hi << 4) | (lo & 0xf);
        }
        if bad & 0x10 != 0 {
            return Err(ParseError::DigestHex);
        }
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.hex().as_str())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            d.deserialize_bytes(Fixed32Visitor("a 32-byte SHA-256 digest"))
                .map(Digest)
        }
    }
}

/// Accepts exactly 32 bytes given as a CBOR byte string.
pub(crate) struct Fixed32Visitor(pub(crate) &'static str);

impl Visitor<'_> for Fixed32Visitor {
    type Value = [u8; 32];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; 32], E> {
        v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        // FIPS 180-2's "abc".
        let d = Digest::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_hex(), hex);
        assert_eq!(d.to_string(), hex);
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{hex}\""));
        assert_eq!(hex.to_uppercase().parse::<Digest>().unwrap(), d);
        for bad in ["g", "/", ":", "@", "G", "`", " ", "é"] {
            let s = format!("{bad}{}", &hex[bad.len()..]);
            assert!(s.parse::<Digest>().is_err(), "{s}");
        }
        assert!(hex[1..].parse::<Digest>().is_err());
    }
}
