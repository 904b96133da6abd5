//! The one place mapping shim-core's typed errors to ttrpc status codes (containerd's errdefs
//! classes) for the v1 front; what the server itself refuses is in `shim_host::status`.

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
        // As Go: its state machine refusals are plain errors. containerd does not branch on
        // them, and ctr then prints exactly what it prints with the Go shim.
        Error::InvalidState(_) | Error::Runtime(_) | Error::Internal(_) => Code::UNKNOWN,
    }
}

/// A status reply with the error's message unchanged (containerd appends the class itself).
pub fn to_status(e: Error) -> Status {
    status(code_of(&e), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_its_code_and_keeps_its_message() {
        let table: Vec<(Error, Code, i32)> = vec![
            (
                Error::NotFound("process nope does not exist".into()),
                Code::NOT_FOUND,
                5,
            ),
            (
                Error::AlreadyExists("id d1: already exists".into()),
                Code::ALREADY_EXISTS,
                6,
            ),
            (
                Error::FailedPrecondition("container must be created".into()),
                Code::FAILED_PRECONDITION,
                9,
            ),
            (
                Error::InvalidState("cannot pause a paused container".into()),
                Code::UNKNOWN,
                2,
            ),
            (
                Error::InvalidArgument("id not provided".into()),
                Code::INVALID_ARGUMENT,
                3,
            ),
            (
                Error::Runtime("OCI runtime create failed: x".into()),
                Code::UNKNOWN,
                2,
            ),
            (Error::Internal("panic: boom".into()), Code::UNKNOWN, 2),
        ];
        for (err, code, number) in table {
            let message = err.to_string();
            assert_eq!(code_of(&err), code, "{message}");
            let s = to_status(err);
            assert_eq!(s.code, number, "{message}");
            assert_eq!(s.message, message);
        }
    }
}
