//! ttrpc statuses the server itself answers with (Go ttrpc's codes and words), and `Reply`.

use ttrpc::{Code, Status};

/// What every handler returns: a response, or the status the client sees.
pub type Reply<T> = Result<T, Status>;

pub fn status(code: Code, message: impl Into<String>) -> Status {
    ttrpc::get_status(code, message.into())
}

/// A request refused before any service sees it (bad Any, undecodable payload).
pub fn invalid(message: impl Into<String>) -> Status {
    status(Code::INVALID_ARGUMENT, message)
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
    fn what_the_server_refuses_has_go_ttrpc_codes_and_words() {
        let table: Vec<(Status, i32, &str)> = vec![
            (
                not_a_request("bad wire type"),
                3,
                "not a ttrpc request: bad wire type",
            ),
            (invalid("bad payload"), 3, "bad payload"),
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
