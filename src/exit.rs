//! Why a role could not do its work, and the exit code each reason maps to (sysexits.h), in
//! one place: roles return a [`Failure`], `main` maps it once. A role that did its work returns
//! its own code (the wrapper: the job's).

use std::fmt;

/// Exit code of a usage error (EX_USAGE).
pub const USAGE: i32 = 64;
/// Exit code of input that holds nothing usable (EX_DATAERR): `--from-keepalived`.
pub const DATAERR: i32 = 65;
/// Exit code of an input file that cannot be read (EX_NOINPUT): `--from-keepalived`.
pub const NOINPUT: i32 = 66;
/// Exit code of a configuration error (EX_CONFIG): the job runs on no node.
pub const CONFIG: i32 = 78;
/// Exit code of an operating-system failure (EX_OSERR).
pub const OSERR: i32 = 71;
/// Exit code of a file that cannot be created (EX_CANTCREAT).
pub const CANTCREAT: i32 = 73;

/// What stopped a role.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The command line is wrong (already explained to the user).
    Usage,
    /// The configuration is unusable; every line of the text is one problem.
    Config(String),
    /// The system refused something the role needs (a socket, a signalfd, a child process).
    Os(String),
    /// A file the role must create cannot be (a lock file, the pid file).
    CantCreate(String),
    /// The input holds nothing usable (a keepalived.conf without the instance asked for).
    Data(String),
    /// An input file cannot be read.
    NoInput(String),
    /// Another daemon already runs with this pid file, or the daemon did not start.
    NotStarted(String),
}

impl Failure {
    /// The process's exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage => USAGE,
            Failure::Config(_) => CONFIG,
            Failure::Os(_) => OSERR,
            Failure::CantCreate(_) => CANTCREAT,
            Failure::Data(_) => DATAERR,
            Failure::NoInput(_) => NOINPUT,
            Failure::NotStarted(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage => write!(f, "usage error"),
            Failure::Config(e)
            | Failure::Os(e)
            | Failure::CantCreate(e)
            | Failure::Data(e)
            | Failure::NoInput(e)
            | Failure::NotStarted(e) => {
                write!(f, "{e}")
            }
        }
    }
}
