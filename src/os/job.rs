//! Running one job: spawn COMMAND with its argv (no shell; a file without `#!` runs with
//! `/bin/sh` as POSIX execvp does, on every build), in its own process group, and supervise it
//! until it ends.
//!
//! Owns: the job's process group. Guarantees: a `--timeout` SIGTERMs the whole group (so
//! background grandchildren too) and SIGKILLs it after the grace period; TERM, INT, HUP, QUIT,
//! USR1 and USR2 received by the wrapper are forwarded to the group, so nothing is orphaned;
//! the job starts with an empty signal mask.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::{Duration, Instant};

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// `--timeout` was hit (and the group was killed).
    TimedOut,
    /// Could not be started: exit 127 (not found) or 126 (not executable), with the reason.
    NotStarted(i32, String),
}

impl Outcome {
    /// The wrapper's exit code for this outcome (shared/interface.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) => *c,
            Outcome::Signaled(s) => 128 + s,
            Outcome::TimedOut => 124,
            Outcome::NotStarted(c, _) => *c,
        }
    }
}

/// The PATH a job gets when the wrapper's environment has none (glibc's execvp default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs `argv` to completion under the rules above, with `env` added to its environment.
pub fn run(
    argv: &[OsString],
    env: &[(&str, String)],
    timeout: Option<Duration>,
    kill_after: Duration,
) -> Outcome {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(s);
    }
    // Block before spawning, so a signal that arrives in between waits in the queue.
    let sfd = mask.thread_block().ok().and_then(|_| {
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok()
    });
    let env_path = std::env::var_os("PATH");
    let path = env_path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
    let spawned = crate::os::sys::spawn_posix(argv, &path, |cmd: &mut Command| {
        if env_path.is_none() {
            // glibc's execvp searches /bin:/usr/bin without a PATH, musl's also
            // /usr/local/bin: the job sees one PATH whatever the build.
            cmd.env("PATH", DEFAULT_PATH);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.process_group(0);
        crate::os::sys::unblock_signals_in_child(cmd);
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            return Outcome::NotStarted(code, e.to_string());
        }
    };
    let pgid = Pid::from_raw(child.id() as i32);
    let Some(sfd) = sfd else {
        // No signalfd (should not happen on Linux): plain wait, no forwarding or timeout.
        return status_outcome(child.wait().ok());
    };
    let start = Instant::now();
    let mut term_sent: Option<Instant> = None;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            if term_sent.is_some() {
                // The timeout's SIGTERM went to the group; make sure no member survives it.
                let _ = killpg(pgid, Signal::SIGKILL);
                return Outcome::TimedOut;
            }
            return status_outcome(Some(st));
        }
        let now = Instant::now();
        let deadline = match (term_sent, timeout) {
            (Some(t), _) => Some(t + kill_after),
            (None, Some(to)) => Some(start + to),
            (None, None) => None,
        };
        if let Some(d) = deadline
            && now >= d
        {
            if term_sent.is_none() {
                log::debug!("timeout: SIGTERM to process group {pgid}");
                let _ = killpg(pgid, Signal::SIGTERM);
                term_sent = Some(now);
            } else {
                log::debug!("grace period over: SIGKILL to process group {pgid}");
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Outcome::TimedOut;
            }
            continue;
        }
        let wait_ms = deadline.map(|d| d.saturating_duration_since(now).as_millis() + 1);
        let to = match wait_ms {
            Some(ms) => PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, to);
        drain(&sfd, pgid);
    }
}

/// Reads every pending signal; forwards all but SIGCHLD to the job's group.
fn drain(sfd: &SignalFd, pgid: Pid) {
    while let Ok(Some(info)) = sfd.read_signal() {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            log::debug!("forwarding {sig} to process group {pgid}");
            let _ = killpg(pgid, sig);
        }
    }
}

fn status_outcome(st: Option<std::process::ExitStatus>) -> Outcome {
    match st {
        Some(st) => match (st.code(), st.signal()) {
            (Some(c), _) => Outcome::Exited(c),
            (None, Some(s)) => Outcome::Signaled(s),
            _ => Outcome::Exited(1),
        },
        None => Outcome::Exited(1),
    }
}
