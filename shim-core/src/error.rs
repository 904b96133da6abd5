//! The one error of shim-core's public API; its Display is exactly the message Go sends.

use std::fmt;

use crate::io::IoError;
use crate::quote::shown;
use crate::runc::RuncError;

/// What went wrong, classed the way containerd branches on it. The adapter maps each class to a
/// ttrpc code; the message has no class text (containerd 1.x appends it itself; the task v2 front
/// appends it as Go's wrapped errors carry it, `shim_host::status::classed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotFound(String),
    /// No process `id` (an exec id, or the container's for a single-container shim): a NotFound
    /// whose id a front may word as its Go shim does; the message is Go v1's.
    NoSuchProcess {
        id: String,
        message: String,
    },
    AlreadyExists(String),
    /// The operation needs something that is not there yet: "container must be created".
    FailedPrecondition(String),
    /// The process's state machine refuses the operation ("cannot pause a paused container").
    /// Go sends these as plain errors, so containerd (and `ctr`) show them as unknown.
    InvalidState(String),
    InvalidArgument(String),
    /// runc failed; the message carries Go's prefix ("OCI runtime create failed: ...").
    Runtime(String),
    Internal(String),
}

impl Error {
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound(m)
            | Error::NoSuchProcess { message: m, .. }
            | Error::AlreadyExists(m)
            | Error::FailedPrecondition(m)
            | Error::InvalidState(m)
            | Error::InvalidArgument(m)
            | Error::Runtime(m)
            | Error::Internal(m) => m,
        }
    }

    pub(crate) fn no_such_process(id: &str) -> Error {
        Error::NoSuchProcess {
            id: id.to_string(),
            message: format!("process {} does not exist", shown(id)),
        }
    }

    pub(crate) fn container_not_found(id: &str) -> Error {
        Error::NotFound(format!("container {} not created", shown(id)))
    }

    pub(crate) fn not_created() -> Error {
        Error::FailedPrecondition("container must be created".into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<RuncError> for Error {
    fn from(e: RuncError) -> Error {
        Error::Runtime(e.to_string())
    }
}

/// IO set-up failures, worded as Go words them.
pub(crate) fn io_error(what: &str, e: IoError) -> Error {
    Error::Internal(format!("failed to create {what} I/O: {e}"))
}

/// Go's kill-error filter: a process that is already gone is NotFound, whatever runc said.
pub(crate) fn kill_error(e: RuncError) -> Error {
    let text = e.message.to_lowercase();
    if [
        "os: process already finished",
        "container not running",
        "no such process",
    ]
    .iter()
    .any(|s| text.contains(s))
    {
        Error::NotFound("process already finished".into())
    } else if text.contains("does not exist") {
        Error::NotFound("no such container".into())
    } else {
        Error::Runtime(format!("unknown error after kill: {}", e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runc::RuncOp;

    fn runc(message: &str) -> RuncError {
        RuncError {
            op: RuncOp::Kill,
            message: message.into(),
        }
    }

    #[test]
    fn not_found_messages_quote_a_huge_id_cut_short() {
        let id = "x".repeat(1024);
        for error in [Error::no_such_process(&id), Error::container_not_found(&id)] {
            assert!(error.message().len() < 120, "{}", error.message());
            assert!(error.message().contains('…'));
        }
        assert_eq!(
            Error::no_such_process("web").message(),
            "process web does not exist"
        );
    }

    #[test]
    fn kill_errors_of_a_gone_process_become_not_found() {
        let table = [
            (
                "runc did not terminate successfully: exit status 1: container not running",
                Error::NotFound("process already finished".into()),
            ),
            (
                "kill: No Such Process",
                Error::NotFound("process already finished".into()),
            ),
            (
                "os: process already finished",
                Error::NotFound("process already finished".into()),
            ),
            (
                "container \"x\" does not exist",
                Error::NotFound("no such container".into()),
            ),
            (
                "permission denied",
                Error::Runtime("unknown error after kill: permission denied".into()),
            ),
        ];
        for (message, want) in table {
            assert_eq!(kill_error(runc(message)), want, "{message}");
        }
    }
}
