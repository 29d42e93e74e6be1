//! The signed envelope (DSSE, encoded as CBOR) and single verification.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::codec;
use crate::digest::Digest;
use crate::ed25519::{self, Item, Key};
use crate::error::{DecodeError, Error, SignatureError};
use crate::keys::{PublicKey, SecretKey};
use crate::verdict::{FORMAT_VERSION, Verdict};

/// The DSSE payload type of a vouch verdict.
pub const PAYLOAD_TYPE: &str = "application/vnd.vouch.verdict.v1+cbor";
/// Largest accepted payload, in bytes.
pub const MAX_PAYLOAD: usize = 16 * 1024;
/// Largest accepted envelope, in bytes: the payload plus room for the
/// payload type, one signature and the CBOR heads.
pub const MAX_ENVELOPE: usize = MAX_PAYLOAD + 1024;

/// The part of the PAE before the payload.
pub(crate) fn pae_prefix(payload_type: &str, payload_len: usize) -> String {
    format!(
        "DSSEv1 {} {payload_type} {payload_len} ",
        payload_type.len()
    )
}

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal. This is what ed25519 signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let prefix = pae_prefix(payload_type, payload.len());
    let mut out = Vec::with_capacity(prefix.len() + payload.len());
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A decoded envelope whose signature has not been checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    wire: EnvelopeWire,
    /// The canonical encoding of `wire`: the bytes as received or as built.
    bytes: Vec<u8>,
}

impl Envelope {
    /// Decodes the canonical CBOR form of an envelope. Does not decode the
    /// payload or check the signature; see [`Envelope::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let wire: EnvelopeWire = codec::decode(bytes, MAX_ENVELOPE)?;
        if wire.payload_type != PAYLOAD_TYPE {
            return Err(DecodeError::PayloadType(truncate(&wire.payload_type)));
        }
        Ok(Envelope {
            wire,
            bytes: bytes.to_vec(),
        })
    }

    /// The canonical CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The exact payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.wire.payload.0
    }

    /// Decodes the payload as a verdict without checking the signature: for
    /// bytes that were verified before (a store's own entries). Anything
    /// received must go through [`Envelope::verify`].
    pub fn unverified_verdict(&self) -> Result<Verdict, DecodeError> {
        decode_verdict(self.payload())
    }

    /// The verdict id: SHA-256 of the payload bytes.
    pub fn id(&self) -> Digest {
        Digest::of(self.payload())
    }

    /// Decodes the payload and checks the signature over the bytes as
    /// received.
    pub fn verify(self) -> Result<VerifiedVerdict, Error> {
        let (verdict, sig) = self.prepare()?;
        verify_with(verdict.signer.key()?, self.payload(), &sig)?;
        Ok(self.verified(verdict))
    }

    /// Everything but the signature check: payload decode, signature count
    /// and keyid.
    pub(crate) fn prepare(&self) -> Result<(Verdict, [u8; 64]), Error> {
        let verdict = decode_verdict(self.payload())?;
        let [sig] = self.wire.signatures.as_slice() else {
            return Err(SignatureError::Count(self.wire.signatures.len()).into());
        };
        let signer = verdict.signer.to_text();
        if sig.keyid != signer {
            return Err(SignatureError::KeyIdMismatch {
                keyid: truncate(&sig.keyid),
                signer,
            }
            .into());
        }
        Ok((verdict, sig.sig.0))
    }

    pub(crate) fn verified(self, verdict: Verdict) -> VerifiedVerdict {
        VerifiedVerdict {
            id: self.id(),
            verdict,
            sig: self
                .wire
                .signatures
                .first()
                .map(|s| s.sig.0)
                .unwrap_or([0; 64]),
            payload: self.wire.payload.0,
            envelope: self.bytes,
        }
    }
}

/// Verifies a signature over the PAE of a verdict payload with the one
/// signature rule (cofactored, ZIP-215; spec/verdict.md §4.2), with the key
/// already decompressed.
pub(crate) fn verify_with(key: Key, payload: &[u8], sig: &[u8; 64]) -> Result<(), SignatureError> {
    let prefix = pae_prefix(PAYLOAD_TYPE, payload.len());
    ed25519::verify(&Item {
        key,
        message: &[prefix.as_bytes(), payload],
        sig,
    })
}

/// Decodes a verdict payload: canonical CBOR, known version, valid fields.
pub fn decode_verdict(payload: &[u8]) -> Result<Verdict, DecodeError> {
    let verdict: Verdict = codec::decode(payload, MAX_PAYLOAD).map_err(|e| {
        // A version this implementation does not know explains any field
        // mismatch better than the mismatch itself.
        match codec::peek_version(payload) {
            Ok(Some(v)) if v != FORMAT_VERSION => DecodeError::UnknownVersion(v),
            _ => e,
        }
    })?;
    if verdict.version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(verdict.version));
    }
    verdict.check().map_err(DecodeError::InvalidValue)?;
    Ok(verdict)
}

/// The canonical payload bytes of a verdict.
pub fn encode_verdict(verdict: &Verdict) -> Vec<u8> {
    codec::encode(verdict)
}

/// Signs `verdict` with `key`, which must be the verdict's signer.
pub fn sign(verdict: &Verdict, key: &SecretKey) -> Result<VerifiedVerdict, Error> {
    if verdict.signer != key.public_key() {
        return Err(SignatureError::KeyIdMismatch {
            keyid: key.public_key().to_text(),
            signer: verdict.signer.to_text(),
        }
        .into());
    }
    verdict.check().map_err(DecodeError::InvalidValue)?;
    let payload = encode_verdict(verdict);
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD,
        }
        .into());
    }
    let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
    let wire = EnvelopeWire {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: Bytes(payload),
        signatures: vec![SignatureWire {
            keyid: verdict.signer.to_text(),
            sig: Sig(sig),
        }],
    };
    let bytes = codec::encode(&wire);
    Ok(Envelope { wire, bytes }.verified(verdict.clone()))
}

/// Splits a body holding one envelope, or a CBOR array of envelopes, into the
/// envelopes' bytes (at most `max_items`, and `max_items * MAX_ENVELOPE`
/// bytes in all). Items are not decoded; pass them to
/// [`verify_batch`](crate::verify_batch).
pub fn split_envelopes(bytes: &[u8], max_items: usize) -> Result<Vec<&[u8]>, DecodeError> {
    codec::split_array(bytes, max_items.saturating_mul(MAX_ENVELOPE), max_items)
}

/// A CBOR array of envelopes, the inverse of [`split_envelopes`].
pub fn join_envelopes<'a>(envelopes: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    codec::join_array(envelopes)
}

/// The first bytes of [`join_envelopes`]'s answer for `n` envelopes: the
/// array's head, which the envelopes follow, for writing one a part at a
/// time.
pub fn envelope_array_head(n: usize) -> Vec<u8> {
    codec::array_head(n as u64)
}

/// Decodes and verifies one envelope.
pub fn open(envelope: &[u8]) -> Result<VerifiedVerdict, Error> {
    Envelope::decode(envelope)?.verify()
}

/// A verdict whose envelope was decoded and whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedVerdict {
    id: Digest,
    verdict: Verdict,
    payload: Vec<u8>,
    sig: [u8; 64],
    envelope: Vec<u8>,
}

impl VerifiedVerdict {
    /// The verdict id (SHA-256 of the payload).
    pub fn id(&self) -> Digest {
        self.id
    }
    /// The decoded verdict.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    /// The canonical envelope bytes, as signed and as stored.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
    /// The signature bytes.
    pub fn signature(&self) -> &[u8; 64] {
        &self.sig
    }
    /// The exact payload bytes that were signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The signer.
    pub fn signer(&self) -> &PublicKey {
        &self.verdict.signer
    }
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeWire {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: Bytes,
    signatures: Vec<SignatureWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureWire {
    keyid: String,
    sig: Sig,
}

/// A byte string of any length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A 64-byte ed25519 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig([u8; 64]);

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Sig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-byte ed25519 signature")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Sig, E> {
                v.try_into()
                    .map(Sig)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}
