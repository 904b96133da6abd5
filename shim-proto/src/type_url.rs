//! Any type URLs as Go's `typeurl` writes them: bare proto full names, no `type.googleapis.com/`.

/// Prefix some encoders put before a proto full name; [`crate::any::unpack`] accepts it.
pub const GOOGLE_PREFIX: &str = "type.googleapis.com/";

pub const TASK_CREATE: &str = "containerd.events.TaskCreate";
pub const TASK_START: &str = "containerd.events.TaskStart";
pub const TASK_DELETE: &str = "containerd.events.TaskDelete";
pub const TASK_IO: &str = "containerd.events.TaskIO";
pub const TASK_EXIT: &str = "containerd.events.TaskExit";
pub const TASK_OOM: &str = "containerd.events.TaskOOM";
pub const TASK_EXEC_ADDED: &str = "containerd.events.TaskExecAdded";
pub const TASK_EXEC_STARTED: &str = "containerd.events.TaskExecStarted";
pub const TASK_PAUSED: &str = "containerd.events.TaskPaused";
pub const TASK_RESUMED: &str = "containerd.events.TaskResumed";
pub const TASK_CHECKPOINTED: &str = "containerd.events.TaskCheckpointed";

// Runtime v1 (`io.containerd.runtime.v1.linux`, package `containerd.linux.runc`).

/// `CreateTaskRequest.options`.
pub const CREATE_OPTIONS: &str = "containerd.linux.runc.CreateOptions";
/// `CheckpointTaskRequest.options`.
pub const CHECKPOINT_OPTIONS: &str = "containerd.linux.runc.CheckpointOptions";
/// A container's `Runtime.Options` as containerd stores them.
pub const RUNC_OPTIONS: &str = "containerd.linux.runc.RuncOptions";
/// `ProcessInfo.info` in `ListPidsResponse`.
pub const PROCESS_DETAILS: &str = "containerd.linux.runc.ProcessDetails";

// Runtime v2 (`io.containerd.runc.v2`, package `containerd.runc.v1`).

/// `CreateTaskRequest.options`: the runtime's options as containerd sends them.
pub const RUNC_V1_OPTIONS: &str = "containerd.runc.v1.Options";
/// `CheckpointTaskRequest.options`.
pub const RUNC_V1_CHECKPOINT_OPTIONS: &str = "containerd.runc.v1.CheckpointOptions";
/// `ProcessInfo.info` in `PidsResponse`.
pub const RUNC_V1_PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";

// cgroup metrics in `StatsResponse.stats` (task API v2/v3), by the host's cgroup version.

/// cgroup v1 hosts: `io.containerd.cgroups.v1.Metrics`.
pub const CGROUPS_V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
/// cgroup v2 hosts: `io.containerd.cgroups.v2.Metrics`.
pub const CGROUPS_V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

// OCI runtime-spec types, JSON-encoded (both runtimes).

/// `ExecProcessRequest.spec` (JSON value).
pub const OCI_PROCESS: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// `UpdateTaskRequest.resources` (JSON value).
pub const OCI_LINUX_RESOURCES: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Event topics, as the Go shim's `getTopic` maps event types.
pub mod topic {
    pub const TASK_CREATE: &str = "/tasks/create";
    pub const TASK_START: &str = "/tasks/start";
    pub const TASK_DELETE: &str = "/tasks/delete";
    pub const TASK_EXIT: &str = "/tasks/exit";
    pub const TASK_OOM: &str = "/tasks/oom";
    pub const TASK_EXEC_ADDED: &str = "/tasks/exec-added";
    pub const TASK_EXEC_STARTED: &str = "/tasks/exec-started";
    pub const TASK_PAUSED: &str = "/tasks/paused";
    pub const TASK_RESUMED: &str = "/tasks/resumed";
    pub const TASK_CHECKPOINTED: &str = "/tasks/checkpointed";
    /// Topic Go uses for an event type it does not know.
    pub const UNKNOWN: &str = "/tasks/?";
}
