//! Typed errors. One top-level [`Error`] wraps one enum per cause.
//!
//! Every variant has a stable machine-readable [`code`](Error::code), used by
//! the test vectors in `spec/vectors/` and by JSON output of the tools.

use std::path::PathBuf;

use thiserror::Error;

/// Any error from this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not a well-formed, canonical encoding.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature that does not verify, or an envelope that is not signed as
    /// the format requires.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A break in a signer's hash-chained log.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A fork proof that does not prove a fork.
    #[error(transparent)]
    Fork(#[from] ForkError),
    /// An invalid trust policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A key file or keyring problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A text form (digest, public key) that does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl Error {
    /// A stable identifier of the error class, such as `decode.non_canonical`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(e) => e.code(),
            Error::Signature(e) => e.code(),
            Error::Chain(e) => e.code(),
            Error::Fork(e) => e.code(),
            Error::Policy(_) => "policy.invalid",
            Error::Key(_) => "key.invalid",
            Error::Parse(_) => "parse.invalid",
        }
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the limit for its kind.
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The input ends in the middle of a CBOR item.
    #[error("input ends in the middle of a CBOR item")]
    Truncated,
    /// Bytes follow the single top-level CBOR item.
    #[error("{count} trailing bytes after the CBOR item (at offset {offset})")]
    TrailingBytes {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// An indefinite-length string, array or map.
    #[error("indefinite-length CBOR item at offset {offset}")]
    IndefiniteLength {
        /// Offset of the item's head.
        offset: usize,
    },
    /// A CBOR item the format never uses: tags, floats, `undefined`, simple
    /// values, reserved encodings.
    #[error("unsupported CBOR item ({what}) at offset {offset}")]
    Unsupported {
        /// What was found.
        what: &'static str,
        /// Offset of the item's head.
        offset: usize,
    },
    /// Nesting deeper than the format ever needs.
    #[error("CBOR nesting deeper than {limit}")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// A `version` this implementation does not know.
    #[error("unknown format version {0} (this implementation reads version 1)")]
    UnknownVersion(u64),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(String),
    /// A field the format does not define.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A field given twice.
    #[error("duplicate field `{0}`")]
    DuplicateField(String),
    /// A value of the wrong CBOR type.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// A value of the right type that the format does not allow.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Well-formed, but not the one canonical encoding of its content.
    #[error("not the canonical encoding (re-encoding the decoded value gives different bytes)")]
    NonCanonical,
    /// The envelope's payload type is not the verdict type.
    #[error("payload type `{0}` is not application/vnd.vouch.verdict.v1+cbor")]
    PayloadType(String),
}

impl DecodeError {
    /// A stable identifier of the error class.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "decode.too_large",
            DecodeError::Truncated => "decode.truncated",
            DecodeError::TrailingBytes { .. } => "decode.trailing_bytes",
            DecodeError::IndefiniteLength { .. } => "decode.indefinite_length",
            DecodeError::Unsupported { .. } => "decode.unsupported_item",
            DecodeError::TooDeep { .. } => "decode.too_deep",
            DecodeError::UnknownVersion(_) => "decode.unknown_version",
            DecodeError::MissingField(_) => "decode.missing_field",
            DecodeError::UnknownField(_) => "decode.unknown_field",
            DecodeError::DuplicateField(_) => "decode.duplicate_field",
            DecodeError::WrongType(_) => "decode.wrong_type",
            DecodeError::InvalidValue(_) => "decode.invalid_value",
            DecodeError::NonCanonical => "decode.non_canonical",
            DecodeError::PayloadType(_) => "decode.payload_type",
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The ed25519 signature does not verify over the PAE of the payload with
    /// the signer's key.
    #[error("the signature does not verify with the signer's key")]
    Invalid,
    /// The envelope does not carry exactly one signature.
    #[error("the envelope carries {0} signatures; version 1 requires exactly one")]
    Count(usize),
    /// The signature's `keyid` is not the payload's signer.
    #[error("keyid `{keyid}` is not the payload's signer {signer}")]
    KeyIdMismatch {
        /// The keyid given.
        keyid: String,
        /// The signer named by the payload.
        signer: String,
    },
    /// The signer's public key is not usable (not a curve point, or of small
    /// order).
    #[error("the signer's public key is not a valid ed25519 key")]
    BadKey,
}

impl SignatureError {
    /// A stable identifier of the error class.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Invalid => "signature.invalid",
            SignatureError::Count(_) => "signature.count",
            SignatureError::KeyIdMismatch { .. } => "signature.keyid_mismatch",
            SignatureError::BadKey => "signature.bad_key",
        }
    }
}

/// A break in a signer's log.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// An entry from another signer.
    #[error("entry at seq {seq} is signed by another signer")]
    WrongSigner {
        /// The entry's seq.
        seq: u64,
    },
    /// The entry's seq is not the next one.
    #[error("expected seq {expected}, found {found}")]
    SeqGap {
        /// The next seq of the log.
        expected: u64,
        /// The seq given.
        found: u64,
    },
    /// The entry's prev is not the id of the entry before it.
    #[error("entry at seq {seq} names prev {found}, but the entry before it has id {expected}")]
    PrevMismatch {
        /// The entry's seq.
        seq: u64,
        /// The id of the previous entry.
        expected: String,
        /// The prev given.
        found: String,
    },
    /// An empty sequence where entries were required.
    #[error("no entries")]
    Empty,
}

impl ChainError {
    /// A stable identifier of the error class.
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::WrongSigner { .. } => "chain.wrong_signer",
            ChainError::SeqGap { .. } => "chain.seq_gap",
            ChainError::PrevMismatch { .. } => "chain.prev_mismatch",
            ChainError::Empty => "chain.empty",
        }
    }
}

/// Why a fork proof does not prove a fork.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ForkError {
    /// One of the two envelopes is not a valid signed verdict.
    #[error("envelope {which} of the fork proof is invalid: {source}")]
    Envelope {
        /// `a` or `b`.
        which: char,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// The two envelopes are by different signers.
    #[error("the two envelopes are by different signers")]
    DifferentSigners,
    /// The two envelopes carry the same payload.
    #[error("the two envelopes carry the same payload")]
    SamePayload,
    /// The two verdicts neither share a seq nor a prev.
    #[error("the two verdicts share neither seq nor prev")]
    NotConflicting,
    /// `a` and `b` are not in the canonical order (a's id below b's id).
    #[error("envelopes are not in canonical order (id of a must sort below id of b)")]
    Order,
}

impl ForkError {
    /// A stable identifier of the error class.
    pub fn code(&self) -> &'static str {
        match self {
            ForkError::Envelope { .. } => "fork.envelope",
            ForkError::DifferentSigners => "fork.different_signers",
            ForkError::SamePayload => "fork.same_payload",
            ForkError::NotConflicting => "fork.not_conflicting",
            ForkError::Order => "fork.order",
        }
    }
}

/// An invalid trust policy.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The TOML does not parse or does not match the policy format.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The policy names no signer.
    #[error("the policy names no signer")]
    NoSigners,
    /// The threshold is 0 or above the number of configured signers.
    #[error("threshold {threshold} is not between 1 and the {configured} configured {unit}")]
    Threshold {
        /// The threshold given.
        threshold: usize,
        /// M.
        configured: usize,
        /// `signers` or `operators`.
        unit: &'static str,
    },
    /// Two signers share a key or a name.
    #[error("signer `{name}` (line {line}) repeats the {what} of an earlier signer")]
    Duplicate {
        /// The repeating signer.
        name: String,
        /// 1-based line.
        line: usize,
        /// `key` or `name`.
        what: &'static str,
    },
    /// A signer entry with an unusable value.
    #[error("signer `{name}` (line {line}): {message}")]
    Signer {
        /// The signer's name.
        name: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A key file or keyring problem.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The secret key file can be read by group or others.
    #[error(
        "{path}: secret key file has mode {mode:04o}, readable by group or others; \
         run `chmod 600 {path}` if it was not exposed, or make a new key"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file's content is not a key.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A keyring file with a mistake at a known place.
    #[error("{path}:{line}:{column}: {message}")]
    Keyring {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The operating system's random source failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The file exists already and was not overwritten.
    #[error("{0}: exists already; refusing to overwrite a key")]
    Exists(PathBuf),
}

/// A text form that does not parse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// A digest that is not 64 characters long.
    #[error("a sha256 digest is 64 hex digits, this has {0} characters")]
    DigestLength(usize),
    /// A digest with non-hex characters.
    #[error("a sha256 digest is 64 hex digits, this has non-hex characters")]
    DigestHex,
    /// A public key without the `ed25519:` prefix.
    #[error("a public key is written `ed25519:<base64 of 32 bytes>`")]
    KeyPrefix,
    /// A public key whose base64 is not valid or not 32 bytes.
    #[error("the base64 after `ed25519:` is not 32 bytes of standard padded base64")]
    KeyBase64,
    /// Not a point on the curve, or a weak (small-order) key.
    #[error("the 32 bytes are not a valid ed25519 public key")]
    KeyPoint,
}
