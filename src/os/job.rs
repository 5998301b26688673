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
    /// Stopped because the node's hold on leadership ended (etcd: [`Fence`]); the group was
    /// killed. The reason, as logged `reason=`: the daemon's transition reason sent with
    /// `stop` (`lease_not_renewed`, `track_script`, ...), `lease_deadline` (the fence's
    /// deadline passed with no renewal told) or `daemon_gone` (its connection closed).
    Fenced(String),
}

impl Outcome {
    /// The wrapper's exit code for this outcome (shared/interface.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) => *c,
            Outcome::Signaled(s) => 128 + s,
            Outcome::TimedOut => 124,
            Outcome::NotStarted(c, _) => *c,
            // EX_TEMPFAIL (sysexits.h): the job may be retried; another node now leads.
            Outcome::Fenced(_) => 75,
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

/// The daemon's hold on a job run under a lease (etcd): the job may run until `until`
/// (CLOCK_MONOTONIC ms), which the daemon moves on at every renewal (`until=MS` lines on
/// `conn`); at `until`, at `stop [reason=R]` or when the connection closes (the daemon
/// died), the group gets SIGTERM, and SIGKILL `grace` later.
pub struct Fence {
    pub conn: crate::control::FenceStream,
    pub until: u64,
    pub grace: Duration,
    /// Why the fence ended, once it has: see [`Outcome::Fenced`].
    pub ended: Option<String>,
}

impl Fence {
    /// Reads what the daemon sent; once the fence is gone (`stop`, EOF, garbage), sets
    /// `ended` and returns false.
    fn read(&mut self) -> bool {
        match self.read_lines() {
            Ok(()) => true,
            Err(why) => {
                self.ended = Some(why);
                false
            }
        }
    }

    fn read_lines(&mut self) -> Result<(), String> {
        use std::io::Read;
        let mut chunk = [0u8; 256];
        // The daemon writes `stop` and closes at once: its lines count before its EOF.
        let mut gone = false;
        loop {
            match self.conn.stream.read(&mut chunk) {
                Ok(0) => gone = true,
                Ok(n) => self.conn.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => gone = true,
            }
            if gone {
                break;
            }
            if self.conn.pending.len() > 4096 {
                return Err("daemon_garbage".into());
            }
        }
        while let Some(i) = self.conn.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.conn.pending.drain(..=i).collect();
            let line = std::str::from_utf8(&line[..i]).unwrap_or("");
            if let Some(t) = line.strip_prefix("until=").and_then(|t| t.parse().ok()) {
                self.until = t;
            } else if let Some(rest) = line.strip_prefix("stop") {
                let why = rest.trim_start().strip_prefix("reason=").unwrap_or("daemon_stopped");
                let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
                let ok = !why.is_empty() && why.len() <= 40 && why.chars().all(word);
                return Err(if ok { why.to_string() } else { "daemon_stopped".into() });
            } else {
                return Err("daemon_garbage".into());
            }
        }
        if gone { Err("daemon_gone".into()) } else { Ok(()) }
    }
}

/// Runs `argv` to completion under the rules above, with `env` added to its environment;
/// under `fence`, only while the fence holds.
pub fn run(
    argv: &[OsString],
    env: &[(&str, String)],
    timeout: Option<Duration>,
    kill_after: Duration,
    mut fence: Option<Fence>,
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
    let mut fenced = false;
    let stopped = |fenced: bool, fence: &Option<Fence>| match fence {
        Some(f) if fenced => Outcome::Fenced(f.ended.clone().unwrap_or_default()),
        _ => Outcome::TimedOut,
    };
    if let Some(f) = &fence {
        let _ = f.conn.stream.set_nonblocking(true);
    }
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            if term_sent.is_some() {
                // The SIGTERM went to the group; make sure no member survives it.
                let _ = killpg(pgid, Signal::SIGKILL);
                return stopped(fenced, &fence);
            }
            return status_outcome(Some(st));
        }
        let now = Instant::now();
        let fence_left = fence
            .as_ref()
            .map(|f| Duration::from_millis(f.until.saturating_sub(crate::os::sys::monotonic_ms())));
        if term_sent.is_none()
            && fence_left.is_some_and(|l| l.is_zero())
            && let Some(f) = &mut fence
        {
            let why = f.ended.get_or_insert_with(|| "lease_deadline".into());
            log::warn!("leadership ended ({why}): SIGTERM to process group {pgid}");
            let _ = killpg(pgid, Signal::SIGTERM);
            term_sent = Some(now);
            fenced = true;
        }
        let grace = match (&fence, fenced) {
            (Some(f), true) => f.grace.min(kill_after),
            _ => kill_after,
        };
        let deadline = match (term_sent, timeout, fence_left) {
            (Some(t), _, _) => Some(t + grace),
            (None, to, left) => {
                let a = to.map(|to| start + to);
                let b = left.map(|l| now + l);
                a.into_iter().chain(b).min()
            }
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
                return stopped(fenced, &fence);
            }
            continue;
        }
        let wait_ms = deadline.map(|d| d.saturating_duration_since(now).as_millis() + 1);
        let to = match wait_ms {
            Some(ms) => PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let conn_ready = match &fence {
            Some(f) if !fenced => {
                let mut fds = [
                    PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(f.conn.stream.as_fd(), PollFlags::POLLIN),
                ];
                let _ = poll(&mut fds, to);
                fds[1].any().unwrap_or(true)
            }
            _ => {
                let _ = poll(&mut [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)], to);
                false
            }
        };
        drain(&sfd, pgid);
        if conn_ready
            && let Some(f) = &mut fence
            && !f.read()
        {
            // `stop`, or the daemon is gone: nobody renews the lease any more.
            f.until = 0;
        }
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
