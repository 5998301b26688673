//! The run ledger: exactly-once for scheduled jobs among rcron peers, whatever their crons'
//! phases and clock offsets (up to `max_clock_offset`).
//!
//! `wire` (the datagram) and `book` (records, claims, peers; the rule itself) are pure;
//! `socket` is the UDP socket. The worker (`roles::daemon`) asks the book when a wrapper
//! asks it, with the election's standing; `handoff` remains the rule for peers without a
//! ledger. `mark` is the wrapper's side: which of a node's wrappers runs a slot its node
//! holds.

pub mod book;
pub mod mark;
pub mod node;
pub mod slot;
pub mod socket;
pub mod wire;
