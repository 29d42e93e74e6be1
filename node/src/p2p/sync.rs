//! `/vouch/sync/1`: anti-entropy between peers. A peer asks for log heads,
//! then fetches the ranges it lacks in bounded pages. Messages are CBOR
//! (libp2p's request-response CBOR codec), with the limits below.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use vouch_attest::{Digest, PublicKey};

use crate::store::Store;

/// The protocol name.
pub const PROTOCOL: &str = "/vouch/sync/1";
/// Most envelopes in one range page.
pub const MAX_PAGE: u32 = 1000;
/// Most bytes of envelopes in one range page.
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Most heads in one answer.
pub const MAX_HEADS: usize = 100_000;
/// Most fork proofs in one answer.
pub const MAX_FORKS: usize = 1000;
/// Largest request on the wire.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Largest response on the wire.
pub const MAX_RESPONSE_BYTES: u64 = 10 << 20;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Every log head the peer holds.
    Heads,
    /// Envelopes of one signer's log from `from`, at most `limit`.
    Range {
        /// The signer's 32-byte public key.
        signer: ByteBuf,
        /// First seq wanted.
        from: u64,
        /// Most entries wanted (capped at [`MAX_PAGE`]).
        limit: u32,
    },
    /// The asker's head digest (`store::digest`): answered
    /// [`SyncResponse::Same`] when the peer's is the same, else with the
    /// peer's 256 bucket digests.
    Digest {
        /// SHA-256 over the asker's bucket digests.
        root: ByteBuf,
    },
    /// The heads of the signers whose key starts with one of these bytes
    /// (buckets that differ).
    HeadsIn {
        /// Bucket numbers, at most 256.
        buckets: ByteBuf,
    },
    /// A page of the fork proofs the peer keeps (one per signer), in signer
    /// order after `after`.
    Forks {
        /// The 32-byte key of the last signer already seen, if any.
        after: Option<ByteBuf>,
    },
}

/// One log head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEntry {
    /// The signer's 32-byte public key.
    pub signer: ByteBuf,
    /// Newest contiguous seq.
    pub seq: u64,
    /// Its verdict id.
    pub id: ByteBuf,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The peer's log heads.
    Heads(Vec<HeadEntry>),
    /// The peer's head digest is the asker's: nothing to exchange.
    Same,
    /// The peer's 256 bucket digests (32 bytes each).
    Buckets(Vec<ByteBuf>),
    /// Envelopes in seq order (possibly fewer than asked; empty past the head).
    Range(Vec<ByteBuf>),
    /// Encoded fork proofs (at most [`MAX_FORKS`] and about
    /// [`MAX_PAGE_BYTES`]), and the signer to continue after when more
    /// follow.
    Forks {
        /// The proofs.
        proofs: Vec<ByteBuf>,
        /// Continue after this signer; `None` when this was the last page.
        next: Option<ByteBuf>,
    },
    /// The request was refused.
    Error {
        /// `rate_limited`, `bad_request`, `internal`.
        code: String,
        /// For people.
        message: String,
    },
}

impl SyncResponse {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> SyncResponse {
        SyncResponse::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Answers a request from the store.
pub fn serve(
    store: &Store,
    known: &std::collections::HashSet<PublicKey>,
    request: SyncRequest,
) -> SyncResponse {
    match request {
        // Known signers first: however many signers the store holds, an
        // answer cut at MAX_HEADS still carries the ones that matter.
        SyncRequest::Heads => match store.heads() {
            Ok(heads) => heads_answer(heads, known),
            Err(e) => SyncResponse::error("internal", e.to_string()),
        },
        SyncRequest::Digest { root } => match store.head_digest() {
            Ok(d) if root.as_slice() == d.root.as_bytes() => SyncResponse::Same,
            Ok(d) => SyncResponse::Buckets(
                d.buckets
                    .iter()
                    .map(|b| ByteBuf::from(b.as_bytes().to_vec()))
                    .collect(),
            ),
            Err(e) => SyncResponse::error("internal", e.to_string()),
        },
        SyncRequest::HeadsIn { buckets } => {
            let mut b = buckets.into_vec();
            b.sort_unstable();
            b.dedup();
            match store.heads_in(&b) {
                Ok(heads) => heads_answer(heads, known),
                Err(e) => SyncResponse::error("internal", e.to_string()),
            }
        }
        SyncRequest::Range {
            signer,
            from,
            limit,
        } => {
            let Some(signer) = parse_signer(&signer) else {
                return SyncResponse::error("bad_request", "signer is not a 32-byte ed25519 key");
            };
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            match store.log_range(&signer, from, limit) {
                Ok(page) => {
                    let mut bytes = 0;
                    SyncResponse::Range(
                        page.into_iter()
                            .take_while(|e| {
                                bytes += e.len();
                                bytes <= MAX_PAGE_BYTES
                            })
                            .map(ByteBuf::from)
                            .collect(),
                    )
                }
                Err(e) => SyncResponse::error("internal", e.to_string()),
            }
        }
        SyncRequest::Forks { after } => {
            let after = match after.as_ref().map(|b| parse_signer(b)) {
                Some(None) => return SyncResponse::error("bad_request", "bad signer key"),
                Some(Some(k)) => Some(k),
                None => None,
            };
            match store.forks_page(after.as_ref(), MAX_FORKS, MAX_PAGE_BYTES) {
                Ok((page, more)) => SyncResponse::Forks {
                    next: if more {
                        page.last()
                            .map(|(k, _)| ByteBuf::from(k.as_bytes().to_vec()))
                    } else {
                        None
                    },
                    proofs: page.into_iter().map(|(_, p)| ByteBuf::from(p)).collect(),
                },
                Err(e) => SyncResponse::error("internal", e.to_string()),
            }
        }
    }
}

/// Heads as an answer: known signers first, at most [`MAX_HEADS`].
fn heads_answer(
    mut heads: Vec<crate::store::SignerHead>,
    known: &std::collections::HashSet<PublicKey>,
) -> SyncResponse {
    heads.sort_by_key(|h| !known.contains(&h.signer));
    SyncResponse::Heads(
        heads
            .into_iter()
            .take(MAX_HEADS)
            .map(|h| HeadEntry {
                signer: ByteBuf::from(h.signer.as_bytes().to_vec()),
                seq: h.seq,
                id: ByteBuf::from(h.id.as_bytes().to_vec()),
            })
            .collect(),
    )
}

/// The buckets whose digests differ between `ours` and `theirs` (all of
/// them when `theirs` is malformed).
pub fn differing_buckets(ours: &[Digest], theirs: &[ByteBuf]) -> Vec<u8> {
    if theirs.len() != ours.len() || ours.len() != crate::store::digest::BUCKETS {
        return (0..=255u8).collect();
    }
    ours.iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a.as_bytes().as_slice() != b.as_slice())
        .map(|(i, _)| i as u8)
        .collect()
}

/// A 32-byte signer key from the wire.
pub fn parse_signer(bytes: &[u8]) -> Option<PublicKey> {
    let raw: [u8; 32] = bytes.try_into().ok()?;
    PublicKey::from_bytes(&raw).ok()
}

/// A 32-byte digest from the wire.
pub fn parse_digest(bytes: &[u8]) -> Option<Digest> {
    bytes.try_into().ok().map(Digest)
}
