//! Shim: the domain methods the ttrpc adapter calls, one per RPC, over the process table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::Error;
use crate::events::EventSink;
use crate::exits;
use crate::io::{IoOwner, IoSpec, LoggerContext};
use crate::process::exec::Exec;
pub use crate::process::exit_cell::ExitWatch;
use crate::process::init::{self, Init, InitParts, RestoreFrom};
use crate::process::state::{self, Op};
use crate::process::{read_pid_file, Prepared};
use crate::runc::{CreateOpts, Runc, RuncConfig};
use crate::validate;

pub use crate::mount::Mount;

pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    /// The runtime binary; empty means "runc".
    pub runtime: String,
    pub rootfs: Vec<Mount>,
    pub io: IoSpec,
    pub checkpoint: String,
    pub parent_checkpoint: String,
    pub options: CreateOptions,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    pub io_uid: u32,
    pub io_gid: u32,
    pub criu_work_path: String,
}

pub struct ExecRequest {
    pub id: String,
    pub io: IoSpec,
    /// The OCI Process as JSON.
    pub spec_json: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointRequest {
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub empty_namespaces: Vec<String>,
    pub work_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

#[derive(Debug, Clone)]
pub struct ProcessState {
    pub id: String,
    pub bundle: PathBuf,
    pub pid: u32,
    pub status: Status,
    pub io: IoSpec,
    pub exit_status: u32,
    pub exited_at: Option<SystemTime>,
}

/// A process's exit as Wait and Delete report it; `exited_at: None` means it never exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub pid: u32,
    pub status: u32,
    pub exited_at: Option<SystemTime>,
}

/// One process's exit, found by id; holding it keeps the process alive.
pub struct ExitOf(Proc);

impl ExitOf {
    /// `watch` is told of the exit: at once if it already happened, else when it does.
    pub fn watch(self, watch: Box<dyn ExitWatch>) {
        match self.0 {
            Proc::Init(init) => init.exit.watch(watch),
            Proc::Exec(exec, _) => exec.exit.watch(watch),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidInfo {
    pub pid: u32,
    /// The process id owning this pid: the container id for the init.
    pub exec_id: Option<String>,
}

/// Which process a pid belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Init,
    Exec(String),
}

#[derive(Default)]
pub(crate) struct TableInner {
    pub init: Option<Arc<Init>>,
    pub execs: HashMap<String, Arc<Exec>>,
    pub by_pid: HashMap<u32, Owner>,
}

/// The processes of this shim. Held only for lookups and inserts, never across runc.
#[derive(Default)]
pub(crate) struct Table(Mutex<TableInner>);

impl Table {
    pub fn lock(&self) -> MutexGuard<'_, TableInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum Proc {
    Init(Arc<Init>),
    Exec(Arc<Exec>, Arc<Init>),
}

pub struct Shim {
    config: Config,
    reaper: reaper::Reaper,
    table: Arc<Table>,
    /// Feeds the exit dispatcher; one clone per watched pid lives in the reaper.
    exits: Mutex<Sender<reaper::Exit>>,
    /// Held for the whole of Create (as Go holds its service lock): a second Create waits, then
    /// finds the first's init and is refused before it mounts or undoes anything.
    creating: Mutex<()>,
    /// The dispatcher thread runs for the life of the process; kept to show who owns it.
    /// Where exits go (shared with the dispatcher); told when the task is deleted.
    events: Arc<dyn EventSink>,
    _dispatcher: std::thread::JoinHandle<()>,
}

impl Shim {
    pub fn new(
        config: Config,
        reaper: reaper::Reaper,
        events: Box<dyn EventSink>,
    ) -> Result<Shim, Error> {
        let table = Arc::new(Table::default());
        let (tx, rx) = channel();
        let events: Arc<dyn EventSink> = Arc::from(events);
        let dispatcher = exits::spawn(
            Arc::clone(&table),
            rx,
            Arc::clone(&events),
            config.settle_limit,
        )
        .map_err(|e| Error::Internal(format!("start exit dispatcher: {e}")))?;
        Ok(Shim {
            config,
            reaper,
            table,
            exits: Mutex::new(tx),
            creating: Mutex::new(()),
            events,
            _dispatcher: dispatcher,
        })
    }

    fn init(&self) -> Result<Arc<Init>, Error> {
        self.table
            .lock()
            .init
            .clone()
            .ok_or_else(Error::not_created)
    }

    fn lookup(&self, id: &str) -> Result<Proc, Error> {
        let t = self.table.lock();
        let init = t.init.clone().ok_or_else(|| Error::no_such_process(id))?;
        if id == init.parts.id {
            return Ok(Proc::Init(init));
        }
        match t.execs.get(id) {
            Some(e) => Ok(Proc::Exec(Arc::clone(e), init)),
            None => Err(Error::no_such_process(id)),
        }
    }

    /// Route `pid`'s exit to the dispatcher. Registered before watching, so the dispatcher always
    /// finds the owner; an exit that happened already is claimed from the reaper's buffer, unless
    /// it was reaped before `since` (the start of the runc call that produced the pid): that one
    /// is an earlier process's whose pid was recycled.
    fn follow(&self, pid: u32, owner: Owner, since: Instant) {
        self.table.lock().by_pid.insert(pid, owner);
        let tx = self.exits.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.reaper.watch_into_since(pid as i32, tx, since);
    }

    fn runc(&self, runtime: &str, bundle: &std::path::Path) -> Runc {
        let binary = if runtime.is_empty() { "runc" } else { runtime };
        Runc::new(
            RuncConfig {
                binary: PathBuf::from(binary),
                root: self.config.runtime_root.join(&self.config.namespace),
                log: bundle.join("log.json"),
                criu: self.config.criu.clone(),
                systemd_cgroup: self.config.systemd_cgroup,
                timeout: self.config.runc_timeout,
            },
            self.reaper.clone(),
        )
    }

    /// Create the init. A second Create while an init exists is AlreadyExists (`id <id>: already
    /// exists`, as for a taken exec id): the container exists, and nothing about it changes.
    pub fn create(&self, req: CreateRequest) -> Result<u32, Error> {
        validate::id("container", &req.id)?;
        validate::bundle(&req.bundle)?;
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(init) = &self.table.lock().init {
            return Err(Error::AlreadyExists(format!(
                "id {}: already exists",
                init.parts.id
            )));
        }
        crate::mount::mount_rootfs(&req.bundle, &req.rootfs)?;
        let undo = |e: Error| {
            if !req.rootfs.is_empty() {
                let _ = crate::mount::unmount_all(&req.bundle);
            }
            e
        };
        let owner = IoOwner {
            uid: req.options.io_uid,
            gid: req.options.io_gid,
        };
        let workdir = self.config.workdir.clone();
        let restore = (!req.checkpoint.is_empty()).then(|| RestoreFrom {
            image: PathBuf::from(&req.checkpoint),
            parent: (!req.parent_checkpoint.is_empty())
                .then(|| PathBuf::from(&req.parent_checkpoint)),
            work: if req.options.criu_work_path.is_empty() {
                workdir.clone()
            } else {
                PathBuf::from(&req.options.criu_work_path)
            },
            no_pivot: req.options.no_pivot_root,
        });
        let parts = InitParts {
            runc: self.runc(&req.runtime, &req.bundle),
            shares_pid_ns: init::shares_pid_ns(&req.bundle),
            rootfs_mounted: !req.rootfs.is_empty(),
            id: req.id.clone(),
            bundle: req.bundle.clone(),
            io: req.io.clone(),
            owner,
            restore,
            workdir,
            logger: LoggerContext {
                reaper: self.reaper.clone(),
                id: req.id.clone(),
                namespace: self.config.namespace.clone(),
            },
        };
        if parts.restore.is_some() {
            // Restored at Start: nothing runs yet, containerd gets pid 0.
            self.table.lock().init = Some(Arc::new(Init::new(parts, 0)));
            return Ok(0);
        }
        let (prepared, stdio) =
            Prepared::new(&req.io, owner, parts.logger.clone(), "init process").map_err(undo)?;
        let pid_file = req.bundle.join("init.pid");
        let opts = CreateOpts {
            pid_file: pid_file.clone(),
            console_socket: prepared.console_path(),
            no_pivot: req.options.no_pivot_root,
            no_new_keyring: req.options.no_new_keyring,
        };
        let since = Instant::now();
        parts
            .runc
            .create(&req.id, &req.bundle, &opts, stdio)
            .map_err(|e| undo(e.into()))?;
        let started = Init::new(parts, 0);
        let pid = prepared
            .finish(&req.io, &started.stdio, "init process")
            .and_then(|()| read_pid_file(&pid_file))
            .map_err(|e| {
                let _ = started.parts.runc.delete(&req.id, true);
                undo(e)
            })?;
        started.set_pid(pid);
        self.table.lock().init = Some(Arc::new(started));
        self.follow(pid, Owner::Init, since);
        Ok(pid)
    }

    pub fn start(&self, id: &str) -> Result<u32, Error> {
        match self.lookup(id)? {
            Proc::Init(init) => {
                let since = Instant::now();
                let (pid, new) = init.start()?;
                if new {
                    self.follow(pid, Owner::Init, since);
                }
                Ok(pid)
            }
            Proc::Exec(exec, init) => {
                // Once the init is gone nothing may start in the container.
                init.decide(Op::Exec)?;
                let since = Instant::now();
                let pid = exec.start()?;
                self.follow(pid, Owner::Exec(exec.id.clone()), since);
                Ok(pid)
            }
        }
    }

    pub fn delete(&self) -> Result<ExitInfo, Error> {
        let init = self.init()?;
        let info = init.delete()?;
        {
            let mut t = self.table.lock();
            t.init = None;
            t.by_pid.retain(|_, o| *o != Owner::Init);
        }
        self.events.task_deleted();
        Ok(info)
    }

    pub fn delete_process(&self, id: &str) -> Result<ExitInfo, Error> {
        // Before Create there is no process of that id (Go: NotFound), not a missing container.
        let init = self.init().map_err(|_| Error::no_such_process(id))?;
        if id == init.parts.id {
            return Err(Error::InvalidArgument(
                "cannot delete init process with DeleteProcess".into(),
            ));
        }
        let Proc::Exec(exec, _) = self.lookup(id)? else {
            return Err(Error::no_such_process(id));
        };
        let info = exec.delete()?;
        let mut t = self.table.lock();
        t.execs.remove(id);
        t.by_pid.retain(|_, o| *o != Owner::Exec(id.to_string()));
        if info.pid != 0 && info.exited_at.is_none() {
            self.reaper.forget(info.pid as i32);
        }
        Ok(info)
    }

    pub fn exec(&self, req: ExecRequest) -> Result<(), Error> {
        validate::id("exec", &req.id)?;
        let mut spec: serde_json::Value = serde_json::from_slice(&req.spec_json)
            .map_err(|e| Error::InvalidArgument(format!("exec spec is not an OCI process: {e}")))?;
        if !spec.is_object() {
            return Err(Error::InvalidArgument(
                "exec spec is not an OCI process: not a JSON object".into(),
            ));
        }
        spec["terminal"] = serde_json::Value::Bool(req.io.terminal);
        let spec = serde_json::to_vec(&spec).map_err(|e| Error::Internal(e.to_string()))?;
        let mut t = self.table.lock();
        let init = t.init.clone().ok_or_else(Error::not_created)?;
        if req.id == init.parts.id || t.execs.contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!(
                "id {}: already exists",
                req.id
            )));
        }
        init.decide(Op::Exec)?;
        let exec = Exec::new(req.id.clone(), &init, req.io, spec);
        t.execs.insert(req.id, Arc::new(exec));
        Ok(())
    }

    pub fn state(&self, id: &str) -> Result<ProcessState, Error> {
        Ok(match self.lookup(id)? {
            Proc::Init(init) => init.process_state(),
            Proc::Exec(exec, init) => {
                exec.process_state(init.parts.bundle.clone(), init::status_of(init.state()))
            }
        })
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), Error> {
        let id = if id.is_empty() {
            self.init()?.parts.id.clone()
        } else {
            id.to_string()
        };
        match self.lookup(&id)? {
            Proc::Init(init) => init.kill(signal, all),
            Proc::Exec(exec, _) => exec.kill(signal),
        }
    }

    /// The exit of process `id`, to watch without blocking a thread.
    pub fn exit_of(&self, id: &str) -> Result<ExitOf, Error> {
        self.lookup(id).map(ExitOf)
    }

    pub fn wait(&self, id: &str) -> Result<ExitInfo, Error> {
        // No lock is held while blocking: the Arc keeps the process alive.
        let (cell, pid) = match self.lookup(id)? {
            Proc::Init(init) => (init.exit.wait(), init.pid()),
            Proc::Exec(exec, _) => (exec.exit.wait(), exec.pid()),
        };
        Ok(ExitInfo {
            pid,
            status: cell.0,
            exited_at: cell.1,
        })
    }

    pub fn pause(&self) -> Result<(), Error> {
        self.init()?.pause()
    }

    pub fn resume(&self) -> Result<(), Error> {
        self.init()?.resume()
    }

    pub fn list_pids(&self) -> Result<Vec<PidInfo>, Error> {
        let init = self.init()?;
        let pids = match init.parts.runc.ps(&init.parts.id) {
            Ok(p) => p,
            Err(_) if init.exit.get().is_some() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let t = self.table.lock();
        let mut owners: HashMap<u32, String> = HashMap::new();
        owners.insert(init.pid(), init.parts.id.clone());
        for (id, e) in &t.execs {
            owners.insert(e.pid(), id.clone());
        }
        Ok(pids
            .into_iter()
            .map(|pid| PidInfo {
                pid,
                exec_id: owners.get(&pid).cloned(),
            })
            .collect())
    }

    pub fn close_io(&self, id: &str) -> Result<(), Error> {
        match self.lookup(id)? {
            Proc::Init(init) => init.stdio.close_stdin(),
            Proc::Exec(exec, _) => exec.stdio.close_stdin(),
        }
        Ok(())
    }

    pub fn resize_pty(&self, id: &str, width: u32, height: u32) -> Result<(), Error> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("id not provided".into()));
        }
        match self.lookup(id)? {
            Proc::Init(init) => {
                state::init(init.state(), Op::Resize)?;
                init.stdio.resize(width, height)
            }
            Proc::Exec(exec, _) => {
                exec.decide(Op::Resize)?;
                exec.stdio.resize(width, height)
            }
        }
    }

    /// Update the init's resources; the JSON must be an object (it goes to runc unchanged).
    pub fn update(&self, resources_json: &[u8]) -> Result<(), Error> {
        self.init()?.update(resources_json)
    }

    pub fn checkpoint(&self, path: &str, opts: CheckpointRequest) -> Result<(), Error> {
        self.init()?.checkpoint(path, &opts)
    }

    /// SIGTERM: kill everything, wait briefly for the init's exit, delete. Best effort.
    pub fn shutdown(&self) {
        let Ok(init) = self.init() else { return };
        let _ = init.kill(9, true);
        let _ = init.exit.wait_timeout(Duration::from_secs(2));
        let _ = self.delete();
    }
}
