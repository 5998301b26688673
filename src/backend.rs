//! The seam between the daemon and an election backend: what the worker needs of "an
//! election", whichever protocol runs it (VRRP among the peers today, in `vrrp::node`).
//!
//! Owns: the words both sides use: [`Role`], [`Transition`], the [`Sink`] that takes
//! transitions, the [`Backend`] trait. Guarantees: a backend reports every change of role to
//! the sink at the moment it takes effect, in the order that keeps a group safe (leaving
//! master is reported before the peers can learn it; taking over after the first advert), so
//! the worker's state file, hooks and handoff answers follow it without knowing the protocol.

use crate::report::Kv;
use std::os::fd::BorrowedFd;

/// A node's role in the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Backup,
    Master,
    /// A check failed (link, tracked interface, track script): never master.
    Fault,
}

impl Role {
    /// The state-file word for this role: only a master is active.
    pub fn state(self) -> crate::config::State {
        match self {
            Role::Master => crate::config::State::Active,
            _ => crate::config::State::Passive,
        }
    }

    /// `backup`, `master` or `fault`, as `--status` and the logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Backup => "backup",
            Role::Master => "master",
            Role::Fault => "fault",
        }
    }
}

/// The master's name as the state file's `master=` gives it: an IPv4 address for VRRP, at
/// most 64 bytes for any backend.
pub type MasterName = heapless::String<64>;

/// A change of role (or a restart of it: `from == to` at startup and after a freeze).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition<'a> {
    pub from: Role,
    pub to: Role,
    /// Logged as `reason=`, handed to hooks as `RCRON_REASON`.
    pub reason: &'static str,
    /// The master as the backend knows it after the change (state file `master=`).
    pub master: Option<&'a str>,
}

/// A wrapper's answer for one slot, from a backend that keeps the slots' records itself
/// (etcd); the peers' run ledger (`ledger::book::Answer`) serves VRRP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotAnswer {
    /// This node recorded the slot: run, with this fencing token.
    Run { token: i64 },
    /// Recorded by `runner` (`here`: this node, earlier): skip.
    Held { runner: String, here: bool },
    /// Not decided yet; the reason the wrapper is told if its wait ends first:
    /// `etcd_unreachable` (the last request failed), `no_leader` (no leader key), else
    /// `no_record_in_time`.
    Wait(&'static str),
}

/// What keeps a leader's jobs running: while it is active, its fencing token, until when it
/// may act (CLOCK_MONOTONIC ms, moved on by every renewal) and the SIGTERM-to-SIGKILL grace
/// for its jobs once that passes (shared/interface.md, "etcd").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub token: i64,
    pub until: u64,
    pub grace_ms: u64,
}

/// Takes transitions as they happen; the worker writes the state file and queues hooks.
pub trait Sink {
    fn transition(&mut self, now: u64, t: &Transition<'_>);
}

/// An election, as the worker drives it: descriptors and a deadline for its poll loop,
/// events in, transitions out (to a [`Sink`]), and what `--status` and the handoff rule need.
/// Time is CLOCK_MONOTONIC milliseconds, passed in.
pub trait Backend {
    /// The descriptors to wait on for reading, at most four, in a stable order. They are
    /// watched edge-triggered: [`Backend::poll`] reads a ready one until it would block, or
    /// keeps [`Backend::poll_at`] at 0 until it has.
    fn fds(&self) -> heapless::Vec<BorrowedFd<'_>, 4>;
    /// A number that changes whenever a descriptor of [`Backend::fds`] was opened anew (the
    /// worker then registers them again: a new socket may have an old one's number).
    fn fds_generation(&self) -> u64;
    /// When [`Backend::poll`] must run next without any descriptor being ready.
    fn poll_at(&self) -> Option<u64>;
    /// Reads what is ready (`ready[i]` for `fds()[i]`) and runs the timers that are due.
    fn poll(&mut self, now: u64, ready: &[bool], sink: &mut dyn Sink);
    /// Joins the election (straight to Fault when `fault`).
    fn start(&mut self, now: u64, fault: bool, sink: &mut dyn Sink);
    /// True once started.
    fn started(&self) -> bool;
    /// A fault outside the backend (track script, tracked interface) began or ended.
    fn set_fault(&mut self, now: u64, fault: bool, sink: &mut dyn Sink);
    /// Someone waits on the election's news as it arrives (a wrapper's question is held):
    /// a backend that batches news to save wake-ups (VRRP's quiet socket) stops until this is
    /// called with `false`.
    fn set_attentive(&mut self, _now: u64, _attentive: bool, _sink: &mut dyn Sink) {}
    /// Why the backend itself cannot take part (its link is gone, ...), if so.
    fn fault_reason(&self) -> Option<&str>;
    /// Leaves the election cleanly (a master hands over at once).
    fn shutdown(&mut self, now: u64, sink: &mut dyn Sink);
    /// Takes a new, validated configuration.
    fn reload(&mut self, now: u64, cfg: &crate::config::Config, sink: &mut dyn Sink);
    fn role(&self) -> Role;
    /// The master as far as this node knows (for the state file); no allocation, as the
    /// worker asks at every refresh.
    fn master(&self) -> Option<MasterName>;
    /// What the handoff rule needs at `now`.
    fn handoff_view(&self, now: u64) -> crate::handoff::View;
    /// Makes this master's presence known now (the handoff rule asks before it runs a job).
    fn assert_master(&mut self, now: u64);
    /// How long a wrapper's question may wait for a decision, from its arrival.
    fn handoff_wait_ms(&self) -> u64;
    /// The backend's own `--status` fields.
    fn status(&self, now: u64, out: &mut Kv);
    /// The slot's answer when this backend keeps the records itself (etcd); `None`: the
    /// peers' run ledger or the advert timing decides.
    fn ask_slot(&mut self, _now: u64, _job: u64, _slot: u64) -> Option<SlotAnswer> {
        None
    }
    /// While this node may run jobs under a lease that can be lost (etcd), what bounds them.
    fn fence(&self, _now: u64) -> Option<Fence> {
        None
    }
}
