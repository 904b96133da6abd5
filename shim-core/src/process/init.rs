//! The init process: the container itself, driven through runc create/start/pause/resume/delete.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::cgroup::Cgroup;
use crate::error::{kill_error, Error};
use crate::io::{IoOwner, IoSpec, LoggerContext};
use crate::mount;
use crate::process::exit_cell::ExitCell;
use crate::process::state::{self, Action, InitState, Op, Transition};
use crate::process::{read_pid_file, Prepared, ProcIo, DRAIN_LIMIT};
use crate::runc::{CheckpointOpts, RestoreOpts, Runc};
use crate::types::{CheckpointRequest, ExitInfo, ProcessState, Status};
use crate::validate;

/// How a checkpointed init is restored at Start.
#[derive(Debug, Clone, Default)]
pub struct RestoreFrom {
    pub image: PathBuf,
    pub parent: Option<PathBuf>,
    pub work: PathBuf,
    pub no_pivot: bool,
}

struct Fields {
    state: InitState,
    pid: u32,
    /// `runc delete` of a never-started init is running: the death of its `runc init` is not an
    /// exit of the container (Go has already dropped the init from its table; no TaskExit).
    deleting: bool,
}

pub struct Init {
    /// What Create decided; fixed for the life of the process.
    pub parts: InitParts,
    fields: Mutex<Fields>,
    /// Serialises the lifecycle runc calls of this process. State, Kill and Wait never take it.
    op: Mutex<()>,
    /// Orders this container's events around its exit: held from `runc start` until Start is
    /// emitted, while an OOM is emitted, and while the exit is emitted.
    order: Mutex<()>,
    /// The exit event went out (set under `order`): no OOM may follow it.
    exit_published: AtomicBool,
    /// An OOM event went out for this container (set under `order`).
    oom_sent: AtomicBool,
    /// Its cgroup, when the shim watches it for OOMs: read once more before the exit goes out.
    cgroup: Mutex<Option<Cgroup>>,
    pub exit: ExitCell,
    pub stdio: ProcIo,
}

/// Everything Create decided about the init.
pub struct InitParts {
    pub id: String,
    pub bundle: PathBuf,
    pub io: IoSpec,
    pub owner: IoOwner,
    pub runc: Runc,
    /// No pid namespace of its own: its processes outlive it unless killed with it.
    pub shares_pid_ns: bool,
    pub rootfs_mounted: bool,
    pub restore: Option<RestoreFrom>,
    /// Work dir for checkpoints when the request gives none.
    pub workdir: PathBuf,
    /// For `binary://` loggers: the reaper and the namespace.
    pub logger: LoggerContext,
}

impl Init {
    pub fn new(parts: InitParts, pid: u32) -> Init {
        let state = if parts.restore.is_some() {
            InitState::CreatedCheckpoint
        } else {
            InitState::Created
        };
        Init {
            parts,
            fields: Mutex::new(Fields {
                state,
                pid,
                deleting: false,
            }),
            op: Mutex::new(()),
            order: Mutex::new(()),
            exit_published: AtomicBool::new(false),
            oom_sent: AtomicBool::new(false),
            cgroup: Mutex::new(None),
            exit: ExitCell::default(),
            stdio: ProcIo::default(),
        }
    }

    fn fields(&self) -> MutexGuard<'_, Fields> {
        self.fields.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn op(&self) -> MutexGuard<'_, ()> {
        self.op.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See `order`: held around the emission of Start, of an OOM and of the exit.
    pub(crate) fn order(&self) -> MutexGuard<'_, ()> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exit event went out; call with `order` held.
    pub(crate) fn set_exit_published(&self) {
        self.exit_published.store(true, Ordering::SeqCst);
    }

    pub(crate) fn exit_published(&self) -> bool {
        self.exit_published.load(Ordering::SeqCst)
    }

    /// An OOM event went out; call with `order` held.
    pub(crate) fn set_oom_sent(&self) {
        self.oom_sent.store(true, Ordering::SeqCst);
    }

    /// Remember the cgroup watched for this container's OOMs.
    pub(crate) fn set_cgroup(&self, cgroup: Cgroup) {
        *self.cgroup.lock().unwrap_or_else(|p| p.into_inner()) = Some(cgroup);
    }

    /// The cgroup kept at Create, if one was.
    pub(crate) fn cgroup(&self) -> Option<Cgroup> {
        self.cgroup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the kernel OOM-killed in this container's cgroup while no OOM event went out
    /// yet (the watcher's thread had not got to it): then one must go before the exit.
    pub(crate) fn oom_unsent(&self) -> bool {
        if self.oom_sent.load(Ordering::SeqCst) {
            return false;
        }
        let cgroup = self.cgroup.lock().unwrap_or_else(|p| p.into_inner());
        cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0)
    }

    /// The pid read from runc's pid file after create.
    pub(crate) fn set_pid(&self, pid: u32) {
        self.fields().pid = pid;
    }

    pub fn state(&self) -> InitState {
        self.fields().state
    }

    pub fn pid(&self) -> u32 {
        self.fields().pid
    }

    /// Check `op` against the current state: what to do and where it leads.
    pub fn decide(&self, op: Op) -> Result<Transition<InitState>, Error> {
        state::init(self.state(), op)
    }

    /// Move from `from` to `to` unless something (an exit) moved it meanwhile.
    fn move_from(&self, from: InitState, to: InitState) {
        let mut f = self.fields();
        if f.state == from {
            f.state = to;
        }
    }

    /// Start: `runc start`, or `runc restore` for a checkpointed init. Returns the pid and whether
    /// it is new (a restored init has a pid only now).
    pub fn start(&self) -> Result<(u32, bool), Error> {
        let _op = self.op();
        let from = self.state();
        let t = state::init(from, Op::Start)?;
        match t.action {
            Action::Restore => self.restore(t.next).map(|pid| (pid, true)),
            _ => {
                self.parts.runc.start(&self.parts.id)?;
                self.move_from(from, t.next);
                Ok((self.pid(), false))
            }
        }
    }

    fn restore(&self, next: InitState) -> Result<u32, Error> {
        let from = self.parts.restore.clone().unwrap_or_default();
        let (prepared, stdio) = Prepared::new(
            &self.parts.io,
            self.parts.owner,
            self.parts.logger.clone(),
            "init process",
        )?;
        let pid_file = self.parts.bundle.join("init.pid");
        let opts = RestoreOpts {
            image_path: from.image,
            work_path: from.work,
            parent_path: from.parent,
            pid_file: pid_file.clone(),
            console_socket: prepared.console_path(),
            no_pivot: from.no_pivot,
        };
        self.parts
            .runc
            .restore(&self.parts.id, &self.parts.bundle, &opts, stdio)?;
        prepared.finish(&self.parts.io, &self.stdio, "init process")?;
        let pid = read_pid_file(&pid_file)?;
        let mut f = self.fields();
        f.pid = pid;
        if f.state == InitState::CreatedCheckpoint {
            f.state = next;
        }
        Ok(pid)
    }

    pub fn pause(&self) -> Result<(), Error> {
        let _op = self.op();
        let from = self.state();
        let t = state::init(from, Op::Pause)?;
        let during = t.during.unwrap_or(from);
        self.move_from(from, during);
        let result = self.parts.runc.pause(&self.parts.id);
        self.move_from(during, if result.is_ok() { t.next } else { from });
        Ok(result?)
    }

    pub fn resume(&self) -> Result<(), Error> {
        let _op = self.op();
        let from = self.state();
        let t = state::init(from, Op::Resume)?;
        self.parts.runc.resume(&self.parts.id)?;
        self.move_from(from, t.next);
        Ok(())
    }

    pub fn update(&self, resources: &[u8]) -> Result<(), Error> {
        let _op = self.op();
        self.decide(Op::Update)?;
        validate::resources(resources)?;
        Ok(self.parts.runc.update(&self.parts.id, resources)?)
    }

    pub fn kill(&self, signal: u32, all: bool) -> Result<(), Error> {
        self.decide(Op::Kill)?;
        self.parts
            .runc
            .kill(&self.parts.id, signal, all)
            .map_err(kill_error)
    }

    pub fn checkpoint(&self, image: &str, req: &CheckpointRequest) -> Result<(), Error> {
        let _op = self.op();
        self.decide(Op::Checkpoint)?;
        let default_work = req.work_path.is_empty();
        let work = if default_work {
            self.parts.workdir.join("criu-work")
        } else {
            PathBuf::from(&req.work_path)
        };
        let opts = CheckpointOpts {
            image_path: PathBuf::from(image),
            work_path: work.clone(),
            exit: req.exit,
            open_tcp: req.open_tcp,
            external_unix_sockets: req.external_unix_sockets,
            terminal: req.terminal,
            file_locks: req.file_locks,
            empty_namespaces: req.empty_namespaces.clone(),
        };
        let result = self.parts.runc.checkpoint(&self.parts.id, &opts);
        let out = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let dump = self.parts.bundle.join("criu-dump.log");
                let _ = std::fs::copy(work.join("dump.log"), &dump);
                let first = e.message.lines().next().unwrap_or_default().to_string();
                Err(Error::Runtime(format!("{first} path= {}", dump.display())))
            }
        };
        if default_work {
            let _ = std::fs::remove_dir_all(&work);
        }
        out
    }

    /// Delete (contract 2.3): wait for the output to drain, `runc delete`, then close stdin and
    /// the IO, unmount the rootfs. When runc fails nothing has been closed: Delete can be retried.
    pub fn delete(&self) -> Result<ExitInfo, Error> {
        let _op = self.op();
        let t = self.decide(Op::Delete)?;
        // Deleting a never-started container kills its `runc init`: that death is not the
        // container's exit, and `deleting` keeps `exited` from recording it.
        self.set_deleting(true);
        self.stdio.wait_drained(DRAIN_LIMIT);
        if let Err(e) = self.parts.runc.delete(&self.parts.id, false) {
            if !e.is_not_exist() {
                self.set_deleting(false);
                return Err(e.into());
            }
        }
        self.stdio.close();
        if self.parts.rootfs_mounted {
            mount::unmount_all(&self.parts.bundle)?;
        }
        let (status, at) = self.exit.so_far();
        let mut f = self.fields();
        f.state = t.next;
        Ok(ExitInfo {
            pid: f.pid,
            status,
            exited_at: at,
        })
    }

    fn set_deleting(&self, on: bool) {
        self.fields().deleting = on;
    }

    /// Whether an exit now would be news (recorded and published).
    fn exit_is_news(&self) -> bool {
        let f = self.fields();
        !f.deleting
            && matches!(
                state::init(f.state, Op::Exit).map(|t| t.action),
                Ok(Action::Proceed | Action::RecordThenResume)
            )
    }

    /// The reaper saw the init die: take its processes down if they would outlive it, give its
    /// output up to `settle_limit` to drain, record the exit, resume a paused cgroup. Returns
    /// false if it was already recorded, or ignored. Called once per init exit (the dispatcher
    /// claims each pid once), so nothing else records between check and record.
    pub fn exited(&self, status: u32, at: SystemTime, settle_limit: Duration) -> bool {
        if !self.exit_is_news() {
            return false;
        }
        if self.parts.shares_pid_ns {
            // Its processes would outlive it: take them down before the exit is visible.
            if let Err(e) = self.parts.runc.kill(&self.parts.id, 9, true) {
                log::warn!(id:% = self.parts.id, error:% = e; "runc kill --all after the init's exit");
            }
        }
        // The last output first: whoever learns of the exit may close its end at once.
        self.stdio.wait_drained(settle_limit);
        let action = {
            let mut f = self.fields();
            match state::init(f.state, Op::Exit) {
                Ok(Transition {
                    action: Action::Ignore,
                    ..
                })
                | Err(_) => return false,
                _ if f.deleting => return false,
                Ok(t) => {
                    f.state = t.next;
                    self.exit.set(status, at);
                    t.action
                }
            }
        };
        if action == Action::RecordThenResume {
            if let Err(e) = self.parts.runc.resume(&self.parts.id) {
                log::warn!(id:% = self.parts.id, error:% = e; "runc resume after the exit of a paused init");
            }
        }
        true
    }

    pub fn process_state(&self) -> ProcessState {
        let f = self.fields();
        let (exit_status, exited_at) = self.exit.so_far();
        ProcessState {
            id: self.parts.id.clone(),
            bundle: self.parts.bundle.clone(),
            pid: f.pid,
            status: status_of(f.state),
            io: self.parts.io.clone(),
            exit_status,
            exited_at,
        }
    }
}

/// The status containerd sees for an init state (deleted reports stopped).
pub fn status_of(s: InitState) -> Status {
    match s {
        InitState::Created | InitState::CreatedCheckpoint => Status::Created,
        InitState::Running => Status::Running,
        InitState::Pausing => Status::Pausing,
        InitState::Paused => Status::Paused,
        InitState::Stopped | InitState::Deleted => Status::Stopped,
    }
}

/// Whether the bundle's config.json gives the container no pid namespace of its own.
pub fn shares_pid_ns(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    let namespaces = spec.pointer("/linux/namespaces").and_then(|n| n.as_array());
    match namespaces.and_then(|ns| ns.iter().find(|n| n["type"] == "pid")) {
        None => true,
        Some(pid) => pid
            .get("path")
            .and_then(|p| p.as_str())
            .is_some_and(|p| !p.is_empty()),
    }
}
