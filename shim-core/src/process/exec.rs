//! An exec process: added in created state, started with `runc exec --detach`, signalled directly.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use crate::error::Error;
use crate::io::{IoOwner, IoSpec, LoggerContext};
use crate::process::exit_cell::ExitCell;
use crate::process::state::{self, Action, ExecState, Op, Transition};
use crate::process::{read_pid_file, Prepared, ProcIo, DRAIN_LIMIT};
use crate::runc::{ExecOpts, Runc};
use crate::types::{ExitInfo, ProcessState, Status};

struct Fields {
    state: ExecState,
    pid: u32,
}

/// How Kill reaches the process: through a pidfd, which stays pinned to this process (a pid the
/// kernel gave to another process after the reaper took this one's exit is never signalled); by
/// pid where the kernel has no pidfds; not at all once it is gone.
enum Signaller {
    Unstarted,
    Pidfd(OwnedFd),
    Pid,
    Gone,
}

impl Signaller {
    /// A pidfd for `pid`, just started: Gone if it was already reaped (its pid may be another's).
    fn open(pid: u32) -> Signaller {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return Signaller::Pid;
        };
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd (close-on-exec) or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        match i32::try_from(fd) {
            // SAFETY: a fresh fd that nothing else owns.
            Ok(fd) if fd >= 0 => Signaller::Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }),
            _ if nix::Error::last() == nix::Error::ESRCH => Signaller::Gone,
            _ => Signaller::Pid,
        }
    }

    /// Send `sig`: the raw result (0 or -1 with errno), or None when the process is gone.
    fn send(&self, pid: i32, sig: i32) -> Option<Result<(), nix::Error>> {
        let rc = match self {
            // SAFETY: pidfd_send_signal with our open pidfd, a signal number, no siginfo, no flags.
            Signaller::Pidfd(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            },
            // SAFETY: kill(2) takes two integers and touches no memory of ours.
            Signaller::Pid | Signaller::Unstarted => {
                libc::c_long::from(unsafe { libc::kill(pid, sig) })
            }
            Signaller::Gone => return None,
        };
        Some(if rc == 0 {
            Ok(())
        } else {
            Err(nix::Error::last())
        })
    }
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub bundle: PathBuf,
    pub io: IoSpec,
    owner: IoOwner,
    /// The OCI process JSON, `terminal` already set from the request.
    spec: Vec<u8>,
    runc: Runc,
    logger: LoggerContext,
    fields: Mutex<Fields>,
    /// Serialises start and delete of this exec; State, Kill and Wait never take it.
    op: Mutex<()>,
    /// Its exit was claimed from the reaper: the pid is free for the kernel to reuse, so no
    /// signal may go to it any more, even while the exit waits for its output to drain.
    reaped: AtomicBool,
    /// How Kill signals it (a pidfd from its start until its exit is claimed).
    signaller: Mutex<Signaller>,
    pub exit: ExitCell,
    pub stdio: ProcIo,
}

impl Exec {
    /// A new exec in `init`'s container, in created state.
    pub fn new(id: String, init: &crate::process::init::Init, io: IoSpec, spec: Vec<u8>) -> Exec {
        let logger = LoggerContext {
            id: id.clone(),
            ..init.parts.logger.clone()
        };
        Exec {
            id,
            container_id: init.parts.id.clone(),
            bundle: init.parts.bundle.clone(),
            io,
            owner: init.parts.owner,
            spec,
            runc: init.parts.runc.clone(),
            logger,
            fields: Mutex::new(Fields {
                state: ExecState::Created,
                pid: 0,
            }),
            op: Mutex::new(()),
            reaped: AtomicBool::new(false),
            signaller: Mutex::new(Signaller::Unstarted),
            exit: ExitCell::default(),
            stdio: ProcIo::default(),
        }
    }

    fn fields(&self) -> MutexGuard<'_, Fields> {
        self.fields.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> ExecState {
        self.fields().state
    }

    pub fn pid(&self) -> u32 {
        self.fields().pid
    }

    pub fn decide(&self, op: Op) -> Result<Transition<ExecState>, Error> {
        state::exec(self.state(), op)
    }

    fn pid_file(&self) -> PathBuf {
        self.bundle.join(format!("{}.pid", self.id))
    }

    /// `runc exec --detach`; returns the new pid. On failure the exec stays created and its waiters
    /// are released (Go's behaviour).
    pub fn start(&self) -> Result<u32, Error> {
        let _op = self.op.lock().unwrap_or_else(|p| p.into_inner());
        let t = self.decide(Op::Start)?;
        let result = self.run(t.next);
        if result.is_err() {
            self.exit.release();
        }
        result
    }

    fn run(&self, next: ExecState) -> Result<u32, Error> {
        let what = format!("exec {}", self.id);
        let (prepared, stdio) = Prepared::new(&self.io, self.owner, self.logger.clone(), &what)?;
        let opts = ExecOpts {
            pid_file: self.pid_file(),
            console_socket: prepared.console_path(),
        };
        self.runc
            .exec(&self.container_id, &self.spec, &opts, stdio)?;
        prepared.finish(&self.io, &self.stdio, &what)?;
        let pid = read_pid_file(&self.pid_file())?;
        *self.signaller() = Signaller::open(pid);
        let mut f = self.fields();
        f.pid = pid;
        if f.state == ExecState::Created {
            f.state = next;
        }
        Ok(pid)
    }

    /// Signal the process itself (no runc); `all` does not apply to execs.
    pub fn kill(&self, signal: u32) -> Result<(), Error> {
        let (state, pid) = {
            let f = self.fields();
            (f.state, f.pid)
        };
        state::exec(state, Op::Kill)?;
        if pid == 0 {
            return Err(Error::FailedPrecondition("process not created".into()));
        }
        if state == ExecState::Stopped || self.reaped.load(Ordering::SeqCst) {
            return Err(Error::NotFound("process already finished".into()));
        }
        // The raw number, as Go's unix.Kill: real-time signals have no nix `Signal`.
        let (Ok(pid), Ok(sig)) = (i32::try_from(pid), i32::try_from(signal)) else {
            return Err(Error::InvalidArgument(format!("invalid signal {signal}")));
        };
        // Under the lock, so that the claim of its exit cannot close the pidfd meanwhile.
        let sent = self.signaller().send(pid, sig);
        match sent {
            Some(Ok(())) => Ok(()),
            None | Some(Err(nix::Error::ESRCH)) => {
                Err(Error::NotFound("process already finished".into()))
            }
            Some(Err(nix::Error::EINVAL)) => {
                Err(Error::InvalidArgument(format!("invalid signal {signal}")))
            }
            Some(Err(e)) => Err(Error::Internal(format!("kill {pid}: {e}"))),
        }
    }

    /// Drain and close IO, remove the pid file. An exec never started releases its waiters.
    pub fn delete(&self) -> Result<ExitInfo, Error> {
        let _op = self.op.lock().unwrap_or_else(|p| p.into_inner());
        let t = self.decide(Op::Delete)?;
        self.stdio.wait_drained(DRAIN_LIMIT);
        self.stdio.close();
        let _ = std::fs::remove_file(self.pid_file());
        self.exit.release();
        let mut f = self.fields();
        f.state = t.next;
        let (status, at) = self.exit.so_far();
        Ok(ExitInfo {
            pid: f.pid,
            status,
            exited_at: at,
        })
    }

    /// The reaper reported its death: its pid may be reused from now on.
    pub(crate) fn reaped(&self) {
        self.reaped.store(true, Ordering::SeqCst);
        *self.signaller() = Signaller::Gone;
    }

    fn signaller(&self) -> MutexGuard<'_, Signaller> {
        self.signaller.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record its exit (its output already had its time to drain). False if already recorded.
    pub fn exited(&self, status: u32, at: SystemTime) -> bool {
        let mut f = self.fields();
        match state::exec(f.state, Op::Exit) {
            Ok(Transition {
                action: Action::Proceed,
                next,
                ..
            }) => {
                f.state = next;
                self.exit.set(status, at)
            }
            _ => false,
        }
    }

    /// State as containerd sees it; a running exec reports its init's pause.
    pub fn process_state(&self, bundle: PathBuf, init_status: Status) -> ProcessState {
        let f = self.fields();
        let (exit_status, exited_at) = self.exit.so_far();
        let status = match f.state {
            ExecState::Created => Status::Created,
            ExecState::Running if matches!(init_status, Status::Paused | Status::Pausing) => {
                init_status
            }
            ExecState::Running => Status::Running,
            ExecState::Stopped | ExecState::Deleted => Status::Stopped,
        };
        ProcessState {
            id: self.id.clone(),
            bundle,
            pid: f.pid,
            status,
            io: self.io.clone(),
            exit_status,
            exited_at,
        }
    }
}
