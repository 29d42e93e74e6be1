//! The libp2p behaviour: one field per concern.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, gossipsub, identify, kad, mdns, ping, request_response};

use crate::p2p::gossip;
use crate::p2p::sync::{self, SyncRequest, SyncResponse};

/// Kademlia protocol name of the vouch DHT.
pub const KAD_PROTOCOL: &str = "/vouch/kad/1.0.0";
/// Identify protocol version.
pub const IDENTIFY_PROTOCOL: &str = "/vouch/id/1.0.0";

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Verdict and fork-proof gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Peer discovery.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Listen addresses and protocols of peers.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Anti-entropy.
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    /// Local-network discovery, off unless configured.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(key: &Keypair, mdns_on: bool, heartbeat: Duration) -> Result<Behaviour, String> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip::config(heartbeat)?,
        )
        .map_err(str::to_string)?;
        let topics = [
            gossipsub::IdentTopic::new(gossip::VERDICTS_TOPIC).hash(),
            gossipsub::IdentTopic::new(gossip::FORKS_TOPIC).hash(),
        ];
        let (params, thresholds) = gossip::scoring(&topics);
        gossipsub.with_peer_score(params, thresholds)?;

        let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                .with_agent_version(format!("vouchd/{}", env!("CARGO_PKG_VERSION"))),
        );
        let codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(sync::MAX_REQUEST_BYTES)
            .set_response_size_maximum(sync::MAX_RESPONSE_BYTES);
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(
                StreamProtocol::new(sync::PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(60))
                .with_max_concurrent_streams(64),
        );
        let mdns = if mdns_on {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok(Behaviour {
            gossipsub,
            kad,
            identify,
            // A peer that stops answering for 20 s is gone: its connection
            // closes and discovery finds a way back when it returns.
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(10)),
            ),
            sync,
            mdns: Toggle::from(mdns),
        })
    }
}
