//! The VRRP election backend (`election = vrrp`): the nodes elect among themselves over IP
//! protocol 112, interoperating with keepalived (shared/vrrp-interop.md).
//!
//! `wire` (the packet format), `receive` (what an advert must pass), `election` (the RFC 5798
//! section 6.4 state machine) are pure; `socket` is the raw socket pair (one wakes the node,
//! the other holds the master's repeats for its next wake-up); `vips` holds the virtual
//! addresses while master; `node` wires them to the interface and is the daemon's
//! `backend::Backend`.

pub mod election;
pub mod node;
pub mod receive;
pub mod socket;
pub mod vips;
pub mod wire;
