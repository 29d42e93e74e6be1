//! The libp2p behaviour: one field per concern.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, connection_limits, gossipsub, identify, kad, mdns, ping,
    request_response,
};

use crate::p2p::blobs::{self, BlobRequest, BlobResponse};
use crate::p2p::gossip;
use crate::p2p::limits::{AddressCaps, AddressLimits};
use crate::p2p::sync::{self, SyncRequest, SyncResponse};

/// Kademlia protocol name of the vouch DHT.
pub const KAD_PROTOCOL: &str = "/vouch/kad/1.0.0";
/// Identify protocol version.
pub const IDENTIFY_PROTOCOL: &str = "/vouch/id/1.0.0";

/// Connection caps (see `spec/p2p.md`, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Handshakes in progress, inbound, in total.
    pub pending_inbound: u32,
    /// Dials in progress, in total.
    pub pending_outbound: u32,
    /// Connections to one peer id.
    pub per_peer: u32,
    /// Inbound connections of unknown peers: per IP, per subnet, in total.
    pub address: AddressCaps,
}

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Totals and per-peer caps (first: refuses before anything is set up).
    pub connection_limits: connection_limits::Behaviour,
    /// Caps by address and subnet, with known peers exempt.
    pub address_limits: AddressLimits,
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
    /// Evidence from peers.
    pub blobs: request_response::cbor::Behaviour<BlobRequest, BlobResponse>,
    /// Local-network discovery, off unless configured.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

impl Behaviour {
    /// Builds the behaviour for `key`.
    pub fn new(
        key: &Keypair,
        mdns_on: bool,
        heartbeat: Duration,
        caps: ConnectionCaps,
        known: HashSet<PeerId>,
    ) -> Result<Behaviour, String> {
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
        let blob_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(blobs::MAX_REQUEST_BYTES)
            .set_response_size_maximum(blobs::MAX_RESPONSE_BYTES);
        let blobs = request_response::Behaviour::with_codec(
            blob_codec,
            [(
                StreamProtocol::new(blobs::PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(120))
                .with_max_concurrent_streams(blobs::MAX_STREAMS),
        );
        let mdns = if mdns_on {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let connection_limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(caps.pending_inbound))
                .with_max_pending_outgoing(Some(caps.pending_outbound))
                .with_max_established_per_peer(Some(caps.per_peer)),
        );
        Ok(Behaviour {
            connection_limits,
            address_limits: AddressLimits::new(caps.address, known),
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
            blobs,
            mdns: Toggle::from(mdns),
        })
    }
}
