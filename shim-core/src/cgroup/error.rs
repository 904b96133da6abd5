//! CgroupError: why a cgroup could not be found, read or watched, and on which path.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum CgroupError {
    /// The process has no cgroup we can read: it is gone, or none of its controllers is mounted
    /// (containerd: `ErrCgroupDeleted`, "cgroup path not found").
    NotFound { pid: i32, reason: String },
    /// The cgroup has no such controller (an OOM watch without `memory`).
    NoController(&'static str),
    /// Reading or writing a file failed; a missing file is only an error where containerd makes it one.
    Path {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A file's content is not what the kernel writes there.
    Parse {
        path: PathBuf,
        line: String,
        reason: &'static str,
    },
    /// A syscall not tied to a path failed (epoll, eventfd, inotify, thread spawn).
    Os {
        what: &'static str,
        source: io::Error,
    },
    /// No v1 hierarchy has the cgroup to join (containerd's `ErrCgroupDeleted`, its words).
    Deleted,
    /// A cgroup path to join with a `..` component: it could leave the hierarchy.
    BadPath(String),
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupError::NotFound { pid, reason } => {
                write!(f, "cgroup of process {pid} not found: {reason}")
            }
            CgroupError::NoController(name) => write!(f, "cgroup has no {name} controller"),
            CgroupError::Path { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            CgroupError::Parse { path, line, reason } => {
                write!(f, "parse {}: {reason}: {line:?}", path.display())
            }
            CgroupError::Os { what, source } => write!(f, "{what}: {source}"),
            CgroupError::Deleted => f.write_str("cgroups: cgroup deleted"),
            CgroupError::BadPath(p) => write!(f, "cgroup path {p:?} has a .. component"),
        }
    }
}

impl std::error::Error for CgroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CgroupError::Path { source, .. } | CgroupError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl CgroupError {
    /// A file or directory was not there: the controller is not mounted here, or the cgroup is
    /// gone. containerd's cgroup1 Stat lets exactly these pass (`IgnoreNotExist`).
    pub fn is_not_found(&self) -> bool {
        match self {
            CgroupError::Path { source, .. } => source.kind() == io::ErrorKind::NotFound,
            CgroupError::NotFound { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn path(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> CgroupError {
        let path = path.into();
        move |source| CgroupError::Path { what, path, source }
    }

    pub(crate) fn os(what: &'static str) -> impl FnOnce(io::Error) -> CgroupError {
        move |source| CgroupError::Os { what, source }
    }

    pub(crate) fn parse(
        path: impl Into<PathBuf>,
        line: impl Into<String>,
        reason: &'static str,
    ) -> CgroupError {
        CgroupError::Parse {
            path: path.into(),
            line: line.into(),
            reason,
        }
    }
}
