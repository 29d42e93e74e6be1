//! The federation: a libp2p swarm (TCP and QUIC, noise, yamux, identify,
//! ping, Kademlia, gossipsub, the `/vouch/sync/1` request-response protocol,
//! optional mDNS) owned by one actor task. [`Network`] is the handle.
//!
//! A node's libp2p identity is its ed25519 signing key, so a peer id names
//! the signer that runs it. Written down in `spec/p2p.md`.

mod actor;
pub mod behaviour;
pub mod blobs;
pub mod gossip;
pub mod limits;
pub mod sync;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use vouch_attest::{PublicKey, SecretKey};

use crate::ingest::{Ingest, Outbound};
use crate::metrics::Metrics;
use crate::store::Store;

/// Settings of the swarm.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (multiaddrs with `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// mDNS on the local network.
    pub mdns: bool,
    /// Time between anti-entropy rounds.
    pub sync_interval: Duration,
    /// Peers asked per round.
    pub sync_peers: usize,
    /// Connections opened by this node, at most.
    pub max_peers: usize,
    /// Connection caps.
    pub caps: behaviour::ConnectionCaps,
    /// Peers whose identity is a known signer: exempt from address caps.
    pub known: std::collections::HashSet<PeerId>,
    /// Sync requests per peer per minute.
    pub peer_requests_per_minute: u32,
    /// Gossip messages per peer per second.
    pub peer_messages_per_second: u32,
    /// Where to write the listen addresses (`DATA_DIR/vouchd.p2p`).
    pub addr_file: Option<PathBuf>,
}

/// A connected peer, for `/api/vouch/v1/peers`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// The signer key behind the peer id.
    pub signer: Option<String>,
    /// The address of the connection.
    pub address: Option<String>,
    /// Its gossipsub score (negative: it misbehaved).
    pub score: Option<f64>,
}

enum Command {
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Find a blob at peers (`prefer` first): its content, checked.
    FetchBlob {
        sha256: vouch_attest::Digest,
        prefer: Option<PeerId>,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
}

/// A handle to the running swarm.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    shutdown: Arc<tokio::sync::Notify>,
    /// This node's peer id.
    pub peer_id: PeerId,
}

/// The swarm task, to await on shutdown.
pub type NetworkTask = tokio::task::JoinHandle<()>;

impl Network {
    /// Builds the swarm, starts listening and dialing, and spawns the actor.
    pub async fn start(
        key: &SecretKey,
        config: NetworkConfig,
        store: Store,
        ingest: Ingest,
        metrics: Arc<Metrics>,
        outbound: mpsc::Receiver<Outbound>,
    ) -> Result<(Network, NetworkTask)> {
        let keypair = keypair(key)?;
        let peer_id = keypair.public().to_peer_id();
        let (commands, rx) = mpsc::channel(64);
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let actor = actor::Actor::new(
            keypair,
            config,
            store,
            ingest,
            metrics,
            rx,
            outbound,
            shutdown.clone(),
        )
        .context("starting the libp2p swarm")?;
        let task = tokio::spawn(actor.run());
        Ok((
            Network {
                commands,
                shutdown,
                peer_id,
            },
            task,
        ))
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Peers(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The addresses the swarm listens on, with `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::ListenAddrs(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Asks connected peers, one after the other (`prefer`, e.g. the peer
    /// of the verdict's signer, first), for the blob `sha256`: its content,
    /// decompressed with a cap and checked against the hash; None when no
    /// peer has it.
    pub async fn fetch_blob(
        &self,
        sha256: vouch_attest::Digest,
        prefer: Option<PeerId>,
    ) -> Option<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::FetchBlob {
                sha256,
                prefer,
                reply: tx,
            })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Asks the actor to stop.
    pub fn shutdown(&self) {
        self.shutdown.notify_one();
    }
}

/// The libp2p keypair of a node: its ed25519 signing key.
pub fn keypair(key: &SecretKey) -> Result<Keypair> {
    let mut seed = *key.seed();
    Keypair::ed25519_from_bytes(&mut seed).context("deriving the libp2p identity")
}

/// The peer id of the node run by `signer`.
pub fn peer_id_of(signer: &PublicKey) -> Option<PeerId> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(signer.as_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

/// The signer behind a peer id, when it is an ed25519 identity.
pub fn signer_of(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None; // not an identity multihash: the key is not inside
    }
    let pk = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = pk.try_into_ed25519().ok()?;
    PublicKey::from_bytes(&ed.to_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_name_their_signer() {
        let key = SecretKey::from_seed(&[9; 32]);
        let peer = keypair(&key).unwrap().public().to_peer_id();
        assert_eq!(signer_of(&peer), Some(key.public_key()));
        assert_eq!(peer_id_of(&key.public_key()), Some(peer));
    }
}
