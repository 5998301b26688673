//! parse(emit(x)) == x for every advert the decoder accepts.
//!
//! Input: one control byte, then a VRRP message. Bit 0 of the control byte picks the
//! destination (unicast 192.0.2.6 or the group 224.0.0.18); bits 1-2 pick a checksum to
//! write into the message before parsing (0: leave it, 1: RFC 1071 over the message as v2
//! and RFC 9568, 2: v3 pseudo-header with the destination, 3: pseudo-header with the group),
//! so most inputs get past the checksum and reach the round trip.
//!
//! An accepted advert is re-emitted from its fields (skipped where a field has no `AdvertSpec`
//! encoding: v2 interval 0, v2 auth type other than 0/1 or type 0 with non-zero auth data,
//! v3 interval 0) with the checksum form it matched; the emitted message must parse to the
//! same fields and form, be byte-identical except for the checksum and the v3 reserved bits,
//! and leave the rest of the output buffer untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::config::V3Checksum;
use rcron::vrrp::wire::{self, AdvertSpec};
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
const UNICAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 6);

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, msg)) = data.split_first() else {
        return;
    };
    let dst = if ctl & 1 == 0 {
        UNICAST
    } else {
        wire::MCAST_GROUP
    };
    let mut msg = msg.to_vec();
    if msg.len() >= 8 && msg.len() <= usize::from(u16::MAX) {
        let len = msg.len() as u16;
        let initial = match (ctl >> 1) & 3 {
            0 => None,
            1 => Some(0),
            2 => Some(wire::pseudo_header_sum(SRC, dst, len)),
            _ => Some(wire::pseudo_header_sum(SRC, wire::MCAST_GROUP, len)),
        };
        if let Some(initial) = initial {
            msg[6..8].fill(0);
            let sum = wire::checksum(initial, &msg);
            msg[6..8].copy_from_slice(&sum.to_be_bytes());
        }
    }

    let Ok((adv, form)) = wire::parse_vrrp(&msg, SRC, dst) else {
        return;
    };
    let auth = match (adv.version, adv.auth_type) {
        (3, _) => None,
        (2, 1) => Some(adv.auth),
        (2, 0) if adv.auth == [0; 8] => None,
        _ => return,
    };
    if adv.interval_cs == 0 {
        return;
    }
    let addrs: Vec<Ipv4Addr> = adv.addrs().collect();
    let spec = AdvertSpec {
        version: adv.version,
        vrid: adv.vrid,
        priority: adv.priority,
        interval_cs: adv.interval_cs,
        auth,
        addrs: &addrs,
    };
    let send_form = form.v3_checksum().unwrap_or(V3Checksum::PseudoHeader);
    let mut buf = [0xa5u8; wire::MAX_MSG + 16];
    let n = wire::emit(&spec, SRC, dst, send_form, &mut buf)
        .unwrap_or_else(|e| panic!("emit refused a parsed advert {spec:?}: {e:?}"));
    assert_eq!(n, msg.len());
    assert!(buf[n..].iter().all(|&b| b == 0xa5), "emit wrote past its length");

    let out = &buf[..n];
    let (back, back_form) = wire::parse_vrrp(out, SRC, dst)
        .unwrap_or_else(|e| panic!("emitted advert does not parse: {e:?} {spec:?}"));
    assert_eq!(back, adv, "fields differ after the round trip");
    assert_eq!(back_form, form, "checksum form differs after the round trip");

    let mut a = msg.clone();
    let mut b = out.to_vec();
    for m in [&mut a, &mut b] {
        m[6..8].fill(0);
        if adv.version == 3 {
            m[4] &= 0x0f;
        }
    }
    assert_eq!(a, b, "emitted bytes differ from the parsed ones");
});
