//! Every duration the configuration implies, in one place and one unit: milliseconds of
//! CLOCK_MONOTONIC.
//!
//! Owns: the RFC 5798 timer formulas (section 6.1) and the durations rcron derives from them
//! (a new master's hold, the handoff waits, the state file's refresh and validity, the
//! supervisor's heartbeat and hang limit). The config keeps the wire's unit (centiseconds);
//! it is converted here, once. Pure: no clock, no I/O, never panics.

use crate::config::Config;

/// Skew_Time (RFC 5798 6.1): v3 `(256 - priority) * Master_Adver_Interval / 256`; v2 (RFC
/// 3768 6.1) `(256 - priority) / 256` seconds, whatever the interval.
pub fn skew_ms(version: u8, priority: u8, master_adver_ms: u64) -> u64 {
    let k = 256 - priority as u64;
    if version == 2 { k * 1000 / 256 } else { k * master_adver_ms / 256 }
}

/// Master_Down_Interval (RFC 5798 6.1): `3 * Master_Adver_Interval + Skew_Time`.
pub fn master_down_ms(version: u8, priority: u8, master_adver_ms: u64) -> u64 {
    3 * master_adver_ms + skew_ms(version, priority, master_adver_ms)
}

/// How long a new master holds the role before it runs a job nobody else covered: three
/// advert intervals, so that a master it merely stopped hearing (lost adverts) has answered
/// its first advert (see `handoff.rs`).
pub fn confirm_ms(interval_ms: u64) -> u64 {
    3 * interval_ms
}

/// How long a slot's record is kept (the peers' run ledger and etcd's), from when it was
/// learned or written: every node's wrapper for a slot starts within one slot (cron's minute)
/// and the clock offset of the slot's start on the runner, and a passive one waits at most the
/// offset more; three offsets and two minutes cover both with room.
pub fn retention_ms(max_clock_offset_ms: u64) -> u64 {
    3 * max_clock_offset_ms + 120_000
}

/// Slack on top of Master_Down_Interval and the hold before a waiting wrapper is told to skip.
pub const HANDOFF_MARGIN_MS: u64 = 250;
/// A cut far in the past or future never holds a wrapper longer than this.
pub const MAX_HANDOFF_WAIT_MS: u64 = 15_000;
/// What a wrapper allows on top of the daemon's longest wait, for a daemon that was starved or
/// frozen when the question came.
pub const STARVED_MS: u64 = 1500;
/// How long a wrapper whose daemon died under it (connection refused on a socket left behind,
/// or closed without an answer) keeps asking again: a restart by rcron's supervisor (100 ms
/// back-off) or by init (systemd's `RestartSec` 100 ms) fits with room. A daemon stopped for
/// good costs the waiting job this long, then passive.
pub const DAEMON_RESTART_WAIT_MS: u64 = 5_000;

/// The durations of one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// 2 or 3.
    pub version: u8,
    pub priority: u8,
    /// Our advert interval (`advert_int`).
    pub advert_ms: u64,
    /// `preempt_delay`.
    pub preempt_delay_ms: u64,
    /// `track_interval`.
    pub track_interval_ms: u64,
    /// `max_clock_offset`.
    pub max_clock_offset_ms: u64,
    /// `etcd_lease_ttl`.
    pub etcd_lease_ttl_ms: u64,
    /// `election = etcd`: the state file's validity is bounded by the lease's active window.
    pub etcd: bool,
}

impl Timing {
    pub fn new(cfg: &Config) -> Timing {
        Timing {
            version: cfg.vrrp_version,
            priority: cfg.priority,
            advert_ms: cfg.advert_int_cs as u64 * 10,
            preempt_delay_ms: cfg.preempt_delay_cs as u64 * 10,
            track_interval_ms: cfg.track_interval_cs as u64 * 10,
            max_clock_offset_ms: cfg.max_clock_offset_s as u64 * 1000,
            etcd_lease_ttl_ms: cfg.etcd_lease_ttl_s as u64 * 1000,
            etcd: cfg.election == crate::config::Election::Etcd,
        }
    }

    /// The etcd leader's windows for the configured lease (see [`Lease`]).
    pub fn lease(&self) -> Lease {
        Lease { ttl_ms: self.etcd_lease_ttl_ms }
    }

    /// How long the daemon may hold a wrapper's question under the etcd backend, from its
    /// arrival: the leader's cron may fire the slot up to `max_clock_offset` after ours, or
    /// the leader may die just before recording it: etcd expires its lease one TTL after its
    /// last renewal, this node's next check of the leader key ([`Lease::renew_ms`]) notices at
    /// the latest one renewal period later, and its campaign and record take one more.
    pub fn etcd_wait_ms(&self) -> u64 {
        let lease = self.lease();
        self.max_clock_offset_ms + lease.ttl_ms + 2 * lease.renew_ms() + HANDOFF_MARGIN_MS
    }

    /// How long the wrapper waits for the daemon's answer under the etcd backend: the daemon's
    /// longest hold and [`STARVED_MS`].
    pub fn etcd_wrapper_bound_ms(&self) -> u64 {
        self.etcd_wait_ms() + STARVED_MS
    }

    /// Master_Down_Interval of this node while the master advertises at `master_adver_ms`.
    pub fn master_down_ms(&self, master_adver_ms: u64) -> u64 {
        master_down_ms(self.version, self.priority, master_adver_ms)
    }

    /// How long the daemon may hold a wrapper's question, from its arrival: a whole election
    /// (Master_Down_Interval), a new master's hold, and a margin.
    pub fn handoff_wait_ms(&self, master_adver_ms: u64, interval_ms: u64) -> u64 {
        self.master_down_ms(master_adver_ms) + confirm_ms(interval_ms) + HANDOFF_MARGIN_MS
    }

    /// How long the wrapper waits for the daemon's answer: the daemon's longest hold at our
    /// own interval, one more advert, and [`STARVED_MS`]. No answer by then: passive.
    pub fn wrapper_bound_ms(&self) -> u64 {
        self.handoff_wait_ms(self.advert_ms, self.advert_ms) + self.advert_ms + STARVED_MS
    }

    /// How long the daemon may hold a wrapper's question under the run ledger, from its
    /// arrival: the slot's record may come from a master whose clock is up to
    /// `max_clock_offset` behind ours (its cron fires the slot that much later), or a
    /// failover may make this node master (`handoff_wait_ms`: [`Timing::handoff_wait_ms`] at
    /// the intervals in force, or a cap).
    pub fn ledger_wait_ms(&self, handoff_wait_ms: u64) -> u64 {
        self.max_clock_offset_ms + handoff_wait_ms
    }

    /// How long the wrapper waits for the daemon's answer under the run ledger: the daemon's
    /// longest hold at our own interval, one more advert, and [`STARVED_MS`].
    pub fn ledger_wrapper_bound_ms(&self) -> u64 {
        let daemon = self.ledger_wait_ms(self.handoff_wait_ms(self.advert_ms, self.advert_ms));
        daemon + self.advert_ms + STARVED_MS
    }

    /// How long a copy of the state file stays valid (`valid_ms=`): three advert intervals,
    /// at least 0.3 s and at most 3 s. From 0.1 s up, not longer than three intervals: a frozen
    /// master's file reads as passive by the time a backup's Master_Down_Interval (three
    /// intervals and the skew) has made it master. Below 0.1 s the floor wins (a refresh every
    /// few ms would cost more than the adverts): a frozen master's file can still be trusted
    /// for up to 0.3 s after the takeover, by readers of the file only; rcron's wrapper asks
    /// the daemon. Under etcd, not longer than the lease's active window either: a frozen
    /// leader's file reads passive before etcd can let another node lead.
    pub fn valid_ms(&self) -> u64 {
        let v = 3 * self.advert_ms.clamp(100, 1000);
        if self.etcd { v.min(self.lease().active_ms()) } else { v }
    }

    /// When the master's state file is due for a fresh stamp: half its validity after the
    /// last. A due refresh rides on the next advert's wake-up (see [`Timing::refresh_late_ms`]),
    /// so at 1 s it happens every second advert and a reader sees a stamp at most two
    /// intervals old, one interval inside the validity.
    pub fn refresh_ms(&self) -> u64 {
        self.valid_ms() / 2
    }

    /// How late a due refresh may run: one advert interval (a third of the validity at most),
    /// so that it needs no wake-up of its own on a master, which wakes at every advert anyway.
    pub fn refresh_late_ms(&self) -> u64 {
        self.advert_ms.min(self.valid_ms() / 3)
    }

    /// How long the worker may go without a heartbeat before the supervisor counts it as
    /// hung: ten advert intervals, 1 to 10 s. Not shorter: a machine that stalls for a few
    /// hundred ms must not lose its worker. Readers are protected sooner anyway (the wrapper
    /// asks the worker; a state file not refreshed within `valid_ms` reads as passive).
    pub fn hang_ms(&self) -> u64 {
        (10 * self.advert_ms).clamp(1000, 10_000)
    }

    /// When the worker's next beat is due: a quarter of the hang limit after the last. A due
    /// beat rides on the next wake-up and forces one of its own only a period later (half the
    /// hang limit after the last beat), so a beat is never late by accident.
    pub fn heartbeat_ms(&self) -> u64 {
        self.hang_ms() / 4
    }
}

/// The etcd leader's windows for a lease of `ttl_ms` (the configured TTL, or the granted one
/// when etcd granted less), each counted from when a renewal was *sent*: etcd cannot expire
/// the lease before one TTL after it received that renewal, which is later (shared
/// interface.md, "etcd"; etcd's lease API: a keepalive resets the lease to its full TTL).
///
/// A leader renews every [`Lease::renew_ms`] (a sixth of the TTL), is active until
/// [`Lease::active_ms`] (half the TTL) after the last renewal that etcd answered was sent,
/// then SIGTERMs its jobs and SIGKILLs them [`Lease::grace_ms`] (a fifth) later: every job of
/// a leader that lost etcd is gone at 0.7 TTL, before any other node can hold the leader key.
/// Two renewals may fail in a row without a leader going passive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub ttl_ms: u64,
}

impl Lease {
    /// The renewal (keepalive) period, and each etcd request's timeout.
    pub fn renew_ms(&self) -> u64 {
        self.ttl_ms / 6
    }

    /// How long a leader stays active after sending a renewal that etcd answered.
    pub fn active_ms(&self) -> u64 {
        self.ttl_ms / 2
    }

    /// From SIGTERM to SIGKILL for the jobs of a leader whose active window ran out.
    pub fn grace_ms(&self) -> u64 {
        self.ttl_ms / 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(version: u8, priority: u8, advert_ms: u64) -> Timing {
        Timing {
            version,
            priority,
            advert_ms,
            preempt_delay_ms: 0,
            track_interval_ms: 1000,
            max_clock_offset_ms: 30_000,
            etcd_lease_ttl_ms: 10_000,
            etcd: false,
        }
    }

    /// RFC 3768 6.1 (v2: skew in seconds whatever the interval) and RFC 5798 6.1 (v3: skew
    /// scales with the master's interval); the worked figures of shared/vrrp-interop.md.
    #[test]
    fn skew_and_master_down_follow_rfc_5798_and_3768() {
        assert_eq!(skew_ms(2, 100, 1000), 609);
        assert_eq!(master_down_ms(2, 100, 1000), 3609);
        assert_eq!(skew_ms(2, 100, 3000), 609, "v2 skew does not scale with the interval");
        assert_eq!(skew_ms(3, 100, 100), 60);
        assert_eq!(master_down_ms(3, 100, 100), 360);
        assert_eq!(master_down_ms(3, 255, 10), 30);
        assert_eq!(skew_ms(3, 1, 4095 * 10), 255 * 40950 / 256);
    }

    #[test]
    fn config_units_are_converted_once() {
        let cfg = Config {
            advert_int_cs: 10,
            preempt_delay_cs: 250,
            track_interval_cs: 5,
            vrrp_version: 3,
            ..Config::default()
        };
        let t = Timing::new(&cfg);
        assert_eq!((t.advert_ms, t.preempt_delay_ms, t.track_interval_ms), (100, 2500, 50));
        assert_eq!((t.version, t.priority), (3, 100));
    }

    /// The wrapper waits longer than the daemon can hold it, whatever the interval.
    #[test]
    fn waits_nest_daemon_hold_inside_the_wrapper_bound() {
        for (v, adv) in [(2, 1000), (3, 100), (3, 10), (2, 255_000)] {
            let t = timing(v, 100, adv);
            let daemon = t.handoff_wait_ms(adv, adv);
            assert!(t.wrapper_bound_ms() > daemon, "{v} {adv}");
            assert_eq!(daemon, t.master_down_ms(adv) + 3 * adv + HANDOFF_MARGIN_MS);
            // Under the ledger: the clock offset allowance on top of both.
            let ledger = t.ledger_wait_ms(daemon);
            assert_eq!(ledger, 30_000 + daemon, "{v} {adv}");
            assert!(t.ledger_wrapper_bound_ms() > ledger, "{v} {adv}");
        }
        // The figure the wrapper used before it was derived here: 7 adverts + skew + margin.
        let t = timing(3, 100, 100);
        assert_eq!(t.wrapper_bound_ms(), 7 * 100 + 60 + HANDOFF_MARGIN_MS + STARVED_MS);
    }

    #[test]
    fn housekeeping_periods_are_bounded() {
        // The validity: three intervals, 0.3 s to 3 s; a refresh due at half of it and at the
        // latest an interval later (a third of it at most): always inside the validity.
        for (adv, valid, refresh, late) in [
            (10, 300, 150, 10),
            (100, 300, 150, 100),
            (1000, 3000, 1500, 1000),
            (5000, 3000, 1500, 1000),
        ] {
            let t = timing(2, 100, adv);
            assert_eq!((t.valid_ms(), t.refresh_ms(), t.refresh_late_ms()), (valid, refresh, late));
            assert!(t.refresh_ms() + t.refresh_late_ms() < t.valid_ms());
        }
        assert_eq!(timing(3, 100, 10).hang_ms(), 1000);
        assert_eq!(timing(2, 100, 5000).hang_ms(), 10_000);
        assert_eq!(timing(2, 100, 1000).heartbeat_ms(), 2500);
    }

    /// A leader's jobs are killed before etcd can expire its lease, with two renewals to spare.
    #[test]
    fn a_leaders_jobs_are_gone_before_its_lease_can_expire() {
        for ttl_s in [2, 10, 300] {
            let t = Timing { etcd_lease_ttl_ms: ttl_s * 1000, ..timing(3, 100, 1000) };
            let l = t.lease();
            assert!(l.active_ms() + l.grace_ms() < l.ttl_ms, "ttl {ttl_s}");
            assert!(3 * l.renew_ms() <= l.active_ms(), "ttl {ttl_s}");
            assert!(t.etcd_wait_ms() > l.ttl_ms + t.max_clock_offset_ms);
            assert!(t.etcd_wrapper_bound_ms() > t.etcd_wait_ms());
            let etcd = Timing { etcd: true, ..t };
            assert!(etcd.valid_ms() <= l.active_ms() && etcd.valid_ms() >= 300);
        }
        assert_eq!(timing(3, 100, 1000).lease().renew_ms(), 1666);
    }
}
