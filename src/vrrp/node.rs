//! One VRRP node: the election (`election::Election`) wired to its raw socket, its interface and
//! its peers; the daemon's [`Backend`] for `election = vrrp`.
//!
//! Owns: the raw socket pair and what it was opened for, which adverts its kernel filters let wait
//! (the quiet master's repeats, read at the next wake-up with their arrival times: see `socket`),
//! the interface as last read (rtnetlink events say when to read it again), the receive filter's
//! counters and the mismatch log, the handoff facts. Guarantees: carries out the election's actions
//! in break-before-make order (leaving master reaches the sink, and so the state file, before the
//! priority-0 advert lets a peer take over; a new master's advert goes out before the sink's
//! possibly slow write); follows the interface by name (a new ifindex or source address re-opens
//! the socket); a node that cannot send, has no interface, address or carrier, or whose tracked
//! interface is down is in Fault; nothing received can panic it.

use super::election::{self, Action, Election, Params, Reason};
use super::receive::{self, Drops, Filter, MismatchLog};
use super::socket::{self, RxBatch, VrrpSocket};
use super::vips::{self, Vips};
use super::wire;
use crate::backend::{Backend, MasterName, Role, Sink, Transition};
use crate::config::Config;
use crate::handoff::Facts;
use crate::os::link::{LinkEvents, LinkProbe, LinkState};
use crate::report::Kv;
use crate::timing::Timing;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

/// How often the links are read without an rtnetlink socket, when reading is the only way
/// to notice a change. With one there is no periodic read: every change of link or address
/// wakes the loop at once, and the kernel reports an event it could not queue (ENOBUFS),
/// which forces a read, as does a failed send. (A read every 60 s as a safety net cost
/// ~0.5 ms of CPU a minute, a third of a backup's whole budget at one advert a second.)
const LINK_POLL_MS: u64 = 1000;
/// Receive batches ([`socket::RX_BATCH`] packets each) read per wake-up at most.
const MAX_RX_BATCHES: usize = 32;
/// A node whose adverts could not be sent stays in fault this long at first, doubling at
/// each repeat up to [`SEND_FAULT_MAX_MS`] (a firewall that refuses every advert must not
/// make it flap), back to the first figure once an advert goes out.
const SEND_FAULT_MIN_MS: u64 = 1000;
const SEND_FAULT_MAX_MS: u64 = 60_000;

#[derive(Default)]
struct Counters {
    rx: u64,
    /// Adverts read from the quiet socket: at a later wake-up, at their arrival times.
    rx_deferred: u64,
    tx: u64,
    tx_errors: u64,
    addr_mismatch: u64,
    drops: Drops,
}

/// A VRRP node and everything it holds.
pub struct Node {
    cfg: Config,
    timing: Timing,
    ifname: String,
    vrid: u8,
    /// The address adverts go out from: `unicast_src_ip`, or (multicast) the interface's.
    own_ip: Ipv4Addr,
    /// The IP identification of the last advert sent.
    ip_id: u16,
    election: Election,
    /// The raw socket, while one is open on the interface as it is now.
    sock: Option<VrrpSocket>,
    /// Receive buffers (taken out while a batch is handled).
    rx: Option<RxBatch>,
    /// The socket or the rtnetlink socket may hold more than one wake-up reads: read again
    /// at once (both are watched edge-triggered).
    more_waiting: bool,
    /// The (ifindex, address) the socket was opened for.
    sock_for: Option<(u32, Ipv4Addr)>,
    probe: LinkProbe,
    events: Option<LinkEvents>,
    /// The interface as last read.
    link: Option<LinkState>,
    /// Why the links make this node faulty.
    link_fault: Option<String>,
    /// A fault from outside (track script).
    outside_fault: bool,
    /// A failed send holds the node in fault until then.
    send_fault_until: Option<u64>,
    send_fault_ms: u64,
    link_check_due: bool,
    next_link_check: u64,
    mismatches: MismatchLog,
    facts: Facts,
    c: Counters,
    /// Counts the sockets opened (`Backend::fds_generation`).
    opened: u64,
    /// The sender and header of the last advert the election accepted, and how many in a row
    /// had both: the routine the quiet socket takes while that sender is the quiet master,
    /// from the second repeat on (two masters alternating never switch the filters).
    last_head: Option<socket::Routine>,
    repeats: u32,
    /// Someone waits on adverts as they arrive (`Backend::set_attentive`): no quiet socket.
    attentive: bool,
    /// When the quiet socket was last read to the end: whatever it holds arrived since.
    quiet_read_at: u64,
    /// The virtual addresses, held while master.
    vips: Vips,
}

impl Node {
    /// A node for a validated configuration (`interface` and `virtual_router_id` set). Errors:
    /// the descriptors the node needs cannot be had (an rtnetlink socket is optional: without
    /// one the links are read every [`LINK_POLL_MS`]).
    pub fn new(cfg: &Config, now: u64) -> std::io::Result<Node> {
        let probe = LinkProbe::new()?;
        let events = match LinkEvents::open() {
            Ok(e) => Some(e),
            Err(e) => {
                log::warn!("rtnetlink socket: {e}: links are read every {LINK_POLL_MS} ms");
                None
            }
        };
        let timing = Timing::new(cfg);
        // Multicast: the interface's address, filled in (and followed) by the link checks.
        let own_ip = cfg.unicast_src_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut node = Node {
            cfg: cfg.clone(),
            timing,
            ifname: cfg.interface.clone().unwrap_or_default(),
            vrid: cfg.virtual_router_id.unwrap_or(0),
            own_ip,
            ip_id: 0,
            election: Election::new(params(cfg, &timing, own_ip)),
            sock: None,
            rx: Some(RxBatch::new()),
            more_waiting: false,
            sock_for: None,
            probe,
            events,
            link: None,
            link_fault: None,
            outside_fault: false,
            send_fault_until: None,
            send_fault_ms: SEND_FAULT_MIN_MS,
            link_check_due: true,
            next_link_check: now,
            mismatches: MismatchLog::default(),
            facts: Facts::default(),
            c: Counters::default(),
            opened: 0,
            last_head: None,
            repeats: 0,
            attentive: false,
            quiet_read_at: now,
            vips: Vips::new(cfg),
        };
        // Not master yet: an address a crashed run left here goes (the peer may hold it).
        vips::release_configured(cfg, "this worker starts as backup");
        node.check_link(now, &mut NoSink);
        Ok(node)
    }

    /// One line for the daemon's start-up log.
    pub fn describe(&self) -> String {
        let mode = if self.cfg.unicast_peers.is_empty() {
            "multicast".to_string()
        } else {
            format!("unicast src={} peers={}", self.own_ip, join(&self.cfg.unicast_peers))
        };
        format!(
            "interface={} vrid={} priority={} version={} advert_int_ms={} {mode}",
            self.ifname, self.vrid, self.cfg.priority, self.cfg.vrrp_version, self.timing.advert_ms
        )
    }

    fn filter(&self) -> Filter<'_> {
        Filter {
            version: self.cfg.vrrp_version,
            vrid: self.vrid,
            peers: &self.cfg.unicast_peers,
            own_ip: self.own_ip,
            auth: self.cfg.auth_pass,
            advert_cs: self.cfg.advert_int_cs,
            vips: &self.cfg.virtual_ipaddress,
        }
    }

    fn open_socket(&self) -> std::io::Result<VrrpSocket> {
        let bind = if self.cfg.unicast_peers.is_empty() { None } else { Some(self.own_ip) };
        VrrpSocket::open(&self.ifname, bind, self.own_ip)
    }

    /// The advert interval in force: ours, or the master's when it is longer (v3).
    fn interval_ms(&self) -> u64 {
        self.election.master_adver_ms().max(self.timing.advert_ms)
    }

    fn fault(&self) -> bool {
        self.link_fault.is_some() || self.outside_fault
    }

    /// Carries out the election's actions in break-before-make order. A takeover whose first
    /// advert could not be sent is never reported: nobody would hear this master, so the node
    /// goes from where it was straight to Fault.
    fn act(&mut self, now: u64, acts: &[Action], sink: &mut dyn Sink) {
        let mut unheard: Option<Role> = None;
        let leaving = |a: &Action| matches!(a, Action::Transition { from: Role::Master, to, .. } if *to != Role::Master);
        let rank = |a: &Action| match a {
            a if leaving(a) => 0,
            Action::Send { .. } => 1,
            Action::Transition { .. } => 2,
        };
        for r in 0..3 {
            for a in acts.iter().filter(|a| rank(a) == r) {
                match *a {
                    Action::Send { priority } => self.send_advert(now, priority),
                    Action::Transition { from, to: Role::Master, .. }
                        if self.send_fault_until.is_some() =>
                    {
                        unheard = Some(from);
                    }
                    Action::Transition { from, to, reason } => {
                        let took_over = reason == Reason::MasterDown;
                        let (was, is) = (from == Role::Master, to == Role::Master);
                        // Addresses: taken before notify_active runs (the sink), given up
                        // before notify_passive and before the priority-0 advert (rank 1).
                        if is && !was {
                            self.vips.take(now);
                        } else if was && !is {
                            self.vips.release();
                        }
                        let interval = self.interval_ms();
                        self.facts.on_transition(now, was, is, took_over, interval);
                        let master = self.master();
                        let t = Transition {
                            from,
                            to,
                            reason: reason.as_str(),
                            master: master.as_deref(),
                        };
                        sink.transition(now, &t);
                    }
                }
            }
        }
        if let Some(from) = unheard {
            self.link_fault = self.link_fault_reason(self.link);
            let acts = self.election.set_fault(now, true);
            let fault =
                Transition { from, to: Role::Fault, reason: Reason::Fault.as_str(), master: None };
            log::warn!("{}: no takeover", self.link_fault.as_deref().unwrap_or("cannot send"));
            for a in &acts {
                if let Action::Transition { to: Role::Fault, .. } = a {
                    sink.transition(now, &fault);
                }
            }
        }
    }

    fn send_advert(&mut self, now: u64, priority: u8) {
        let cfg = &self.cfg;
        let spec = wire::AdvertSpec {
            version: cfg.vrrp_version,
            vrid: self.vrid,
            priority,
            interval_cs: cfg.advert_int_cs,
            auth: if cfg.vrrp_version == 2 { cfg.auth_pass } else { None },
            addrs: &cfg.virtual_ipaddress,
        };
        let mut buf = [0u8; wire::IP_HEADER_LEN + wire::MAX_MSG];
        let single = [wire::MCAST_GROUP];
        let dsts: &[Ipv4Addr] =
            if cfg.unicast_peers.is_empty() { &single } else { &cfg.unicast_peers };
        let mut sent = false;
        let mut failure = None;
        for &dst in dsts {
            let (hdr, msg) = buf.split_at_mut(wire::IP_HEADER_LEN);
            let n = match wire::emit(&spec, self.own_ip, dst, cfg.v3_checksum, msg) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("cannot encode advert: {e}");
                    continue;
                }
            };
            // Identification: a counter as keepalived keeps one, never 0 (0 asks the kernel).
            self.ip_id = self.ip_id.checked_add(1).unwrap_or(1);
            if let Err(e) = wire::emit_ipv4_header(self.own_ip, dst, self.ip_id, n, hdr) {
                log::error!("cannot encode advert: {e}");
                continue;
            }
            let n = wire::IP_HEADER_LEN + n;
            let r = match &self.sock {
                Some(sock) => sock.send(&buf[..n], dst),
                None => Err(std::io::ErrorKind::NotConnected.into()),
            };
            match r {
                Ok(()) => {
                    sent = true;
                    self.c.tx += 1;
                }
                Err(e) => {
                    self.c.tx_errors += 1;
                    log::debug!("send to {dst}: {e}");
                    if socket::send_error_is_fault(&e) {
                        failure = Some((dst, e));
                    }
                }
            }
        }
        if sent {
            let as_master = priority > 0 && self.election.role() == Role::Master;
            self.facts.on_advert_sent(now, as_master);
            self.send_fault_ms = SEND_FAULT_MIN_MS;
        } else if let Some((dst, e)) = failure
            && self.send_fault_until.is_none()
        {
            // Nobody hears this node: never a silent master. Re-open the socket on the
            // interface as it is now and hold the node in fault for a while.
            log::warn!("advert to {dst} not sent ({e}): fault for {} ms", self.send_fault_ms);
            self.send_fault_until = Some(now + self.send_fault_ms);
            self.send_fault_ms = (2 * self.send_fault_ms).min(SEND_FAULT_MAX_MS);
            self.sock = None;
            self.link_check_due = true;
        }
    }

    /// Reads what waits on the loud socket, or the `quiet` one, a batch per system call, until
    /// it would block. The loud one stops after [`MAX_RX_BATCHES`] batches (a flood leaves time
    /// for the rest of the loop) and then says true: more may be waiting. The quiet one is read
    /// to the end (its receive buffer bounds it), as the timer must not run from a part of it.
    ///
    /// A loud packet is handed on as arrived `now`; a quiet one (a repeat of the master's
    /// advert) at its arrival time: the kernel's stamp, on the wall clock, as an age subtracted
    /// from `now`, in arrival order. A stamp that cannot be right (before the last read of the
    /// quiet socket, or in the future: the wall clock was stepped) counts as `now`, and so does
    /// everything after a freeze (a call later than the election's deadline by more than
    /// Master_Down_Interval, as `election` judges it): the queue may have overflowed, losing
    /// the newest repeats, and the election then starts over as after any freeze. Both err
    /// towards a later takeover, never an early one.
    fn drain(&mut self, now: u64, quiet: bool, sink: &mut dyn Sink) -> bool {
        let Some(mut rx) = self.rx.take() else { return false };
        let wall = if quiet { crate::os::sys::wall_ns() } else { 0 };
        let late = self.election.poll_at().map_or(0, |t| now.saturating_sub(t));
        let frozen = late > self.election.master_down_ms();
        let (floor, mut at) = (self.quiet_read_at.min(now), 0);
        let mut more = true;
        let mut batches = 0;
        while quiet || batches < MAX_RX_BATCHES {
            batches += 1;
            let Some(sock) = &self.sock else { break };
            let got = if quiet { sock.recv_quiet(&mut rx) } else { sock.recv_batch(&mut rx) };
            let n = match got {
                Ok(n) => n,
                Err(e) => {
                    // An error on the socket itself (its device gone): poll would report it
                    // again at once, so re-open it on the interface as it is now.
                    log::warn!("receive on {}: {e}: re-opening the raw socket", self.ifname);
                    self.sock = None;
                    self.link_check_due = true;
                    more = false;
                    break;
                }
            };
            for (pkt, stamp) in rx.stamped() {
                let age_ms = stamp.map(|s| wall.saturating_sub(s) / 1_000_000);
                let rx_at = match age_ms.and_then(|a| now.checked_sub(u64::try_from(a).ok()?)) {
                    Some(t) if !frozen && t >= floor => t,
                    _ => now,
                };
                at = at.max(rx_at);
                if self.receive(now, at, pkt, sink) && quiet {
                    self.c.rx_deferred += 1;
                }
            }
            if n < socket::RX_BATCH {
                more = false;
                break;
            }
        }
        if quiet && self.sock.is_some() {
            self.quiet_read_at = now;
        }
        self.rx = Some(rx);
        more
    }

    /// Called at the end of every call from the daemon. Splits the adverts between the loud
    /// and the quiet socket for the election as it is now: the quiet master's repeats go to
    /// the quiet socket, unless someone waits on adverts. What the quiet socket held under the
    /// old split is read at once, and the daemon told to look again at once (a waiting
    /// question may be decidable). A filter the kernel refused closes the socket pair: the
    /// link check opens a new one, which splits nothing.
    fn follow_routine(&mut self, now: u64, sink: &mut dyn Sink) {
        let wanted = match self.election.quiet_master() {
            Some(ip) if !self.attentive && self.repeats >= 2 => {
                self.last_head.filter(|r| r.src == ip)
            }
            _ => None,
        };
        let Some(sock) = &mut self.sock else { return };
        let was = sock.routine();
        if was == wanted {
            return;
        }
        if let Err(e) = sock.set_routine(wanted) {
            log::warn!("receive filter on {}: {e}: re-opening the raw socket", self.ifname);
            self.sock = None;
            self.link_check_due = true;
            return;
        }
        if was.is_none() {
            // It took nothing until now: what it holds from here on arrived from here on.
            self.quiet_read_at = now;
        } else {
            let before = self.c.rx_deferred;
            self.drain(now, true, sink);
            self.more_waiting |= self.c.rx_deferred != before;
        }
    }

    /// One packet from the raw socket: checked, counted, and handed to the election as
    /// arrived at `rx_at` (`now` for the loud socket). True when it passed the checks.
    fn receive(&mut self, now: u64, rx_at: u64, pkt: &[u8], sink: &mut dyn Sink) -> bool {
        let filter = self.filter();
        let outcome = receive::check(&filter, pkt);
        if let Some(m) = receive::mismatch(&filter, pkt, &outcome)
            && self.mismatches.note(m, now)
        {
            log::warn!("{}", m.describe());
        }
        match outcome {
            Ok(a) => {
                self.c.rx += 1;
                if a.addr_mismatch {
                    self.c.addr_mismatch += 1;
                }
                let own = (self.cfg.priority, self.own_ip);
                let outranks = election::outranks(a.priority, a.src, own.0, own.1);
                self.facts.on_advert_received(rx_at, a.priority, outranks);
                let acts = self.election.on_advert(rx_at, a.src, a.priority, a.interval_ms);
                self.act(now, &acts, sink);
                let head = routine_of(a.src, pkt);
                self.repeats =
                    if head == self.last_head { self.repeats.saturating_add(1) } else { 1 };
                self.last_head = head;
                true
            }
            Err(d) => {
                self.c.drops.count(d);
                false
            }
        }
    }

    /// Reads the interface and follows it: a new ifindex (deleted and created again, renamed)
    /// or a new source address re-opens the raw socket, which the kernel bound to the old
    /// ones; a missing interface or address, a link down, a tracked interface down or a
    /// recent send failure is a fault.
    fn check_link(&mut self, now: u64, sink: &mut dyn Sink) {
        self.link_check_due = false;
        self.next_link_check = if self.events.is_some() { u64::MAX } else { now + LINK_POLL_MS };
        let link = LinkState::read(&self.probe, &self.ifname, self.cfg.unicast_src_ip);
        if link.map(|l| (l.index, l.addr)) != self.link.map(|l| (l.index, l.addr)) {
            match link {
                None => log::warn!("interface {}: not found", self.ifname),
                Some(l) => log::info!(
                    "interface {}: index {} address {}",
                    self.ifname,
                    l.index,
                    l.addr.map_or("none".to_string(), |a| a.to_string())
                ),
            }
        }
        self.link = link;
        if let Some(LinkState { index, addr: Some(addr), .. }) = link {
            if self.own_ip != addr {
                // Multicast: the interface's address is ours; it breaks ties.
                self.own_ip = addr;
                let acts = self.election.reconfigure(now, params(&self.cfg, &self.timing, addr));
                self.act(now, &acts, sink);
            }
            if self.sock.is_none() || self.sock_for != Some((index, addr)) {
                // The master's repeats still waiting there reset the timer first: a socket
                // closed with them unread would make it run out early.
                if self.sock.as_ref().is_some_and(|s| s.routine().is_some()) {
                    self.drain(now, true, sink);
                }
                match self.open_socket() {
                    Ok(sock) => {
                        if self.sock_for.is_some() {
                            log::info!("raw socket re-opened on {} (index {index})", self.ifname);
                        }
                        self.sock = Some(sock);
                        self.sock_for = Some((index, addr));
                        self.opened += 1;
                    }
                    Err(e) => {
                        self.sock = None;
                        log::error!("raw VRRP socket on {}: {e}", self.ifname);
                    }
                }
            }
        }
        if self.send_fault_until.is_some_and(|t| now >= t) {
            self.send_fault_until = None;
        }
        // An address deleted by hand, or gone with a re-created interface: back while master.
        self.vips.verify();
        let why = self.link_fault_reason(link);
        if why != self.link_fault {
            match (&why, &self.link_fault) {
                (Some(w), _) => log::warn!("{w}: fault"),
                (None, Some(was)) => log::info!("{was}: cleared"),
                (None, None) => {}
            }
            self.link_fault = why;
            self.apply_fault(now, sink);
        }
    }

    /// Why the links hold this node in fault, if they do.
    fn link_fault_reason(&self, link: Option<LinkState>) -> Option<String> {
        let ifname = &self.ifname;
        let Some(l) = link else { return Some(format!("interface {ifname} not found")) };
        if !l.up {
            return Some(format!("link {ifname} down"));
        }
        if l.addr.is_none() {
            return Some(match self.cfg.unicast_src_ip {
                Some(ip) => format!("interface {ifname} does not have unicast_src_ip {ip}"),
                None => format!("interface {ifname} has no IPv4 address"),
            });
        }
        let fit = crate::config::max_vips_for_mtu(l.mtu, self.cfg.vrrp_version);
        let n = self.cfg.virtual_ipaddress.len();
        if n > fit {
            return Some(format!(
                "{n} virtual_ipaddress entries do not fit one advert on {ifname} (MTU {}): at \
                 most {fit}",
                l.mtu
            ));
        }
        if self.send_fault_until.is_some() {
            return Some(format!("adverts cannot be sent on {ifname}"));
        }
        if self.sock.is_none() {
            return Some(format!("no raw socket on {ifname}"));
        }
        if let Some(down) = self.cfg.track_interface.iter().find(|i| !self.probe.up(i)) {
            return Some(format!("track_interface {down} down"));
        }
        None
    }

    fn apply_fault(&mut self, now: u64, sink: &mut dyn Sink) {
        let acts = self.election.set_fault(now, self.fault());
        self.act(now, &acts, sink);
    }
}

/// The election's parameters for `cfg`, with `own_ip` as the tie-breaking address.
fn params(cfg: &Config, t: &Timing, own_ip: Ipv4Addr) -> Params {
    Params {
        version: t.version,
        priority: t.priority,
        advert_ms: t.advert_ms,
        preempt: cfg.preempt,
        preempt_delay_ms: t.preempt_delay_ms,
        own_ip,
    }
}

/// The routine an accepted advert from `src` sets: its VRRP header's first bytes.
fn routine_of(src: Ipv4Addr, pkt: &[u8]) -> Option<socket::Routine> {
    let ihl = (*pkt.first()? & 0x0f) as usize * 4;
    let head = pkt.get(ihl..ihl + socket::HEAD_LEN)?.try_into().ok()?;
    Some(socket::Routine { src, head })
}

fn join(list: &[Ipv4Addr]) -> String {
    list.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

/// A sink for the link check run while the node is built, before the election starts (it
/// reports no transition then).
struct NoSink;

impl Sink for NoSink {
    fn transition(&mut self, _: u64, _: &Transition<'_>) {}
}

impl Backend for Node {
    fn fds(&self) -> heapless::Vec<BorrowedFd<'_>, 4> {
        let mut v = heapless::Vec::new();
        if let Some(s) = &self.sock {
            let _ = v.push(s.fd());
        }
        if let Some(e) = &self.events {
            let _ = v.push(e.fd());
        }
        v
    }

    fn fds_generation(&self) -> u64 {
        self.opened
    }

    fn poll_at(&self) -> Option<u64> {
        if self.more_waiting {
            return Some(0);
        }
        // A periodic read is never urgent: it waits for the next advert's wake-up.
        let mut t = self.next_link_check.saturating_add(self.timing.advert_ms);
        if let Some(until) = self.send_fault_until {
            t = t.min(until);
        }
        if let Some(g) = self.vips.poll_at() {
            t = t.min(g);
        }
        Some(self.election.poll_at().map_or(t, |e| e.min(t)))
    }

    fn poll(&mut self, now: u64, ready: &[bool], sink: &mut dyn Sink) {
        // The order of `fds()`: the socket (if open), then the rtnetlink socket (if any).
        // Edge-triggered: a round cut short reads both again, ready or not.
        let again = self.more_waiting;
        let mut more = false;
        let mut i = 0;
        if let Some(sock) = &self.sock {
            // Packets first: a waiting advert must reset the down timer before it fires. The
            // quiet socket's repeats arrived before what woke us (they go in arrival order).
            if sock.routine().is_some() {
                self.drain(now, true, sink);
            }
            if again || ready.get(i).copied().unwrap_or(false) {
                more |= self.drain(now, false, sink);
            }
            i += 1;
        }
        if let Some(events) = &self.events
            && (again || ready.get(i).copied().unwrap_or(false))
        {
            let d = events.drain();
            self.link_check_due |= d.any;
            more |= d.more;
        }
        self.more_waiting = more;
        if self.link_check_due
            || now >= self.next_link_check
            || self.send_fault_until.is_some_and(|t| now >= t)
        {
            self.check_link(now, sink);
        }
        let acts = self.election.poll(now);
        self.act(now, &acts, sink);
        self.vips.poll(now);
        self.follow_routine(now, sink);
    }

    fn start(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        self.outside_fault = fault;
        let acts =
            if self.fault() { self.election.start_in_fault() } else { self.election.start(now) };
        self.act(now, &acts, sink);
        self.follow_routine(now, sink);
    }

    fn started(&self) -> bool {
        self.election.started()
    }

    fn set_fault(&mut self, now: u64, fault: bool, sink: &mut dyn Sink) {
        self.outside_fault = fault;
        self.apply_fault(now, sink);
        self.follow_routine(now, sink);
    }

    fn set_attentive(&mut self, now: u64, attentive: bool, sink: &mut dyn Sink) {
        if attentive != self.attentive {
            self.attentive = attentive;
            self.follow_routine(now, sink);
        }
    }

    fn fault_reason(&self) -> Option<&str> {
        self.link_fault.as_deref()
    }

    fn shutdown(&mut self, now: u64, sink: &mut dyn Sink) {
        let acts = self.election.shutdown();
        self.act(now, &acts, sink);
        self.follow_routine(now, sink);
    }

    fn reload(&mut self, now: u64, cfg: &Config, sink: &mut dyn Sink) {
        // A new interface, source address or mode: the link check opens a new socket.
        if cfg.interface != self.cfg.interface
            || cfg.unicast_src_ip != self.cfg.unicast_src_ip
            || cfg.unicast_peers.is_empty() != self.cfg.unicast_peers.is_empty()
        {
            self.sock = None;
            self.sock_for = None;
            self.link = None;
            self.own_ip = cfg.unicast_src_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        }
        let other_router = cfg.virtual_router_id != self.cfg.virtual_router_id
            || cfg.vrrp_version != self.cfg.vrrp_version;
        self.cfg = cfg.clone();
        self.vips.reconfigure(cfg, now);
        self.timing = Timing::new(cfg);
        self.ifname = cfg.interface.clone().unwrap_or_default();
        self.vrid = cfg.virtual_router_id.unwrap_or(0);
        let p = params(cfg, &self.timing, self.own_ip);
        if other_router {
            // Another virtual router: leave this one properly and start over (the daemon
            // starts the new one).
            self.shutdown(now, sink);
            self.election = Election::new(p);
            self.facts = Facts::default();
        } else {
            let acts = self.election.reconfigure(now, p);
            self.act(now, &acts, sink);
        }
        (self.last_head, self.repeats) = (None, 0);
        self.check_link(now, sink);
        self.follow_routine(now, sink);
    }

    fn role(&self) -> Role {
        self.election.role()
    }

    fn master(&self) -> Option<MasterName> {
        use std::fmt::Write;
        let (ip, _) = self.election.master()?;
        let mut name = MasterName::new();
        // A dotted quad (at most 15 bytes) always fits.
        let _ = write!(name, "{ip}");
        Some(name)
    }

    fn handoff_view(&self, now: u64) -> crate::handoff::View {
        let is_master = self.election.role() == Role::Master;
        self.facts.view(now, is_master, self.interval_ms())
    }

    fn assert_master(&mut self, now: u64) {
        if self.election.role() == Role::Master {
            self.send_advert(now, self.cfg.priority);
        }
    }

    fn handoff_wait_ms(&self) -> u64 {
        self.timing.handoff_wait_ms(self.election.master_adver_ms(), self.interval_ms())
    }

    fn status(&self, now: u64, out: &mut Kv) {
        let e = &self.election;
        out.put("interface", &self.ifname);
        out.put("vrid", self.vrid);
        out.put("version", self.cfg.vrrp_version);
        out.put("priority", self.cfg.priority);
        out.put("own_ip", self.own_ip);
        match e.master() {
            Some((ip, p)) => {
                out.put("master", ip);
                out.put("master_priority", p);
            }
            None => out.put("master", ""),
        }
        match e.last_rx() {
            Some(t) => out.put("last_advert_age_ms", now.saturating_sub(t)),
            None => out.put("last_advert_age_ms", ""),
        }
        out.put("advert_int_ms", self.timing.advert_ms);
        out.put("master_adver_int_ms", e.master_adver_ms());
        out.put("master_down_ms", e.master_down_ms());
        let mode = if self.cfg.unicast_peers.is_empty() { "multicast" } else { "unicast" };
        out.put("mode", mode);
        out.put("peers", join(&self.cfg.unicast_peers));
        out.put("link_index", self.link.map_or(0, |l| l.index));
        out.put("rx_adverts", self.c.rx);
        out.put("rx_deferred", self.c.rx_deferred);
        out.put("tx_adverts", self.c.tx);
        out.put("tx_errors", self.c.tx_errors);
        out.put("rx_addr_mismatch", self.c.addr_mismatch);
        out.put("drops_total", self.c.drops.total());
        for (k, v) in self.c.drops.iter() {
            out.put_suffixed("drop_", k, v);
        }
        self.vips.status(out);
    }
}
