//! The HTTP/1.1 that etcd's gateway needs, and nothing more: one POST per connection
//! (`Connection: close`), a JSON body with its length, the answer's status, and its body by
//! `Content-Length` or chunked transfer coding (RFC 9112 sections 6 and 7.1), read as a
//! stream (a watch never ends by itself).
//!
//! Why not a library: ureq 3 with its `http` and `ureq-proto` crates added ~130 KB of code
//! and pushed the static binary to 809 KB, far over the 512 KiB budget (README,
//! "Dependencies"); the gateway speaks this small subset only. A connection per request also
//! means no pooled connection that died silently during a partition is ever reused.
//!
//! Guarantees: nothing waits past the deadline given (connect, write and every read are
//! bounded by it); a malformed answer is an error, never a panic; header lines and chunk
//! sizes are bounded.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

/// Longest status or header line taken.
const MAX_LINE: usize = 8192;
/// Headers taken at most.
const MAX_HEADERS: usize = 64;

/// An endpoint URL as `config` validated it: `http://HOST:PORT` or `https://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// As written (`[v6]` keeps its brackets), for the `Host` header and TLS's name.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses a URL of `config::parse_endpoint`'s form; `None` for anything else.
    pub fn parse(url: &str) -> Option<Endpoint> {
        let (scheme, rest) = url.split_once("://")?;
        let (host, port) = rest.rsplit_once(':')?;
        Some(Endpoint { tls: scheme == "https", host: host.to_string(), port: port.parse().ok()? })
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timeout")
}

/// What is left until `deadline`, or a timeout error.
fn left(deadline: Instant) -> io::Result<std::time::Duration> {
    let l = deadline.saturating_duration_since(Instant::now());
    if l.is_zero() { Err(timed_out()) } else { Ok(l) }
}

/// A connection whose every read and write is bounded by one deadline.
pub struct Conn {
    stream: super::tls::Stream,
    deadline: Instant,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.tcp().set_read_timeout(Some(left(self.deadline)?))?;
        self.stream.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => timed_out(),
            _ => e,
        })
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.tcp().set_write_timeout(Some(left(self.deadline)?))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// An answer: its status, whether it says it is JSON, and its body as a stream.
pub struct Response {
    pub status: u16,
    pub json: bool,
    pub body: Body,
}

/// POSTs `body` (JSON) to `path` on `ep` and reads the answer's head; all by `deadline`.
pub fn post(
    ep: &Endpoint,
    tls: &super::tls::Config,
    path: &str,
    body: &str,
    deadline: Instant,
) -> io::Result<Response> {
    let addrs =
        (ep.host.trim_start_matches('[').trim_end_matches(']'), ep.port).to_socket_addrs()?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, left(deadline)?) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    let stream = tls.wrap(tcp, ep)?;
    let mut conn = Conn { stream, deadline };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        ep.host,
        ep.port,
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()?;
    let mut r = BufReader::new(conn);
    let status_line = line(&mut r)?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("status line {status_line:?}")))?;
    let mut framing = Framing::Close;
    let mut json = false;
    for n in 0.. {
        let h = line(&mut r)?;
        if h.is_empty() {
            break;
        }
        if n >= MAX_HEADERS {
            return Err(bad("too many headers".into()));
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad(format!("header {h:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| bad(format!("content-length {value:?}")))?;
            framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case("content-type") {
            json = value.to_ascii_lowercase().starts_with("application/json");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(bad(format!("transfer-encoding {value:?}")));
            }
            framing = Framing::Chunked(0);
        }
    }
    Ok(Response { status, json, body: Body { r, framing } })
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One CRLF-terminated line of at most [`MAX_LINE`] bytes, without its CRLF.
fn line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut buf)?;
    if !buf.ends_with(b"\n") {
        return Err(bad("line too long or cut".into()));
    }
    buf.pop();
    if buf.ends_with(b"\r") {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("line not UTF-8".into()))
}

/// How the body ends.
enum Framing {
    /// This many bytes left.
    Length(u64),
    /// Chunked: bytes left in the current chunk (0: a size line comes next).
    Chunked(u64),
    /// Chunked, the last chunk read.
    Done,
    /// Until the connection closes.
    Close,
}

/// An answer's body, decoded.
pub struct Body {
    r: BufReader<Conn>,
    framing: Framing,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.framing {
                Framing::Done | Framing::Length(0) => return Ok(0),
                Framing::Close => return self.r.read(buf),
                Framing::Length(n) => {
                    let want = buf.len().min(n.min(usize::MAX as u64) as usize);
                    let got = self.r.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut"));
                    }
                    self.framing = Framing::Length(n - got as u64);
                    return Ok(got);
                }
                Framing::Chunked(0) => {
                    let size_line = line(&mut self.r)?;
                    let hex = size_line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| bad(format!("chunk size {size_line:?}")))?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        while !line(&mut self.r)?.is_empty() {}
                        self.framing = Framing::Done;
                    } else {
                        self.framing = Framing::Chunked(size);
                    }
                }
                Framing::Chunked(n) => {
                    let want = buf.len().min(n.min(usize::MAX as u64) as usize);
                    let got = self.r.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk cut"));
                    }
                    let rest = n - got as u64;
                    if rest == 0 {
                        // The chunk's CRLF.
                        let crlf = line(&mut self.r)?;
                        if !crlf.is_empty() {
                            return Err(bad("chunk without CRLF".into()));
                        }
                    }
                    self.framing = Framing::Chunked(rest);
                    return Ok(got);
                }
            }
        }
    }
}

impl Body {
    /// Moves the deadline of every later read (a watch's stream lives longer than a request).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.r.get_mut().deadline = deadline;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    /// A server that answers one connection with `answer` bytes, then closes.
    fn serve(answer: &'static [u8]) -> Endpoint {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer);
            }
        });
        Endpoint { tls: false, host: "127.0.0.1".into(), port }
    }

    fn fetch(answer: &'static [u8]) -> io::Result<(u16, String)> {
        let ep = serve(answer);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut r = post(&ep, &super::super::tls::Config::none(), "/v3/x", "{}", deadline)?;
        let mut s = String::new();
        r.body.read_to_string(&mut s)?;
        Ok((r.status, s))
    }

    #[test]
    fn length_and_chunked_bodies_decode() {
        let a = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(a, (200, "hello".into()));
        let c = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        assert_eq!(fetch(c).unwrap(), (400, "abcde".into()));
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            &b"HTTP/1.1 2x0 OK\r\n\r\n"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"",
        ] {
            let leaked: &'static [u8] = Box::leak(bad.to_vec().into_boxed_slice());
            assert!(fetch(leaked).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_silent_server_costs_the_deadline_and_no_more() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ep =
            Endpoint { tls: false, host: "127.0.0.1".into(), port: l.local_addr().unwrap().port() };
        let t0 = Instant::now();
        let r = post(
            &ep,
            &super::super::tls::Config::none(),
            "/",
            "{}",
            t0 + Duration::from_millis(300),
        );
        assert!(r.is_err());
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        drop(l);
    }
}
