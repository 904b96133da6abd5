//! [`Api`] over task API v2 (`containerd.task.v2.Task`): a process is a container id plus an exec
//! id (empty for the container's init). A shim that serves only task API v3 (containerd 2.x's
//! Go shims: the same messages under `containerd.task.v3.Task`) is found out by its first answer
//! and spoken to under that name from then on.

use super::{
    context, time, Api, CheckpointParams, Connected, CreateParams, ExecParams, Exit, PidEntry,
    Proc, ProcessState, Protocol,
};
use crate::error::RpcError;
use shim_proto::any::{pack, unpack};
use shim_proto::protobuf::{Any, Empty};
use shim_proto::runc_v1_options::{CheckpointOptions, Options, ProcessDetails};
use shim_proto::task_v2 as api;
use shim_proto::type_url;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const SERVICE: &str = "containerd.task.v2.Task";
/// Task API v3: the same methods and messages (same wire bytes) under another service name.
pub const SERVICE_V3: &str = "containerd.task.v3.Task";
/// The runtime binary a runc shim runs when its options name none.
const DEFAULT_RUNTIME: &str = "runc";

pub struct Client {
    client: ttrpc::Client,
    timeout: Option<Duration>,
    /// The shim said it has no `containerd.task.v2.Task`: every call goes to v3.
    v3: AtomicBool,
}

/// `(id, exec_id)` of a process as task v2 requests carry them.
fn ids(p: &Proc) -> (String, String) {
    (p.container.clone(), p.exec.clone().unwrap_or_default())
}

/// A Task request: its method's name and its answer's type.
trait Rpc: prost::Message + Default {
    const METHOD: &'static str;
    type Resp: prost::Message + Default;
}

macro_rules! rpc {
    ($($req:ident => $method:literal, $resp:ty;)*) => {
        $(impl Rpc for api::$req {
            const METHOD: &'static str = $method;
            type Resp = $resp;
        })*
    };
}

rpc! {
    StateRequest => "State", api::StateResponse;
    CreateTaskRequest => "Create", api::CreateTaskResponse;
    StartRequest => "Start", api::StartResponse;
    DeleteRequest => "Delete", api::DeleteResponse;
    PidsRequest => "Pids", api::PidsResponse;
    PauseRequest => "Pause", Empty;
    ResumeRequest => "Resume", Empty;
    CheckpointTaskRequest => "Checkpoint", Empty;
    KillRequest => "Kill", Empty;
    ExecProcessRequest => "Exec", Empty;
    ResizePtyRequest => "ResizePty", Empty;
    CloseIoRequest => "CloseIO", Empty;
    UpdateTaskRequest => "Update", Empty;
    WaitRequest => "Wait", api::WaitResponse;
    StatsRequest => "Stats", api::StatsResponse;
    ConnectRequest => "Connect", api::ConnectResponse;
    ShutdownRequest => "Shutdown", Empty;
}

impl Client {
    pub fn new(client: ttrpc::Client, timeout: Option<Duration>) -> Client {
        Client {
            client,
            timeout,
            v3: AtomicBool::new(false),
        }
    }

    fn ctx(&self) -> ttrpc::context::Context {
        context(self.timeout)
    }

    /// The service this client calls now.
    pub fn service(&self) -> &'static str {
        if self.v3.load(Ordering::Relaxed) {
            SERVICE_V3
        } else {
            SERVICE
        }
    }

    /// `method` of the Task service the shim serves: v2 first; a shim without it (its answer
    /// says so, and nothing ran) is asked again under v3, which later calls use at once. A shim
    /// with neither gets v2's refusal back.
    fn call<Req: Rpc>(
        &self,
        ctx: ttrpc::context::Context,
        req: &Req,
    ) -> Result<Req::Resp, RpcError> {
        match self.call_at(ctx.clone(), self.service(), Req::METHOD, req) {
            Err(e)
                if !self.v3.load(Ordering::Relaxed) && super::is_missing_service(&e, SERVICE) =>
            {
                match self.call_at(ctx, SERVICE_V3, Req::METHOD, req) {
                    // Neither: no task shim at all; v2's answer says so.
                    Err(v3) if super::is_missing_service(&v3, SERVICE_V3) => Err(e),
                    other => {
                        self.v3.store(true, Ordering::Relaxed);
                        other
                    }
                }
            }
            other => other,
        }
    }

    /// One call of `service`/`method`, encoded as the generated clients encode it.
    fn call_at<Req, Resp>(
        &self,
        ctx: ttrpc::context::Context,
        service: &str,
        method: &str,
        req: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message + Default,
        Resp: prost::Message + Default,
    {
        let call = || -> ttrpc::Result<Resp> {
            let mut resp = Resp::default();
            ttrpc::client_request!(self, ctx, req, service, method, resp);
            Ok(resp)
        };
        Ok(call()?)
    }

    /// Connect, with the RPC's own error (for [`super::probe`]).
    pub fn connect_raw(&self, container: &str) -> Result<api::ConnectResponse, RpcError> {
        let req = api::ConnectRequest {
            id: container.to_string(),
        };
        self.call(self.ctx(), &req)
    }
}

impl Api for Client {
    fn protocol(&self) -> Protocol {
        Protocol::V2
    }

    fn state(&self, p: &Proc) -> Result<ProcessState, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self.call(self.ctx(), &api::StateRequest { id, exec_id })?;
        Ok(ProcessState {
            id: r.id,
            bundle: r.bundle,
            pid: r.pid,
            status: r.status,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            terminal: r.terminal,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    fn create(&self, p: &CreateParams) -> Result<u32, RpcError> {
        // The bundle's own rootfs directory is used as it is (no mounts); a runtime other than
        // runc goes in the runc shim's options, as containerd sends them.
        let options = (p.runtime != DEFAULT_RUNTIME && !p.runtime.is_empty()).then(|| {
            let opts = Options {
                binary_name: p.runtime.clone(),
                ..Default::default()
            };
            pack(type_url::RUNC_V1_OPTIONS, &opts)
        });
        let req = api::CreateTaskRequest {
            id: p.id.clone(),
            bundle: p.bundle.clone(),
            terminal: p.terminal,
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            options,
            ..Default::default()
        };
        Ok(self.call(self.ctx(), &req)?.pid)
    }

    fn start(&self, p: &Proc) -> Result<u32, RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::StartRequest { id, exec_id };
        Ok(self.call(self.ctx(), &req)?.pid)
    }

    fn delete(&self, p: &Proc) -> Result<Exit, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self.call(self.ctx(), &api::DeleteRequest { id, exec_id })?;
        Ok(Exit {
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    fn pids(&self, container: &str) -> Result<Vec<PidEntry>, RpcError> {
        let req = api::PidsRequest {
            id: container.to_string(),
        };
        let r = self.call(self.ctx(), &req)?;
        Ok(r.processes
            .into_iter()
            .map(|p| PidEntry {
                pid: p.pid,
                exec_id: p
                    .info
                    .and_then(|a| {
                        unpack::<ProcessDetails>(&a, type_url::RUNC_V1_PROCESS_DETAILS).ok()
                    })
                    .map(|d| d.exec_id),
            })
            .collect())
    }

    fn pause(&self, container: &str) -> Result<(), RpcError> {
        let req = api::PauseRequest {
            id: container.to_string(),
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn resume(&self, container: &str) -> Result<(), RpcError> {
        let req = api::ResumeRequest {
            id: container.to_string(),
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn checkpoint(
        &self,
        container: &str,
        path: &str,
        p: &CheckpointParams,
    ) -> Result<(), RpcError> {
        let opts = CheckpointOptions {
            exit: p.exit,
            open_tcp: p.open_tcp,
            external_unix_sockets: p.external_unix_sockets,
            terminal: p.terminal,
            file_locks: p.file_locks,
            work_path: p.work_path.clone(),
            ..Default::default()
        };
        let req = api::CheckpointTaskRequest {
            id: container.to_string(),
            path: path.to_string(),
            options: Some(pack(type_url::RUNC_V1_CHECKPOINT_OPTIONS, &opts)),
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn kill(&self, p: &Proc, signal: u32, all: bool) -> Result<(), RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::KillRequest {
            id,
            exec_id,
            signal,
            all,
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn exec(&self, p: &Proc, params: &ExecParams) -> Result<(), RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::ExecProcessRequest {
            id,
            exec_id,
            terminal: params.terminal,
            stdin: params.stdin.clone(),
            stdout: params.stdout.clone(),
            stderr: params.stderr.clone(),
            spec: Some(Any {
                type_url: type_url::OCI_PROCESS.to_string(),
                value: params.spec_json.clone(),
            }),
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn resize(&self, p: &Proc, width: u32, height: u32) -> Result<(), RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::ResizePtyRequest {
            id,
            exec_id,
            width,
            height,
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn close_stdin(&self, p: &Proc) -> Result<(), RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::CloseIoRequest {
            id,
            exec_id,
            stdin: true,
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn update(&self, container: &str, resources_json: Vec<u8>) -> Result<(), RpcError> {
        let req = api::UpdateTaskRequest {
            id: container.to_string(),
            resources: Some(Any {
                type_url: type_url::OCI_LINUX_RESOURCES.to_string(),
                value: resources_json,
            }),
            annotations: Default::default(),
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }

    fn wait(&self, p: &Proc) -> Result<Exit, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self.call(context(None), &api::WaitRequest { id, exec_id })?;
        Ok(Exit {
            pid: 0,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    fn shim_pid(&self, container: &str) -> Result<u32, RpcError> {
        Ok(self.connect_raw(container)?.shim_pid)
    }

    fn connect(&self, container: &str) -> anyhow::Result<Connected> {
        let r = self.connect_raw(container)?;
        Ok(Connected {
            shim_pid: r.shim_pid,
            task_pid: r.task_pid,
            version: r.version,
        })
    }

    fn stats(&self, container: &str) -> anyhow::Result<Any> {
        let req = api::StatsRequest {
            id: container.to_string(),
        };
        let r = self.call(self.ctx(), &req)?;
        r.stats.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the shim answered Stats without metrics",
            )
            .into()
        })
    }

    fn shutdown(&self, container: &str, now: bool) -> anyhow::Result<()> {
        let req = api::ShutdownRequest {
            id: container.to_string(),
            now,
        };
        self.call(self.ctx(), &req)?;
        Ok(())
    }
}
