//! Commands the daemon runs: `notify_*` hooks on transitions (in order, never two at once)
//! and the `track_script` check. Both run as child processes that the daemon's loop reaps
//! on SIGCHLD, so a slow hook never delays an advert.
//!
//! Owns: the hook queue and the running children. Guarantees: at most one notify hook and
//! one track script run at a time; a hook that outlives its timeout is killed (SIGKILL to its
//! process group); commands run without a shell unless they are written as `sh -c ...`.

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
    let path = if words[0].contains('/') {
        prog.to_path_buf()
    } else {
        HOOK_PATH
            .split(':')
            .map(|d| std::path::Path::new(d).join(prog))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{}: not found in {HOOK_PATH}", words[0]))?
    };
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

fn spawn(cmd: &str, env: &[(&str, String)]) -> Result<Child, String> {
    let words = split_words(cmd).ok_or_else(|| format!("cannot split command {cmd:?}"))?;
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]).stdin(Stdio::null()).process_group(0);
    c.env_clear().env("PATH", HOOK_PATH);
    for (k, v) in env {
        c.env(k, v);
    }
    crate::sys::unblock_signals_in_child(&mut c);
    c.spawn().map_err(|e| format!("{cmd}: {e}"))
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
#[derive(Default)]
pub struct Notifier {
    queue: VecDeque<(String, Vec<(&'static str, String)>)>,
    running: Option<Running>,
}

impl Notifier {
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
            match spawn(&cmd, &env) {
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

/// The `track_script` check: run every interval; `fall` failures in a row mean fault,
/// `rise` successes in a row clear it.
pub struct Tracker {
    cmd: String,
    interval_ms: u64,
    fall: u32,
    rise: u32,
    next_at: u64,
    running: Option<Running>,
    ok_run: u32,
    fail_run: u32,
    pub fault: bool,
}

impl Tracker {
    pub fn new(cmd: &str, interval_ms: u64, fall: u32, rise: u32, now: u64) -> Tracker {
        Tracker {
            cmd: cmd.into(),
            interval_ms,
            fall,
            rise,
            next_at: now,
            running: None,
            ok_run: 0,
            fail_run: 0,
            fault: false,
        }
    }

    pub fn next_at(&self) -> u64 {
        self.next_at
    }

    /// Reaps and starts checks; returns `Some(fault)` when the fault state changed.
    pub fn poll(&mut self, now: u64) -> Option<bool> {
        let before = self.fault;
        if let Some(r) = &mut self.running
            && let Some(ok) = r.poll(now)
        {
            self.running = None;
            self.record(ok);
        }
        if self.running.is_none() && now >= self.next_at {
            self.next_at = now + self.interval_ms;
            match spawn(&self.cmd, &[]) {
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
        (self.fault != before).then_some(self.fault)
    }

    fn record(&mut self, ok: bool) {
        if ok {
            self.ok_run += 1;
            self.fail_run = 0;
            if self.fault && self.ok_run >= self.rise {
                self.fault = false;
            }
        } else {
            self.fail_run += 1;
            self.ok_run = 0;
            if !self.fault && self.fail_run >= self.fall {
                self.fault = true;
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
        let mut t = Tracker::new("x", 1000, 2, 3, 0);
        t.record(false);
        assert!(!t.fault);
        t.record(false);
        assert!(t.fault);
        t.record(true);
        t.record(true);
        assert!(t.fault);
        t.record(false);
        t.record(true);
        t.record(true);
        assert!(t.fault, "a failure restarts the rise count");
        t.record(true);
        assert!(!t.fault);
    }
}
