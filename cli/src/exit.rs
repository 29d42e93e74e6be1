//! The exit codes, one place.

use std::process::ExitCode;

use vouch_attest::Status;

/// What the process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// VERIFIED, a valid signature, a valid file.
    Ok = 0,
    /// REJECTED, or an invalid signature.
    Rejected = 1,
    /// UNKNOWN: not enough verdicts.
    Unknown = 2,
    /// Usage or input error.
    Input = 3,
    /// No node could be reached.
    Unreachable = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl From<Status> for Exit {
    fn from(s: Status) -> Exit {
        match s {
            Status::Verified => Exit::Ok,
            Status::Rejected => Exit::Rejected,
            Status::Unknown => Exit::Unknown,
        }
    }
}
