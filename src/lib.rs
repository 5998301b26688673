//! rcron: run a cron job on exactly one node of a group.
//!
//! The library holds every part; `main.rs` only maps the command line to a role and the
//! role's result to an exit code. Pure parts (no I/O, unit-tested without sockets or clocks):
//! `config`, `cli`, `wire`, `election`, `handoff`, `receive`, and the parsers of `statefile`
//! and `control`. The OS shell around them: `net`, `daemon`, `supervisor`, `wrapper`, `job`,
//! `hooks`, `logging`; every `unsafe` block lives in `sys`.

#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod election;
pub mod handoff;
pub mod hooks;
pub mod job;
pub mod logging;
pub mod net;
pub mod receive;
pub mod statefile;
pub mod supervisor;
pub mod sys;
pub mod wire;
pub mod wrapper;
