//! Command-line parsing: raw arguments into one validated [`Cli`].
//!
//! Options come before COMMAND; the first word that is not an option, or `--`, starts COMMAND
//! (like `nice`, `timeout`, `flock`). The original's forms `rcron CMD ARGS` and
//! `rcron --conf FILE CMD ARGS` keep working. Invoked as `rcrond`, the binary is the daemon.

use crate::report::Format;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Role {
    Wrapper(WrapperOpts),
    Daemon {
        foreground: bool,
    },
    /// Internal: the election worker the supervisor runs (`--worker`).
    Worker {
        foreground: bool,
    },
    /// `--status [--json | --prometheus]`.
    Status {
        format: crate::report::Format,
    },
    IsActive,
    /// `--check`; `strict`: warnings (a key set twice) fail too (`--strict`).
    Check {
        strict: bool,
    },
    /// `--from-keepalived FILE [--instance NAME]`: print the rcron.conf of a keepalived.conf.
    FromKeepalived {
        file: PathBuf,
        instance: Option<String>,
    },
    Version,
    Help,
}

#[derive(Debug, PartialEq)]
pub struct WrapperOpts {
    pub nice: Option<i32>,
    pub lock: bool,
    pub timeout: Option<Duration>,
    pub kill_after: Duration,
    pub no_wait: bool,
    /// `--slot`: the schedule's granularity, whole seconds, 1..=86400 (default 60: cron's
    /// minute). The slot's scheduled time is the wrapper's start rounded down to it.
    pub slot_s: u64,
    /// `--id NAME`: the job's identity in the run ledger (default: the user and command line).
    pub id: Option<String>,
    /// COMMAND and its arguments, untouched.
    pub argv: Vec<OsString>,
}

#[derive(Debug, PartialEq)]
pub struct Cli {
    /// `--conf FILE`, when given.
    pub conf: Option<PathBuf>,
    pub verbose: bool,
    pub role: Role,
}

/// A usage error (exit 64).
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

pub const USAGE: &str = "\
usage: rcron [OPTIONS] [--] COMMAND [ARGS...]   run COMMAND only if this node is active
       rcron --daemon [--conf FILE] [--foreground]   the election daemon (also: rcrond)
       rcron --status [--json | --prometheus] | --is-active | --check [--conf FILE]
       rcron --from-keepalived FILE [--instance NAME]   print the rcron.conf of a vrrp_instance
       rcron --version | --help

options:
  -c, --conf FILE      config file (default /etc/rcron/rcron.conf)
      --nice N         niceness of the job, -20..19 (default: nice_level)
      --lock           skip this run if the same command line is still running here
      --timeout DUR    SIGTERM the job's process group after DUR (30s, 5m, 2h), exit 124
      --kill-after DUR SIGKILL that long after the timeout's SIGTERM (default 5s)
      --no-wait        decide from the current state at once (no handoff wait)
      --slot DUR       the schedule's granularity (default 1m: cron's); the slot is the
                       start time rounded down to it (RCRON_SLOT)
      --id NAME        the job's identity in the run ledger (default: user and command)
  -v, --verbose        debug logging; also log to stderr
      --daemon         run the election daemon
  -f, --foreground     daemon: stay in the foreground and log to stderr too
      --status         print this node's view as key=value lines
      --json           with --status: as one JSON object
      --prometheus     with --status: in Prometheus text format (node_exporter textfile)
      --is-active      exit 0 when this node is active, 1 when not
      --check          validate the config: print every error and warning, exit 0 or 78
      --strict         with --check: warnings are errors too (exit 78)
      --from-keepalived FILE  print the rcron.conf equivalent of FILE's vrrp_instance, what
                       is not mapped as comments and on stderr (exit 0; 65: nothing usable)
      --instance NAME  with --from-keepalived: the vrrp_instance to convert
  -V, --version        print version, commit and target
  -h, --help           this text

exit codes (wrapper): passive 0; active: the job's own; killed by signal N: 128+N;
timeout 124; usage 64; config error 78; command not executable 126, not found 127;
--lock file not creatable 73; etcd: job stopped as leadership ended (fenced) 75.
other roles: 0 ok; --is-active/--status passive 1; --daemon did not start 1; OS error 71;
cannot create a file 73; --from-keepalived: nothing usable 65, no such file 66.
";

/// Parses `args` (without argv[0]); `invoked_as` is the basename of argv[0].
pub fn parse(invoked_as: &str, args: &[OsString]) -> Result<Cli, UsageError> {
    let mut conf = None;
    let mut verbose = false;
    let mut role: Option<Role> = None;
    let mut foreground = false;
    let mut strict = false;
    let mut instance: Option<String> = None;
    let mut format: Option<Format> = None;
    let mut w = WrapperOpts {
        nice: None,
        lock: false,
        timeout: None,
        kill_after: Duration::from_secs(5),
        no_wait: false,
        slot_s: 60,
        id: None,
        argv: Vec::new(),
    };
    let mut i = 0;
    let set_role = |r: Role, role: &mut Option<Role>| -> Result<(), UsageError> {
        match role {
            Some(prev) if std::mem::discriminant(prev) != std::mem::discriminant(&r) => {
                Err(UsageError(
                    "conflicting modes (choose one of --daemon, --status, \
                                --is-active, --check, --from-keepalived)"
                        .into(),
                ))
            }
            _ => {
                *role = Some(r);
                Ok(())
            }
        }
    };
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        // `--opt=value` and `-cVALUE` forms.
        let (name, inline): (&[u8], Option<&OsStr>) = if a.starts_with(b"--") {
            match a.iter().position(|&b| b == b'=') {
                Some(p) => (&a[..p], Some(OsStr::from_bytes(&a[p + 1..]))),
                None => (a, None),
            }
        } else if a.len() > 2 && a[1] == b'c' {
            (&a[..2], Some(OsStr::from_bytes(&a[2..])))
        } else {
            (a, None)
        };
        let mut value = |what: &str| -> Result<OsString, UsageError> {
            if let Some(v) = inline {
                return Ok(v.to_os_string());
            }
            i += 1;
            args.get(i).cloned().ok_or_else(|| UsageError(format!("{what} needs a value")))
        };
        let flag = |inline: Option<&OsStr>, n: &[u8]| -> Result<(), UsageError> {
            match inline {
                Some(_) => {
                    Err(UsageError(format!("{} takes no value", String::from_utf8_lossy(n))))
                }
                None => Ok(()),
            }
        };
        match name {
            b"-c" | b"--conf" => {
                let v = value("--conf")?;
                if v.is_empty() {
                    return Err(UsageError("--conf needs a file name".into()));
                }
                conf = Some(PathBuf::from(v));
            }
            b"--nice" => {
                let v = value("--nice")?;
                let n = v.to_str().and_then(|s| s.parse::<i32>().ok());
                match n {
                    Some(n) if (-20..=19).contains(&n) => w.nice = Some(n),
                    _ => {
                        return Err(UsageError(format!(
                            "--nice: {v:?} is not an integer in -20..19"
                        )));
                    }
                }
            }
            b"--timeout" => w.timeout = Some(named_duration("--timeout", &value("--timeout")?)?),
            b"--kill-after" => {
                w.kill_after = named_duration("--kill-after", &value("--kill-after")?)?
            }
            b"--slot" => {
                let d = named_duration("--slot", &value("--slot")?)?;
                if d.as_millis() % 1000 != 0 || d.as_secs() > 86_400 {
                    return Err(UsageError(format!(
                        "--slot: {d:?} is not a whole number of seconds from 1s to 1d"
                    )));
                }
                w.slot_s = d.as_secs();
            }
            b"--id" => {
                let v = value("--id")?;
                match v.to_str() {
                    Some(s) if !s.is_empty() && s.len() <= 128 => w.id = Some(s.to_string()),
                    Some(_) => return Err(UsageError("--id needs a name of 1..128 bytes".into())),
                    None => return Err(UsageError("--id must be UTF-8 text".into())),
                }
            }
            b"--lock" => {
                flag(inline, name)?;
                w.lock = true
            }
            b"--no-wait" => {
                flag(inline, name)?;
                w.no_wait = true
            }
            b"-v" | b"--verbose" => {
                flag(inline, name)?;
                verbose = true
            }
            b"-f" | b"--foreground" => {
                flag(inline, name)?;
                foreground = true
            }
            b"--daemon" => {
                flag(inline, name)?;
                set_role(Role::Daemon { foreground: false }, &mut role)?
            }
            b"--worker" => set_role(Role::Worker { foreground: false }, &mut role)?,
            b"--status" => set_role(Role::Status { format: Format::Lines }, &mut role)?,
            b"--json" | b"--prometheus" => {
                flag(inline, name)?;
                if format.is_some() {
                    return Err(UsageError("--json and --prometheus: one at most".into()));
                }
                format = Some(if a == b"--json" { Format::Json } else { Format::Prometheus });
            }
            b"--is-active" => set_role(Role::IsActive, &mut role)?,
            b"--check" => set_role(Role::Check { strict: false }, &mut role)?,
            b"--strict" => {
                flag(inline, name)?;
                strict = true
            }
            b"--from-keepalived" => {
                let file = PathBuf::from(value("--from-keepalived")?);
                set_role(Role::FromKeepalived { file, instance: None }, &mut role)?
            }
            b"--instance" => match value("--instance")?.into_string() {
                Ok(s) if !s.is_empty() => instance = Some(s),
                _ => return Err(UsageError("--instance needs a UTF-8 name".into())),
            },
            b"-V" | b"--version" => set_role(Role::Version, &mut role)?,
            b"-h" | b"--help" => set_role(Role::Help, &mut role)?,
            _ => {
                let shown = String::from_utf8_lossy(a);
                return Err(UsageError(format!(
                    "unknown option {shown:?} (use -- before a COMMAND that starts with -)"
                )));
            }
        }
        i += 1;
    }
    w.argv = args[i.min(args.len())..].to_vec();
    // Invoked as `rcrond` (a link or the supervisor's worker), the default role is the daemon.
    if role.is_none() && invoked_as == "rcrond" && i >= args.len() {
        role = Some(Role::Daemon { foreground });
    }
    if format.is_some() && !matches!(role, Some(Role::Status { .. })) {
        return Err(UsageError("--json and --prometheus go with --status".into()));
    }
    let role = match role {
        Some(Role::Daemon { .. }) => Role::Daemon { foreground },
        Some(Role::Worker { .. }) => Role::Worker { foreground },
        Some(Role::Check { .. }) => Role::Check { strict },
        Some(Role::Status { .. }) => {
            Role::Status { format: format.take().unwrap_or(Format::Lines) }
        }
        Some(Role::FromKeepalived { file, .. }) => {
            Role::FromKeepalived { file, instance: instance.take() }
        }
        Some(r) => r,
        None if w.argv.is_empty() => return Err(UsageError("no COMMAND given".into())),
        None => Role::Wrapper(w),
    };
    if strict && !matches!(role, Role::Check { .. }) {
        return Err(UsageError("--strict goes with --check".into()));
    }
    if instance.is_some() {
        return Err(UsageError("--instance goes with --from-keepalived".into()));
    }
    let non_wrapper = !matches!(role, Role::Wrapper(_));
    if non_wrapper && i < args.len() {
        let extra = args[i].to_string_lossy();
        return Err(UsageError(format!("unexpected argument {extra:?}")));
    }
    Ok(Cli { conf, verbose, role })
}

/// [`duration`], its error naming the option.
fn named_duration(option: &str, v: &OsStr) -> Result<Duration, UsageError> {
    duration(v).map_err(|e| UsageError(format!("{option}: {}", e.0)))
}

/// `30s`, `5m`, `2h`, `1d`, `250ms`, or bare seconds.
pub fn duration(v: &OsStr) -> Result<Duration, UsageError> {
    let bad = || UsageError(format!("{v:?} is not a duration like 30s, 5m, 2h"));
    let huge = || UsageError(format!("{v:?} is too long a duration"));
    let s = v.to_str().ok_or_else(bad)?;
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = match num.parse() {
        Ok(n) => n,
        Err(_) if !num.is_empty() && matches!(unit, "" | "ms" | "s" | "m" | "h" | "d") => {
            return Err(huge());
        }
        Err(_) => return Err(bad()),
    };
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(bad()),
    }
    .ok_or_else(huge)?;
    if ms == 0 {
        return Err(UsageError(format!("{s:?}: a duration must be positive")));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, UsageError> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse("rcron", &v)
    }

    fn argv(c: &Cli) -> Vec<String> {
        match &c.role {
            Role::Wrapper(w) => w.argv.iter().map(|a| a.to_string_lossy().into()).collect(),
            r => panic!("not a wrapper: {r:?}"),
        }
    }

    #[test]
    fn original_forms_keep_working() {
        let c = p(&["echo", "a  b", "$HOME"]).unwrap();
        assert_eq!(argv(&c), ["echo", "a  b", "$HOME"]);
        assert_eq!(c.conf, None);
        let c = p(&["--conf", "/x.conf", "ls", "-l"]).unwrap();
        assert_eq!(c.conf, Some("/x.conf".into()));
        assert_eq!(argv(&c), ["ls", "-l"]);
    }

    #[test]
    fn options_stop_at_the_first_word_or_double_dash() {
        let c = p(&["-c/a", "--lock", "--timeout=5m", "--", "-weird", "--lock"]).unwrap();
        assert_eq!(c.conf, Some("/a".into()));
        assert_eq!(argv(&c), ["-weird", "--lock"]);
        let Role::Wrapper(w) = c.role else { panic!() };
        assert!(w.lock);
        assert_eq!(w.timeout, Some(Duration::from_secs(300)));
        let c = p(&["--conf=/b", "--nice", "-5", "--no-wait", "cmd", "--conf", "x"]).unwrap();
        assert_eq!(argv(&c), ["cmd", "--conf", "x"]);
    }

    #[test]
    fn roles() {
        assert_eq!(p(&["--daemon", "-f"]).unwrap().role, Role::Daemon { foreground: true });
        let lines = Role::Status { format: Format::Lines };
        assert_eq!(p(&["--status", "--conf", "x"]).unwrap().role, lines);
        let json = Role::Status { format: Format::Json };
        assert_eq!(p(&["--json", "--status"]).unwrap().role, json);
        assert!(p(&["--json", "--is-active"]).is_err());
        assert!(p(&["--json"]).unwrap_err().0.contains("go with --status"));
        assert!(p(&["--status", "--json", "--prometheus"]).is_err());
        assert_eq!(p(&["--is-active"]).unwrap().role, Role::IsActive);
        assert_eq!(p(&["--check"]).unwrap().role, Role::Check { strict: false });
        assert_eq!(p(&["--strict", "--check"]).unwrap().role, Role::Check { strict: true });
        let c = parse("rcrond", &[]).unwrap();
        assert_eq!(c.role, Role::Daemon { foreground: false });
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["--lock"],
            &["--bogus", "x"],
            &["--nice", "30", "x"],
            &["--timeout", "5x", "x"],
            &["--timeout", "0", "x"],
            &["--conf"],
            &["--status", "--daemon"],
            &["--check", "extra"],
            &["--strict", "x"],
            &["--lock=yes", "x"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be a usage error");
        }
    }

    /// `--slot` takes whole seconds from 1 s to a day (default cron's minute); `--id` a
    /// name of 1..128 bytes.
    #[test]
    fn slot_and_id() {
        let w = |args: &[&str]| match p(args).map(|c| c.role) {
            Ok(Role::Wrapper(w)) => Ok((w.slot_s, w.id)),
            Ok(r) => panic!("{r:?}"),
            Err(e) => Err(e.0),
        };
        assert_eq!(w(&["x"]), Ok((60, None)));
        assert_eq!(w(&["--slot", "10s", "--id", "nightly", "x"]), Ok((10, Some("nightly".into()))));
        assert_eq!(w(&["--slot=1d", "x"]), Ok((86_400, None)));
        for bad in [&["--slot", "1500ms", "x"][..], &["--slot", "2d", "x"], &["--slot", "0", "x"]] {
            assert!(
                w(bad).is_err_and(|e| e.contains("--slot") || e.contains("positive")),
                "{bad:?}"
            );
        }
        assert!(w(&["--id", "", "x"]).is_err_and(|e| e.contains("--id")));
    }

    #[test]
    fn durations() {
        let d = |s: &str| duration(OsStr::new(s)).map(|d| d.as_millis());
        assert_eq!(d("30s"), Ok(30_000));
        assert_eq!(d("5m"), Ok(300_000));
        assert_eq!(d("2h"), Ok(7_200_000));
        assert_eq!(d("250ms"), Ok(250));
        assert_eq!(d("7"), Ok(7_000));
        assert!(d("s").is_err());
        assert!(d("99999999999999999999h").is_err());
    }
}
