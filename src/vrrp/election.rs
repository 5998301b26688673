//! The VRRP election state machine (RFC 5798 section 6.4; RFC 3768 section 6.4 for v2), as a
//! pure component: time comes in as milliseconds of a monotonic clock, actions come out.
//!
//! Owns: the role (backup, master, fault), the master-down and advert timers, the learned
//! master and its advert interval. Guarantees: never reads a clock, never does I/O, never
//! panics; `poll_at()` says when it next needs `poll()`. A gap between two calls longer than
//! the master-down interval (the process was frozen) is treated as a restart of the election:
//! a frozen master steps down and re-checks the group before it can be master again.

use std::net::Ipv4Addr;

/// What the election needs to know about this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// 2 or 3.
    pub version: u8,
    /// 1..=255; 255 is the address owner.
    pub priority: u8,
    /// Our configured advert interval.
    pub advert_ms: u64,
    pub preempt: bool,
    pub preempt_delay_ms: u64,
    /// Our primary address: breaks ties between equal priorities (higher wins).
    pub own_ip: Ipv4Addr,
}

pub use crate::backend::Role;

/// Whether an advert from (`prio`, `src`) wins against a node with (`own_prio`, `own_ip`):
/// a higher priority, or the same priority and a higher primary address compared as
/// host-order integers (RFC 5798 6.4.3). The one place this rule is written.
pub fn outranks(prio: u8, src: Ipv4Addr, own_prio: u8, own_ip: Ipv4Addr) -> bool {
    (prio, u32::from(src)) > (own_prio, u32::from(own_ip))
}

/// Why a transition happened (logged as `reason=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Startup,
    /// Priority 255: the address owner takes over at once.
    Owner,
    /// No advert from a master for Master_Down_Interval.
    MasterDown,
    /// The master resigned (priority 0) and Skew_Time passed.
    MasterResigned,
    /// An advert with a higher priority (or equal priority and a higher address).
    HigherPriority,
    Fault,
    FaultCleared,
    /// The process was frozen for longer than Master_Down_Interval.
    Frozen,
    Shutdown,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::Owner => "owner",
            Reason::MasterDown => "master_down",
            Reason::MasterResigned => "master_resigned",
            Reason::HigherPriority => "higher_priority",
            Reason::Fault => "fault",
            Reason::FaultCleared => "fault_cleared",
            Reason::Frozen => "frozen",
            Reason::Shutdown => "shutdown",
        }
    }
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advert now with this priority (0: resigning).
    Send {
        priority: u8,
    },
    Transition {
        from: Role,
        to: Role,
        reason: Reason,
    },
}

pub type Actions = heapless::Vec<Action, 4>;

#[derive(Clone, Debug)]
pub struct Election {
    p: Params,
    role: Role,
    started: bool,
    /// Master_Adver_Interval: the master's interval (v3 learns it from adverts).
    master_adver_ms: u64,
    down_at: Option<u64>,
    adver_at: Option<u64>,
    /// While backup: when a lower-priority master was first seen (for `preempt_delay`).
    lower_seen: Option<u64>,
    /// The master as far as we know: (address, priority).
    master: Option<(Ipv4Addr, u8)>,
    /// When the last advert from the current master arrived.
    last_rx: Option<u64>,
    last_sent: Option<u64>,
}

impl Election {
    pub fn new(p: Params) -> Election {
        Election {
            p,
            role: Role::Backup,
            started: false,
            master_adver_ms: p.advert_ms,
            down_at: None,
            adver_at: None,
            lower_seen: None,
            master: None,
            last_rx: None,
            last_sent: None,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }
    /// The current master (ourselves when master), if known.
    pub fn master(&self) -> Option<(Ipv4Addr, u8)> {
        self.master
    }
    /// When the last advert from the current master arrived (not set while we are master).
    pub fn last_rx(&self) -> Option<u64> {
        self.last_rx
    }
    pub fn master_adver_ms(&self) -> u64 {
        self.master_adver_ms
    }

    /// While backup, the master whose adverts do nothing but reset the Master_Down_Timer as
    /// long as they repeat its last one (RFC 5798 6.4.2: its priority is above zero and at
    /// least ours, or preempt is off), so that the node may read them late, at their arrival
    /// times (`socket::Routine`). `None` as master, in fault, before an advert was heard, and
    /// while a lower-priority master is being preempted.
    pub fn quiet_master(&self) -> Option<Ipv4Addr> {
        match (self.started, self.role, self.master, self.last_rx) {
            (true, Role::Backup, Some((ip, prio)), Some(_))
                if prio > 0 && (prio >= self.p.priority || !self.p.preempt) =>
            {
                Some(ip)
            }
            _ => None,
        }
    }

    /// Skew_Time at the current Master_Adver_Interval (`timing::skew_ms`).
    pub fn skew_ms(&self) -> u64 {
        crate::timing::skew_ms(self.p.version, self.p.priority, self.master_adver_ms)
    }

    /// Master_Down_Interval at the current Master_Adver_Interval (`timing::master_down_ms`).
    pub fn master_down_ms(&self) -> u64 {
        crate::timing::master_down_ms(self.p.version, self.p.priority, self.master_adver_ms)
    }

    /// When `poll` must next be called.
    pub fn poll_at(&self) -> Option<u64> {
        match self.role {
            Role::Master => self.adver_at,
            Role::Backup => self.down_at,
            Role::Fault => None,
        }
    }

    /// Startup (RFC 5798 6.4.1).
    pub fn start(&mut self, now: u64) -> Actions {
        let mut a = Actions::new();
        self.started = true;
        if self.p.priority == 255 {
            self.become_master(now, Reason::Owner, &mut a);
        } else {
            self.become_backup(now, Reason::Startup, &mut a);
        }
        a
    }

    /// Startup with a check already failing (link down, track script failed): straight to
    /// Fault without advertising once, as keepalived enters FAULT at start.
    pub fn start_in_fault(&mut self) -> Actions {
        let mut a = Actions::new();
        self.started = true;
        self.clear_timers();
        self.master = None;
        self.transition(Role::Fault, Reason::Fault, &mut a);
        a
    }

    /// True once `start` or `start_in_fault` ran (and until `shutdown`).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Timers: Master_Down_Timer (backup) and Adver_Timer (master).
    pub fn poll(&mut self, now: u64) -> Actions {
        let mut a = Actions::new();
        if !self.started || self.frozen(now, &mut a) {
            return a;
        }
        match self.role {
            Role::Backup => {
                if self.down_at.is_some_and(|t| now >= t) {
                    let reason = if self.master.is_none() && self.last_rx.is_some() {
                        Reason::MasterResigned
                    } else {
                        Reason::MasterDown
                    };
                    self.become_master(now, reason, &mut a);
                }
            }
            Role::Master => {
                if self.adver_at.is_some_and(|t| now >= t) {
                    self.send(now, &mut a);
                }
            }
            Role::Fault => {}
        }
        a
    }

    /// An advert that passed every check (right VRID, version, peer, checksum, auth).
    /// `interval_ms` is the interval it carries.
    pub fn on_advert(&mut self, now: u64, src: Ipv4Addr, prio: u8, interval_ms: u64) -> Actions {
        let mut a = Actions::new();
        if !self.started {
            return a;
        }
        self.frozen(now, &mut a);
        match self.role {
            Role::Fault => {}
            // RFC 5798 6.4.2: Backup.
            Role::Backup => {
                if prio == 0 {
                    // The master resigns: take over after Skew_Time only.
                    self.master = None;
                    self.down_at = Some(now + self.skew_ms());
                } else if !self.p.preempt || prio >= self.p.priority || self.delaying(now) {
                    if prio >= self.p.priority {
                        self.lower_seen = None;
                    }
                    self.accept_master(now, src, prio, interval_ms);
                }
                // else: a lower priority with preempt on: discard, so our timer runs out.
            }
            // RFC 5798 6.4.3: Master.
            Role::Master => {
                let wins = outranks(prio, src, self.p.priority, self.p.own_ip);
                if prio == 0 {
                    self.answer(now, &mut a);
                } else if wins {
                    self.transition(Role::Backup, Reason::HigherPriority, &mut a);
                    self.adver_at = None;
                    self.accept_master(now, src, prio, interval_ms);
                } else {
                    // A lower priority: assert ourselves at once.
                    self.answer(now, &mut a);
                }
            }
        }
        a
    }

    /// The election interface (or a tracked one, or the track script) failed or recovered.
    pub fn set_fault(&mut self, now: u64, fault: bool) -> Actions {
        let mut a = Actions::new();
        if !self.started {
            return a;
        }
        match (fault, self.role) {
            (true, Role::Fault) | (false, Role::Backup | Role::Master) => {}
            (true, from) => {
                if from == Role::Master {
                    push(&mut a, Action::Send { priority: 0 });
                }
                self.transition(Role::Fault, Reason::Fault, &mut a);
                self.clear_timers();
                // Forgotten with the master: a later takeover is master_down, not a resignation.
                self.master = None;
                self.last_rx = None;
            }
            (false, Role::Fault) => {
                if self.p.priority == 255 {
                    self.become_master(now, Reason::FaultCleared, &mut a);
                } else {
                    self.become_backup(now, Reason::FaultCleared, &mut a);
                }
            }
        }
        a
    }

    /// Leaving: a master sends one advert with priority 0 (RFC 5798 6.4.3).
    pub fn shutdown(&mut self) -> Actions {
        let mut a = Actions::new();
        if self.role == Role::Master {
            push(&mut a, Action::Send { priority: 0 });
            self.transition(Role::Backup, Reason::Shutdown, &mut a);
        }
        self.clear_timers();
        self.started = false;
        a
    }

    /// New parameters (reload). A master stays master and advertises the new priority; a
    /// backup restarts its down timer with the new figures.
    pub fn reconfigure(&mut self, now: u64, p: Params) -> Actions {
        let mut a = Actions::new();
        self.p = p;
        if self.role != Role::Backup || !self.started {
            if self.role == Role::Master {
                self.master_adver_ms = p.advert_ms;
                self.master = Some((p.own_ip, p.priority));
            }
            return a;
        }
        if p.priority == 255 {
            self.become_master(now, Reason::Owner, &mut a);
        } else {
            self.down_at = Some(now + self.master_down_ms());
        }
        a
    }

    /// True while `preempt_delay` still holds a lower-priority master in place.
    fn delaying(&mut self, now: u64) -> bool {
        if self.p.preempt_delay_ms == 0 {
            return false;
        }
        let since = *self.lower_seen.get_or_insert(now);
        now.saturating_sub(since) < self.p.preempt_delay_ms
    }

    fn accept_master(&mut self, now: u64, src: Ipv4Addr, prio: u8, interval_ms: u64) {
        if self.p.version == 3 && interval_ms > 0 {
            self.master_adver_ms = interval_ms;
        }
        self.master = Some((src, prio));
        self.last_rx = Some(now);
        self.down_at = Some(now + self.master_down_ms());
    }

    /// A call later than the election's own deadline ([`Election::poll_at`], as the previous
    /// call left it) by more than Master_Down_Interval: the process was frozen. Peers may
    /// have elected someone else meanwhile, so start over as backup. Measured from the
    /// deadline, not from the previous call: a backup that hears nothing is rightly called
    /// only at its Master_Down_Timer, a whole interval after its last call.
    fn frozen(&mut self, now: u64, a: &mut Actions) -> bool {
        let late = self.poll_at().map_or(0, |t| now.saturating_sub(t));
        if self.started && self.role != Role::Fault && late > self.master_down_ms() {
            self.master = None;
            self.last_rx = None;
            self.become_backup(now, Reason::Frozen, a);
            return true;
        }
        false
    }

    fn become_master(&mut self, now: u64, reason: Reason, a: &mut Actions) {
        self.master_adver_ms = self.p.advert_ms;
        self.master = Some((self.p.own_ip, self.p.priority));
        self.last_rx = None;
        self.lower_seen = None;
        self.down_at = None;
        self.transition(Role::Master, reason, a);
        self.send(now, a);
    }

    fn become_backup(&mut self, now: u64, reason: Reason, a: &mut Actions) {
        self.master_adver_ms = self.p.advert_ms;
        self.adver_at = None;
        self.lower_seen = None;
        if self.role == Role::Master {
            self.master = None;
        }
        self.transition(Role::Backup, reason, a);
        self.down_at = Some(now + self.master_down_ms());
    }

    fn send(&mut self, now: u64, a: &mut Actions) {
        push(a, Action::Send { priority: self.p.priority });
        self.adver_at = Some(now + self.p.advert_ms);
        self.last_sent = Some(now);
    }

    /// An advert sent in answer to another one, at most one per tenth of an interval: a peer
    /// (or a looped-back copy of our own adverts) cannot drive us into a storm.
    fn answer(&mut self, now: u64, a: &mut Actions) {
        let gap = (self.p.advert_ms / 10).max(1);
        if self.last_sent.is_none_or(|t| now >= t + gap) {
            self.send(now, a);
        }
    }

    fn transition(&mut self, to: Role, reason: Reason, a: &mut Actions) {
        let from = self.role;
        self.role = to;
        if from != to || reason == Reason::Startup || reason == Reason::Frozen {
            push(a, Action::Transition { from, to, reason });
        }
    }

    fn clear_timers(&mut self) {
        self.down_at = None;
        self.adver_at = None;
    }
}

fn push(a: &mut Actions, act: Action) {
    // Capacity 4 holds the most any single event produces (transition + send).
    let _ = a.push(act);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const LOW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

    fn params(version: u8, priority: u8, advert_ms: u64) -> Params {
        Params { version, priority, advert_ms, preempt: true, preempt_delay_ms: 0, own_ip: ME }
    }

    fn sends(a: &Actions) -> Vec<u8> {
        a.iter()
            .filter_map(|x| match x {
                Action::Send { priority } => Some(*priority),
                _ => None,
            })
            .collect()
    }

    fn transitions(a: &Actions) -> Vec<(Role, Reason)> {
        a.iter()
            .filter_map(|x| match x {
                Action::Transition { to, reason, .. } => Some((*to, *reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn timers_follow_rfc_formulas() {
        // v2: Skew = (256-prio)/256 s; Master_Down = 3 * advert + Skew.
        let e = Election::new(params(2, 100, 1000));
        assert_eq!(e.skew_ms(), 609);
        assert_eq!(e.master_down_ms(), 3609);
        // v3: Skew = (256-prio) * MAI / 256.
        let e = Election::new(params(3, 100, 100));
        assert_eq!(e.skew_ms(), 60);
        assert_eq!(e.master_down_ms(), 360);
        let e = Election::new(params(3, 254, 10));
        assert_eq!(e.master_down_ms(), 30);
    }

    #[test]
    fn startup_backup_becomes_master_after_master_down_interval() {
        let mut e = Election::new(params(2, 100, 1000));
        let a = e.start(0);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::Startup)]);
        assert_eq!(e.poll_at(), Some(3609));
        assert!(e.poll(3608).is_empty());
        let a = e.poll(3609);
        assert_eq!(transitions(&a), [(Role::Master, Reason::MasterDown)]);
        assert_eq!(sends(&a), [100]);
        assert_eq!(e.poll_at(), Some(4609), "next advert one interval later");
    }

    #[test]
    fn priority_255_owner_is_master_at_once() {
        let mut e = Election::new(params(2, 255, 1000));
        let a = e.start(0);
        assert_eq!(transitions(&a), [(Role::Master, Reason::Owner)]);
        assert_eq!(sends(&a), [255]);
    }

    #[test]
    fn master_sends_an_advert_every_interval() {
        let mut e = Election::new(params(3, 255, 100));
        e.start(0);
        for k in 1..=5 {
            assert!(e.poll(k * 100 - 1).is_empty());
            assert_eq!(sends(&e.poll(k * 100)), [255]);
        }
    }

    #[test]
    fn backup_advert_with_higher_or_equal_priority_resets_the_down_timer() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        for t in [1000, 2000, 3000, 6000] {
            assert!(e.on_advert(t, HIGH, 150, 1000).is_empty());
            assert_eq!(e.poll_at(), Some(t + 3609));
        }
        assert_eq!(e.master(), Some((HIGH, 150)));
        assert_eq!(e.last_rx(), Some(6000));
        assert!(e.on_advert(7000, LOW, 100, 1000).is_empty(), "equal priority also resets");
        assert_eq!(e.poll_at(), Some(10609));
    }

    #[test]
    fn only_a_master_whose_repeats_just_reset_the_timer_is_quiet() {
        let mut e = Election::new(params(2, 100, 1000));
        assert_eq!(e.quiet_master(), None, "not started");
        e.start(0);
        assert_eq!(e.quiet_master(), None, "no advert heard yet");
        e.on_advert(1000, HIGH, 150, 1000);
        assert_eq!(e.quiet_master(), Some(HIGH));
        e.on_advert(2000, HIGH, 0, 1000);
        assert_eq!(e.quiet_master(), None, "a resigning master");
        e.on_advert(2100, LOW, 100, 1000);
        assert_eq!(e.quiet_master(), Some(LOW), "equal priority");
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.on_advert(1000, LOW, 50, 1000);
        assert_eq!(e.quiet_master(), None, "a lower priority, preempted");
        let mut e = Election::new(Params { preempt: false, ..params(2, 100, 1000) });
        e.start(0);
        e.on_advert(1000, LOW, 50, 1000);
        assert_eq!(e.quiet_master(), Some(LOW), "a lower priority, preempt off");
        let mut e = Election::new(params(2, 255, 1000));
        e.start(0);
        assert_eq!(e.quiet_master(), None, "master");
    }

    #[test]
    fn repeats_read_late_at_their_arrival_times_take_over_as_on_time() {
        // What the quiet socket relies on: a backup woken only at its deadlines, reading what
        // arrived since with the arrival times, takes over when one woken per advert does.
        let arrivals = [900, 1900, 2900, 3900, 4900, 5900];
        let mut on_time = Election::new(params(3, 100, 1000));
        on_time.start(0);
        for t in arrivals {
            assert!(on_time.on_advert(t, HIGH, 150, 1000).is_empty());
        }
        assert!(on_time.poll(5900 + 3609 - 1).is_empty());
        let taken = on_time.poll(5900 + 3609);
        assert_eq!(transitions(&taken), [(Role::Master, Reason::MasterDown)]);
        let mut late = Election::new(params(3, 100, 1000));
        late.start(0);
        let (mut next, mut wakes) = (0, 0);
        loop {
            let at = late.poll_at().expect("a backup has a deadline");
            while next < arrivals.len() && arrivals[next] <= at {
                assert!(late.on_advert(arrivals[next], HIGH, 150, 1000).is_empty());
                next += 1;
            }
            wakes += 1;
            let a = late.poll(at);
            if !a.is_empty() {
                assert_eq!((at, transitions(&a)), (5900 + 3609, transitions(&taken)));
                break;
            }
        }
        assert!(wakes <= 4, "{wakes} wake-ups for six adverts");
    }

    #[test]
    fn backup_ignores_lower_priority_with_preempt_and_takes_over() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.on_advert(1000, LOW, 50, 1000);
        assert_eq!(e.poll_at(), Some(3609), "lower priority advert is discarded");
        assert_eq!(transitions(&e.poll(3609)), [(Role::Master, Reason::MasterDown)]);
    }

    #[test]
    fn backup_without_preempt_accepts_a_lower_priority_master() {
        let mut e = Election::new(Params { preempt: false, ..params(2, 100, 1000) });
        e.start(0);
        for t in (1000..20000).step_by(1000) {
            e.on_advert(t, LOW, 50, 1000);
        }
        assert_eq!(e.role(), Role::Backup);
        assert_eq!(e.master(), Some((LOW, 50)));
    }

    #[test]
    fn preempt_delay_holds_a_lower_priority_master_in_place_for_the_delay() {
        let mut e = Election::new(Params { preempt_delay_ms: 5000, ..params(2, 100, 1000) });
        e.start(0);
        for t in (1000..=6000).step_by(1000) {
            e.on_advert(t, LOW, 50, 1000);
            assert_eq!(e.role(), Role::Backup);
        }
        // Advert at 6000 is past the 5 s delay (first seen at 1000): discarded, so the
        // timer set at 5000 runs out at 8609.
        assert_eq!(e.poll_at(), Some(5000 + 3609));
        assert_eq!(transitions(&e.poll(8609)), [(Role::Master, Reason::MasterDown)]);
    }

    #[test]
    fn priority_zero_advert_makes_backup_take_over_after_skew_only() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.on_advert(1000, HIGH, 150, 1000);
        e.on_advert(1500, HIGH, 0, 1000);
        assert_eq!(e.poll_at(), Some(1500 + 609));
        let a = e.poll(2109);
        assert_eq!(transitions(&a), [(Role::Master, Reason::MasterResigned)]);
    }

    #[test]
    fn master_answers_priority_zero_with_an_advert() {
        let mut e = Election::new(params(2, 255, 1000));
        e.start(0);
        let a = e.on_advert(500, LOW, 0, 1000);
        assert_eq!(sends(&a), [255]);
        assert_eq!(e.poll_at(), Some(1500));
    }

    #[test]
    fn answers_to_lower_priority_adverts_are_rate_limited() {
        let mut e = Election::new(params(3, 200, 100));
        e.start(0);
        let t = e.poll_at().unwrap();
        e.poll(t);
        let sent: usize =
            (1..=100).map(|k| sends(&e.on_advert(t + k / 10, LOW, 100, 100)).len()).sum();
        assert!(sent <= 2, "{sent} answers within 10 ms");
    }

    #[test]
    fn master_yields_to_higher_priority() {
        let mut e = Election::new(params(3, 100, 100));
        e.start(0);
        e.poll(360);
        assert_eq!(e.role(), Role::Master);
        let a = e.on_advert(400, LOW, 200, 100);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::HigherPriority)]);
        assert!(sends(&a).is_empty());
        assert_eq!(e.master(), Some((LOW, 200)));
    }

    #[test]
    fn master_tie_break_equal_priority_higher_address_wins() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.poll(3609);
        // Equal priority from a lower address: we stay master and assert ourselves.
        let a = e.on_advert(4000, LOW, 100, 1000);
        assert_eq!(e.role(), Role::Master);
        assert_eq!(sends(&a), [100]);
        // Equal priority from a higher address: we yield.
        let a = e.on_advert(4100, HIGH, 100, 1000);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::HigherPriority)]);
    }

    #[test]
    fn master_answers_lower_priority_with_an_advert_now() {
        let mut e = Election::new(params(2, 200, 1000));
        e.start(0);
        let t = e.poll_at().unwrap();
        e.poll(t);
        let a = e.on_advert(t + 100, LOW, 100, 1000);
        assert_eq!(sends(&a), [200]);
        assert_eq!(e.role(), Role::Master);
    }

    #[test]
    fn v3_backup_adopts_the_masters_interval() {
        let mut e = Election::new(params(3, 100, 100));
        e.start(0);
        e.on_advert(50, HIGH, 150, 20);
        assert_eq!(e.master_adver_ms(), 20);
        // 3 * 20 + (256-100)*20/256 = 60 + 12
        assert_eq!(e.poll_at(), Some(50 + 72));
    }

    #[test]
    fn v2_does_not_adopt_an_interval() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.on_advert(50, HIGH, 150, 2000);
        assert_eq!(e.master_adver_ms(), 1000);
    }

    #[test]
    fn fault_sends_priority_zero_when_master_and_recovers_as_backup() {
        let mut e = Election::new(params(2, 100, 1000));
        e.start(0);
        e.poll(3609);
        let a = e.set_fault(4000, true);
        assert_eq!(sends(&a), [0]);
        assert_eq!(transitions(&a), [(Role::Fault, Reason::Fault)]);
        assert_eq!(e.poll_at(), None);
        assert!(e.on_advert(4100, LOW, 50, 1000).is_empty(), "adverts ignored in fault");
        let a = e.set_fault(5000, false);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::FaultCleared)]);
        assert_eq!(e.poll_at(), Some(8609));
    }

    #[test]
    fn shutdown_of_a_master_sends_priority_zero() {
        let mut e = Election::new(params(2, 255, 1000));
        e.start(0);
        let a = e.shutdown();
        assert_eq!(sends(&a), [0]);
        assert_eq!(e.role(), Role::Backup);
        let mut b = Election::new(params(2, 100, 1000));
        b.start(0);
        assert!(sends(&b.shutdown()).is_empty(), "a backup leaves silently");
    }

    #[test]
    fn a_frozen_master_steps_down_and_rechecks_before_acting_again() {
        let mut e = Election::new(params(3, 200, 100));
        e.start(0);
        e.poll(321);
        assert_eq!(e.role(), Role::Master);
        e.poll(421);
        e.poll(500);
        // Frozen for 2 s (> Master_Down_Interval of about 0.36 s).
        let a = e.poll(2500);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::Frozen)]);
        assert!(sends(&a).is_empty(), "no advert as master after a freeze");
        // A peer took over meanwhile: its advert keeps us backup.
        e.on_advert(2550, HIGH, 150, 100);
        assert_eq!(e.role(), Role::Backup, "lower priority with preempt: discarded");
        // Nobody else: we take over again after a full Master_Down_Interval.
        let down = e.master_down_ms();
        assert_eq!(transitions(&e.poll(2500 + down)), [(Role::Master, Reason::MasterDown)]);
    }

    /// A backup that hears nothing more is called only at its Master_Down_Timer (no other
    /// wake-up in between), a little late as poll loops are: that is a takeover, not a freeze.
    #[test]
    fn a_backup_woken_only_by_its_down_timer_takes_over() {
        for (version, advert_ms) in [(2, 1000), (3, 100), (3, 10)] {
            let mut e = Election::new(params(version, 100, advert_ms));
            e.start(0);
            e.on_advert(100, HIGH, 150, advert_ms);
            let down = e.poll_at().unwrap_or(0);
            assert_eq!(down, 100 + e.master_down_ms());
            let a = e.poll(down + 2);
            assert_eq!(transitions(&a), [(Role::Master, Reason::MasterDown)], "v{version}");
        }
    }

    #[test]
    fn a_frozen_backup_does_not_take_over_on_its_stale_timer() {
        let mut e = Election::new(params(3, 100, 100));
        e.start(0);
        e.on_advert(100, HIGH, 150, 100);
        let a = e.poll(5000);
        assert_eq!(transitions(&a), [(Role::Backup, Reason::Frozen)]);
        assert_eq!(e.role(), Role::Backup);
        assert!(e.on_advert(5010, HIGH, 150, 100).is_empty());
        assert_eq!(e.role(), Role::Backup);
    }
}
