//! The crontab wrapper: run COMMAND only when this node is active.
//!
//! Owns: the run/skip decision, the `--lock` guard and the per-job syslog lines.
//! Guarantees: a config error runs the job nowhere (78); an untrusted state means
//! `default_state`; a state file left by a dead or silent rcron daemon means passive;
//! the job's own exit code (or 128+N, 124, 126, 127) is the wrapper's exit code.

use crate::cli::WrapperOpts;
use crate::config::{Config, State};
use crate::control::{JobOutcome, QueryError};
use crate::exit::Failure;
use crate::ledger::mark::{self, Mark};
use crate::os::job::{self, Outcome};
use crate::os::logging;
use crate::statefile::{self, Source};
use crate::timing::{DAEMON_RESTART_WAIT_MS, Timing};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The pause between two tries of a question whose daemon is restarting ([`ask_again`]).
const ASK_AGAIN_MS: u64 = 100;
/// How long the wrapper tries to tell its daemon how the job ended (a counter only).
const JOB_REPORT_TIMEOUT: Duration = Duration::from_millis(200);

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

/// The slot this run is for (shared/interface.md, "Handoff"): the job's identity and its
/// scheduled time, from this node's wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub job: u64,
    /// Epoch seconds (`RCRON_SLOT`).
    pub time: u64,
    /// Its length, seconds (`--slot`).
    pub len_s: u64,
}

impl Slot {
    pub fn of(opts: &WrapperOpts) -> Slot {
        let uid = nix::unistd::getuid().as_raw();
        let job = crate::ledger::slot::job_id(opts.id.as_deref(), uid, &opts.argv, opts.slot_s);
        let time = crate::ledger::slot::scheduled(crate::os::sys::wall_secs(), opts.slot_s);
        Slot { job, time, len_s: opts.slot_s }
    }
}

/// The daemon's answer: the state to act on, a reason for the log (with the node that holds
/// the slot when another runs it), for a run under a lease (etcd) its fencing token and
/// fence, and whether a daemon died holding the question before the one that answered.
pub struct Verdict {
    pub state: State,
    pub reason: String,
    pub fence: Option<(i64, job::Fence)>,
    pub cut_off: bool,
}

/// The fence of a `run` answer under a lease, when the daemon kept the connection open.
fn fence_of(answer: &str, conn: Option<crate::control::FenceStream>) -> Option<(i64, job::Fence)> {
    let field = |k| crate::control::field(answer, k).and_then(|v| v.parse::<u64>().ok());
    let (token, until, grace) = (field("fencing_token")?, field("until")?, field("grace_ms")?);
    let fence = job::Fence { conn: conn?, until, grace: Duration::from_millis(grace), ended: None };
    Some((token as i64, fence))
}

/// Asks the local daemon (shared/interface.md, "Handoff"); a daemon that does not answer in
/// time means passive.
pub fn ask_daemon(cfg: &Config, no_wait: bool, start_ms: u64, slot: Slot) -> Verdict {
    let timing = Timing::new(cfg);
    let etcd = cfg.election == crate::config::Election::Etcd;
    let (req, bound) = if no_wait && !etcd {
        ("state".to_string(), 500)
    } else {
        let bound = match cfg.election {
            crate::config::Election::Etcd => timing.etcd_wrapper_bound_ms(),
            _ if cfg.run_ledger => timing.ledger_wrapper_bound_ms(),
            _ => timing.wrapper_bound_ms(),
        };
        // Under etcd a run needs its record and fence even with --no-wait: the leader still
        // records the slot; a node that does not lead answers at once (` now`).
        let at_once = if no_wait { " now" } else { "" };
        let (job, time, cut) = (slot.job, slot.time, slot_cut(start_ms));
        (format!("slot {job:016x} {time} {cut}{at_once}"), bound)
    };
    let no_wait = no_wait && !etcd;
    let bound = Duration::from_millis(bound);
    let asked = if no_wait {
        crate::control::query_open(&cfg.control_socket, &req, bound).map(|(a, c)| (a, c, false))
    } else {
        ask_again(&cfg.control_socket, &req, bound)
    };
    match asked {
        Ok((answer, conn, cut_off)) => {
            let field = |k| crate::control::field(&answer, k);
            let (run, reason) = if no_wait {
                (field("state") == Some("active"), Some("no_wait"))
            } else {
                (field("decision") == Some("run"), field("reason").filter(|r| !r.is_empty()))
            };
            let mut reason = reason.unwrap_or("daemon_bad_answer").to_string();
            if let Some(ip) = field("ran_on") {
                reason.push_str(" ran_on=");
                reason.push_str(ip);
            }
            let fence = if run { fence_of(&answer, conn) } else { None };
            if run && etcd && fence.is_none() {
                // A run under etcd comes with its fence, or not at all.
                return Verdict {
                    state: State::Passive,
                    reason: "daemon_bad_answer".into(),
                    fence,
                    cut_off,
                };
            }
            let state = if run { State::Active } else { State::Passive };
            Verdict { state, reason, fence, cut_off }
        }
        Err(e) => {
            log::warn!("daemon at {} did not answer ({e}): passive", cfg.control_socket.display());
            let reason = e.reason().to_string();
            Verdict { state: State::Passive, reason, fence: None, cut_off: false }
        }
    }
}

/// The slot's run mark ([`crate::ledger::mark`]) settles what the record cannot: a recorded
/// run goes ahead only as the one wrapper of this node that makes the mark, and a slot held
/// by this node (`ran_here`) runs for a wrapper whose daemon died holding its question when no
/// wrapper here made the mark, that is, when none started it. Not under etcd, whose runs come
/// with the leader's fence. Without a mark (it could not be made: `lock_dir` not writable by
/// this user) the daemon's answer stands.
pub fn settle(cfg: &Config, slot: Slot, v: Verdict) -> Verdict {
    let recorded = v.state == State::Active && v.reason == "recorded";
    let unanswered =
        v.cut_off && v.state == State::Passive && v.reason.split(' ').next() == Some("ran_here");
    if unanswered && cfg.election == crate::config::Election::Etcd {
        log::warn!(
            "slot {} held by this node, whose daemon died before answering: not run here (a \
             run under etcd needs the leader's fence), perhaps nowhere",
            slot.time
        );
        return v;
    }
    if !recorded && !unanswered {
        return v;
    }
    let dir = &cfg.lock_dir;
    let keep = mark::Keep::around(slot.time, slot.len_s, cfg.max_clock_offset_s as u64);
    match mark::take(dir, slot.job, slot.time, keep) {
        Mark::Made if unanswered => {
            log::warn!(
                "slot {} held by this node, which no wrapper here started (the daemon died \
                 before answering): running it",
                slot.time
            );
            Verdict { state: State::Active, reason: "recorded_unanswered".into(), ..v }
        }
        Mark::Made => v,
        Mark::Taken => {
            Verdict { state: State::Passive, reason: "ran_here".into(), fence: None, ..v }
        }
        Mark::Failed(e) if unanswered => {
            log::warn!(
                "slot {} held by this node, whose daemon died before answering: not run here \
                 (no run mark in {}: {e}), perhaps nowhere",
                slot.time,
                dir.display()
            );
            v
        }
        Mark::Failed(e) => {
            log::debug!("no run mark in {}: {e}", dir.display());
            v
        }
    }
}

/// Sends a slot question, and again while the daemon restarts: a connection refused (the
/// socket of a daemon that died) or closed without an answer (it died or stopped holding the
/// question) opens a window of [`DAEMON_RESTART_WAIT_MS`] in which the question goes out again
/// every [`ASK_AGAIN_MS`], as long as the first went out less than `bound` ago. Each try gets
/// the whole `bound`, so the wrapper still outwaits the daemon's hold; the slot's record (etcd,
/// run ledger) keeps a question asked twice from running twice. No socket file at the first
/// try: no daemon runs here, passive at once. The answer comes with whether a try was closed
/// without one (the question may have been recorded by a daemon that then died: [`settle`]).
fn ask_again(
    path: &std::path::Path,
    req: &str,
    bound: Duration,
) -> Result<(String, Option<crate::control::FenceStream>, bool), QueryError> {
    let (first, restart) = (Instant::now(), Duration::from_millis(DAEMON_RESTART_WAIT_MS));
    let mut down_since: Option<Instant> = None;
    let mut cut_off = false;
    loop {
        let e = match crate::control::query_open(path, req, bound) {
            Ok((answer, conn)) => return Ok((answer, conn, cut_off)),
            Err(e) => e,
        };
        cut_off |= matches!(e, QueryError::Closed);
        let gone = match &e {
            QueryError::Closed => Some(Instant::now()),
            QueryError::Unreachable(io) => match (io.kind(), down_since) {
                (ErrorKind::ConnectionRefused, None) => Some(Instant::now()),
                (ErrorKind::ConnectionRefused | ErrorKind::NotFound, since) => since,
                _ => None,
            },
            _ => None,
        };
        let Some(since) = gone else { return Err(e) };
        if first.elapsed() >= bound || since.elapsed() >= restart {
            return Err(e);
        }
        if down_since.is_none() {
            log::warn!(
                "daemon at {} {e}: asking again for up to {DAEMON_RESTART_WAIT_MS} ms",
                path.display()
            );
        }
        down_since = Some(since);
        std::thread::sleep(Duration::from_millis(ASK_AGAIN_MS));
    }
}

/// Runs the wrapper role; returns the exit code. `start_ms`: CLOCK_MONOTONIC at start.
pub fn run(cfg: &Config, opts: &WrapperOpts, start_ms: u64) -> Result<i32, Failure> {
    let cmd = cmd_line(&opts.argv);
    let level = cfg.syslog_level;
    let cluster = &cfg.cluster_name;
    let slot = Slot::of(opts);
    if cfg.expects_daemon() {
        // The original's lines gain the slot here only: state-file setups log as it did.
        let named = format!("slot={} job={:016x} ", slot.time, slot.job);
        let verdict = settle(cfg, slot, ask_daemon(cfg, opts.no_wait, start_ms, slot));
        let Verdict { state, reason, fence, .. } = verdict;
        if state == State::Passive {
            logging::line(
                level,
                &format!(
                    "cluster={cluster} state=passive status=ignore reason={reason} {named}cmd={cmd}"
                ),
            );
            return Ok(0);
        }
        log::debug!("daemon says run: {reason} (start mono_ms={start_ms})");
        return run_active(cfg, opts, &cmd, slot, &named, fence);
    }
    let (state, why, reading) = statefile::decide(cfg);
    match (&reading, why) {
        (Err(e), _) => log::debug!("state file {}: {e}", cfg.state_file.display()),
        (Ok(_), Source::Default) => log::warn!(
            "state file {} does not say active or passive; using default_state={}",
            cfg.state_file.display(),
            cfg.default_state.as_str()
        ),
        (Ok(_), Source::StaleDaemonFile) => log::warn!(
            "state file {} was left by an rcron daemon that no longer keeps it; passive",
            cfg.state_file.display()
        ),
        _ => {}
    }
    if state == State::Passive {
        logging::line(level, &format!("cluster={cluster} state=passive status=ignore cmd={cmd}"));
        return Ok(0);
    }
    run_active(cfg, opts, &cmd, slot, "", None)
}

/// This node is active: lock, nice, run, log. `named`: the slot's fields for the log lines
/// (`slot=... job=... `), or empty.
fn run_active(
    cfg: &Config,
    opts: &WrapperOpts,
    cmd: &str,
    slot: Slot,
    named: &str,
    fence: Option<(i64, job::Fence)>,
) -> Result<i32, Failure> {
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
                return Ok(0);
            }
            Err(e) => {
                return Err(Failure::CantCreate(format!("--lock: {e}")));
            }
        }
    } else {
        None
    };
    let nice = opts.nice.unwrap_or(cfg.nice_level);
    if let Err(e) = crate::os::sys::set_nice(nice) {
        log::warn!("cannot set nice level {nice}: {e}");
    }
    logging::line(level, &format!("cluster={cluster} state=active status=start {named}cmd={cmd}"));
    let t0 = Instant::now();
    let mut env = vec![("RCRON_CLUSTER", cluster.clone()), ("RCRON_SLOT", slot.time.to_string())];
    let fence = fence.map(|(token, f)| {
        env.push(("RCRON_FENCING_TOKEN", token.to_string()));
        f
    });
    let outcome = job::run(&opts.argv, &env, opts.timeout, opts.kill_after, fence);
    let ms = t0.elapsed().as_millis();
    let code = outcome.exit_code();
    let ended = match outcome {
        Outcome::Exited(0) => JobOutcome::Ok,
        Outcome::TimedOut => JobOutcome::Timeout,
        Outcome::Fenced(_) => JobOutcome::Fenced,
        _ => JobOutcome::Fail,
    };
    let status = ended.as_str();
    let mut line = format!(
        "cluster={cluster} state=active status={status} exit={code} dur={} dur_ms={ms}",
        ms / 1000
    );
    match &outcome {
        Outcome::Signaled(s) => line.push_str(&format!(" signal={s}")),
        Outcome::NotStarted(_, e) => line.push_str(&format!(" error=\"{e}\"")),
        Outcome::Fenced(why) => line.push_str(&format!(" reason={why}")),
        _ => {}
    }
    line.push_str(&format!(" {named}cmd={cmd}"));
    logging::line(level, &line);
    if cfg.expects_daemon() {
        // Counted for --status (`jobs_*`); a daemon gone meanwhile changes nothing here.
        let request = format!("job {status}");
        let _ = crate::control::query(&cfg.control_socket, &request, JOB_REPORT_TIMEOUT);
    }
    Ok(code)
}

/// `lock_dir/rcron-<hash of argv>.lock`, locked exclusively without waiting.
/// `Ok(None)`: another run of the same command line holds it.
fn take_lock(cfg: &Config, argv: &[OsString]) -> Result<Option<Flock<std::fs::File>>, String> {
    let h = crate::ledger::slot::argv_hash(argv);
    std::fs::create_dir_all(&cfg.lock_dir)
        .map_err(|e| format!("{}: {e}", cfg.lock_dir.display()))?;
    let path: PathBuf = cfg.lock_dir.join(format!("rcron-{h:016x}.lock"));
    let f = crate::os::sys::open_nofollow(&path, crate::os::sys::Create::IfMissing, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_command_escapes_control_characters() {
        let argv: Vec<OsString> = ["echo", "a  b", "x\ny"].iter().map(OsString::from).collect();
        assert_eq!(cmd_line(&argv), "echo a  b x\\ny");
    }
}
