//! The plain data of shim-core's API: requests, process states, exits, pids.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::io::IoSpec;
use crate::mount::Mount;

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
    /// runc's state root for this container; None: the shim's (`Config::runtime_root`).
    pub runtime_root: Option<PathBuf>,
    /// Pass --systemd-cgroup to runc (also when the shim's config says so).
    pub systemd_cgroup: bool,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidInfo {
    pub pid: u32,
    /// The process id owning this pid: the container id for the init.
    pub exec_id: Option<String>,
}
