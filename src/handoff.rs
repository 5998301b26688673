//! The run/skip decision for one scheduled job across a failover: the rule that makes a job
//! run on exactly one node while the network between the nodes works.
//!
//! Owns: the decision, as a pure function of what the daemon saw. Guarantees: no I/O, no
//! clock, never panics.
//!
//! The slot's cut `c` is the start of the wall-clock second in which the wrapper started (cron
//! fires every node's wrapper at the same moment; the start of that second is a moment all
//! nodes agree on). The node that was master at `c` runs the job; every other node skips it.
//! A node knows it was master at `c` when it was master then and has sent an advert at or
//! after `c` as master (it sends one at once if needed): that advert is what the others see.
//! A backup skips once an advert (priority > 0) sent by a master arrived at or after `c`:
//! that master was alive after the cut and so runs it. A backup without such proof waits;
//! if it becomes master itself (and holds the role for three advert intervals, so that a
//! master it merely lost a few adverts from can answer), no master was alive after the cut:
//! it runs. A new master that was master at the cut holds on for the same time.
//! Otherwise, at the deadline, it skips.
//!
//! Two nodes can both hold the master role for a moment when a higher-priority node takes
//! over (preemption): from its first advert until the old master has read it. When that
//! moment straddles the cut, the higher-priority node runs: a node that becomes master at most
//! one advert interval (the grace) after the cut counts as master at the cut, and a master
//! that hears an outranking master within the grace (plus a few ms of transit) after the cut
//! steps aside for this slot.

/// What the daemon knows at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub now: u64,
    pub is_master: bool,
    /// When this node last became master.
    pub master_since: Option<u64>,
    /// When this node last stopped being master (None while master or never master).
    pub master_until: Option<u64>,
    /// When this node last sent an advert with priority > 0 as master, successfully.
    pub last_master_tx: Option<u64>,
    /// When an advert with priority > 0 from a peer last arrived.
    pub last_proof_rx: Option<u64>,
    /// When an advert from a peer that outranks this node (higher priority, or equal priority
    /// and higher address) last arrived.
    pub last_superior_rx: Option<u64>,
    /// The advert interval in force (the master's, for v3).
    pub interval_ms: u64,
    /// This node became master by preempting a lower-priority master that was still sending
    /// (not after a crash or a resignation).
    pub preempted: bool,
}

impl View {
    /// Master, held for the new master's hold ([`crate::timing::confirm_ms`]: a master it
    /// merely lost a few adverts from has answered by then), and no outranking master heard
    /// within the last interval (plus transit): the run ledger claims slots only then.
    pub fn confirmed_master(&self) -> bool {
        let held = self.master_since.map_or(0, |s| self.now.saturating_sub(s));
        let recent = self.interval_ms + TRANSIT_MS;
        self.is_master
            && held >= crate::timing::confirm_ms(self.interval_ms)
            && self.last_superior_rx.is_none_or(|t| self.now.saturating_sub(t) > recent)
    }
}

/// What the node has seen that the rule needs, kept current by three events: its own
/// transitions, adverts it received, adverts it sent. The backend owns one and turns it into
/// a [`View`] when a question is asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    master_since: Option<u64>,
    master_until: Option<u64>,
    last_master_tx: Option<u64>,
    last_proof_rx: Option<u64>,
    last_superior_rx: Option<u64>,
    preempted: bool,
}

impl Facts {
    /// This node became master, or stopped being master. `took_over`: it became master
    /// because it stopped hearing the master (Master_Down_Interval ran out); `interval_ms`:
    /// the advert interval in force. When a master was still proving itself within two
    /// intervals, the takeover was a preemption of a live lower-priority master.
    pub fn on_transition(
        &mut self,
        now: u64,
        was_master: bool,
        is_master: bool,
        took_over: bool,
        interval_ms: u64,
    ) {
        if is_master && !was_master {
            self.master_since = Some(now);
            self.master_until = None;
            self.preempted = took_over
                && self.last_proof_rx.is_some_and(|t| now.saturating_sub(t) <= 2 * interval_ms);
        } else if was_master && !is_master {
            self.master_until = Some(now);
        }
    }

    /// An advert from a peer passed every check. Only a node that holds itself master sends
    /// adverts with priority > 0: proof that a master was alive now. `outranks_us`: the
    /// sender would win against this node (RFC 5798 6.4.3).
    pub fn on_advert_received(&mut self, now: u64, priority: u8, outranks_us: bool) {
        if priority > 0 {
            self.last_proof_rx = Some(now);
        }
        if outranks_us {
            self.last_superior_rx = Some(now);
        }
    }

    /// This node sent an advert; `as_master`: with priority > 0 while master.
    pub fn on_advert_sent(&mut self, now: u64, as_master: bool) {
        if as_master {
            self.last_master_tx = Some(now);
        }
    }

    /// The rule's input at `now`.
    pub fn view(&self, now: u64, is_master: bool, interval_ms: u64) -> View {
        View {
            now,
            is_master,
            master_since: self.master_since,
            master_until: self.master_until,
            last_master_tx: self.last_master_tx,
            last_proof_rx: self.last_proof_rx,
            last_superior_rx: self.last_superior_rx,
            interval_ms,
            preempted: self.preempted,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Run(&'static str),
    Skip(&'static str),
    /// Master at the cut but no advert sent since: send one now, then ask again.
    SendAdvertFirst,
    /// Not decided yet: ask again after the next event.
    Wait,
}

/// The decision for the slot whose cut is `cut`, and that must be decided by `deadline`.
/// Transit and scheduling allowance on top of the grace, for an outranking master's advert.
pub const TRANSIT_MS: u64 = 5;

pub fn decide(v: &View, cut: u64, deadline: u64) -> Decision {
    let grace = v.interval_ms;
    let confirm = crate::timing::confirm_ms(v.interval_ms);
    let held = v.master_since.map_or(0, |s| v.now.saturating_sub(s));
    let superseded = v.last_superior_rx.is_some_and(|t| t >= cut && t <= cut + grace + TRANSIT_MS);
    let master_at_cut = !superseded
        && v.master_since.is_some_and(|s| s <= cut || (v.preempted && s <= cut + grace))
        && (v.is_master || v.master_until.is_some_and(|u| u > cut));
    let sent_after_cut = v.last_master_tx.is_some_and(|t| t >= cut);
    let proof = v.last_proof_rx.is_some_and(|t| t >= cut);
    if master_at_cut {
        if v.is_master && held < confirm {
            // A new master, perhaps only because it lost a few adverts: hold on.
            return Decision::Wait;
        }
        if sent_after_cut {
            return Decision::Run("master_at_cut");
        }
        if v.is_master {
            return Decision::SendAdvertFirst;
        }
    }
    if proof {
        return Decision::Skip("master_alive_after_cut");
    }
    if v.is_master {
        // Became master after the cut, and no master proved alive since the cut.
        if held >= confirm {
            return Decision::Run("took_over");
        }
        return Decision::Wait;
    }
    if v.now >= deadline {
        return Decision::Skip("no_master_in_time");
    }
    Decision::Wait
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUT: u64 = 10_000;
    const DEADLINE: u64 = 11_000;

    fn master(since: u64) -> View {
        View {
            now: CUT + 5,
            is_master: true,
            master_since: Some(since),
            interval_ms: 100,
            ..View::default()
        }
    }

    fn backup() -> View {
        View { now: CUT + 5, interval_ms: 100, ..View::default() }
    }

    #[test]
    fn a_master_is_confirmed_after_its_hold_and_while_nobody_outranks_it() {
        let v = |since: u64, superior: Option<u64>| View {
            now: CUT,
            is_master: true,
            master_since: Some(since),
            last_superior_rx: superior,
            interval_ms: 100,
            ..View::default()
        };
        assert!(!v(CUT - 299, None).confirmed_master(), "inside the 3-interval hold");
        assert!(v(CUT - 300, None).confirmed_master());
        assert!(
            !v(CUT - 5000, Some(CUT - 105)).confirmed_master(),
            "an outranking advert just now"
        );
        assert!(v(CUT - 5000, Some(CUT - 106)).confirmed_master(), "one interval and transit ago");
        assert!(!View { is_master: false, ..v(CUT - 5000, None) }.confirmed_master());
    }

    #[test]
    fn master_at_the_cut_runs_once_its_advert_after_the_cut_is_out() {
        let v = master(5_000);
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::SendAdvertFirst);
        let v = View { last_master_tx: Some(CUT + 5), ..v };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Run("master_at_cut"));
        // An advert sent before the cut proves nothing to the backups.
        let v = View { last_master_tx: Some(CUT - 1), ..v };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::SendAdvertFirst);
    }

    #[test]
    fn a_backup_with_an_advert_after_the_cut_skips() {
        let v = View { last_proof_rx: Some(CUT), ..backup() };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
        let v = View { last_proof_rx: Some(CUT - 1), ..backup() };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Wait, "an advert before the cut");
    }

    #[test]
    fn a_backup_without_proof_waits_then_runs_if_it_takes_over() {
        assert_eq!(decide(&backup(), CUT, DEADLINE), Decision::Wait);
        let v = View { now: CUT + 600, ..master(CUT + 360) };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Wait, "holding for 3 intervals");
        let v = View { now: CUT + 660, ..master(CUT + 360) };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Run("took_over"));
    }

    #[test]
    fn a_master_that_took_over_just_before_the_cut_holds_on_before_running() {
        // Took over at CUT-50 (perhaps lost adverts only): it waits 3 intervals...
        let v = View { now: CUT + 5, last_master_tx: Some(CUT + 2), ..master(CUT - 50) };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Wait);
        // ...and the old master, still alive, outranks it meanwhile: it steps aside.
        let v = View {
            is_master: false,
            master_until: Some(CUT + 30),
            last_superior_rx: Some(CUT + 30),
            last_proof_rx: Some(CUT + 30),
            now: CUT + 30,
            ..v
        };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
        // Nobody answered in 3 intervals: it was the master at the cut.
        let v = View { now: CUT + 250, last_master_tx: Some(CUT + 200), ..master(CUT - 50) };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Run("master_at_cut"));
    }

    #[test]
    fn a_new_master_that_had_proof_of_the_old_one_skips() {
        let v = View { last_proof_rx: Some(CUT + 50), now: CUT + 900, ..master(CUT + 400) };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
    }

    #[test]
    fn a_master_preempted_after_the_cut_runs_if_it_had_announced_itself() {
        let v = View {
            is_master: false,
            master_since: Some(1_000),
            master_until: Some(CUT + 50),
            last_master_tx: Some(CUT + 10),
            last_proof_rx: Some(CUT + 50),
            ..backup()
        };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Run("master_at_cut"));
        // Preempted before it sent anything after the cut: the new master covers the slot.
        let v = View { last_master_tx: Some(CUT - 20), ..v };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
    }

    #[test]
    fn a_master_that_stepped_down_before_the_cut_is_not_master_at_the_cut() {
        let v = View {
            master_since: Some(1_000),
            master_until: Some(CUT - 1),
            last_master_tx: Some(CUT - 2),
            last_proof_rx: Some(CUT + 30),
            ..backup()
        };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
    }

    #[test]
    fn preemption_straddling_the_cut_lets_the_higher_priority_node_run() {
        // The new (higher) master became master just after the cut, within the grace.
        let new = View { last_proof_rx: Some(CUT + 20), now: CUT + 360, ..master(CUT + 50) };
        let new = View { last_master_tx: Some(CUT + 50), preempted: true, ..new };
        assert_eq!(decide(&new, CUT, DEADLINE), Decision::Run("master_at_cut"));
        // After a resignation or a crash the grace does not apply: the old master covered it.
        let after_resign = View { preempted: false, ..new };
        assert_eq!(decide(&after_resign, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
        // The old master heard it within the grace: it steps aside for this slot.
        let old = View {
            is_master: false,
            master_since: Some(1_000),
            master_until: Some(CUT + 51),
            last_master_tx: Some(CUT + 20),
            last_proof_rx: Some(CUT + 51),
            last_superior_rx: Some(CUT + 51),
            ..backup()
        };
        assert_eq!(decide(&old, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
        // A takeover long after the cut: the old master was the master at the cut.
        let old = View { master_until: Some(CUT + 500), last_superior_rx: Some(CUT + 500), ..old };
        assert_eq!(decide(&old, CUT, DEADLINE), Decision::Run("master_at_cut"));
        let late = View { last_proof_rx: Some(CUT + 20), now: CUT + 900, ..master(CUT + 499) };
        assert_eq!(decide(&late, CUT, DEADLINE), Decision::Skip("master_alive_after_cut"));
    }

    #[test]
    fn no_proof_and_no_takeover_by_the_deadline_skips() {
        let v = View { now: DEADLINE, ..backup() };
        assert_eq!(decide(&v, CUT, DEADLINE), Decision::Skip("no_master_in_time"));
    }

    /// The facts follow the three events, and the view carries them unchanged.
    #[test]
    fn facts_follow_transitions_and_adverts() {
        let mut f = Facts::default();
        f.on_advert_received(100, 150, true);
        f.on_advert_received(150, 0, false);
        f.on_advert_sent(160, false);
        let v = f.view(200, false, 100);
        assert_eq!(
            (v.last_proof_rx, v.last_superior_rx, v.last_master_tx),
            (Some(100), Some(100), None)
        );
        // Took over 150 ms after the last proof (within two intervals): a preemption.
        f.on_transition(250, false, true, true, 100);
        f.on_advert_sent(250, true);
        let v = f.view(260, true, 100);
        assert_eq!(
            (v.master_since, v.master_until, v.last_master_tx),
            (Some(250), None, Some(250))
        );
        assert!(v.preempted);
        f.on_transition(400, true, false, false, 100);
        assert_eq!(f.view(410, false, 100).master_until, Some(400));
        // Took over long after the last proof: a crash, not a preemption.
        f.on_transition(1000, false, true, true, 100);
        let v = f.view(1000, true, 100);
        assert!(!v.preempted);
        assert_eq!((v.master_since, v.master_until), (Some(1000), None));
        // Became master at startup (no takeover): never a preemption.
        let mut g = Facts::default();
        g.on_advert_received(0, 100, false);
        g.on_transition(10, false, true, false, 100);
        assert!(!g.view(10, true, 100).preempted);
    }
}
