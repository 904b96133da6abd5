//! Error classes the CLI tells apart (usage, io, transport, the RPC code) and how they print.

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

    /// `not found (5): process nope does not exist`, or `transport: connection refused`.
    pub fn describe(&self) -> String {
        let class = match self.code {
            Some(code) => Class::Rpc(code),
            None => Class::Transport,
        };
        format!("{}: {}", class.label(), self.message)
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

/// The message alone: the class is printed in front of the whole chain (see [`report`]).
impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RpcError {}

/// What kind of failure reached `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The command line is wrong (exit 2).
    Usage,
    /// A local file, fifo, terminal or process operation failed.
    Io,
    /// The shim could not be reached, or the connection broke before an answer.
    Transport,
    /// The shim answered with this ttrpc status code.
    Rpc(i32),
    /// Anything else (a bug in shim-ctl).
    Internal,
}

impl Class {
    /// `usage`, `io`, `transport`, `internal`, or the code name (`not found`).
    pub fn name(self) -> &'static str {
        match self {
            Class::Usage => "usage",
            Class::Io => "io",
            Class::Transport => "transport",
            Class::Rpc(code) => code_name(code),
            Class::Internal => "internal",
        }
    }

    /// The ttrpc status code, for RPC errors only.
    pub fn code(self) -> Option<i32> {
        match self {
            Class::Rpc(code) => Some(code),
            _ => None,
        }
    }

    /// What precedes the message: `not found (5)`, or the bare name.
    pub fn label(self) -> String {
        match self.code() {
            Some(code) => format!("{} ({code})", self.name()),
            None => self.name().to_string(),
        }
    }

    pub fn exit_code(self) -> i32 {
        if self == Class::Usage {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        }
    }
}

/// The class of the outermost typed error in the chain (contexts added on top do not change it).
pub fn classify(err: &anyhow::Error) -> Class {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return Class::Usage;
        }
        if let Some(rpc) = cause.downcast_ref::<RpcError>() {
            return rpc.code.map_or(Class::Transport, Class::Rpc);
        }
        if cause.is::<std::io::Error>() {
            return Class::Io;
        }
    }
    Class::Internal
}

/// The line (or, with `json`, the JSON object) printed on stderr for an error.
pub fn report(class: Class, message: &str, json: bool) -> String {
    if json {
        serde_json::json!({
            "error": { "code": class.code(), "class": class.name(), "message": message }
        })
        .to_string()
    } else {
        format!("error: {}: {message}", class.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(err: anyhow::Error) -> String {
        report(classify(&err), &format!("{err:#}"), false)
    }

    #[test]
    fn status_messages_print_code_name_and_number_first_without_the_go_suffix() {
        let e = RpcError::status(5, "process nope does not exist: not found");
        assert_eq!(
            text(e.into()),
            "error: not found (5): process nope does not exist"
        );
        let e = RpcError::status(2, "cannot pause a paused container");
        assert_eq!(
            text(e.into()),
            "error: unknown (2): cannot pause a paused container"
        );
        let e = RpcError::status(9, "container must be created: failed precondition");
        assert_eq!(
            e.describe(),
            "failed precondition (9): container must be created"
        );
    }

    #[test]
    fn transport_failures_usage_and_io_errors_have_a_class_but_no_code() {
        assert_eq!(
            text(RpcError::transport("connection refused").into()),
            "error: transport: connection refused"
        );
        assert_eq!(
            text(UsageError("no shim given".into()).into()),
            "error: usage: no shim given"
        );
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::new(io).context("reading /x/address");
        assert_eq!(classify(&err), Class::Io);
        assert!(text(err).starts_with("error: io: reading /x/address: "));
        assert_eq!(classify(&anyhow::anyhow!("x")), Class::Internal);
    }

    #[test]
    fn a_context_on_top_keeps_the_class_of_what_failed() {
        let err = anyhow::Error::new(RpcError::status(5, "gone")).context("shim did not answer");
        assert_eq!(classify(&err), Class::Rpc(5));
        assert_eq!(text(err), "error: not found (5): shim did not answer: gone");
    }

    #[test]
    fn json_errors_carry_code_class_and_message() {
        let v: serde_json::Value =
            serde_json::from_str(&report(Class::Rpc(5), "process nope does not exist", true))
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": 5, "class": "not found",
                "message": "process nope does not exist"}})
        );
        let v: serde_json::Value =
            serde_json::from_str(&report(Class::Usage, "no shim given", true)).unwrap();
        assert_eq!(v["error"]["code"], serde_json::Value::Null);
        assert_eq!(v["error"]["class"], "usage");
    }

    #[test]
    fn usage_errors_exit_2_and_others_exit_1() {
        let exit = |e: anyhow::Error| classify(&e).exit_code();
        assert_eq!(exit(UsageError("x".into()).into()), 2);
        assert_eq!(exit(RpcError::transport("x").into()), 1);
        assert_eq!(exit(RpcError::status(5, "x").into()), 1);
        assert_eq!(exit(anyhow::anyhow!("x")), 1);
    }
}
