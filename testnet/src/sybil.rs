//! A Sybil flood for the abuse tests: many fresh peer ids, each dialing one
//! node and gossiping validly signed verdicts of many fresh signer keys.
//! Identities cost nothing here, which is the point: the node's limits must
//! hold in total.

use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use libp2p::Multiaddr;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use vouch_attest::SecretKey;

use crate::fixtures;

/// What one flood did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Peers whose connection was established.
    pub connected: usize,
    /// Peers that saw the node subscribe (their messages could flow).
    pub subscribed: usize,
    /// Messages handed to gossipsub.
    pub published: usize,
}

/// `peers` fresh identities dial `target`; each publishes `verdicts`
/// verdicts of each of `signers` fresh keys, then stays `linger`.
pub async fn run(
    target: Multiaddr,
    peers: usize,
    signers: usize,
    verdicts: u64,
    linger: Duration,
) -> Result<Report> {
    let mut tasks = Vec::with_capacity(peers);
    for p in 0..peers {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            one_peer(target, p, signers, verdicts, linger).await
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        let r = t.await.context("a flooding peer panicked")??;
        report.connected += r.connected;
        report.subscribed += r.subscribed;
        report.published += r.published;
    }
    Ok(report)
}

async fn one_peer(
    target: Multiaddr,
    index: usize,
    signers: usize,
    verdicts: u64,
    linger: Duration,
) -> Result<Report> {
    let mut swarm = crate::rogue::gossip_swarm()?;
    let topic = IdentTopic::new("vouch/verdicts/1");
    swarm.behaviour_mut().subscribe(&topic)?;
    swarm.dial(target)?;
    let mut report = Report::default();
    // Wait for the connection and the node's subscription, or give up: a
    // refused peer is what the limits are for.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Err(_) => return Ok(report),
            Ok(SwarmEvent::ConnectionEstablished { .. }) => report.connected = 1,
            Ok(SwarmEvent::OutgoingConnectionError { .. }) => return Ok(report),
            Ok(SwarmEvent::ConnectionClosed {
                num_established: 0, ..
            }) => return Ok(report),
            Ok(SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. })) => {
                report.subscribed = 1;
                break;
            }
            Ok(_) => {}
        }
    }
    for s in 0..signers {
        let key = SecretKey::generate()?;
        let tag = format!("sybil {index} {s}");
        for v in fixtures::chain(&key, verdicts, &tag) {
            if swarm
                .behaviour_mut()
                .publish(topic.clone(), v.envelope().to_vec())
                .is_ok()
            {
                report.published += 1;
            }
            // Keep the swarm moving between publications.
            let _ = tokio::time::timeout(Duration::from_millis(1), swarm.select_next_some()).await;
        }
    }
    let end = tokio::time::Instant::now() + linger;
    while tokio::time::timeout_at(end, swarm.select_next_some())
        .await
        .is_ok()
    {}
    Ok(report)
}
