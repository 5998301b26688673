//! What rcron prints for people and scripts: `--status` (`key=value` lines, one JSON object,
//! or Prometheus text through `prometheus`, from the daemon or from the state file),
//! `--is-active`, and `--check`.
//!
//! Owns: those formats and the field names (stable: monitoring reads them). Guarantees: a
//! daemon that does not answer reads as passive, and says why.

use crate::config::{self, Config, ConfigError};
use crate::exit::Failure;
use crate::statefile::{self, Source};
use std::fmt::Write as _;
use std::path::Path;

mod prometheus;

/// One status value: a number (JSON number, Prometheus sample) or text; empty text means
/// "none now" (`null` in JSON, no sample in Prometheus).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i128),
    Text(String),
}

/// What can be a status value: integers are numbers, everything else text.
pub trait Field {
    fn field(self) -> Value;
}

macro_rules! int_fields {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn field(self) -> Value {
                Value::Int(self as i128)
            }
        }
    )*};
}
int_fields!(u8, u16, u32, u64, usize, i32, i64);

macro_rules! text_fields {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn field(self) -> Value {
                Value::Text(self.to_string())
            }
        }
    )*};
}
text_fields!(
    &str,
    String,
    &String,
    std::fmt::Arguments<'_>,
    std::path::Display<'_>,
    std::net::Ipv4Addr,
    std::borrow::Cow<'_, str>,
    &crate::control::QueryError
);

/// The status output formats (`--status`, `--status --json`, `--status --prometheus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `key=value` lines.
    Lines,
    /// One JSON object (RFC 8259), keys as in the lines, numbers as numbers.
    Json,
    /// Prometheus text exposition format 0.0.4, for node_exporter's textfile collector.
    Prometheus,
}

impl Format {
    /// The control request's word after `status` (none for lines).
    pub fn word(self) -> &'static str {
        match self {
            Format::Lines => "",
            Format::Json => "json",
            Format::Prometheus => "prometheus",
        }
    }
}

/// The fields as one JSON object on one line: integers as numbers, empty text as `null`.
fn json(fields: &[(String, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, k);
        out.push(':');
        match v {
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Text(t) if t.is_empty() => out.push_str("null"),
            Value::Text(t) => json_string(&mut out, t),
        }
    }
    out.push_str("}\n");
    out
}

/// `s` as a JSON string (RFC 8259 section 7: quote, backslash and controls escaped).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Status fields, in the order written.
#[derive(Default)]
pub struct Kv(Vec<(String, Value)>);

impl Kv {
    pub fn put(&mut self, key: &str, value: impl Field) {
        self.put_suffixed("", key, value);
    }

    /// `PREFIXkey` (`drop_ttl`).
    pub fn put_suffixed(&mut self, prefix: &str, key: &str, value: impl Field) {
        self.0.push((format!("{prefix}{key}"), value.field()));
    }

    /// The value of `key`, if written.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `key=value` lines; a control character in a value (a newline from a peer's or etcd's
    /// text) is written as `?`, so that a value never adds a line of its own.
    pub fn lines(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.0 {
            let _ = match v {
                Value::Int(n) => writeln!(out, "{k}={n}"),
                Value::Text(t) => {
                    let t: String =
                        t.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
                    writeln!(out, "{k}={t}")
                }
            };
        }
        out
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Lines => self.lines(),
            Format::Json => json(&self.0),
            Format::Prometheus => prometheus::render(&self.0),
        }
    }
}

/// `--status` (printed in `print`'s format) and `--is-active` (`None`: the exit code only:
/// 0 active, 1 not). With an election configured the daemon answers; a daemon that does not
/// answer means passive, and the fields say why (`daemon=`, `error=`).
pub fn status(cfg: &Config, print: Option<Format>) -> i32 {
    let kv = if cfg.expects_daemon() {
        let format = print.unwrap_or(Format::Lines);
        let request = format!("status {}", format.word());
        let timeout = std::time::Duration::from_secs(1);
        match crate::control::query(&cfg.control_socket, request.trim_end(), timeout) {
            Ok(answer) => {
                if print.is_some() {
                    print!("{answer}");
                }
                return if says_active(format, &answer) { 0 } else { 1 };
            }
            Err(e) => {
                let mut kv = Kv::default();
                kv.put("state", "passive");
                kv.put("cluster", &cfg.cluster_name);
                kv.put("daemon", e.reason().trim_start_matches("daemon_"));
                kv.put("error", &e);
                kv
            }
        }
    } else {
        file_status(cfg)
    };
    if let Some(f) = print {
        print!("{}", kv.render(f));
    }
    if kv.get("state") == Some(&Value::Text("active".into())) { 0 } else { 1 }
}

/// Whether the daemon's status answer, rendered in `format` by [`Kv::render`], says active.
fn says_active(format: Format, answer: &str) -> bool {
    match format {
        Format::Lines => crate::control::field(answer, "state") == Some("active"),
        // `state` is the first field written (daemon.rs, `status`).
        Format::Json => answer.starts_with(r#"{"state":"active","#),
        Format::Prometheus => {
            answer.lines().any(|l| l.starts_with("rcron_active{") && l.ends_with("} 1"))
        }
    }
}

/// The state-file-only status: what the wrapper would decide, and from what.
fn file_status(cfg: &Config) -> Kv {
    let (state, source, reading) = statefile::decide(cfg);
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
        Err(e) => kv.put("state_file_error", format_args!("{e}")),
    }
    kv
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
        assert_eq!(kv.lines(), "leader=evil?state=active?[31m\nn=3\n");
    }
}
