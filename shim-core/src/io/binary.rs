//! Binary logging (`binary:///path?k=v`): a logger process reads the container's output pipes.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::IoError;

/// How long the logger may take to say it is ready (a byte or EOF on fd 5).
const READY_LIMIT: Duration = Duration::from_secs(30);
/// After SIGTERM at close, the logger gets this long before SIGKILL (Go: 12 s).
const STOP_GRACE: Duration = Duration::from_secs(12);

/// What a logger is told about the process it logs for. The namespace comes from the shim's
/// `-namespace` (containerd 1.6 sends no request metadata, which is why Go's binary logging fails).
#[derive(Clone)]
pub struct LoggerContext {
    pub reaper: reaper::Reaper,
    pub id: String,
    pub namespace: String,
}

/// A running logging binary: fd 3 = stdout pipe, fd 4 = stderr pipe, fd 5 = its "ready" pipe.
pub struct BinaryLogger {
    pid: i32,
    /// In a Mutex only so the logger can be shared (an exit's drain wait runs beside CloseIO).
    exit: Mutex<reaper::ExitWaiter>,
}

impl BinaryLogger {
    /// Start `path args…` with only CONTAINER_ID and CONTAINER_NAMESPACE in its environment, and
    /// wait (bounded) until it is ready.
    pub fn start(
        path: &Path,
        args: &[String],
        stdout: File,
        stderr: File,
        ctx: &LoggerContext,
    ) -> Result<BinaryLogger, IoError> {
        let (mut ready_r, ready_w) = os_pipe::pipe().map_err(IoError::os("create pipe"))?;
        let fds = [
            OwnedFd::from(stdout),
            OwnedFd::from(stderr),
            OwnedFd::from(ready_w),
        ];
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd = Command::new(path);
        cmd.args(args)
            .env_clear()
            .env("CONTAINER_ID", &ctx.id)
            .env("CONTAINER_NAMESPACE", &ctx.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only dup2 between fork and exec (async-signal-safe). Our fds are CLOEXEC; dup2'd
        // targets are not, so exactly 3, 4 and 5 reach the logger. Sources are first moved above
        // 5 so no dup2 overwrites a source still needed.
        unsafe {
            cmd.pre_exec(move || {
                let mut high = [0; 3];
                for (i, fd) in raw.iter().enumerate() {
                    high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, fd) in high.iter().enumerate() {
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let spawned = ctx.reaper.spawn(&mut cmd).map_err(|source| IoError::Path {
            what: "start logging binary",
            path: path.to_path_buf(),
            source,
        })?;
        drop(cmd);
        drop(fds); // the logger holds them now: EOF on our ready pipe comes from it alone
        let logger = BinaryLogger {
            pid: spawned.pid,
            exit: Mutex::new(spawned.exit),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            let _ = tx.send(ready_r.read(&mut byte).is_ok());
        });
        match rx.recv_timeout(READY_LIMIT) {
            Ok(_) => Ok(logger),
            Err(_) => {
                logger.stop();
                Err(IoError::TimedOut {
                    what: "logging binary to get ready",
                    after: READY_LIMIT,
                })
            }
        }
    }

    /// Wait (bounded) for the logger to finish on its own after the pipes closed.
    pub fn wait(&self, limit: Duration) -> bool {
        self.exit().wait_timeout(limit).is_some()
    }

    fn exit(&self) -> MutexGuard<'_, reaper::ExitWaiter> {
        self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGTERM, then SIGKILL after the grace period. Runs on a thread of its own that ends with
    /// the logger, so Delete never waits 12 s for it.
    pub fn stop(self) {
        if self.exit().try_exit().is_some() {
            return;
        }
        signal(self.pid, Signal::SIGTERM);
        std::thread::spawn(move || {
            if self.exit().wait_timeout(STOP_GRACE).is_none() {
                signal(self.pid, Signal::SIGKILL);
            }
        });
    }
}

/// Signal the logger; one already gone (ESRCH) is no news.
fn signal(pid: i32, sig: Signal) {
    match kill(Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => log::warn!("cannot send {sig} to logging binary {pid}: {e}"),
    }
}
