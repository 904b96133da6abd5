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

    /// How many processes the kernel OOM-killed in this cgroup so far: the `oom_kill` line of
    /// `memory.oom_control` (v1) or `memory.events` (v2); 0 when the file or line is missing.
    pub fn oom_kills(&self) -> u64 {
        let file = match self {
            Cgroup::V1(cg) => cg.dir("memory").map(|d| d.join("memory.oom_control")),
            Cgroup::V2(cg) => Some(cg.dir().join("memory.events")),
        };
        let text = file
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
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

    #[test]
    fn oom_kills_are_read_from_oom_control_on_v1_and_memory_events_on_v2() {
        let dir = FakeDir::new();
        let h = host(&dir, Mode::Legacy);
        let cg = Cgroup::for_pid(&h, 9).unwrap();
        assert_eq!(cg.oom_kills(), 0, "no memory.oom_control yet");
        dir.write(
            "sys/fs/cgroup/memory/ctr/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        );
        assert_eq!(cg.oom_kills(), 3);

        let dir = FakeDir::new();
        let h = host(&dir, Mode::Unified);
        dir.mkdir("sys/fs/cgroup/ctr2");
        dir.write(
            "sys/fs/cgroup/ctr2/memory.events",
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n",
        );
        let cg = Cgroup::for_pid(&h, 9).unwrap();
        assert_eq!(cg.oom_kills(), 2);
    }

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
