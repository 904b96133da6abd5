//! Error kinds the CLI tells apart (usage vs RPC) and how they print: `not found: <message>`.

use std::fmt;

/// Exit status for an RPC or system error.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a usage error (same as clap's).
pub const EXIT_USAGE: i32 = 2;

/// The command line is wrong or incomplete.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A failed call to the shim: the ttrpc status, or the transport failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The ttrpc (gRPC) status code; `None` when the call never got an answer.
    pub code: Option<i32>,
    pub message: String,
}

/// The lowercase gRPC name of a status code, as containerd's errdefs spells the classes.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "canceled",
        2 => "unknown",
        3 => "invalid argument",
        4 => "deadline exceeded",
        5 => "not found",
        6 => "already exists",
        7 => "permission denied",
        8 => "resource exhausted",
        9 => "failed precondition",
        10 => "aborted",
        11 => "out of range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data loss",
        16 => "unauthenticated",
        _ => "unknown code",
    }
}

impl RpcError {
    /// From a ttrpc status: the Go shim's errdefs suffix (`…: not found`) is dropped, since the
    /// class is printed in front.
    pub fn status(code: i32, message: &str) -> RpcError {
        let suffix = format!(": {}", code_name(code));
        let message = message.strip_suffix(&suffix).unwrap_or(message).to_string();
        RpcError {
            code: Some(code),
            message,
        }
    }

    pub fn transport(message: impl Into<String>) -> RpcError {
        RpcError {
            code: None,
            message: message.into(),
        }
    }

    /// The code name (`not found`), or `unavailable` for a call that never got an answer.
    pub fn class(&self) -> &'static str {
        self.code.map_or("unavailable", code_name)
    }
}

impl From<ttrpc::Error> for RpcError {
    fn from(e: ttrpc::Error) -> RpcError {
        match e {
            ttrpc::Error::RpcStatus(s) => RpcError::status(s.code, &s.message),
            other => RpcError::transport(match other {
                ttrpc::Error::Socket(m) | ttrpc::Error::Others(m) => m,
                other => other.to_string(),
            }),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class(), self.message)
    }
}

impl std::error::Error for RpcError {}

/// The exit status for an error reaching `main`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_print_code_name_first_without_the_go_suffix() {
        let e = RpcError::status(5, "process nope does not exist: not found");
        assert_eq!(e.to_string(), "not found: process nope does not exist");
        let e = RpcError::status(2, "cannot pause a paused container");
        assert_eq!(e.to_string(), "unknown: cannot pause a paused container");
        let e = RpcError::status(9, "container must be created: failed precondition");
        assert_eq!(
            e.to_string(),
            "failed precondition: container must be created"
        );
    }

    #[test]
    fn transport_failures_are_unavailable() {
        assert_eq!(
            RpcError::transport("connection refused").to_string(),
            "unavailable: connection refused"
        );
    }

    #[test]
    fn usage_errors_exit_2_and_others_exit_1() {
        assert_eq!(exit_code(&anyhow::Error::new(UsageError("x".into()))), 2);
        assert_eq!(exit_code(&anyhow::Error::new(RpcError::transport("x"))), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
    }
}
