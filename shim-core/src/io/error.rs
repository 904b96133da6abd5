//! IoError: what went wrong setting up or running a process's IO, and on which path.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub enum IoError {
    /// A scheme we do not handle (yet): `binary://`, or an unknown one.
    Unsupported(String),
    /// The URI could not be understood.
    InvalidUri { uri: String, reason: &'static str },
    /// A filesystem operation on a path failed (`what` says which: "open fifo", "create log file"...).
    Path {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A syscall not tied to a path failed (pipe, fchown, socket, thread spawn...).
    Os {
        what: &'static str,
        source: io::Error,
    },
    /// A bounded wait ran out.
    TimedOut { what: &'static str, after: Duration },
    /// The console socket peer sent something other than one fd.
    Protocol(String),
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Unsupported(what) => write!(f, "unsupported IO: {what}"),
            IoError::InvalidUri { uri, reason } => write!(f, "invalid IO URI {uri:?}: {reason}"),
            IoError::Path { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            IoError::Os { what, source } => write!(f, "{what}: {source}"),
            IoError::TimedOut { what, after } => {
                write!(f, "{what}: timed out after {}s", after.as_secs_f64())
            }
            IoError::Protocol(what) => write!(f, "console socket: {what}"),
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IoError::Path { source, .. } | IoError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl IoError {
    pub(crate) fn path(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> IoError {
        let path = path.into();
        move |source| IoError::Path { what, path, source }
    }

    pub(crate) fn os(what: &'static str) -> impl FnOnce(io::Error) -> IoError {
        move |source| IoError::Os { what, source }
    }
}
