//! The control socket: a Unix stream socket on which the daemon answers one request per
//! connection with `key=value` lines, and the client side used by the wrapper, `--status`
//! and `--is-active`.
//!
//! Requests (one line, at most [`MAX_REQUEST`] bytes): `status [json|prometheus]`, `state`,
//! `job OUTCOME` (a wrapper's job ended),
//! `handoff CUT_MS` (the wrapper's run/skip question for the slot whose cut is CUT_MS on
//! CLOCK_MONOTONIC; answered `decision=run|skip` once decided, see `handoff.rs`), and
//! `slot JOB SLOT CUT_MS [now]` (the same question for job JOB (16 hex digits) and scheduled time
//! SLOT (epoch seconds), decided by the run ledger, or by the cut when the peers have none;
//! a skip for a slot another node holds adds `ran_on=`).
//! Guarantees: the server never blocks on a client (non-blocking sockets, a per-client
//! deadline, a fixed number of client slots); a client that sent a whole request is never
//! dropped (a crowd beyond the slots waits in the listen backlog instead); the client never
//! waits longer than its timeout, connecting included, and says why it got no answer.

use crate::report::Format;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

pub const MAX_REQUEST: usize = 256;
/// Clients whose request is not complete yet, at most. When more are waiting, the oldest one
/// still silent is dropped: a wrapper sends its question the moment it connects (it is
/// usually complete when accepted), so idle or slow clients cannot crowd it out.
pub const MAX_CLIENTS: usize = 256;
/// A client that has not sent its request by then is dropped.
pub const CLIENT_DEADLINE_MS: u64 = 2000;
/// Handoff questions waiting for their decision, at most (each holds one descriptor). Past
/// it the daemon stops accepting; newcomers wait in the listen backlog (`SOMAXCONN`, 4096 on
/// Linux >= 5.4) until decisions free room.
pub const MAX_PENDING: usize = 4096;

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `status`, `status json`, `status prometheus`.
    Status(crate::report::Format),
    State,
    /// `job OUTCOME`: a wrapper's job ended (`ok`, `fail`, `timeout`, `fenced`), counted
    /// for `--status`; answered `ok=1`.
    Job(JobOutcome),
    Handoff {
        cut_ms: u64,
    },
    /// `at_once`: the wrapper's `--no-wait` under etcd (` now` after CUT_MS): a node that
    /// does not lead answers from what it knows at once instead of waiting for the record.
    Slot {
        job: u64,
        slot: u64,
        cut_ms: u64,
        at_once: bool,
    },
}

/// How a job run through the wrapper ended, as it reports it to its daemon. The
/// discriminants are the positions in [`JobOutcome::ALL`] (the daemon's counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Ok,
    Fail,
    Timeout,
    Fenced,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 4] =
        [JobOutcome::Ok, JobOutcome::Fail, JobOutcome::Timeout, JobOutcome::Fenced];

    /// The word in the request and in `--status` (`jobs_ok`), as the wrapper's `status=`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Ok => "ok",
            JobOutcome::Fail => "fail",
            JobOutcome::Timeout => "timeout",
            JobOutcome::Fenced => "fenced",
        }
    }
}

/// A decimal of 1..19 digits.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Option<Request> {
    let line = std::str::from_utf8(line).ok()?.trim();
    match line {
        "status" => Some(Request::Status(Format::Lines)),
        "status json" => Some(Request::Status(Format::Json)),
        "status prometheus" => Some(Request::Status(Format::Prometheus)),
        "state" => Some(Request::State),
        _ => {
            if let Some(word) = line.strip_prefix("job ") {
                return JobOutcome::ALL.into_iter().find(|o| o.as_str() == word).map(Request::Job);
            }
            if let Some(rest) = line.strip_prefix("slot ") {
                let mut w = rest.split(' ');
                let (job, slot, cut) = (w.next()?, w.next()?, w.next()?);
                let at_once = match w.next() {
                    None => false,
                    Some("now") => true,
                    Some(_) => return None,
                };
                if w.next().is_some()
                    || job.len() != 16
                    || !job.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return None;
                }
                let job = u64::from_str_radix(job, 16).ok()?;
                let (slot, cut_ms) = (decimal(slot)?, decimal(cut)?);
                return Some(Request::Slot { job, slot, cut_ms, at_once });
            }
            let cut = line.strip_prefix("handoff ")?.trim();
            Some(Request::Handoff { cut_ms: decimal(cut)? })
        }
    }
}

/// One connected client, waiting for its request line.
pub struct Client {
    pub stream: UnixStream,
    pub deadline: u64,
    /// Accept order: the lowest is evicted first when the table is full.
    pub seq: u64,
    buf: heapless::Vec<u8, MAX_REQUEST>,
}

/// What reading from a client gave.
pub enum Progress {
    /// Not complete yet.
    Pending,
    /// A full line (or garbage: `None`).
    Line(Option<Request>),
    /// Closed, errored or over-long: drop it.
    Gone,
}

impl Client {
    pub fn new(stream: UnixStream, now: u64, seq: u64) -> Option<Client> {
        stream.set_nonblocking(true).ok()?;
        let deadline = now + CLIENT_DEADLINE_MS;
        Some(Client { stream, deadline, seq, buf: heapless::Vec::new() })
    }

    /// Reads what is available.
    pub fn read(&mut self) -> Progress {
        let mut chunk = [0u8; 64];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Progress::Gone,
                Ok(n) => {
                    for &b in &chunk[..n] {
                        if b == b'\n' {
                            return Progress::Line(parse_request(&self.buf));
                        }
                        if self.buf.push(b).is_err() {
                            return Progress::Gone;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Gone,
            }
        }
    }

    /// Sends the answer; best effort (a client that does not read loses it).
    pub fn answer(self, text: &str) {
        reply(self.stream, text);
    }

    /// The connection alone, for a question that waits for its decision (the request buffer
    /// is not kept: a thousand waiting wrappers cost a descriptor each, nothing more).
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }
}

/// Sends `text` on a connection and closes it; best effort.
pub fn reply(mut stream: UnixStream, text: &str) {
    let _ = stream.write_all(text.as_bytes());
}

/// Binds the control socket, replacing a stale one (a socket file nobody listens on).
/// Only root may connect (mode 0600), or root and `group` (mode 0660, that group).
pub fn listen(path: &Path, group: Option<u32>) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{}: another daemon answers there", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = bind_listener(path)?;
    use std::os::unix::fs::PermissionsExt;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        std::os::unix::fs::lchown(path, Some(0), Some(gid))?;
    }
    l.set_nonblocking(true)?;
    Ok(l)
}

/// A listening Unix stream socket with the largest backlog the kernel allows, so that a crowd
/// of wrappers (a crontab with hundreds of jobs due the same minute) queues instead of failing.
fn bind_listener(path: &Path) -> std::io::Result<UnixListener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let e = std::io::Error::from;
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket::socket(AddressFamily::Unix, SockType::Stream, flags, None).map_err(e)?;
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path).map_err(e)?)
        .map_err(e)?;
    socket::listen(&fd, Backlog::MAXCONN).map_err(e)?;
    Ok(UnixListener::from(fd))
}

/// Why a client got no answer; [`QueryError::reason`] is the word the wrapper logs.
#[derive(Debug)]
pub enum QueryError {
    /// No daemon listens (no socket file, connection refused, no permission).
    Unreachable(std::io::Error),
    /// The daemon's backlog stayed full for the whole timeout, or it answered `error=busy`.
    Busy,
    /// Connected, but no whole answer within the timeout (the daemon is hung or frozen).
    Timeout,
    /// The daemon closed or reset the connection without a word: it died (before or after
    /// reading the question), or stopped with the question still pending.
    Closed,
    /// An answer that is not `key=value` text, or an `error=` line.
    BadAnswer(String),
}

impl QueryError {
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::Unreachable(_) => "daemon_unreachable",
            QueryError::Busy => "daemon_busy",
            QueryError::Timeout => "daemon_timeout",
            QueryError::Closed => "daemon_closed",
            QueryError::BadAnswer(_) => "daemon_bad_answer",
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Unreachable(e) => write!(f, "unreachable: {e}"),
            QueryError::Busy => write!(f, "busy: no room for the question in time"),
            QueryError::Timeout => write!(f, "no answer in time"),
            QueryError::Closed => write!(f, "closed the connection without an answer"),
            QueryError::BadAnswer(a) => write!(f, "bad answer {a:?}"),
        }
    }
}

/// Client side: sends `request`, returns the answer. The whole exchange, connecting
/// included, takes at most `timeout` (a connect to a full backlog waits, bounded by
/// `SO_SNDTIMEO`, which Linux applies to a Unix socket's connect).
pub fn query(path: &Path, request: &str, timeout: Duration) -> Result<String, QueryError> {
    query_open(path, request, timeout).map(|(text, _)| text)
}

/// A connection the daemon keeps open after a `run` answer under a fence (etcd): it carries
/// `until=MS` at every renewal of the lease and `stop reason=R` when leadership ends (R: the
/// transition's reason), or closes when the daemon dies. `pending`: bytes already read past
/// the answer.
pub struct FenceStream {
    pub stream: UnixStream,
    pub pending: Vec<u8>,
}

/// [`query`], and the connection when the answer ended with an empty line (a fenced run)
/// instead of the end of the stream.
pub fn query_open(
    path: &Path,
    request: &str,
    timeout: Duration,
) -> Result<(String, Option<FenceStream>), QueryError> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
    use std::io::ErrorKind;
    let start = std::time::Instant::now();
    let io = std::io::Error::from;
    let fd = socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| QueryError::Unreachable(io(e)))?;
    let tv =
        nix::sys::time::TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros().max(1) as _);
    let _ = socket::setsockopt(&fd, sockopt::SendTimeout, &tv);
    let addr = UnixAddr::new(path).map_err(|e| QueryError::Unreachable(io(e)))?;
    loop {
        match socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Err(QueryError::Busy),
            Err(e) => return Err(QueryError::Unreachable(io(e))),
        }
    }
    let mut s = UnixStream::from(fd);
    let left = |start: std::time::Instant| {
        let l = timeout.saturating_sub(start.elapsed());
        if l.is_zero() { Err(QueryError::Timeout) } else { Ok(l) }
    };
    let timed_out = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => QueryError::Timeout,
        _ => QueryError::BadAnswer(e.to_string()),
    };
    // A daemon that died holding the question unread resets the connection: to the caller
    // that is a daemon gone without an answer, as a close is (it asks a restarted one again).
    let gone = |e: std::io::Error| match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => QueryError::Closed,
        _ => timed_out(e),
    };
    s.set_write_timeout(Some(left(start)?)).map_err(timed_out)?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(gone)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let mut fence = None;
    loop {
        s.set_read_timeout(Some(left(start)?)).map_err(timed_out)?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 64 * 1024 {
                    return Err(QueryError::BadAnswer("over 64 KiB".into()));
                }
                if let Some(i) = out.windows(2).position(|w| w == b"\n\n") {
                    let pending = out.split_off(i + 2);
                    out.truncate(i + 1);
                    fence = Some(pending);
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if out.is_empty() => return Err(gone(e)),
            Err(e) => return Err(timed_out(e)),
        }
    }
    let text = String::from_utf8(out).map_err(|_| QueryError::BadAnswer("not UTF-8".into()))?;
    match field(&text, "error") {
        Some("busy") => Err(QueryError::Busy),
        Some(_) => Err(QueryError::BadAnswer(text)),
        None if text.is_empty() => Err(QueryError::Closed),
        None => Ok((text, fence.map(|pending| FenceStream { stream: s, pending }))),
    }
}

/// The value of `key` in a `key=value` answer.
pub fn field<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_garbage_does_not() {
        assert_eq!(parse_request(b"status"), Some(Request::Status(Format::Lines)));
        assert_eq!(parse_request(b"status json"), Some(Request::Status(Format::Json)));
        assert_eq!(parse_request(b"job fenced"), Some(Request::Job(JobOutcome::Fenced)));
        assert_eq!(parse_request(b"job done"), None);
        assert_eq!(parse_request(b" state \r"), Some(Request::State));
        assert_eq!(parse_request(b"stat"), None);
        assert_eq!(parse_request(b"handoff 12345"), Some(Request::Handoff { cut_ms: 12345 }));
        assert_eq!(parse_request(b"handoff -1"), None);
        assert_eq!(parse_request(b"handoff 99999999999999999999999"), None);
        assert_eq!(parse_request(b"handoff "), None);
        assert_eq!(parse_request(&[0xff, 0]), None);
        let (job, slot, cut_ms) = (0x927b_2cdb_066c_63a1, 1_796_000_040, 77);
        let waits = Request::Slot { job, slot, cut_ms, at_once: false };
        assert_eq!(parse_request(b"slot 927b2cdb066c63a1 1796000040 77"), Some(waits));
        let at_once = Request::Slot { job, slot, cut_ms, at_once: true };
        assert_eq!(parse_request(b"slot 927b2cdb066c63a1 1796000040 77 now"), Some(at_once));
        for bad in [
            &b"slot 927b2cdb066c63a 1796000040 77"[..],
            b"slot 927b2cdb066c63a1 1796000040",
            b"slot 927b2cdb066c63a1 1796000040 77 1",
            b"slot 927b2cdb066c63g1 1796000040 77",
            b"slot 927b2cdb066c63a1 -1 77",
            b"slot 927b2cdb066c63a1  1796000040 77",
        ] {
            assert_eq!(parse_request(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn answer_fields() {
        let a = "state=active\nmaster=192.0.2.1\n";
        assert_eq!(field(a, "state"), Some("active"));
        assert_eq!(field(a, "master"), Some("192.0.2.1"));
        assert_eq!(field(a, "sta"), None);
    }
}
