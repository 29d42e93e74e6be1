//! Gossipsub: topics, message ids, limits and peer scoring.

use std::time::Duration;

use libp2p::gossipsub::{
    self, ConfigBuilder, MessageId, PeerScoreParams, PeerScoreThresholds, TopicHash,
    TopicScoreParams, ValidationMode,
};
pub use vouch_attest::wire::{FORKS_TOPIC, MAX_GOSSIP_MESSAGE as MAX_MESSAGE, VERDICTS_TOPIC};

/// The message id: SHA-256 of the verdict payload for envelopes (so the same
/// verdict is one message whoever publishes it), SHA-256 of the bytes
/// otherwise.
pub fn message_id(m: &gossipsub::Message) -> MessageId {
    let verdicts = gossipsub::IdentTopic::new(VERDICTS_TOPIC).hash();
    let digest = vouch_attest::wire::gossip_message_id(m.topic == verdicts, &m.data);
    MessageId::from(digest.as_bytes().to_vec())
}

/// The gossipsub configuration: strict validation (messages are signed by
/// the publishing peer, and only relayed after the application accepted
/// them), bounded message size, ids from content.
pub fn config(heartbeat: Duration) -> Result<gossipsub::Config, String> {
    ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(MAX_MESSAGE)
        .heartbeat_interval(heartbeat)
        .duplicate_cache_time(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
}

/// Peer scoring: invalid messages cost a lot and decay slowly; nothing else
/// is penalized (a quiet network must not look like a misbehaving one), and
/// many peers on one IP (a testnet, a NAT) are fine.
pub fn scoring(topics: &[TopicHash]) -> (PeerScoreParams, PeerScoreThresholds) {
    let mut params = PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    for t in topics {
        params.topics.insert(
            t.clone(),
            TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 100.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: 0.9,
                first_message_deliveries_cap: 100.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -100.0,
                invalid_message_deliveries_decay: 0.99,
                ..TopicScoreParams::default()
            },
        );
    }
    (params, PeerScoreThresholds::default())
}
