//! The VRRP decoder on anything a raw socket could deliver: the input as a whole IPv4 packet
//! (`parse_ipv4`, then `parse_vrrp` on its payload), and the input as a bare VRRP message.
//!
//! Checks, beyond "never panics": the payload is the input cut at the IP total length after
//! the header; an accepted advert's length is exactly what its version and count imply, and
//! its fields are within their wire encodings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::vrrp::wire::{self, ChecksumForm};
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 6);

fn check_advert(msg: &[u8], parsed: Result<(wire::Advert<'_>, ChecksumForm), wire::WireError>) {
    let Ok((adv, form)) = parsed else { return };
    let auth_len = if adv.version == 2 { 8 } else { 0 };
    assert_eq!(msg.len(), 8 + 4 * adv.addr_count() + auth_len);
    assert_eq!(adv.addr_count(), usize::from(msg[3]));
    assert_eq!(adv.addrs().count(), adv.addr_count());
    assert_eq!((adv.vrid, adv.priority), (msg[1], msg[2]));
    match adv.version {
        2 => {
            assert_eq!(form, ChecksumForm::V2);
            assert_eq!(adv.interval_cs, u16::from(msg[5]) * 100);
            assert_eq!(adv.auth_type, msg[4]);
        }
        3 => {
            assert_ne!(form, ChecksumForm::V2);
            assert!(adv.interval_cs <= 0x0fff);
            assert_eq!((adv.auth_type, adv.auth), (0, [0; 8]));
        }
        v => panic!("parse_vrrp accepted version {v}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check_advert(data, wire::parse_vrrp(data, SRC, DST));

    let Ok(ip) = wire::parse_ipv4(data) else {
        return;
    };
    let header_len = usize::from(data[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    assert!(header_len >= 20 && header_len <= total_len && total_len <= data.len());
    assert_eq!(ip.payload, &data[header_len..total_len]);
    assert_eq!(data[9], wire::PROTO_VRRP);
    assert_eq!(ip.ttl, data[8]);
    check_advert(ip.payload, wire::parse_vrrp(ip.payload, ip.src, ip.dst));
});
