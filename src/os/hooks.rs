//! Commands the daemon runs: `notify_*` hooks on transitions (in order, never two at once)
//! and the `track_script` check. Both run as child processes that the daemon's loop reaps
//! on SIGCHLD, so a slow hook never delays an advert.
//!
//! Owns: the hook queue and the running children. Guarantees: at most one notify hook and
//! one track script run at a time; a hook that outlives its timeout is killed (SIGKILL to its
//! process group); commands run without a shell unless they are written as `sh -c ...` (a
//! file without `#!` runs with `/bin/sh`, as POSIX execvp does, on every build).

use crate::config::Config;
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};

/// How long a notify hook or track script may run.
pub const TIMEOUT_MS: u64 = 10_000;

/// Splits a command line into words: blanks separate, `"..."` and `'...'` group, no escapes,
/// no expansion. `None` for an unterminated quote or an empty line.
pub fn split_words(cmd: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in cmd.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == ' ' || c == '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() { None } else { Some(words) }
}

/// The PATH hooks run with (their environment is cleared otherwise).
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Refuses a hook whose program could be changed by a non-root user (as keepalived's script
/// security does): the file and each directory above it must belong to root (or to us) and not
/// be writable by group or others (a sticky directory such as /tmp is allowed: nobody else may
/// replace a file in it).
pub fn check_secure(cmd: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let words = split_words(cmd).ok_or_else(|| format!("cannot split command {cmd:?}"))?;
    let prog = std::path::Path::new(&words[0]);
    let path = crate::os::sys::find_program(prog, HOOK_PATH.as_ref())
        .ok_or_else(|| format!("{}: not found in {HOOK_PATH}", words[0]))?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let me = nix::unistd::geteuid().as_raw();
    let mut cur = Some(path.as_path());
    let mut first = true;
    while let Some(p) = cur {
        let Ok(m) = std::fs::metadata(p) else { break };
        let mode = m.mode();
        let sticky_dir = !first && mode & 0o1000 != 0;
        if m.uid() != 0 && m.uid() != me {
            return Err(format!("{} belongs to uid {}: refused (not root)", p.display(), m.uid()));
        }
        if mode & 0o022 != 0 && !sticky_dir {
            return Err(format!(
                "{} is writable by non-root users (mode {:o}): refused",
                p.display(),
                mode & 0o7777
            ));
        }
        first = false;
        cur = p.parent().filter(|d| !d.as_os_str().is_empty());
    }
    Ok(())
}

/// Starts `cmd` at niceness `nice`, with a cleared environment but `env` and [`HOOK_PATH`].
fn spawn(cmd: &str, env: &[(&str, String)], nice: i32) -> Result<Child, String> {
    let words = split_words(cmd).ok_or_else(|| format!("cannot split command {cmd:?}"))?;
    let argv: Vec<std::ffi::OsString> = words.into_iter().map(Into::into).collect();
    let setup = |c: &mut Command| {
        c.stdin(Stdio::null()).process_group(0);
        c.env_clear().env("PATH", HOOK_PATH);
        for (k, v) in env {
            c.env(k, v);
        }
        crate::os::sys::unblock_signals_in_child(c);
        crate::os::sys::nice_in_child(c, nice);
    };
    crate::os::sys::spawn_posix(&argv, HOOK_PATH.as_ref(), setup).map_err(|e| format!("{cmd}: {e}"))
}

/// The hooks and the track script of `cfg`, by key.
fn commands(cfg: &Config) -> [(&'static str, Option<&str>); 4] {
    [
        ("notify_active", cfg.notify_active.as_deref()),
        ("notify_passive", cfg.notify_passive.as_deref()),
        ("notify_fault", cfg.notify_fault.as_deref()),
        ("track_script", cfg.track_script.as_deref()),
    ]
}

/// Every hook that fails [`check_secure`], as `key: reason`: the daemon refuses to start (or
/// to reload) with any.
pub fn errors(cfg: &Config) -> Vec<String> {
    commands(cfg)
        .into_iter()
        .filter_map(|(key, cmd)| check_secure(cmd?).err().map(|e| format!("{key}: {e}")))
        .collect()
}

/// What `--check` says of hooks that will run, but perhaps not as the writer expects: a file
/// without `#!` runs with `/bin/sh` ([`crate::os::sys::spawn_posix`]).
pub fn warnings(cfg: &Config) -> Vec<String> {
    commands(cfg)
        .into_iter()
        .filter_map(|(key, cmd)| {
            let prog = split_words(cmd?)?.into_iter().next()?;
            let file = crate::os::sys::find_program(prog.as_ref(), HOOK_PATH.as_ref())?;
            crate::os::sys::needs_shell(&file).then(|| {
                format!("{key}: {} has no #! line: rcron runs it with /bin/sh", file.display())
            })
        })
        .collect()
}

use std::os::unix::process::CommandExt;

struct Running {
    child: Child,
    started: u64,
    what: String,
}

impl Running {
    /// `Some(success)` once it has ended (killed at the timeout: failure).
    fn poll(&mut self, now: u64) -> Option<bool> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(st.success()),
            Ok(None) if now.saturating_sub(self.started) >= TIMEOUT_MS => {
                log::warn!("{} still running after {TIMEOUT_MS} ms: killed", self.what);
                let pg = nix::unistd::Pid::from_raw(self.child.id() as i32);
                let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
                let _ = self.child.wait();
                Some(false)
            }
            Ok(None) => None,
            Err(_) => Some(false),
        }
    }
}

/// The notify hooks: a queue run one at a time, in order.
pub struct Notifier {
    queue: VecDeque<(String, Vec<(&'static str, String)>)>,
    running: Option<Running>,
    /// The niceness hooks run at (the daemon's own, `daemon_nice`, is not theirs).
    nice: i32,
}

impl Notifier {
    /// Hooks will run at niceness `nice`.
    pub fn new(nice: i32) -> Notifier {
        Notifier { queue: VecDeque::new(), running: None, nice }
    }

    /// The niceness hooks run at (the track script's too).
    pub fn nice(&self) -> i32 {
        self.nice
    }

    pub fn push(&mut self, cmd: &str, env: Vec<(&'static str, String)>) {
        if self.queue.len() >= 64 {
            log::warn!("notify queue full: dropping the oldest hook");
            self.queue.pop_front();
        }
        self.queue.push_back((cmd.to_string(), env));
    }

    /// Reaps the running hook and starts the next one. Call on SIGCHLD and on each tick.
    pub fn poll(&mut self, now: u64) {
        loop {
            if let Some(r) = &mut self.running {
                match r.poll(now) {
                    None => return,
                    Some(ok) => {
                        if !ok {
                            log::warn!("{} failed", r.what);
                        }
                        self.running = None;
                    }
                }
            }
            let Some((cmd, env)) = self.queue.pop_front() else {
                return;
            };
            match spawn(&cmd, &env, self.nice) {
                Ok(child) => {
                    let what = format!("notify hook {cmd:?}");
                    self.running = Some(Running { child, started: now, what });
                }
                Err(e) => log::error!("notify hook: {e}"),
            }
        }
    }

    /// True while a hook runs or waits (the loop then wakes at least every 100 ms).
    pub fn busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }
}

/// What the `track_script` check says so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No run has ended yet: the node is held out of the election, as keepalived holds an
    /// instance whose script is still in its INIT state.
    Unknown,
    Healthy,
    Failing,
}

/// The `track_script` check: run every interval. Until its first run ends the verdict is
/// unknown; the first run decides at once (a failure before any success is a fault, whatever
/// `fall` says: keepalived's `vrrp_script` starts one success short of `rise` and drops to
/// failed on its first failure). After that, `fall` failures in a row mean fault and `rise`
/// successes in a row clear it.
pub struct Tracker {
    cmd: String,
    interval_ms: u64,
    fall: u32,
    rise: u32,
    next_at: u64,
    running: Option<Running>,
    ok_run: u32,
    fail_run: u32,
    verdict: Verdict,
    /// The niceness the check runs at.
    nice: i32,
}

impl Tracker {
    /// Runs `cmd` every `interval_ms` from `now`, at niceness `nice`.
    pub fn new(cmd: &str, interval_ms: u64, fall: u32, rise: u32, now: u64, nice: i32) -> Tracker {
        Tracker {
            cmd: cmd.into(),
            interval_ms,
            fall,
            rise,
            next_at: now,
            running: None,
            ok_run: 0,
            fail_run: 0,
            verdict: Verdict::Unknown,
            nice,
        }
    }

    /// The tracker `cfg` asks for (`None` without `track_script`), run at niceness `nice`.
    pub fn from_config(cfg: &Config, now: u64, nice: i32) -> Option<Tracker> {
        let cmd = cfg.track_script.as_deref()?;
        let interval_ms = cfg.track_interval_cs as u64 * 10;
        Some(Tracker::new(cmd, interval_ms, cfg.track_fall, cfg.track_rise, now, nice))
    }

    /// True when `cfg` asks for this very check (a reload keeps its verdict then).
    pub fn same_as(&self, cfg: &Config) -> bool {
        cfg.track_script.as_deref() == Some(self.cmd.as_str())
            && cfg.track_interval_cs as u64 * 10 == self.interval_ms
            && (cfg.track_fall, cfg.track_rise) == (self.fall, self.rise)
    }

    pub fn next_at(&self) -> u64 {
        self.next_at
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Anything but a healthy verdict keeps the node out of the master role.
    pub fn fault(&self) -> bool {
        self.verdict != Verdict::Healthy
    }

    /// Reaps and starts checks; returns the new verdict when it changed.
    pub fn poll(&mut self, now: u64) -> Option<Verdict> {
        let before = self.verdict;
        if let Some(r) = &mut self.running
            && let Some(ok) = r.poll(now)
        {
            self.running = None;
            self.record(ok);
        }
        if self.running.is_none() && now >= self.next_at {
            self.next_at = now + self.interval_ms;
            match spawn(&self.cmd, &[], self.nice) {
                Ok(child) => {
                    let what = format!("track_script {:?}", self.cmd);
                    self.running = Some(Running { child, started: now, what });
                }
                Err(e) => {
                    log::error!("track_script: {e}");
                    self.record(false);
                }
            }
        }
        (self.verdict != before).then_some(self.verdict)
    }

    fn record(&mut self, ok: bool) {
        if ok {
            self.ok_run += 1;
            self.fail_run = 0;
            if self.verdict == Verdict::Unknown
                || (self.verdict == Verdict::Failing && self.ok_run >= self.rise)
            {
                self.verdict = Verdict::Healthy;
            }
        } else {
            self.fail_run += 1;
            self.ok_run = 0;
            if self.verdict == Verdict::Unknown
                || (self.verdict == Verdict::Healthy && self.fail_run >= self.fall)
            {
                self.verdict = Verdict::Failing;
            }
        }
    }

    pub fn running(&self) -> bool {
        self.running.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_blanks_and_quotes_group() {
        assert_eq!(split_words("a b  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_words("sh -c 'echo x; y'").unwrap(), ["sh", "-c", "echo x; y"]);
        assert_eq!(split_words("\"a b\"c d").unwrap(), ["a bc", "d"]);
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("a 'b").is_none());
        assert!(split_words("   ").is_none());
    }

    #[test]
    fn hooks_writable_by_others_are_refused() {
        let dir = std::env::temp_dir().join(format!("rcron-hooksec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.join("hook.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cmd = format!("{} active", script.display());
        assert_eq!(check_secure(&cmd), Ok(()));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = check_secure(&cmd).unwrap_err();
        assert!(e.contains("writable by non-root"), "{e}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_secure(&cmd).is_err(), "a world-writable directory");
        assert!(check_secure("sh -c 'echo hi'").is_ok(), "found in PATH");
        assert!(check_secure("no-such-program-here").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tracker_falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut t = Tracker::new("x", 1000, 2, 3, 0, 0);
        t.record(true);
        assert_eq!(t.verdict(), Verdict::Healthy, "the first success decides at once");
        t.record(false);
        assert!(!t.fault());
        t.record(false);
        assert!(t.fault());
        t.record(true);
        t.record(true);
        assert!(t.fault());
        t.record(false);
        t.record(true);
        t.record(true);
        assert!(t.fault(), "a failure restarts the rise count");
        t.record(true);
        assert!(!t.fault());
    }

    /// keepalived 2.2.7 (vrrp_scheduler.c, vrrp_script_child_thread): a script that has not
    /// yet exited holds the instance; its first failure is a fault whatever `fall` says.
    #[test]
    fn a_check_that_never_passed_is_a_fault_and_its_first_failure_decides() {
        let mut t = Tracker::new("x", 1000, 3, 1, 0, 0);
        assert_eq!(t.verdict(), Verdict::Unknown);
        assert!(t.fault(), "unknown holds the node out of the master role");
        t.record(false);
        assert_eq!(t.verdict(), Verdict::Failing, "fall 3 does not delay the first verdict");
        t.record(true);
        assert_eq!(t.verdict(), Verdict::Healthy);
    }
}
