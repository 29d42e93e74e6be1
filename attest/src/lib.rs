//! # vouch-attest
//!
//! The pure core of vouch: the verdict format, its canonical CBOR encoding,
//! DSSE-style ed25519 signing and verification (single and batch), per-signer
//! hash-chained logs, fork proofs, trust-policy evaluation, key files and the
//! keyring. No network, no database, no async, no clock: callers pass bytes
//! and `now`, and get values back. `spec/verdict.md` is the normative text.
//!
//! ```
//! use vouch_attest::*;
//! let key = SecretKey::from_seed(&[1; 32]);
//! let verdict = Verdict {
//!     version: FORMAT_VERSION,
//!     signer: key.public_key(),
//!     seq: 0,
//!     prev: Digest::ZERO,
//!     issued_at: 1_790_000_000,
//!     subject: Subject {
//!         distribution: "archlinux".into(),
//!         release: None,
//!         component: Some("core".into()),
//!         architecture: "x86_64".into(),
//!         name: "pacman".into(),
//!         version: "5.2.2-1".into(),
//!         filename: "pacman-5.2.2-1-x86_64.pkg.tar.zst".into(),
//!         sha256: Digest::of(b"the package"),
//!     },
//!     inputs: Inputs {
//!         buildinfo_sha256: None,
//!         source_url: None,
//!         backend: "demo".into(),
//!         backend_version: "1".into(),
//!     },
//!     outcome: Outcome::Good,
//!     evidence: Evidence::default(),
//! };
//! let signed = sign(&verdict, &key)?;
//! let checked = open(signed.envelope())?;
//! assert_eq!(checked.verdict(), &verdict);
//! # Ok::<(), vouch_attest::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod batch;
mod bundle;
mod codec;
mod dates;
mod digest;
mod ed25519;
mod envelope;
mod error;
mod fork;
pub mod intoto;
mod keyfile;
mod keyring;
mod keys;
mod log;
mod policy;
mod verdict;
pub mod wire;

pub use batch::verify_batch;
pub use bundle::{BUNDLE_VERSION, Bundle, MAX_BUNDLE, Opened};
pub use dates::parse_date;
pub use digest::{Digest, Hasher};
pub use envelope::{
    Envelope, MAX_ENVELOPE, MAX_PAYLOAD, PAYLOAD_TYPE, VerifiedVerdict, decode_verdict,
    encode_verdict, envelope_array_head, join_envelopes, open, pae, sign, split_envelopes,
};
pub use error::{
    ChainError, DecodeError, Error, ForkError, KeyError, ParseError, PolicyError, SignatureError,
};
pub use fork::{CheckedFork, FORK_PROOF_VERSION, ForkProof, MAX_FORK_PROOF, find_forks};
pub use keyfile::{
    public_key_path, read_public_key, read_secret_key, write_public_key, write_secret_key,
};
pub use keyring::{KeyringEntry, parse_entry, read_entry, read_keyring};
pub use keys::{PublicKey, SecretKey};
pub use log::{Head, Placement, verify_chain};
pub use policy::{
    CountBy, DEFAULT_MAX_CLOCK_SKEW, Decision, Exclusion, Policy, SignerReport, SignerState,
    Status, TrustedSigner,
};
pub use verdict::{
    Evidence, FORMAT_VERSION, FailReason, Inputs, MAX_TEXT, MAX_URL, Outcome, OutcomeKind, Subject,
    Verdict,
};
