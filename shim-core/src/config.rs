//! What the shim was started with: namespace, directories, runc flags.

use std::path::PathBuf;
use std::time::Duration;

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
}
