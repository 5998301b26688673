//! The OS boundary: system calls, interfaces, processes and logging. Every `unsafe` block of
//! rcron is in `sys`.

pub mod addr;
pub mod heartbeat;
pub mod hooks;
pub mod job;
pub mod link;
pub mod logging;
pub mod sys;
