//! The library's typed error.

use std::fmt;

/// Why a [`crate::Reaper`] could not start.
#[derive(Debug)]
pub enum Error {
    /// `Reaper::builder().start()` was called a second time in this process.
    AlreadyStarted,
    /// A system call failed while setting up.
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyStarted => write!(f, "a reaper is already running in this process"),
            Error::Sys { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sys { source, .. } => Some(source),
            Error::AlreadyStarted => None,
        }
    }
}
