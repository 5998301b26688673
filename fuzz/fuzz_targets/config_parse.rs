//! The config parser on any file.
//!
//! Checks, beyond "never panics": an `Err` carries at least one error, each on a line that
//! exists (1..=lines, or lines + 1 for a file that ends without a newline; 0 = the whole
//! file), and every error displays. An `Ok` config keeps the documented bounds, and the
//! daemon can always write an advert from it: `wire::emit` accepts its version, interval,
//! password and virtual addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::config::{self, MAX_PEERS, MAX_TRACK_IF, MAX_VIPS};
use rcron::vrrp::wire::{self, AdvertSpec};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let cfg = match config::parse(data) {
        Err(errs) => {
            assert!(!errs.is_empty(), "Err with no error");
            for e in &errs {
                assert!(e.line <= lines + 1, "error on line {} of {lines}: {e}", e.line);
                assert!(!e.to_string().is_empty());
            }
            return;
        }
        Ok(cfg) => cfg,
    };

    assert!(matches!(cfg.vrrp_version, 2 | 3));
    assert!((1..=25500).contains(&cfg.advert_int_cs));
    if cfg.vrrp_version == 2 {
        assert!(cfg.advert_int_cs % 100 == 0);
    } else {
        assert!(cfg.advert_int_cs <= 4095 && cfg.auth_pass.is_none());
    }
    assert!(cfg.priority >= 1 && cfg.virtual_router_id != Some(0));
    assert!((-20..=19).contains(&cfg.nice_level) && cfg.syslog_level <= 7);
    assert!(cfg.unicast_peers.len() <= MAX_PEERS && cfg.virtual_ipaddress.len() <= MAX_VIPS);
    assert!(cfg.track_interface.len() <= MAX_TRACK_IF);
    // The adverts' list and the held addresses are the same addresses, in the same order.
    let held: Vec<_> = cfg.vips.iter().map(|v| v.addr).collect();
    assert_eq!(held.as_slice(), cfg.virtual_ipaddress.as_slice());
    assert!(cfg.vips.iter().all(|v| v.prefix <= 32));
    if let Some(src) = cfg.unicast_src_ip {
        assert!(!cfg.unicast_peers.contains(&src));
    }
    for (i, ip) in cfg.unicast_peers.iter().enumerate() {
        assert!(!cfg.unicast_peers[..i].contains(ip), "peer {ip} twice");
    }
    for name in cfg.interface.iter().chain(cfg.track_interface.iter()) {
        assert!((1..=15).contains(&name.len()));
    }
    assert!((1..=1000).contains(&cfg.track_fall) && (1..=1000).contains(&cfg.track_rise));
    let _ = cfg.daemon_errors();
    let _ = cfg.expects_daemon();

    let spec = AdvertSpec {
        version: cfg.vrrp_version,
        vrid: cfg.virtual_router_id.unwrap_or(1),
        priority: cfg.priority,
        interval_cs: cfg.advert_int_cs,
        auth: cfg.auth_pass,
        addrs: &cfg.virtual_ipaddress,
    };
    let src = cfg.unicast_src_ip.unwrap_or(Ipv4Addr::new(192, 0, 2, 1));
    let dst = cfg.unicast_peers.first().copied().unwrap_or(wire::MCAST_GROUP);
    let mut buf = [0u8; wire::MAX_MSG];
    if let Err(e) = wire::emit(&spec, src, dst, cfg.v3_checksum, &mut buf) {
        panic!("a valid config cannot be sent: {e:?} {spec:?}");
    }
});
