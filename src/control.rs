//! The control socket: a Unix stream socket on which the daemon answers one request per
//! connection with `key=value` lines, and the client side used by the wrapper, `--status`
//! and `--is-active`.
//!
//! Requests (one line, at most [`MAX_REQUEST`] bytes): `status`, `state`, and
//! `handoff CUT_MS` (the wrapper's run/skip question for the slot whose cut is CUT_MS on
//! CLOCK_MONOTONIC; answered `decision=run|skip` once decided, see `handoff.rs`).
//! Guarantees: the server never blocks on a client (non-blocking sockets, a per-client
//! deadline, a fixed number of client slots); the client never waits longer than its timeout.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

pub const MAX_REQUEST: usize = 256;
/// Clients read at once. When more connect, the oldest one still silent is dropped: a wrapper
/// sends its question the moment it connects, so idle or slow clients cannot crowd it out.
pub const MAX_CLIENTS: usize = 32;
/// A client that has not sent its request by then is dropped.
pub const CLIENT_DEADLINE_MS: u64 = 500;

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    State,
    Handoff { cut_ms: u64 },
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Option<Request> {
    let line = std::str::from_utf8(line).ok()?.trim();
    match line {
        "status" => Some(Request::Status),
        "state" => Some(Request::State),
        _ => {
            let cut = line.strip_prefix("handoff ")?.trim();
            if cut.is_empty() || cut.len() > 19 || !cut.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Request::Handoff { cut_ms: cut.parse().ok()? })
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
    pub fn answer(mut self, text: &str) {
        let _ = self.stream.write_all(text.as_bytes());
    }
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
    let l = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        std::os::unix::fs::lchown(path, Some(0), Some(gid))?;
    }
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Client side: sends `request`, returns the answer; errors on no answer within `timeout`.
pub fn query(path: &Path, request: &str, timeout: Duration) -> std::io::Result<String> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 64 * 1024 {
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|_| std::io::ErrorKind::InvalidData.into())
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
        assert_eq!(parse_request(b"status"), Some(Request::Status));
        assert_eq!(parse_request(b" state \r"), Some(Request::State));
        assert_eq!(parse_request(b"stat"), None);
        assert_eq!(parse_request(b"handoff 12345"), Some(Request::Handoff { cut_ms: 12345 }));
        assert_eq!(parse_request(b"handoff -1"), None);
        assert_eq!(parse_request(b"handoff 99999999999999999999999"), None);
        assert_eq!(parse_request(b"handoff "), None);
        assert_eq!(parse_request(&[0xff, 0]), None);
    }

    #[test]
    fn answer_fields() {
        let a = "state=active\nmaster=192.0.2.1\n";
        assert_eq!(field(a, "state"), Some("active"));
        assert_eq!(field(a, "master"), Some("192.0.2.1"));
        assert_eq!(field(a, "sta"), None);
    }
}
