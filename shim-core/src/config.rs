//! What the shim was started with: namespace, directories, runc flags.

use std::path::PathBuf;
use std::time::Duration;

/// Before an exit is recorded, its output gets this long to reach the client: ctr closes its
/// fifos as soon as Wait returns, and would lose the last line still in flight.
pub const DEFAULT_SETTLE_LIMIT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Config {
    /// containerd namespace (from `-namespace`): runc's root is `<runtime_root>/<namespace>`.
    pub namespace: String,
    /// containerd's work dir for this task: criu work files live here.
    pub workdir: PathBuf,
    /// Default `/run/containerd/runc`.
    pub runtime_root: PathBuf,
    pub criu: Option<PathBuf>,
    pub systemd_cgroup: bool,
    /// Bound on every runc call.
    pub runc_timeout: Duration,
    /// How long an exit waits for its process's output to drain before it is recorded (a
    /// daemon left in the container may hold the output open for ever). Normally
    /// [`DEFAULT_SETTLE_LIMIT`].
    pub settle_limit: Duration,
    /// Report each container's OOMs as `Event::Oom` (task v2: the shim watches its cgroups).
    pub watch_oom: bool,
}
