//! ed25519 keys: public keys in the text form `ed25519:<base64>`, secret keys
//! that zeroize on drop and never print.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::digest::Fixed32Visitor;
use crate::ed25519::{self, Item, Key};
use crate::error::{KeyError, ParseError, SignatureError};

const TEXT_PREFIX: &str = "ed25519:";

/// An ed25519 public key: a verdict's signer.
///
/// Keys read from text ([`FromStr`], [`PublicKey::from_bytes`]) are checked
/// at once. Keys inside a decoded payload are checked when a signature is
/// verified with them (decompressing a point costs about as much as a tenth
/// of a verification, and a batch decompresses each distinct key once): a
/// key that is not a point of large order fails with
/// [`SignatureError::BadKey`](crate::SignatureError::BadKey).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses 32 raw bytes, refusing non-points, non-canonical encodings and
    /// small-order (weak) keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ParseError> {
        Key::decompress(bytes).map_err(|_| ParseError::KeyPoint)?;
        Ok(PublicKey(*bytes))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The text form, `ed25519:` followed by standard padded base64.
    pub fn to_text(&self) -> String {
        format!("{TEXT_PREFIX}{}", STANDARD.encode(self.0))
    }

    /// Verifies a plain ed25519 signature over `message` with vouch's one
    /// signature rule (cofactored, ZIP-215; spec/verdict.md §4.2), for
    /// protocols other than verdicts (e.g. worker requests).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        ed25519::verify(&Item {
            key: self.key()?,
            message: &[message],
            sig: signature,
        })
    }

    /// The key as a curve point, if it passes the key rule.
    pub(crate) fn key(&self) -> Result<Key, SignatureError> {
        Key::decompress(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for PublicKey {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let b64 = s
            .trim()
            .strip_prefix(TEXT_PREFIX)
            .ok_or(ParseError::KeyPrefix)?;
        let raw = STANDARD.decode(b64).map_err(|_| ParseError::KeyBase64)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| ParseError::KeyBase64)?;
        PublicKey::from_bytes(&raw)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_text())
        } else {
            s.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            d.deserialize_bytes(Fixed32Visitor("a 32-byte ed25519 public key"))
                .map(PublicKey)
        }
    }
}

/// An ed25519 secret key. Zeroized on drop; `Debug` never shows it.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey::from_seed(&seed))
    }

    /// The key whose RFC 8032 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte RFC 8032 seed. Handle with care.
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (pure ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(.. public {})", self.public_key())
    }
}
