//! Cgroup: the cgroup of a container's init process, v1 or v2 as the host decides, and its stats.

use super::membership::Membership;
use super::v1::{self, CgroupV1};
use super::v2::{self, CgroupV2};
use super::{CgroupError, Host, Mode};

/// A process's cgroup, found once (at Create or Start) and kept for Stats and the OOM watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    V1(CgroupV1),
    V2(CgroupV2),
}

/// One Stats answer: `V1` maps to `io.containerd.cgroups.v1.Metrics`, `V2` to
/// `io.containerd.cgroups.v2.Metrics`.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    V1(v1::Metrics),
    V2(v2::Metrics),
}

impl Cgroup {
    /// The cgroup of `pid` per `<proc>/<pid>/cgroup`: its `0::` line on a unified host, else
    /// its v1 controllers under their mountinfo mount points.
    pub fn for_pid(host: &Host, pid: i32) -> Result<Cgroup, CgroupError> {
        let mode = host.mode()?;
        let membership = Membership::of_pid(&host.proc, pid)?;
        match mode {
            Mode::Unified => {
                let group = membership.unified.ok_or_else(|| CgroupError::NotFound {
                    pid,
                    reason: "no 0:: line in its cgroup file".into(),
                })?;
                CgroupV2::find(host, pid, &group).map(Cgroup::V2)
            }
            Mode::Legacy => CgroupV1::find(host, pid, &membership).map(Cgroup::V1),
        }
    }

    /// Every statistic containerd's cgroups library would send for this cgroup.
    pub fn stats(&self) -> Result<Metrics, CgroupError> {
        match self {
            Cgroup::V1(cg) => cg.stats().map(Metrics::V1),
            Cgroup::V2(cg) => cg.stats().map(Metrics::V2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    const MIXED: &str = "4:memory:/ctr\n0::/ctr2\n";

    fn host(dir: &FakeDir, mode: Mode) -> Host {
        let host = dir.host(mode);
        let root = host.cgroup_root.display().to_string();
        dir.write(
            "proc/self/mountinfo",
            &format!("35 31 0:32 / {root}/memory rw - cgroup cgroup rw,memory\n"),
        );
        dir.write("proc/9/cgroup", MIXED);
        dir.mkdir("sys/fs/cgroup/memory/ctr");
        host
    }

    #[test]
    fn the_mode_decides_which_lines_count() {
        let dir = FakeDir::new();
        let v2 = Cgroup::for_pid(&host(&dir, Mode::Unified), 9).ok();
        assert!(matches!(v2, Some(Cgroup::V2(ref c)) if c.dir().ends_with("sys/fs/cgroup/ctr2")));
        let v1 = Cgroup::for_pid(&host(&dir, Mode::Legacy), 9).ok();
        assert!(
            matches!(v1, Some(Cgroup::V1(ref c)) if c.dir("memory").is_some_and(|d| d.ends_with("memory/ctr")))
        );
    }

    #[test]
    fn a_unified_host_without_a_zero_line_or_a_gone_pid_is_not_found() {
        let dir = FakeDir::new();
        let host = host(&dir, Mode::Unified);
        dir.write("proc/10/cgroup", "4:memory:/ctr\n");
        assert!(matches!(
            Cgroup::for_pid(&host, 10),
            Err(CgroupError::NotFound { pid: 10, .. })
        ));
        assert!(matches!(
            Cgroup::for_pid(&host, 11),
            Err(CgroupError::NotFound { pid: 11, .. })
        ));
    }

    #[test]
    fn stats_are_tagged_with_the_version() {
        let dir = FakeDir::new();
        let v1 = Cgroup::for_pid(&host(&dir, Mode::Legacy), 9).and_then(|c| c.stats());
        assert!(matches!(v1, Ok(Metrics::V1(_))));
        let v2 = Cgroup::for_pid(&host(&dir, Mode::Unified), 9).and_then(|c| c.stats());
        assert!(matches!(v2, Ok(Metrics::V2(_))));
    }
}
