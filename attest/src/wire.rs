//! Names and rules of the gossip wire that every peer must share (nodes and
//! `vouch watch`), without the networking itself. Written down in
//! `spec/p2p.md`.

use crate::{Digest, Envelope};

/// The gossipsub topic of verdict envelopes.
pub const VERDICTS_TOPIC: &str = "vouch/verdicts/1";
/// The gossipsub topic of fork proofs.
pub const FORKS_TOPIC: &str = "vouch/forks/1";
/// Largest gossip message: a fork proof (two envelopes) with room to spare.
pub const MAX_GOSSIP_MESSAGE: usize = 64 * 1024;

/// The message id of a gossip message: the verdict id for an envelope on
/// the verdicts topic (so that one verdict is one message whoever
/// publishes it), the SHA-256 of the bytes otherwise.
pub fn gossip_message_id(on_verdicts_topic: bool, data: &[u8]) -> Digest {
    if on_verdicts_topic && let Ok(e) = Envelope::decode(data) {
        return e.id();
    }
    Digest::of(data)
}
