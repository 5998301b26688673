//! The election worker: one `poll(2)` loop around an election backend (`backend::Backend`;
//! VRRP: `vrrp::node`), the control socket, a signalfd and the supervisor's pipes.
//!
//! Owns: the state file (written at every transition, refreshed regularly), the hooks and
//! the track script, the control socket and the wrappers' waiting questions, the heartbeat.
//! Guarantees: a transition is on disk before its hook runs; a master that leaves (TERM,
//! fault, supervisor gone) writes `passive` before its peers can learn it (the backend
//! reports the transition first); a question that arrived whole is answered; nothing received
//! (packet, request, signal) can panic the loop.

use crate::backend::{Backend, Role, Sink, SlotAnswer, Transition};
use crate::config::{Config, Election};
use crate::control::{self, Client, JobOutcome, Progress, Request};
use crate::exit::Failure;
use crate::handoff::{self, Decision};
use crate::ledger::node::{LedgerNode, Off};
use crate::ledger::{
    self,
    book::{Answer, Now, Standing},
};
use crate::os::heartbeat::HangTimer;
use crate::os::hooks::{Notifier, Tracker, Verdict};
use crate::os::sys::{monotonic_ms, wall_ms, wall_secs};
use crate::report::Kv;
use crate::statefile::{self, Reading};
use crate::timing::{self, Timing};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

// Every question that can wait at once has room for its slot's record: a crowd is held whole.
const _: () = assert!(crate::ledger::book::CAPACITY >= control::MAX_PENDING);

/// epoll tokens: the listener, the signalfd, the supervisor's pipe, the backend's descriptors
/// (`BACKEND + descriptor number`: stable while the descriptor is open, whichever others the
/// backend closes), the clients being read (`CLIENT + accept order`).
const LISTENER: u64 = 1;
const SIGNALS: u64 = 2;
const SUPERVISOR: u64 = 3;
const LEDGER: u64 = 4;
const BACKEND: u64 = 1 << 31;
const CLIENT: u64 = 1 << 32;

fn backend_token(fd: BorrowedFd<'_>) -> u64 {
    use std::os::fd::AsRawFd;
    BACKEND + fd.as_raw_fd() as u32 as u64
}

/// A wrapper waiting for its run/skip answer.
struct Pending {
    stream: UnixStream,
    cut: u64,
    /// (job, scheduled time) when the wrapper named its slot (`slot` request).
    slot: Option<(u64, u64)>,
    /// When the question arrived.
    arrived: u64,
    deadline: u64,
}

/// A backend's own slot answer (etcd) as the wrapper's decision, and the runner's name.
fn backend_decision(a: SlotAnswer, now: u64, deadline: u64) -> (Decision, Option<String>) {
    match a {
        SlotAnswer::Run { .. } => (Decision::Run("recorded"), None),
        SlotAnswer::Held { runner, here: true } => (Decision::Skip("ran_here"), Some(runner)),
        SlotAnswer::Held { runner, here: false } => (Decision::Skip("ran_on_peer"), Some(runner)),
        SlotAnswer::Wait(why) if now >= deadline => (Decision::Skip(why), None),
        SlotAnswer::Wait(_) => (Decision::Wait, None),
    }
}

fn clocks(mono: u64) -> Now {
    Now { mono, wall_ms: wall_ms() }
}

/// The master this node hears (not itself), and when an advert from a master last arrived.
fn heard_master(backend: &dyn Backend, now: u64) -> (Option<std::net::Ipv4Addr>, Option<u64>) {
    if backend.role() == Role::Master {
        return (None, None);
    }
    let master = backend.master().and_then(|m| m.parse().ok());
    (master, backend.handoff_view(now).last_proof_rx)
}

/// The election's standing, as the ledger weighs it.
fn standing(v: &handoff::View) -> Standing {
    match (v.is_master, v.confirmed_master()) {
        (true, true) => Standing::ConfirmedMaster,
        (true, false) => Standing::NewMaster,
        _ => Standing::NotMaster,
    }
}

/// The worker's side of every transition: state file, log line, hooks.
struct Shell {
    cfg: Config,
    timing: Timing,
    notifier: Notifier,
    transitions: u64,
    next_refresh: u64,
    state_file: statefile::Writer,
    /// The state file as last written; `since=` is the last transition's wall-clock second.
    written: Reading,
    /// The last transition's reason (told to fenced wrappers with `stop`).
    last_reason: &'static str,
}

impl Shell {
    /// Writes the state file anew; `sync`: a transition (fsync), else a refresh.
    fn write_state(&mut self, now: u64, role: Role, master: Option<&str>, sync: bool) {
        self.written.state = Some(role.state());
        self.written.master = master.map(str::to_string);
        self.stamp(now, sync);
    }

    /// Writes the state file with a fresh `mono_ms=` stamp, the role and master unchanged.
    fn stamp(&mut self, now: u64, sync: bool) {
        self.next_refresh = now + self.timing.refresh_ms();
        self.written.priority = Some(self.cfg.priority);
        self.written.valid_ms = Some(self.timing.valid_ms());
        self.written.mono_ms = Some(now);
        self.state_file.write(&self.written, sync);
    }
}

impl Sink for Shell {
    fn transition(&mut self, now: u64, t: &Transition<'_>) {
        self.transitions += 1;
        self.last_reason = t.reason;
        self.written.since = Some(wall_secs());
        let (f, to) = (t.from.state().as_str(), t.to.state().as_str());
        log::info!(
            "cluster={} state={f}=>{to} role={:?}=>{:?} reason={}",
            self.cfg.cluster_name,
            t.from,
            t.to,
            t.reason
        );
        log::debug!("transition at mono_ms={now}");
        self.write_state(now, t.to, t.master, true);
        let hook = match t.to {
            Role::Master => &self.cfg.notify_active,
            Role::Backup => &self.cfg.notify_passive,
            Role::Fault => &self.cfg.notify_fault,
        };
        if let Some(cmd) = hook.clone()
            && t.from != t.to
        {
            let env = vec![
                ("RCRON_STATE", to.to_string()),
                ("RCRON_ROLE", t.to.as_str().to_string()),
                ("RCRON_REASON", t.reason.to_string()),
                ("RCRON_CLUSTER", self.cfg.cluster_name.clone()),
            ];
            self.notifier.push(&cmd, env);
        }
        self.notifier.poll(now);
    }
}

pub struct Worker {
    backend: Box<dyn Backend>,
    shell: Shell,
    conf_path: PathBuf,
    tracker: Option<Tracker>,
    listener: UnixListener,
    clients: Vec<Client>,
    pending: Vec<Pending>,
    /// Control clients accepted so far (their order).
    accepted: u64,
    bad_requests: u64,
    /// Run and skip answers given to wrappers.
    decisions: [u64; 2],
    /// Jobs ended as wrappers reported them, in [`JobOutcome::ALL`]'s order.
    jobs: [u64; 4],
    clients_dropped: u64,
    supervised: bool,
    /// The supervisor's hang timer, re-armed at each beat.
    hang_timer: Option<HangTimer>,
    next_heartbeat: u64,
    /// The run ledger, or why there is none.
    ledger: Result<LedgerNode, Off>,
    /// Counts the ledgers opened (the loop registers a new one's socket).
    ledgers_opened: u64,
    /// Wrappers running a job under the backend's fence (etcd), told of every renewal.
    fenced: Vec<UnixStream>,
    /// The fence's deadline as last told to them.
    fence_told: Option<u64>,
}

/// Runs the worker until TERM or the supervisor goes away; returns the exit code.
/// Errors: the config is not one the daemon can run (`Failure::Config`), or the descriptors
/// it needs cannot be had (`Failure::Os`).
pub fn run(cfg: Config, conf_path: &Path, supervised: bool) -> Result<i32, Failure> {
    config_usable(&cfg, conf_path)?;
    let sfd =
        crate::os::sys::daemon_signal_fd().map_err(|e| Failure::Os(format!("signalfd: {e}")))?;
    for p in [&cfg.control_socket, &cfg.state_file] {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let listener = control::listen(&cfg.control_socket, cfg.control_group).map_err(|e| {
        Failure::Os(format!("control socket {}: {e}", cfg.control_socket.display()))
    })?;
    let hang_timer = if supervised { HangTimer::from_stdout() } else { None };
    // One descriptor per waiting wrapper, plus the daemon's own and the reading clients.
    crate::os::sys::raise_fd_limit((control::MAX_PENDING + control::MAX_CLIENTS + 64) as u64);
    // Before the etcd backend starts its threads: they inherit it.
    let hook_nice = crate::os::sys::nice();
    set_daemon_nice(cfg.daemon_nice);
    let now = monotonic_ms();
    let (backend, describe): (Box<dyn Backend>, String) = match cfg.election {
        Election::Vrrp => {
            let node = crate::vrrp::node::Node::new(&cfg, now)
                .map_err(|e| Failure::Os(format!("link probe socket: {e}")))?;
            let d = node.describe();
            (Box::new(node), d)
        }
        #[cfg(not(feature = "etcd"))]
        Election::Etcd => {
            return Err(Failure::Config("this rcron was built without the etcd backend".into()));
        }
        #[cfg(feature = "etcd")]
        Election::Etcd => {
            let node = crate::etcd::node::EtcdNode::new(&cfg).map_err(Failure::Os)?;
            let d = node.describe();
            (Box::new(node), d)
        }
    };
    log::info!("rcrond starting: cluster={} {describe}", cfg.cluster_name);
    let mut w = Worker {
        backend,
        tracker: Tracker::from_config(&cfg, now, hook_nice),
        shell: Shell {
            timing: Timing::new(&cfg),
            state_file: statefile::Writer::new(&cfg.state_file),
            cfg,
            notifier: Notifier::new(hook_nice),
            transitions: 0,
            next_refresh: now,
            written: Reading {
                since: Some(wall_secs()),
                pid: Some(std::process::id()),
                ..Reading::default()
            },
            last_reason: "start",
        },
        conf_path: conf_path.to_path_buf(),
        listener,
        clients: Vec::new(),
        pending: Vec::new(),
        accepted: 0,
        bad_requests: 0,
        decisions: [0; 2],
        jobs: [0; 4],
        clients_dropped: 0,
        supervised,
        hang_timer,
        next_heartbeat: now,
        ledger: Err(Off::Config(String::new())),
        ledgers_opened: 0,
        fenced: Vec::new(),
        fence_told: None,
    };
    // Before the election: a restarted node asks for the records before it may run anything.
    w.open_ledger(&w.shell.cfg.clone(), now);
    w.refresh_state(now, true);
    w.start_when_ready(now);
    let code = w.run_loop(&sfd);
    w.leave();
    code
}

/// Sets the daemon's niceness to `daemon_nice` (Linux: of the calling thread, and of the
/// threads it starts later). Refused (no CAP_SYS_NICE): logged, and the daemon runs on at the
/// niceness it has.
fn set_daemon_nice(level: i32) {
    if let Err(e) = crate::os::sys::set_nice(level) {
        log::warn!("daemon_nice {level}: {e}: running at niceness {}", crate::os::sys::nice());
    }
}

/// The daemon's own checks of a config (the keys an election needs, hooks nobody else can
/// change), as a failure naming every problem.
fn config_usable(cfg: &Config, path: &Path) -> Result<(), Failure> {
    crate::config::validate_daemon(cfg, path).map_err(Failure::Config)
}

enum Stop {
    Term,
    SupervisorGone,
}

impl Worker {
    fn run_loop(&mut self, sfd: &SignalFd) -> Result<i32, Failure> {
        // epoll, registered once per descriptor: a wake-up costs the ready descriptors only.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Failure::Os(format!("epoll: {e}")))?;
        let stdin = std::io::stdin();
        let add = |fd: BorrowedFd<'_>, token: u64, flags: EpollFlags| match epoll
            .add(fd, EpollEvent::new(flags, token))
        {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
            Err(e) => Err(Failure::Os(format!("epoll: {e}"))),
        };
        add(self.listener.as_fd(), LISTENER, EpollFlags::EPOLLIN)?;
        add(sfd.as_fd(), SIGNALS, EpollFlags::EPOLLIN)?;
        if self.supervised {
            add(stdin.as_fd(), SUPERVISOR, EpollFlags::EPOLLIN)?;
        }
        let mut ledger_registered = None;
        let mut generation = None;
        let mut events = [EpollEvent::empty(); 64];
        let mut ready: heapless::Vec<bool, 4> = heapless::Vec::new();
        loop {
            if generation != Some(self.backend.fds_generation()) {
                // New sockets (an old one's number may have come back): register them all.
                for fd in self.backend.fds().iter() {
                    // Edge-triggered (see `Backend::fds`): no second look per wake-up.
                    add(*fd, backend_token(*fd), EpollFlags::EPOLLIN | EpollFlags::EPOLLET)?;
                }
                if generation.is_some()
                    && let Ok(l) = &mut self.ledger
                {
                    // The interface changed under the raw socket: under the ledger's too.
                    l.reopen(&self.shell.cfg);
                }
                generation = Some(self.backend.fds_generation());
            }
            // A new ledger (reload) or a new socket in it: registered again, as a new socket
            // may have the old one's number.
            let ledger_now =
                (self.ledgers_opened, self.ledger.as_ref().map_or(0, |l| l.generation()));
            if ledger_registered != Some(ledger_now) {
                if let Ok(l) = &self.ledger {
                    add(l.fd(), LEDGER, EpollFlags::EPOLLIN)?;
                }
                ledger_registered = Some(ledger_now);
            }
            let now = monotonic_ms();
            let timeout = self.next_wakeup(now).saturating_sub(now).min(60_000) as u16;
            let (n, failed) = match epoll.wait(&mut events, EpollTimeout::from(timeout)) {
                Ok(n) => (n, false),
                Err(_) => (0, true),
            };
            // A failed wait reads everything, as poll's callers do: nothing is missed.
            let is = |token: u64| failed || events[..n].iter().any(|e| e.data() == token);
            ready.clear();
            for fd in self.backend.fds().iter() {
                let _ = ready.push(is(backend_token(*fd)));
            }
            let (listener, signals, ledger) = (is(LISTENER), is(SIGNALS), is(LEDGER));
            let supervisor_gone = self.supervised && !failed && is(SUPERVISOR);
            let client_data = failed || events[..n].iter().any(|e| e.data() >= CLIENT);
            let now = monotonic_ms();
            self.backend.poll(now, &ready, &mut self.shell);
            self.tell_fenced(now);
            self.poll_ledger(now, ledger);
            if signals && let Some(stop) = self.signals(now, sfd) {
                return Ok(self.stop_code(stop));
            }
            if supervisor_gone && self.supervisor_really_gone() {
                return Ok(self.stop_code(Stop::SupervisorGone));
            }
            self.tick(now);
            if listener || client_data || !self.clients.is_empty() {
                self.serve_clients(now, listener, &epoll);
            }
            if !self.pending.is_empty() {
                self.answer_pending(monotonic_ms());
            }
            // A held question is decided by the next advert: it must wake the loop.
            self.backend.set_attentive(now, !self.pending.is_empty(), &mut self.shell);
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

    /// The ledger's share of a wake-up: datagrams, whose adverts were heard, retries; a
    /// socket that could not be opened is tried again.
    fn poll_ledger(&mut self, now: u64, readable: bool) {
        if let Err(Off::Socket { retry_at, .. }) = &self.ledger
            && now >= *retry_at
        {
            self.open_ledger(&self.shell.cfg.clone(), now);
        }
        let Ok(l) = &mut self.ledger else { return };
        // Nothing of this runs per advert at rest: no datagram, no wrapper waiting, no retry.
        if readable {
            l.drain(clocks(now));
        }
        // While wrappers wait here, the master's records are watched (see `Ledger::watch`).
        let watched =
            if self.pending.is_empty() { None } else { heard_master(&*self.backend, now).0 };
        l.book.watch(now, watched);
        if l.book.poll_at().is_some_and(|t| now >= t) {
            l.poll(clocks(now), standing(&self.backend.handoff_view(now)));
        }
    }

    /// Opens the run ledger for `cfg` (the old socket closed first: the new one may want its
    /// port), or says why there is none.
    fn open_ledger(&mut self, cfg: &Config, now: u64) {
        let retry = matches!(self.ledger, Err(Off::Socket { .. }));
        self.ledger = Err(Off::Config(String::new()));
        self.ledger = LedgerNode::open(cfg, clocks(now));
        self.ledgers_opened += 1;
        match &self.ledger {
            Ok(_) if retry => log::info!("run ledger on"),
            Ok(_) => {}
            Err(Off::Socket { .. }) if retry => {}
            Err(_) if cfg.election == Election::Etcd => {}
            Err(off) => {
                log::info!("run ledger off ({}): slots are decided by advert timing", off.why())
            }
        }
    }

    fn next_wakeup(&self, now: u64) -> u64 {
        // Only an active file needs a fresh stamp: a passive node does not wake for it.
        let mut t = if self.backend.role() == Role::Master {
            self.shell.next_refresh + self.shell.timing.refresh_late_ms()
        } else {
            u64::MAX
        };
        if self.hang_timer.is_some() {
            // A beat rides on any wake-up once due, and wakes the worker by itself only a
            // whole heartbeat period later (half the hang limit after the last beat).
            t = t.min(self.next_heartbeat + self.shell.timing.heartbeat_ms());
        }
        if let Some(b) = self.backend.poll_at() {
            t = t.min(b);
        }
        if let Some(tr) = &self.tracker {
            t = t.min(tr.next_at());
            if tr.running() {
                t = t.min(now + 100);
            }
        }
        if self.shell.notifier.busy() {
            t = t.min(now + 100);
        }
        for c in &self.clients {
            t = t.min(c.deadline);
        }
        for p in &self.pending {
            t = t.min(p.deadline);
        }
        match &self.ledger {
            Ok(l) => t = t.min(l.book.poll_at().unwrap_or(u64::MAX)),
            Err(Off::Socket { retry_at, .. }) => t = t.min(*retry_at),
            Err(Off::Config(_)) => {}
        }
        if !self.pending.is_empty() {
            // A new master's hold ends: the questions it held can be decided.
            let v = self.backend.handoff_view(now);
            if let (true, Some(s)) = (v.is_master, v.master_since) {
                let confirmed = s + timing::confirm_ms(v.interval_ms);
                if confirmed > now {
                    t = t.min(confirmed);
                }
            }
        }
        t
    }

    /// Answers every waiting wrapper whose slot can be decided now.
    fn answer_pending(&mut self, now: u64) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let (cut, slot, arrived, deadline) = (p.cut, p.slot, p.arrived, p.deadline);
            let own = slot.and_then(|(job, slot)| self.backend.ask_slot(now, job, slot));
            let (d, ran_on) = match (own, slot, self.ledger_in_use(now, arrived)) {
                (Some(a), _, _) => backend_decision(a, now, deadline),
                (None, Some((job, slot)), true) => self.ledger_decision(now, job, slot, deadline),
                _ => (self.timing_decision(now, cut, deadline), None),
            };
            let (word, reason) = match d {
                Decision::Run(r) => ("run", r),
                Decision::Skip(r) => ("skip", r),
                Decision::Wait | Decision::SendAdvertFirst => {
                    i += 1;
                    continue;
                }
            };
            let p = self.pending.swap_remove(i);
            self.decisions[usize::from(word == "skip")] += 1;
            let state = self.backend.role().state().as_str();
            log::debug!(
                "handoff cut={cut} slot={slot:?} now={now}: {word} ({reason}) {:?}",
                self.backend.handoff_view(now)
            );
            let mut text = format!("decision={word}\nreason={reason}\nstate={state}\n");
            if let Some(runner) = ran_on {
                text.push_str(&format!("ran_on={runner}\n"));
            }
            match self.backend.fence(now).filter(|_| word == "run") {
                // The job runs only while the lease holds: the connection stays open and
                // carries every renewal (`until=`), or `stop` (control.rs, "fence").
                Some(f) => {
                    text.push_str(&format!(
                        "fencing_token={}\nuntil={}\ngrace_ms={}\n\n",
                        f.token, f.until, f.grace_ms
                    ));
                    let mut stream = p.stream;
                    if std::io::Write::write_all(&mut stream, text.as_bytes()).is_ok() {
                        self.fenced.push(stream);
                    }
                }
                None => control::reply(p.stream, &text),
            }
        }
        self.start_when_ready(now);
        self.update_fault(now);
    }

    /// True when slots are decided by the run ledger: it is on and no peer heard in VRRP
    /// lacks one.
    /// True when a question that arrived at `since` is decided by the run ledger: it is on,
    /// and the master this node hears was not found alive without one since.
    fn ledger_in_use(&self, now: u64, since: u64) -> bool {
        self.ledger.as_ref().is_ok_and(|l| self.ledger_fallback(l, now, since).is_none())
    }

    /// The master this node hears, when it is alive without a ledger (`Ledger::fallback`).
    fn ledger_fallback(&self, l: &LedgerNode, now: u64, since: u64) -> Option<std::net::Ipv4Addr> {
        let (master, heard_at) = heard_master(&*self.backend, now);
        l.book.fallback(master, heard_at, since)
    }

    /// The advert-timing rule (`handoff::decide`), for peers without a ledger.
    fn timing_decision(&mut self, now: u64, cut: u64, deadline: u64) -> Decision {
        let mut d = handoff::decide(&self.backend.handoff_view(now), cut, deadline);
        if d == Decision::SendAdvertFirst {
            self.backend.assert_master(now);
            d = handoff::decide(&self.backend.handoff_view(now), cut, deadline);
            if d == Decision::SendAdvertFirst {
                d = Decision::Skip("advert_not_sent");
            }
        }
        d
    }

    /// Tells the wrappers running jobs under the fence that it moved (a renewal), or that it
    /// is gone (`stop`: they stop their jobs at once); a wrapper that went away is dropped.
    fn tell_fenced(&mut self, now: u64) {
        let until = self.backend.fence(now).map(|f| f.until);
        if until == self.fence_told || self.fenced.is_empty() {
            self.fence_told = until;
            return;
        }
        self.fence_told = until;
        let line = match until {
            Some(t) => format!("until={t}\n"),
            // Still master: the deadline passed before the backend noticed.
            None if self.backend.role() == Role::Master => "stop reason=lease_deadline\n".into(),
            None => format!("stop reason={}\n", self.shell.last_reason),
        };
        // Non-blocking (accepted so): a wrapper that stopped reading is dropped, not waited for.
        self.fenced.retain_mut(|s| std::io::Write::write_all(s, line.as_bytes()).is_ok());
        if until.is_none() {
            self.fenced.clear();
        }
    }

    /// The run ledger's answer, and the node that holds the slot when it is another.
    fn ledger_decision(
        &mut self,
        now: u64,
        job: u64,
        slot: u64,
        deadline: u64,
    ) -> (Decision, Option<String>) {
        let standing = standing(&self.backend.handoff_view(now));
        let Ok(l) = &mut self.ledger else { return (Decision::Wait, None) };
        match l.ask(clocks(now), job, slot, standing) {
            Answer::Run(r) => (Decision::Run(r), None),
            Answer::Held { runner } if runner == l.book.own() => {
                (Decision::Skip("ran_here"), Some(runner.to_string()))
            }
            Answer::Held { runner } => (Decision::Skip("ran_on_peer"), Some(runner.to_string())),
            Answer::Wait if now >= deadline => (Decision::Skip("no_record_in_time"), None),
            Answer::Wait => (Decision::Wait, None),
        }
    }

    fn tick(&mut self, now: u64) {
        if let Some(v) = self.tracker.as_mut().and_then(|t| t.poll(now)) {
            self.on_verdict(now, v);
        }
        if now >= self.shell.next_refresh {
            self.refresh_due(now);
        }
        if let Some(timer) = &self.hang_timer
            && now >= self.next_heartbeat
        {
            let _ = timer.arm(self.shell.timing.hang_ms());
            self.next_heartbeat = now + self.shell.timing.heartbeat_ms();
        }
        self.shell.notifier.poll(now);
    }

    fn refresh_state(&mut self, now: u64, sync: bool) {
        let (role, master) = (self.backend.role(), self.backend.master());
        self.shell.write_state(now, role, master.as_deref(), sync);
    }

    /// The regular refresh: only an `active` file needs a fresh stamp (a stale one reads as
    /// passive, which a passive node's file says anyway); a passive node rewrites its file only
    /// when its content changes (another master).
    fn refresh_due(&mut self, now: u64) {
        let (role, master) = (self.backend.role(), self.backend.master());
        if master.as_deref() != self.shell.written.master.as_deref() {
            self.shell.write_state(now, role, master.as_deref(), false);
        } else if role == Role::Master {
            self.shell.stamp(now, false);
        } else {
            self.shell.next_refresh = now + self.shell.timing.refresh_ms();
        }
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
        if self.backend.started()
            || self.tracker.as_ref().is_some_and(|t| t.verdict() == Verdict::Unknown)
        {
            return;
        }
        let fault = self.tracker_fault();
        self.backend.start(now, fault, &mut self.shell);
    }

    fn tracker_fault(&self) -> bool {
        self.tracker.as_ref().is_some_and(|t| t.fault())
    }

    fn update_fault(&mut self, now: u64) {
        let fault = self.tracker_fault();
        self.backend.set_fault(now, fault, &mut self.shell);
    }

    /// Returns `Some` when the loop must stop.
    fn signals(&mut self, now: u64, sfd: &SignalFd) -> Option<Stop> {
        let mut stop = None;
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => stop = Some(Stop::Term),
                Ok(Signal::SIGHUP) => self.reload(now),
                Ok(Signal::SIGUSR1) => {
                    for line in self.status(now).lines().lines() {
                        log::info!("status: {line}");
                    }
                }
                Ok(Signal::SIGCHLD) => {
                    self.shell.notifier.poll(now);
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
        let refuse = |e: &str| {
            for l in e.lines() {
                log::error!("reload refused, keeping the running config: {l}");
            }
        };
        let parsed = match crate::config::load_daemon(&self.conf_path) {
            Ok(p) => p,
            Err(e) => return refuse(&e),
        };
        for w in &parsed.warnings {
            log::warn!("config warning: {}:{}: {}", self.conf_path.display(), w.line, w.msg);
        }
        let cfg = parsed.config;
        if cfg.election != self.shell.cfg.election {
            return refuse("`election` changed: restart rcrond to change the backend");
        }
        // A new or changed check starts unknown, which holds the node in fault until it passes
        // (keepalived: a script not yet run holds the instance); an unchanged one keeps its
        // verdict.
        if !self.tracker.as_ref().is_some_and(|t| t.same_as(&cfg)) {
            // At the niceness the daemon was started with, as its hooks.
            let nice = self.shell.notifier.nice();
            self.tracker = Tracker::from_config(&cfg, now, nice);
            // Held before the new settings apply: a new priority of 255 must not make a node
            // master whose new check has not passed.
            self.update_fault(now);
        }
        if cfg.daemon_nice != self.shell.cfg.daemon_nice {
            // The election loop's thread; the etcd backend's keep the value they started with.
            set_daemon_nice(cfg.daemon_nice);
        }
        self.shell.timing = Timing::new(&cfg);
        // The hang limit may have changed: beat now, with the new one.
        self.next_heartbeat = now;
        if cfg.state_file != self.shell.cfg.state_file {
            // The old file must not go on saying `active` to whoever still reads it.
            statefile::store_passive(&self.shell.cfg.state_file);
            self.shell.state_file = statefile::Writer::new(&cfg.state_file);
        }
        let c = &self.shell.cfg;
        let reopen = (c.run_ledger, c.ledger_port, c.unicast_src_ip, &c.interface)
            != (cfg.run_ledger, cfg.ledger_port, cfg.unicast_src_ip, &cfg.interface)
            || c.unicast_peers.is_empty() != cfg.unicast_peers.is_empty();
        match (&mut self.ledger, cfg.unicast_src_ip) {
            (Ok(l), Some(src)) if !reopen => l.book.reload(ledger::node::params(&cfg, src)),
            _ if !reopen => {}
            _ => self.open_ledger(&cfg, now),
        }
        self.shell.cfg = cfg.clone();
        self.backend.reload(now, &cfg, &mut self.shell);
        self.start_when_ready(now);
        self.update_fault(now);
        log::info!("config reloaded from {}", self.conf_path.display());
        self.refresh_state(now, true);
    }

    /// The `--status` answer: the worker's fields, then the backend's.
    fn status(&self, now: u64) -> Kv {
        let mut kv = Kv::default();
        let role = self.backend.role();
        kv.put("state", role.state().as_str());
        kv.put("role", role.as_str());
        kv.put("cluster", &self.shell.cfg.cluster_name);
        let track = self.tracker.as_ref().map(|t| t.verdict());
        let fault =
            role == Role::Fault || self.backend.fault_reason().is_some() || self.tracker_fault();
        kv.put("fault", if fault { "yes" } else { "no" });
        let why = match (self.backend.fault_reason(), track) {
            (Some(w), _) => w,
            (None, Some(Verdict::Failing)) => "track_script failing",
            (None, Some(Verdict::Unknown)) => "track_script not yet run",
            _ => "",
        };
        kv.put("fault_reason", why);
        kv.put("since", self.shell.written.since.unwrap_or(0));
        kv.put("transitions", self.shell.transitions);
        kv.put("control_bad_requests", self.bad_requests);
        kv.put("control_clients_dropped", self.clients_dropped);
        kv.put("handoff_waiting", self.pending.len());
        kv.put("decisions_run", self.decisions[0]);
        kv.put("decisions_skip", self.decisions[1]);
        for (o, n) in JobOutcome::ALL.iter().zip(self.jobs) {
            kv.put_suffixed("jobs_", o.as_str(), n);
        }
        match &self.ledger {
            _ if self.shell.cfg.election == Election::Etcd => {
                kv.put("ledger", "etcd");
                kv.put("ledger_reason", "the records are etcd keys");
            }
            Ok(l) => match self.ledger_fallback(l, now, 0) {
                None => {
                    kv.put("ledger", "on");
                    kv.put("ledger_reason", "");
                }
                Some(peer) => {
                    kv.put("ledger", "fallback");
                    kv.put(
                        "ledger_reason",
                        format_args!(
                            "peer {peer} does not answer on ledger_port {} (no run ledger, \
                             or another ledger_port): advert timing",
                            self.shell.cfg.ledger_port
                        ),
                    );
                }
            },
            Err(off) => {
                kv.put("ledger", "off");
                kv.put("ledger_reason", format_args!("{}: advert timing", off.why()));
            }
        }
        if let Ok(l) = &self.ledger {
            kv.put("ledger_port", self.shell.cfg.ledger_port);
            l.status(&mut kv);
        }
        self.backend.status(now, &mut kv);
        kv.put("pid", std::process::id());
        kv
    }

    /// Accepts and reads clients. A client whose request is complete is never dropped: when
    /// the handoff table is full, accepting stops and newcomers wait in the listen backlog.
    /// Only clients that are still silent are dropped: past their deadline, or the oldest of
    /// them when [`control::MAX_CLIENTS`] are waiting.
    fn serve_clients(&mut self, now: u64, accept: bool, epoll: &Epoll) {
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
                    // Closing a client's stream takes it out of the epoll set by itself.
                    let token = EpollEvent::new(EpollFlags::EPOLLIN, CLIENT + c.seq);
                    if epoll.add(c.stream.as_fd(), token).is_err() {
                        continue;
                    }
                    if self.clients.len() >= control::MAX_CLIENTS {
                        // Full: the client connected longest ago has had the most time to speak.
                        let oldest = (0..self.clients.len()).min_by_key(|&i| self.clients[i].seq);
                        if let Some(oldest) = oldest {
                            self.clients_dropped += 1;
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
                    // It may wait for its decision, open: out of the set (its EOF would wake us).
                    let _ = epoll.delete(c.stream.as_fd());
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
                let wait = self.backend.handoff_wait_ms();
                let deadline =
                    cut_ms.max(now).saturating_add(wait).min(now + timing::MAX_HANDOFF_WAIT_MS);
                let stream = c.into_stream();
                self.pending.push(Pending {
                    stream,
                    cut: cut_ms,
                    slot: None,
                    arrived: now,
                    deadline,
                });
                return;
            }
            Some(Request::Slot { job, slot, cut_ms, at_once }) => {
                // With a ledger (even one that may fall back for this question once the
                // master is found without one) the record may come from a master whose cron
                // fires up to max_clock_offset later, or a failover may make this node master.
                // etcd's wait includes both already.
                let timing = &self.shell.timing;
                let (wait, cap) = (self.backend.handoff_wait_ms(), timing::MAX_HANDOFF_WAIT_MS);
                let (wait, cap) = match (self.shell.cfg.election, self.ledger.is_ok()) {
                    (Election::Etcd, _) => (wait, wait),
                    (Election::Vrrp, true) => {
                        (timing.ledger_wait_ms(wait), timing.ledger_wait_ms(cap))
                    }
                    (Election::Vrrp, false) => (wait, cap),
                };
                let deadline = match at_once && self.backend.role() != Role::Master {
                    // --no-wait on a node that does not lead: what it knows now decides.
                    true => now,
                    false => now.saturating_add(wait).min(now + cap),
                };
                let (stream, slot) = (c.into_stream(), Some((job, slot)));
                self.pending.push(Pending { stream, cut: cut_ms, slot, arrived: now, deadline });
                return;
            }
            Some(Request::Status(format)) => self.status(now).render(format),
            Some(Request::Job(o)) => {
                self.jobs[o as usize] += 1;
                "ok=1\n".to_string()
            }
            Some(Request::State) => format!("state={}\n", self.backend.role().state().as_str()),
            None => {
                self.bad_requests += 1;
                "error=bad request\n".to_string()
            }
        };
        c.answer(&text);
    }

    /// Leaving: the backend resigns, `passive` on disk, socket removed.
    fn leave(&mut self) {
        let now = monotonic_ms();
        self.backend.shutdown(now, &mut self.shell);
        // Fenced jobs hear why (`stop reason=shutdown`), not only the connection closing.
        self.tell_fenced(now);
        self.refresh_state(now, true);
        let _ = std::fs::remove_file(&self.shell.cfg.control_socket);
    }
}
