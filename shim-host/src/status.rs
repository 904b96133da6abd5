//! Every ttrpc status a client sees: shim-core's errors as containerd's errdefs classes (the same
//! for every shim API), what the server itself refuses (Go ttrpc's codes and words), and `Reply`.

use shim_core::error::Error;
use ttrpc::{Code, Status};

/// What every handler returns: a response, or the status the client sees.
pub type Reply<T> = Result<T, Status>;

pub fn status(code: Code, message: impl Into<String>) -> Status {
    ttrpc::get_status(code, message.into())
}

/// The ttrpc code containerd's `errdefs.FromGRPC` needs to pick the error class.
pub fn code_of(e: &Error) -> Code {
    match e {
        Error::NotFound(_) | Error::NoSuchProcess { .. } => Code::NOT_FOUND,
        Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
        Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
        Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
        // As Go's shims (v1 and runc v2): state machine refusals and runc failures go through
        // errdefs.ToGRPC as plain errors, which containerd reads as unknown and does not branch
        // on; ctr then prints exactly what it prints with the Go shim.
        Error::InvalidState(_) | Error::Runtime(_) | Error::Internal(_) => Code::UNKNOWN,
    }
}

/// A status reply with the error's message unchanged (containerd 1.x appends the class itself).
pub fn to_status(e: Error) -> Status {
    status(code_of(&e), e.to_string())
}

/// The text of the errdefs class Go's shims wrap an error of this code in (`not found`); none
/// for the codes of plain errors.
fn class_text(code: Code) -> Option<&'static str> {
    match code {
        Code::NOT_FOUND => Some("not found"),
        Code::ALREADY_EXISTS => Some("already exists"),
        Code::FAILED_PRECONDITION => Some("failed precondition"),
        Code::INVALID_ARGUMENT => Some("invalid argument"),
        _ => None,
    }
}

/// As `to_status`, with the message Go's runc v2 shim sends: its errors wrap an errdefs class,
/// so the text ends with the class's (`process already finished: not found`). containerd 2.x
/// (errgrpc.ToNative) keeps a message without that suffix as it is and ctr then prints no
/// class; containerd 1.x strips the suffix and appends it again, so it changes nothing there.
pub fn classed(e: Error) -> Status {
    let code = code_of(&e);
    let message = e.to_string();
    let message = match class_text(code) {
        Some(class) if !message.ends_with(&format!(": {class}")) && message != class => {
            format!("{message}: {class}")
        }
        _ => message,
    };
    status(code, message)
}

/// A request refused before any service sees it (bad Any, undecodable payload).
pub fn invalid(message: impl Into<String>) -> Status {
    status(Code::INVALID_ARGUMENT, message)
}

/// A request payload that does not decode as its method's message.
pub fn undecodable(e: prost::DecodeError) -> Status {
    invalid(format!("decoding the request: {e}"))
}

/// A frame that is not a ttrpc request.
pub fn not_a_request(why: impl std::fmt::Display) -> Status {
    invalid(format!("not a ttrpc request: {why}"))
}

/// A service or method this shim does not serve (Go's ttrpc words and code; a long name is cut).
pub fn unimplemented(what: &str, name: &str) -> Status {
    status(
        Code::UNIMPLEMENTED,
        format!("{what} {}", shim_core::validate::shown(name)),
    )
}

/// A frame over ttrpc's size limit (Go's ttrpc words and code).
pub fn oversized(length: usize, max: usize) -> Status {
    status(
        Code::RESOURCE_EXHAUSTED,
        format!("message length {length} exceed maximum message size of {max}"),
    )
}

/// A request on an even stream id: those are the server's to start (Go's ttrpc words and code).
pub fn even_stream() -> Status {
    invalid("StreamID must be odd for client initiated streams")
}

/// A handler that panicked: the caller still gets an answer.
pub fn panicked(text: &str) -> Status {
    status(Code::UNKNOWN, format!("panic: {text}"))
}

pub use shim_core::vital::panic_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_its_code_and_keeps_its_message() {
        let table = [
            (Error::NotFound("process nope does not exist".into()), 5),
            (Error::AlreadyExists("id d1: already exists".into()), 6),
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
    }

    #[test]
    fn classed_messages_end_with_the_errdefs_class_once_as_go_s_do() {
        let table = [
            (
                Error::NotFound("process already finished".into()),
                "process already finished: not found",
            ),
            (
                Error::AlreadyExists("id d1: already exists".into()),
                "id d1: already exists",
            ),
            (
                Error::FailedPrecondition("container must be created".into()),
                "container must be created: failed precondition",
            ),
            (
                Error::InvalidArgument("invalid signal 99".into()),
                "invalid signal 99: invalid argument",
            ),
            (
                Error::InvalidState("cannot pause a paused container".into()),
                "cannot pause a paused container",
            ),
            (
                Error::Runtime("OCI runtime create failed: x".into()),
                "OCI runtime create failed: x",
            ),
        ];
        for (err, want) in table {
            let code = code_of(&err);
            let s = classed(err);
            assert_eq!((s.code, s.message.as_str()), (code as i32, want));
        }
    }

    #[test]
    fn what_the_server_refuses_has_go_ttrpc_codes_and_words() {
        let table: Vec<(Status, i32, &str)> = vec![
            (
                not_a_request("bad wire type"),
                3,
                "not a ttrpc request: bad wire type",
            ),
            (invalid("bad payload"), 3, "bad payload"),
            (
                undecodable(prost::DecodeError::new("buffer underflow")),
                3,
                "decoding the request: failed to decode Protobuf message: buffer underflow",
            ),
            (unimplemented("method", "Nope"), 12, "method Nope"),
            (
                oversized(5 << 20, 4 << 20),
                8,
                "message length 5242880 exceed maximum message size of 4194304",
            ),
            (panicked("boom"), 2, "panic: boom"),
        ];
        for (s, code, message) in table {
            assert_eq!((s.code, s.message.as_str()), (code, message));
        }
    }

    #[test]
    fn a_huge_unknown_method_name_is_not_echoed_whole() {
        let s = unimplemented("method", &"M".repeat(1 << 20));
        assert_eq!(s.code, 12);
        assert_eq!(s.message, format!("method {}…", "M".repeat(64)));
    }
}
