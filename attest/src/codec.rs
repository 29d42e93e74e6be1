//! Canonical CBOR. Every call into the CBOR library lives in this module, so
//! the library can be swapped without touching any caller; the test vectors
//! in `spec/vectors/` pin the bytes.
//!
//! Decoding is strict: a size limit, a well-formedness walk that refuses
//! indefinite lengths, tags, floats and trailing bytes, a typed decode that
//! refuses unknown, missing, duplicate and mistyped fields, and finally a
//! re-encode that must give back the exact input bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;

/// Deepest nesting any vouch structure uses, with room to spare.
const MAX_DEPTH: usize = 8;

/// Encodes `value` in the canonical form: definite lengths, shortest heads,
/// struct fields as a text-keyed map in declaration order.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail, and every vouch type serializes
    // without error (text keys, no maps with non-string keys).
    serde_cbor::to_vec(value).expect("encoding a vouch type into memory cannot fail")
}

/// Decodes exactly one canonical CBOR item of type `T` from `bytes`.
pub(crate) fn decode<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    check_well_formed(bytes, limit)?;
    let value: T = serde_cbor::from_slice(bytes).map_err(classify)?;
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Reads the `version` key of a top-level map without decoding the rest,
/// so an unknown version is reported as such and not as a field mismatch.
pub(crate) fn peek_version(bytes: &[u8]) -> Result<Option<u64>, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        version: Option<u64>,
    }
    match serde_cbor::from_slice::<Probe>(bytes) {
        Ok(p) => Ok(p.version),
        // Whatever is wrong will be reported by the full decode.
        Err(_) => Ok(None),
    }
}

/// Size limit, then a walk over the raw bytes.
pub(crate) fn check_well_formed(bytes: &[u8], limit: usize) -> Result<(), DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let end = walk(bytes, 0, 0)?;
    if end != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: end,
            count: bytes.len() - end,
        });
    }
    Ok(())
}

/// Walks one item starting at `pos`; returns the offset just past it.
fn walk(bytes: &[u8], pos: usize, depth: usize) -> Result<usize, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
    }
    let head = *bytes.get(pos).ok_or(DecodeError::Truncated)?;
    let major = head >> 5;
    let info = head & 0x1f;
    let (arg, mut next) = match info {
        0..=23 => (u64::from(info), pos + 1),
        24..=27 => {
            let n = 1usize << (info - 24);
            let raw = bytes
                .get(pos + 1..pos + 1 + n)
                .ok_or(DecodeError::Truncated)?;
            let arg = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            (arg, pos + 1 + n)
        }
        31 if matches!(major, 2..=5) => return Err(DecodeError::IndefiniteLength { offset: pos }),
        31 if major == 7 => {
            return Err(DecodeError::Unsupported {
                what: "break",
                offset: pos,
            });
        }
        _ => {
            return Err(DecodeError::Unsupported {
                what: "reserved additional information",
                offset: pos,
            });
        }
    };
    let remaining = (bytes.len() - next) as u64;
    match major {
        0 | 1 => {}
        2 | 3 => {
            if arg > remaining {
                return Err(DecodeError::Truncated);
            }
            next += arg as usize;
        }
        4 | 5 => {
            let items = if major == 5 {
                arg.saturating_mul(2)
            } else {
                arg
            };
            // Every item takes at least one byte: no allocation is sized
            // from a count the input cannot back.
            if items > remaining {
                return Err(DecodeError::Truncated);
            }
            for _ in 0..items {
                next = walk(bytes, next, depth + 1)?;
            }
        }
        6 => {
            return Err(DecodeError::Unsupported {
                what: "tag",
                offset: pos,
            });
        }
        _ => match info {
            20..=22 => {}
            25..=27 => {
                return Err(DecodeError::Unsupported {
                    what: "float",
                    offset: pos,
                });
            }
            23 => {
                return Err(DecodeError::Unsupported {
                    what: "undefined",
                    offset: pos,
                });
            }
            _ => {
                return Err(DecodeError::Unsupported {
                    what: "simple value",
                    offset: pos,
                });
            }
        },
    }
    Ok(next)
}

/// Turns the CBOR library's error into a typed one.
fn classify(e: serde_cbor::Error) -> DecodeError {
    if e.is_eof() {
        return DecodeError::Truncated;
    }
    let msg = e.to_string();
    // serde_cbor appends " at offset N"; the rest is serde's own wording.
    let msg = match msg.rfind(" at offset ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let quoted = || {
        msg.split('`')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_else(|| msg.clone())
    };
    if msg.starts_with("missing field") {
        DecodeError::MissingField(quoted())
    } else if msg.starts_with("unknown field") {
        DecodeError::UnknownField(quoted())
    } else if msg.starts_with("duplicate field") {
        DecodeError::DuplicateField(quoted())
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid length") {
        DecodeError::WrongType(msg)
    } else if msg.starts_with("trailing data") {
        DecodeError::TrailingBytes {
            offset: e.offset() as usize,
            count: 0,
        }
    } else {
        DecodeError::InvalidValue(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_refuses_what_the_format_never_uses() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x5f, 0x41, 0x00, 0xff], "decode.indefinite_length"),
            (&[0x9f, 0xff], "decode.indefinite_length"),
            (&[0xbf, 0xff], "decode.indefinite_length"),
            (&[0xc0, 0x00], "decode.unsupported_item"),
            (&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0], "decode.unsupported_item"),
            (&[0xf7], "decode.unsupported_item"),
            (&[0x1c], "decode.unsupported_item"),
            (&[0x01, 0x02], "decode.trailing_bytes"),
            (&[0x5a, 0xff, 0xff, 0xff, 0xff], "decode.truncated"),
            (
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "decode.truncated",
            ),
            (&[], "decode.truncated"),
        ];
        for (bytes, code) in cases {
            let err = check_well_formed(bytes, 100).unwrap_err();
            assert_eq!(err.code(), *code, "{bytes:02x?}: {err}");
        }
        let deep = [0x81u8; 20];
        assert_eq!(
            check_well_formed(&deep, 100).unwrap_err().code(),
            "decode.too_deep"
        );
        assert_eq!(
            check_well_formed(&[0u8; 10], 5).unwrap_err().code(),
            "decode.too_large"
        );
        assert!(check_well_formed(&[0x82, 0xf5, 0xf6], 10).is_ok());
    }
}
