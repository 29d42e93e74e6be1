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
    if !encodes_to(&value, bytes) {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Whether the canonical encoding of `value` is exactly `expected`,
/// compared while encoding, without allocating.
fn encodes_to<T: Serialize>(value: &T, expected: &[u8]) -> bool {
    struct Compare<'a> {
        rest: &'a [u8],
    }
    impl std::io::Write for Compare<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(buf) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(buf.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut cmp = Compare { rest: expected };
    serde_cbor::to_writer(&mut cmp, value).is_ok() && cmp.rest.is_empty()
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

/// Splits `bytes` into the encoded items of a top-level CBOR array, or
/// returns `bytes` itself as one item when it is not an array. Each item is
/// only checked for well-formedness here; callers decode them one by one so
/// that one bad item does not hide the others.
pub(crate) fn split_array(
    bytes: &[u8],
    limit: usize,
    max_items: usize,
) -> Result<Vec<&[u8]>, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let Some(&first) = bytes.first() else {
        return Err(DecodeError::Truncated);
    };
    if first >> 5 != 4 {
        return Ok(vec![bytes]);
    }
    if first & 0x1f == 31 {
        return Err(DecodeError::IndefiniteLength { offset: 0 });
    }
    // Walk the array head alone by asking for an array of zero depth budget:
    // read its count, then walk each item.
    let info = first & 0x1f;
    let (count, mut pos) = match info {
        0..=23 => (u64::from(info), 1usize),
        24..=27 => {
            let n = 1usize << (info - 24);
            let raw = bytes.get(1..1 + n).ok_or(DecodeError::Truncated)?;
            (
                raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
                1 + n,
            )
        }
        _ => {
            return Err(DecodeError::Unsupported {
                what: "reserved additional information",
                offset: 0,
            });
        }
    };
    if count > max_items as u64 {
        return Err(DecodeError::InvalidValue(format!(
            "{count} items in one array, over the limit of {max_items}"
        )));
    }
    if count > (bytes.len() - pos) as u64 {
        return Err(DecodeError::Truncated);
    }
    let mut items = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let end = walk(bytes, pos, 1)?;
        items.push(&bytes[pos..end]);
        pos = end;
    }
    if pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: pos,
            count: bytes.len() - pos,
        });
    }
    Ok(items)
}

/// Encodes a CBOR array whose items are already-encoded CBOR items.
pub(crate) fn join_array<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = array_head(items.len() as u64);
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// The head of a CBOR array of `n` items.
pub(crate) fn array_head(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    if n < 24 {
        out.push(0x80 | n as u8);
    } else if n < 0x100 {
        out.extend([0x98, n as u8]);
    } else if n < 0x1_0000 {
        out.push(0x99);
        out.extend((n as u16).to_be_bytes());
    } else if n < 0x1_0000_0000 {
        out.push(0x9a);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(0x9b);
        out.extend(n.to_be_bytes());
    }
    out
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
    fn an_array_head_and_its_items_split_back() {
        for n in [0usize, 1, 23, 24, 255, 256, 65_535, 65_536] {
            let items = vec![&[0x40u8][..]; n];
            let mut written = array_head(n as u64);
            for item in &items {
                written.extend_from_slice(item);
            }
            assert_eq!(written, join_array(items.iter().copied()), "{n} items");
            assert_eq!(split_array(&written, written.len(), n).unwrap().len(), n);
        }
    }

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

    #[test]
    fn arrays_split_into_items() {
        let items: Vec<&[u8]> = vec![&[0x01], &[0x42, 0xaa, 0xbb], &[0x80]];
        let joined = join_array(items.clone().into_iter());
        assert_eq!(split_array(&joined, 100, 10).unwrap(), items);
        assert_eq!(
            split_array(&[0x42, 0xaa, 0xbb], 100, 10).unwrap(),
            vec![&[0x42, 0xaa, 0xbb][..]]
        );
        assert_eq!(
            split_array(&joined, 100, 2).unwrap_err().code(),
            "decode.invalid_value"
        );
        assert_eq!(
            split_array(&[0x83, 0x01], 100, 10).unwrap_err().code(),
            "decode.truncated"
        );
        assert_eq!(
            split_array(&[0x81, 0x01, 0x02], 100, 10)
                .unwrap_err()
                .code(),
            "decode.trailing_bytes"
        );
        let many: Vec<&[u8]> = vec![&[0x00]; 300];
        assert_eq!(
            split_array(&join_array(many.into_iter()), 1000, 1000)
                .unwrap()
                .len(),
            300
        );
    }
}
