//! What the daemon accepts from the wire: every check an advert must pass before it reaches
//! the election, and a counter for every reason one is dropped.
//!
//! Owns: the drop reasons and their counters. Guarantees: pure (no I/O), never panics; a
//! packet reaches the election only from a configured peer (unicast) or with TTL 255
//! (multicast), for our VRID and version, with a valid checksum, the right password (v2)
//! and, for v2, our advert interval (as keepalived requires).

use crate::vrrp::wire::{self, AddrCheck, WireError};
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
    /// A keepalived with our address list would drop it (another count, or one of our
    /// addresses missing; the order does not matter): accepted here, but the operator is
    /// told, since a keepalived peer drops ours likewise.
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
        addr_mismatch: adv.keepalived_addr_check(f.vips) != wire::AddrCheck::Same,
    })
}

/// Which setting a configured peer has another value of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Version,
    Vrid,
    /// v2 authentication: type 0 none, 1 password; a password that differs shows as
    /// [`OTHER_PASSWORD`].
    Auth,
    /// v2 advert interval, centiseconds.
    Interval,
    /// Number of virtual addresses.
    AddrCount,
    /// Same count, but an address of ours is missing: `theirs` is that address (IPv4 as
    /// u32), `ours` our count.
    AddrMissing,
}

/// The `theirs` value of an [`Setting::Auth`] mismatch where both sides use a password.
pub const OTHER_PASSWORD: u32 = u32::MAX;

impl Setting {
    /// The rcron.conf key the operator changes.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Version => "vrrp_version",
            Setting::Vrid => "virtual_router_id",
            Setting::Auth => "auth_pass",
            Setting::Interval => "advert_int",
            Setting::AddrCount | Setting::AddrMissing => "virtual_ipaddress",
        }
    }

    fn show(self, v: u32, theirs: bool) -> String {
        match self {
            Setting::AddrMissing if theirs => format!("lacks_{}", Ipv4Addr::from(v)),
            Setting::Interval => format!("{}s", crate::config::Centis(v)),
            Setting::Auth => match v {
                0 => "none".into(),
                1 => "password".into(),
                OTHER_PASSWORD => "another_password".into(),
                t => format!("auth_type_{t}"),
            },
            Setting::AddrCount | Setting::AddrMissing => format!("{v}_addresses"),
            Setting::Version | Setting::Vrid => v.to_string(),
        }
    }
}

/// A configured peer whose settings differ from ours, as one of its adverts shows: the
/// reasons keepalived logs too (vrrp.c `vrrp_check_packet`: version, auth, interval, address
/// count and list), and another VRID from a unicast peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub peer: Ipv4Addr,
    pub setting: Setting,
    pub theirs: u32,
    pub ours: u32,
}

impl Mismatch {
    /// The log line: greppable `key=value`, with what happens to the adverts.
    pub fn describe(&self) -> String {
        let fate = match self.setting {
            Setting::AddrCount | Setting::AddrMissing => {
                "accepted here, but a keepalived peer drops such adverts (and ours)"
            }
            _ => "its adverts are dropped: both nodes may become master",
        };
        format!(
            "config mismatch: peer={} key={} theirs={} ours={}: {fate}",
            self.peer,
            self.setting.key(),
            self.setting.show(self.theirs, true),
            self.setting.show(self.ours, false)
        )
    }
}

/// The misconfiguration that `outcome` (what [`check`] said of `packet`) reveals, if any.
/// Only adverts of our group count: from a configured peer (unicast), or carrying our VRID
/// (multicast, where other routers' adverts on the link are normal).
pub fn mismatch(f: &Filter, packet: &[u8], outcome: &Result<Accepted, Drop>) -> Option<Mismatch> {
    let addrs = matches!(outcome, Ok(a) if a.addr_mismatch);
    let dropped =
        matches!(outcome, Err(Drop::Version | Drop::OtherVrid | Drop::Auth | Drop::Interval));
    if !addrs && !dropped {
        return None;
    }
    let ip = wire::parse_ipv4(packet).ok()?;
    let (adv, _) = wire::parse_vrrp(ip.payload, ip.src, ip.dst).ok()?;
    if f.peers.is_empty() && adv.vrid != f.vrid {
        return None;
    }
    let m =
        |setting, theirs: u32, ours: u32| Some(Mismatch { peer: ip.src, setting, theirs, ours });
    match outcome {
        Ok(_) => match adv.keepalived_addr_check(f.vips) {
            AddrCheck::OtherCount => {
                m(Setting::AddrCount, adv.addr_count() as u32, f.vips.len() as u32)
            }
            AddrCheck::Missing(a) => m(Setting::AddrMissing, u32::from(a), f.vips.len() as u32),
            AddrCheck::Same => None,
        },
        Err(Drop::Version) => m(Setting::Version, adv.version.into(), f.version.into()),
        Err(Drop::OtherVrid) => m(Setting::Vrid, adv.vrid.into(), f.vrid.into()),
        Err(Drop::Interval) => m(Setting::Interval, adv.interval_cs.into(), f.advert_cs.into()),
        Err(Drop::Auth) => {
            let ours = u32::from(f.auth.is_some());
            let theirs =
                if adv.auth_type == 1 && ours == 1 { OTHER_PASSWORD } else { adv.auth_type.into() };
            m(Setting::Auth, theirs, ours)
        }
        Err(_) => None,
    }
}

/// How long a mismatch must stay away before it is logged again.
pub const MISMATCH_QUIET_MS: u64 = 60_000;
/// Peers and settings remembered; the one seen longest ago makes room.
const MISMATCH_SLOTS: usize = 16;

/// Rate limit of the mismatch log: a mismatch is logged when first seen, again when the
/// peer's value changes, and again after [`MISMATCH_QUIET_MS`] without it. Fixed memory.
#[derive(Default)]
pub struct MismatchLog {
    seen: heapless::Vec<(Mismatch, u64), MISMATCH_SLOTS>,
}

impl MismatchLog {
    /// Records `m` seen at `now`; true when it must be logged.
    pub fn note(&mut self, m: Mismatch, now: u64) -> bool {
        let same = |e: &&mut (Mismatch, u64)| e.0.peer == m.peer && e.0.setting == m.setting;
        if let Some(e) = self.seen.iter_mut().find(same) {
            let log = e.0 != m || now.saturating_sub(e.1) > MISMATCH_QUIET_MS;
            *e = (m, now);
            return log;
        }
        if self.seen.is_full()
            && let Some(oldest) = (0..self.seen.len()).min_by_key(|&i| self.seen[i].1)
        {
            self.seen.swap_remove(oldest);
        }
        let _ = self.seen.push((m, now));
        true
    }
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

    /// Each drop that means "this peer is configured differently" names the setting and
    /// both values (keepalived logs the same cases in vrrp_check_packet).
    #[test]
    fn a_peers_other_settings_are_named_with_both_values() {
        let m = |f: &Filter, p: &[u8]| mismatch(f, p, &check(f, p));
        let got = m(
            &unicast(2),
            &packet(&wire::AdvertSpec { interval_cs: 200, ..spec(2, 7, 1) }, PEER, ME, 255),
        );
        assert_eq!(
            got,
            Some(Mismatch { peer: PEER, setting: Setting::Interval, theirs: 200, ours: 100 })
        );
        assert_eq!(
            got.unwrap().describe(),
            "config mismatch: peer=192.0.2.2 key=advert_int theirs=2s ours=1s: its adverts are \
             dropped: both nodes may become master"
        );
        let v = m(&unicast(3), &packet(&spec(2, 7, 1), PEER, ME, 255)).unwrap();
        assert_eq!((v.setting, v.theirs, v.ours), (Setting::Version, 2, 3));
        let v = m(&unicast(3), &packet(&spec(3, 8, 1), PEER, ME, 255)).unwrap();
        assert_eq!((v.setting, v.theirs, v.ours), (Setting::Vrid, 8, 7));
        let pw = wire::AdvertSpec { auth: Some(*b"1111\0\0\0\0"), ..spec(2, 7, 1) };
        let v = m(&unicast(2), &packet(&pw, PEER, ME, 255)).unwrap();
        assert_eq!((v.setting, v.theirs, v.ours), (Setting::Auth, 1, 0));
        let mine = Filter { auth: Some(*b"2222\0\0\0\0"), ..unicast(2) };
        let v = m(&mine, &packet(&pw, PEER, ME, 255)).unwrap();
        assert_eq!((v.theirs, v.ours), (OTHER_PASSWORD, 1));
        assert!(v.describe().contains("theirs=another_password ours=password"));
        let two = [VIP[0], Ipv4Addr::new(192, 0, 2, 101)];
        let v = m(
            &unicast(3),
            &packet(&wire::AdvertSpec { addrs: &two, ..spec(3, 7, 1) }, PEER, ME, 255),
        )
        .unwrap();
        assert_eq!((v.setting, v.theirs, v.ours), (Setting::AddrCount, 2, 1));
        let swapped = [Ipv4Addr::new(192, 0, 2, 101)];
        let v = m(
            &unicast(3),
            &packet(&wire::AdvertSpec { addrs: &swapped, ..spec(3, 7, 1) }, PEER, ME, 255),
        )
        .unwrap();
        assert_eq!(v.setting, Setting::AddrMissing);
        assert!(
            v.describe().ends_with(
                "key=virtual_ipaddress theirs=lacks_192.0.2.100 ours=1_addresses: accepted here, \
                 but a keepalived peer drops such adverts (and ours)"
            ),
            "{}",
            v.describe()
        );
        // Not a misconfiguration: a stranger (unicast), another VRID on a shared link
        // (multicast), a good advert, a bad checksum.
        assert_eq!(m(&unicast(3), &packet(&spec(3, 8, 1), STRANGER, ME, 255)), None);
        let multi = Filter { peers: &[], ..unicast(3) };
        let to_group = packet(&spec(3, 8, 1), PEER, wire::MCAST_GROUP, 255);
        assert_eq!(check(&multi, &to_group), Err(Drop::OtherVrid));
        assert_eq!(m(&multi, &to_group), None);
        assert_eq!(m(&unicast(3), &packet(&spec(3, 7, 1), PEER, ME, 255)), None);
    }

    /// Logged once per peer and setting, again when the peer's value changes or after a
    /// quiet period without it; a full table forgets the one seen longest ago.
    #[test]
    fn mismatch_log_is_rate_limited_per_peer_and_setting() {
        let mk = |peer: u8, setting, theirs| Mismatch {
            peer: Ipv4Addr::new(192, 0, 2, peer),
            setting,
            theirs,
            ours: 100,
        };
        let mut log = MismatchLog::default();
        assert!(log.note(mk(2, Setting::Interval, 200), 0));
        assert!(!log.note(mk(2, Setting::Interval, 200), 1000), "same again: quiet");
        assert!(log.note(mk(3, Setting::Interval, 200), 1000), "another peer");
        assert!(log.note(mk(2, Setting::Version, 3), 1000), "another setting");
        assert!(log.note(mk(2, Setting::Interval, 300), 2000), "the value changed");
        assert!(!log.note(mk(2, Setting::Interval, 300), 2000 + MISMATCH_QUIET_MS));
        let later = 3000 + 2 * MISMATCH_QUIET_MS + 1;
        assert!(log.note(mk(2, Setting::Interval, 300), later), "back after a quiet period");
        for p in 10..40 {
            log.note(mk(p, Setting::Auth, 1), later + p as u64);
        }
        assert_eq!(log.seen.len(), MISMATCH_SLOTS, "fixed memory");
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
