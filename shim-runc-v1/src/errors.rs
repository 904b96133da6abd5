//! The one place mapping shim-core errors to ttrpc status codes (containerd's errdefs classes).

use shim_core::error::Error;
use ttrpc::Code;

/// The ttrpc code containerd's `errdefs.FromGRPC` needs to pick the error class.
pub fn code_of(e: &Error) -> Code {
    match e {
        Error::NotFound(_) => Code::NOT_FOUND,
        Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
        Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
        Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
        Error::Runtime(_) | Error::Internal(_) => Code::UNKNOWN,
    }
}

/// A status reply with the error's message unchanged (containerd appends the class itself).
pub fn to_ttrpc(e: Error) -> ttrpc::Error {
    status(code_of(&e), e.to_string())
}

/// A status reply for errors the adapter itself finds (bad Any, bad request).
pub fn status(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

/// A request the adapter rejects before shim-core sees it.
pub fn invalid(message: impl Into<String>) -> ttrpc::Error {
    status(Code::INVALID_ARGUMENT, message)
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
            match to_ttrpc(err) {
                ttrpc::Error::RpcStatus(s) => {
                    assert_eq!(s.code, number, "{message}");
                    assert_eq!(s.message, message);
                }
                other => panic!("not a status: {other:?}"),
            }
        }
    }
}
