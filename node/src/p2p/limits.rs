//! Inbound connection limits by address: peer ids are free, addresses are
//! not. Connections from one IP address and from one subnet (/24 for IPv4,
//! /48 for IPv6) are capped, and so are inbound connections in total, while
//! peers whose identity is a known signer (the keyring, `trusted`) always
//! get in once their handshake shows who they are. libp2p's
//! `connection_limits` bounds the rest (pending handshakes, per peer).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// The caps, all on inbound connections of peers that are not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressCaps {
    /// From one IP address, handshaking or established.
    pub per_ip: usize,
    /// From one subnet (/24, /48), handshaking or established.
    pub per_subnet: usize,
    /// Established, in total.
    pub total: usize,
}

/// Why an inbound connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many from one address.
    #[error("{0} inbound connections from {1} already")]
    Ip(usize, IpAddr),
    /// Too many from one subnet.
    #[error("{0} inbound connections from the subnet of {1} already")]
    Subnet(usize, IpAddr),
    /// Too many in total.
    #[error("{0} inbound connections from unknown peers already")]
    Total(usize),
}

/// The subnet an address counts against.
fn subnet(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
            }
        },
    }
}

/// The IP address of a multiaddr, if it starts with one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// Counts of connections by address and subnet.
#[derive(Default)]
struct Tally {
    by_id: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
    per_subnet: HashMap<IpAddr, usize>,
}

impl Tally {
    fn add(&mut self, id: ConnectionId, ip: IpAddr) {
        if self.by_id.insert(id, ip).is_none() {
            *self.per_ip.entry(ip).or_insert(0) += 1;
            *self.per_subnet.entry(subnet(ip)).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, id: ConnectionId) {
        let Some(ip) = self.by_id.remove(&id) else {
            return;
        };
        for (map, key) in [(&mut self.per_ip, ip), (&mut self.per_subnet, subnet(ip))] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }

    fn at_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    fn at_subnet(&self, ip: IpAddr) -> usize {
        self.per_subnet.get(&subnet(ip)).copied().unwrap_or(0)
    }
}

/// The behaviour: it speaks nothing, it only admits or refuses.
///
/// A handshake cannot show who is calling, so handshakes are capped per
/// address for everyone; established connections are capped per address,
/// per subnet and in total for peers that are not known.
pub struct AddressLimits {
    caps: AddressCaps,
    known: HashSet<PeerId>,
    handshaking: Tally,
    established: Tally,
}

impl AddressLimits {
    /// Limits with `caps`, exempting `known` peers once identified.
    pub fn new(caps: AddressCaps, known: HashSet<PeerId>) -> AddressLimits {
        AddressLimits {
            caps,
            known,
            handshaking: Tally::default(),
            established: Tally::default(),
        }
    }

    fn release(&mut self, id: ConnectionId) {
        self.handshaking.remove(id);
        self.established.remove(id);
    }

    /// Inbound connections of unknown peers established now.
    pub fn established(&self) -> usize {
        self.established.by_id.len()
    }
}

impl NetworkBehaviour for AddressLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let n = self.handshaking.at_ip(ip);
        if n >= self.caps.per_ip {
            return Err(ConnectionDenied::new(Refused::Ip(n, ip)));
        }
        self.handshaking.add(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handshaking.remove(id);
        if self.known.contains(&peer) {
            // A known signer: it takes nobody's slot.
            return Ok(dummy::ConnectionHandler);
        }
        let total = self.established.by_id.len();
        if total >= self.caps.total {
            return Err(ConnectionDenied::new(Refused::Total(total)));
        }
        if let Some(ip) = ip_of(remote) {
            let n = self.established.at_ip(ip);
            if n >= self.caps.per_ip {
                return Err(ConnectionDenied::new(Refused::Ip(n, ip)));
            }
            let n = self.established.at_subnet(ip);
            if n >= self.caps.per_subnet {
                return Err(ConnectionDenied::new(Refused::Subnet(n, ip)));
            }
            self.established.add(id, ip);
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(c) => self.release(c.connection_id),
            FromSwarm::ListenFailure(f) => self.release(f.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn limits(known: &[PeerId]) -> AddressLimits {
        AddressLimits::new(
            AddressCaps {
                per_ip: 2,
                per_subnet: 3,
                total: 4,
            },
            known.iter().copied().collect(),
        )
    }

    fn inbound(l: &mut AddressLimits, n: usize, peer: PeerId, from: &str) -> bool {
        let id = ConnectionId::new_unchecked(n);
        let local = addr("/ip4/127.0.0.1/tcp/4001");
        let remote = addr(from);
        let ok = l
            .handle_pending_inbound_connection(id, &local, &remote)
            .is_ok()
            && l.handle_established_inbound_connection(id, peer, &local, &remote)
                .is_ok();
        if !ok {
            // What the swarm reports for a refused connection.
            l.release(id);
        }
        ok
    }

    #[test]
    fn addresses_subnets_and_the_total_are_capped_for_strangers_only() {
        let friend = PeerId::random();
        let mut l = limits(&[friend]);
        // Two from one address; the third is refused, whatever its peer id.
        assert!(inbound(&mut l, 1, PeerId::random(), "/ip4/10.0.0.1/tcp/1"));
        assert!(inbound(&mut l, 2, PeerId::random(), "/ip4/10.0.0.1/tcp/2"));
        assert!(!inbound(&mut l, 3, PeerId::random(), "/ip4/10.0.0.1/tcp/3"));
        // The subnet holds three.
        assert!(inbound(&mut l, 4, PeerId::random(), "/ip4/10.0.0.2/tcp/1"));
        assert!(!inbound(&mut l, 5, PeerId::random(), "/ip4/10.0.0.3/tcp/1"));
        // IPv4-mapped IPv6 counts as its IPv4 subnet.
        assert!(!inbound(
            &mut l,
            6,
            PeerId::random(),
            "/ip6/::ffff:10.0.0.9/tcp/1"
        ));
        // The total holds four.
        assert!(inbound(&mut l, 7, PeerId::random(), "/ip4/10.0.1.1/tcp/1"));
        assert!(!inbound(&mut l, 8, PeerId::random(), "/ip4/10.0.2.1/tcp/1"));
        // A known peer gets in from a full address, and takes no slot.
        assert!(inbound(&mut l, 9, friend, "/ip4/10.0.0.1/tcp/9"));
        assert_eq!(l.established(), 4);
        // A closed connection frees its slots.
        l.release(ConnectionId::new_unchecked(1));
        assert!(inbound(&mut l, 10, PeerId::random(), "/ip4/10.0.0.1/tcp/4"));
        // Handshakes are capped per address for everyone.
        let local = addr("/ip4/127.0.0.1/tcp/4001");
        for n in 20..22 {
            let id = ConnectionId::new_unchecked(n);
            assert!(
                l.handle_pending_inbound_connection(id, &local, &addr("/ip4/10.9.9.9/tcp/1"))
                    .is_ok()
            );
        }
        let id = ConnectionId::new_unchecked(22);
        assert!(
            l.handle_pending_inbound_connection(id, &local, &addr("/ip4/10.9.9.9/tcp/2"))
                .is_err()
        );
        assert_eq!(l.established(), 4);
    }
}
