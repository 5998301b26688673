//! What an etcd member (or anything answering at its address) can send the etcd backend: every
//! answer decoder on the input, and each line as a watch message applied to a leadership that
//! holds a lease and the leader key.
//!
//! Checks, beyond "never panics": after any events the leadership still answers questions and
//! plans its next request; an active node's fencing token is the leader key's it last saw.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::backend::{Sink, Transition};
use rcron::etcd::api::{self, Campaign};
use rcron::etcd::leader::{Leadership, Reply, Request};
use rcron::etcd::node::{Keys, apply};
use rcron::timing::Lease;

struct Quiet;
impl Sink for Quiet {
    fn transition(&mut self, _now: u64, _t: &Transition<'_>) {}
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    api::decode_all(text);
    let keys = Keys::new("/rcron/f/");
    let mut l = Leadership::new("a", 4, Lease { ttl_ms: 4000 });
    l.start(0, false, &mut Quiet);
    let grant = l.next_request(0).expect("a grant first");
    l.on_reply(0, 0, &grant, Reply::Granted(7, 4), &mut Quiet);
    let campaign = l.next_request(0).expect("a campaign");
    assert_eq!(campaign, Request::Campaign { lease: 7 });
    l.on_reply(0, 0, &campaign, Reply::Campaigned(Campaign::Won { token: 5 }, 7), &mut Quiet);
    for (i, line) in text.lines().enumerate() {
        if let Ok(batch) = api::parse_watch(line) {
            for e in &batch.events {
                apply(&mut l, &keys, i as u64, e, &mut Quiet);
            }
        }
    }
    let _ = l.ask(1, 60);
    let _ = l.next_request(10);
    let _ = l.poll_at();
    if let Some(t) = l.token() {
        assert_eq!(Some(t), l.leader().map(|h| h.token));
    }
});
