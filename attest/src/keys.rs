//! ed25519 keys: public keys in the text form `ed25519:<base64>`, secret keys
//! that zeroize on drop and never print.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::digest::Fixed32Visitor;
use crate::error::{KeyError, ParseError};

const TEXT_PREFIX: &str = "ed25519:";

/// An ed25519 public key: a verdict's signer.
///
/// Only keys that decode to a curve point of large order are representable,
/// so a `PublicKey` can always be used to verify.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 32 raw bytes, refusing non-points and small-order (weak) keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ParseError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| ParseError::KeyPoint)?;
        if key.is_weak() {
            return Err(ParseError::KeyPoint);
        }
        Ok(PublicKey(key))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The text form, `ed25519:` followed by standard padded base64.
    pub fn to_text(&self) -> String {
        format!("{TEXT_PREFIX}{}", STANDARD.encode(self.as_bytes()))
    }

    pub(crate) fn dalek(&self) -> &VerifyingKey {
        &self.0
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
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
            let raw = d.deserialize_bytes(Fixed32Visitor("a 32-byte ed25519 public key"))?;
            PublicKey::from_bytes(&raw).map_err(|_| {
                de::Error::invalid_value(
                    de::Unexpected::Bytes(&raw),
                    &"a valid ed25519 public key of large order",
                )
            })
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
        PublicKey(self.0.verifying_key())
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
