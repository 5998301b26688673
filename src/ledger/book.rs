//! The run ledger's state machine: which slots ran where, the claims this node makes, and
//! what each peer answered. Time is passed in, datagrams go out through [`Tx`].
//!
//! Owns: the record table, the claims, the peers' ledger state and clock offsets.
//! Guarantees: no I/O, no clock, never panics on any datagram; fixed memory
//! ([`CAPACITY`] records, oldest out).
//!
//! The rule (shared/interface.md, "Handoff"). A slot is (job, scheduled time).
//! - A node runs a slot only after it **claimed** it: it holds no record of the slot, it sends
//!   a CLAIM to every peer, and every peer that is up accepted (ACK) it. A peer accepts a
//!   claim when it holds no record of the slot, or holds the same claimer's; it refuses
//!   (NACK, naming the holder) when another node holds the slot. Two claims that cross are
//!   settled by the election's own order (`vrrp::election::outranks`, from the priorities and
//!   addresses the claims carry), the same on both sides: the outranked claimer yields.
//! - So a slot runs at most once among nodes that can reach each other, whoever is master.
//!   Only a confirmed master starts a claim, so it runs on the active node; a passive node
//!   waits for the record (the master's claim reaches it) or for becoming master itself.
//! - A peer that does not answer [`CLAIM_TRIES`] tries, [`CLAIM_RETRY_MS`] apart, is taken
//!   as down: the claim is then settled by the peers that are up, and a down peer is no
//!   longer waited for (it is still sent every claim) until it speaks again. A claim that no
//!   peer accepted is given up instead if this node is no longer master by then.
//! - A node that starts asks every peer for its records (SYNC_REQ) and decides nothing until
//!   each peer answered or was tried [`SYNC_TRIES`] times: a restarted node knows what ran.
//! - A peer whose VRRP adverts are heard but that never spoke the ledger (keepalived, or rcron
//!   with `run_ledger = no`) makes the node fall back to the advert-timing rule
//!   (`handoff::decide`) for every slot: [`Ledger::fallback`].
//!
//! Limits: a partition (peers up but unreachable) lets each side claim alone; a node that
//! dies after its peers accepted its claim and before it started the job leaves the slot
//! not run (the peers hold its record): the window is one round trip.

use super::wire::{self, Header, Kind, Record};
use crate::report::Kv;
use crate::vrrp::election::outranks;
use std::net::Ipv4Addr;

/// Records held at most: one for each question that can wait at once
/// ([`crate::control::MAX_PENDING`]), so a crowd of that many slots due in the same minute is
/// held whole. At [`Ledger::retention_ms`] of 210 s (the default offset of 30 s), room for
/// about 1,100 slots a minute. Past it the oldest record goes first (counted).
pub const CAPACITY: usize = 4096;
/// Peers at most (`config::MAX_PEERS`).
pub const MAX_PEERS: usize = crate::config::MAX_PEERS;
/// Tries of a claim before the peers that did not answer are taken as down.
pub const CLAIM_TRIES: u32 = 3;
/// Between two tries of a claim, ms: a LAN answers in well under one.
pub const CLAIM_RETRY_MS: u64 = 50;
/// Tries of a sync (at start, and each watch) before the peer is taken as down.
pub const SYNC_TRIES: u32 = 3;
/// Between two tries of a sync, ms.
pub const SYNC_RETRY_MS: u64 = 200;
/// How often a waiting passive node asks the master for its records.
pub const WATCH_MS: u64 = 1000;
/// A record for a slot further ahead of this node's clock than `max_clock_offset` and this
/// is refused: no cron names a slot that far ahead.
pub const MAX_AHEAD_MS: u64 = 120_000;
/// Recent slots listed by `--status`.
pub const STATUS_SLOTS: usize = 10;

/// Sends one datagram (the worker's UDP socket; a list in tests). Errors are the sender's to
/// count: a lost datagram is retried like a lost answer.
pub trait Tx {
    fn send(&mut self, to: Ipv4Addr, h: &Header, records: &[Record]);
}

/// Both clocks at one moment: CLOCK_MONOTONIC ms (timers) and the wall clock in ms since
/// the epoch (carried in datagrams, for the clock offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: u64,
    pub wall_ms: u64,
}

/// This node's standing in the election when a wrapper asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Master for long enough that a lost advert or two cannot explain it
    /// (`handoff::View::confirmed_master`).
    ConfirmedMaster,
    /// Master, not confirmed yet.
    NewMaster,
    NotMaster,
}

/// The answer to "may this node run the slot?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Run(&'static str),
    /// Skip: the slot is held by `runner`.
    Held {
        runner: Ipv4Addr,
    },
    /// Not decided yet: ask again after the next event.
    Wait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    /// The runner holds the slot (it ran it, or will).
    Final,
    /// This node's claim, waiting for the peers' answers.
    Claiming { seq: u32, acked: u64, tries: u32, next_at: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    rec: Record,
    /// When this node learned it (CLOCK_MONOTONIC ms): retention counts from here.
    learned: u64,
    held: Held,
    /// This process claimed the slot and has not yet said "run" for it: the one wrapper
    /// that gets the answer runs it. A second wrapper for the same slot (a line listed twice,
    /// a record of this node learned back from a peer after a restart) is told it ran.
    unanswered: bool,
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    addr: Ipv4Addr,
    /// It sent a ledger datagram at least once.
    ledger: bool,
    /// Claims wait for its answer.
    up: bool,
    /// When a sync to it last went unanswered (all tries), since it last spoke: adverts heard
    /// from it after that moment mean it is alive without a ledger ([`Ledger::fallback`]).
    silent_at: Option<u64>,
    /// While a wrapper waits here and this peer is master: its records, asked for every
    /// [`WATCH_MS`] (they repair a claim this node missed) and the proof its ledger is alive.
    watch: Sync,
    watch_next: u64,
    /// Its wall clock minus ours at its last datagram, ms.
    offset_ms: Option<i64>,
    offset_warned: bool,
    sync: Sync,
}

impl Peer {
    /// A configured peer not heard from yet: waited for until it fails to answer.
    fn new(addr: Ipv4Addr) -> Peer {
        Peer {
            addr,
            ledger: false,
            up: true,
            silent_at: None,
            watch: Sync::Done,
            watch_next: 0,
            offset_ms: None,
            offset_warned: false,
            sync: Sync::Done,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sync {
    Asked { seq: u32, tries: u32, next_at: u64 },
    Done,
}

/// Counters for `--status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub rx: u64,
    pub rx_dropped: u64,
    pub claims: u64,
    pub claims_lost: u64,
    pub peers_timed_out: u64,
    pub evicted_early: u64,
}

/// What the ledger needs of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub own: Ipv4Addr,
    pub vrid: u8,
    pub priority: u8,
    pub peers: heapless::Vec<Ipv4Addr, MAX_PEERS>,
    /// `max_clock_offset`, ms.
    pub max_clock_offset_ms: u64,
}

/// The run ledger of one node: see the module's rule.
pub struct Ledger {
    p: Params,
    peers: heapless::Vec<Peer, MAX_PEERS>,
    /// At most [`CAPACITY`] entries, room for all of them made once, on the heap (a fixed-size
    /// table inside the ledger made every move of it a 40 KB copy on the worker's stack).
    table: Vec<Entry>,
    /// Where each (job, slot) of `table` is: every waiting question looks its slot up at each
    /// wake-up, thousands of them in a crowd. Kept by [`Ledger::insert`] and
    /// [`Ledger::remove`], the only places that add, move or drop entries.
    index: std::collections::HashMap<(u64, u64), usize>,
    /// CLOCK_MONOTONIC ms at which the oldest entry passes the retention: [`Ledger::expire`]
    /// scans the table only from then on.
    expire_at: u64,
    seq: u32,
    started: bool,
    /// Some entry is a claim waiting for answers: kept by the methods that change the table,
    /// so that [`Ledger::poll_at`], asked at every wake-up, does not scan it at rest.
    claiming: bool,
    pub c: Counters,
}

impl Ledger {
    /// A ledger for `p`, not started: it decides nothing before [`Ledger::start`] and its
    /// sync. Every configured peer but `own` is waited for until it fails to answer.
    pub fn new(p: Params) -> Ledger {
        let mut peers = heapless::Vec::new();
        for &addr in p.peers.iter().filter(|&&a| a != p.own) {
            let _ = peers.push(Peer::new(addr));
        }
        Ledger {
            p,
            peers,
            table: Vec::with_capacity(CAPACITY),
            index: std::collections::HashMap::with_capacity(CAPACITY),
            expire_at: u64::MAX,
            seq: 0,
            started: false,
            claiming: false,
            c: Counters::default(),
        }
    }

    /// This node's address in the ledger.
    pub fn own(&self) -> Ipv4Addr {
        self.p.own
    }

    /// How long a record is kept from when it was learned ([`crate::timing::retention_ms`]).
    pub fn retention_ms(&self) -> u64 {
        crate::timing::retention_ms(self.p.max_clock_offset_ms)
    }

    /// A new configuration: priority and offset bound take effect; the peer list is kept
    /// where it is unchanged (a changed list starts the changed peers afresh).
    pub fn reload(&mut self, p: Params) {
        if p.peers != self.p.peers {
            // A claim's answers are kept by peer index: count them again.
            for e in self.table.iter_mut() {
                if let Held::Claiming { seq, next_at, .. } = e.held {
                    e.held = Held::Claiming { seq, acked: 0, tries: 0, next_at };
                }
            }
        }
        let old = core::mem::replace(&mut self.peers, heapless::Vec::new());
        for &addr in p.peers.iter().filter(|&&a| a != p.own) {
            let kept = old.iter().find(|q| q.addr == addr).copied();
            let _ = self.peers.push(kept.unwrap_or(Peer::new(addr)));
        }
        self.p = p;
        // The retention may have changed.
        self.expire_at = 0;
        self.note_claims();
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn header(&self, kind: Kind, seq: u32, now: Now) -> Header {
        Header {
            kind,
            vrid: self.p.vrid,
            priority: self.p.priority,
            flags: 0,
            seq,
            wall_ms: now.wall_ms,
        }
    }

    /// Asks every peer for its records; nothing is decided until they answered.
    pub fn start(&mut self, now: Now, tx: &mut dyn Tx) {
        self.started = true;
        for i in 0..self.peers.len() {
            let seq = self.next_seq();
            self.peers[i].sync = Sync::Asked { seq, tries: 0, next_at: now.mono };
        }
        self.poll(now, Standing::NotMaster, tx);
    }

    /// True once every peer answered the start's SYNC_REQ or was tried enough.
    pub fn synced(&self) -> bool {
        self.started && self.peers.iter().all(|p| p.sync == Sync::Done)
    }

    /// Which master to watch: the master this node hears while a wrapper waits here (`None`
    /// otherwise, or when this node is master).
    /// `now`: CLOCK_MONOTONIC ms.
    pub fn watch(&mut self, now: u64, master: Option<Ipv4Addr>) {
        for p in self.peers.iter_mut() {
            if Some(p.addr) != master {
                p.watch = Sync::Done;
                p.watch_next = 0;
            } else if p.watch_next == 0 {
                p.watch_next = now;
            }
        }
    }

    /// `Some(master)` when the master this node hears (`master`, its last advert at
    /// `heard_at`) is alive without a ledger: a sync or watch to it concluded unanswered at or
    /// after `since` (for a wrapper's question: when it arrived, so that one lost answer
    /// before it does not decide it), and its adverts kept coming after that (keepalived, or
    /// rcron with `run_ledger = no`). The slots are then decided by advert timing. A master
    /// that died is not one: no advert follows its silence, and the election replaces it.
    pub fn fallback(
        &self,
        master: Option<Ipv4Addr>,
        heard_at: Option<u64>,
        since: u64,
    ) -> Option<Ipv4Addr> {
        let p = self.peers.iter().find(|p| Some(p.addr) == master)?;
        let silent = p.silent_at.filter(|&t| t >= since)?;
        heard_at.filter(|&h| h > silent).map(|_| p.addr)
    }

    /// A sync or watch to peer `i` went unanswered.
    fn went_silent(&mut self, i: usize, now: Now, what: &str) {
        let p = &mut self.peers[i];
        if p.up || p.silent_at.is_none() {
            log::info!("ledger: peer {} did not answer the {what}: taken as down", p.addr);
        }
        p.up = false;
        p.silent_at = Some(now.mono);
    }

    fn find(&self, job: u64, slot: u64) -> Option<usize> {
        self.index.get(&(job, slot)).copied()
    }

    /// Drops `table[i]`; the last entry takes its place.
    fn remove(&mut self, i: usize) {
        let gone = self.table.swap_remove(i);
        self.index.remove(&(gone.rec.job, gone.rec.slot));
        if let Some(moved) = self.table.get(i) {
            self.index.insert((moved.rec.job, moved.rec.slot), i);
        }
    }

    /// Stores a record; when the table is full the oldest final record goes first. False
    /// when every entry is a claim still waiting for answers (nothing can go).
    fn insert(&mut self, e: Entry) -> bool {
        if self.table.len() >= CAPACITY {
            let oldest = (0..self.table.len())
                .filter(|&i| self.table[i].held == Held::Final)
                .min_by_key(|&i| self.table[i].learned);
            match oldest {
                Some(i) => {
                    if e.learned.saturating_sub(self.table[i].learned) < self.retention_ms() {
                        self.c.evicted_early += 1;
                    }
                    self.remove(i);
                }
                None => return false,
            }
        }
        self.index.insert((e.rec.job, e.rec.slot), self.table.len());
        self.expire_at = self.expire_at.min(e.learned + self.retention_ms());
        self.table.push(e);
        true
    }

    /// May this node run `job`'s slot `slot` now? `Wait` until the record, the peers'
    /// answers or the election decide; the caller asks again after any event and skips at
    /// its own deadline.
    pub fn ask(
        &mut self,
        now: Now,
        job: u64,
        slot: u64,
        standing: Standing,
        tx: &mut dyn Tx,
    ) -> Answer {
        self.expire(now);
        if let Some(i) = self.find(job, slot) {
            let e = self.table[i];
            return match e.held {
                Held::Final if e.unanswered => {
                    self.table[i].unanswered = false;
                    Answer::Run("recorded")
                }
                Held::Final => Answer::Held { runner: e.rec.runner },
                Held::Claiming { .. } => Answer::Wait,
            };
        }
        if !self.synced() || standing != Standing::ConfirmedMaster {
            return Answer::Wait;
        }
        // Not recorded anywhere this node knows of: claim it (once there is room).
        let seq = self.next_seq();
        let rec = Record { job, slot, runner: self.p.own, runner_priority: self.p.priority };
        let claim = Entry {
            rec,
            learned: now.mono,
            held: Held::Claiming { seq, acked: 0, tries: 0, next_at: now.mono },
            unanswered: true,
        };
        if !self.insert(claim) {
            return Answer::Wait;
        }
        self.c.claims += 1;
        self.poll(now, standing, tx);
        match self.find(job, slot) {
            Some(i) if self.table[i].held == Held::Final && self.table[i].unanswered => {
                self.table[i].unanswered = false;
                Answer::Run("recorded")
            }
            _ => Answer::Wait,
        }
    }

    /// True when every peer that is up accepted the claim.
    fn all_acked(&self, acked: u64) -> bool {
        self.peers.iter().enumerate().all(|(i, p)| !p.up || acked & (1u64 << i) != 0)
    }

    /// Retries, time-outs and expiry; `standing` decides a claim whose peers did not answer.
    pub fn poll(&mut self, now: Now, standing: Standing, tx: &mut dyn Tx) {
        // The start's sync.
        for i in 0..self.peers.len() {
            if let Sync::Asked { seq, tries, next_at } = self.peers[i].sync
                && now.mono >= next_at
            {
                if tries >= SYNC_TRIES {
                    self.peers[i].sync = Sync::Done;
                    self.went_silent(i, now, "sync");
                    continue;
                }
                let h = self.header(Kind::SyncReq, seq, now);
                tx.send(self.peers[i].addr, &h, &[]);
                self.peers[i].sync =
                    Sync::Asked { seq, tries: tries + 1, next_at: now.mono + SYNC_RETRY_MS };
            }
        }
        // The watched master.
        for i in 0..self.peers.len() {
            let p = self.peers[i];
            if p.watch_next == 0 {
                continue;
            }
            match p.watch {
                Sync::Done if now.mono >= p.watch_next => {
                    let seq = self.next_seq();
                    let h = self.header(Kind::SyncReq, seq, now);
                    tx.send(p.addr, &h, &[]);
                    self.peers[i].watch =
                        Sync::Asked { seq, tries: 1, next_at: now.mono + SYNC_RETRY_MS };
                }
                Sync::Asked { seq, tries, next_at } if now.mono >= next_at => {
                    if tries >= SYNC_TRIES {
                        self.went_silent(i, now, "watch");
                        self.peers[i].watch = Sync::Done;
                        self.peers[i].watch_next = now.mono + WATCH_MS;
                        continue;
                    }
                    let h = self.header(Kind::SyncReq, seq, now);
                    tx.send(p.addr, &h, &[]);
                    self.peers[i].watch =
                        Sync::Asked { seq, tries: tries + 1, next_at: now.mono + SYNC_RETRY_MS };
                }
                _ => {}
            }
        }
        // Claims.
        let mut i = 0;
        while i < self.table.len() {
            let e = self.table[i];
            let Held::Claiming { seq, acked, tries, next_at } = e.held else {
                i += 1;
                continue;
            };
            if tries > 0 && self.all_acked(acked) {
                self.table[i].held = Held::Final;
                i += 1;
                continue;
            }
            if now.mono < next_at {
                i += 1;
                continue;
            }
            if tries >= CLAIM_TRIES {
                for (k, p) in self.peers.iter_mut().enumerate() {
                    if p.up && acked & (1u64 << k) == 0 {
                        log::warn!("ledger: peer {} did not answer a claim: taken as down", p.addr);
                        p.up = false;
                        self.c.peers_timed_out += 1;
                    }
                }
                if acked == 0 && standing == Standing::NotMaster {
                    // Nobody holds our record and we are no longer master: leave the slot to
                    // the new master.
                    self.remove(i);
                    self.c.claims_lost += 1;
                    continue;
                }
                self.table[i].held = Held::Final;
                i += 1;
                continue;
            }
            let h = self.header(Kind::Claim, seq, now);
            for (k, p) in self.peers.iter().enumerate() {
                if acked & (1u64 << k) == 0 {
                    tx.send(p.addr, &h, &[e.rec]);
                }
            }
            self.table[i].held =
                Held::Claiming { seq, acked, tries: tries + 1, next_at: now.mono + CLAIM_RETRY_MS };
            if self.all_acked(acked) {
                // No peer is up: the first try told the down ones, nobody is waited for.
                self.table[i].held = Held::Final;
            }
            i += 1;
        }
        self.expire(now);
        self.note_claims();
    }

    fn note_claims(&mut self) {
        self.claiming = self.table.iter().any(|e| matches!(e.held, Held::Claiming { .. }));
    }

    /// Final records past the retention go (the retries above do not wait for it: a
    /// question asked, a claim made or a retry due expires them).
    fn expire(&mut self, now: Now) {
        if now.mono < self.expire_at {
            return;
        }
        let keep = self.retention_ms();
        // One pass, each removal O(1) in the index (a crowd's records fall due one by one over
        // the seconds they were learned in: no rebuild of the index for each).
        let mut i = 0;
        while i < self.table.len() {
            let e = &self.table[i];
            if e.held == Held::Final && now.mono.saturating_sub(e.learned) >= keep {
                self.remove(i);
            } else {
                i += 1;
            }
        }
        // Claims count too: none outlives the retention (one lasts CLAIM_TRIES tries), and the
        // record a claim becomes keeps its `learned`.
        self.expire_at = self.table.iter().map(|e| e.learned + keep).min().unwrap_or(u64::MAX);
    }

    /// When [`Ledger::poll`] must run next (a retry or a time-out).
    pub fn poll_at(&self) -> Option<u64> {
        let syncs = self.peers.iter().flat_map(|p| {
            let sync = match p.sync {
                Sync::Asked { next_at, .. } => Some(next_at),
                Sync::Done => None,
            };
            let watch = match p.watch {
                Sync::Asked { next_at, .. } => Some(next_at),
                Sync::Done if p.watch_next > 0 => Some(p.watch_next),
                Sync::Done => None,
            };
            sync.into_iter().chain(watch)
        });
        let table = if self.claiming { &self.table[..] } else { &[] };
        let claims = table.iter().filter_map(|e| match e.held {
            Held::Claiming { next_at, .. } => Some(next_at),
            Held::Final => None,
        });
        syncs.chain(claims).min()
    }

    /// One datagram from `from` (the socket checked the port and TTL). Errors: a datagram
    /// that does not parse, from a host that is not a configured peer, for another VRID, or
    /// whose record names another runner than its sender: dropped, counted.
    pub fn on_datagram(
        &mut self,
        now: Now,
        from: Ipv4Addr,
        buf: &[u8],
        tx: &mut dyn Tx,
    ) -> Result<(), &'static str> {
        let m = wire::parse(buf).map_err(|e| {
            self.c.rx_dropped += 1;
            e.as_str()
        })?;
        let Some(pi) = self.peers.iter().position(|p| p.addr == from) else {
            self.c.rx_dropped += 1;
            return Err("not_a_peer");
        };
        if m.header.vrid != self.p.vrid {
            self.c.rx_dropped += 1;
            return Err("other_vrid");
        }
        self.c.rx += 1;
        let h = m.header;
        self.note_peer(pi, now, h.wall_ms);
        match h.kind {
            Kind::SyncReq => self.send_sync(now, from, h.seq, tx),
            Kind::Sync => {
                // Only an answer to a question of ours: records nobody asked for are not taken.
                let asked = |s: Sync| matches!(s, Sync::Asked { seq, .. } if seq == h.seq);
                let (sync, watch) = (asked(self.peers[pi].sync), asked(self.peers[pi].watch));
                if !sync && !watch {
                    self.c.rx_dropped += 1;
                    return Err("sync_not_asked");
                }
                for r in m.records() {
                    self.learn(now, r);
                }
                if h.flags & wire::FLAG_LAST != 0 {
                    if sync {
                        self.peers[pi].sync = Sync::Done;
                    }
                    if watch {
                        self.peers[pi].watch = Sync::Done;
                        self.peers[pi].watch_next = now.mono + WATCH_MS;
                    }
                }
            }
            Kind::Claim => {
                let Some(r) = m.record() else { return Err("bad_count") };
                if r.runner != from {
                    self.c.rx_dropped += 1;
                    return Err("claim_for_another");
                }
                if self.too_far_ahead(now, r) {
                    self.c.rx_dropped += 1;
                    return Err("slot_too_far_ahead");
                }
                let answer = self.on_claim(now, r);
                let kind = if answer == r { Kind::Ack } else { Kind::Nack };
                let h = self.header(kind, h.seq, now);
                tx.send(from, &h, &[answer]);
            }
            Kind::Ack => {
                let Some(r) = m.record() else { return Err("bad_count") };
                if let Some(i) = self.find(r.job, r.slot)
                    && let Held::Claiming { seq, acked, tries, next_at } = self.table[i].held
                    && seq == h.seq
                {
                    let acked = acked | (1u64 << pi);
                    self.table[i].held = Held::Claiming { seq, acked, tries, next_at };
                    if self.all_acked(acked) {
                        self.table[i].held = Held::Final;
                    }
                }
            }
            Kind::Nack => {
                let Some(r) = m.record() else { return Err("bad_count") };
                if r.runner == self.p.own {
                    return Ok(());
                }
                // A claim a peer already accepted is not given up: that peer holds our record,
                // and the refusing one will accept once its own claim yields to ours.
                if let Some(i) = self.find(r.job, r.slot)
                    && matches!(self.table[i].held,
                        Held::Claiming { seq, acked: 0, .. } if seq == h.seq)
                {
                    self.yield_claim(i, r, now, "holds it");
                }
            }
        }
        self.note_claims();
        Ok(())
    }

    /// A peer spoke: it has a ledger, is up, and its clock offset is measured.
    fn note_peer(&mut self, pi: usize, now: Now, wall_ms: u64) {
        let max = self.p.max_clock_offset_ms;
        let p = &mut self.peers[pi];
        p.ledger = true;
        p.silent_at = None;
        if !p.up {
            log::info!("ledger: peer {} is up", p.addr);
            p.up = true;
        }
        // Any 64-bit value can arrive: the difference is taken wide and clamped.
        let offset = (wall_ms as i128 - now.wall_ms as i128)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        p.offset_ms = Some(offset);
        let over = offset.unsigned_abs() > max;
        if over && !p.offset_warned {
            log::warn!(
                "ledger: peer {} clock is {offset} ms off ours, beyond max_clock_offset ({} s): exactly-once is not promised",
                p.addr,
                max / 1000
            );
        } else if !over && p.offset_warned {
            log::info!(
                "ledger: peer {} clock offset back within max_clock_offset ({offset} ms)",
                p.addr
            );
        }
        p.offset_warned = over;
    }

    /// Our claim in `table[i]` gives way to `r`'s runner, which `why`.
    fn yield_claim(&mut self, i: usize, r: Record, now: Now, why: &str) {
        let (job, slot, runner) = (r.job, r.slot, r.runner);
        log::info!("ledger: job {job:016x} slot {slot}: {runner} {why}: our claim yields");
        self.c.claims_lost += 1;
        self.table[i] = Entry { rec: r, learned: now.mono, held: Held::Final, unanswered: false };
    }

    /// A slot no cron can have named yet: further ahead of this node's clock than the
    /// offset allowance and [`MAX_AHEAD_MS`].
    fn too_far_ahead(&self, now: Now, r: Record) -> bool {
        let limit = now.wall_ms + self.p.max_clock_offset_ms + MAX_AHEAD_MS;
        r.slot.saturating_mul(1000) > limit
    }

    /// A record from a peer's sync: kept unless this node holds the slot otherwise.
    fn learn(&mut self, now: Now, r: Record) {
        if self.too_far_ahead(now, r) {
            self.c.rx_dropped += 1;
            return;
        }
        if self.find(r.job, r.slot).is_none() {
            let _ = self.insert(Entry {
                rec: r,
                learned: now.mono,
                held: Held::Final,
                unanswered: false,
            });
        }
    }

    /// A peer claims a slot; returns the record this node holds afterwards (the claim itself
    /// when accepted).
    fn on_claim(&mut self, now: Now, r: Record) -> Record {
        let Some(i) = self.find(r.job, r.slot) else {
            let _ = self.insert(Entry {
                rec: r,
                learned: now.mono,
                held: Held::Final,
                unanswered: false,
            });
            return r;
        };
        let e = self.table[i];
        match e.held {
            Held::Final => e.rec,
            Held::Claiming { acked, .. } => {
                // Two claims crossed: the election's order settles it, the same way on both
                // sides. A claim some peer already accepted is not given up.
                let theirs =
                    outranks(r.runner_priority, r.runner, e.rec.runner_priority, e.rec.runner);
                if theirs && acked == 0 {
                    self.yield_claim(i, r, now, "outranks us");
                    r
                } else {
                    e.rec
                }
            }
        }
    }

    /// Answers a SYNC_REQ with every final record, split into datagrams.
    fn send_sync(&mut self, now: Now, to: Ipv4Addr, seq: u32, tx: &mut dyn Tx) {
        let mut batch: heapless::Vec<Record, { wire::MAX_RECORDS }> = heapless::Vec::new();
        let finals = self.table.iter().filter(|e| e.held == Held::Final).map(|e| e.rec);
        let mut h = self.header(Kind::Sync, seq, now);
        for r in finals {
            if batch.is_full() {
                tx.send(to, &h, &batch);
                batch.clear();
            }
            let _ = batch.push(r);
        }
        h.flags = wire::FLAG_LAST;
        tx.send(to, &h, &batch);
    }

    /// `--status` fields: the ledger, each peer, the recent slots.
    pub fn status(&self, out: &mut Kv) {
        out.put("ledger_synced", if self.synced() { "yes" } else { "no" });
        out.put("ledger_records", self.table.len());
        out.put("ledger_retention_s", self.retention_ms() / 1000);
        out.put("ledger_claims", self.c.claims);
        out.put("ledger_claims_lost", self.c.claims_lost);
        out.put("ledger_peers_timed_out", self.c.peers_timed_out);
        out.put("ledger_evicted_early", self.c.evicted_early);
        out.put("ledger_rx", self.c.rx);
        out.put("ledger_rx_dropped", self.c.rx_dropped);
        let max = self.p.max_clock_offset_ms;
        for p in &self.peers {
            let state = match (p.ledger, p.up) {
                (false, true) => "unknown",
                (false, false) => "silent",
                (true, true) => "up",
                (true, false) => "down",
            };
            let a = p.addr;
            out.put(&format!("peer_{a}_ledger"), state);
            match p.offset_ms {
                Some(o) => {
                    out.put(&format!("peer_{a}_clock_offset_ms"), o);
                    if o.unsigned_abs() > max {
                        out.put(
                            &format!("peer_{a}_clock_offset_warning"),
                            "beyond max_clock_offset",
                        );
                    }
                }
                None => out.put(&format!("peer_{a}_clock_offset_ms"), ""),
            }
        }
        // The most recent final records, newest first: an insertion into a short list (a sort
        // of the whole table cost 5 KB of code).
        let key = |e: &Entry| (e.rec.slot, e.learned);
        let mut top: heapless::Vec<&Entry, STATUS_SLOTS> = heapless::Vec::new();
        for e in self.table.iter().filter(|e| e.held == Held::Final) {
            let at = top.iter().position(|t| key(e) > key(t)).unwrap_or(top.len());
            if at < STATUS_SLOTS {
                if top.is_full() {
                    top.pop();
                }
                let _ = top.insert(at, e);
            }
        }
        for (n, e) in top.iter().enumerate() {
            let (job, slot, runner) = (e.rec.job, e.rec.slot, e.rec.runner);
            out.put(
                &format!("slot_{n}"),
                format_args!("job={job:016x} slot={slot} ran_on={runner}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
    const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 13);
    const JOB: u64 = 0xfeed;
    const SLOT: u64 = 1_796_000_040;

    /// Datagrams sent, as (from, to, bytes).
    #[derive(Default)]
    struct Wire(Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>);

    struct From<'a>(Ipv4Addr, &'a mut Wire);

    impl Tx for From<'_> {
        fn send(&mut self, to: Ipv4Addr, h: &Header, records: &[Record]) {
            let mut buf = [0u8; wire::MAX_LEN];
            let n = wire::emit(h, records, &mut buf);
            self.1.0.push((self.0, to, buf[..n].to_vec()));
        }
    }

    /// Nodes with ledgers, and the datagrams between them (`down` nodes hear nothing).
    struct Net {
        nodes: Vec<(Ipv4Addr, Ledger)>,
        wire: Wire,
        down: Vec<Ipv4Addr>,
        t: u64,
    }

    fn params(own: Ipv4Addr, priority: u8) -> Params {
        let peers = [A, B, C].into_iter().filter(|&p| p != own).collect();
        Params { own, vrid: 61, priority, peers, max_clock_offset_ms: 30_000 }
    }

    impl Net {
        fn new(nodes: &[(Ipv4Addr, u8)]) -> Net {
            let mut n =
                Net { nodes: Vec::new(), wire: Wire::default(), down: vec![A, B, C], t: 1000 };
            for &(ip, prio) in nodes {
                n.down.retain(|&d| d != ip);
                n.nodes.push((ip, Ledger::new(params(ip, prio))));
            }
            for i in 0..n.nodes.len() {
                let now = n.now();
                let (ip, l) = &mut n.nodes[i];
                l.start(now, &mut From(*ip, &mut n.wire));
            }
            n.settle();
            n
        }
        fn now(&self) -> Now {
            Now { mono: self.t, wall_ms: 1_796_000_000_000 + self.t }
        }
        fn at(&mut self, ip: Ipv4Addr) -> usize {
            self.nodes.iter().position(|(a, _)| *a == ip).unwrap()
        }
        /// Delivers every datagram (and the answers they cause) to nodes that are up.
        fn deliver(&mut self) {
            while !self.wire.0.is_empty() {
                let (from, to, bytes) = self.wire.0.remove(0);
                if self.down.contains(&to) || self.down.contains(&from) {
                    continue;
                }
                let now = self.now();
                let i = self.at(to);
                let (ip, l) = &mut self.nodes[i];
                l.on_datagram(now, from, &bytes, &mut From(*ip, &mut self.wire)).unwrap();
            }
        }
        /// Runs time forward in 10 ms steps, polling and delivering, for `ms`.
        fn run(&mut self, ms: u64, standing: &[(Ipv4Addr, Standing)]) {
            for _ in 0..ms / 10 {
                self.t += 10;
                for i in 0..self.nodes.len() {
                    let now = self.now();
                    let (ip, l) = &mut self.nodes[i];
                    if self.down.contains(ip) {
                        continue;
                    }
                    let s =
                        standing.iter().find(|(a, _)| a == ip).map_or(Standing::NotMaster, |x| x.1);
                    l.poll(now, s, &mut From(*ip, &mut self.wire));
                }
                self.deliver();
            }
        }
        fn settle(&mut self) {
            self.deliver();
            self.run(1000, &[]);
        }
        fn ask(&mut self, ip: Ipv4Addr, standing: Standing) -> Answer {
            let now = self.now();
            let i = self.at(ip);
            let (ip, l) = &mut self.nodes[i];
            l.ask(now, JOB, SLOT, standing, &mut From(*ip, &mut self.wire))
        }
        fn ledger(&mut self, ip: Ipv4Addr) -> &mut Ledger {
            let i = self.at(ip);
            &mut self.nodes[i].1
        }
    }

    #[test]
    fn the_master_claims_its_peer_accepts_and_the_peer_then_skips() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Wait, "the claim is out");
        n.deliver();
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"));
        assert_eq!(n.ask(B, Standing::NotMaster), Answer::Held { runner: A });
        // Asked again (a second wrapper for the same slot): held by A, which runs it once.
        assert_eq!(n.ask(B, Standing::ConfirmedMaster), Answer::Held { runner: A });
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Held { runner: A });
    }

    #[test]
    fn a_passive_node_waits_for_the_record_and_a_new_master_waits_to_be_confirmed() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        assert_eq!(n.ask(B, Standing::NotMaster), Answer::Wait);
        assert_eq!(n.ask(B, Standing::NewMaster), Answer::Wait);
        assert!(n.wire.0.is_empty(), "nothing is claimed before the master is confirmed");
        n.ask(A, Standing::ConfirmedMaster);
        n.deliver();
        assert_eq!(n.ask(B, Standing::NotMaster), Answer::Held { runner: A });
    }

    /// Two nodes both master for a moment (preemption) claim the same slot at once: the
    /// outranking claim wins on both sides, and the slot runs once.
    #[test]
    fn crossed_claims_are_settled_by_the_elections_order() {
        for (pa, pb, winner) in [(150, 100, A), (100, 150, B), (100, 100, B)] {
            let mut n = Net::new(&[(A, pa), (B, pb)]);
            assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Wait);
            assert_eq!(n.ask(B, Standing::ConfirmedMaster), Answer::Wait);
            n.deliver();
            n.run(200, &[(A, Standing::ConfirmedMaster), (B, Standing::ConfirmedMaster)]);
            let a = n.ask(A, Standing::ConfirmedMaster);
            let b = n.ask(B, Standing::ConfirmedMaster);
            let runs = [a, b].iter().filter(|x| matches!(x, Answer::Run(_))).count();
            assert_eq!(runs, 1, "priorities {pa}/{pb}: {a:?} {b:?}");
            let loser = if winner == A { b } else { a };
            assert_eq!(loser, Answer::Held { runner: winner }, "priorities {pa}/{pb}");
        }
    }

    #[test]
    fn a_peer_that_does_not_answer_is_waited_for_three_tries_then_not_any_more() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        n.down.push(B);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Wait);
        n.run(100, &[(A, Standing::ConfirmedMaster)]);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Wait, "still trying at 100 ms");
        n.run(100, &[(A, Standing::ConfirmedMaster)]);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"));
        n.wire.0.clear();
        assert_eq!(n.ledger(A).c.peers_timed_out, 1);
        // The next slot: B is down, no wait (it is still told).
        let now = n.now();
        let l = &mut n.nodes[0].1;
        let a = l.ask(now, JOB, SLOT + 60, Standing::ConfirmedMaster, &mut From(A, &mut n.wire));
        assert_eq!(a, Answer::Run("recorded"));
        assert_eq!(n.wire.0.iter().filter(|d| d.1 == B).count(), 1, "B is still sent the claim");
    }

    /// A master that loses its role while its peer is silent leaves the slot to the next
    /// master instead of running it unseen.
    #[test]
    fn an_unanswered_claim_is_given_up_by_a_node_that_is_no_longer_master() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        n.down.push(B);
        n.ask(A, Standing::ConfirmedMaster);
        n.run(300, &[(A, Standing::NotMaster)]);
        assert_eq!(n.ask(A, Standing::NotMaster), Answer::Wait);
        assert_eq!(n.ledger(A).c.claims_lost, 1);
    }

    #[test]
    fn a_restarted_node_learns_the_records_before_it_decides() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        n.ask(A, Standing::ConfirmedMaster);
        n.deliver();
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"));
        // B restarts with an empty table; until its sync is answered it decides nothing.
        let i = n.at(B);
        n.nodes[i].1 = Ledger::new(params(B, 100));
        assert!(!n.ledger(B).synced());
        assert_eq!(n.ask(B, Standing::ConfirmedMaster), Answer::Wait);
        let now = n.now();
        n.nodes[i].1.start(now, &mut From(B, &mut n.wire));
        n.deliver();
        assert!(!n.ledger(B).synced(), "C, which is down, was asked too");
        n.run(1000, &[]);
        assert!(n.ledger(B).synced());
        assert_eq!(n.ask(B, Standing::ConfirmedMaster), Answer::Held { runner: A });
    }

    #[test]
    fn a_node_whose_peers_are_all_down_syncs_after_three_tries() {
        let mut n = Net::new(&[(A, 150)]);
        assert!(n.ledger(A).synced());
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"), "C and B down");
    }

    /// keepalived, or rcron with `run_ledger = no`: adverts keep coming from a master whose
    /// ledger does not answer. A master that died sends none after its silence.
    #[test]
    fn a_master_alive_without_a_ledger_means_fallback_a_dead_one_does_not() {
        let mut n = Net::new(&[(A, 150)]);
        let silent = n.t;
        let l = n.ledger(A);
        assert_eq!(l.fallback(Some(B), Some(silent - 500), 0), None, "no advert since");
        assert_eq!(l.fallback(Some(B), Some(silent + 10), 0), Some(B));
        assert_eq!(l.fallback(None, Some(silent + 10), 0), None, "A is master itself");
        assert_eq!(l.fallback(Some(B), Some(silent + 10), silent + 1), None, "an old silence");
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        let t = n.t;
        assert_eq!(n.ledger(A).fallback(Some(B), Some(t + 10), 0), None, "B speaks the ledger");
        // B loses its ledger (run_ledger = no on reload): a waiting A watches it and finds out.
        n.down.push(B);
        let now = n.now();
        n.ledger(A).watch(now.mono, Some(B));
        n.run(1000, &[]);
        let t = n.t;
        assert_eq!(n.ledger(A).fallback(Some(B), Some(t), t - 1000), Some(B));
        assert_eq!(n.ledger(A).fallback(Some(B), Some(t - 900), t - 1000), None, "no advert since");
    }

    /// A claim's message to B is lost (a firewall blip), the master runs the slot without B;
    /// B's waiting wrapper must still learn the record before the master can crash.
    #[test]
    fn a_waiting_node_watching_the_master_learns_a_record_it_missed() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        assert_eq!(n.ask(B, Standing::NotMaster), Answer::Wait);
        n.down.push(B);
        n.ask(A, Standing::ConfirmedMaster);
        n.run(200, &[(A, Standing::ConfirmedMaster)]);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"));
        n.down.retain(|&d| d != B);
        let now = n.now();
        n.ledger(B).watch(now.mono, Some(A));
        n.run(1100, &[(A, Standing::ConfirmedMaster)]);
        assert_eq!(n.ask(B, Standing::ConfirmedMaster), Answer::Held { runner: A });
    }

    /// Three nodes, two claims crossing (both masters for a moment): C accepts B's, A and B
    /// refuse each other. The claim C accepted stands, and the slot runs once.
    #[test]
    fn crossed_claims_among_three_nodes_run_the_slot_once() {
        let mut n = Net::new(&[(A, 150), (B, 100), (C, 50)]);
        let now = n.now();
        // B's claim reaches C first: deliver B's datagrams to C only, then everything.
        n.ask(B, Standing::ConfirmedMaster);
        let (to_c, rest): (Vec<_>, Vec<_>) = n.wire.0.drain(..).partition(|d| d.1 == C);
        n.wire.0 = to_c;
        n.deliver();
        n.wire.0.extend(rest);
        let i = n.at(A);
        n.nodes[i].1.ask(now, JOB, SLOT, Standing::ConfirmedMaster, &mut From(A, &mut n.wire));
        n.deliver();
        n.run(500, &[(A, Standing::ConfirmedMaster), (B, Standing::ConfirmedMaster)]);
        let answers: Vec<Answer> = [A, B, C]
            .iter()
            .map(|&x| {
                n.ask(x, if x == C { Standing::NotMaster } else { Standing::ConfirmedMaster })
            })
            .collect();
        let runs = answers.iter().filter(|a| matches!(a, Answer::Run(_))).count();
        assert_eq!(runs, 1, "{answers:?}");
        assert_eq!(answers[0], Answer::Held { runner: B }, "{answers:?}");
        assert_eq!(answers[2], Answer::Held { runner: B }, "{answers:?}");
    }

    #[test]
    fn hostile_datagrams_are_dropped_and_counted() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        let now = n.now();
        let rec = Record { job: JOB, slot: SLOT, runner: C, runner_priority: 255 };
        let h = Header { kind: Kind::Claim, vrid: 61, priority: 255, flags: 0, seq: 1, wall_ms: 0 };
        let mut buf = [0u8; wire::MAX_LEN];
        let len = wire::emit(&h, &[rec], &mut buf);
        let stranger = Ipv4Addr::new(198, 51, 100, 1);
        let l = &mut n.nodes[0].1;
        let mut tx = From(A, &mut n.wire);
        assert_eq!(l.on_datagram(now, stranger, &buf[..len], &mut tx), Err("not_a_peer"));
        assert_eq!(l.on_datagram(now, B, &buf[..len], &mut tx), Err("claim_for_another"));
        assert_eq!(l.on_datagram(now, B, &buf[..10], &mut tx), Err("truncated"));
        // A claim for a slot no cron can have named yet (40 minutes ahead).
        let ahead = Record { slot: now.wall_ms / 1000 + 2400, runner: B, ..rec };
        let len2 = wire::emit(&h, &[ahead], &mut buf);
        assert_eq!(l.on_datagram(now, B, &buf[..len2], &mut tx), Err("slot_too_far_ahead"));
        // Records nobody asked for (an unsolicited SYNC).
        let sync = Header { kind: Kind::Sync, flags: wire::FLAG_LAST, seq: 999, ..h };
        let rec_b = Record { runner: B, ..rec };
        let len3 = wire::emit(&sync, &[rec_b], &mut buf);
        assert_eq!(l.on_datagram(now, B, &buf[..len3], &mut tx), Err("sync_not_asked"));
        let len = wire::emit(&h, &[rec], &mut buf);
        buf[5] = 62;
        assert_eq!(l.on_datagram(now, B, &buf[..len], &mut tx), Err("other_vrid"));
        assert_eq!(l.c.rx_dropped, 6);
        assert!(n.wire.0.is_empty(), "nothing answered");
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Wait, "no record was taken");
    }

    #[test]
    fn records_expire_after_the_retention_and_the_oldest_goes_when_full() {
        let mut n = Net::new(&[(A, 150)]);
        assert_eq!(n.ask(A, Standing::ConfirmedMaster), Answer::Run("recorded"));
        let keep = n.ledger(A).retention_ms();
        assert_eq!(keep, 210_000, "three 30 s offsets and two minutes");
        n.t += keep;
        let now = n.now();
        n.nodes[0].1.poll(now, Standing::NotMaster, &mut From(A, &mut n.wire));
        assert_eq!(n.ledger(A).table.len(), 0);
        for k in 0..CAPACITY as u64 + 5 {
            let now = n.now();
            let l = &mut n.nodes[0].1;
            l.ask(now, JOB, SLOT + k, Standing::ConfirmedMaster, &mut From(A, &mut n.wire));
        }
        assert_eq!(n.ledger(A).table.len(), CAPACITY);
        assert_eq!(n.ledger(A).c.evicted_early, 5);
        // The index follows the evictions (each moved the last entry into the freed place).
        let l = n.ledger(A);
        assert_eq!(l.index.len(), CAPACITY);
        assert!(l.table.iter().enumerate().all(|(i, e)| l.find(e.rec.job, e.rec.slot) == Some(i)));
        let gone = (0..CAPACITY as u64 + 5).filter(|k| l.find(JOB, SLOT + k).is_none()).count();
        assert_eq!(gone, 5, "five went (all learned at once: any five)");
        let newest = SLOT + CAPACITY as u64 + 4;
        let now = n.now();
        let l = &mut n.nodes[0].1;
        let again = l.ask(now, JOB, newest, Standing::ConfirmedMaster, &mut From(A, &mut n.wire));
        assert_eq!(again, Answer::Held { runner: A }, "a second wrapper of a held slot");
        // Nothing expires a moment before the retention, everything at it.
        n.t += keep - 1;
        let now = n.now();
        n.nodes[0].1.poll(now, Standing::NotMaster, &mut From(A, &mut n.wire));
        assert_eq!(n.ledger(A).table.len(), CAPACITY);
        n.t += 1;
        let now = n.now();
        n.nodes[0].1.poll(now, Standing::NotMaster, &mut From(A, &mut n.wire));
        assert_eq!((n.ledger(A).table.len(), n.ledger(A).index.len()), (0, 0));
        assert_eq!(n.ledger(A).find(JOB, newest), None);
    }

    /// A's `--status` after a SYNC_REQ from B stamped with B's clock at `wall_ms`.
    fn status_after_sync_req_from_b(n: &mut Net, wall_ms: u64) -> String {
        let now = n.now();
        let h = Header { kind: Kind::SyncReq, vrid: 61, priority: 100, flags: 0, seq: 9, wall_ms };
        let mut buf = [0u8; wire::MAX_LEN];
        let len = wire::emit(&h, &[], &mut buf);
        let l = &mut n.nodes[0].1;
        l.on_datagram(now, B, &buf[..len], &mut From(A, &mut n.wire)).unwrap();
        let mut kv = Kv::default();
        l.status(&mut kv);
        kv.lines()
    }

    /// Found by the fuzzer: a sender's clock of 2^63 ms and more overflowed the offset.
    #[test]
    fn any_sender_clock_is_an_offset_without_overflow() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        for wall_ms in [u64::MAX, 1 << 63, 0x8000_01a2_27c9_0c6b, 0] {
            let s = status_after_sync_req_from_b(&mut n, wall_ms);
            assert!(s.contains("peer_192.0.2.12_clock_offset_warning="), "{wall_ms}");
        }
    }

    #[test]
    fn clock_offsets_are_measured_from_every_datagram() {
        let mut n = Net::new(&[(A, 150), (B, 100)]);
        let wall_ms = n.now().wall_ms + 45_000;
        let s = status_after_sync_req_from_b(&mut n, wall_ms);
        let s = s.as_str();
        assert!(s.contains("peer_192.0.2.12_clock_offset_ms=45000\n"), "{s}");
        assert!(
            s.contains("peer_192.0.2.12_clock_offset_warning=beyond max_clock_offset\n"),
            "{s}"
        );
    }
}
