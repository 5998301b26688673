//! Leadership through etcd, as a pure state machine: time and etcd's answers in, the next
//! request and role changes out. No I/O, no clock; unit-tested without etcd.
//!
//! The rules (shared/interface.md, "etcd"; etcd's documentation on leases and on why a lease
//! alone cannot give mutual exclusion, and its `concurrency` package's election):
//! - Every node holds a lease of `etcd_lease_ttl` and renews it every [`Lease::renew_ms`].
//! - Leader: the node that created the leader key (`PREFIX` + `leader`, value its name) on
//!   its lease, in a txn that succeeds only if the key is absent. The key's create revision
//!   is the fencing token: it grows with every new leader.
//! - Safety before liveness: the leader is *active* only until [`Lease::active_ms`] after
//!   sending the last renewal that etcd answered (not after the answer came). Past it, it is
//!   passive at once and its jobs are stopped, before etcd can expire the lease and let
//!   another node create the key.
//! - The others watch the key (the node feeds watch events in) and read it every
//!   [`Lease::active_ms`] in case the watch is stuck; when it is gone they campaign.
//! - A slot runs where a txn created its record (`PREFIX` + `slots/SLOT/JOB`, value the
//!   runner's name) while the leader key was still this node's, with this token.

use super::api::{Campaign, Error, Record};
use crate::backend::{Role, Sink, SlotAnswer, Transition};
use crate::timing::Lease;

/// Records kept in memory (the newest; etcd keeps them all for the retention window).
pub const CAPACITY: usize = 512;
/// Pause after a failed request, before the next; it doubles with every failure in a row, up
/// to half a renewal period (a renewal is still tried twice per period).
pub const RETRY_MS: u64 = 250;
/// While requests keep failing, the failure is logged again this often.
pub const LOG_FAILING_EVERY_MS: u64 = 60_000;
/// How often the leader deletes the records older than the retention window.
pub const EXPIRE_EVERY_MS: u64 = 60_000;

/// What the node's requester thread is asked to do (one at a time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Grant,
    KeepAlive {
        lease: i64,
    },
    Campaign {
        lease: i64,
    },
    ReadLeader,
    /// Create the slot's record (value [`record_value`]) while the leader key has `token`.
    Record {
        token: i64,
        lease: i64,
        job: u64,
        slot: u64,
    },
    /// Delete the records older than the retention window (the node reads the wall clock).
    Expire,
    /// Revoke the lease: the leader key on it goes at once (a faulty leader resigns).
    Revoke {
        lease: i64,
    },
    /// Delete the leader key of create revision `token` if it still has no lease (one put by
    /// hand never expires), once every node that led has seen it changed.
    ClearLeader {
        token: i64,
    },
}

/// etcd's answer to a [`Request`], with when the request was sent (CLOCK_MONOTONIC ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// (lease, TTL granted in seconds).
    Granted(i64, i64),
    /// TTL left in seconds; 0: the lease is gone.
    KeptAlive(i64),
    Campaigned(Campaign, /* the holder's lease */ i64),
    /// The leader key's (holder, token, lease), or none.
    Leader(Option<(Vec<u8>, i64, i64)>),
    Recorded {
        job: u64,
        slot: u64,
        result: Record,
    },
    Expired,
    Revoked,
    /// True when the lease-less leader key was deleted.
    Cleared(bool),
    Failed(Error),
}

/// A record's value: the runner's name and, after a space, its lease (hex). The lease tells
/// this node's own write apart: a txn whose answer was lost (a timeout while etcd had no
/// majority, committed later) is found on the retry with this very value, and the job runs;
/// a record by an earlier lease of the same name (a run before a restart) is skipped.
pub fn record_value(name: &[u8], lease: i64) -> Vec<u8> {
    [name, format!(" {lease:x}").as_bytes()].concat()
}

/// A record's value as [`record_value`] writes it: (the runner's name, its lease); `None`
/// for anything else (a value written by hand or by another program), which is not a record.
pub fn parse_record_value(value: &[u8]) -> Option<(&str, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (name, lease) = text.split_once(' ')?;
    crate::config::parse_node_name(name).ok()?;
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if lease.is_empty() || lease.len() > 16 || !lease.chars().all(hex) {
        return None;
    }
    Some((name, i64::from_str_radix(lease, 16).ok()?))
}

/// The runner's name in a record's value, as [`shown`] (the whole value when it is not a
/// record).
pub fn runner_of(value: &[u8]) -> String {
    match parse_record_value(value) {
        Some((name, _)) => name.to_string(),
        None => shown(value),
    }
}

/// A name read from etcd as rcron prints it (`--status`, logs, the state file's `master=`):
/// the bytes a `node_name` may hold, every other byte as `\xNN`, at most 64 bytes of input.
/// Anyone who can write under the prefix writes these values: a newline must not become a
/// line of its own (`state=active`).
pub fn shown(name: &[u8]) -> String {
    let mut out = String::new();
    for &b in name.iter().take(64) {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Who holds the leader key, as far as this node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub name: Vec<u8>,
    pub token: i64,
    pub lease: i64,
}

/// One slot's record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    job: u64,
    slot: u64,
    runner: String,
    /// This node wrote it and no wrapper has been told to run it yet.
    unclaimed: bool,
}

/// The leadership of one node.
pub struct Leadership {
    name: Vec<u8>,
    /// The configured TTL, seconds.
    ttl_s: u32,
    lease_times: Lease,
    lease: Option<i64>,
    /// When the last renewal (or the grant) that etcd answered with a live lease was sent.
    renewed_at: Option<u64>,
    leader: Option<Holder>,
    /// The leader key is ours (created on our lease).
    own: bool,
    role: Role,
    fault: bool,
    started: bool,
    busy: bool,
    /// No request before this (a failure's pause).
    quiet_until: u64,
    next_read: u64,
    next_expire: u64,
    /// Slots a wrapper asked about while this node leads, not recorded yet.
    to_record: heapless::Deque<(u64, u64), 64>,
    /// At most [`CAPACITY`], oldest first; room made once, on the heap (inline, the 30 KB
    /// node was copied through the worker's stack at start).
    records: std::collections::VecDeque<Entry>,
    /// Failures in a row, and when the streak began and was last logged.
    failing: u32,
    failing_since: u64,
    failing_logged: u64,
    /// The highest fencing token seen: a lower one means etcd's data was reset.
    max_token: i64,
    /// A leader key without a lease: its token and when this node first saw it so.
    leaseless: Option<(i64, u64)>,
    /// Record txns whose answer never came (a timeout: etcd may commit them later), as
    /// (job, slot, the lease in their value). Such a record, seen later, is this node's own
    /// write that no wrapper was told to run, whatever lease the node holds by then.
    unanswered: heapless::Vec<(u64, u64, i64), 64>,
    /// etcd has answered this node at least once (a reply or a watch event).
    reached: bool,
    /// Counters for `--status`.
    pub requests: u64,
    pub failures: u64,
    pub last_error: String,
    pub last_error_at: Option<u64>,
}

impl Leadership {
    /// A node named `name` (its value in the leader key and the records) with a lease of
    /// `ttl_s` seconds, windows from `lease_times` (`Timing::lease`).
    pub fn new(name: &str, ttl_s: u32, lease_times: Lease) -> Leadership {
        Leadership {
            name: name.as_bytes().to_vec(),
            ttl_s,
            lease_times,
            lease: None,
            renewed_at: None,
            leader: None,
            own: false,
            role: Role::Backup,
            fault: false,
            started: false,
            busy: false,
            quiet_until: 0,
            next_read: 0,
            next_expire: 0,
            to_record: heapless::Deque::new(),
            records: std::collections::VecDeque::with_capacity(CAPACITY),
            failing: 0,
            leaseless: None,
            unanswered: heapless::Vec::new(),
            failing_since: 0,
            failing_logged: 0,
            max_token: 0,
            reached: false,
            requests: 0,
            failures: 0,
            last_error: String::new(),
            last_error_at: None,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The last request to etcd failed (no answer since).
    pub fn failing(&self) -> bool {
        self.failing > 0
    }

    pub fn lease(&self) -> Option<i64> {
        self.lease
    }

    pub fn lease_times(&self) -> Lease {
        self.lease_times
    }

    pub fn renewed_at(&self) -> Option<u64> {
        self.renewed_at
    }

    pub fn leader(&self) -> Option<&Holder> {
        self.leader.as_ref()
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Until when (CLOCK_MONOTONIC ms) this node may act as leader: while it is active.
    pub fn active_until(&self) -> Option<u64> {
        if self.own && !self.fault {
            self.renewed_at.map(|t| t + self.lease_times.active_ms())
        } else {
            None
        }
    }

    /// The fencing token while this node is active.
    pub fn token(&self) -> Option<i64> {
        if self.role == Role::Master { self.leader.as_ref().map(|h| h.token) } else { None }
    }

    /// Joins: asks for a lease first.
    pub fn start(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        self.started = true;
        self.fault = fault;
        let to = if fault { Role::Fault } else { Role::Backup };
        self.role = to;
        sink.transition(now, &Transition { from: to, to, reason: "start", master: None });
    }

    /// A fault outside (track script, tracked interface): passive at once; a faulty leader then
    /// revokes its lease, and the leader key on it goes with it ([`Request::Revoke`]).
    pub fn set_fault(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        self.fault = fault;
        self.update(now, if fault { "fault" } else { "fault_cleared" }, sink);
    }

    /// Leaving: passive now (the node revokes the lease, which deletes the key).
    pub fn shutdown(&mut self, now: u64, sink: &mut dyn Sink) {
        self.fault = true;
        self.update(now, "shutdown", sink);
    }

    /// When [`Leadership::next_request`] or the deadline needs the worker next.
    pub fn poll_at(&self) -> Option<u64> {
        let mut t = self.active_until().filter(|_| self.role == Role::Master);
        if !self.busy && self.started {
            let due = self.due_at().max(self.quiet_until);
            t = Some(t.map_or(due, |x| x.min(due)));
        }
        t
    }

    /// When the next request is due (ignoring the pause after a failure).
    fn due_at(&self) -> u64 {
        if self.lease.is_none() || !self.to_record.is_empty() {
            return 0;
        }
        if self.leader.is_none() && !self.fault {
            return 0;
        }
        if self.own && self.fault {
            return 0;
        }
        let renew = self.renewed_at.map_or(0, |t| t + self.lease_times.renew_ms());
        let mut t = renew.min(self.next_read);
        if let Some(at) = self.clear_at() {
            t = t.min(at);
        }
        if self.role == Role::Master {
            t = t.min(self.next_expire);
        }
        t
    }

    /// Runs the timers: the active deadline.
    pub fn poll(&mut self, now: u64, sink: &mut dyn Sink) {
        self.update(now, "lease_not_renewed", sink);
    }

    /// The next request, when one is due and none is in flight.
    pub fn next_request(&mut self, now: u64) -> Option<Request> {
        if self.busy || !self.started || now < self.quiet_until || now < self.due_at() {
            return None;
        }
        let r = match (self.lease, &self.leader) {
            (None, _) => Request::Grant,
            (Some(lease), _)
                if self.renewed_at.is_none_or(|t| now >= t + self.lease_times.renew_ms()) =>
            {
                Request::KeepAlive { lease }
            }
            (Some(lease), _) if self.own && self.fault => Request::Revoke { lease },
            (Some(lease), None) if !self.fault => Request::Campaign { lease },
            (Some(_), Some(h)) if self.role == Role::Master && !self.to_record.is_empty() => {
                let (job, slot) = *self.to_record.front()?;
                Request::Record { token: h.token, lease: self.lease?, job, slot }
            }
            (Some(_), _) if self.role == Role::Master && now >= self.next_expire => Request::Expire,
            (Some(_), Some(h)) if self.clear_at().is_some_and(|at| now >= at) => {
                Request::ClearLeader { token: h.token }
            }
            (Some(_), _) => Request::ReadLeader,
        };
        if r == Request::ReadLeader && now < self.next_read {
            return None;
        }
        self.busy = true;
        self.requests += 1;
        Some(r)
    }

    /// etcd's answer to the request in flight, sent at `sent`.
    pub fn on_reply(
        &mut self,
        now: u64,
        sent: u64,
        req: &Request,
        reply: Reply,
        sink: &mut dyn Sink,
    ) {
        self.busy = false;
        self.reached |= !matches!(reply, Reply::Failed(_));
        if !matches!(reply, Reply::Failed(_)) && self.failing > 0 {
            let ms = now.saturating_sub(self.failing_since);
            log::info!("etcd answers again ({} failed requests in {ms} ms)", self.failing);
            self.failing = 0;
        }
        match reply {
            Reply::Granted(lease, ttl) => {
                self.own = false;
                self.lease = Some(lease);
                self.renewed_at = Some(sent);
                let granted = (ttl.max(0) as u64).saturating_mul(1000);
                self.lease_times = Lease { ttl_ms: granted.min(self.ttl_s as u64 * 1000) };
            }
            Reply::KeptAlive(ttl) if ttl > 0 => self.renewed_at = Some(sent),
            Reply::KeptAlive(_) => {
                log::warn!("etcd lease {:x} is gone: a new one", self.lease.unwrap_or(0));
                self.lease = None;
                self.own = false;
                self.renewed_at = None;
            }
            Reply::Campaigned(Campaign::Won { token }, _) => {
                self.own = true;
                let lease = self.lease.unwrap_or(0);
                self.leader = Some(Holder { name: self.name.clone(), token, lease });
            }
            Reply::Campaigned(Campaign::Held { holder, token }, lease) => {
                // Our own lease: an earlier try of this campaign won and its answer was lost.
                self.own = Some(lease) == self.lease;
                self.leader = Some(Holder { name: holder, token, lease });
            }
            Reply::Leader(h) => {
                self.next_read = now + self.lease_times.active_ms();
                self.set_leader(h.map(|(name, token, lease)| Holder { name, token, lease }));
            }
            Reply::Recorded { job, slot, result } => {
                let _ = self.to_record.pop_front();
                // etcd's answer decides the slot: a later sight of an earlier try's write is
                // no news (it must not offer the run again). That write is ours to run when
                // its txn got no answer: no wrapper was told to run it.
                let unanswered = matches!(&result, Record::Held { runner, .. }
                    if self.unanswered.iter().any(|&(j, s, l)|
                        (j, s) == (job, slot) && *runner == record_value(&self.name, l)));
                self.forget_unanswered(job, slot);
                match result {
                    Record::Written => self.remember(job, slot, self.name_str(), true),
                    // Our own earlier try, committed although its answer was lost.
                    Record::Held { runner, .. }
                        if unanswered
                            || self
                                .lease
                                .is_some_and(|l| runner == record_value(&self.name, l)) =>
                    {
                        self.remember(job, slot, self.name_str(), true)
                    }
                    Record::Held { runner, .. } => {
                        self.remember(job, slot, runner_of(&runner), false)
                    }
                    Record::NotLeader => {
                        log::warn!("etcd: the leader key is no longer ours");
                        self.own = false;
                        self.leader = None;
                    }
                }
            }
            Reply::Expired => self.next_expire = now + EXPIRE_EVERY_MS,
            Reply::Cleared(deleted) => {
                if deleted {
                    log::warn!("etcd: deleted the leader key that had no lease");
                    self.set_leader(None);
                }
                self.leaseless = None;
                self.next_read = now;
            }
            Reply::Revoked => {
                self.lease = None;
                self.own = false;
                self.renewed_at = None;
                self.leader = None;
            }
            Reply::Failed(e) => {
                self.failures += 1;
                self.last_error = e.to_string();
                self.last_error_at = Some(now);
                if self.failing == 0 {
                    self.failing_since = now;
                }
                if self.failing == 0 || now >= self.failing_logged + LOG_FAILING_EVERY_MS {
                    let n = self.failing + 1;
                    log::warn!(
                        "etcd: {e} ({n} failed request{} in a row)",
                        if n == 1 { "" } else { "s" }
                    );
                    self.failing_logged = now;
                }
                self.failing = self.failing.saturating_add(1);
                let backoff = (RETRY_MS << self.failing.min(16).saturating_sub(1))
                    .min(self.lease_times.renew_ms() / 2)
                    .max(RETRY_MS.min(self.lease_times.renew_ms() / 2));
                self.quiet_until = now + backoff;
                if let Request::Record { lease, job, slot, .. } = *req {
                    if matches!(e, Error::Answer(_)) {
                        // A txn etcd refused for good: the slot stays unrecorded here.
                        let _ = self.to_record.pop_front();
                    } else if !self.unanswered.contains(&(job, slot, lease)) {
                        if self.unanswered.is_full() {
                            let _ = self.unanswered.remove(0);
                        }
                        let _ = self.unanswered.push((job, slot, lease));
                    }
                }
            }
        }
        self.note_leaseless(now);
        self.update(now, "etcd", sink);
    }

    /// Starts the wait before a lease-less leader key is deleted ([`Request::ClearLeader`])
    /// when one is first seen, ends it when the key has a lease again or is gone.
    fn note_leaseless(&mut self, now: u64) {
        self.leaseless = match (&self.leader, self.leaseless) {
            (Some(h), Some((token, at))) if h.lease == 0 && h.token == token => Some((token, at)),
            (Some(h), _) if h.lease == 0 => Some((h.token, now)),
            _ => None,
        };
    }

    /// When a lease-less leader key may be deleted: one TTL after this node saw it. A leader
    /// whose key was overwritten steps down when it sees the change (its watch, or its read
    /// of the key every [`Lease::active_ms`]), or when its own active window ends: both within
    /// the TTL, so no node leads beside it.
    fn clear_at(&self) -> Option<u64> {
        let (_, at) = self.leaseless?;
        (!self.fault).then_some(at + self.lease_times.ttl_ms)
    }

    /// A watch saw the leader key put. An event older than what this node knows (a holder
    /// created before the one it has: the watch lags behind a read or a campaign) is ignored.
    pub fn on_leader_put(&mut self, now: u64, h: Holder, sink: &mut dyn Sink) {
        if self.leader.as_ref().is_some_and(|cur| h.token < cur.token) {
            return;
        }
        self.set_leader(Some(h));
        self.note_leaseless(now);
        self.update(now, "leader_key", sink);
    }

    /// A watch saw the leader key deleted at `revision` (or a snapshot at `revision` had no
    /// key). A deletion older than the holder this node knows deleted an earlier holder's key:
    /// ignored.
    pub fn on_leader_deleted(&mut self, now: u64, revision: i64, sink: &mut dyn Sink) {
        if self.leader.as_ref().is_some_and(|cur| revision < cur.token) {
            return;
        }
        self.set_leader(None);
        self.note_leaseless(now);
        self.update(now, "leader_key", sink);
    }

    /// A slot's record seen under the prefix (a watch, or the read at start); false (ignored) when its value is not a
    /// record's: the leader overwrites such a value when it records the slot.
    pub fn on_record(&mut self, job: u64, slot: u64, value: &[u8]) -> bool {
        self.reached = true;
        if parse_record_value(value).is_none() {
            return false;
        }
        // Our txn that timed out, committed by etcd later (perhaps after our lease changed):
        // ours to run, as no wrapper was told to.
        let ours = self.take_unanswered(job, slot, value);
        self.remember(job, slot, runner_of(value), ours);
        true
    }

    /// True (and forgotten) when `value` on (job, slot) is the write of one of this node's
    /// record txns that got no answer.
    fn take_unanswered(&mut self, job: u64, slot: u64, value: &[u8]) -> bool {
        let name = &self.name;
        let found = self
            .unanswered
            .iter()
            .position(|&(j, s, l)| j == job && s == slot && value == record_value(name, l));
        if found.is_some() {
            self.forget_unanswered(job, slot);
        }
        found.is_some()
    }

    /// The slot is decided as ours: a later sight of an earlier txn's write is no news (it
    /// must not offer the run again).
    fn forget_unanswered(&mut self, job: u64, slot: u64) {
        self.unanswered.retain(|&(j, s, _)| (j, s) != (job, slot));
    }

    fn set_leader(&mut self, h: Option<Holder>) {
        self.own = h.as_ref().is_some_and(|h| Some(h.lease) == self.lease && h.name == self.name);
        if let Some(n) = &h
            && self.leader.as_ref() != Some(n)
        {
            if n.lease == 0 {
                log::warn!(
                    "etcd: the leader key holds {} without a lease (written by hand?): it \
                     never expires; deleted after one TTL unless it changes",
                    shown(&n.name)
                );
            }
            if n.token < self.max_token {
                log::error!(
                    "etcd: fencing token {} after {}: etcd's data was reset or restored; jobs \
                     that keep the last token refuse this leader",
                    n.token,
                    self.max_token
                );
            }
            self.max_token = self.max_token.max(n.token);
        }
        self.leader = h;
    }

    fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into()
    }

    /// Adds a record, or marks a known one as written by this node now (the watch may have
    /// shown our own record before the txn's answer came).
    fn remember(&mut self, job: u64, slot: u64, runner: String, unclaimed: bool) {
        if let Some(e) = self.records.iter_mut().find(|e| e.job == job && e.slot == slot) {
            e.unclaimed |= unclaimed;
            return;
        }
        if self.records.len() >= CAPACITY {
            let _ = self.records.pop_front();
        }
        self.records.push_back(Entry { job, slot, runner, unclaimed });
    }

    /// A wrapper's question about (job, slot): the record decides; a leader without one asks
    /// etcd to create it.
    pub fn ask(&mut self, job: u64, slot: u64) -> SlotAnswer {
        if self.to_record.iter().any(|&q| q == (job, slot)) {
            // Our txn is out: its answer decides (the watch may show its record first).
            return SlotAnswer::Wait(self.wait_reason());
        }
        if let Some(e) = self.records.iter_mut().find(|e| e.job == job && e.slot == slot) {
            if e.unclaimed && self.role == Role::Master {
                e.unclaimed = false;
                return SlotAnswer::Run { token: self.leader.as_ref().map_or(0, |h| h.token) };
            }
            if e.unclaimed {
                // Ours and told to no wrapper (a txn that timed out while etcd had no
                // majority, committed later), while this node does not lead: it runs here,
                // fenced, if this node leads again within the wrapper's wait. `ran_here`
                // would lose it: the others hold it as this node's.
                return SlotAnswer::Wait(self.wait_reason());
            }
            let here = e.runner.as_bytes() == self.name;
            return SlotAnswer::Held { runner: e.runner.clone(), here };
        }
        if self.role == Role::Master && !self.to_record.iter().any(|&q| q == (job, slot)) {
            let _ = self.to_record.push_back((job, slot));
        }
        SlotAnswer::Wait(self.wait_reason())
    }

    /// Why a slot has no record yet, as the wrapper is told if its wait ends first.
    fn wait_reason(&self) -> &'static str {
        if self.failing > 0 || !self.reached {
            "etcd_unreachable"
        } else if self.leader.is_none() {
            "no_leader"
        } else {
            "no_record_in_time"
        }
    }

    /// The role as the facts say at `now`; a change is reported to `sink` with `reason`
    /// (or a more precise one).
    fn update(&mut self, now: u64, reason: &'static str, sink: &mut dyn Sink) {
        let active = self.active_until().is_some_and(|t| now < t);
        let to = match (self.fault, active) {
            (true, _) => Role::Fault,
            (false, true) => Role::Master,
            (false, false) => Role::Backup,
        };
        if to == self.role || !self.started {
            return;
        }
        let reason = match (self.role, to) {
            (_, Role::Master) => "leader_key_won",
            (Role::Master, Role::Backup) if self.own => "lease_not_renewed",
            (Role::Master, Role::Backup) => "leader_key_lost",
            _ => reason,
        };
        let from = std::mem::replace(&mut self.role, to);
        if from == Role::Master {
            // A slot asked about while leading is decided by the next leader.
            self.to_record.clear();
            if !self.fault {
                // Active again only once a campaign has found the key still on our lease.
                self.own = false;
                self.leader = None;
            }
        }
        let name = self.leader.as_ref().map(|h| shown(&h.name));
        let master = if to == Role::Master { Some(self.name_str()) } else { name };
        sink.transition(now, &Transition { from, to, reason, master: master.as_deref() });
    }

    /// The records known, newest last: (job, slot, runner).
    pub fn records(&self) -> impl Iterator<Item = (u64, u64, &str)> {
        self.records.iter().map(|e| (e.job, e.slot, e.runner.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<(u64, Role, Role, &'static str)>);
    impl Sink for Log {
        fn transition(&mut self, now: u64, t: &Transition<'_>) {
            self.0.push((now, t.from, t.to, t.reason));
        }
    }

    const TTL: Lease = Lease { ttl_ms: 6000 };

    /// Runs `l`'s requests at `now` with `answer` until none is due.
    fn serve(
        l: &mut Leadership,
        now: u64,
        log: &mut Log,
        answer: &mut dyn FnMut(&Request) -> Reply,
    ) {
        while let Some(r) = l.next_request(now) {
            let reply = answer(&r);
            l.on_reply(now, now, &r, reply, log);
        }
    }

    /// etcd as one node sees it: it wins every campaign while nobody holds the key.
    fn etcd(holder: &mut Option<i64>, token: i64) -> impl FnMut(&Request) -> Reply + '_ {
        move |r| match r {
            Request::Grant => Reply::Granted(7, 6),
            Request::KeepAlive { .. } => Reply::KeptAlive(6),
            Request::Campaign { lease } => match holder {
                None => {
                    *holder = Some(*lease);
                    Reply::Campaigned(Campaign::Won { token }, *lease)
                }
                Some(l) => {
                    Reply::Campaigned(Campaign::Held { holder: b"other".to_vec(), token }, *l)
                }
            },
            Request::ReadLeader => {
                let name = |l: i64| if l == 7 { b"a".to_vec() } else { b"other".to_vec() };
                Reply::Leader(holder.map(|l| (name(l), token, l)))
            }
            Request::Record { job, slot, .. } => {
                Reply::Recorded { job: *job, slot: *slot, result: Record::Written }
            }
            Request::Expire => Reply::Expired,
            Request::Revoke { .. } => Reply::Revoked,
            Request::ClearLeader { .. } => Reply::Cleared(false),
        }
    }

    fn leader(now: u64, log: &mut Log) -> Leadership {
        let mut l = Leadership::new("a", 6, TTL);
        l.start(now, false, log);
        let mut holder = None;
        serve(&mut l, now, log, &mut etcd(&mut holder, 40));
        l
    }

    #[test]
    fn a_node_takes_an_absent_key_and_is_active_while_it_renews() {
        let mut log = Log::default();
        let mut l = leader(0, &mut log);
        assert_eq!(l.role(), Role::Master);
        assert_eq!(l.token(), Some(40));
        assert_eq!(log.0.last(), Some(&(0, Role::Backup, Role::Master, "leader_key_won")));
        // Renewals answered keep it active.
        let mut holder = Some(7);
        for t in (1000..20_000).step_by(1000) {
            serve(&mut l, t, &mut log, &mut etcd(&mut holder, 40));
            l.poll(t, &mut log);
            assert_eq!(l.role(), Role::Master, "at {t}");
        }
    }

    #[test]
    fn a_leader_that_cannot_renew_is_passive_from_the_send_of_its_last_renewal() {
        let mut log = Log::default();
        let mut l = leader(0, &mut log);
        // Renewal sent at 1000, answered late at 2500: the window counts from 1000.
        let r = l.next_request(1000).unwrap();
        assert_eq!(r, Request::KeepAlive { lease: 7 });
        l.on_reply(2500, 1000, &r, Reply::KeptAlive(6), &mut log);
        assert_eq!(l.active_until(), Some(1000 + TTL.active_ms()));
        // etcd unreachable from now on.
        let mut t = 2500;
        while t < 1000 + TTL.active_ms() {
            if let Some(r) = l.next_request(t) {
                l.on_reply(t, t, &r, Reply::Failed(Error::Unreachable("x".into())), &mut log);
            }
            l.poll(t, &mut log);
            assert_eq!(l.role(), Role::Master, "at {t}");
            t += 50;
        }
        assert_eq!(l.poll_at(), Some(1000 + TTL.active_ms()));
        l.poll(1000 + TTL.active_ms(), &mut log);
        assert_eq!(l.role(), Role::Backup);
        assert_eq!(log.0.last().unwrap().3, "lease_not_renewed");
        assert!(1000 + TTL.active_ms() + TTL.grace_ms() < 1000 + TTL.ttl_ms);
        // Back in time (the lease still alive): a renewal alone does not make it active; the
        // campaign that finds the key on our lease does.
        let t = t + RETRY_MS;
        let r = l.next_request(t).unwrap();
        assert_eq!(r, Request::KeepAlive { lease: 7 });
        l.on_reply(t, t, &r, Reply::KeptAlive(6), &mut log);
        assert_eq!(l.role(), Role::Backup);
        let r = l.next_request(t).unwrap();
        assert_eq!(r, Request::Campaign { lease: 7 });
        let held = Campaign::Held { holder: b"a".to_vec(), token: 40 };
        l.on_reply(t, t, &r, Reply::Campaigned(held, 7), &mut log);
        assert_eq!((l.role(), l.token()), (Role::Master, Some(40)), "the key is still ours");
    }

    #[test]
    fn a_follower_campaigns_when_the_key_goes_and_tokens_come_from_etcd() {
        let mut log = Log::default();
        let mut l = Leadership::new("b", 6, TTL);
        l.start(0, false, &mut log);
        let mut holder = Some(99);
        serve(&mut l, 0, &mut log, &mut etcd(&mut holder, 40));
        assert_eq!(l.role(), Role::Backup);
        assert_eq!(l.leader().map(|h| (h.name.as_slice(), h.token)), Some((&b"other"[..], 40)));
        // The watch: deleted (the old leader's lease expired), after an older deletion that
        // arrives late and changes nothing.
        l.on_leader_deleted(10, 39, &mut log);
        assert_eq!(l.leader().map(|h| h.token), Some(40));
        l.on_leader_deleted(10, 41, &mut log);
        let mut holder = None;
        serve(&mut l, 10, &mut log, &mut etcd(&mut holder, 42));
        assert_eq!((l.role(), l.token()), (Role::Master, Some(42)));
        // The watch lags: the deletion that let us win, seen after our win, changes nothing.
        l.on_leader_deleted(11, 41, &mut log);
        let stale = Holder { name: b"other".to_vec(), token: 40, lease: 99 };
        l.on_leader_put(11, stale, &mut log);
        assert_eq!((l.role(), l.token()), (Role::Master, Some(42)));
    }

    #[test]
    fn a_lost_campaign_answer_is_recognised_by_the_lease() {
        let mut log = Log::default();
        let mut l = Leadership::new("a", 6, TTL);
        l.start(0, false, &mut log);
        let r = l.next_request(0).unwrap();
        l.on_reply(0, 0, &r, Reply::Granted(7, 6), &mut log);
        let r = l.next_request(0).unwrap();
        assert_eq!(r, Request::Campaign { lease: 7 });
        l.on_reply(5, 0, &r, Reply::Failed(Error::Unreachable("timeout".into())), &mut log);
        let r = l.next_request(5 + RETRY_MS).unwrap();
        l.on_reply(
            300,
            300,
            &r,
            Reply::Campaigned(Campaign::Held { holder: b"a".to_vec(), token: 12 }, 7),
            &mut log,
        );
        assert_eq!((l.role(), l.token()), (Role::Master, Some(12)));
        // Our name on an older lease (a previous run of this node) is not ours.
        let mut l = Leadership::new("a", 6, TTL);
        l.start(0, false, &mut log);
        let r = l.next_request(0).unwrap();
        l.on_reply(0, 0, &r, Reply::Granted(8, 6), &mut log);
        let r = l.next_request(0).unwrap();
        l.on_reply(
            0,
            0,
            &r,
            Reply::Campaigned(Campaign::Held { holder: b"a".to_vec(), token: 12 }, 7),
            &mut log,
        );
        assert_eq!(l.role(), Role::Backup);
    }

    #[test]
    fn slots_run_once_where_recorded_and_skip_elsewhere() {
        let mut log = Log::default();
        let mut l = leader(0, &mut log);
        assert_eq!(l.ask(1, 60), SlotAnswer::Wait("no_record_in_time"));
        assert_eq!(
            l.ask(1, 60),
            SlotAnswer::Wait("no_record_in_time"),
            "asked twice, recorded once"
        );
        let r = l.next_request(0).unwrap();
        assert_eq!(r, Request::Record { token: 40, lease: 7, job: 1, slot: 60 });
        // The watch shows our own record before the txn's answer arrives.
        l.on_record(1, 60, b"a");
        assert_eq!(l.ask(1, 60), SlotAnswer::Wait("no_record_in_time"), "the txn's answer decides");
        l.on_reply(
            0,
            0,
            &r,
            Reply::Recorded { job: 1, slot: 60, result: Record::Written },
            &mut log,
        );
        assert!(l.next_request(0).is_none());
        assert_eq!(l.ask(1, 60), SlotAnswer::Run { token: 40 });
        assert_eq!(
            l.ask(1, 60),
            SlotAnswer::Held { runner: "a".into(), here: true },
            "a second wrapper skips"
        );
        // A txn that timed out, committed by etcd later: the retry finds our own value.
        assert_eq!(l.ask(9, 60), SlotAnswer::Wait("no_record_in_time"));
        let r = l.next_request(0).unwrap();
        l.on_reply(5, 0, &r, Reply::Failed(Error::Unreachable("timeout".into())), &mut log);
        let r = l.next_request(5 + RETRY_MS).unwrap();
        assert_eq!(r, Request::Record { token: 40, lease: 7, job: 9, slot: 60 });
        l.on_record(9, 60, &record_value(b"a", 7));
        let ours = Record::Held { runner: record_value(b"a", 7), mod_revision: 50 };
        l.on_reply(300, 300, &r, Reply::Recorded { job: 9, slot: 60, result: ours }, &mut log);
        assert_eq!(l.ask(9, 60), SlotAnswer::Run { token: 40 }, "our own write: it runs");
        // Our name on an earlier lease (a run before a restart): skip.
        assert_eq!(l.ask(8, 60), SlotAnswer::Wait("no_record_in_time"));
        let r = l.next_request(300).unwrap();
        let before = Record::Held { runner: record_value(b"a", 6), mod_revision: 51 };
        l.on_reply(300, 300, &r, Reply::Recorded { job: 8, slot: 60, result: before }, &mut log);
        assert_eq!(l.ask(8, 60), SlotAnswer::Held { runner: "a".into(), here: true });
        // Recorded by the old leader before: skip.
        assert_eq!(l.ask(2, 60), SlotAnswer::Wait("no_record_in_time"));
        let r = l.next_request(300).unwrap();
        let held = Record::Held { runner: record_value(b"b", 3), mod_revision: 52 };
        l.on_reply(0, 0, &r, Reply::Recorded { job: 2, slot: 60, result: held }, &mut log);
        assert_eq!(l.ask(2, 60), SlotAnswer::Held { runner: "b".into(), here: false });
        // The key is no longer ours (fenced): passive, nothing runs.
        assert_eq!(l.ask(3, 60), SlotAnswer::Wait("no_record_in_time"));
        let r = l.next_request(300).unwrap();
        l.on_reply(
            0,
            0,
            &r,
            Reply::Recorded { job: 3, slot: 60, result: Record::NotLeader },
            &mut log,
        );
        assert_eq!(l.role(), Role::Backup);
        assert_eq!(l.ask(3, 60), SlotAnswer::Wait("no_leader"));
        // A follower learns records from the watch and skips; a value that is not a record's
        // (put by hand) is not one.
        let mut f = Leadership::new("c", 6, TTL);
        assert_eq!(f.ask(4, 120), SlotAnswer::Wait("etcd_unreachable"), "never reached");
        assert!(f.on_record(4, 120, &record_value(b"a", 9)));
        assert_eq!(f.ask(4, 120), SlotAnswer::Held { runner: "a".into(), here: false });
        assert_eq!(f.ask(5, 120), SlotAnswer::Wait("no_leader"));
        for junk in [&b""[..], b"junk", b"c zzzz", b"c 12 extra", b"-c 1", b"c 11112222333344445"] {
            assert!(!f.on_record(6, 120, junk), "{junk:?}");
        }
        assert_eq!(f.ask(6, 120), SlotAnswer::Wait("no_leader"));
        assert_eq!(parse_record_value(b"n-1.x_y 1a2b"), Some(("n-1.x_y", 0x1a2b)));
    }

    /// A leader (lease 7, token 40) whose record txn for (job 9, slot 60) timed out.
    fn timed_out_record(log: &mut Log) -> Leadership {
        let mut l = leader(0, log);
        assert_eq!(l.ask(9, 60), SlotAnswer::Wait("no_record_in_time"));
        let r = l.next_request(0).unwrap();
        assert_eq!(r, Request::Record { token: 40, lease: 7, job: 9, slot: 60 });
        l.on_reply(5, 0, &r, Reply::Failed(Error::Unreachable("timeout".into())), log);
        l
    }

    /// A record txn that timed out while etcd had no majority, committed when the majority
    /// came back, after the node's lease had changed: the record (on the old lease) is this
    /// node's own write that no wrapper ran, so the slot runs here once.
    #[test]
    fn a_timed_out_record_committed_later_on_an_old_lease_runs_once() {
        let mut log = Log::default();
        let mut l = timed_out_record(&mut log);
        // The retries time out too, the lease is gone meanwhile; a new one, and the key again.
        let mut holder = None;
        let mut answer = etcd(&mut holder, 41);
        let mut t = 5 + RETRY_MS;
        let r = loop {
            assert!(t < 60_000, "no record on the new lease");
            if l.role() == Role::Master && l.lease() == Some(8) {
                assert_eq!(
                    l.ask(9, 60),
                    SlotAnswer::Wait("no_record_in_time"),
                    "the wrapper still waits"
                );
            }
            let Some(r) = l.next_request(t) else {
                t += 10;
                continue;
            };
            let reply = match r {
                Request::Record { lease: 8, .. } => break r,
                Request::Record { .. } => Reply::Failed(Error::Unreachable("timeout".into())),
                Request::KeepAlive { lease: 7 } => Reply::KeptAlive(0),
                Request::Grant => Reply::Granted(8, 6),
                Request::Campaign { lease } => {
                    Reply::Campaigned(Campaign::Won { token: 41 }, lease)
                }
                ref other => answer(other),
            };
            l.on_reply(t, t, &r, reply, &mut log);
            t += 10;
        };
        // The retry on the new lease finds the old write: ours, run once.
        assert_eq!(r, Request::Record { token: 41, lease: 8, job: 9, slot: 60 });
        let old = Record::Held { runner: record_value(b"a", 7), mod_revision: 60 };
        l.on_reply(t, t, &r, Reply::Recorded { job: 9, slot: 60, result: old }, &mut log);
        assert_eq!(l.ask(9, 60), SlotAnswer::Run { token: 41 });
        // The watch shows the write late: no second run.
        assert!(l.on_record(9, 60, &record_value(b"a", 7)));
        assert_eq!(l.ask(9, 60), SlotAnswer::Held { runner: "a".into(), here: true });
        // An old-lease record this process never tried (a run before a restart): skipped.
        assert!(l.on_record(10, 60, &record_value(b"a", 6)));
        assert_eq!(l.ask(10, 60), SlotAnswer::Held { runner: "a".into(), here: true });
    }

    /// Found by CI (ci28, etcd torture: etcd's majority lost, then the leader killed): a
    /// record txn timed out, the node stopped leading, and the write showed up committed. No
    /// wrapper was told to run it; the others hold the slot as this node's. It is not `ran_here`:
    /// the wrapper waits, and runs it if this node leads again.
    #[test]
    fn our_unanswered_record_seen_while_not_leading_waits_for_the_lead() {
        let mut log = Log::default();
        let mut l = timed_out_record(&mut log);
        let other = Holder { name: b"b".to_vec(), token: 50, lease: 99 };
        l.on_leader_put(10, other, &mut log);
        assert_eq!(l.role(), Role::Backup);
        assert!(l.on_record(9, 60, &record_value(b"a", 7)));
        assert!(matches!(l.ask(9, 60), SlotAnswer::Wait(_)), "not ran_here: {:?}", l.ask(9, 60));
        let back = Holder { name: b"a".to_vec(), token: 51, lease: 7 };
        l.on_leader_put(20, back, &mut log);
        assert_eq!(l.role(), Role::Master);
        assert_eq!(l.ask(9, 60), SlotAnswer::Run { token: 51 });
        assert_eq!(l.ask(9, 60), SlotAnswer::Held { runner: "a".into(), here: true });
    }

    /// A leader key put by hand without a lease: the leader steps down at once; the key is
    /// deleted one TTL after it was seen (not before), then the node campaigns.
    #[test]
    fn a_lease_less_leader_key_is_deleted_one_ttl_after_it_was_seen() {
        let mut log = Log::default();
        let mut l = leader(0, &mut log);
        assert_eq!(l.role(), Role::Master);
        let junk = Holder { name: b"junk".to_vec(), token: 40, lease: 0 };
        l.on_leader_put(100, junk, &mut log);
        assert_eq!(l.role(), Role::Backup);
        let mut t = 100;
        while t < 100 + TTL.ttl_ms {
            if let Some(r) = l.next_request(t) {
                assert_ne!(r, Request::ClearLeader { token: 40 }, "at {t}");
                let reply = match r {
                    Request::KeepAlive { .. } => Reply::KeptAlive(6),
                    Request::ReadLeader => Reply::Leader(Some((b"junk".to_vec(), 40, 0))),
                    // The old leader asks again whether the key is still its own: it is not.
                    Request::Campaign { .. } => {
                        Reply::Campaigned(Campaign::Held { holder: b"junk".to_vec(), token: 40 }, 0)
                    }
                    other => panic!("{other:?} at {t}"),
                };
                l.on_reply(t, t, &r, reply, &mut log);
            }
            t += 50;
        }
        let r = l.next_request(100 + TTL.ttl_ms);
        assert_eq!(r, Some(Request::ClearLeader { token: 40 }));
        l.on_reply(6100, 6100, &r.unwrap(), Reply::Cleared(true), &mut log);
        assert_eq!(l.next_request(6100), Some(Request::Campaign { lease: 7 }));
    }

    #[test]
    fn names_from_etcd_are_shown_without_control_characters() {
        assert_eq!(shown(b"node-a.b_c"), "node-a.b_c");
        assert_eq!(shown(b"evil\nstate=active"), "evil\\x0astate\\x3dactive");
        assert_eq!(runner_of(b"n\x1b[31m 7"), "n\\x1b\\x5b31m\\x207", "not a record: all shown");
        assert_eq!(shown(&[b'a'; 100]).len(), 64);
    }

    #[test]
    fn a_faulty_leader_gives_the_key_up_and_a_gone_lease_is_replaced() {
        let mut log = Log::default();
        let mut l = leader(0, &mut log);
        l.set_fault(10, true, &mut log);
        assert_eq!(l.role(), Role::Fault);
        assert_eq!(l.next_request(10), Some(Request::Revoke { lease: 7 }), "the key goes with it");
        l.on_reply(10, 10, &Request::Revoke { lease: 7 }, Reply::Revoked, &mut log);
        assert_eq!(l.next_request(10), Some(Request::Grant));
        l.on_reply(10, 10, &Request::Grant, Reply::Granted(9, 6), &mut log);
        assert_eq!(l.next_request(10), None, "faulty: no campaign");
        l.set_fault(20, false, &mut log);
        l.on_leader_deleted(20, 50, &mut log);
        assert_eq!(l.next_request(20), Some(Request::Campaign { lease: 9 }));
        // The lease expired in etcd: a new one, then a campaign.
        let mut l = leader(0, &mut log);
        let r = l.next_request(2000).unwrap();
        l.on_reply(2000, 2000, &r, Reply::KeptAlive(0), &mut log);
        assert_eq!(l.role(), Role::Backup);
        assert_eq!(l.next_request(2000), Some(Request::Grant));
    }
}
