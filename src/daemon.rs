//! The election worker: one `poll(2)` loop around the raw VRRP socket, the control socket,
//! a signalfd and the supervisor's pipes; the election itself is `election::Election`.
//!
//! Owns: the state file (written at every transition, refreshed regularly), the hooks, the
//! counters. Guarantees: a transition is on disk before its hook runs; a master that leaves
//! (TERM, fault, supervisor gone) sends a priority-0 advert and writes `passive` first;
//! nothing received (packet, request, signal) can panic the loop.

use crate::config::{Config, State};
use crate::control::{self, Client, Progress, Request};
use crate::election::{Action, Election, Params, Role};
use crate::handoff::{self, Decision};
use crate::hooks::{Notifier, Tracker, Verdict};
use crate::net::{self, LinkEvents, LinkProbe, LinkState, VrrpSocket};
use crate::receive::{self, Drops, Filter};
use crate::statefile::{self, Reading};
use crate::sys::monotonic_ms;
use crate::wire;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// How often the links (interface, track_interface) are looked at without an rtnetlink
/// event: a safety net only, since every change of link or address wakes the loop at once.
const LINK_CHECK_MS: u64 = 1000;
/// A node whose adverts could not be sent stays in fault this long at first, doubling at
/// each repeat up to [`SEND_FAULT_MAX_MS`] (a firewall that refuses every advert must not
/// make it flap), back to the first figure once an advert goes out.
const SEND_FAULT_MIN_MS: u64 = 1000;
const SEND_FAULT_MAX_MS: u64 = 60_000;
/// Slack on top of Master_Down_Interval before a waiting wrapper is told to skip.
pub const HANDOFF_MARGIN_MS: u64 = 250;
/// A cut far in the past or future never holds a wrapper longer than this.
const MAX_HANDOFF_WAIT_MS: u64 = 15_000;
/// A wrapper waiting for its run/skip answer.
struct Pending {
    stream: std::os::unix::net::UnixStream,
    cut: u64,
    deadline: u64,
}

/// Everything the loop derives from the config.
struct Setup {
    cfg: Config,
    ifname: String,
    vrid: u8,
    own_ip: Ipv4Addr,
    params: Params,
}

impl Setup {
    fn new(cfg: Config) -> Result<Setup, String> {
        let errs = cfg.daemon_errors();
        if !errs.is_empty() {
            let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return Err(msgs.join("; "));
        }
        if let Some(e) = crate::hooks::errors(&cfg).into_iter().next() {
            return Err(e);
        }
        let ifname = cfg.interface.clone().unwrap_or_default();
        let vrid = cfg.virtual_router_id.unwrap_or(0);
        // Multicast: the interface's address, filled in (and followed) by the link checks.
        let own_ip = cfg.unicast_src_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let params = Params {
            version: cfg.vrrp_version,
            priority: cfg.priority,
            advert_ms: cfg.advert_int_cs as u64 * 10,
            preempt: cfg.preempt,
            preempt_delay_ms: cfg.preempt_delay_cs as u64 * 10,
            own_ip,
        };
        Ok(Setup { cfg, ifname, vrid, own_ip, params })
    }

    /// The supervisor's hang limit over four: a beat is never late by accident.
    fn heartbeat_ms(&self) -> u64 {
        crate::supervisor::hang_ms(&self.cfg) / 4
    }

    /// How late a housekeeping timer (links, state refresh, heartbeat) may run, so that it
    /// shares a wake-up with an advert instead of costing one of its own.
    fn slack_ms(&self) -> u64 {
        (self.params.advert_ms / 2).clamp(1, 50)
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

    /// How often the state file is rewritten, and how long a copy stays valid.
    fn refresh_ms(&self) -> u64 {
        self.params.advert_ms.clamp(100, 1000)
    }
}

#[derive(Default)]
struct Counters {
    rx: u64,
    tx: u64,
    tx_errors: u64,
    transitions: u64,
    addr_mismatch: u64,
    drops: Drops,
    bad_requests: u64,
    clients_dropped: u64,
}

pub struct Worker {
    s: Setup,
    conf_path: PathBuf,
    election: Election,
    /// The raw socket, while one is open on the interface as it is now.
    sock: Option<VrrpSocket>,
    /// The (ifindex, address) the socket was opened for.
    sock_for: Option<(u32, Ipv4Addr)>,
    links: LinkProbe,
    events: Option<LinkEvents>,
    /// The interface as last read.
    link: Option<LinkState>,
    /// Why the links make this node faulty (`None`: they do not).
    link_fault_why: Option<String>,
    /// A failed send holds the node in fault until then.
    send_fault_until: Option<u64>,
    send_fault_ms: u64,
    listener: UnixListener,
    clients: Vec<Client>,
    c: Counters,
    notifier: Notifier,
    tracker: Option<Tracker>,
    link_fault: bool,
    next_link_check: u64,
    link_check_due: bool,
    next_refresh: u64,
    next_heartbeat: u64,
    since_wall: u64,
    mismatches: receive::MismatchLog,
    supervised: bool,
    pending: Vec<Pending>,
    /// Control clients accepted so far (their order).
    accepted: u64,
    master_since: Option<u64>,
    master_until: Option<u64>,
    last_master_tx: Option<u64>,
    last_proof_rx: Option<u64>,
    last_superior_rx: Option<u64>,
    /// The last takeover preempted a lower-priority master that was still sending.
    preempted: bool,
}

/// Runs the worker until TERM or the supervisor goes away; returns the exit code.
pub fn run(cfg: Config, conf_path: &Path, supervised: bool) -> i32 {
    let config_error = !cfg.daemon_errors().is_empty() || !crate::hooks::errors(&cfg).is_empty();
    let setup = match Setup::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot start: {e}");
            return if config_error { 78 } else { 71 };
        }
    };
    let sfd = match crate::sys::daemon_signal_fd() {
        Ok(f) => f,
        Err(e) => {
            log::error!("signalfd: {e}");
            return 71;
        }
    };
    if let Some(dir) = setup.cfg.control_socket.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let links = match LinkProbe::new() {
        Ok(l) => l,
        Err(e) => {
            log::error!("link probe socket: {e}");
            return 71;
        }
    };
    let events = match LinkEvents::open() {
        Ok(e) => Some(e),
        Err(e) => {
            log::warn!("rtnetlink socket: {e}: links are looked at every {LINK_CHECK_MS} ms");
            None
        }
    };
    if let Some(dir) = setup.cfg.state_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let listener = match control::listen(&setup.cfg.control_socket, setup.cfg.control_group) {
        Ok(l) => l,
        Err(e) => {
            log::error!("control socket {}: {e}", setup.cfg.control_socket.display());
            return 71;
        }
    };
    if supervised {
        set_nonblocking_stdout();
    }
    // One descriptor per waiting wrapper, plus the daemon's own and the reading clients.
    crate::sys::raise_fd_limit((control::MAX_PENDING + control::MAX_CLIENTS + 64) as u64);
    let now = monotonic_ms();
    let tracker = Tracker::from_config(&setup.cfg, now);
    let mut w = Worker {
        election: Election::new(setup.params),
        conf_path: conf_path.to_path_buf(),
        sock: None,
        sock_for: None,
        links,
        events,
        link: None,
        link_fault_why: None,
        send_fault_until: None,
        send_fault_ms: SEND_FAULT_MIN_MS,
        listener,
        clients: Vec::new(),
        c: Counters::default(),
        notifier: Notifier::default(),
        tracker,
        link_fault: false,
        next_link_check: now,
        link_check_due: true,
        next_refresh: now,
        next_heartbeat: now,
        since_wall: wall_secs(),
        mismatches: receive::MismatchLog::default(),
        supervised,
        pending: Vec::new(),
        accepted: 0,
        master_since: None,
        master_until: None,
        last_master_tx: None,
        last_proof_rx: None,
        last_superior_rx: None,
        preempted: false,
        s: setup,
    };
    log::info!(
        "rcrond starting: cluster={} interface={} vrid={} priority={} version={} advert_int_ms={} {}",
        w.s.cfg.cluster_name,
        w.s.ifname,
        w.s.vrid,
        w.s.params.priority,
        w.s.params.version,
        w.s.params.advert_ms,
        if w.s.cfg.unicast_peers.is_empty() {
            "multicast".to_string()
        } else {
            format!("unicast src={} peers={}", w.s.own_ip, join(&w.s.cfg.unicast_peers))
        }
    );
    w.write_state(now, true);
    w.check_link(now);
    w.start_when_ready(now);
    let code = w.run_loop(&sfd);
    w.leave();
    code
}

fn join(list: &[Ipv4Addr]) -> String {
    list.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

fn wall_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn set_nonblocking_stdout() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let out = std::io::stdout();
    if let Ok(fl) = fcntl(out.as_fd(), FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
        let _ = fcntl(out.as_fd(), FcntlArg::F_SETFL(fl));
    }
}

enum Stop {
    Term,
    SupervisorGone,
}

impl Worker {
    fn run_loop(&mut self, sfd: &SignalFd) -> i32 {
        let mut buf = [0u8; 2048];
        loop {
            let now = monotonic_ms();
            let timeout = self.next_wakeup(now).saturating_sub(now);
            let stdin = std::io::stdin();
            let mut fds: Vec<PollFd> = Vec::with_capacity(6 + self.clients.len());
            fn slot<'a>(fd: Option<BorrowedFd<'a>>, fds: &mut Vec<PollFd<'a>>) -> Option<usize> {
                fds.push(PollFd::new(fd?, PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            let i_sock = slot(self.sock.as_ref().map(|s| s.fd()), &mut fds);
            let i_events = slot(self.events.as_ref().map(|e| e.fd()), &mut fds);
            let i_listener = slot(Some(self.listener.as_fd()), &mut fds);
            let i_signals = slot(Some(sfd.as_fd()), &mut fds);
            let i_stdin = slot(self.supervised.then(|| stdin.as_fd()), &mut fds);
            let first_client = fds.len();
            for c in &self.clients {
                fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            let to = PollTimeout::try_from(timeout.min(60_000) as i32).unwrap_or(PollTimeout::MAX);
            let polled = poll(&mut fds, to).is_ok();
            // Only what poll reported ready is read: a wake-up costs no idle system calls.
            let ready = |i: Option<usize>| {
                i.is_some_and(|i| {
                    !polled || fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty())
                })
            };
            let (packets, link_events) = (ready(i_sock), ready(i_events));
            let (listener, signals) = (ready(i_listener), ready(i_signals));
            let supervisor_gone = polled && ready(i_stdin);
            let client_data = (first_client..fds.len()).any(|i| ready(Some(i)));
            drop(fds);
            let now = monotonic_ms();
            // Packets first: a waiting advert must reset the down timer before it fires.
            if packets {
                self.drain_socket(now, &mut buf);
            }
            if link_events && self.events.as_ref().is_some_and(|e| e.drain()) {
                self.link_check_due = true;
            }
            if signals && let Some(stop) = self.signals(now, sfd) {
                return self.stop_code(stop);
            }
            if supervisor_gone && self.supervisor_really_gone() {
                return self.stop_code(Stop::SupervisorGone);
            }
            self.tick(now);
            if listener || client_data || !self.clients.is_empty() {
                self.serve_clients(now, listener);
            }
            if !self.pending.is_empty() {
                self.answer_pending(monotonic_ms());
            }
        }
    }

    fn stop_code(&mut self, stop: Stop) -> i32 {
        match stop {
            Stop::Term => log::info!("SIGTERM: resigning"),
            Stop::SupervisorGone => log::warn!("supervisor gone: resigning"),
        }
        0
    }

    /// stdin is the supervisor's pipe: EOF means it died.
    fn supervisor_really_gone(&self) -> bool {
        let mut b = [0u8; 16];
        matches!(nix::unistd::read(std::io::stdin().as_fd(), &mut b), Ok(0))
    }

    fn next_wakeup(&self, now: u64) -> u64 {
        let slack = self.s.slack_ms();
        let mut t = self.next_link_check.min(self.next_refresh) + slack;
        if let Some(until) = self.send_fault_until {
            t = t.min(until);
        }
        if self.supervised {
            t = t.min(self.next_heartbeat + slack);
        }
        if let Some(e) = self.election.poll_at() {
            t = t.min(e);
        }
        if let Some(tr) = &self.tracker {
            t = t.min(tr.next_at());
            if tr.running() {
                t = t.min(now + 100);
            }
        }
        if self.notifier.busy() {
            t = t.min(now + 100);
        }
        for c in &self.clients {
            t = t.min(c.deadline);
        }
        for p in &self.pending {
            t = t.min(p.deadline);
        }
        if !self.pending.is_empty()
            && self.election.role() == Role::Master
            && let Some(s) = self.master_since
        {
            let confirmed = s + self.confirm_ms();
            if confirmed > now {
                t = t.min(confirmed);
            }
        }
        t
    }

    /// How long a new master holds the role before it runs a job nobody else covered.
    fn confirm_ms(&self) -> u64 {
        handoff::confirm_ms(self.interval_ms())
    }

    /// The advert interval in force: ours, or the master's when it is longer (v3).
    fn interval_ms(&self) -> u64 {
        self.election.master_adver_ms().max(self.s.params.advert_ms)
    }

    fn view(&self, now: u64) -> handoff::View {
        handoff::View {
            now,
            is_master: self.election.role() == Role::Master,
            master_since: self.master_since,
            master_until: self.master_until,
            last_master_tx: self.last_master_tx,
            last_proof_rx: self.last_proof_rx,
            last_superior_rx: self.last_superior_rx,
            interval_ms: self.interval_ms(),
            preempted: self.preempted,
        }
    }

    /// Answers every waiting wrapper whose slot can be decided now.
    fn answer_pending(&mut self, now: u64) {
        let mut i = 0;
        while i < self.pending.len() {
            let (cut, deadline) = (self.pending[i].cut, self.pending[i].deadline);
            let mut d = handoff::decide(&self.view(now), cut, deadline);
            if d == Decision::SendAdvertFirst {
                self.send_advert(now, self.s.params.priority);
                d = handoff::decide(&self.view(now), cut, deadline);
                if d == Decision::SendAdvertFirst {
                    d = Decision::Skip("advert_not_sent");
                }
            }
            let (word, reason) = match d {
                Decision::Run(r) => ("run", r),
                Decision::Skip(r) => ("skip", r),
                Decision::Wait | Decision::SendAdvertFirst => {
                    i += 1;
                    continue;
                }
            };
            let p = self.pending.swap_remove(i);
            let state = self.election.role().state().as_str();
            log::debug!(
                "handoff cut={cut} now={now}: {word} ({reason}) master_since={:?} until={:?} \
                 tx={:?} proof={:?}",
                self.master_since,
                self.master_until,
                self.last_master_tx,
                self.last_proof_rx
            );
            control::reply(p.stream, &format!("decision={word}\nreason={reason}\nstate={state}\n"));
        }
    }

    fn tick(&mut self, now: u64) {
        if self.link_check_due
            || now >= self.next_link_check
            || self.send_fault_until.is_some_and(|t| now >= t)
        {
            self.check_link(now);
        }
        if let Some(tr) = &mut self.tracker
            && let Some(v) = tr.poll(now)
        {
            self.on_verdict(now, v);
        }
        let acts = self.election.poll(now);
        self.act(now, &acts);
        if now >= self.next_refresh {
            self.write_state(now, false);
        }
        if self.supervised && now >= self.next_heartbeat {
            // Unbuffered: the supervisor must see each beat at once.
            let _ = nix::unistd::write(std::io::stdout(), b".");
            self.next_heartbeat = now + self.s.heartbeat_ms();
        }
        self.notifier.poll(now);
    }

    /// The track script's verdict changed.
    fn on_verdict(&mut self, now: u64, v: Verdict) {
        match v {
            Verdict::Failing => log::info!("track_script failing: fault"),
            Verdict::Healthy => log::info!("track_script ok"),
            Verdict::Unknown => {}
        }
        self.start_when_ready(now);
        self.update_fault(now);
    }

    /// Starts the election once the track script (if any) has its first verdict: like
    /// keepalived, a node never joins before its check has passed, and joins in fault when the
    /// check or a link already fails (it then never advertises, not even once).
    fn start_when_ready(&mut self, now: u64) {
        if self.election.started()
            || self.tracker.as_ref().is_some_and(|t| t.verdict() == Verdict::Unknown)
        {
            return;
        }
        let acts =
            if self.fault() { self.election.start_in_fault(now) } else { self.election.start(now) };
        self.act(now, &acts);
    }

    fn fault(&self) -> bool {
        self.link_fault || self.tracker.as_ref().is_some_and(|t| t.fault())
    }

    /// Reads the interface and follows it: a new ifindex (deleted and created again, renamed)
    /// or a new source address re-opens the raw socket, which the kernel bound to the old
    /// ones; a missing interface or address, a link down, a tracked interface down or a
    /// recent send failure is a fault. Runs on every rtnetlink event and every
    /// [`LINK_CHECK_MS`].
    fn check_link(&mut self, now: u64) {
        self.link_check_due = false;
        self.next_link_check = now + LINK_CHECK_MS;
        let link = LinkState::read(&self.links, &self.s.ifname, self.s.cfg.unicast_src_ip);
        if link.map(|l| (l.index, l.addr)) != self.link.map(|l| (l.index, l.addr)) {
            match link {
                None => log::warn!("interface {}: not found", self.s.ifname),
                Some(l) => log::info!(
                    "interface {}: index {} address {}",
                    self.s.ifname,
                    l.index,
                    l.addr.map_or("none".to_string(), |a| a.to_string())
                ),
            }
        }
        self.link = link;
        if let Some(LinkState { index, addr: Some(addr), .. }) = link {
            if self.s.own_ip != addr {
                // Multicast: the interface's address is ours; it breaks ties.
                self.s.own_ip = addr;
                self.s.params.own_ip = addr;
                let acts = self.election.reconfigure(now, self.s.params);
                self.act(now, &acts);
            }
            if self.sock.is_none() || self.sock_for != Some((index, addr)) {
                self.sock = None;
                match self.s.open_socket() {
                    Ok(sock) => {
                        if self.sock_for.is_some() {
                            log::info!("raw socket re-opened on {} (index {index})", self.s.ifname);
                        }
                        self.sock = Some(sock);
                        self.sock_for = Some((index, addr));
                    }
                    Err(e) => log::error!("raw VRRP socket on {}: {e}", self.s.ifname),
                }
            }
        }
        if self.send_fault_until.is_some_and(|t| now >= t) {
            self.send_fault_until = None;
        }
        let why = self.link_fault_reason(link);
        if why != self.link_fault_why {
            match &why {
                Some(w) => log::warn!("{w}: fault"),
                None => log::info!("link up again"),
            }
            self.link_fault_why = why;
        }
        let down = self.link_fault_why.is_some();
        if down != self.link_fault {
            self.link_fault = down;
            self.update_fault(now);
        }
    }

    /// Why the links hold this node in fault, if they do.
    fn link_fault_reason(&self, link: Option<LinkState>) -> Option<String> {
        let ifname = &self.s.ifname;
        let Some(l) = link else { return Some(format!("interface {ifname} not found")) };
        if !l.up {
            return Some(format!("link {ifname} down"));
        }
        if l.addr.is_none() {
            return Some(match self.s.cfg.unicast_src_ip {
                Some(ip) => format!("interface {ifname} does not have unicast_src_ip {ip}"),
                None => format!("interface {ifname} has no IPv4 address"),
            });
        }
        let fit = crate::config::max_vips_for_mtu(l.mtu, self.s.params.version);
        let n = self.s.cfg.virtual_ipaddress.len();
        if n > fit {
            return Some(format!(
                "{n} virtual_ipaddress entries do not fit one advert on {ifname} (MTU {}): at \
                 most {fit}",
                l.mtu
            ));
        }
        if self.sock.is_none() {
            return Some(format!("no raw socket on {ifname}"));
        }
        if let Some(down) = self.s.cfg.track_interface.iter().find(|i| !self.links.up(i)) {
            return Some(format!("track_interface {down} down"));
        }
        if self.send_fault_until.is_some() {
            return Some(format!("adverts cannot be sent on {ifname}"));
        }
        None
    }

    fn update_fault(&mut self, now: u64) {
        let acts = self.election.set_fault(now, self.fault());
        self.act(now, &acts);
    }

    fn drain_socket(&mut self, now: u64, buf: &mut [u8]) {
        for _ in 0..256 {
            let Some(sock) = &self.sock else { return };
            let pkt = match sock.recv(buf) {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    // An error on the socket itself (its device gone): poll would report it
                    // again at once, so re-open it on the interface as it is now.
                    log::warn!("receive on {}: {e}: re-opening the raw socket", self.s.ifname);
                    self.sock = None;
                    self.link_check_due = true;
                    return;
                }
            };
            let filter = self.s.filter();
            let outcome = receive::check(&filter, pkt);
            if let Some(m) = receive::mismatch(&filter, pkt, &outcome)
                && self.mismatches.note(m, now)
            {
                log::warn!("{}", m.describe());
            }
            match outcome {
                Ok(a) => {
                    self.c.rx += 1;
                    if a.priority > 0 {
                        // Only a node that holds itself master sends adverts: proof that a
                        // master was alive now (see handoff.rs).
                        self.last_proof_rx = Some(now);
                    }
                    let own = (self.s.params.priority, u32::from(self.s.own_ip));
                    if (a.priority, u32::from(a.src)) > own {
                        self.last_superior_rx = Some(now);
                    }
                    if a.addr_mismatch {
                        self.c.addr_mismatch += 1;
                    }
                    let acts = self.election.on_advert(now, a.src, a.priority, a.interval_ms);
                    self.act(now, &acts);
                }
                Err(d) => self.c.drops.count(d),
            }
        }
    }

    /// Returns `Some` when the loop must stop.
    fn signals(&mut self, now: u64, sfd: &SignalFd) -> Option<Stop> {
        let mut stop = None;
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => stop = Some(Stop::Term),
                Ok(Signal::SIGHUP) => self.reload(now),
                Ok(Signal::SIGUSR1) => {
                    for line in self.status_text(now).lines() {
                        log::info!("status: {line}");
                    }
                }
                Ok(Signal::SIGCHLD) => {
                    self.notifier.poll(now);
                    if let Some(v) = self.tracker.as_mut().and_then(|t| t.poll(now)) {
                        self.on_verdict(now, v);
                    }
                }
                _ => {}
            }
        }
        stop
    }

    /// SIGHUP: a broken new config keeps the old one running and logs every error.
    fn reload(&mut self, now: u64) {
        let cfg = match crate::config::load(&self.conf_path) {
            Ok(p) => {
                for w in &p.warnings {
                    log::warn!(
                        "config warning: {}:{}: {}",
                        self.conf_path.display(),
                        w.line,
                        w.msg
                    );
                }
                p.config
            }
            Err(e) => {
                for l in e.to_string().lines() {
                    log::error!("reload refused, keeping the running config: {l}");
                }
                return;
            }
        };
        let setup = match Setup::new(cfg) {
            Ok(s) => s,
            Err(e) => {
                log::error!("reload refused, keeping the running config: {e}");
                return;
            }
        };
        // A new interface, source address or mode: the link check opens a new socket.
        if setup.ifname != self.s.ifname
            || setup.cfg.unicast_src_ip != self.s.cfg.unicast_src_ip
            || setup.cfg.unicast_peers.is_empty() != self.s.cfg.unicast_peers.is_empty()
        {
            self.sock = None;
            self.sock_for = None;
            self.link = None;
        }
        // A new or changed check starts unknown, which holds the node in fault until it passes
        // (keepalived: a script not yet run holds the instance); an unchanged one keeps its
        // verdict.
        if !self.tracker.as_ref().is_some_and(|t| t.same_as(&setup.cfg)) {
            self.tracker = Tracker::from_config(&setup.cfg, now);
        }
        let mut setup = setup;
        if setup.cfg.unicast_src_ip.is_none() && setup.ifname == self.s.ifname {
            setup.own_ip = self.s.own_ip;
            setup.params.own_ip = self.s.own_ip;
        }
        if setup.vrid != self.s.vrid || setup.params.version != self.s.params.version {
            // Another virtual router: leave this one properly and start over.
            let acts = self.election.shutdown();
            self.act(now, &acts);
            self.election = Election::new(setup.params);
            self.s = setup;
        } else {
            self.s = setup;
            let acts = self.election.reconfigure(now, self.s.params);
            self.act(now, &acts);
        }
        self.check_link(now);
        self.start_when_ready(now);
        self.update_fault(now);
        log::info!("config reloaded from {}", self.conf_path.display());
        self.write_state(now, true);
    }

    /// Carries out the election's actions in break-before-make order: leaving master is on
    /// disk before the priority-0 advert lets a peer take over; a new master's advert goes out
    /// before its (possibly slow) state-file write.
    fn act(&mut self, now: u64, acts: &[Action]) {
        let leaving = |a: &Action| matches!(a, Action::Transition { from: Role::Master, to, .. } if *to != Role::Master);
        let rank = |a: &Action| match a {
            a if leaving(a) => 0,
            Action::Send { .. } => 1,
            Action::Transition { .. } => 2,
        };
        let mut ordered: heapless::Vec<Action, 4> = heapless::Vec::new();
        for r in 0..3 {
            for a in acts.iter().filter(|a| rank(a) == r) {
                let _ = ordered.push(*a);
            }
        }
        for a in &ordered {
            match *a {
                Action::Send { priority } => self.send_advert(now, priority),
                Action::Transition { from, to, reason } => {
                    self.c.transitions += 1;
                    if to == Role::Master && from != Role::Master {
                        self.master_since = Some(now);
                        self.master_until = None;
                        let recent =
                            2 * self.election.master_adver_ms().max(self.s.params.advert_ms);
                        self.preempted = reason == crate::election::Reason::MasterDown
                            && self.last_proof_rx.is_some_and(|t| now.saturating_sub(t) <= recent);
                    } else if from == Role::Master && to != Role::Master {
                        self.master_until = Some(now);
                    }
                    self.since_wall = wall_secs();
                    let (f, t) = (from.state().as_str(), to.state().as_str());
                    log::info!(
                        "cluster={} state={f}=>{t} role={:?}=>{:?} reason={}",
                        self.s.cfg.cluster_name,
                        from,
                        to,
                        reason.as_str()
                    );
                    log::debug!("transition at mono_ms={now}");
                    self.write_state(now, true);
                    let hook = match to {
                        Role::Master => &self.s.cfg.notify_active,
                        Role::Backup => &self.s.cfg.notify_passive,
                        Role::Fault => &self.s.cfg.notify_fault,
                    };
                    if let Some(cmd) = hook.clone()
                        && from != to
                    {
                        let env = vec![
                            ("RCRON_STATE", to.state().as_str().to_string()),
                            ("RCRON_ROLE", format!("{to:?}").to_lowercase()),
                            ("RCRON_REASON", reason.as_str().to_string()),
                            ("RCRON_CLUSTER", self.s.cfg.cluster_name.clone()),
                        ];
                        self.notifier.push(&cmd, env);
                    }
                    self.notifier.poll(now);
                }
            }
        }
    }

    fn send_advert(&mut self, now: u64, priority: u8) {
        let cfg = &self.s.cfg;
        let spec = wire::AdvertSpec {
            version: cfg.vrrp_version,
            vrid: self.s.vrid,
            priority,
            interval_cs: cfg.advert_int_cs,
            auth: if cfg.vrrp_version == 2 { cfg.auth_pass } else { None },
            addrs: &cfg.virtual_ipaddress,
        };
        let mut buf = [0u8; wire::MAX_MSG];
        let single = [wire::MCAST_GROUP];
        let dsts: &[Ipv4Addr] =
            if cfg.unicast_peers.is_empty() { &single } else { &cfg.unicast_peers };
        let mut sent = false;
        let mut failure = None;
        for &dst in dsts {
            let n = match wire::emit(&spec, self.s.own_ip, dst, cfg.v3_checksum, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("cannot encode advert: {e}");
                    continue;
                }
            };
            let r = match &self.sock {
                Some(sock) => sock.send(&buf[..n], dst),
                None => Err(std::io::ErrorKind::NotConnected.into()),
            };
            match r {
                Ok(()) => {
                    sent = true;
                    self.c.tx += 1;
                    if priority > 0 && self.election.role() == Role::Master {
                        self.last_master_tx = Some(now);
                    }
                }
                Err(e) => {
                    self.c.tx_errors += 1;
                    log::debug!("send to {dst}: {e}");
                    if net::send_error_is_fault(&e) {
                        failure = Some((dst, e));
                    }
                }
            }
        }
        if sent {
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

    /// Writes the state file; `sync`: a transition (fsync), else a refresh.
    fn write_state(&mut self, now: u64, sync: bool) {
        let refresh = self.s.refresh_ms();
        self.next_refresh = now + refresh;
        let r = Reading {
            state: Some(self.election.role().state()),
            since: Some(self.since_wall),
            master: self.election.master().map(|(ip, _)| ip.to_string()),
            priority: Some(self.s.params.priority),
            pid: Some(std::process::id()),
            mono_ms: Some(now),
            valid_ms: Some(3 * refresh),
        };
        let path = &self.s.cfg.state_file;
        let text = statefile::render(&r);
        if statefile::write_atomic_opt(path, text.as_bytes(), sync).is_err() {
            // Its directory may have been removed (a tmpfs cleaned up): make it, retry once.
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = statefile::write_atomic_opt(path, text.as_bytes(), sync) {
                log::error!("state file: {e}");
            }
        }
    }

    /// The `--status` answer.
    fn status_text(&self, now: u64) -> String {
        use std::fmt::Write as _;
        let e = &self.election;
        let mut s = String::with_capacity(1024);
        let _ = writeln!(s, "state={}", e.role().state().as_str());
        let _ = writeln!(s, "role={}", format!("{:?}", e.role()).to_lowercase());
        let _ = writeln!(s, "cluster={}", self.s.cfg.cluster_name);
        let _ = writeln!(s, "interface={}", self.s.ifname);
        let _ = writeln!(s, "vrid={}", self.s.vrid);
        let _ = writeln!(s, "version={}", self.s.params.version);
        let _ = writeln!(s, "priority={}", self.s.params.priority);
        let _ = writeln!(s, "own_ip={}", self.s.own_ip);
        match e.master() {
            Some((ip, p)) => {
                let _ = writeln!(s, "master={ip}");
                let _ = writeln!(s, "master_priority={p}");
            }
            None => {
                let _ = writeln!(s, "master=");
            }
        }
        match e.last_rx() {
            Some(t) => {
                let _ = writeln!(s, "last_advert_age_ms={}", now.saturating_sub(t));
            }
            None => {
                let _ = writeln!(s, "last_advert_age_ms=");
            }
        }
        let _ = writeln!(s, "advert_int_ms={}", self.s.params.advert_ms);
        let _ = writeln!(s, "master_adver_int_ms={}", e.master_adver_ms());
        let _ = writeln!(s, "master_down_ms={}", e.master_down_ms());
        let mode = if self.s.cfg.unicast_peers.is_empty() { "multicast" } else { "unicast" };
        let _ = writeln!(s, "mode={mode}");
        let _ = writeln!(s, "peers={}", join(&self.s.cfg.unicast_peers));
        let _ = writeln!(s, "fault={}", if self.fault() { "yes" } else { "no" });
        let why = match (&self.link_fault_why, self.tracker.as_ref().map(|t| t.verdict())) {
            (Some(w), _) => w.as_str(),
            (None, Some(Verdict::Failing)) => "track_script failing",
            (None, Some(Verdict::Unknown)) => "track_script not yet run",
            _ => "",
        };
        let _ = writeln!(s, "fault_reason={why}");
        let _ = writeln!(s, "link_index={}", self.link.map_or(0, |l| l.index));
        let _ = writeln!(s, "since={}", self.since_wall);
        let _ = writeln!(s, "transitions={}", self.c.transitions);
        let _ = writeln!(s, "rx_adverts={}", self.c.rx);
        let _ = writeln!(s, "tx_adverts={}", self.c.tx);
        let _ = writeln!(s, "tx_errors={}", self.c.tx_errors);
        let _ = writeln!(s, "rx_addr_mismatch={}", self.c.addr_mismatch);
        let _ = writeln!(s, "control_bad_requests={}", self.c.bad_requests);
        let _ = writeln!(s, "control_clients_dropped={}", self.c.clients_dropped);
        let _ = writeln!(s, "drops_total={}", self.c.drops.total());
        for (k, v) in self.c.drops.iter() {
            let _ = writeln!(s, "drop_{k}={v}");
        }
        let _ = writeln!(s, "pid={}", std::process::id());
        s
    }

    /// Accepts and reads clients. A client whose request is complete is never dropped: when
    /// the handoff table is full, accepting stops and newcomers wait in the listen backlog.
    /// Only clients that are still silent are dropped: past their deadline, or the oldest of
    /// them when [`control::MAX_CLIENTS`] are waiting.
    fn serve_clients(&mut self, now: u64, accept: bool) {
        // A bounded batch per wake-up keeps adverts on time; the listener stays readable.
        for _ in 0..if accept { control::MAX_CLIENTS } else { 0 } {
            if self.pending.len() >= control::MAX_PENDING {
                break;
            }
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        // EMFILE and the like: leave the rest in the backlog for now.
                        log::debug!("control accept: {e}");
                    }
                    break;
                }
            };
            self.accepted += 1;
            let Some(mut c) = Client::new(stream, now, self.accepted) else { continue };
            // Read at once: a wrapper's question is usually already there.
            match c.read() {
                Progress::Line(req) => self.answer(now, c, req),
                Progress::Gone => {}
                Progress::Pending => {
                    if self.clients.len() >= control::MAX_CLIENTS {
                        // Full: the client connected longest ago has had the most time to speak.
                        let oldest = (0..self.clients.len()).min_by_key(|&i| self.clients[i].seq);
                        if let Some(oldest) = oldest {
                            self.c.clients_dropped += 1;
                            self.clients.swap_remove(oldest);
                        }
                    }
                    self.clients.push(c);
                }
            }
        }
        let mut i = 0;
        while i < self.clients.len() {
            let progress = self.clients[i].read();
            match progress {
                Progress::Pending if now < self.clients[i].deadline => i += 1,
                Progress::Pending | Progress::Gone => {
                    self.clients.swap_remove(i);
                }
                Progress::Line(req) => {
                    let c = self.clients.swap_remove(i);
                    self.answer(now, c, req);
                }
            }
        }
    }

    /// Answers one request, or queues a handoff question until it can be decided.
    fn answer(&mut self, now: u64, c: Client, req: Option<Request>) {
        let text = match req {
            Some(Request::Handoff { cut_ms }) => {
                // From when the question arrived (later than the cut if this process was
                // frozen or starved): a full election may still be needed.
                let wait = self.election.master_down_ms() + self.confirm_ms() + HANDOFF_MARGIN_MS;
                let deadline = cut_ms.max(now).saturating_add(wait).min(now + MAX_HANDOFF_WAIT_MS);
                self.pending.push(Pending { stream: c.into_stream(), cut: cut_ms, deadline });
                return;
            }
            Some(Request::Status) => self.status_text(now),
            Some(Request::State) => format!("state={}\n", self.election.role().state().as_str()),
            None => {
                self.c.bad_requests += 1;
                "error=bad request\n".to_string()
            }
        };
        c.answer(&text);
    }

    /// Leaving: priority-0 advert if master, `passive` on disk, socket removed.
    fn leave(&mut self) {
        let now = monotonic_ms();
        let acts = self.election.shutdown();
        self.act(now, &acts);
        self.write_state(now, true);
        let _ = std::fs::remove_file(&self.s.cfg.control_socket);
        let _ = self.listener.as_raw_fd();
    }
}

/// The passive state a supervisor writes when its worker is gone.
pub fn write_passive(cfg: &Config) {
    let r = Reading { state: Some(State::Passive), since: Some(wall_secs()), ..Reading::default() };
    if let Some(dir) = cfg.state_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = statefile::write_atomic(&cfg.state_file, statefile::render(&r).as_bytes()) {
        log::error!("state file: {e}");
    }
}
