//! [`Api`] over task API v2 (`containerd.task.v2.Task`): a process is a container id plus an exec
//! id (empty for the container's init).

use super::{
    context, time, Api, CheckpointParams, Connected, CreateParams, ExecParams, Exit, PidEntry,
    Proc, ProcessState, Protocol,
};
use crate::error::RpcError;
use shim_proto::any::{pack, unpack};
use shim_proto::protobuf::Any;
use shim_proto::runc_v1_options::{CheckpointOptions, Options, ProcessDetails};
use shim_proto::task_v2 as api;
use shim_proto::type_url;
use std::time::Duration;

pub const SERVICE: &str = "containerd.task.v2.Task";
/// The runtime binary a runc shim runs when its options name none.
const DEFAULT_RUNTIME: &str = "runc";

pub struct Client {
    client: api::TaskClient,
    timeout: Option<Duration>,
}

/// `(id, exec_id)` of a process as task v2 requests carry them.
fn ids(p: &Proc) -> (String, String) {
    (p.container.clone(), p.exec.clone().unwrap_or_default())
}

impl Client {
    pub fn new(client: ttrpc::Client, timeout: Option<Duration>) -> Client {
        Client {
            client: api::TaskClient::new(client),
            timeout,
        }
    }

    fn ctx(&self) -> ttrpc::context::Context {
        context(self.timeout)
    }

    /// Connect, with the RPC's own error (for [`super::probe`]).
    pub fn connect_raw(&self, container: &str) -> Result<api::ConnectResponse, RpcError> {
        let req = api::ConnectRequest {
            id: container.to_string(),
        };
        Ok(self.client.connect(self.ctx(), &req)?)
    }
}

impl Api for Client {
    fn protocol(&self) -> Protocol {
        Protocol::V2
    }

    fn state(&self, p: &Proc) -> Result<ProcessState, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self
            .client
            .state(self.ctx(), &api::StateRequest { id, exec_id })?;
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
        Ok(self.client.create(self.ctx(), &req)?.pid)
    }

    fn start(&self, p: &Proc) -> Result<u32, RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::StartRequest { id, exec_id };
        Ok(self.client.start(self.ctx(), &req)?.pid)
    }

    fn delete(&self, p: &Proc) -> Result<Exit, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self
            .client
            .delete(self.ctx(), &api::DeleteRequest { id, exec_id })?;
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
        let r = self.client.pids(self.ctx(), &req)?;
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
        self.client.pause(self.ctx(), &req)?;
        Ok(())
    }

    fn resume(&self, container: &str) -> Result<(), RpcError> {
        let req = api::ResumeRequest {
            id: container.to_string(),
        };
        self.client.resume(self.ctx(), &req)?;
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
        self.client.checkpoint(self.ctx(), &req)?;
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
        self.client.kill(self.ctx(), &req)?;
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
        self.client.exec(self.ctx(), &req)?;
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
        self.client.resize_pty(self.ctx(), &req)?;
        Ok(())
    }

    fn close_stdin(&self, p: &Proc) -> Result<(), RpcError> {
        let (id, exec_id) = ids(p);
        let req = api::CloseIoRequest {
            id,
            exec_id,
            stdin: true,
        };
        self.client.close_io(self.ctx(), &req)?;
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
        self.client.update(self.ctx(), &req)?;
        Ok(())
    }

    fn wait(&self, p: &Proc) -> Result<Exit, RpcError> {
        let (id, exec_id) = ids(p);
        let r = self
            .client
            .wait(context(None), &api::WaitRequest { id, exec_id })?;
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
        let r = self
            .client
            .stats(self.ctx(), &req)
            .map_err(RpcError::from)?;
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
        self.client
            .shutdown(self.ctx(), &req)
            .map_err(RpcError::from)?;
        Ok(())
    }
}
