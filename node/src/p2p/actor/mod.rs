//! The actor: sole owner of the swarm. A `select!` over swarm events,
//! commands from handles, outbound publications, results of ingest tasks and
//! timers. Nothing here blocks: store reads and ingest run in tasks that
//! report back through a bounded channel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, mdns, noise, ping, tcp, yamux};
use serde_bytes::ByteBuf;
use tokio::sync::{Notify, mpsc};
use vouch_attest::{Envelope, ForkProof, PublicKey};

use crate::admission::Bucket;
use crate::ingest::{Ingest, Outbound, Status};
use crate::metrics::{Metrics, ReasonLabel, ResultLabel};
use crate::p2p::behaviour::{Behaviour, BehaviourEvent};
use crate::p2p::sync::{self, SyncRequest, SyncResponse};
use crate::p2p::{Command, NetworkConfig, PeerInfo, gossip, signer_of};
use crate::store::Store;

mod anti_entropy;
mod evidence;
mod incoming;

use anti_entropy::{Want, page_ingester};
use incoming::{acceptance_label, store_fork};

/// Gossip envelopes verified together, at most.
const GOSSIP_BATCH: usize = 256;
/// Gossip batches being ingested at once, at most; beyond, messages are
/// ignored (and counted).
const GOSSIP_IN_FLIGHT: usize = 8;
/// Range pages queued for ingest per fetch before the next is requested.
const PIPELINE: usize = 2;

/// Results of tasks, back to the actor.
enum Done {
    Gossip(Vec<(MessageId, PeerId, MessageAcceptance, Option<Gap>)>),
    Page {
        signer: PublicKey,
        invalid: usize,
        peer: PeerId,
    },
    Respond(ResponseChannel<SyncResponse>, SyncResponse),
    /// A peer's heads compared with ours.
    Heads {
        peer: PeerId,
        wants: Vec<Want>,
    },
    /// A gossiped fork proof checked and stored.
    Fork(MessageId, PeerId, MessageAcceptance),
    /// Our head digest, computed for an anti-entropy round.
    OwnDigest(crate::store::digest::HeadDigest),
    /// A blob a peer sent, checked: its content, or why not.
    BlobChecked(vouch_attest::Digest, PeerId, Result<Vec<u8>, String>),
    /// A blob request to answer.
    BlobRespond(
        ResponseChannel<crate::p2p::blobs::BlobResponse>,
        crate::p2p::blobs::BlobResponse,
    ),
}

/// A hole in a signer's log seen in gossip: fetch `from..upto` from `peer`.
struct Gap {
    signer: PublicKey,
    from: u64,
    upto: u64,
}

/// What an outbound sync request was for.
enum Purpose {
    Digest,
    Heads,
    Range { signer: PublicKey },
    Forks,
}

/// An ongoing catch-up of one signer's log from one peer.
struct Fetch {
    peer: PeerId,
    /// The peer's head seq: fetch until here.
    target: u64,
    /// Next seq to request.
    next_from: u64,
    /// A request is on the wire.
    outstanding: bool,
    /// Pages handed to ingest and not yet done.
    queued: usize,
}

struct PeerLimits {
    requests: Bucket,
    messages: Bucket,
}

pub(super) struct Actor {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    store: Store,
    ingest: Ingest,
    metrics: Arc<Metrics>,
    commands: mpsc::Receiver<Command>,
    outbound: mpsc::Receiver<Outbound>,
    shutdown: Arc<Notify>,
    done_tx: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    pages: mpsc::Sender<(PublicKey, PeerId, Vec<Vec<u8>>)>,
    verdicts: IdentTopic,
    forks: IdentTopic,
    batch: Vec<(MessageId, PeerId, Vec<u8>)>,
    batches_in_flight: usize,
    requests: HashMap<OutboundRequestId, Purpose>,
    fetching: HashMap<PublicKey, Fetch>,
    limits: HashMap<PeerId, PeerLimits>,
    addresses: HashMap<PeerId, Multiaddr>,
    /// Signers of the keyring (and `trusted`, and this node): served and
    /// fetched first.
    known_signers: Arc<HashSet<PublicKey>>,
    listen: Vec<Multiaddr>,
    bootstrapped: bool,
    round: u64,
    /// Our bucket digests, as of the last round.
    own_buckets: Vec<vouch_attest::Digest>,
    /// Blobs being looked for at peers.
    blob_hunts: HashMap<vouch_attest::Digest, evidence::BlobHunt>,
    blob_requests: HashMap<OutboundRequestId, vouch_attest::Digest>,
    /// Blob answers being read from the store or sent.
    blob_serving: HashSet<request_response::InboundRequestId>,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        keypair: Keypair,
        config: NetworkConfig,
        store: Store,
        ingest: Ingest,
        metrics: Arc<Metrics>,
        commands: mpsc::Receiver<Command>,
        outbound: mpsc::Receiver<Outbound>,
        shutdown: Arc<Notify>,
    ) -> Result<Actor> {
        let heartbeat = if config.sync_interval < Duration::from_secs(5) {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        let mdns_on = config.mdns;
        let caps = config.caps;
        let known = config.known.clone();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
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
            .with_behaviour(|key| {
                Behaviour::new(key, mdns_on, heartbeat, caps, known)
                    .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
            })
            .map_err(|e| anyhow::anyhow!("building the behaviour: {e}"))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let verdicts = IdentTopic::new(gossip::VERDICTS_TOPIC);
        let forks = IdentTopic::new(gossip::FORKS_TOPIC);
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
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .with_context(|| format!("listening on {addr}"))?;
        }
        for addr in &config.bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        let known_signers = Arc::new(known_signers_of(&config.known));
        let (done_tx, done_rx) = mpsc::channel(1024);
        let (pages, pages_rx) = mpsc::channel(256);
        tokio::spawn(page_ingester(ingest.clone(), pages_rx, done_tx.clone()));
        Ok(Actor {
            swarm,
            config,
            store,
            ingest,
            metrics,
            commands,
            outbound,
            shutdown,
            done_tx,
            done_rx,
            pages,
            verdicts,
            forks,
            batch: Vec::new(),
            batches_in_flight: 0,
            requests: HashMap::new(),
            fetching: HashMap::new(),
            limits: HashMap::new(),
            addresses: HashMap::new(),
            known_signers,
            listen: Vec::new(),
            bootstrapped: false,
            round: 0,
            own_buckets: Vec::new(),
            blob_hunts: HashMap::new(),
            blob_requests: HashMap::new(),
            blob_serving: HashSet::new(),
        })
    }

    pub(super) async fn run(mut self) {
        let mut flush = tokio::time::interval(Duration::from_millis(5));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync_tick = tokio::time::interval(self.config.sync_interval);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let discovery_every = (self.config.sync_interval * 2).max(Duration::from_secs(2));
        let mut discovery = tokio::time::interval(discovery_every);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut outbound_open = true;
        let shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.notified() => break,
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.command(c),
                    None => break,
                },
                Some(done) = self.done_rx.recv() => self.done(done),
                event = self.swarm.select_next_some() => self.swarm_event(event),
                out = self.outbound.recv(), if outbound_open => match out {
                    Some(o) => self.publish(o),
                    None => outbound_open = false,
                },
                _ = flush.tick(), if !self.batch.is_empty() => self.flush_gossip(),
                _ = sync_tick.tick() => self.anti_entropy(),
                _ = discovery.tick() => self.discover(),
            }
        }
        tracing::info!("p2p stopped");
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Peers(reply) => {
                let gs = &self.swarm.behaviour().gossipsub;
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: p.to_string(),
                        signer: signer_of(p).map(|k| k.to_text()),
                        address: self.addresses.get(p).map(ToString::to_string),
                        score: gs.peer_score(p),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen_with_id());
            }
            Command::FetchBlob {
                sha256,
                prefer,
                reply,
            } => self.hunt_blob(sha256, prefer, reply),
        }
    }

    fn listen_with_id(&self) -> Vec<Multiaddr> {
        let me = *self.swarm.local_peer_id();
        self.listen
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(me)))
            .collect()
    }

    fn publish(&mut self, o: Outbound) {
        let (topic, bytes) = match o {
            Outbound::Verdict(b) => (self.verdicts.clone(), b),
            Outbound::Fork(b) => (self.forks.clone(), b),
        };
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            Ok(_) => {}
            Err(gossipsub::PublishError::Duplicate) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!("no peers to publish to yet; anti-entropy will carry it");
            }
            Err(e) => tracing::warn!(error = %e, "publish failed"),
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "p2p listening");
                self.listen.push(address);
                self.write_addr_file();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                self.addresses
                    .insert(peer_id, endpoint.get_remote_address().clone());
                if !self.bootstrapped {
                    self.bootstrapped = true;
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
                // A new (or returning) peer: compare logs at once rather
                // than at the next round, so a joining or healed node
                // catches up without waiting for the timer.
                if num_established.get() == 1 {
                    self.compare_with(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.addresses.remove(&peer_id);
                self.limits.remove(&peer_id);
                // Catch-ups from this peer resume with another one.
                self.fetching
                    .retain(|_, f| f.peer != peer_id || f.queued > 0);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error: libp2p::swarm::ListenError::Denied { cause },
                ..
            } => {
                tracing::debug!(%send_back_addr, %cause, "inbound connection refused");
                self.metrics
                    .dropped
                    .get_or_create(&ReasonLabel {
                        reason: "p2p.connection_limit",
                    })
                    .inc();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.gossip_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.sync_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(e)) => self.blobs_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    if is_dialable(&addr) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(e @ (ping::Failure::Timeout | ping::Failure::Other { .. })),
            })) => {
                // libp2p leaves dead connections open; close them so that
                // discovery looks for a way back.
                tracing::info!(%peer, error = %e, "peer stopped answering pings; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, ..
            })) => {
                self.maybe_dial(peer);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                    self.maybe_dial(peer);
                }
            }
            _ => {}
        }
    }

    fn maybe_dial(&mut self, peer: PeerId) {
        if peer == *self.swarm.local_peer_id() || self.swarm.is_connected(&peer) {
            return;
        }
        if self.swarm.connected_peers().count() >= self.config.max_peers {
            return;
        }
        let _ = self.swarm.dial(peer);
    }

    fn write_addr_file(&self) {
        let Some(path) = &self.config.addr_file else {
            return;
        };
        let text: String = self
            .listen_with_id()
            .iter()
            .map(|a| format!("{a}\n"))
            .collect();
        let tmp = path.with_extension("p2p.tmp");
        if std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "cannot write the p2p address file");
        }
    }

    fn done(&mut self, d: Done) {
        match d {
            Done::Gossip(results) => {
                self.batches_in_flight = self.batches_in_flight.saturating_sub(1);
                for (id, peer, acceptance, gap) in results {
                    let label = acceptance_label(&acceptance);
                    if matches!(acceptance, MessageAcceptance::Reject) {
                        tracing::info!(%peer, "peer sent an invalid verdict; it is scored down");
                    }
                    self.validate(&id, &peer, acceptance, label);
                    if let Some(gap) = gap {
                        self.fetch_gap(peer, gap);
                    }
                }
            }
            Done::Page {
                signer,
                invalid,
                peer,
            } => {
                if invalid > 0 {
                    tracing::warn!(%peer, invalid, "peer served invalid envelopes in sync");
                    self.metrics
                        .dropped
                        .get_or_create(&ReasonLabel {
                            reason: "p2p.invalid_sync",
                        })
                        .inc_by(invalid as u64);
                }
                let next = match self.fetching.get_mut(&signer) {
                    Some(f) => {
                        f.queued = f.queued.saturating_sub(1);
                        if f.next_from > f.target && f.queued == 0 && !f.outstanding {
                            None
                        } else if !f.outstanding && f.next_from <= f.target && f.queued < PIPELINE {
                            Some((f.peer, f.next_from))
                        } else {
                            return;
                        }
                    }
                    None => return,
                };
                match next {
                    Some((peer, from)) => self.request_range(peer, signer, from),
                    None => {
                        self.fetching.remove(&signer);
                    }
                }
            }
            Done::Heads { peer, wants } => self.start_fetches(peer, wants),
            Done::Fork(id, peer, acceptance) => {
                let label = acceptance_label(&acceptance);
                self.validate(&id, &peer, acceptance, label);
            }
            Done::Respond(channel, response) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Done::OwnDigest(d) => self.digest_ready(d),
            Done::BlobChecked(sha, peer, r) => self.blob_checked(sha, peer, r),
            Done::BlobRespond(channel, response) => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .blobs
                    .send_response(channel, response);
            }
        }
    }

    fn discover(&mut self) {
        let connected = self.swarm.connected_peers().count();
        if connected == 0 {
            for addr in self.config.bootstrap.clone() {
                let _ = self.swarm.dial(addr);
            }
        }
        if connected < self.config.max_peers.min(8) {
            self.swarm
                .behaviour_mut()
                .kad
                .get_closest_peers(PeerId::random());
        }
    }
}

/// Up to `n` distinct peers chosen at random.
fn pick(peers: &[PeerId], n: usize) -> Vec<PeerId> {
    let mut v = peers.to_vec();
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let mut x = u64::from_le_bytes(seed) | 1;
    for i in (1..v.len()).rev() {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v.truncate(n);
    v
}

/// Addresses worth giving to Kademlia: not unspecified.
fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// The signers behind the known peers.
fn known_signers_of(peers: &HashSet<PeerId>) -> HashSet<PublicKey> {
    peers.iter().filter_map(signer_of).collect()
}
