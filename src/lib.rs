//! rcron: run a cron job on exactly one node of a group.
//!
//! The library holds every part; `main.rs` only maps the command line to a role and the
//! role's result to an exit code.
//!
//! - The core, pure (no I/O, unit-tested without sockets or clocks): `config` (the file and
//!   its validation), `cli`, `timing` (every duration the config implies), `handoff` (the
//!   run/skip rule and its facts), `statefile` and `control` (formats and parsers, with their
//!   small readers and writers), `report` (what `--status` and `--check` print), `exit`,
//!   `migrate` (`--from-keepalived`: a keepalived.conf read and mapped to rcron's keys).
//! - `backend`: the seam between the daemon and an election; `vrrp/`: the VRRP backend (wire
//!   format, receive filter, the RFC 5798 state machine, the raw socket, the node).
//! - `ledger/`: the run ledger among rcron peers (a slot's name, the datagram, the claim and
//!   record state machine, all pure; the UDP socket).
//! - `os/`: the OS boundary: `sys` (every `unsafe` block), `link` (interfaces, rtnetlink),
//!   `logging`, `job` (running a job's process group), `hooks` (notify hooks, track script).
//! - `roles/`: `wrapper`, `daemon` (the election worker), `supervisor`. Each imports the core,
//!   the backends and `os`, never another role.

#![deny(unsafe_code)]

pub mod backend;
pub mod cli;
pub mod config;
pub mod control;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod exit;
pub mod handoff;
pub mod ledger;
pub mod migrate;
pub mod os;
pub mod report;
pub mod roles;
pub mod statefile;
pub mod timing;
pub mod vrrp;
