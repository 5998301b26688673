//! The state-file reader on any file (the wrapper reads at most `MAX_READ` bytes of it).
//!
//! Checks, beyond "never panics": `judge` only ever says the state the file says, says
//! `Unknown` exactly when the first line is not `active`/`passive`, calls a file `Stale` only
//! when it carries a pid or a stamp, and always calls it stale when its pid is gone; a
//! reading the daemon could write back (`render`) reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::config::State;
use rcron::statefile::{self, MAX_READ, Reading, Trust};

fuzz_target!(|data: &[u8]| {
    let r = statefile::parse(data);
    let _ = statefile::parse(&data[..data.len().min(MAX_READ)]);
    if let Some(m) = &r.master {
        assert!(m.chars().count() <= 64);
    }

    let stamp = r.mono_ms.unwrap_or(0);
    let valid = r.valid_ms.unwrap_or(3000);
    let nows = [
        0,
        1,
        stamp.saturating_sub(1),
        stamp,
        stamp.saturating_add(valid),
        stamp.saturating_add(valid).saturating_add(1),
        u64::MAX,
    ];
    for now in nows {
        match statefile::judge(&r, now, |_| true) {
            Trust::Says(s) => assert_eq!(Some(s), r.state),
            Trust::Unknown => assert_eq!(r.state, None),
            Trust::Stale => assert!(r.state.is_some() && r.mono_ms.is_some()),
        }
        let dead = statefile::judge(&r, now, |_| false);
        match (r.state, r.pid) {
            (None, _) => assert_eq!(dead, Trust::Unknown),
            (Some(_), Some(_)) => assert_eq!(dead, Trust::Stale),
            (Some(_), None) => {}
        }
    }

    // The daemon writes masters as IPv4 addresses: a value with a newline, trailing blanks
    // or more than 64 characters is outside the format, so only the others must survive.
    let representable = r.master.as_deref().is_none_or(|m| {
        m.chars().count() <= 64 && !m.contains('\n') && m.trim_end() == m
    });
    if representable {
        let back = statefile::parse(statefile::render(&r).as_bytes());
        let want = Reading {
            state: Some(r.state.unwrap_or(State::Passive)),
            ..r
        };
        assert_eq!(back, want);
    }
});
