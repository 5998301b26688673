//! Logging: syslog (RFC 3164 datagrams to `/dev/log`) and, when asked or when stderr is a
//! terminal, stderr. One small `log::Log` instead of a logging framework.
//!
//! Owns: the syslog connection (reconnected once if syslogd restarted), the tag and facility.
//! Guarantees: logging never fails the caller; a missing syslogd only loses the line.

use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};

const DEV_LOG: &str = "/dev/log";
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

struct Sink {
    tag: String,
    pid: u32,
    facility: u8,
    to_stderr: bool,
    sock: Option<UnixDatagram>,
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();
static LOGGER: Logger = Logger;

struct Logger;

/// Starts logging with `tag` (basename of argv[0], as the original's openlog) to `facility`
/// (code already shifted). `stderr`: also write to stderr (always when it is a terminal).
pub fn init(tag: &str, facility: u8, stderr: bool, verbose: bool) {
    let to_stderr = stderr || std::io::stderr().is_terminal();
    let sink = Sink { tag: tag.into(), pid: std::process::id(), facility, to_stderr, sock: None };
    if SINK.set(Mutex::new(sink)).is_err() {
        set_facility(facility);
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if verbose { log::LevelFilter::Debug } else { log::LevelFilter::Info });
}

/// Changes the facility once the config is known (logging starts before it is read).
pub fn set_facility(facility: u8) {
    if let Some(m) = SINK.get()
        && let Ok(mut s) = m.lock()
    {
        s.facility = facility;
    }
}

/// Sends one line at syslog `severity` (0..7), whatever the `log` level filter says.
pub fn line(severity: u8, msg: &str) {
    let Some(m) = SINK.get() else { return };
    let Ok(mut s) = m.lock() else { return };
    s.emit(severity, msg);
}

/// Sends one line to syslog only (for text the caller already printed to stderr).
pub fn syslog_only(severity: u8, msg: &str) {
    let Some(m) = SINK.get() else { return };
    let Ok(mut s) = m.lock() else { return };
    let echo = std::mem::replace(&mut s.to_stderr, false);
    s.emit(severity, msg);
    s.to_stderr = echo;
}

impl Sink {
    fn emit(&mut self, severity: u8, msg: &str) {
        if self.to_stderr {
            // One write per line: wrappers that share a stderr (a crowd started by one
            // shell) never interleave within a line.
            let _ = std::io::stderr().write_all(format!("{}: {msg}\n", self.tag).as_bytes());
        }
        let secs = crate::os::sys::wall_secs();
        let stamp = match crate::os::sys::local_time(secs as i64) {
            Some((mon, d, h, mi, se)) => format!("{} {d:2} {h:02}:{mi:02}:{se:02} ", MONTHS[mon]),
            None => String::new(),
        };
        let pri = (self.facility & !7) | (severity & 7);
        let packet = format!("<{pri}>{stamp}{}[{}]: {msg}", self.tag, self.pid);
        for _ in 0..2 {
            if self.sock.is_none() {
                // Non-blocking: a stuck or slow syslogd loses lines, it never stalls a job.
                self.sock = UnixDatagram::unbound()
                    .ok()
                    .filter(|s| s.set_nonblocking(true).is_ok() && s.connect(DEV_LOG).is_ok());
            }
            match self.sock.as_ref().map(|s| s.send(packet.as_bytes())) {
                Some(Ok(_)) | None => return,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Some(Err(_)) => self.sock = None,
            }
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let severity = match r.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 6,
            log::Level::Debug | log::Level::Trace => 7,
        };
        line(severity, &r.args().to_string());
    }

    fn flush(&self) {}
}
