//! The crontab wrapper: run COMMAND only when this node is active.
//!
//! Owns: the run/skip decision, the `--lock` guard and the per-job syslog lines.
//! Guarantees: a config error runs the job nowhere (78); an untrusted state means
//! `default_state`; a state file left by a dead or silent rcron daemon means passive;
//! the job's own exit code (or 128+N, 124, 126, 127) is the wrapper's exit code.

use crate::cli::WrapperOpts;
use crate::config::{Config, State};
use crate::job::{self, Outcome};
use crate::logging;
use crate::statefile::{self, Trust};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

/// Exit code for a lock file that cannot be created (EX_CANTCREAT).
pub const EXIT_CANTCREAT: i32 = 73;

/// Where a decision came from, for the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    StateFile,
    /// The file could not be trusted; `default_state` applied.
    Default,
    /// The file was left by an rcron daemon that is gone or silent.
    StaleDaemonFile,
}

/// Decides from a state-file reading (shared/interface.md, "State file").
pub fn decide_from_file(
    cfg: &Config,
    reading: &Result<statefile::Reading, String>,
    now_ms: u64,
    alive: impl Fn(u32) -> bool,
) -> (State, Reason) {
    match reading {
        Err(_) => (cfg.default_state, Reason::Default),
        Ok(r) => match statefile::judge(r, now_ms, alive) {
            Trust::Says(s) => (s, Reason::StateFile),
            Trust::Unknown => (cfg.default_state, Reason::Default),
            Trust::Stale => (State::Passive, Reason::StaleDaemonFile),
        },
    }
}

/// True while a process with this pid exists (EPERM: it exists, owned by someone else).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None), Err(Errno::ESRCH))
}

/// The state this node is in, as far as the state file tells, with the reason.
pub fn file_state(cfg: &Config) -> (State, Reason, Result<statefile::Reading, String>) {
    let reading = statefile::read(&cfg.state_file);
    let (s, why) = decide_from_file(cfg, &reading, crate::sys::monotonic_ms(), pid_alive);
    (s, why, reading)
}

/// The command as the logs show it: words joined by spaces, control characters escaped.
pub fn cmd_line(argv: &[OsString]) -> String {
    let mut s = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        for c in a.to_string_lossy().chars() {
            if c.is_control() { s.extend(c.escape_default()) } else { s.push(c) }
        }
    }
    s
}

/// The slot's cut on CLOCK_MONOTONIC: the start of the current wall-clock second
/// (see handoff.rs). `start_ms` is the wrapper's start on CLOCK_MONOTONIC.
pub fn slot_cut(start_ms: u64) -> u64 {
    let frac = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis() as u64)
        .unwrap_or(0);
    start_ms.saturating_sub(frac)
}

/// How long the wrapper waits for the daemon's answer: the longest the daemon may hold it
/// (Master_Down_Interval + a new master's hold + margin) plus 1.5 s for a daemon that was starved or
/// frozen when the question came. No answer in time: passive.
pub fn handoff_bound(cfg: &Config) -> std::time::Duration {
    let adv = cfg.advert_int_cs as u64 * 10;
    let skew = if cfg.vrrp_version == 2 { 1000 } else { adv } * (256 - cfg.priority as u64) / 256;
    // Master_Down_Interval (3 adverts + skew), the new master's hold (3 adverts), one more.
    let ms = 7 * adv + skew + crate::daemon::HANDOFF_MARGIN_MS + 1500;
    std::time::Duration::from_millis(ms)
}

/// Asks the local daemon (shared/interface.md, "Handoff"). Returns the state to act on and a
/// reason for the log; a daemon that does not answer in time means passive.
pub fn ask_daemon(cfg: &Config, no_wait: bool, start_ms: u64) -> (State, String) {
    let (req, bound) = if no_wait {
        ("state".to_string(), std::time::Duration::from_millis(500))
    } else {
        (format!("handoff {}", slot_cut(start_ms)), handoff_bound(cfg))
    };
    match crate::control::query(&cfg.control_socket, &req, bound) {
        Ok(answer) => {
            let field = |k| crate::control::field(&answer, k);
            let (run, reason) = if no_wait {
                (field("state") == Some("active"), Some("no_wait"))
            } else {
                (field("decision") == Some("run"), field("reason").filter(|r| !r.is_empty()))
            };
            let reason = reason.unwrap_or("daemon_bad_answer");
            (if run { State::Active } else { State::Passive }, reason.to_string())
        }
        Err(e) => {
            log::warn!("daemon at {} did not answer ({e}): passive", cfg.control_socket.display());
            (State::Passive, e.reason().to_string())
        }
    }
}

/// Runs the wrapper role; returns the exit code. `start_ms`: CLOCK_MONOTONIC at start.
pub fn run(cfg: &Config, opts: &WrapperOpts, start_ms: u64) -> i32 {
    let cmd = cmd_line(&opts.argv);
    let level = cfg.syslog_level;
    let cluster = &cfg.cluster_name;
    if cfg.expects_daemon() {
        let (state, reason) = ask_daemon(cfg, opts.no_wait, start_ms);
        if state == State::Passive {
            logging::line(
                level,
                &format!("cluster={cluster} state=passive status=ignore reason={reason} cmd={cmd}"),
            );
            return 0;
        }
        log::debug!("daemon says run: {reason} (start mono_ms={start_ms})");
        return run_active(cfg, opts, &cmd);
    }
    let (state, why, reading) = file_state(cfg);
    match (&reading, why) {
        (Err(e), _) => log::debug!("state file {}: {e}", cfg.state_file.display()),
        (Ok(_), Reason::Default) => log::warn!(
            "state file {} does not say active or passive; using default_state={}",
            cfg.state_file.display(),
            cfg.default_state.as_str()
        ),
        (Ok(_), Reason::StaleDaemonFile) => log::warn!(
            "state file {} was left by an rcron daemon that no longer keeps it; passive",
            cfg.state_file.display()
        ),
        _ => {}
    }
    if state == State::Passive {
        logging::line(level, &format!("cluster={cluster} state=passive status=ignore cmd={cmd}"));
        return 0;
    }
    run_active(cfg, opts, &cmd)
}

/// This node is active: lock, nice, run, log.
fn run_active(cfg: &Config, opts: &WrapperOpts, cmd: &str) -> i32 {
    let level = cfg.syslog_level;
    let cluster = &cfg.cluster_name;
    let _lock = if opts.lock {
        match take_lock(cfg, &opts.argv) {
            Ok(Some(l)) => Some(l),
            Ok(None) => {
                logging::line(
                    level,
                    &format!("cluster={cluster} state=active status=skip reason=locked cmd={cmd}"),
                );
                return 0;
            }
            Err(e) => {
                log::error!("--lock: {e}");
                return EXIT_CANTCREAT;
            }
        }
    } else {
        None
    };
    let nice = opts.nice.unwrap_or(cfg.nice_level);
    if let Err(e) = crate::sys::set_nice(nice) {
        log::warn!("cannot set nice level {nice}: {e}");
    }
    logging::line(level, &format!("cluster={cluster} state=active status=start cmd={cmd}"));
    let t0 = Instant::now();
    let outcome = job::run(&opts.argv, opts.timeout, opts.kill_after);
    let ms = t0.elapsed().as_millis();
    let code = outcome.exit_code();
    let status = match outcome {
        Outcome::Exited(0) => "ok",
        Outcome::TimedOut => "timeout",
        _ => "fail",
    };
    let mut line = format!(
        "cluster={cluster} state=active status={status} exit={code} dur={} dur_ms={ms}",
        ms / 1000
    );
    match &outcome {
        Outcome::Signaled(s) => line.push_str(&format!(" signal={s}")),
        Outcome::NotStarted(_, e) => line.push_str(&format!(" error=\"{e}\"")),
        _ => {}
    }
    line.push_str(&format!(" cmd={cmd}"));
    logging::line(level, &line);
    code
}

/// `lock_dir/rcron-<hash of argv>.lock`, locked exclusively without waiting.
/// `Ok(None)`: another run of the same command line holds it.
fn take_lock(cfg: &Config, argv: &[OsString]) -> Result<Option<Flock<std::fs::File>>, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a 64
    for a in argv {
        for &b in a.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    std::fs::create_dir_all(&cfg.lock_dir)
        .map_err(|e| format!("{}: {e}", cfg.lock_dir.display()))?;
    let path: PathBuf = cfg.lock_dir.join(format!("rcron-{h:016x}.lock"));
    let f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
    };
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(default: State) -> Config {
        Config { default_state: default, ..Config::default() }
    }

    #[test]
    fn run_or_skip_from_the_state_file() {
        let r = |b: &[u8]| Ok(statefile::parse(b));
        let table: &[(Result<statefile::Reading, String>, State, (State, Reason))] = &[
            (r(b"active\n"), State::Passive, (State::Active, Reason::StateFile)),
            (r(b"passive\n"), State::Active, (State::Passive, Reason::StateFile)),
            (r(b"garbage\n"), State::Passive, (State::Passive, Reason::Default)),
            (r(b"garbage\n"), State::Active, (State::Active, Reason::Default)),
            (r(b"inactive\n"), State::Passive, (State::Passive, Reason::Default)),
            (Err("missing".into()), State::Passive, (State::Passive, Reason::Default)),
            (Err("FIFO".into()), State::Active, (State::Active, Reason::Default)),
            // Left by a daemon whose pid is gone: passive even with default_state active.
            (
                r(b"active\npid=1\nmono_ms=5\n"),
                State::Active,
                (State::Passive, Reason::StaleDaemonFile),
            ),
        ];
        for (reading, default, want) in table {
            let got = decide_from_file(&cfg(*default), reading, 10, |_| false);
            assert_eq!(got, *want, "{reading:?} default={default:?}");
        }
    }

    #[test]
    fn logged_command_escapes_control_characters() {
        let argv: Vec<OsString> = ["echo", "a  b", "x\ny"].iter().map(OsString::from).collect();
        assert_eq!(cmd_line(&argv), "echo a  b x\\ny");
    }
}
