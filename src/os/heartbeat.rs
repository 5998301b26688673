//! The worker's heartbeat: a dead man's switch kept by the kernel.
//!
//! Owns: the hang timer, a one-shot CLOCK_MONOTONIC timerfd. The supervisor makes it, arms it
//! for the worker's start-up and hands it to the worker as its stdout; the worker re-arms it
//! at each beat ([`HangTimer::arm`], one system call, nobody woken). The timer fires only when
//! the worker stopped beating for a whole hang interval, so a supervisor with a healthy worker
//! never wakes. Guarantees: non-blocking; errors are returned or read as "not armed", never
//! panics.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

pub struct HangTimer {
    timer: TimerFd,
}

impl HangTimer {
    /// The supervisor's side: a new, disarmed timer (non-blocking, close-on-exec).
    pub fn new() -> std::io::Result<HangTimer> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags).map_err(std::io::Error::from)?;
        Ok(HangTimer { timer })
    }

    /// The worker's side: the timer its supervisor handed it as stdout; `None` when stdout is
    /// something else (a worker started by hand).
    pub fn from_stdout() -> Option<HangTimer> {
        let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        let timer = crate::os::sys::timerfd_from(fd);
        timer.get().is_ok().then_some(HangTimer { timer })
    }

    /// Fires `ms` milliseconds from now, unless armed again before.
    pub fn arm(&self, ms: u64) -> std::io::Result<()> {
        let at = Expiration::OneShot(TimeSpec::from_duration(Duration::from_millis(ms.max(1))));
        self.timer.set(at, TimerSetTimeFlags::empty()).map_err(std::io::Error::from)
    }

    /// Whether the timer is armed (it has not fired since it was last armed).
    pub fn armed(&self) -> bool {
        matches!(self.timer.get(), Ok(Some(_)))
    }

    /// Takes the news that the timer fired, if it did: true then (the descriptor was readable).
    pub fn fired(&self) -> bool {
        let mut count = [0u8; 8];
        matches!(nix::unistd::read(self.timer.as_fd(), &mut count), Ok(8))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.timer.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_fires_only_when_not_armed_again_in_time() {
        let t = HangTimer::new().unwrap();
        assert!(!t.armed() && !t.fired());
        t.arm(40).unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(!t.fired(), "re-armed every 20 ms: never fires");
            t.arm(40).unwrap();
        }
        assert!(t.armed());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!t.armed());
        assert!(t.fired());
        assert!(!t.fired(), "the news is taken once");
    }
}
