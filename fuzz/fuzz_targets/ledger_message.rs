//! The run ledger's datagram and state machine: what a peer (or anyone on the link) can send.
//!
//! Checks, beyond "never panics": a datagram that parses emits back to the same bytes (up to
//! the reserved bytes of its records, which emit writes as zero); fed to a ledger as coming
//! from a configured peer, every datagram the ledger sends in answer parses, and a record it
//! holds afterwards is asked about without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::ledger::book::{Ledger, Now, Params, Standing, Tx};
use rcron::ledger::wire::{self, Header, Record};
use std::net::Ipv4Addr;

const OWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);

struct Check;

impl Tx for Check {
    fn send(&mut self, _to: Ipv4Addr, h: &Header, records: &[Record]) {
        let mut buf = [0u8; wire::MAX_LEN];
        let n = wire::emit(h, records, &mut buf);
        let m = wire::parse(&buf[..n]).expect("the ledger sends what parses");
        assert_eq!(m.header, *h);
        assert!(m.records().eq(records.iter().copied().take(wire::MAX_RECORDS)));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = wire::parse(data) {
        let records: Vec<Record> = m.records().collect();
        let mut buf = [0u8; wire::MAX_LEN];
        let n = wire::emit(&m.header, &records, &mut buf);
        assert_eq!(n, data.len());
        for (i, (a, b)) in buf[..n].iter().zip(data).enumerate() {
            let reserved = i >= wire::HEADER_LEN && (i - wire::HEADER_LEN) % wire::RECORD_LEN >= 21;
            assert!(a == b || reserved, "byte {i}: emitted {a:#x}, received {b:#x}");
        }
    }
    let peers = [PEER].into_iter().collect();
    let p = Params { own: OWN, vrid: 61, priority: 100, peers, max_clock_offset_ms: 30_000 };
    let mut l = Ledger::new(p);
    let now = Now { mono: 1000, wall_ms: 1_796_000_000_000 };
    l.start(now, &mut Check);
    // The same bytes twice (a retransmission), then the ledger's own timers.
    let _ = l.on_datagram(now, PEER, data, &mut Check);
    let _ = l.on_datagram(now, PEER, data, &mut Check);
    l.poll(Now { mono: 5000, ..now }, Standing::ConfirmedMaster, &mut Check);
    if let Ok(m) = wire::parse(data)
        && let Some(r) = m.record()
    {
        let _ = l.ask(now, r.job, r.slot, Standing::ConfirmedMaster, &mut Check);
    }
});
