//! The `Shim` service's handlers: translation only, proto messages <-> shim-core domain calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use shim_core::service as core;
use shim_core::SingleShim;
use shim_host::options;
use shim_host::status::{to_status, Reply};
use shim_host::types;
use shim_proto::protobuf::{Any, Empty};
use shim_proto::runc::{CheckpointOptions, CreateOptions, ProcessDetails};
use shim_proto::shim::{
    CheckpointTaskRequest, CloseIoRequest, CreateTaskRequest, CreateTaskResponse,
    DeleteProcessRequest, DeleteResponse, ExecProcessRequest, KillRequest, ListPidsRequest,
    ListPidsResponse, ResizePtyRequest, ShimInfoResponse, StartRequest, StartResponse,
    StateRequest, StateResponse, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use shim_proto::type_url::{
    CHECKPOINT_OPTIONS, CREATE_OPTIONS, OCI_LINUX_RESOURCES, OCI_PROCESS, PROCESS_DETAILS,
};
use shim_proto::types::ProcessInfo;

/// The server side of `containerd.runtime.linux.shim.v1.Shim` over a shim-core `Shim`.
pub struct Service {
    core: Arc<SingleShim>,
}

impl Service {
    pub fn new(core: Arc<SingleShim>) -> Service {
        Service { core }
    }
}

/// One method per RPC of `containerd.runtime.linux.shim.v1.Shim` (routed by `dispatch`).
impl Service {
    pub fn state(&self, req: StateRequest) -> Reply<StateResponse> {
        let s = self.core.state(&req.id).map_err(to_status)?;
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
        })
    }

    pub fn create(&self, req: CreateTaskRequest) -> Reply<CreateTaskResponse> {
        let options = create_options(req.options.as_ref())?;
        let request = core::CreateRequest {
            id: req.id,
            bundle: PathBuf::from(req.bundle),
            runtime: req.runtime,
            rootfs: types::rootfs(req.rootfs),
            io: types::io(req.stdin, req.stdout, req.stderr, req.terminal),
            checkpoint: req.checkpoint,
            parent_checkpoint: req.parent_checkpoint,
            options,
        };
        let pid = self.core.create(request).map_err(to_status)?;
        Ok(CreateTaskResponse { pid })
    }

    pub fn start(&self, req: StartRequest) -> Reply<StartResponse> {
        let pid = self.core.start(&req.id).map_err(to_status)?;
        Ok(StartResponse { id: req.id, pid })
    }

    pub fn delete(&self, _req: Empty) -> Reply<DeleteResponse> {
        self.core.delete().map(delete_response).map_err(to_status)
    }

    pub fn delete_process(&self, req: DeleteProcessRequest) -> Reply<DeleteResponse> {
        self.core
            .delete_process(&req.id)
            .map(delete_response)
            .map_err(to_status)
    }

    pub fn list_pids(&self, _req: ListPidsRequest) -> Reply<ListPidsResponse> {
        let pids = self.core.list_pids().map_err(to_status)?;
        let processes = pids
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: p.exec_id.map(|exec_id| {
                    shim_proto::any::pack(PROCESS_DETAILS, &ProcessDetails { exec_id })
                }),
            })
            .collect();
        Ok(ListPidsResponse { processes })
    }

    pub fn pause(&self, _req: Empty) -> Reply<Empty> {
        self.core.pause().map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn resume(&self, _req: Empty) -> Reply<Empty> {
        self.core.resume().map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn checkpoint(&self, req: CheckpointTaskRequest) -> Reply<Empty> {
        let o: CheckpointOptions = options::decode(req.options.as_ref(), CHECKPOINT_OPTIONS)?;
        let opts = core::CheckpointRequest {
            exit: o.exit,
            open_tcp: o.open_tcp,
            external_unix_sockets: o.external_unix_sockets,
            terminal: o.terminal,
            file_locks: o.file_locks,
            empty_namespaces: o.empty_namespaces,
            work_path: o.work_path,
        };
        self.core.checkpoint(&req.path, opts).map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn kill(&self, req: KillRequest) -> Reply<Empty> {
        self.core
            .kill(&req.id, req.signal, req.all)
            .map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn exec(&self, req: ExecProcessRequest) -> Reply<Empty> {
        let spec_json = options::json(req.spec, OCI_PROCESS, "spec")?;
        let request = core::ExecRequest {
            id: req.id,
            io: types::io(req.stdin, req.stdout, req.stderr, req.terminal),
            spec_json,
        };
        self.core.exec(request).map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> Reply<Empty> {
        self.core
            .resize_pty(&req.id, req.width, req.height)
            .map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn close_io(&self, req: CloseIoRequest) -> Reply<Empty> {
        // Like Go, `stdin` is ignored: CloseIO always closes our stdin writer.
        self.core.close_io(&req.id).map_err(to_status)?;
        Ok(Empty {})
    }

    pub fn shim_info(&self, _req: Empty) -> Reply<ShimInfoResponse> {
        Ok(ShimInfoResponse {
            shim_pid: std::process::id(),
        })
    }

    pub fn update(&self, req: UpdateTaskRequest) -> Reply<Empty> {
        let resources = options::json(req.resources, OCI_LINUX_RESOURCES, "resources")?;
        self.core.update(&resources).map_err(to_status)?;
        Ok(Empty {})
    }

    /// Wait without holding a thread: the process's exit, to watch (see `wait_response`).
    pub fn wait(&self, req: WaitRequest) -> Reply<core::ExitOf> {
        self.core.exit_of(&req.id).map_err(to_status)
    }
}

/// What Wait answers once the exit is known (status 0 and Go's zero time for none).
pub fn wait_response(status: u32, at: Option<SystemTime>) -> WaitResponse {
    WaitResponse {
        exit_status: status,
        exited_at: Some(types::exit_time(at)),
    }
}

fn delete_response(e: core::ExitInfo) -> DeleteResponse {
    DeleteResponse {
        pid: e.pid,
        exit_status: e.status,
        exited_at: Some(types::exit_time(e.exited_at)),
    }
}

/// CreateTaskRequest.options: `containerd.linux.runc.CreateOptions`, or defaults when none sent.
fn create_options(any: Option<&Any>) -> Reply<core::CreateOptions> {
    let o: CreateOptions = options::decode(any, CREATE_OPTIONS)?;
    Ok(core::CreateOptions {
        no_pivot_root: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
        io_uid: o.io_uid,
        io_gid: o.io_gid,
        criu_work_path: o.criu_work_path,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_create_options_are_defaults() {
        assert!(create_options(None).is_ok());
        assert!(create_options(Some(&Any::default())).is_ok());
    }

    #[test]
    fn create_options_are_decoded_by_type_url() {
        let any = shim_proto::any::pack(
            CREATE_OPTIONS,
            &CreateOptions {
                no_pivot_root: true,
                io_uid: 7,
                ..Default::default()
            },
        );
        let o = create_options(Some(&any)).unwrap();
        assert!(o.no_pivot_root);
        assert_eq!(o.io_uid, 7);
    }

    #[test]
    fn the_task_api_s_options_are_not_this_runtime_s() {
        let any = Any {
            type_url: shim_proto::type_url::RUNC_V1_OPTIONS.into(),
            value: vec![],
        };
        let Err(s) = create_options(Some(&any)) else {
            panic!("task API options must be refused");
        };
        assert_eq!(s.code, 3);
        assert!(s.message.contains(&any.type_url), "{}", s.message);
    }
}
