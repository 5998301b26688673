//! What rcron prints for people and scripts: `--status` and `--is-active` (`key=value` lines,
//! from the daemon or from the state file), and `--check`.
//!
//! Owns: those formats and the field names (stable: monitoring reads them). Guarantees: a
//! daemon that does not answer reads as passive, and says why.

use crate::config::{self, Config, ConfigError, State};
use crate::exit::Failure;
use crate::statefile::{self, Source};
use std::fmt::{Display, Write as _};
use std::path::Path;

/// `key=value` lines, in the order written.
#[derive(Default)]
pub struct Kv(String);

impl Kv {
    /// `key=value`; a control character in the value (a newline from a peer's or etcd's
    /// text) is written as `?`, so that a value never adds a line of its own.
    pub fn put(&mut self, key: &str, value: impl Display) {
        self.put_suffixed("", key, value);
    }

    /// `PREFIXkey=value` (`drop_ttl=0`).
    pub fn put_suffixed(&mut self, prefix: &str, key: &str, value: impl Display) {
        let start = self.0.len();
        let _ = write!(self.0, "{prefix}{key}={value}");
        if self.0[start..].chars().any(char::is_control) {
            let line: String =
                self.0[start..].chars().map(|c| if c.is_control() { '?' } else { c }).collect();
            self.0.truncate(start);
            self.0.push_str(&line);
        }
        self.0.push('\n');
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `--status` (`print`) and `--is-active` (the exit code only: 0 active, 1 not). With an
/// election configured the daemon answers; a daemon that does not answer means passive.
pub fn status(cfg: &Config, print: bool) -> i32 {
    if !cfg.expects_daemon() {
        return file_status(cfg, print);
    }
    let answer =
        crate::control::query(&cfg.control_socket, "status", std::time::Duration::from_secs(1));
    let active = match &answer {
        Ok(a) => crate::control::field(a, "state") == Some("active"),
        Err(_) => false,
    };
    if print {
        match &answer {
            Ok(a) => print!("{a}"),
            Err(e) => {
                let mut kv = Kv::default();
                kv.put("state", "passive");
                kv.put("daemon", e.reason().trim_start_matches("daemon_"));
                kv.put("error", e);
                print!("{}", kv.as_str());
            }
        }
    }
    if active { 0 } else { 1 }
}

/// The state-file-only status: what the wrapper would decide, and from what.
fn file_status(cfg: &Config, print: bool) -> i32 {
    let (state, source, reading) = statefile::decide(cfg);
    if print {
        let mut kv = Kv::default();
        kv.put("state", state.as_str());
        kv.put("source", "state_file");
        let trust = match source {
            Source::StateFile => "file",
            Source::Default => "default_state",
            Source::StaleDaemonFile => "stale_daemon_file",
        };
        kv.put("decided_by", trust);
        kv.put("cluster", &cfg.cluster_name);
        kv.put("state_file", cfg.state_file.display());
        match &reading {
            Ok(r) => {
                if let Some(m) = &r.master {
                    kv.put("master", m);
                }
                if let Some(p) = r.priority {
                    kv.put("priority", p);
                }
                if let Some(p) = r.pid {
                    kv.put("pid", p);
                }
            }
            Err(e) => kv.put("state_file_error", e),
        }
        print!("{}", kv.as_str());
    }
    if state == State::Active { 0 } else { 1 }
}

/// `--check`: every error with its line, then every warning (a key set twice, a hook without
/// `#!`); `OK (mode)` on stdout when usable. Errors, or with `strict` any warning: a
/// [`Failure::Config`] naming them.
pub fn check(path: &Path, strict: bool) -> Result<i32, Failure> {
    let parsed = config::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    let c = &parsed.config;
    let mut warnings = parsed.warnings.clone();
    if c.expects_daemon() {
        config::validate_daemon(c, path).map_err(Failure::Config)?;
        warnings.extend(crate::os::hooks::warnings(c).into_iter().map(ConfigError::whole_file));
    }
    for w in &warnings {
        match w.line {
            0 => eprintln!("{}: warning: {}", path.display(), w.msg),
            l => eprintln!("{}:{l}: warning: {}", path.display(), w.msg),
        }
    }
    if strict && !warnings.is_empty() {
        let n = warnings.len();
        return Err(Failure::Config(format!(
            "{}: {n} warning(s), refused by --strict",
            path.display()
        )));
    }
    let mode = match (c.expects_daemon(), c.election) {
        (true, config::Election::Etcd) => "election = etcd (rcron daemon)",
        (true, config::Election::Vrrp) => "election = vrrp (rcron daemon)",
        (false, _) => "state file only",
    };
    println!("{}: OK ({mode})", path.display());
    if c.expects_daemon() && c.election == config::Election::Etcd {
        // As used: normalised (scheme and host lower-cased, default port, no trailing `/`).
        println!("etcd_endpoints {}", c.etcd_endpoints.join(" "));
        println!("etcd_prefix {}", c.etcd_prefix());
        println!("node_name {}", c.node_name());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::Kv;

    #[test]
    fn a_value_never_adds_a_line() {
        let mut kv = Kv::default();
        kv.put("leader", "evil\nstate=active\x1b[31m");
        kv.put("n", 3);
        assert_eq!(kv.as_str(), "leader=evil?state=active?[31m\nn=3\n");
    }
}
