//! The one place mapping shim-core's typed errors to ttrpc status codes (containerd's errdefs
//! classes) for the task v2/v3 front; what the server itself refuses is in `shim_host::status`.

use shim_core::error::Error;
use shim_host::status::status;
pub use shim_host::status::{invalid, Reply};
use ttrpc::{Code, Status};

/// The ttrpc code containerd's `errdefs.FromGRPC` needs to pick the error class.
pub fn code_of(e: &Error) -> Code {
    match e {
        Error::NotFound(_) => Code::NOT_FOUND,
        Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
        Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
        Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
        // As Go's runc v2 shim: state machine refusals and runc failures go through
        // errdefs.ToGRPC as plain errors, which containerd reads as unknown.
        Error::InvalidState(_) | Error::Runtime(_) | Error::Internal(_) => Code::UNKNOWN,
    }
}

/// A status reply with the error's message unchanged (containerd appends the class itself).
pub fn to_status(e: Error) -> Status {
    status(code_of(&e), e.to_string())
}

/// Shutdown was accepted: what a Create arriving after it gets.
pub fn shutting_down() -> Status {
    status(Code::FAILED_PRECONDITION, "shim is shutting down")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_its_code_and_keeps_its_message() {
        let table: Vec<(Error, i32)> = vec![
            (Error::NotFound("container c1 not created".into()), 5),
            (Error::AlreadyExists("id e1: already exists".into()), 6),
            (
                Error::FailedPrecondition("container must be created".into()),
                9,
            ),
            (
                Error::InvalidState("cannot pause a paused container".into()),
                2,
            ),
            (Error::InvalidArgument("invalid container id".into()), 3),
            (Error::Runtime("OCI runtime create failed: x".into()), 2),
            (Error::Internal("panic: boom".into()), 2),
        ];
        for (err, number) in table {
            let message = err.to_string();
            assert_eq!(code_of(&err) as i32, number, "{message}");
            let s = to_status(err);
            assert_eq!((s.code, s.message.as_str()), (number, message.as_str()));
        }
        assert_eq!(shutting_down().code, 9);
    }
}
