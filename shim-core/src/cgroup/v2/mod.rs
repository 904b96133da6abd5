//! cgroup v2: a process's unified cgroup directory, and the Metrics containerd's cgroup2 reads there.

mod cpu;
mod hugetlb;
mod io;
pub(crate) mod memory;
mod pids;
mod psi;

use std::path::{Path, PathBuf};

pub use cpu::CpuStat;
pub use hugetlb::HugetlbStat;
pub use io::{IoEntry, IoStat};
pub use memory::{MemoryEvents, MemoryStat};
pub use pids::PidsStat;
pub use psi::{PsiData, PsiStats};

use super::hugepages::page_sizes;
use super::{CgroupError, Host};

/// `io.containerd.cgroups.v2.Metrics` minus rdma and network (cgroup2 fills rdma from
/// rdma.current/rdma.max; no front has asked for it yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub pids: PidsStat,
    pub cpu: CpuStat,
    pub memory: MemoryStat,
    /// `None` when memory.events is missing or empty.
    pub memory_events: Option<MemoryEvents>,
    pub io: IoStat,
    pub hugetlb: Vec<HugetlbStat>,
}

/// A process's v2 cgroup: `<cgroup_root><path of its 0:: line>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupV2 {
    dir: PathBuf,
    page_sizes: Vec<String>,
}

impl CgroupV2 {
    /// cgroup2's `Load(PidGroupPath(pid))`: the group path must be absolute and clean.
    pub(crate) fn find(host: &Host, pid: i32, group: &str) -> Result<CgroupV2, CgroupError> {
        let clean = group.starts_with('/')
            && !group[1..].split('/').any(|c| matches!(c, "." | ".."))
            && !group.contains("//")
            && (group == "/" || !group.ends_with('/'));
        if !clean {
            return Err(CgroupError::NotFound {
                pid,
                reason: format!("invalid group path {group:?}"),
            });
        }
        let rel = group.trim_start_matches('/');
        let dir = if rel.is_empty() {
            host.cgroup_root.clone()
        } else {
            host.cgroup_root.join(rel)
        };
        Ok(CgroupV2 {
            dir,
            page_sizes: page_sizes(&host.hugepages),
        })
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// cgroup2's `Stat()`: files that are missing read as zero; only a malformed cpu.stat,
    /// memory.stat or memory.events (or one that exists but cannot be read) is an error.
    pub fn stats(&self) -> Result<Metrics, CgroupError> {
        Ok(Metrics {
            pids: pids::read(&self.dir),
            cpu: cpu::read(&self.dir)?,
            memory: memory::read_stat(&self.dir)?,
            memory_events: memory::read_events(&self.dir)?,
            io: io::read(&self.dir),
            hugetlb: hugetlb::read(&self.dir, &self.page_sizes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;
    use crate::cgroup::Mode;

    #[test]
    fn the_group_path_must_be_absolute_and_clean() {
        let dir = FakeDir::new();
        let host = dir.host(Mode::Unified);
        for bad in ["rel", "/a/../b", "/a//b", "/a/", "/./a"] {
            assert!(CgroupV2::find(&host, 1, bad).is_err(), "{bad}");
        }
        let cg = CgroupV2::find(&host, 1, "/a/b").ok();
        assert_eq!(cg.map(|c| c.dir), Some(host.cgroup_root.join("a/b")));
        let cg = CgroupV2::find(&host, 1, "/").ok();
        assert_eq!(cg.map(|c| c.dir), Some(host.cgroup_root.clone()));
    }

    #[test]
    fn stats_gather_every_file() {
        let dir = FakeDir::new();
        let host = dir.host(Mode::Unified);
        dir.mkdir("hugepages/hugepages-2048kB");
        let at = "sys/fs/cgroup/ctr";
        memory::tests::fill(&dir, at);
        dir.write(&format!("{at}/cpu.stat"), cpu::tests::CPU_STAT);
        dir.write(&format!("{at}/io.stat"), io::tests::IO_STAT);
        dir.write(&format!("{at}/pids.current"), "3\n");
        dir.write(&format!("{at}/pids.max"), "100\n");
        dir.write(&format!("{at}/hugetlb.2MB.current"), "2097152\n");
        let m = CgroupV2::find(&host, 1, "/ctr")
            .and_then(|c| c.stats())
            .ok();
        let m = m.as_ref();
        assert_eq!(
            m.map(|m| m.pids),
            Some(PidsStat {
                current: 3,
                limit: 100
            })
        );
        assert_eq!(m.map(|m| m.cpu.usage_usec), Some(1));
        assert_eq!(m.map(|m| m.memory.usage), Some(1000));
        assert_eq!(m.map(|m| m.memory.usage_limit), Some(u64::MAX));
        assert_eq!(m.and_then(|m| m.memory_events).map(|e| e.oom_kill), Some(5));
        assert_eq!(m.map(|m| m.io.usage.len()), Some(2));
        assert_eq!(m.map(|m| m.hugetlb.len()), Some(1));
        assert_eq!(m.map(|m| m.hugetlb[0].current), Some(2_097_152));
    }

    #[test]
    fn an_empty_directory_gives_zeroes_not_an_error() {
        let dir = FakeDir::new();
        let host = dir.host(Mode::Unified);
        dir.mkdir("sys/fs/cgroup/ctr");
        let m = CgroupV2::find(&host, 1, "/ctr")
            .and_then(|c| c.stats())
            .ok();
        assert_eq!(m, Some(Metrics::default()));
    }
}
