//! The Task service's handlers: translation only, task v2 messages <-> shim-core domain calls.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use shim_core::service::{self as core, ExitOf, Shim};
use shim_host::status::{status, Reply};
use shim_host::types;
use shim_proto::protobuf::Empty;
use shim_proto::runc_v1_options::ProcessDetails;
use shim_proto::task_v2::{
    CheckpointTaskRequest, CloseIoRequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use shim_proto::type_url::{OCI_LINUX_RESOURCES, OCI_PROCESS, RUNC_V1_PROCESS_DETAILS};
use shim_proto::types::ProcessInfo;

use crate::refusal::refused;
use crate::{bundle, options, stats, version};

/// The server side of `containerd.task.v2.Task` (and v3) over a shim-core `Shim`.
pub struct Service {
    core: Arc<Shim>,
    /// Whether Shutdown was accepted. Create holds it shared for its whole run and Shutdown
    /// exclusively, as Go's service lock orders them: Shutdown never finds the shim empty while
    /// a Create is under way, and no Create starts once the shim is stopping.
    stopping: RwLock<bool>,
    /// Told when Shutdown found no container left: the daemon then exits.
    on_shutdown: Box<dyn Fn() + Send + Sync>,
}

/// What Shutdown decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Containers remain: nothing happens (Go answers the same).
    Busy,
    /// No container left: the daemon stops once the answer is out.
    Stopping,
}

impl Service {
    pub fn new(core: Arc<Shim>, on_shutdown: Box<dyn Fn() + Send + Sync>) -> Service {
        Service {
            core,
            stopping: RwLock::new(false),
            on_shutdown,
        }
    }

    /// Stop the daemon (after Shutdown's answer went out).
    pub fn stop(&self) {
        (self.on_shutdown)();
    }
}

/// One method per RPC of `containerd.task.v2.Task` (routed by `dispatch`).
impl Service {
    pub fn state(&self, req: StateRequest) -> Reply<StateResponse> {
        let s = self.core.state(&req.id, &req.exec_id).map_err(refused)?;
        Ok(StateResponse {
            id: s.id,
            bundle: s.bundle.to_string_lossy().into_owned(),
            pid: s.pid,
            status: types::status(s.status) as i32,
            stdin: s.io.stdin,
            stdout: s.io.stdout,
            stderr: s.io.stderr,
            terminal: s.io.terminal,
            exit_status: s.exit_status,
            exited_at: Some(types::exit_time(s.exited_at)),
            exec_id: req.exec_id,
        })
    }

    pub fn create(&self, req: CreateTaskRequest) -> Reply<CreateTaskResponse> {
        let stopping = self.stopping.read().unwrap_or_else(|p| p.into_inner());
        if *stopping {
            return Err(shutting_down());
        }
        let o = options::runc(req.options.as_ref())?;
        let bundle_dir = PathBuf::from(&req.bundle);
        // Before runc runs, as Go: `delete` finds runc's root and binary here if we die. Only
        // once the id is known to be free: a second Create of a live id changes nothing.
        let options_dir = bundle_dir.clone();
        let written = o.clone();
        let prepare = move || {
            bundle::write_options(&options_dir, &written)
                .map_err(|e| shim_core::Error::Internal(format!("writing the task's options: {e}")))
        };
        let request = core::CreateRequest {
            id: req.id,
            bundle: bundle_dir,
            runtime: o.binary_name,
            rootfs: types::rootfs(req.rootfs),
            io: types::io(req.stdin, req.stdout, req.stderr, req.terminal),
            checkpoint: req.checkpoint,
            parent_checkpoint: req.parent_checkpoint,
            options: core::CreateOptions {
                no_pivot_root: o.no_pivot_root,
                no_new_keyring: o.no_new_keyring,
                io_uid: o.io_uid,
                io_gid: o.io_gid,
                criu_work_path: o.criu_work_path,
                runtime_root: (!o.root.is_empty()).then(|| PathBuf::from(o.root)),
                systemd_cgroup: o.systemd_cgroup,
            },
        };
        let pid = self.core.create_with(request, prepare).map_err(refused)?;
        Ok(CreateTaskResponse { pid })
    }

    pub fn start(&self, req: StartRequest) -> Reply<StartResponse> {
        let pid = self.core.start(&req.id, &req.exec_id).map_err(refused)?;
        Ok(StartResponse { pid })
    }

    pub fn delete(&self, req: DeleteRequest) -> Reply<DeleteResponse> {
        let e = self.core.delete(&req.id, &req.exec_id).map_err(refused)?;
        Ok(DeleteResponse {
            pid: e.pid,
            exit_status: e.status,
            exited_at: Some(types::exit_time(e.exited_at)),
        })
    }

    /// Every pid of the container; an exec's carries its exec id (the init's nothing, as Go).
    pub fn pids(&self, req: PidsRequest) -> Reply<PidsResponse> {
        let pids = self.core.list_pids(&req.id).map_err(refused)?;
        let processes = pids
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: p.exec_id.filter(|e| *e != req.id).map(|exec_id| {
                    shim_proto::any::pack(RUNC_V1_PROCESS_DETAILS, &ProcessDetails { exec_id })
                }),
            })
            .collect();
        Ok(PidsResponse { processes })
    }

    pub fn pause(&self, req: PauseRequest) -> Reply<Empty> {
        self.core.pause(&req.id).map_err(refused)?;
        Ok(Empty {})
    }

    pub fn resume(&self, req: ResumeRequest) -> Reply<Empty> {
        self.core.resume(&req.id).map_err(refused)?;
        Ok(Empty {})
    }

    pub fn checkpoint(&self, req: CheckpointTaskRequest) -> Reply<Empty> {
        let o = options::checkpoint(req.options.as_ref())?;
        let opts = core::CheckpointRequest {
            exit: o.exit,
            open_tcp: o.open_tcp,
            external_unix_sockets: o.external_unix_sockets,
            terminal: o.terminal,
            file_locks: o.file_locks,
            empty_namespaces: o.empty_namespaces,
            work_path: o.work_path,
        };
        self.core
            .checkpoint(&req.id, &req.path, opts)
            .map_err(refused)?;
        Ok(Empty {})
    }

    pub fn kill(&self, req: KillRequest) -> Reply<Empty> {
        self.core
            .kill(&req.id, &req.exec_id, req.signal, req.all)
            .map_err(refused)?;
        Ok(Empty {})
    }

    pub fn exec(&self, req: ExecProcessRequest) -> Reply<Empty> {
        let spec_json = shim_host::options::json(req.spec, OCI_PROCESS, "spec")?;
        let request = core::ExecRequest {
            id: req.exec_id,
            io: types::io(req.stdin, req.stdout, req.stderr, req.terminal),
            spec_json,
        };
        self.core.exec(&req.id, request).map_err(refused)?;
        Ok(Empty {})
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> Reply<Empty> {
        self.core
            .resize_pty(&req.id, &req.exec_id, req.width, req.height)
            .map_err(refused)?;
        Ok(Empty {})
    }

    pub fn close_io(&self, req: CloseIoRequest) -> Reply<Empty> {
        // As Go, `stdin` is not looked at: CloseIO always closes the process's stdin.
        self.core.close_io(&req.id, &req.exec_id).map_err(refused)?;
        Ok(Empty {})
    }

    /// Resources only; the annotations are ignored, as Go's runc shim ignores them.
    pub fn update(&self, req: UpdateTaskRequest) -> Reply<Empty> {
        let resources = shim_host::options::json(req.resources, OCI_LINUX_RESOURCES, "resources")?;
        self.core.update(&req.id, &resources).map_err(refused)?;
        Ok(Empty {})
    }

    /// Wait without holding a thread: the process's exit, to watch (see `wait_response`).
    pub fn wait(&self, req: WaitRequest) -> Reply<ExitOf> {
        self.core.exit_of(&req.id, &req.exec_id).map_err(refused)
    }

    pub fn stats(&self, req: StatsRequest) -> Reply<StatsResponse> {
        let metrics = self.core.stats(&req.id).map_err(refused)?;
        Ok(StatsResponse {
            stats: Some(stats::to_any(&metrics)),
        })
    }

    /// The shim's pid, and the task's (0 when `id` is not one of ours, as Go).
    pub fn connect(&self, req: ConnectRequest) -> Reply<ConnectResponse> {
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: self.core.init_pid(&req.id).unwrap_or(0),
            version: version::VERSION.to_string(),
        })
    }

    /// With containers left, nothing; else the daemon stops (`now` is ignored, as in Go).
    pub fn shutdown(&self, _req: ShutdownRequest) -> Reply<Shutdown> {
        let mut stopping = self.stopping.write().unwrap_or_else(|p| p.into_inner());
        if !self.core.containers().is_empty() {
            return Ok(Shutdown::Busy);
        }
        *stopping = true;
        Ok(Shutdown::Stopping)
    }
}

/// Shutdown was accepted: what a Create arriving after it gets.
fn shutting_down() -> ttrpc::Status {
    status(ttrpc::Code::FAILED_PRECONDITION, "shim is shutting down")
}

/// What Wait answers once the exit is known (status 0 and Go's zero time for none).
pub fn wait_response(status: u32, at: Option<SystemTime>) -> WaitResponse {
    WaitResponse {
        exit_status: status,
        exited_at: Some(types::exit_time(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_on_a_process_that_never_exited_reports_go_zero_time() {
        let none = wait_response(0, None);
        assert_eq!(
            (none.exit_status, none.exited_at),
            (0, Some(shim_proto::time::GO_ZERO_TIME))
        );
    }

    #[test]
    fn a_create_after_shutdown_is_a_failed_precondition() {
        let s = shutting_down();
        assert_eq!((s.code, s.message.as_str()), (9, "shim is shutting down"));
    }
}
