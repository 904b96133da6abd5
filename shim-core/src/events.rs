//! Events shim-core emits (only TaskExit under runtime v1) and the sink that carries them away.

use std::time::SystemTime;

/// Receives events in the order they must be published. Must not block for long.
pub trait EventSink: Send + Sync {
    fn task_exit(&self, e: TaskExit);
    /// The task was deleted: events not delivered by now never will be (nobody waits for them).
    fn task_deleted(&self) {}
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
