//! The few libc calls the harness needs, declared here because the crate has no libc dev-dependency.

use std::ffi::CString;
use std::io;
use std::os::raw::{c_char, c_int, c_long, c_short, c_ulong};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
const PR_SET_PDEATHSIG: c_int = 1;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const SYS_PIDFD_OPEN: c_long = 434;
const POLLIN: c_short = 1;
const MNT_DETACH: c_int = 2;

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}

extern "C" {
    fn prctl(option: c_int, ...) -> c_int;
    fn waitpid(pid: i32, status: *mut c_int, options: c_int) -> i32;
    fn kill(pid: i32, sig: c_int) -> c_int;
    fn geteuid() -> u32;
    fn syscall(num: c_long, ...) -> c_long;
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    fn umount2(target: *const c_char, flags: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
}

fn check(rc: c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes this process the reaper of orphaned descendants (containerd's shims when containerd stops).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1 as c_ulong) })
}

/// For `pre_exec`: SIGKILL the child when the spawning thread dies (so a killed test run leaks nothing).
pub fn set_parent_death_signal() -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments; async-signal-safe.
    check(unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL as c_ulong) })
}

/// Blocking `waitpid(-1)`: `Ok(Some((pid, raw status)))`, `Ok(None)` when there are no children.
pub fn wait_any() -> io::Result<Option<(i32, i32)>> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status points to a live c_int.
        let pid = unsafe { waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Ok(Some((pid, status)));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(4) => continue,         // EINTR
            Some(10) => return Ok(None), // ECHILD
            _ => return Err(err),
        }
    }
}

/// Sends `sig` to a pid (negative: a process group). ESRCH is not an error.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory arguments.
    unsafe { kill(pid, sig) };
}

pub fn is_root() -> bool {
    // SAFETY: no arguments.
    unsafe { geteuid() == 0 }
}

/// Waits until `pid` (any process, not only a child) has terminated; false on timeout.
/// Uses a pidfd, so it is woken by the exit itself.
pub fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    // SAFETY: pidfd_open(pid, 0) has no memory arguments.
    let fd = unsafe { syscall(SYS_PIDFD_OPEN, pid as c_long, 0 as c_long) };
    if fd < 0 {
        return true; // ESRCH: already gone (and reaped)
    }
    let mut pfd = PollFd {
        fd: fd as c_int,
        events: POLLIN,
        revents: 0,
    };
    let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: pfd is one live PollFd.
    let rc = unsafe { poll(&mut pfd, 1, ms) };
    // SAFETY: fd is ours and closed once.
    drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as c_int) });
    rc > 0
}

/// Lazy-unmounts `target` (best effort).
pub fn unmount_detach(target: &Path) {
    if let Ok(c) = CString::new(target.as_os_str().as_bytes()) {
        // SAFETY: c is a valid NUL-terminated string.
        unsafe { umount2(c.as_ptr(), MNT_DETACH) };
    }
}

/// For `pre_exec`: makes `fd` the child's fd 3 (inherited across exec), as containerd does.
pub fn install_as_fd3(fd: c_int) -> io::Result<()> {
    const F_SETFD: c_int = 2;
    if fd == 3 {
        // SAFETY: fcntl on an fd we own; async-signal-safe.
        check(unsafe { fcntl(3, F_SETFD, 0 as c_int) })
    } else {
        // SAFETY: dup2 on fds we own; async-signal-safe. dup2 clears FD_CLOEXEC on fd 3.
        check(unsafe { dup2(fd, 3) })
    }
}

/// Inodes of the unix sockets bound to `path` in this network namespace (`/proc/net/unix`:
/// the listener and the connections it accepted).
pub fn unix_socket_inodes(path: &str) -> Vec<u64> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode [Path]
            (f.len() >= 8 && f[7] == path).then(|| f[6].parse().ok())?
        })
        .collect()
}

/// True when `pid` has an fd open on one of the sockets `inodes`.
pub fn holds_socket(pid: i32, inodes: &[u64]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .any(|inode: u64| inodes.contains(&inode))
}

/// `dir` and every directory below it (just `dir` when it cannot be read).
pub fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            out.extend(
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out
}

/// Remove the cgroup directory `top` and every one below it, deepest first; best effort (a
/// cgroup that still has processes, or none at all, stays as it is).
pub fn remove_cgroup_tree(top: &Path) {
    let mut dirs = walk_dirs(top);
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}
