//! One reaped child: pid, decoded status, and when it was reaped.

use std::time::SystemTime;

/// The exit of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: i32,
    /// The exit code, or 128 + the signal number when a signal killed it (shell convention).
    pub status: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When the reaper collected it.
    pub at: SystemTime,
}

impl Exit {
    /// Decode a raw `waitpid` status.
    pub fn from_wait_status(pid: i32, raw: i32, at: SystemTime) -> Exit {
        if libc::WIFSIGNALED(raw) {
            let sig = libc::WTERMSIG(raw);
            Exit {
                pid,
                status: 128 + sig,
                signal: Some(sig),
                at,
            }
        } else {
            Exit {
                pid,
                status: libc::WEXITSTATUS(raw),
                signal: None,
                at,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_and_signal_death_decode_like_a_shell() {
        let now = SystemTime::now();
        let code = Exit::from_wait_status(7, 3 << 8, now);
        assert_eq!((code.status, code.signal), (3, None));
        let killed = Exit::from_wait_status(7, libc::SIGKILL, now);
        assert_eq!((killed.status, killed.signal), (137, Some(9)));
    }
}
