//! Launching the daemon from `start`: this binary again, in its own session, in the bundle, with
//! the listening socket as fd 3 and nothing else inherited.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use shim_host::limits::FdLimit;

/// The fd the daemon finds its listener on (what `server::Listen::Inherited` takes).
const LISTENER_FD: RawFd = 3;

/// Start `exe args...` as the daemon: cwd `bundle`, stdio on /dev/null (containerd reads `start`'s
/// combined output until every writer closes it), a new session (no signal from containerd's
/// terminal or process group reaches it), `listener` on fd 3, and `limit` (the open-file limit
/// `start` was given, before raising its own) as its RLIMIT_NOFILE, as Go's os/exec restores it.
/// Every other fd of ours is close-on-exec, as Rust opens them. The child is not waited for:
/// `start` exits at once and the daemon is re-parented.
pub fn daemon(
    exe: &Path,
    args: &[OsString],
    bundle: &Path,
    listener: &UnixListener,
    limit: Option<FdLimit>,
) -> io::Result<Child> {
    let fd = listener.as_raw_fd();
    let limit = limit.map(|l| libc::rlimit {
        rlim_cur: l.soft,
        rlim_max: l.hard,
    });
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, setrlimit, dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(l) = &limit {
                if libc::setrlimit(libc::RLIMIT_NOFILE, l) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if fd == LISTENER_FD {
                // dup2 onto itself keeps FD_CLOEXEC: clear it by hand.
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, LISTENER_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Go's `AdjustOOMScore`: the daemon gets its grandparent's (containerd's) oom_score_adj plus one,
/// so the kernel picks the shim before containerd. Capped at the kernel's maximum, 1000.
pub fn adjust_oom_score(pid: u32) -> io::Result<()> {
    let parent = nix::unistd::getppid();
    let path = format!("/proc/{parent}/oom_score_adj");
    let text = std::fs::read_to_string(&path)?;
    let score: i32 = text.trim().parse().map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {text:?}: {e}"))
    })?;
    let score = (score + 1).min(1000);
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
}
