//! The `Shim` service's handlers: translation only, proto messages <-> shim-core domain calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use shim_core::service as core;
use shim_core::SingleShim;
use shim_host::status::{invalid, to_status, Reply};
use shim_proto::any::type_url_matches;
use shim_proto::protobuf::{Any, Empty, Timestamp};
use shim_proto::runc::{CheckpointOptions, CreateOptions, ProcessDetails};
use shim_proto::shim::{
    CheckpointTaskRequest, CloseIoRequest, CreateTaskRequest, CreateTaskResponse,
    DeleteProcessRequest, DeleteResponse, ExecProcessRequest, KillRequest, ListPidsRequest,
    ListPidsResponse, ResizePtyRequest, ShimInfoResponse, StartRequest, StartResponse,
    StateRequest, StateResponse, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use shim_proto::time::{to_timestamp, GO_ZERO_TIME};
use shim_proto::type_url::{
    CHECKPOINT_OPTIONS, CREATE_OPTIONS, OCI_LINUX_RESOURCES, OCI_PROCESS, PROCESS_DETAILS,
};
use shim_proto::types::{ProcessInfo, Status};

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
            status: status_to_proto(s.status) as i32,
            stdin: s.io.stdin,
            stdout: s.io.stdout,
            stderr: s.io.stderr,
            terminal: s.io.terminal,
            exit_status: s.exit_status,
            exited_at: Some(exit_time(s.exited_at)),
        })
    }

    pub fn create(&self, req: CreateTaskRequest) -> Reply<CreateTaskResponse> {
        let options = create_options(req.options.as_ref())?;
        let request = core::CreateRequest {
            id: req.id,
            bundle: PathBuf::from(req.bundle),
            runtime: req.runtime,
            rootfs: req
                .rootfs
                .into_iter()
                .map(|m| core::Mount {
                    kind: m.r#type,
                    source: m.source,
                    target: m.target,
                    options: m.options,
                })
                .collect(),
            io: io_spec(req.stdin, req.stdout, req.stderr, req.terminal),
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
        let o = checkpoint_options(req.options.as_ref())?;
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
        let spec_json = json_any(req.spec, OCI_PROCESS, "spec")?;
        let request = core::ExecRequest {
            id: req.id,
            io: io_spec(req.stdin, req.stdout, req.stderr, req.terminal),
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
        let resources = json_any(req.resources, OCI_LINUX_RESOURCES, "resources")?;
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
        exited_at: Some(exit_time(at)),
    }
}

fn io_spec(stdin: String, stdout: String, stderr: String, terminal: bool) -> shim_core::io::IoSpec {
    shim_core::io::IoSpec {
        stdin,
        stdout,
        stderr,
        terminal,
    }
}

fn delete_response(e: core::ExitInfo) -> DeleteResponse {
    DeleteResponse {
        pid: e.pid,
        exit_status: e.status,
        exited_at: Some(exit_time(e.exited_at)),
    }
}

/// Go always encodes the time: a process that never exited reports Go's zero time.
fn exit_time(at: Option<SystemTime>) -> Timestamp {
    at.map_or(GO_ZERO_TIME, to_timestamp)
}

fn status_to_proto(s: core::Status) -> Status {
    match s {
        core::Status::Created => Status::Created,
        core::Status::Running => Status::Running,
        core::Status::Stopped => Status::Stopped,
        core::Status::Paused => Status::Paused,
        core::Status::Pausing => Status::Pausing,
    }
}

/// An absent Any, or one with neither URL nor value, means "nothing sent".
fn is_empty(any: Option<&Any>) -> bool {
    any.map_or(true, |a| a.type_url.is_empty() && a.value.is_empty())
}

/// CreateTaskRequest.options: `containerd.linux.runc.CreateOptions`, or defaults when empty.
fn create_options(any: Option<&Any>) -> Reply<core::CreateOptions> {
    let Some(any) = any.filter(|_| !is_empty(any)) else {
        return Ok(core::CreateOptions::default());
    };
    let o: CreateOptions = decode_options(any, CREATE_OPTIONS)?;
    Ok(core::CreateOptions {
        no_pivot_root: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
        io_uid: o.io_uid,
        io_gid: o.io_gid,
        criu_work_path: o.criu_work_path,
        ..Default::default()
    })
}

/// CheckpointTaskRequest.options: `containerd.linux.runc.CheckpointOptions`, or defaults when empty.
fn checkpoint_options(any: Option<&Any>) -> Reply<CheckpointOptions> {
    match any.filter(|_| !is_empty(any)) {
        None => Ok(CheckpointOptions::default()),
        Some(any) => decode_options(any, CHECKPOINT_OPTIONS),
    }
}

fn decode_options<M: prost::Message + Default>(any: &Any, expected: &str) -> Reply<M> {
    if !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported options type {:?}, expected {expected:?}",
            any.type_url
        )));
    }
    shim_proto::any::unpack(any, expected).map_err(|e| invalid(e.to_string()))
}

/// An OCI JSON Any (process spec, resources): its URL must be the OCI one (or empty).
fn json_any(any: Option<Any>, expected: &str, what: &str) -> Reply<Vec<u8>> {
    let any = any.unwrap_or_default();
    if !any.type_url.is_empty() && !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported {what} type {:?}, expected {expected:?}",
            any.type_url
        )));
    }
    Ok(any.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: Reply<T>) -> i32 {
        match r {
            Err(s) => s.code,
            Ok(_) => panic!("expected an error"),
        }
    }

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
    fn unknown_options_url_is_invalid_argument_naming_it() {
        let any = Any {
            type_url: "example.com/Bogus".into(),
            value: vec![],
        };
        match create_options(Some(&any)) {
            Err(s) => {
                assert_eq!(s.code, 3);
                assert!(s.message.contains("example.com/Bogus"), "{}", s.message);
            }
            _ => panic!("expected InvalidArgument"),
        }
        assert_eq!(code(checkpoint_options(Some(&any))), 3);
    }

    #[test]
    fn undecodable_options_are_invalid_argument() {
        let any = Any {
            type_url: CREATE_OPTIONS.into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert_eq!(code(create_options(Some(&any))), 3);
    }

    #[test]
    fn json_anys_accept_the_oci_url_or_none_and_refuse_others() {
        let ok = Any {
            type_url: OCI_PROCESS.into(),
            value: b"{}".to_vec(),
        };
        assert_eq!(json_any(Some(ok), OCI_PROCESS, "spec").unwrap(), b"{}");
        let bare = Any {
            type_url: String::new(),
            value: b"{}".to_vec(),
        };
        assert_eq!(json_any(Some(bare), OCI_PROCESS, "spec").unwrap(), b"{}");
        let wrong = Any {
            type_url: OCI_LINUX_RESOURCES.into(),
            value: b"{}".to_vec(),
        };
        assert_eq!(code(json_any(Some(wrong), OCI_PROCESS, "spec")), 3);
    }

    #[test]
    fn a_process_that_never_exited_reports_go_zero_time() {
        assert_eq!(exit_time(None), GO_ZERO_TIME);
        assert_eq!(
            exit_time(Some(SystemTime::UNIX_EPOCH)),
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
    }
}
