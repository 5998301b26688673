//! The etcd backend as the worker drives it (`backend::Backend`): the [`Leadership`] state
//! machine, a requester thread that runs its requests one at a time, a watch thread that
//! follows the group's keys, and an eventfd through which both wake the worker's poll loop.
//!
//! Owns: the layout of the group's keys ([`Keys`]), both threads and their gateways.
//! Guarantees: the worker never blocks on etcd (every request runs on a thread, bounded by
//! [`Lease::renew_ms`]); the active deadline is enforced by the worker's own timer, whatever
//! the threads are doing; an answer or event that does not fit the layout is dropped and
//! counted, never trusted.

use super::api::{self, Event, Gateway, KeyValue};
use super::leader::{Holder, Leadership, Reply, Request};
use crate::backend::{Backend, Fence, MasterName, Role, Sink, SlotAnswer};
use crate::config::Config;
use crate::report::Kv;
use crate::timing::{Lease, Timing};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long one watch stream is kept before it is opened anew (a stream on a connection that
/// died silently would otherwise never end).
pub const WATCH_LIFETIME_MS: u64 = 30_000;
/// Pause before a watch that failed is opened again; it doubles with every failure in a row,
/// up to [`WATCH_RETRY_MAX_MS`].
pub const WATCH_RETRY_MS: u64 = 200;
pub const WATCH_RETRY_MAX_MS: u64 = 5_000;

/// The group's keys: `PREFIX` + `leader` (value: the leader's name, on its lease) and
/// `PREFIX` + `slots/SLOT/JOB` (value: the runner's name; SLOT 20 decimal digits, so that keys
/// sort by scheduled time, JOB 16 hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub prefix: Vec<u8>,
    pub leader: Vec<u8>,
    pub slots: Vec<u8>,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let p = prefix.as_bytes().to_vec();
        Keys {
            leader: [&p[..], b"leader"].concat(),
            slots: [&p[..], b"slots/"].concat(),
            prefix: p,
        }
    }

    /// The record of (job, slot).
    pub fn record(&self, job: u64, slot: u64) -> Vec<u8> {
        [&self.slots[..], format!("{slot:020}/{job:016x}").as_bytes()].concat()
    }

    /// The first record key of slots at or after `slot` (the end of an expiry's range).
    pub fn slots_from(&self, slot: u64) -> Vec<u8> {
        [&self.slots[..], format!("{slot:020}").as_bytes()].concat()
    }

    /// (job, slot) of a record key; `None` for any other key.
    pub fn parse_record(&self, key: &[u8]) -> Option<(u64, u64)> {
        let rest = std::str::from_utf8(key.strip_prefix(&self.slots[..])?).ok()?;
        let (slot, job) = rest.split_once('/')?;
        if slot.len() != 20 || job.len() != 16 || !slot.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !job.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((u64::from_str_radix(job, 16).ok()?, slot.parse().ok()?))
    }
}

/// A queue between threads: a mutex, a condition variable and a deque (std's mpsc channels
/// cost 14 KB of code in the static binary). A poisoned lock is taken over: the data is
/// plain messages.
struct Mailbox<T> {
    q: Mutex<VecDeque<T>>,
    ready: Condvar,
}

impl<T> Mailbox<T> {
    fn new() -> Arc<Mailbox<T>> {
        Arc::new(Mailbox { q: Mutex::new(VecDeque::new()), ready: Condvar::new() })
    }

    fn put(&self, t: T) {
        self.q.lock().unwrap_or_else(|e| e.into_inner()).push_back(t);
        self.ready.notify_one();
    }

    /// The oldest message, waiting for one.
    fn take(&self) -> T {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(t) = q.pop_front() {
                return t;
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Every message waiting, without waiting.
    fn drain(&self) -> VecDeque<T> {
        std::mem::take(&mut *self.q.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One watched change, applied to the leadership: the leader key put or deleted, a record
/// put (a record's deletion is the leader's expiry: nothing to do). Returns 1 for a key that
/// fits no part of the layout or a record whose value is not a record's (counted, ignored),
/// else 0.
pub fn apply(l: &mut Leadership, keys: &Keys, now: u64, e: &Event, sink: &mut dyn Sink) -> u64 {
    match e {
        Event::Put(kv) if kv.key == keys.leader => {
            let h = Holder { name: kv.value.clone(), token: kv.create_revision, lease: kv.lease };
            l.on_leader_put(now, h, sink);
        }
        Event::Put(kv) => match keys.parse_record(&kv.key) {
            Some((job, slot)) if l.on_record(job, slot, &kv.value) => {}
            _ => return 1,
        },
        Event::Delete { key, revision } if *key == keys.leader => {
            l.on_leader_deleted(now, *revision, sink)
        }
        Event::Delete { .. } => {}
    }
    0
}

/// What the threads send the worker.
enum Msg {
    Reply {
        req: Request,
        sent: u64,
        reply: Reply,
        endpoint: String,
    },
    /// The watch (re)started: the store's revision and every key under the prefix.
    Snapshot(i64, Vec<KeyValue>),
    Events(Vec<Event>),
    WatchLost(String),
}

/// The etcd backend.
pub struct EtcdNode {
    keys: Keys,
    name: String,
    timing: Timing,
    cfg: Config,
    leadership: Leadership,
    to_requester: Arc<Mailbox<Request>>,
    from_threads: Arc<Mailbox<Msg>>,
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    endpoint: String,
    watching: bool,
    watch_error: String,
    /// Keys seen that fit no part of the layout, and watch restarts.
    foreign_keys: u64,
    watch_restarts: u64,
    facts: crate::handoff::Facts,
}

impl EtcdNode {
    /// The backend for `cfg` (`election = etcd`, validated); starts its threads. Errors: the
    /// eventfd, a thread or a TLS file could not be had.
    pub fn new(cfg: &Config) -> Result<EtcdNode, String> {
        let timing = Timing::new(cfg);
        let lease = timing.lease();
        let keys = Keys::new(&cfg.etcd_prefix());
        let name = cfg.node_name();
        let wake = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| format!("eventfd: {e}"))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (from_threads, to_requester) = (Mailbox::new(), Mailbox::new());
        let (tx, requests) = (from_threads.clone(), to_requester.clone());
        let timeout = Duration::from_millis(lease.renew_ms());
        let requester = Requester {
            gw: Gateway::new(cfg, timeout)?,
            keys: keys.clone(),
            name: name.clone(),
            ttl_s: cfg.etcd_lease_ttl_s,
            retention_s: crate::timing::retention_ms(timing.max_clock_offset_ms) / 1000,
        };
        let watcher = Watcher { gw: Gateway::new(cfg, timeout)?, keys: keys.clone() };
        let (t1, w1) = (tx.clone(), wake.clone());
        std::thread::Builder::new()
            .name("etcd-requests".into())
            .stack_size(256 << 10)
            .spawn(move || requester.run(&requests, &t1, &w1))
            .map_err(|e| format!("thread: {e}"))?;
        let (w2, s2) = (wake.clone(), stop.clone());
        std::thread::Builder::new()
            .name("etcd-watch".into())
            .stack_size(256 << 10)
            .spawn(move || watcher.run(&tx, &w2, &s2))
            .map_err(|e| format!("thread: {e}"))?;
        Ok(EtcdNode {
            leadership: Leadership::new(&name, cfg.etcd_lease_ttl_s, lease),
            keys,
            name,
            timing,
            cfg: cfg.clone(),
            to_requester,
            from_threads,
            wake,
            stop,
            endpoint: cfg.etcd_endpoints.first().cloned().unwrap_or_default(),
            watching: false,
            watch_error: String::new(),
            foreign_keys: 0,
            watch_restarts: 0,
            facts: Default::default(),
        })
    }

    /// One line for the daemon's start.
    pub fn describe(&self) -> String {
        format!(
            "election=etcd node={} endpoints={} prefix={} lease_ttl={}s",
            self.name,
            self.cfg.etcd_endpoints.join(","),
            String::from_utf8_lossy(&self.keys.prefix),
            self.cfg.etcd_lease_ttl_s
        )
    }

    /// Hands the next due request to the requester thread.
    fn kick(&mut self, now: u64) {
        if let Some(r) = self.leadership.next_request(now) {
            self.to_requester.put(r);
        }
    }

    fn drain(&mut self, now: u64, sink: &mut dyn Sink) {
        let _ = self.wake.read();
        for m in self.from_threads.drain() {
            match m {
                Msg::Reply { req, sent, reply, endpoint } => {
                    self.endpoint = endpoint;
                    self.leadership.on_reply(now, sent, &req, reply, sink);
                }
                Msg::Snapshot(revision, kvs) => {
                    self.watching = true;
                    if !kvs.iter().any(|kv| kv.key == self.keys.leader) {
                        self.leadership.on_leader_deleted(now, revision, sink);
                    }
                    for kv in kvs {
                        let e = Event::Put(kv);
                        self.foreign_keys += apply(&mut self.leadership, &self.keys, now, &e, sink);
                    }
                }
                Msg::Events(evs) => {
                    for e in &evs {
                        self.foreign_keys += apply(&mut self.leadership, &self.keys, now, e, sink);
                    }
                }
                Msg::WatchLost(e) => {
                    self.watching = false;
                    self.watch_restarts += 1;
                    self.watch_error = e;
                }
            }
        }
    }

    /// Keeps the handoff facts (for the `handoff CUT` question of wrappers that name no
    /// slot): a renewal that etcd answered while leading is this backend's advert.
    fn track(&mut self, now: u64, before: Role) {
        let role = self.leadership.role();
        if role == Role::Master
            && let Some(t) = self.leadership.renewed_at()
        {
            self.facts.on_advert_sent(t, true);
        }
        if role != before {
            self.facts.on_transition(
                now,
                before == Role::Master,
                role == Role::Master,
                false,
                self.leadership.lease_times().renew_ms(),
            );
        }
    }
}

impl Drop for EtcdNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Backend for EtcdNode {
    fn fds(&self) -> heapless::Vec<BorrowedFd<'_>, 4> {
        let mut v = heapless::Vec::new();
        let _ = v.push(self.wake.as_fd());
        v
    }

    fn fds_generation(&self) -> u64 {
        0
    }

    fn poll_at(&self) -> Option<u64> {
        self.leadership.poll_at()
    }

    fn poll(&mut self, now: u64, _ready: &[bool], sink: &mut dyn Sink) {
        let before = self.leadership.role();
        self.drain(now, sink);
        self.leadership.poll(now, sink);
        self.kick(now);
        self.track(now, before);
    }

    fn start(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        self.leadership.start(now, fault, sink);
        self.kick(now);
    }

    fn started(&self) -> bool {
        self.leadership.started()
    }

    fn set_fault(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        let before = self.leadership.role();
        self.leadership.set_fault(now, fault, sink);
        self.kick(now);
        self.track(now, before);
    }

    fn fault_reason(&self) -> Option<&str> {
        None
    }

    fn shutdown(&mut self, now: u64, sink: &mut dyn Sink) {
        self.leadership.shutdown(now, sink);
        // Passive on disk first (the sink wrote it); then the lease, and the leader key on
        // it, go at once instead of at expiry, so another node takes over now.
        if let Some(lease) = self.leadership.lease() {
            let timeout = Duration::from_millis(self.leadership.lease_times().renew_ms());
            match Gateway::new(&self.cfg, timeout)
                .and_then(|mut g| g.revoke(lease).map_err(|e| e.to_string()))
            {
                Ok(()) => log::info!("etcd lease {lease:x} revoked"),
                Err(e) => log::warn!("etcd lease {lease:x} not revoked ({e}): it expires"),
            }
        }
    }

    fn reload(&mut self, _now: u64, cfg: &Config, _sink: &mut dyn Sink) {
        let etcd = |c: &Config| {
            (
                c.etcd_endpoints.clone(),
                c.etcd_prefix(),
                c.etcd_lease_ttl_s,
                c.node_name(),
                c.max_clock_offset_s,
            )
        };
        if etcd(cfg) != etcd(&self.cfg) {
            log::warn!("etcd keys changed: they take effect when rcrond restarts");
        }
    }

    fn role(&self) -> Role {
        self.leadership.role()
    }

    fn master(&self) -> Option<MasterName> {
        let h = self.leadership.leader()?;
        let mut m = MasterName::new();
        for c in super::leader::shown(&h.name).chars() {
            if m.push(c).is_err() {
                break;
            }
        }
        Some(m)
    }

    fn handoff_view(&self, now: u64) -> crate::handoff::View {
        let is_master = self.leadership.role() == Role::Master;
        self.facts.view(now, is_master, self.leadership.lease_times().renew_ms())
    }

    fn assert_master(&mut self, _now: u64) {}

    fn handoff_wait_ms(&self) -> u64 {
        self.timing.etcd_wait_ms()
    }

    fn status(&self, now: u64, out: &mut Kv) {
        let l = &self.leadership;
        out.put("backend", "etcd");
        out.put("node_name", &self.name);
        out.put("etcd_endpoint", &self.endpoint);
        out.put("etcd_prefix", String::from_utf8_lossy(&self.keys.prefix));
        match l.lease() {
            Some(id) => out.put("etcd_lease", format_args!("{id:x}")),
            None => out.put("etcd_lease", ""),
        }
        let lease: Lease = l.lease_times();
        out.put("etcd_lease_ttl_ms", lease.ttl_ms);
        match l.renewed_at() {
            Some(t) => {
                out.put("etcd_lease_left_ms", (t + lease.ttl_ms).saturating_sub(now));
                out.put("etcd_renewal_age_ms", now.saturating_sub(t));
            }
            None => {
                out.put("etcd_lease_left_ms", "");
                out.put("etcd_renewal_age_ms", "");
            }
        }
        match l.active_until() {
            Some(t) => out.put("etcd_active_left_ms", t.saturating_sub(now)),
            None => out.put("etcd_active_left_ms", ""),
        }
        match l.leader() {
            Some(h) => {
                out.put("leader", super::leader::shown(&h.name));
                out.put("fencing_token", h.token);
            }
            None => {
                out.put("leader", "");
                out.put("fencing_token", "");
            }
        }
        // `on` says the stream is open and etcd answers this node's requests: an open stream
        // alone says little while the TCP connection under it may be dead (a partition).
        let watch = match (self.watching, l.failing()) {
            (false, _) => "off",
            (true, false) => "on",
            (true, true) => "unconfirmed",
        };
        out.put("etcd_watch", watch);
        out.put("etcd_watch_restarts", self.watch_restarts);
        out.put("etcd_requests", l.requests);
        out.put("etcd_failures", l.failures);
        out.put("etcd_last_error", &l.last_error);
        match l.last_error_at {
            Some(t) => out.put("etcd_last_error_age_ms", now.saturating_sub(t)),
            None => out.put("etcd_last_error_age_ms", ""),
        }
        out.put("etcd_watch_error", &self.watch_error);
        out.put("etcd_foreign_keys", self.foreign_keys);
        let mut recent = String::new();
        let all: Vec<_> = l.records().collect();
        for (job, slot, runner) in all.iter().rev().take(10) {
            if !recent.is_empty() {
                recent.push(' ');
            }
            recent.push_str(&format!("{slot}/{job:016x}@{runner}"));
        }
        out.put("recent_slots", recent);
    }

    fn ask_slot(&mut self, now: u64, job: u64, slot: u64) -> Option<SlotAnswer> {
        let a = self.leadership.ask(job, slot);
        self.kick(now);
        Some(a)
    }

    fn fence(&self, now: u64) -> Option<Fence> {
        let until = self.leadership.active_until().filter(|&t| now < t)?;
        let token = self.leadership.token()?;
        Some(Fence { token, until, grace_ms: self.leadership.lease_times().grace_ms() })
    }
}

/// The thread that runs [`Request`]s.
struct Requester {
    gw: Gateway,
    keys: Keys,
    name: String,
    ttl_s: u32,
    retention_s: u64,
}

impl Requester {
    fn run(mut self, requests: &Mailbox<Request>, tx: &Mailbox<Msg>, wake: &EventFd) {
        loop {
            let req = requests.take();
            let sent = crate::os::sys::monotonic_ms();
            let reply = self.exec(&req).unwrap_or_else(Reply::Failed);
            let endpoint = self.gw.endpoint();
            tx.put(Msg::Reply { req, sent, reply, endpoint });
            let _ = wake.write(1);
        }
    }

    fn exec(&mut self, req: &Request) -> Result<Reply, api::Error> {
        let k = &self.keys;
        Ok(match *req {
            Request::Grant => {
                let (id, ttl) = self.gw.grant(self.ttl_s)?;
                Reply::Granted(id, ttl)
            }
            Request::KeepAlive { lease } => Reply::KeptAlive(self.gw.keepalive(lease)?),
            Request::Campaign { lease } => {
                let c = self.gw.campaign(&k.leader, self.name.as_bytes(), lease)?;
                // The holder's lease, for a campaign whose earlier try won unseen.
                let holder_lease = match &c {
                    api::Campaign::Won { .. } => lease,
                    api::Campaign::Held { .. } => {
                        let (_, kvs) = self.gw.range(&k.leader, None)?;
                        kvs.first().map_or(0, |kv| kv.lease)
                    }
                };
                Reply::Campaigned(c, holder_lease)
            }
            Request::ReadLeader => {
                let (_, kvs) = self.gw.range(&k.leader, None)?;
                Reply::Leader(
                    kvs.into_iter().next().map(|kv| (kv.value, kv.create_revision, kv.lease)),
                )
            }
            Request::Record { token, lease, job, slot } => {
                let value = super::leader::record_value(self.name.as_bytes(), lease);
                let key = k.record(job, slot);
                let mut result = self.gw.record(&k.leader, token, &key, &value, None)?;
                // A value that is not a record's (put by hand) does not say the slot ran: the
                // leader writes its own over it, if it is unchanged and the leader still leads.
                if let api::Record::Held { runner, mod_revision } = &result
                    && super::leader::parse_record_value(runner).is_none()
                {
                    log::warn!(
                        "etcd: slot {slot} of job {job:016x} held {:?}, not a record: recorded \
                         over it",
                        String::from_utf8_lossy(&runner[..runner.len().min(64)])
                    );
                    let over = Some(*mod_revision);
                    result = self.gw.record(&k.leader, token, &key, &value, over)?;
                }
                Reply::Recorded { job, slot, result }
            }
            Request::Expire => {
                let cutoff = crate::os::sys::wall_secs().saturating_sub(self.retention_s);
                self.gw.delete_range(&k.slots, &k.slots_from(cutoff))?;
                Reply::Expired
            }
            Request::ClearLeader { token } => {
                let (_, kvs) = self.gw.range(&k.leader, None)?;
                let stale = kvs.first().filter(|kv| kv.lease == 0 && kv.create_revision == token);
                match stale {
                    Some(kv) => {
                        Reply::Cleared(self.gw.delete_if_unchanged(&k.leader, kv.mod_revision)?)
                    }
                    None => Reply::Cleared(false),
                }
            }
            Request::Revoke { lease } => {
                self.gw.revoke(lease)?;
                Reply::Revoked
            }
        })
    }
}

/// The thread that follows every key under the prefix.
struct Watcher {
    gw: Gateway,
    keys: Keys,
}

impl Watcher {
    fn run(mut self, tx: &Mailbox<Msg>, wake: &EventFd, stop: &AtomicBool) {
        let end = api::prefix_end(&self.keys.prefix);
        let send = |m: Msg| {
            tx.put(m);
            let _ = wake.write(1);
            !stop.load(Ordering::Relaxed)
        };
        let mut pause = WATCH_RETRY_MS;
        while !stop.load(Ordering::Relaxed) {
            // When the open stream's lifetime ends: an error past it is its planned end.
            let mut opened: Option<std::time::Instant> = None;
            let r = self.gw.range(&self.keys.prefix, Some(&end)).and_then(|(rev, kvs)| {
                pause = WATCH_RETRY_MS;
                if !send(Msg::Snapshot(rev, kvs)) {
                    return Ok(());
                }
                let lifetime = Duration::from_millis(WATCH_LIFETIME_MS);
                opened = Some(std::time::Instant::now() + lifetime);
                let mut w = self.gw.watch(&self.keys.prefix, &end, rev + 1, lifetime)?;
                loop {
                    let b = w.next_batch()?;
                    if b.ended {
                        return Err(api::Error::Answer(
                            "watch ended (compacted or canceled)".into(),
                        ));
                    }
                    if !b.events.is_empty() && !send(Msg::Events(b.events)) {
                        return Ok(());
                    }
                }
            });
            let e = match r {
                Ok(()) => return,
                Err(e) => e,
            };
            // The stream's planned end (its lifetime) is not news; anything else is.
            let planned = opened.is_some_and(|end| std::time::Instant::now() >= end);
            if planned {
                continue;
            }
            if !send(Msg::WatchLost(e.to_string())) {
                return;
            }
            std::thread::sleep(Duration::from_millis(pause));
            pause = (2 * pause).min(WATCH_RETRY_MAX_MS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip_and_other_keys_are_not_records() {
        let k = Keys::new("/rcron/c/");
        assert_eq!(k.leader, b"/rcron/c/leader");
        let key = k.record(0xabc, 1_700_000_040);
        assert_eq!(key, b"/rcron/c/slots/00000000001700000040/0000000000000abc");
        assert_eq!(k.parse_record(&key), Some((0xabc, 1_700_000_040)));
        assert!(k.slots_from(1_700_000_040) < key && key < k.slots_from(1_700_000_041));
        for bad in [
            &b"/rcron/c/leader"[..],
            b"/rcron/c/slots/1/0000000000000abc",
            b"/rcron/c/slots/00000000001700000040/xyz0000000000abc",
            b"/other/slots/00000000001700000040/0000000000000abc",
            b"/rcron/c/slots/\xff",
        ] {
            assert_eq!(k.parse_record(bad), None, "{bad:?}");
        }
    }
}
