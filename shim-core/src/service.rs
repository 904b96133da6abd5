//! Shim: the domain methods a front calls, one per operation, over every container of the shim;
//! processes are addressed by container id and exec id (empty for the init).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupError, Host, Metrics, OomWatcher};
use crate::config::Config;
use crate::error::Error;
use crate::events::{Event, EventSink};
use crate::exits;
use crate::io::{IoOwner, LoggerContext};
use crate::process::exec::Exec;
pub use crate::process::exit_cell::ExitWatch;
use crate::process::init::{self, Init, InitParts, RestoreFrom};
use crate::process::state::{self, Op};
use crate::process::{read_pid_file, Prepared};
use crate::runc::{CreateOpts, Runc, RuncConfig};
use crate::table::{Container, Owner, Proc, Table};
pub use crate::types::*;
use crate::validate;

pub use crate::mount::Mount;

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

pub struct Shim {
    config: Config,
    reaper: reaper::Reaper,
    table: Arc<Table>,
    /// Feeds the events thread; one clone per watched pid lives in the reaper.
    exits: exits::Feed,
    /// Held for the whole of a Create (as Go holds its service lock): a second Create of the same
    /// id waits, then finds the first's init and is refused before it mounts or undoes anything.
    creating: Mutex<()>,
    /// Where events go (shared with the events thread).
    events: Arc<dyn EventSink>,
    /// Watches every container's cgroup for OOMs (task v2 only); the events thread reports them.
    oom: Option<Arc<OomWatcher>>,
}

impl Shim {
    /// A shim with no container yet. Starts the events thread (exits, and OOMs when
    /// `config.watch_oom`), a vital thread.
    pub fn new(
        config: Config,
        reaper: reaper::Reaper,
        events: Box<dyn EventSink>,
    ) -> Result<Shim, Error> {
        let table = Arc::new(Table::default());
        let events: Arc<dyn EventSink> = Arc::from(events);
        let oom = if config.watch_oom {
            let watcher = OomWatcher::new()
                .map_err(|e| Error::Internal(format!("start the OOM watcher: {e}")))?;
            Some(Arc::new(watcher))
        } else {
            None
        };
        let (feed, _thread) = exits::spawn(
            Arc::clone(&table),
            Arc::clone(&events),
            config.settle_limit,
            oom.clone(),
        )
        .map_err(|e| Error::Internal(format!("start the events thread: {e}")))?;
        Ok(Shim {
            config,
            reaper,
            table,
            exits: feed,
            creating: Mutex::new(()),
            events,
            oom,
        })
    }

    /// The ids of every container, in no order.
    pub fn containers(&self) -> Vec<String> {
        self.table.lock().containers.keys().cloned().collect()
    }

    fn init(&self, id: &str) -> Result<Arc<Init>, Error> {
        self.table.lock().init(id)
    }

    fn lookup(&self, id: &str, exec_id: &str) -> Result<Proc, Error> {
        self.table.lock().find(id, exec_id)
    }

    /// Route `pid`'s exit to the events thread. Registered before watching, so it always
    /// finds the owner; an exit that happened already is claimed from the reaper's buffer, unless
    /// it was reaped before `since` (the start of the runc call that produced the pid): that one
    /// is an earlier process's whose pid was recycled.
    fn follow(&self, pid: u32, owner: Owner, since: Instant) {
        self.table.lock().by_pid.insert(pid, owner);
        let feed = self.exits.clone();
        self.reaper
            .watch_with_since(pid as i32, since, move |exit| feed.push(exit));
    }

    fn runc(&self, runtime: &str, bundle: &std::path::Path, opts: &CreateOptions) -> Runc {
        let binary = if runtime.is_empty() { "runc" } else { runtime };
        let root = opts
            .runtime_root
            .clone()
            .unwrap_or_else(|| self.config.runtime_root.clone());
        Runc::new(
            RuncConfig {
                binary: PathBuf::from(binary),
                root: root.join(&self.config.namespace),
                log: bundle.join("log.json"),
                criu: self.config.criu.clone(),
                systemd_cgroup: self.config.systemd_cgroup || opts.systemd_cgroup,
                timeout: self.config.runc_timeout,
            },
            self.reaper.clone(),
        )
    }

    /// Create container `req.id`'s init. An id already taken is AlreadyExists (`id <id>: already
    /// exists`): that container exists, and nothing about it changes.
    pub fn create(&self, req: CreateRequest) -> Result<u32, Error> {
        self.create_with(req, || Ok(()))
    }

    /// [`Shim::create`], running `prepare` once the id is known to be free (no other Create of
    /// it can run meanwhile) and before anything is mounted or runc runs: a front writes what it
    /// keeps in the bundle there, and a duplicate Create never gets that far.
    pub fn create_with(
        &self,
        req: CreateRequest,
        prepare: impl FnOnce() -> Result<(), Error>,
    ) -> Result<u32, Error> {
        validate::id("container", &req.id)?;
        validate::bundle(&req.bundle)?;
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if self.table.lock().containers.contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!(
                "id {}: already exists",
                req.id
            )));
        }
        prepare()?;
        crate::mount::mount_rootfs(&req.bundle, &req.rootfs)?;
        let undo = |e: Error| {
            if !req.rootfs.is_empty() {
                if let Err(u) = crate::mount::unmount_all(&req.bundle) {
                    log::warn!(id:% = req.id, error:% = u; "unmounting the rootfs of a failed create");
                }
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
            runc: self.runc(&req.runtime, &req.bundle, &req.options),
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
        let created = |pid: u32| Event::Create {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: req.io.clone(),
            checkpoint: req.checkpoint.clone(),
            pid,
        };
        if parts.restore.is_some() {
            // Restored at Start: nothing runs yet, containerd gets pid 0.
            self.insert(Init::new(parts, 0));
            self.events.event(created(0));
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
                if let Err(d) = started.parts.runc.delete(&req.id, true) {
                    log::warn!(id:% = req.id, error:% = d; "runc delete after a failed create");
                }
                undo(e)
            })?;
        started.set_pid(pid);
        self.insert(started);
        self.watch_oom(&req.id, pid);
        self.events.event(created(pid));
        self.follow(
            pid,
            Owner::Init {
                container: req.id.clone(),
            },
            since,
        );
        Ok(pid)
    }

    fn insert(&self, init: Init) {
        let id = init.parts.id.clone();
        self.table.lock().containers.insert(
            id,
            Container {
                init: Arc::new(init),
                execs: HashMap::new(),
            },
        );
    }

    /// Start the init (`runc start`, or restore) or an exec; the pid.
    pub fn start(&self, id: &str, exec_id: &str) -> Result<u32, Error> {
        match self.lookup(id, exec_id)? {
            Proc::Init(init) => {
                // Held until Start is emitted: the init's exit is emitted under the same lock.
                let _order = init.order();
                let since = Instant::now();
                let (pid, new) = init.start()?;
                self.events.event(Event::Start {
                    container_id: id.to_string(),
                    pid,
                });
                if new {
                    let owner = Owner::Init {
                        container: id.to_string(),
                    };
                    self.follow(pid, owner, since);
                    self.watch_oom(id, pid);
                }
                Ok(pid)
            }
            Proc::Exec(exec, init) => {
                // Once the init is gone nothing may start in the container.
                init.decide(Op::Exec)?;
                let since = Instant::now();
                let pid = exec.start()?;
                // Before following the pid: its exit is claimed, so emitted, only after this.
                self.events.event(Event::ExecStarted {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    pid,
                });
                let owner = Owner::Exec {
                    container: id.to_string(),
                    exec: exec_id.to_string(),
                };
                self.follow(pid, owner, since);
                Ok(pid)
            }
        }
    }

    /// Delete the init (the container leaves the table) or an exec.
    pub fn delete(&self, id: &str, exec_id: &str) -> Result<ExitInfo, Error> {
        match self.lookup(id, exec_id)? {
            Proc::Init(init) => {
                let info = init.delete()?;
                {
                    let mut t = self.table.lock();
                    t.containers.remove(id);
                    t.by_pid.retain(|_, o| o.container() != id);
                }
                if let Some(watcher) = &self.oom {
                    watcher.remove(id);
                }
                self.events.event(Event::Delete {
                    container_id: id.to_string(),
                    pid: info.pid,
                    exit_status: info.status,
                    exited_at: info.exited_at,
                });
                Ok(info)
            }
            Proc::Exec(exec, _) => {
                let info = exec.delete()?;
                let mut t = self.table.lock();
                if let Some(c) = t.containers.get_mut(id) {
                    c.execs.remove(exec_id);
                }
                let owner = Owner::Exec {
                    container: id.to_string(),
                    exec: exec_id.to_string(),
                };
                t.by_pid.retain(|_, o| *o != owner);
                if info.pid != 0 && info.exited_at.is_none() {
                    self.reaper.forget(info.pid as i32);
                }
                Ok(info)
            }
        }
    }

    /// Add exec `req.id` to container `id`, in created state.
    pub fn exec(&self, id: &str, req: ExecRequest) -> Result<(), Error> {
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
        {
            let mut t = self.table.lock();
            let c = t
                .containers
                .get_mut(id)
                .ok_or_else(|| Error::container_not_found(id))?;
            if req.id == c.init.parts.id || c.execs.contains_key(&req.id) {
                return Err(Error::AlreadyExists(format!(
                    "id {}: already exists",
                    req.id
                )));
            }
            c.init.decide(Op::Exec)?;
            let exec = Exec::new(req.id.clone(), &c.init, req.io, spec);
            c.execs.insert(req.id.clone(), Arc::new(exec));
        }
        self.events.event(Event::ExecAdded {
            container_id: id.to_string(),
            exec_id: req.id,
        });
        Ok(())
    }

    pub fn state(&self, id: &str, exec_id: &str) -> Result<ProcessState, Error> {
        Ok(match self.lookup(id, exec_id)? {
            Proc::Init(init) => init.process_state(),
            Proc::Exec(exec, init) => {
                exec.process_state(init.parts.bundle.clone(), init::status_of(init.state()))
            }
        })
    }

    pub fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<(), Error> {
        match self.lookup(id, exec_id)? {
            Proc::Init(init) => init.kill(signal, all),
            Proc::Exec(exec, _) => exec.kill(signal),
        }
    }

    /// The exit of a process, to watch without blocking a thread.
    pub fn exit_of(&self, id: &str, exec_id: &str) -> Result<ExitOf, Error> {
        self.lookup(id, exec_id).map(ExitOf)
    }

    /// Block until the process exits (tests and tools; fronts watch `exit_of` instead).
    pub fn wait(&self, id: &str, exec_id: &str) -> Result<ExitInfo, Error> {
        // No lock is held while blocking: the Arc keeps the process alive.
        let (cell, pid) = match self.lookup(id, exec_id)? {
            Proc::Init(init) => (init.exit.wait(), init.pid()),
            Proc::Exec(exec, _) => (exec.exit.wait(), exec.pid()),
        };
        Ok(ExitInfo {
            pid,
            status: cell.0,
            exited_at: cell.1,
        })
    }

    pub fn pause(&self, id: &str) -> Result<(), Error> {
        self.init(id)?.pause()?;
        self.events.event(Event::Paused {
            container_id: id.to_string(),
        });
        Ok(())
    }

    pub fn resume(&self, id: &str) -> Result<(), Error> {
        self.init(id)?.resume()?;
        self.events.event(Event::Resumed {
            container_id: id.to_string(),
        });
        Ok(())
    }

    /// Every pid in the container, with the exec owning it where one does.
    pub fn list_pids(&self, id: &str) -> Result<Vec<PidInfo>, Error> {
        let init = self.init(id)?;
        let pids = match init.parts.runc.ps(&init.parts.id) {
            Ok(p) => p,
            Err(_) if init.exit.get().is_some() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let t = self.table.lock();
        let mut owners: HashMap<u32, String> = HashMap::new();
        owners.insert(init.pid(), init.parts.id.clone());
        if let Some(c) = t.containers.get(id) {
            for (exec_id, e) in &c.execs {
                owners.insert(e.pid(), exec_id.clone());
            }
        }
        Ok(pids
            .into_iter()
            .map(|pid| PidInfo {
                pid,
                exec_id: owners.get(&pid).cloned(),
            })
            .collect())
    }

    pub fn close_io(&self, id: &str, exec_id: &str) -> Result<(), Error> {
        match self.lookup(id, exec_id)? {
            Proc::Init(init) => init.stdio.close_stdin(),
            Proc::Exec(exec, _) => exec.stdio.close_stdin(),
        }
        Ok(())
    }

    pub fn resize_pty(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), Error> {
        match self.lookup(id, exec_id)? {
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
    pub fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), Error> {
        self.init(id)?.update(resources_json)
    }

    pub fn checkpoint(&self, id: &str, path: &str, opts: CheckpointRequest) -> Result<(), Error> {
        self.init(id)?.checkpoint(path, &opts)?;
        self.events.event(Event::Checkpointed {
            container_id: id.to_string(),
            checkpoint: path.to_string(),
        });
        Ok(())
    }

    /// Container `id`'s cgroup metrics (v1 or v2, whichever the host has).
    /// The cgroup kept at Create is used; it is looked up from the init's pid only when none
    /// was kept (OOM watching off).
    pub fn stats(&self, id: &str) -> Result<Metrics, Error> {
        let init = self.init(id)?;
        let cgroup = match init.cgroup() {
            Some(kept) => kept,
            None => Cgroup::for_pid(&Host::default(), init.pid() as i32).map_err(cgroup_error)?,
        };
        cgroup.stats().map_err(cgroup_error)
    }

    /// Report the OOMs of the cgroup `pid` is in as container `id`'s, when this shim watches.
    fn watch_oom(&self, id: &str, pid: u32) {
        let Some(watcher) = &self.oom else {
            return;
        };
        let added = Cgroup::for_pid(&Host::default(), pid as i32).and_then(|cgroup| {
            watcher.add(id, &cgroup)?;
            if let Ok(init) = self.init(id) {
                init.set_cgroup(cgroup);
            }
            Ok(())
        });
        if let Err(e) = added {
            log::warn!(id:% = id, pid:% = pid, error:% = e; "cannot watch the container's cgroup for OOMs");
        }
    }

    /// The init's pid, 0 before it has one.
    pub fn init_pid(&self, id: &str) -> Result<u32, Error> {
        Ok(self.init(id)?.pid())
    }

    /// Kill every container's processes, wait briefly for the exits, delete. Best effort.
    pub fn shutdown(&self) {
        for id in self.containers() {
            let Ok(init) = self.init(&id) else { continue };
            if let Err(e) = init.kill(9, true) {
                log::debug!(id:% = id, error:% = e; "kill at shutdown");
            }
            let _ = init.exit.wait_timeout(Duration::from_secs(2));
            if let Err(e) = self.delete(&id, "") {
                log::warn!(id:% = id, error:% = e; "delete at shutdown");
            }
        }
    }
}

/// A cgroup that is gone (or never was) is NotFound, as containerd's "cgroup does not exist".
fn cgroup_error(e: CgroupError) -> Error {
    if e.is_not_found() {
        Error::NotFound(format!("cgroup does not exist: {e}"))
    } else {
        Error::Internal(e.to_string())
    }
}
