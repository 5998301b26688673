//! The control-socket request parser, alone and behind the daemon's line framing.
//!
//! Checks, beyond "never panics": `status [json|prometheus]`, `state` and `job OUTCOME` are
//! recognised only as the whole trimmed line; a parsed `handoff` or `slot` prints back to a line that parses to the same request. The input
//! is also sent over a socket pair to a `control::Client`, which must answer exactly: the
//! first line if it ends within `MAX_REQUEST` bytes, `Gone` if the line is longer, `Pending`
//! otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::control::{self, Client, MAX_REQUEST, Progress, Request};
use std::io::Write;
use std::os::unix::net::UnixStream;

fuzz_target!(|data: &[u8]| {
    let req = control::parse_request(data);
    let trimmed = std::str::from_utf8(data).map(str::trim);
    match req {
        Some(Request::Status(format)) => {
            let want = format!("status {}", format.word());
            assert_eq!(trimmed, Ok(want.trim_end()));
        }
        Some(Request::State) => assert_eq!(trimmed, Ok("state")),
        Some(Request::Job(outcome)) => {
            assert_eq!(trimmed.map(|t| t.to_string()), Ok(format!("job {}", outcome.as_str())));
        }
        Some(Request::Handoff { cut_ms }) => {
            let line = format!("handoff {cut_ms}");
            assert_eq!(control::parse_request(line.as_bytes()), req);
        }
        Some(Request::Slot { job, slot, cut_ms, at_once }) => {
            let now = if at_once { " now" } else { "" };
            let line = format!("slot {job:016x} {slot} {cut_ms}{now}");
            assert_eq!(control::parse_request(line.as_bytes()), req);
        }
        None => {}
    }

    // Line framing, as the daemon reads a client. Small inputs only: the writer blocks once
    // the socket buffer is full.
    if data.len() > 4096 {
        return;
    }
    let (mut peer, ours) = UnixStream::pair().expect("socketpair");
    peer.write_all(data).expect("write to socket pair");
    let mut client = Client::new(ours, 0, 0).expect("client");
    let newline = data.iter().position(|&b| b == b'\n');
    match (client.read(), newline) {
        (Progress::Line(got), Some(p)) if p <= MAX_REQUEST => {
            assert_eq!(got, control::parse_request(&data[..p]));
        }
        (Progress::Gone, nl) if nl.unwrap_or(data.len()) > MAX_REQUEST => {}
        (Progress::Pending, None) if data.len() <= MAX_REQUEST => {}
        (got, _) => panic!(
            "framing: {} for {} bytes, newline at {newline:?}",
            match got {
                Progress::Pending => "Pending",
                Progress::Line(_) => "Line",
                Progress::Gone => "Gone",
            },
            data.len()
        ),
    }
});
