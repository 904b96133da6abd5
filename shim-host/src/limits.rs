//! The open-file limit: the soft limit raised to the hard one at startup, as every Go program
//! does (the Go shim included), and the limit the shim started with kept for its children.

use std::io;

/// RLIMIT_NOFILE: the soft limit (what open/accept are held to) and the hard one (its ceiling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub soft: libc::rlim_t,
    pub hard: libc::rlim_t,
}

impl std::fmt::Display for FdLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.soft, self.hard)
    }
}

/// The open-file limit of this process now.
pub fn fd_limit() -> io::Result<FdLimit> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `l`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FdLimit {
        soft: l.rlim_cur,
        hard: l.rlim_max,
    })
}

/// Raise the soft open-file limit to the hard one. Call it first thing, before any thread or
/// child exists; hand the limit it returns (the one the shim started with) to the reaper's
/// `child_fd_limit`, so runc, loggers and `containerd publish` start with it, as Go restores it
/// for the processes it starts. A shim run from a shell with `ulimit -n 1024` would otherwise
/// run out of fds at about 150 execs.
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    let started = fd_limit()?;
    if started.soft < started.hard {
        let raised = libc::rlimit {
            rlim_cur: started.hard,
            rlim_max: started.hard,
        };
        // SAFETY: setrlimit reads `raised`, a valid rlimit; raising soft up to hard is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raise_leaves_soft_equal_to_hard_and_returns_the_limit_before_it() {
        let before = fd_limit().unwrap();
        let started = raise_fd_limit().unwrap();
        assert_eq!(started, before);
        let now = fd_limit().unwrap();
        assert_eq!(now.soft, now.hard);
        assert_eq!(now.hard, before.hard);
    }
}
