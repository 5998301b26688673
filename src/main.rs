//! rcron: run a cron job on exactly one node of a group.
//!
//! `main` maps the command line to a role and the role's result to an exit code; it does
//! nothing else.

#![deny(unsafe_code)]

use rcron::cli::{self, Role};
use rcron::config::{self, Config};
use rcron::exit::Failure;
use rcron::os::{logging, sys};
use rcron::report;
use rcron::roles::{daemon, supervisor, wrapper};
use std::io::Write;
use std::path::Path;

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let start_ms = sys::monotonic_ms();
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let tag = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rcron".into());
    let rest: Vec<_> = args.collect();
    let cli = match cli::parse(&tag, &rest) {
        Ok(c) => c,
        Err(e) => {
            let short: String = cli::USAGE.lines().take(4).map(|l| format!("{l}\n")).collect();
            eprintln!("{tag}: {}\n{short}(see {tag} --help)", e.0);
            return Failure::Usage.exit_code();
        }
    };
    // The worker logs to stderr only when its supervisor does (it inherits stderr).
    let foreground =
        matches!(cli.role, Role::Daemon { foreground: true } | Role::Worker { foreground: true });
    logging::init(&tag, Config::default().syslog_facility, foreground || cli.verbose, cli.verbose);
    match run(&cli, start_ms) {
        Ok(code) => code,
        Err(f) => {
            for line in f.to_string().lines() {
                let what = if matches!(f, Failure::Config(_)) { "config error: " } else { "" };
                // Not eprintln: a detached daemon's stderr may be a pipe nobody reads any more.
                let _ = writeln!(std::io::stderr(), "{tag}: {what}{line}");
                logging::syslog_only(3, &format!("{what}{line}"));
            }
            f.exit_code()
        }
    }
}

fn run(cli: &cli::Cli, start_ms: u64) -> Result<i32, Failure> {
    let conf_path = cli.conf.clone().unwrap_or_else(|| config::DEFAULT_PATH.into());
    match &cli.role {
        Role::Help => {
            print!("{}", cli::USAGE);
            Ok(0)
        }
        Role::Version => {
            println!(
                "rcron {} (commit {}, target {})",
                env!("CARGO_PKG_VERSION"),
                env!("RCRON_COMMIT"),
                env!("RCRON_TARGET")
            );
            Ok(0)
        }
        Role::Check { strict } => report::check(&conf_path, *strict),
        Role::Status { format } => match config::load(&conf_path) {
            Err(e @ config::LoadError::Invalid(..)) => {
                // A daemon may still run on the file as it was: show it, then the errors.
                let (cfg, _) =
                    config::load_lenient(&conf_path).map_err(|_| Failure::Config(e.to_string()))?;
                report::status(&cfg, Some(*format));
                Err(Failure::Config(format!(
                    "{e}\n(the status above was found through the file's valid lines)"
                )))
            }
            Err(e) => Err(Failure::Config(e.to_string())),
            Ok(p) => Ok(report::status(&p.config, Some(*format))),
        },
        Role::FromKeepalived { file, instance } => {
            let c = rcron::migrate::from_file(file, instance.as_deref())?;
            print!("{}", c.text);
            for u in &c.unmapped {
                eprintln!("rcron: not mapped: {u}");
            }
            Ok(0)
        }
        role => {
            let cfg = load_config(cli.conf.as_deref(), role)?;
            logging::set_facility(cfg.syslog_facility);
            if matches!(role, Role::Daemon { .. } | Role::Worker { .. }) {
                // `pidof rcrond` and `start-stop-daemon -n rcrond` find both processes.
                let _ = nix::sys::prctl::set_name(c"rcrond");
            }
            match role {
                Role::Wrapper(w) => wrapper::run(&cfg, w, start_ms),
                Role::IsActive => Ok(report::status(&cfg, None)),
                Role::Daemon { foreground } => {
                    let log_stderr = *foreground;
                    supervisor::run(cfg, &conf_path, *foreground, log_stderr)
                }
                Role::Worker { .. } => daemon::run(cfg, &conf_path, true),
                Role::Help
                | Role::Version
                | Role::Check { .. }
                | Role::Status { .. }
                | Role::FromKeepalived { .. } => Ok(0),
            }
        }
    }
}

/// Loads the config as the contract says: an explicit `--conf` must exist; a missing default
/// file means defaults (with a warning) for the wrapper and an error for the daemon.
/// Warnings (a key set twice) go to syslog from the wrapper (a line on stderr would be mailed
/// by cron at every run) and to the log from the daemon; the worker and the status queries
/// leave them to those.
fn load_config(conf: Option<&Path>, role: &Role) -> Result<Config, Failure> {
    let wrapper = matches!(role, Role::Wrapper(_));
    let path = conf.unwrap_or(Path::new(config::DEFAULT_PATH));
    if conf.is_none() && wrapper && !path.exists() && std::fs::symlink_metadata(path).is_err() {
        log::warn!("{} does not exist; using defaults", path.display());
        return Ok(Config::default());
    }
    let p = config::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    for w in &p.warnings {
        let line = format!("config warning: {}:{}: {}", path.display(), w.line, w.msg);
        match role {
            Role::Wrapper(_) => logging::syslog_only(4, &line),
            Role::Daemon { .. } => log::warn!("{line}"),
            _ => {}
        }
    }
    Ok(p.config)
}
