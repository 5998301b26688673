//! The etcd election backend (`election = etcd`): the node that holds the group's leader key
//! in an existing etcd cluster is active; the run ledger's records are etcd keys written in
//! the same transaction that checks the leader key is still ours.
//!
//! - `api`: etcd's v3 HTTP/JSON gateway (blocking requests, endpoint failover).
//! - `leader`: the leadership state machine, pure: lease, campaign, the local safety
//!   deadline, the slots' records.
//! - `node`: the backend the daemon drives: the state machine, the threads that do the
//!   blocking requests and the watch, and the descriptor that wakes the worker.

pub mod api;
pub mod http;
pub mod leader;
pub mod node;
pub mod tls;
