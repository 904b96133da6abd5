//! [`Api`] over the v1 shim API (`containerd.runtime.linux.shim.v1.Shim`): one container per shim,
//! one id per process.

use super::{
    context, time, Api, CheckpointParams, CreateParams, ExecParams, Exit, PidEntry, Proc,
    ProcessState, Protocol,
};
use crate::error::RpcError;
use shim_proto::any::{pack, unpack};
use shim_proto::protobuf::{Any, Empty};
use shim_proto::runc::{CheckpointOptions, ProcessDetails};
use shim_proto::shim as api;
use shim_proto::type_url;
use std::time::Duration;

pub const SERVICE: &str = "containerd.runtime.linux.shim.v1.Shim";

pub struct Client {
    client: api::ShimClient,
    timeout: Option<Duration>,
}

impl Client {
    pub fn new(client: ttrpc::Client, timeout: Option<Duration>) -> Client {
        Client {
            client: api::ShimClient::new(client),
            timeout,
        }
    }

    fn ctx(&self) -> ttrpc::context::Context {
        context(self.timeout)
    }
}

impl Api for Client {
    fn protocol(&self) -> Protocol {
        Protocol::V1
    }

    fn state(&self, p: &Proc) -> Result<ProcessState, RpcError> {
        let r = self.client.state(
            self.ctx(),
            &api::StateRequest {
                id: p.name().to_string(),
            },
        )?;
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
        let req = api::CreateTaskRequest {
            id: p.id.clone(),
            bundle: p.bundle.clone(),
            runtime: p.runtime.clone(),
            terminal: p.terminal,
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            ..Default::default()
        };
        Ok(self.client.create(self.ctx(), &req)?.pid)
    }

    fn start(&self, p: &Proc) -> Result<u32, RpcError> {
        let req = api::StartRequest {
            id: p.name().to_string(),
        };
        Ok(self.client.start(self.ctx(), &req)?.pid)
    }

    fn delete(&self, p: &Proc) -> Result<Exit, RpcError> {
        let r = match &p.exec {
            None => self.client.delete(self.ctx(), &Empty {})?,
            Some(id) => self
                .client
                .delete_process(self.ctx(), &api::DeleteProcessRequest { id: id.clone() })?,
        };
        Ok(Exit {
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    fn pids(&self, container: &str) -> Result<Vec<PidEntry>, RpcError> {
        let req = api::ListPidsRequest {
            id: container.to_string(),
        };
        let r = self.client.list_pids(self.ctx(), &req)?;
        Ok(r.processes
            .into_iter()
            .map(|p| PidEntry {
                pid: p.pid,
                exec_id: p
                    .info
                    .and_then(|a| unpack::<ProcessDetails>(&a, type_url::PROCESS_DETAILS).ok())
                    .map(|d| d.exec_id),
            })
            .collect())
    }

    fn pause(&self, _container: &str) -> Result<(), RpcError> {
        self.client.pause(self.ctx(), &Empty {})?;
        Ok(())
    }

    fn resume(&self, _container: &str) -> Result<(), RpcError> {
        self.client.resume(self.ctx(), &Empty {})?;
        Ok(())
    }

    fn checkpoint(
        &self,
        _container: &str,
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
            path: path.to_string(),
            options: Some(pack(type_url::CHECKPOINT_OPTIONS, &opts)),
        };
        self.client.checkpoint(self.ctx(), &req)?;
        Ok(())
    }

    fn kill(&self, p: &Proc, signal: u32, all: bool) -> Result<(), RpcError> {
        let req = api::KillRequest {
            id: p.name().to_string(),
            signal,
            all,
        };
        self.client.kill(self.ctx(), &req)?;
        Ok(())
    }

    fn exec(&self, p: &Proc, params: &ExecParams) -> Result<(), RpcError> {
        let req = api::ExecProcessRequest {
            id: p.name().to_string(),
            terminal: params.terminal,
            stdin: params.stdin.clone(),
            stdout: params.stdout.clone(),
            stderr: params.stderr.clone(),
            spec: Some(Any {
                type_url: type_url::OCI_PROCESS.to_string(),
                value: params.spec_json.clone(),
            }),
        };
        self.client.exec(self.ctx(), &req)?;
        Ok(())
    }

    fn resize(&self, p: &Proc, width: u32, height: u32) -> Result<(), RpcError> {
        let req = api::ResizePtyRequest {
            id: p.name().to_string(),
            width,
            height,
        };
        self.client.resize_pty(self.ctx(), &req)?;
        Ok(())
    }

    fn close_stdin(&self, p: &Proc) -> Result<(), RpcError> {
        let req = api::CloseIoRequest {
            id: p.name().to_string(),
            stdin: true,
        };
        self.client.close_io(self.ctx(), &req)?;
        Ok(())
    }

    fn update(&self, _container: &str, resources_json: Vec<u8>) -> Result<(), RpcError> {
        let any = Any {
            type_url: type_url::OCI_LINUX_RESOURCES.to_string(),
            value: resources_json,
        };
        let req = api::UpdateTaskRequest {
            resources: Some(any),
        };
        self.client.update(self.ctx(), &req)?;
        Ok(())
    }

    fn wait(&self, p: &Proc) -> Result<Exit, RpcError> {
        let req = api::WaitRequest {
            id: p.name().to_string(),
        };
        let r = self.client.wait(context(None), &req)?;
        Ok(Exit {
            pid: 0,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    fn shim_pid(&self, _container: &str) -> Result<u32, RpcError> {
        Ok(self.client.shim_info(self.ctx(), &Empty {})?.shim_pid)
    }
}
