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
