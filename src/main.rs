//! rcron: run a cron job on exactly one node of a group.
//!
//! `main` maps the command line to a role and the role's result to an exit code; it does
//! nothing else.

#![deny(unsafe_code)]

use rcron::{cli, config, control, daemon, hooks, logging, supervisor, sys, wrapper};

use cli::Role;
use config::Config;
use std::path::Path;

/// Exit codes from sysexits.h.
const EX_USAGE: i32 = 64;
const EX_CONFIG: i32 = 78;

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
            return EX_USAGE;
        }
    };
    // The worker logs to stderr only when its supervisor does (it inherits stderr).
    let foreground =
        matches!(cli.role, Role::Daemon { foreground: true } | Role::Worker { foreground: true });
    logging::init(&tag, Config::default().syslog_facility, foreground || cli.verbose, cli.verbose);
    match &cli.role {
        Role::Help => {
            print!("{}", cli::USAGE);
            0
        }
        Role::Version => {
            println!(
                "rcron {} (commit {}, target {})",
                env!("CARGO_PKG_VERSION"),
                env!("RCRON_COMMIT"),
                env!("RCRON_TARGET")
            );
            0
        }
        Role::Check { strict } => check(cli.conf.as_deref(), *strict),
        role => {
            let cfg = match load_config(cli.conf.as_deref(), role) {
                Ok(c) => c,
                Err(code) => return code,
            };
            logging::set_facility(cfg.syslog_facility);
            let foreground_log = *role == (Role::Daemon { foreground: true });
            let conf_path = cli.conf.clone().unwrap_or_else(|| config::DEFAULT_PATH.into());
            if matches!(role, Role::Daemon { .. } | Role::Worker { .. }) {
                // `pidof rcrond` and `start-stop-daemon -n rcrond` find both processes.
                let _ = nix::sys::prctl::set_name(c"rcrond");
            }
            match role {
                Role::Wrapper(w) => wrapper::run(&cfg, w, start_ms),
                Role::Status => status(&cfg, true),
                Role::IsActive => status(&cfg, false),
                Role::Daemon { foreground } => {
                    supervisor::run(cfg, &conf_path, *foreground, foreground_log)
                }
                Role::Worker { .. } => daemon::run(cfg, &conf_path, true),
                Role::Help | Role::Version | Role::Check { .. } => 0,
            }
        }
    }
}

/// Loads the config as the contract says: an explicit `--conf` must exist; a missing default
/// file means defaults (with a warning) for the wrapper and an error for the daemon.
/// Errors go to stderr (cron mails them) and to syslog. Warnings (a key set twice) go to
/// syslog from the wrapper (a line on stderr would be mailed by cron at every run) and to the
/// log from the daemon; the worker and the status queries leave them to those.
fn load_config(conf: Option<&Path>, role: &Role) -> Result<Config, i32> {
    let wrapper = matches!(role, Role::Wrapper(_));
    let path = conf.unwrap_or(Path::new(config::DEFAULT_PATH));
    if conf.is_none() && wrapper && !path.exists() && std::fs::symlink_metadata(path).is_err() {
        log::warn!("{} does not exist; using defaults", path.display());
        return Ok(Config::default());
    }
    match config::load(path) {
        Ok(p) => {
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
        Err(e) => {
            let msg = e.to_string();
            for line in msg.lines() {
                eprintln!("rcron: config error: {line}");
                logging::syslog_only(3, &format!("config error: {line}"));
            }
            Err(EX_CONFIG)
        }
    }
}

/// `--check`: every error with its line, then every warning; exit 78 on an error (or, with
/// `--strict`, a warning), else 0.
fn check(conf: Option<&Path>, strict: bool) -> i32 {
    let path = conf.unwrap_or(Path::new(config::DEFAULT_PATH));
    let result = config::load(path).and_then(|p| {
        let mut errs = Vec::new();
        if p.config.expects_daemon() {
            errs = p.config.daemon_errors();
            errs.extend(hooks::errors(&p.config).into_iter().map(config::ConfigError::whole_file));
        }
        if errs.is_empty() { Ok(p) } else { Err(config::LoadError::Invalid(path.into(), errs)) }
    });
    match result {
        Ok(p) => {
            let mut warnings = p.warnings.clone();
            if p.config.expects_daemon() {
                let notes = hooks::warnings(&p.config);
                warnings.extend(notes.into_iter().map(config::ConfigError::whole_file));
            }
            for w in &warnings {
                match w.line {
                    0 => eprintln!("{}: warning: {}", path.display(), w.msg),
                    l => eprintln!("{}:{l}: warning: {}", path.display(), w.msg),
                }
            }
            if strict && !warnings.is_empty() {
                eprintln!("{}: {} warning(s), refused by --strict", path.display(), warnings.len());
                return EX_CONFIG;
            }
            let c = &p.config;
            let mode =
                if c.expects_daemon() { "election (rcron daemon)" } else { "state file only" };
            println!("{}: OK ({mode})", path.display());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            EX_CONFIG
        }
    }
}

/// `--status` (print) and `--is-active` (exit code only). With an election configured the
/// daemon answers; a daemon that does not answer means passive.
fn status(cfg: &Config, print: bool) -> i32 {
    if cfg.expects_daemon() {
        let answer =
            control::query(&cfg.control_socket, "status", std::time::Duration::from_secs(1));
        let state = match &answer {
            Ok(a) => control::field(a, "state").unwrap_or("passive").to_string(),
            Err(_) => "passive".to_string(),
        };
        if print {
            match &answer {
                Ok(a) => print!("{a}"),
                Err(e) => {
                    println!("state=passive");
                    println!("daemon={}", e.reason().trim_start_matches("daemon_"));
                    println!("error={e}");
                }
            }
        }
        return if state == "active" { 0 } else { 1 };
    }
    file_status(cfg, print)
}

fn file_status(cfg: &Config, print: bool) -> i32 {
    let (state, why, reading) = wrapper::file_state(cfg);
    if print {
        println!("state={}", state.as_str());
        println!("source=state_file");
        let trust = match why {
            wrapper::Reason::StateFile => "file",
            wrapper::Reason::Default => "default_state",
            wrapper::Reason::StaleDaemonFile => "stale_daemon_file",
        };
        println!("decided_by={trust}");
        println!("cluster={}", cfg.cluster_name);
        println!("state_file={}", cfg.state_file.display());
        match &reading {
            Ok(r) => {
                if let Some(m) = &r.master {
                    println!("master={m}");
                }
                if let Some(p) = r.priority {
                    println!("priority={p}");
                }
                if let Some(p) = r.pid {
                    println!("pid={p}");
                }
            }
            Err(e) => println!("state_file_error={e}"),
        }
    }
    if state == config::State::Active { 0 } else { 1 }
}
