//! A light gossip peer for `vouch watch`: it joins the vouch network
//! (gossipsub on the verdict and fork-proof topics, identify, ping, and
//! Kademlia as a client to find more peers), hands every message it
//! receives to the caller, and tells gossipsub to ignore each one, so that
//! it relays nothing; it stores nothing either.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, noise, ping, tcp, yamux};
use vouch_attest::wire::{FORKS_TOPIC, MAX_GOSSIP_MESSAGE, VERDICTS_TOPIC, gossip_message_id};

/// The nodes' Kademlia protocol (`spec/p2p.md`).
const KAD_PROTOCOL: &str = "/vouch/kad/1.0.0";
/// The nodes' identify protocol.
const IDENTIFY_PROTOCOL: &str = "/vouch/id/1.0.0";

#[derive(NetworkBehaviour)]
struct Light {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

/// What arrived.
pub(crate) enum Heard {
    /// A message on the verdicts topic.
    Verdict { from: PeerId, data: Vec<u8> },
    /// A message on the fork-proofs topic.
    Fork { from: PeerId, data: Vec<u8> },
    /// A peer connected.
    Connected(PeerId),
}

/// The peer.
pub(crate) struct LightPeer {
    swarm: Swarm<Light>,
    verdicts: gossipsub::TopicHash,
    forks: gossipsub::TopicHash,
    max_peers: usize,
    connected: HashSet<PeerId>,
}

impl LightPeer {
    /// Starts a peer with a fresh identity and dials `bootstrap`.
    pub(crate) fn start(bootstrap: &[Multiaddr], max_peers: usize) -> Result<LightPeer> {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .context("TCP transport")?
            .with_quic()
            .with_dns()
            .context("DNS")?
            .with_behaviour(
                |key| -> Result<Light, Box<dyn std::error::Error + Send + Sync>> {
                    let config = gossipsub::ConfigBuilder::default()
                        .validation_mode(gossipsub::ValidationMode::Strict)
                        .validate_messages()
                        .message_id_fn(|m: &gossipsub::Message| {
                            let on_verdicts = m.topic == IdentTopic::new(VERDICTS_TOPIC).hash();
                            MessageId::from(
                                gossip_message_id(on_verdicts, &m.data).as_bytes().to_vec(),
                            )
                        })
                        .max_transmit_size(MAX_GOSSIP_MESSAGE)
                        .heartbeat_interval(Duration::from_secs(1))
                        .build()?;
                    let gossipsub = gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Signed(key.clone()),
                        config,
                    )?;
                    let peer_id = key.public().to_peer_id();
                    let mut kad = kad::Behaviour::with_config(
                        peer_id,
                        kad::store::MemoryStore::new(peer_id),
                        kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
                    );
                    kad.set_mode(Some(kad::Mode::Client));
                    Ok(Light {
                        gossipsub,
                        identify: identify::Behaviour::new(
                            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                                .with_agent_version(format!(
                                    "vouch-watch/{}",
                                    env!("CARGO_PKG_VERSION")
                                )),
                        ),
                        ping: ping::Behaviour::new(ping::Config::new()),
                        kad,
                    })
                },
            )
            .map_err(|e| anyhow::anyhow!("building the peer: {e}"))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let verdicts = IdentTopic::new(VERDICTS_TOPIC);
        let forks = IdentTopic::new(FORKS_TOPIC);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&verdicts)
            .context("subscribing")?;
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&forks)
            .context("subscribing")?;
        for addr in bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            swarm
                .dial(addr.clone())
                .with_context(|| format!("dialing {addr}"))?;
        }
        Ok(LightPeer {
            swarm,
            verdicts: verdicts.hash(),
            forks: forks.hash(),
            max_peers,
            connected: HashSet::new(),
        })
    }

    /// The next thing heard.
    pub(crate) async fn next(&mut self) -> Heard {
        loop {
            let event = self.swarm.select_next_some().await;
            match event {
                SwarmEvent::Behaviour(LightEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                })) => {
                    // Seen, never passed on.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    if message.topic == self.verdicts {
                        return Heard::Verdict {
                            from: propagation_source,
                            data: message.data,
                        };
                    }
                    if message.topic == self.forks {
                        return Heard::Fork {
                            from: propagation_source,
                            data: message.data,
                        };
                    }
                }
                SwarmEvent::Behaviour(LightEvent::Identify(identify::Event::Received {
                    peer_id,
                    info,
                    ..
                })) => {
                    for a in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, a);
                    }
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
                SwarmEvent::Behaviour(LightEvent::Kad(kad::Event::RoutingUpdated {
                    peer,
                    addresses,
                    ..
                })) => {
                    if self.connected.len() < self.max_peers
                        && !self.connected.contains(&peer)
                        && let Some(a) = addresses.iter().next()
                    {
                        let _ = self.swarm.dial(a.clone().with(Protocol::P2p(peer)));
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, .. }
                    if self.connected.insert(peer_id) =>
                {
                    return Heard::Connected(peer_id);
                }
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } => {
                    self.connected.remove(&peer_id);
                }
                _ => {}
            }
        }
    }
}
