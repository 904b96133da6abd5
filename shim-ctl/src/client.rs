//! The shim's ttrpc service as plain Rust calls: proto messages in, small domain structs out.

use crate::connect::dial;
use crate::error::RpcError;
use crate::output::Time;
use shim_proto::any::{pack, unpack};
use shim_proto::protobuf::{Any, Empty, Timestamp};
use shim_proto::runc::{CheckpointOptions, ProcessDetails};
use shim_proto::shim as api;
use shim_proto::type_url;
use std::time::Duration;

/// One process as State reports it.
#[derive(Debug, Clone)]
pub struct ProcessState {
    pub id: String,
    pub bundle: String,
    pub pid: u32,
    pub status: i32,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub exit_status: u32,
    pub exited_at: Option<Time>,
}

/// What Delete, DeleteProcess and Wait report about an exit.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: Option<Time>,
}

/// One entry of ListPids.
#[derive(Debug, Clone)]
pub struct PidEntry {
    pub pid: u32,
    pub exec_id: Option<String>,
}

/// CreateTaskRequest fields we let the operator set.
#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    pub id: String,
    pub bundle: String,
    pub runtime: String,
    pub terminal: bool,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
}

/// CheckpointOptions fields we let the operator set.
#[derive(Debug, Clone, Default)]
pub struct CheckpointParams {
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub work_path: String,
}

/// ExecProcessRequest fields.
#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    pub id: String,
    pub terminal: bool,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub spec_json: Vec<u8>,
}

/// A connection to one shim. Cheap to clone (one shared ttrpc connection).
#[derive(Clone)]
pub struct Shim {
    client: api::ShimClient,
    timeout: Option<Duration>,
}

fn time(ts: Option<Timestamp>) -> Option<Time> {
    ts.and_then(|t| Time::known(t.seconds, t.nanos))
}

impl Shim {
    /// Dials `address`. Every call but Wait is bounded by `timeout` when given.
    pub fn connect(address: &str, timeout: Option<Duration>) -> Result<Shim, RpcError> {
        let client = dial(address)
            .map_err(|why| RpcError::transport(format!("cannot connect to {address}: {why}")))?;
        Ok(Shim::from_client(client, timeout))
    }

    pub fn from_client(client: ttrpc::Client, timeout: Option<Duration>) -> Shim {
        Shim {
            client: api::ShimClient::new(client),
            timeout,
        }
    }

    fn ctx(&self) -> ttrpc::context::Context {
        let nanos = self
            .timeout
            .map_or(0, |t| i64::try_from(t.as_nanos()).unwrap_or(i64::MAX));
        ttrpc::context::with_timeout(nanos)
    }

    pub fn state(&self, id: &str) -> Result<ProcessState, RpcError> {
        let r = self
            .client
            .state(self.ctx(), &api::StateRequest { id: id.to_string() })?;
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

    pub fn create(&self, p: &CreateParams) -> Result<u32, RpcError> {
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

    pub fn start(&self, id: &str) -> Result<u32, RpcError> {
        Ok(self
            .client
            .start(self.ctx(), &api::StartRequest { id: id.to_string() })?
            .pid)
    }

    pub fn delete(&self) -> Result<Exit, RpcError> {
        let r = self.client.delete(self.ctx(), &Empty {})?;
        Ok(Exit {
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    pub fn delete_process(&self, id: &str) -> Result<Exit, RpcError> {
        let r = self.client.delete_process(
            self.ctx(),
            &api::DeleteProcessRequest { id: id.to_string() },
        )?;
        Ok(Exit {
            pid: r.pid,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }

    pub fn pids(&self, id: &str) -> Result<Vec<PidEntry>, RpcError> {
        let r = self
            .client
            .list_pids(self.ctx(), &api::ListPidsRequest { id: id.to_string() })?;
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

    pub fn pause(&self) -> Result<(), RpcError> {
        self.client.pause(self.ctx(), &Empty {})?;
        Ok(())
    }

    pub fn resume(&self) -> Result<(), RpcError> {
        self.client.resume(self.ctx(), &Empty {})?;
        Ok(())
    }

    pub fn checkpoint(&self, path: &str, p: &CheckpointParams) -> Result<(), RpcError> {
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

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RpcError> {
        self.client.kill(
            self.ctx(),
            &api::KillRequest {
                id: id.to_string(),
                signal,
                all,
            },
        )?;
        Ok(())
    }

    pub fn exec(&self, p: &ExecParams) -> Result<(), RpcError> {
        let req = api::ExecProcessRequest {
            id: p.id.clone(),
            terminal: p.terminal,
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            spec: Some(Any {
                type_url: type_url::OCI_PROCESS.to_string(),
                value: p.spec_json.clone(),
            }),
        };
        self.client.exec(self.ctx(), &req)?;
        Ok(())
    }

    pub fn resize(&self, id: &str, width: u32, height: u32) -> Result<(), RpcError> {
        self.client.resize_pty(
            self.ctx(),
            &api::ResizePtyRequest {
                id: id.to_string(),
                width,
                height,
            },
        )?;
        Ok(())
    }

    pub fn close_stdin(&self, id: &str) -> Result<(), RpcError> {
        self.client.close_io(
            self.ctx(),
            &api::CloseIoRequest {
                id: id.to_string(),
                stdin: true,
            },
        )?;
        Ok(())
    }

    pub fn shim_pid(&self) -> Result<u32, RpcError> {
        Ok(self.client.shim_info(self.ctx(), &Empty {})?.shim_pid)
    }

    pub fn update(&self, resources_json: Vec<u8>) -> Result<(), RpcError> {
        let any = Any {
            type_url: type_url::OCI_LINUX_RESOURCES.to_string(),
            value: resources_json,
        };
        self.client.update(
            self.ctx(),
            &api::UpdateTaskRequest {
                resources: Some(any),
            },
        )?;
        Ok(())
    }

    /// Blocks until the process exits: no timeout.
    pub fn wait(&self, id: &str) -> Result<Exit, RpcError> {
        let r = self.client.wait(
            ttrpc::context::with_timeout(0),
            &api::WaitRequest { id: id.to_string() },
        )?;
        Ok(Exit {
            pid: 0,
            exit_status: r.exit_status,
            exited_at: time(r.exited_at),
        })
    }
}
