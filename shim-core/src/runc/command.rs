//! Running one runc child through the reaper: its stdio, draining its output, and its time bound.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// What runc's stdio is: given fds (the container's pipes) or captured into the error text.
/// `stdin: None` is /dev/null; `stdout`/`stderr: None` are captured (drained while runc runs).
#[derive(Debug, Default)]
pub struct RuncStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl RuncStdio {
    /// None everywhere: stdin /dev/null, stdout and stderr captured.
    pub fn captured() -> Self {
        Self::default()
    }
}

/// How long we wait for runc to die after SIGKILL at the deadline before giving up on its exit.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Captured output kept per stream; the rest is read and dropped so runc never blocks on us.
const MAX_CAPTURE: usize = 1 << 20;

/// One runc invocation: the full argv after the binary, its stdio, optional bytes for its stdin.
pub(crate) struct Call<'a> {
    pub binary: &'a Path,
    pub args: Vec<OsString>,
    pub stdio: RuncStdio,
    pub input: Option<&'a [u8]>,
    pub timeout: Duration,
}

/// What a successful call printed: stdout alone, and stdout+stderr in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub stdout: Vec<u8>,
    pub combined: Vec<u8>,
}

/// Why a call failed, before it is worded for an operation.
#[derive(Debug)]
pub(crate) enum Failure {
    /// runc could not be started: `program` is what we tried to execute (a bare name when it
    /// was not found on PATH).
    Spawn {
        program: PathBuf,
        error: io::Error,
    },
    /// runc ran, but what it needs around it could not be set up (the drain thread).
    Setup(io::Error),
    Status {
        status: i32,
        output: Vec<u8>,
    },
    TimedOut {
        after: Duration,
        output: Vec<u8>,
    },
}

/// An OS error as Go prints a `syscall.Errno`: the C text with a lower-case first letter and no
/// `(os error N)` (`no such file or directory`, `permission denied`).
pub(crate) fn go_error_text(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let desc = Errno::from_raw(code).desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {code}"),
    }
}

impl Failure {
    /// go-runc's wording: `<runc> did not terminate successfully: exit status N[: output]`; a runc
    /// that could not be started is worded as Go's os/exec words it: `exec: "<name>": executable
    /// file not found in $PATH` for a bare name not on PATH, else `fork/exec <path>: <errno>`.
    pub fn describe(&self, binary: &Path) -> String {
        let bin = binary.display();
        let (text, output) = match self {
            Failure::Spawn { program, error } => {
                return if program.components().count() == 1 && !program.is_absolute() {
                    format!(
                        "exec: \"{}\": executable file not found in $PATH",
                        program.display()
                    )
                } else {
                    format!("fork/exec {}: {}", program.display(), go_error_text(error))
                };
            }
            Failure::Setup(e) => return format!("failed to run {bin}: {e}"),
            Failure::Status { status, output } => (
                format!("{bin} did not terminate successfully: exit status {status}"),
                output,
            ),
            Failure::TimedOut { after, output } => (
                format!(
                    "{bin} did not terminate successfully: timed out after {}s and was killed",
                    after.as_secs_f64()
                ),
                output,
            ),
        };
        let output = String::from_utf8_lossy(output);
        let output = output.trim();
        if output.is_empty() {
            text
        } else {
            format!("{text}: {output}")
        }
    }

    /// Timeouts and spawn failures are ours to word: runc's log cannot explain them.
    pub fn is_runc_status(&self) -> bool {
        matches!(self, Failure::Status { .. })
    }

    /// runc never ran.
    pub fn is_spawn(&self) -> bool {
        matches!(self, Failure::Spawn { .. })
    }
}

/// Spawn runc through the reaper and wait for it on this thread (PR_SET_PDEATHSIG is tied to the
/// forking thread, which therefore outlives runc). Captured output is drained on one helper thread.
pub(crate) fn run(reaper: &reaper::Reaper, call: Call<'_>) -> Result<Output, Failure> {
    let mut cmd = Command::new(call.binary);
    cmd.args(&call.args).env_remove("NOTIFY_SOCKET");
    let RuncStdio {
        stdin,
        stdout,
        stderr,
    } = call.stdio;
    cmd.stdin(match (stdin, call.input) {
        (Some(fd), _) => Stdio::from(fd),
        (None, Some(_)) => Stdio::piped(),
        (None, None) => Stdio::null(),
    });
    cmd.stdout(stdout.map_or_else(Stdio::piped, Stdio::from));
    cmd.stderr(stderr.map_or_else(Stdio::piped, Stdio::from));
    reaper::restore_child_signals(&mut cmd);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = reaper.spawn(&mut cmd).map_err(|error| Failure::Spawn {
        program: call.binary.to_path_buf(),
        error,
    })?;
    // The Command holds runc's copies of given fds (the container's pipe ends): close them now.
    drop(cmd);
    let mut child = spawned.child;
    let streams = Streams {
        stdout: child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
        stderr: child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
        stdin: child
            .stdin
            .take()
            .map(|s| File::from(OwnedFd::from(s)))
            .zip(call.input.map(<[u8]>::to_vec)),
    };
    drop(child);
    let drainer = if streams.is_empty() {
        None
    } else {
        let started = os_pipe::pipe().and_then(|(wake_rx, wake_tx)| {
            let handle = thread::Builder::new()
                .name("runc-drain".into())
                .spawn(move || streams.drain(wake_rx))?;
            Ok((handle, wake_tx))
        });
        match started {
            Ok(drainer) => Some(drainer),
            Err(e) => {
                // Cannot drain: kill runc rather than let it block on a full pipe.
                kill(&spawned.exit, spawned.pid);
                let _ = spawned.exit.wait_timeout(KILL_GRACE);
                return Err(Failure::Setup(e));
            }
        }
    };

    let status = match spawned.exit.wait_timeout(call.timeout) {
        Some(exit) => Some(exit.status),
        None => {
            kill(&spawned.exit, spawned.pid);
            let _ = spawned.exit.wait_timeout(KILL_GRACE);
            None
        }
    };
    let output = match drainer {
        Some((handle, wake_tx)) => {
            drop(wake_tx); // runc is gone: the drainer takes what is buffered and returns
            handle.join().unwrap_or_default()
        }
        None => Output::default(),
    };
    match status {
        Some(0) => Ok(output),
        Some(status) => Err(Failure::Status {
            status,
            output: output.combined,
        }),
        None => Err(Failure::TimedOut {
            after: call.timeout,
            output: output.combined,
        }),
    }
}

/// SIGKILL runc unless its exit was already seen (then its pid may belong to someone else).
fn kill(exit: &reaper::ExitWaiter, pid: i32) {
    if exit.try_exit().is_none() {
        // SAFETY: plain syscall on our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// runc's captured pipes, and its stdin with the bytes still to write.
struct Streams {
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<(File, Vec<u8>)>,
}

impl Streams {
    fn is_empty(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none() && self.stdin.is_none()
    }

    /// Poll every stream at once (one pipe filling up must not stall the other) until all are done
    /// or `wake` hangs up (runc exited), then take whatever is already buffered and return.
    fn drain(mut self, wake: os_pipe::PipeReader) -> Output {
        let mut out = Output::default();
        for file in [&self.stdout, &self.stderr].into_iter().flatten() {
            let _ = set_nonblocking(file);
        }
        if let Some((file, _)) = &self.stdin {
            let _ = set_nonblocking(file);
        }
        let mut offset = 0usize;
        loop {
            if self.stdout.is_none() && self.stderr.is_none() && self.stdin.is_none() {
                return out;
            }
            let (mut out_ready, mut err_ready, mut in_ready, mut woken) =
                (false, false, false, false);
            {
                let mut fds = Vec::with_capacity(4);
                fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
                if let Some(f) = &self.stdout {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
                if let Some(f) = &self.stderr {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
                if let Some((f, _)) = &self.stdin {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => woken = true,
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                let mut i = 0;
                woken |= ready(&fds[i]);
                if self.stdout.is_some() {
                    i += 1;
                    out_ready = ready(&fds[i]);
                }
                if self.stderr.is_some() {
                    i += 1;
                    err_ready = ready(&fds[i]);
                }
                if self.stdin.is_some() {
                    i += 1;
                    in_ready = ready(&fds[i]);
                }
            }
            if out_ready || woken {
                read_available(&mut self.stdout, &mut [&mut out.stdout, &mut out.combined]);
            }
            if err_ready || woken {
                read_available(&mut self.stderr, &mut [&mut out.combined]);
            }
            if in_ready {
                if let Some((file, data)) = &mut self.stdin {
                    match file.write(&data[offset..]) {
                        Ok(n) => offset += n,
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => offset = data.len(),
                    }
                    if offset >= data.len() {
                        self.stdin = None; // EOF for runc
                    }
                }
            }
            if woken {
                return out;
            }
        }
    }
}

/// Read what is buffered now; on EOF or error close the stream.
fn read_available(stream: &mut Option<File>, sinks: &mut [&mut Vec<u8>]) {
    let Some(file) = stream else { return };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for sink in sinks.iter_mut() {
                    let room = MAX_CAPTURE.saturating_sub(sink.len()).min(n);
                    sink.extend_from_slice(&buf[..room]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => break,
        }
    }
    *stream = None;
}

fn set_nonblocking(file: &File) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(file.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(
        file.as_raw_fd(),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_words_exit_status_like_go_runc() {
        let bin = Path::new("runc");
        let f = Failure::Status {
            status: 1,
            output: b"container not running\n".to_vec(),
        };
        assert_eq!(
            f.describe(bin),
            "runc did not terminate successfully: exit status 1: container not running"
        );
        let f = Failure::Status {
            status: 137,
            output: Vec::new(),
        };
        assert_eq!(
            f.describe(bin),
            "runc did not terminate successfully: exit status 137"
        );
    }

    #[test]
    fn describe_words_a_runc_that_cannot_start_as_go_os_exec() {
        let missing = |program: &str, errno: i32| Failure::Spawn {
            program: PathBuf::from(program),
            error: io::Error::from_raw_os_error(errno),
        };
        let bin = Path::new("no-runc");
        assert_eq!(
            missing("no-runc", libc::ENOENT).describe(bin),
            "exec: \"no-runc\": executable file not found in $PATH"
        );
        assert_eq!(
            missing("/abs/no-runc", libc::ENOENT).describe(Path::new("/abs/no-runc")),
            "fork/exec /abs/no-runc: no such file or directory"
        );
        assert_eq!(
            missing("/usr/bin/runc", libc::EACCES).describe(Path::new("runc")),
            "fork/exec /usr/bin/runc: permission denied"
        );
    }

    #[test]
    fn go_error_text_is_the_lower_case_errno_text() {
        let e = io::Error::from_raw_os_error(libc::ENOEXEC);
        assert_eq!(go_error_text(&e), "exec format error");
        assert_eq!(go_error_text(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn describe_says_a_timeout_was_killed() {
        let f = Failure::TimedOut {
            after: Duration::from_secs(2),
            output: Vec::new(),
        };
        assert_eq!(
            f.describe(Path::new("runc")),
            "runc did not terminate successfully: timed out after 2s and was killed"
        );
    }
}
