//! What the binary does when run: the crontab `wrapper`, the election worker (`daemon`) and
//! its `supervisor`. Each role imports the core, the backends and `os`, never another role.

pub mod daemon;
pub mod supervisor;
pub mod wrapper;
