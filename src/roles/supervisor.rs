//! The supervisor: the `rcron --daemon` process. It keeps the pid file, runs the election
//! worker (the same binary, re-executed) and restarts it when it dies or hangs, so no cron
//! shell monitor is needed.
//!
//! Owns: the pid file and the worker process. Guarantees: whenever the worker is gone or has
//! stopped sending heartbeats for [`hang_ms`], `passive` is written to the state file and
//! the configured virtual addresses are removed before anything else happens; restarts are
//! rate-limited (exponential back-off up to 30 s);
//! SIGTERM stops the worker (which resigns), writes `passive`, removes the pid file and the
//! control socket, and exits 0. If the supervisor itself dies, the worker sees its pipe close
//! and resigns too.

use crate::config::Config;
use crate::exit::{self, Failure};
use crate::os::heartbeat::HangTimer;
use crate::os::sys::monotonic_ms;
use crate::statefile;
use crate::timing::Timing;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the worker may go without a heartbeat before it counts as hung
/// (`Timing::hang_ms`).
fn hang_ms(cfg: &Config) -> u64 {
    Timing::new(cfg).hang_ms()
}

/// Passive on disk and no virtual address held: what this node must look like whenever no
/// worker runs (a crashed or hung worker may have been master).
fn go_passive(cfg: &Config) {
    if let Some(dir) = cfg.state_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    statefile::store_passive(&cfg.state_file);
    crate::vrrp::vips::release_configured(cfg, "no worker holds them now");
}

/// Extra time a new worker gets for its first heartbeat.
const STARTUP_GRACE_MS: u64 = 2000;

/// Daemonizes unless `foreground`, then supervises. Returns the exit code.
pub fn run(
    cfg: Config,
    conf_path: &Path,
    foreground: bool,
    log_stderr: bool,
) -> Result<i32, Failure> {
    crate::config::validate_daemon(&cfg, conf_path).map_err(Failure::Config)?;
    if !foreground {
        return detach(&cfg, conf_path);
    }
    if let Some(pid) = running_pid(&cfg) {
        return Err(Failure::NotStarted(format!(
            "already running as pid {pid} ({})",
            cfg.pid_file.display()
        )));
    }
    for p in [&cfg.pid_file, &cfg.state_file, &cfg.control_socket] {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let pid_text = format!("{}\n", std::process::id());
    if let Err(e) = crate::statefile::write_atomic(&cfg.pid_file, pid_text.as_bytes()) {
        return Err(Failure::CantCreate(format!("pid file: {e}")));
    }
    if std::env::var_os(DETACHED).is_some() {
        // Started: the starter stops reading our stderr now (see `detach`).
        crate::os::sys::stderr_to_null();
    }
    go_passive(&cfg);
    let mut last = cfg.clone();
    let code = supervise(&mut last, conf_path, log_stderr);
    go_passive(&last);
    let _ = std::fs::remove_file(&cfg.pid_file);
    let _ = std::fs::remove_file(&cfg.control_socket);
    code
}

/// The pid in the pid file, if that process still exists.
fn running_pid(cfg: &Config) -> Option<u32> {
    let text = std::fs::read_to_string(&cfg.pid_file).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.windows(5).any(|w| w == b"rcron"))
        .unwrap_or(true);
    (pid != std::process::id() && crate::os::sys::pid_alive(pid) && ours).then_some(pid)
}

/// Set in the environment of the daemon `detach` starts: once its pid file is written, it
/// points stderr at /dev/null.
const DETACHED: &str = "RCRON_DETACHED";

/// Starts `rcron --daemon --foreground` in a new session and waits until it has written its
/// pid file (exit 0) or died: then what it wrote to stderr (its error, its log lines) is
/// said here, so a start that fails is explained even where no syslog daemon runs.
fn detach(cfg: &Config, conf_path: &Path) -> Result<i32, Failure> {
    use std::io::Read;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Failure::Os(format!("cannot start the daemon: pipe: {e}")))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("rcrond")
        .args(["--daemon", "--foreground", "--conf"])
        .arg(conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write_end))
        .env(DETACHED, "1");
    crate::os::sys::new_session_in_child(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::Os(format!("cannot start the daemon (needs /proc/self/exe and /dev/null): {e}"))
    })?;
    // The write end went to the child with `cmd`; dropping `cmd` closes ours.
    drop(cmd);
    let mut said = std::fs::File::from(read_end);
    let _ = nix::fcntl::fcntl(&said, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    let mut text = Vec::new();
    let mut read_said = |text: &mut Vec<u8>| {
        let mut buf = [0u8; 4096];
        while text.len() < 16 * 1024 {
            match said.read(&mut buf) {
                Ok(n) if n > 0 => text.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    };
    let want = child.id();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        read_said(&mut text);
        if let Ok(Some(st)) = child.try_wait() {
            read_said(&mut text);
            let said = String::from_utf8_lossy(&text);
            let said = said.trim_end();
            let why =
                if said.is_empty() { "see syslog".into() } else { format!("it said:\n{said}") };
            return Err(Failure::NotStarted(format!("daemon exited at start ({st}); {why}")));
        }
        let pid = std::fs::read_to_string(&cfg.pid_file).ok().and_then(|s| s.trim().parse().ok());
        if pid == Some(want) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Failure::NotStarted(format!("daemon did not write {} in time", cfg.pid_file.display())))
}

/// Starts the worker: stdin a pipe whose end of file tells it this process is gone, stdout
/// the hang timer it re-arms at each beat.
fn spawn_worker(conf_path: &Path, foreground: bool, timer: &HangTimer) -> std::io::Result<Child> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("rcrond").arg("--worker");
    if foreground {
        cmd.arg("--foreground");
    }
    if log::log_enabled!(log::Level::Debug) {
        cmd.arg("-v");
    }
    cmd.arg("--conf")
        .arg(conf_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(timer.fd().try_clone_to_owned()?))
        .stderr(Stdio::inherit());
    crate::os::sys::unblock_signals_in_child(&mut cmd);
    cmd.spawn()
}

/// `cfg` follows the reloads the supervisor accepts, so the caller's clean-up at the end
/// uses the config last in force.
fn supervise(cfg: &mut Config, conf_path: &Path, log_stderr: bool) -> Result<i32, Failure> {
    let sfd =
        crate::os::sys::daemon_signal_fd().map_err(|e| Failure::Os(format!("signalfd: {e}")))?;
    let timer = HangTimer::new().map_err(|e| Failure::Os(format!("timerfd: {e}")))?;
    let mut backoff_ms: u64 = 0;
    let mut restarts: u64 = 0;
    loop {
        // Armed for the worker's start-up (its first beat may take a while on a loaded
        // machine); from then on the worker re-arms it at each beat.
        let _ = timer.arm(STARTUP_GRACE_MS + hang_ms(cfg));
        let mut child = spawn_worker(conf_path, log_stderr, &timer)
            .map_err(|e| Failure::Os(format!("cannot start the worker: {e}")))?;
        let started = monotonic_ms();
        let worker = Pid::from_raw(child.id() as i32);
        let mut stopping = false;
        let ended = loop {
            // Asleep until a signal (SIGCHLD included) or the hang timer: a healthy worker
            // keeps the timer from firing, and this process from waking.
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(timer.fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::NONE);
            let signalled = fds[0].revents().is_some_and(|r| !r.is_empty());
            while signalled && let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                        stopping = true;
                        let _ = kill(worker, Signal::SIGTERM);
                    }
                    Ok(Signal::SIGHUP) => {
                        // The worker's own test: a config it refuses is not taken here either.
                        let loaded = crate::config::load_daemon(conf_path);
                        match loaded {
                            Ok(p) => *cfg = p.config,
                            Err(e) => log::error!("reload refused (supervisor): {e}"),
                        }
                        let _ = kill(worker, Signal::SIGHUP);
                    }
                    Ok(Signal::SIGUSR1) => {
                        let _ = kill(worker, Signal::SIGUSR1);
                    }
                    _ => {}
                }
            }
            // SIGCHLD says the worker may have ended.
            if signalled && let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if stopping {
                // The worker resigns and exits; give it 5 s.
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(5) {
                    if let Ok(Some(st)) = child.try_wait() {
                        return Ok(if st.success() { 0 } else { st.code().unwrap_or(1) });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                log::warn!("worker did not stop in 5 s: killed");
                let _ = kill(worker, Signal::SIGKILL);
                let _ = child.wait();
                return Ok(0);
            }
            if timer.fired() {
                // Last chance: if this process was frozen together with the worker (SIGSTOP of
                // the whole daemon, a paused VM), the timer fired meanwhile and the worker
                // re-arms it as soon as it runs again.
                let grace = (hang_ms(cfg) / 2).min(500);
                std::thread::sleep(Duration::from_millis(grace));
                if timer.armed() {
                    continue;
                }
                go_passive(cfg);
                log::error!(
                    "worker {worker} stopped beating (its hang timer fired): hung; passive, killing it"
                );
                let _ = kill(worker, Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
        };
        if let Some(st) = ended {
            go_passive(cfg);
            let refused = matches!(st.code(), Some(exit::USAGE) | Some(exit::CONFIG));
            if refused && restarts == 0 {
                return Err(Failure::Config(format!("worker refused the config ({st}); stopping")));
            }
            if refused {
                // The file was broken after a good start: stay up, passive, and try again
                // (with back-off) until it is fixed.
                log::error!(
                    "worker {worker} refused the config on disk ({st}); passive until it is fixed"
                );
            } else {
                log::error!("worker {worker} died ({st}); passive");
            }
        }
        restarts += 1;
        // A worker that ran for a minute resets the back-off.
        if monotonic_ms().saturating_sub(started) > 60_000 {
            backoff_ms = 0;
        }
        backoff_ms = if backoff_ms == 0 { 100 } else { (backoff_ms * 2).min(30_000) };
        log::info!("restarting the worker in {backoff_ms} ms (restart {restarts})");
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(backoff_ms) {
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let left = Duration::from_millis(backoff_ms).saturating_sub(t.elapsed());
            let _ = poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX));
            while let Ok(Some(info)) = sfd.read_signal() {
                if matches!(
                    Signal::try_from(info.ssi_signo as i32),
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT)
                ) {
                    return Ok(0);
                }
            }
        }
    }
}
