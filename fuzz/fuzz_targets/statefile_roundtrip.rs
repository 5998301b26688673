//! render -> parse round trip of a state-file reading built from the input.
//!
//! A reading with no state is written as `passive`. The master field is free text here; the
//! daemon only ever writes an IPv4 address, so a master with a newline, trailing blanks or
//! more than 64 characters is outside the format: then only the first line must survive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcron::config::State;
use rcron::statefile::{self, Reading};

type Input = (u8, Option<u32>, Option<u64>, Option<u64>, Option<String>, Option<u8>, Option<u64>);

fuzz_target!(|input: Input| {
    let (state, pid, mono_ms, valid_ms, master, priority, since) = input;
    let r = Reading {
        state: match state % 3 {
            0 => None,
            1 => Some(State::Active),
            _ => Some(State::Passive),
        },
        pid,
        mono_ms,
        valid_ms,
        master,
        priority,
        since,
    };
    let text = statefile::render(&r);
    assert!(text.len() <= statefile::MAX_READ || r.master.as_ref().is_some_and(|m| m.len() > 64));
    let back = statefile::parse(text.as_bytes());
    let state = Some(r.state.unwrap_or(State::Passive));
    let representable = r.master.as_deref().is_none_or(|m| {
        m.chars().count() <= 64 && !m.contains('\n') && m.trim_end() == m
    });
    if representable {
        assert_eq!(back, Reading { state, ..r });
    } else {
        // A newline in the master injects lines of its own (`\npid=1`): only the first line
        // is certain.
        assert_eq!(back.state, state);
    }
});
