//! A rogue peer for the fault scenarios: it joins the gossip and publishes
//! envelopes whose signatures do not verify.

use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, noise, tcp, yamux};
use vouch_attest::{
    Digest, Evidence, FORMAT_VERSION, Inputs, Outcome, SecretKey, Subject, Verdict, sign,
};

/// `count` distinct envelopes with corrupted signatures, by a fresh key.
pub fn invalid_envelopes(count: usize) -> Result<Vec<Vec<u8>>> {
    let key = SecretKey::generate()?;
    let mut out = Vec::with_capacity(count);
    let mut prev = Digest::ZERO;
    for seq in 0..count as u64 {
        let v = Verdict {
            version: FORMAT_VERSION,
            signer: key.public_key(),
            seq,
            prev,
            issued_at: 1_795_651_200,
            subject: Subject {
                distribution: "archlinux".into(),
                release: None,
                component: Some("core".into()),
                architecture: "x86_64".into(),
                name: format!("evil-{seq}"),
                version: "1-1".into(),
                filename: format!("evil-{seq}-1-1-x86_64.pkg.tar.zst"),
                sha256: Digest::of(format!("evil {seq}").as_bytes()),
            },
            inputs: Inputs {
                buildinfo_sha256: None,
                source_url: None,
                backend: "rogue".into(),
                backend_version: "1".into(),
            },
            outcome: Outcome::Good,
            evidence: Evidence::default(),
        };
        let signed = sign(&v, &key)?;
        prev = signed.id();
        let mut bytes = signed.envelope().to_vec();
        let n = bytes.len();
        bytes[n - 1] ^= 0x01; // inside the signature
        out.push(bytes);
    }
    Ok(out)
}

/// The behaviour of [`gossip_swarm`].
pub type GossipOnly =
    gossipsub::Behaviour<gossipsub::IdentityTransform, gossipsub::AllowAllSubscriptionFilter>;

/// A swarm with a fresh identity that speaks only gossipsub, as the
/// flooding and rogue peers of the fault tests do.
pub fn gossip_swarm() -> Result<Swarm<GossipOnly>> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .context("TCP")?
        .with_behaviour(|key| {
            GossipOnly::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossipsub::ConfigBuilder::default()
                    .max_transmit_size(64 * 1024)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Joins through `bootstrap`, waits until a peer subscribes to the verdict
/// topic, publishes `count` invalid envelopes, stays `linger` and exits.
/// Prints its peer id first.
pub async fn run(bootstrap: Multiaddr, count: usize, linger: Duration) -> Result<()> {
    let mut swarm = gossip_swarm()?;
    println!("{}", swarm.local_peer_id());
    let topic = IdentTopic::new("vouch/verdicts/1");
    swarm.behaviour_mut().subscribe(&topic)?;
    swarm.dial(bootstrap)?;
    let envelopes = invalid_envelopes(count)?;
    // Wait for a subscriber.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .context("no peer subscribed within 60 s")?;
        if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) = ev {
            break;
        }
    }
    let mut published = 0;
    for e in envelopes {
        if swarm.behaviour_mut().publish(topic.clone(), e).is_ok() {
            published += 1;
        }
        // Keep the swarm moving between publications.
        let _ = tokio::time::timeout(Duration::from_millis(20), swarm.select_next_some()).await;
    }
    eprintln!("rogue published {published} invalid envelopes");
    let end = tokio::time::Instant::now() + linger;
    while tokio::time::timeout_at(end, swarm.select_next_some())
        .await
        .is_ok()
    {}
    Ok(())
}

/// A peer that answers every `/vouch/blobs/1` request with a blob whose
/// content is not the one asked for. It dials `node` and serves until
/// dropped (its thread ends with the process).
pub fn lying_blob_server(node: Multiaddr) -> Result<()> {
    use libp2p::StreamProtocol;
    use libp2p::request_response::{self, ProtocolSupport};
    use vouch_node::p2p::blobs::{BlobRequest, BlobResponse, PROTOCOL};

    type Liar = request_response::cbor::Behaviour<BlobRequest, BlobResponse>;
    let mut swarm: Swarm<Liar> = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .context("TCP")?
        .with_behaviour(|_| {
            Liar::new(
                [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if swarm.dial(node).is_err() {
                return;
            }
            let lie = zstd::bulk::compress(b"not what you asked for", 3).unwrap_or_default();
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { .. } => {
                        let _ = ready_tx.send(());
                    }
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    }) => {
                        let _ = swarm.behaviour_mut().send_response(
                            channel,
                            BlobResponse::Found {
                                zstd: serde_bytes::ByteBuf::from(lie.clone()),
                            },
                        );
                    }
                    _ => {}
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .context("the lying peer never connected")?;
    Ok(())
}
