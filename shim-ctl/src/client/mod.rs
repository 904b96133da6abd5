//! The shim's ttrpc API as plain Rust calls: one trait, [`Api`], with the operations every command
//! uses, implemented once for the v1 shim API ([`v1`]) and once for the task v2 API ([`v2`]).
//!
//! The two APIs differ in how they name a process: v1 knows one id (the container id for the
//! init, else the exec id) and serves one container; task v2 serves one or more containers and
//! names a process by container id plus exec id (empty for the init). [`Proc`] carries both, and
//! each implementation takes what its API needs.

mod v1;
mod v2;

use crate::connect::dial;
use crate::error::{RpcError, UsageError};
use crate::output::Time;
use shim_proto::protobuf::{Any, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// ttrpc's Unimplemented: what a ttrpc server answers for a service (or method) it lacks.
pub const UNIMPLEMENTED: i32 = 12;

/// Which API a shim serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `containerd.runtime.linux.shim.v1.Shim` (runtime `io.containerd.runtime.v1.linux`).
    V1,
    /// `containerd.task.v2.Task` (runtime v2 shims: `containerd-shim-<name>-v2`).
    V2,
}

impl Protocol {
    /// `v1` or `v2`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        }
    }

    /// The ttrpc service name.
    pub fn service(self) -> &'static str {
        match self {
            Protocol::V1 => v1::SERVICE,
            Protocol::V2 => v2::SERVICE,
        }
    }
}

/// One process of a shim: a container's init (`exec: None`) or one of its execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// The container id; empty when unknown (the v1 API can do without it).
    pub container: String,
    pub exec: Option<String>,
}

impl Proc {
    pub fn init(container: &str) -> Proc {
        Proc {
            container: container.to_string(),
            exec: None,
        }
    }

    pub fn exec(container: &str, exec: &str) -> Proc {
        Proc {
            container: container.to_string(),
            exec: Some(exec.to_string()),
        }
    }

    /// The one id the v1 API knows a process by (the exec id, else the container id), and how
    /// messages name the process.
    pub fn name(&self) -> &str {
        self.exec.as_deref().unwrap_or(&self.container)
    }
}

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

/// One entry of ListPids (v1) or Pids (v2).
#[derive(Debug, Clone)]
pub struct PidEntry {
    pub pid: u32,
    pub exec_id: Option<String>,
}

/// What task v2's Connect reports.
#[derive(Debug, Clone)]
pub struct Connected {
    pub shim_pid: u32,
    pub task_pid: u32,
    pub version: String,
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

/// ExecProcessRequest fields besides the process's ids.
#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    pub terminal: bool,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub spec_json: Vec<u8>,
}

/// The operations shim-ctl's commands use, in terms of [`Proc`]. Every call but `wait` is
/// bounded by the timeout the client was made with. The operations only task v2 has (`connect`,
/// `stats`, `shutdown`) answer a v1 shim with a usage error naming the API it speaks.
pub trait Api: Send + Sync {
    fn protocol(&self) -> Protocol;
    fn state(&self, p: &Proc) -> Result<ProcessState, RpcError>;
    fn create(&self, p: &CreateParams) -> Result<u32, RpcError>;
    fn start(&self, p: &Proc) -> Result<u32, RpcError>;
    /// The container (its init) or an exec.
    fn delete(&self, p: &Proc) -> Result<Exit, RpcError>;
    fn pids(&self, container: &str) -> Result<Vec<PidEntry>, RpcError>;
    fn pause(&self, container: &str) -> Result<(), RpcError>;
    fn resume(&self, container: &str) -> Result<(), RpcError>;
    fn checkpoint(&self, container: &str, path: &str, p: &CheckpointParams)
        -> Result<(), RpcError>;
    fn kill(&self, p: &Proc, signal: u32, all: bool) -> Result<(), RpcError>;
    /// Adds the exec `p` (whose `exec` is set) to its container.
    fn exec(&self, p: &Proc, params: &ExecParams) -> Result<(), RpcError>;
    fn resize(&self, p: &Proc, width: u32, height: u32) -> Result<(), RpcError>;
    fn close_stdin(&self, p: &Proc) -> Result<(), RpcError>;
    fn update(&self, container: &str, resources_json: Vec<u8>) -> Result<(), RpcError>;
    /// Blocks until the process exits: no timeout. `Exit::pid` is 0 (Wait does not tell it).
    fn wait(&self, p: &Proc) -> Result<Exit, RpcError>;
    /// The shim's own pid (v1 ShimInfo, task v2 Connect).
    fn shim_pid(&self, container: &str) -> Result<u32, RpcError>;

    fn connect(&self, _container: &str) -> anyhow::Result<Connected> {
        Err(self.unsupported("connect"))
    }
    /// The container's cgroup metrics, as the shim packs them.
    fn stats(&self, _container: &str) -> anyhow::Result<Any> {
        Err(self.unsupported("stats"))
    }
    fn shutdown(&self, _container: &str, _now: bool) -> anyhow::Result<()> {
        Err(self.unsupported("shutdown"))
    }

    /// The usage error for a command this API has no RPC for.
    fn unsupported(&self, command: &str) -> anyhow::Error {
        UsageError(format!(
            "{command} needs a task v2 shim; this one serves the {} shim API ({})",
            self.protocol().name(),
            self.protocol().service()
        ))
        .into()
    }
}

/// A connection to one shim, speaking its API. Cheap to clone (one shared ttrpc connection).
#[derive(Clone)]
pub struct Shim(Arc<dyn Api>);

impl std::ops::Deref for Shim {
    type Target = dyn Api;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Shim {
    /// Dials `address`; `protocol` says which API to speak, `None` asks the shim ([`probe`]).
    pub fn connect(
        address: &str,
        protocol: Option<Protocol>,
        timeout: Option<Duration>,
    ) -> Result<Shim, RpcError> {
        let client = dial(address)
            .map_err(|why| RpcError::transport(format!("cannot connect to {address}: {why}")))?;
        let protocol = match protocol {
            Some(p) => p,
            None => probe(&client, timeout)?,
        };
        Ok(Shim::from_client(client, protocol, timeout))
    }

    pub fn from_client(
        client: ttrpc::Client,
        protocol: Protocol,
        timeout: Option<Duration>,
    ) -> Shim {
        match protocol {
            Protocol::V1 => Shim(Arc::new(v1::Client::new(client, timeout))),
            Protocol::V2 => Shim(Arc::new(v2::Client::new(client, timeout))),
        }
    }
}

/// Which API the shim on `client` serves: the task API when it answers Connect of
/// `containerd.task.v2.Task` (or, lacking that, of `containerd.task.v3.Task`: containerd 2.x's Go
/// shims) with anything but "no such service" (Unimplemented naming the service, as Go's and our
/// ttrpc servers word it), v1 otherwise.
pub fn probe(client: &ttrpc::Client, timeout: Option<Duration>) -> Result<Protocol, RpcError> {
    match v2::Client::new(client.clone(), timeout).connect_raw("") {
        Ok(_) => Ok(Protocol::V2),
        Err(e) if is_missing_service(&e, v2::SERVICE) => Ok(Protocol::V1),
        Err(RpcError {
            code: None,
            message,
        }) => Err(RpcError::transport(format!(
            "asking the shim which API it serves ({}/Connect): {message}",
            v2::SERVICE
        ))),
        // Any other answer comes from a Task service that is there.
        Err(_) => Ok(Protocol::V2),
    }
}

/// True for the Unimplemented that a ttrpc server gives for a service it does not serve (Go:
/// `service containerd.task.v2.Task`), as opposed to a method it lacks (`method Connect`).
pub fn is_missing_service(e: &RpcError, service: &str) -> bool {
    e.code == Some(UNIMPLEMENTED) && e.message.contains(&format!("service {service}"))
}

/// A ttrpc context bounded by `timeout` (none when `None`).
fn context(timeout: Option<Duration>) -> ttrpc::context::Context {
    let nanos = timeout.map_or(0, |t| i64::try_from(t.as_nanos()).unwrap_or(i64::MAX));
    ttrpc::context::with_timeout(nanos)
}

fn time(ts: Option<Timestamp>) -> Option<Time> {
    ts.and_then(|t| Time::known(t.seconds, t.nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_named_by_its_exec_id_else_its_container() {
        assert_eq!(Proc::init("web").name(), "web");
        assert_eq!(Proc::exec("web", "dbg").name(), "dbg");
        assert_eq!(Proc::exec("", "dbg").name(), "dbg");
    }

    #[test]
    fn only_a_missing_service_means_the_api_is_not_there() {
        let svc = "containerd.task.v2.Task";
        let go = RpcError::status(12, "service containerd.task.v2.Task");
        assert!(is_missing_service(&go, svc));
        let method = RpcError::status(12, "method Connect");
        assert!(!is_missing_service(&method, svc));
        let other = RpcError::status(5, "service containerd.task.v2.Task");
        assert!(!is_missing_service(&other, svc));
    }
}
