//! What the daemon accepts from the wire: every check an advert must pass before it reaches
//! the election, and a counter for every reason one is dropped.
//!
//! Owns: the drop reasons and their counters. Guarantees: pure (no I/O), never panics; a
//! packet reaches the election only from a configured peer (unicast) or with TTL 255
//! (multicast), for our VRID and version, with a valid checksum, the right password (v2)
//! and, for v2, our advert interval (as keepalived requires).

use crate::wire::{self, WireError};
use std::net::Ipv4Addr;

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    Wire(WireError),
    /// Multicast: TTL not 255 (RFC 5798 7.1).
    Ttl,
    /// Unicast: the sender is not a configured peer.
    NotPeer,
    /// Our own packet (multicast loop).
    Own,
    /// Not addressed to us (unicast) or to 224.0.0.18 (multicast).
    WrongDst,
    /// Another virtual router's advert: normal on a shared link, counted.
    OtherVrid,
    /// VRRP version differs from ours.
    Version,
    /// v2 authentication type or password differs.
    Auth,
    /// v2 advert interval differs from ours.
    Interval,
}

/// Every drop reason, in the order `--status` shows them.
pub const REASONS: [&str; 16] = [
    "truncated",
    "bad_ip_header",
    "not_vrrp",
    "bad_version",
    "bad_type",
    "bad_length",
    "bad_checksum",
    "buffer_too_small",
    "ttl",
    "not_peer",
    "own",
    "wrong_dst",
    "other_vrid",
    "version_mismatch",
    "auth",
    "interval",
];

impl Drop {
    pub fn name(self) -> &'static str {
        match self {
            Drop::Wire(e) => e.name(),
            Drop::Ttl => "ttl",
            Drop::NotPeer => "not_peer",
            Drop::Own => "own",
            Drop::WrongDst => "wrong_dst",
            Drop::OtherVrid => "other_vrid",
            Drop::Version => "version_mismatch",
            Drop::Auth => "auth",
            Drop::Interval => "interval",
        }
    }
}

/// Per-reason drop counters.
#[derive(Clone, Debug, Default)]
pub struct Drops([u64; REASONS.len()]);

impl Drops {
    pub fn count(&mut self, d: Drop) {
        if let Some(i) = REASONS.iter().position(|r| *r == d.name()) {
            self.0[i] = self.0[i].saturating_add(1);
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS.iter().copied().zip(self.0.iter().copied())
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// What a received packet is checked against.
pub struct Filter<'a> {
    pub version: u8,
    pub vrid: u8,
    /// Unicast peers; empty = multicast mode.
    pub peers: &'a [Ipv4Addr],
    pub own_ip: Ipv4Addr,
    pub auth: Option<[u8; 8]>,
    pub advert_cs: u16,
    pub vips: &'a [Ipv4Addr],
}

/// An advert that passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub src: Ipv4Addr,
    pub priority: u8,
    pub interval_ms: u64,
    /// Its address list differs from ours (keepalived <= 2.3.2 would drop it): accepted, but
    /// the operator is told, since a keepalived peer will drop ours likewise.
    pub addr_mismatch: bool,
}

/// Checks one raw IP packet.
pub fn check(f: &Filter, packet: &[u8]) -> Result<Accepted, Drop> {
    let ip = wire::parse_ipv4(packet).map_err(Drop::Wire)?;
    if ip.src == f.own_ip {
        return Err(Drop::Own);
    }
    let multicast = f.peers.is_empty();
    if multicast {
        if ip.dst != wire::MCAST_GROUP {
            return Err(Drop::WrongDst);
        }
        if ip.ttl != 255 {
            return Err(Drop::Ttl);
        }
    } else {
        if !f.peers.contains(&ip.src) {
            return Err(Drop::NotPeer);
        }
        if ip.dst != f.own_ip {
            return Err(Drop::WrongDst);
        }
    }
    let (adv, _form) = wire::parse_vrrp(ip.payload, ip.src, ip.dst).map_err(Drop::Wire)?;
    if adv.version != f.version {
        return Err(Drop::Version);
    }
    if adv.vrid != f.vrid {
        return Err(Drop::OtherVrid);
    }
    if adv.version == 2 {
        let ok = match f.auth {
            None => adv.auth_type == 0,
            Some(p) => adv.auth_type == 1 && adv.auth == p,
        };
        if !ok {
            return Err(Drop::Auth);
        }
        if adv.interval_cs != f.advert_cs {
            return Err(Drop::Interval);
        }
    }
    Ok(Accepted {
        src: ip.src,
        priority: adv.priority,
        interval_ms: adv.interval_cs as u64 * 10,
        addr_mismatch: !adv.same_addrs(f.vips),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::V3Checksum;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
    const VIP: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 100)];

    /// A whole IPv4 packet (as a raw socket delivers it) around an emitted advert.
    fn packet(spec: &wire::AdvertSpec, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
        let mut msg = [0u8; wire::MAX_MSG];
        let n = wire::emit(spec, src, dst, V3Checksum::PseudoHeader, &mut msg).unwrap();
        let mut p = vec![0x45, 0xc0, 0, 0, 0, 1, 0, 0, ttl, 112, 0, 0];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let total = (20 + n) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&msg[..n]);
        p
    }

    fn spec(version: u8, vrid: u8, prio: u8) -> wire::AdvertSpec<'static> {
        wire::AdvertSpec {
            version,
            vrid,
            priority: prio,
            interval_cs: if version == 2 { 100 } else { 10 },
            auth: None,
            addrs: &VIP,
        }
    }

    fn unicast(version: u8) -> Filter<'static> {
        const PEERS: [Ipv4Addr; 1] = [PEER];
        Filter {
            version,
            vrid: 7,
            peers: &PEERS,
            own_ip: ME,
            auth: None,
            advert_cs: if version == 2 { 100 } else { 10 },
            vips: &VIP,
        }
    }

    #[test]
    fn a_peers_advert_for_our_group_is_accepted() {
        let a = check(&unicast(3), &packet(&spec(3, 7, 150), PEER, ME, 255)).unwrap();
        assert_eq!((a.src, a.priority, a.interval_ms, a.addr_mismatch), (PEER, 150, 100, false));
    }

    #[test]
    fn each_rule_drops_with_its_own_reason() {
        let f = unicast(3);
        let table: &[(Vec<u8>, Drop)] = &[
            (packet(&spec(3, 7, 150), STRANGER, ME, 255), Drop::NotPeer),
            (packet(&spec(3, 7, 150), ME, ME, 255), Drop::Own),
            (packet(&spec(3, 7, 150), PEER, STRANGER, 255), Drop::WrongDst),
            (packet(&spec(3, 8, 150), PEER, ME, 255), Drop::OtherVrid),
            (packet(&spec(2, 7, 150), PEER, ME, 255), Drop::Version),
            (vec![0x45, 0, 0], Drop::Wire(WireError::Truncated)),
        ];
        for (p, want) in table {
            assert_eq!(check(&f, p), Err(*want));
        }
        let mut bad = packet(&spec(3, 7, 150), PEER, ME, 255);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(check(&f, &bad), Err(Drop::Wire(WireError::BadChecksum)));
    }

    #[test]
    fn multicast_needs_ttl_255_and_the_group_address() {
        let f = Filter { peers: &[], ..unicast(3) };
        let ok = packet(&spec(3, 7, 100), STRANGER, wire::MCAST_GROUP, 255);
        assert!(check(&f, &ok).is_ok(), "any sender in multicast mode");
        let hop = packet(&spec(3, 7, 100), STRANGER, wire::MCAST_GROUP, 254);
        assert_eq!(check(&f, &hop), Err(Drop::Ttl));
        let uni = packet(&spec(3, 7, 100), STRANGER, ME, 255);
        assert_eq!(check(&f, &uni), Err(Drop::WrongDst));
    }

    #[test]
    fn v2_password_and_interval_must_match() {
        let pass = *b"secret\0\0";
        let f = Filter { auth: Some(pass), ..unicast(2) };
        let good = wire::AdvertSpec { auth: Some(pass), ..spec(2, 7, 100) };
        assert!(check(&f, &packet(&good, PEER, ME, 255)).is_ok());
        let wrong = wire::AdvertSpec { auth: Some(*b"guess\0\0\0"), ..spec(2, 7, 100) };
        assert_eq!(check(&f, &packet(&wrong, PEER, ME, 255)), Err(Drop::Auth));
        assert_eq!(check(&f, &packet(&spec(2, 7, 100), PEER, ME, 255)), Err(Drop::Auth));
        let slow = wire::AdvertSpec { interval_cs: 200, ..good };
        assert_eq!(check(&f, &packet(&slow, PEER, ME, 255)), Err(Drop::Interval));
    }

    #[test]
    fn another_address_list_is_accepted_but_flagged() {
        let other = [Ipv4Addr::new(192, 0, 2, 200)];
        let s = wire::AdvertSpec { addrs: &other, ..spec(3, 7, 100) };
        let a = check(&unicast(3), &packet(&s, PEER, ME, 255)).unwrap();
        assert!(a.addr_mismatch);
    }

    #[test]
    fn every_drop_reason_has_a_counter() {
        let mut d = Drops::default();
        for r in [Drop::Ttl, Drop::NotPeer, Drop::Own, Drop::WrongDst, Drop::OtherVrid] {
            d.count(r);
        }
        for r in [Drop::Version, Drop::Auth, Drop::Interval, Drop::Wire(WireError::BadType)] {
            d.count(r);
        }
        assert_eq!(d.total(), 9);
        assert!(d.iter().all(|(_, n)| n <= 1));
    }
}
