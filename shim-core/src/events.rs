//! The events shim-core emits, in the order they must be published, and the sink that carries
//! them away. A front publishes what its protocol wants (runtime v1: only exits).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::io::IoSpec;
use crate::mount::Mount;

/// Receives events in the order they must be published. Must not block for long.
pub trait EventSink: Send + Sync {
    fn event(&self, e: Event);
}

/// Something that happened to a container or one of its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The init exists (runc create returned); `pid` 0 for a restore, which runs only at Start.
    Create {
        container_id: String,
        bundle: PathBuf,
        rootfs: Vec<Mount>,
        io: IoSpec,
        checkpoint: String,
        pid: u32,
    },
    /// The init runs; always before its exit.
    Start {
        container_id: String,
        pid: u32,
    },
    /// The init was deleted (its execs with it).
    Delete {
        container_id: String,
        pid: u32,
        exit_status: u32,
        exited_at: Option<SystemTime>,
    },
    Exit(TaskExit),
    /// The container's cgroup hit its memory limit; before the exit it caused.
    Oom {
        container_id: String,
    },
    ExecAdded {
        container_id: String,
        exec_id: String,
    },
    /// An exec runs; always before its exit.
    ExecStarted {
        container_id: String,
        exec_id: String,
        pid: u32,
    },
    Paused {
        container_id: String,
    },
    Resumed {
        container_id: String,
    },
    Checkpointed {
        container_id: String,
        checkpoint: String,
    },
}

/// A process exited; published only after the exit is recorded (State and Wait already see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    pub container_id: String,
    /// The process id: the container id for the init, the exec id otherwise.
    pub id: String,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: SystemTime,
}
