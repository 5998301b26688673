//! The receive filter on any raw packet, against two fixed configurations: unicast VRRPv3
//! (own 192.0.2.1, peer 192.0.2.2, VRID 7) and multicast VRRPv2 with a password.
//!
//! Checks, beyond "never panics": an accepted advert is from a configured peer (unicast) or
//! came with TTL 255 to the group (multicast), carries our VRID and version, and (v2) our
//! password and interval; every drop reason has a counter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::vrrp::receive::{self, Drops, Filter, REASONS};
use rcron::vrrp::wire;
use std::net::Ipv4Addr;

const OWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEERS: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 2)];
const VIPS: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 100)];

fuzz_target!(|data: &[u8]| {
    let unicast = Filter {
        version: 3,
        vrid: 7,
        peers: &PEERS,
        own_ip: OWN,
        auth: None,
        advert_cs: 100,
        vips: &VIPS,
    };
    let multicast = Filter {
        version: 2,
        vrid: 7,
        peers: &[],
        own_ip: OWN,
        auth: Some(*b"secret\0\0"),
        advert_cs: 100,
        vips: &VIPS,
    };
    let mut drops = Drops::default();
    for f in [&unicast, &multicast] {
        match receive::check(f, data) {
            Err(d) => {
                assert!(REASONS.contains(&d.name()), "no counter for {d:?}");
                drops.count(d);
            }
            Ok(a) => {
                let ip = wire::parse_ipv4(data).expect("accepted but not IPv4");
                let (adv, _) = wire::parse_vrrp(ip.payload, ip.src, ip.dst).expect("accepted but not VRRP");
                assert_ne!(a.src, OWN);
                if f.peers.is_empty() {
                    assert_eq!((ip.ttl, ip.dst), (255, wire::MCAST_GROUP));
                } else {
                    assert!(f.peers.contains(&a.src) && ip.dst == OWN);
                }
                assert_eq!((adv.version, adv.vrid, adv.priority), (f.version, f.vrid, a.priority));
                if adv.version == 2 {
                    assert_eq!((adv.auth_type, Some(adv.auth)), (1, f.auth));
                    assert_eq!(adv.interval_cs, f.advert_cs);
                }
                assert_eq!(a.interval_ms, u64::from(adv.interval_cs) * 10);
                assert_eq!(a.addr_mismatch, adv.keepalived_addr_check(f.vips) != wire::AddrCheck::Same);
            }
        }
    }
    assert!(drops.total() <= 2);
});
