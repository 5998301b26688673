//! The worker's heartbeat, over the pipe that is its stdout and the supervisor's reading end.
//!
//! Owns: the format. A beat is the worker's CLOCK_MONOTONIC milliseconds when it beat
//! ([`crate::os::sys::monotonic_ms`], one clock for both processes), 8 bytes in native order;
//! a pipe write of 8 bytes is atomic, so only whole beats arrive. The supervisor does not wake
//! for each beat: it reads the waiting ones at its hang deadline and judges the latest stamp.
//! Guarantees: both ends non-blocking (a frozen supervisor never blocks the worker); errors
//! are returned, never panics.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(fl));
    }
}

/// The worker's side: one beat stamped `now` on stdout. A full pipe (a supervisor that is not
/// reading) drops the beat.
pub fn beat(now: u64) {
    let _ = nix::unistd::write(std::io::stdout(), &now.to_ne_bytes());
}

/// The supervisor's side: reads every beat waiting in `pipe` (non-blocking). The latest stamp,
/// `None` when none is waiting; `Err` at end of file (the worker is exiting).
pub fn latest(pipe: &mut (impl Read + AsFd)) -> Result<Option<u64>, ()> {
    let mut latest = None;
    let mut b = [0u8; 256];
    loop {
        match pipe.read(&mut b) {
            Ok(0) => return Err(()),
            Ok(n) => {
                if let Some(c) = b[..n].rchunks_exact(8).next() {
                    let mut stamp = [0u8; 8];
                    stamp.copy_from_slice(c);
                    latest = Some(u64::from_ne_bytes(stamp));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(latest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_supervisor_reads_the_latest_stamp_then_end_of_file() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let (mut r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
        set_nonblocking(r.as_fd());
        assert_eq!(latest(&mut r), Ok(None));
        for t in [1000u64, 1250, 1500] {
            w.write_all(&t.to_ne_bytes()).unwrap();
        }
        assert_eq!(latest(&mut r), Ok(Some(1500)));
        assert_eq!(latest(&mut r), Ok(None));
        // More beats than one read takes (32 per 256 bytes).
        for t in 0..100u64 {
            w.write_all(&(5000 + t).to_ne_bytes()).unwrap();
        }
        assert_eq!(latest(&mut r), Ok(Some(5099)));
        drop(w);
        assert_eq!(latest(&mut r), Err(()));
    }
}
