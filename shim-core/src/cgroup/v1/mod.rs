//! cgroup v1: a process's per-controller directories, and the Metrics containerd's cgroup1 reads there.

mod blkio;
mod cpu;
mod hugetlb;
mod memory;
mod pids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use blkio::{BlkioEntry, BlkioStat};
pub use cpu::{CpuStat, CpuUsage, Throttle};
pub use hugetlb::HugetlbStat;
pub use memory::{MemoryEntry, MemoryOomControl, MemoryStat};
pub use pids::PidsStat;

use super::hugepages::page_sizes;
use super::membership::Membership;
use super::mountinfo::cgroup_mounts;
use super::{CgroupError, Host};

/// `io.containerd.cgroups.v1.Metrics`, minus rdma, network and cgroup_stats (which cgroup1's
/// Stat does not fill for a runc container either, rdma aside). `None` / empty: the controller
/// is not there, or its first file was missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub hugetlb: Vec<HugetlbStat>,
    pub pids: Option<PidsStat>,
    /// Always sent, as cgroup1 does: zeroes when cpu and cpuacct gave nothing.
    pub cpu: CpuStat,
    pub memory: Option<MemoryStat>,
    pub blkio: Option<BlkioStat>,
    pub memory_oom_control: Option<MemoryOomControl>,
}

/// A process's v1 cgroup: the directory of each controller it is in whose hierarchy is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupV1 {
    dirs: BTreeMap<String, PathBuf>,
    proc: PathBuf,
    page_sizes: Vec<String>,
}

/// The controllers whose statistics containerd's cgroup1 reads.
const STAT_CONTROLLERS: [&str; 6] = ["pids", "cpu", "cpuacct", "memory", "blkio", "hugetlb"];

impl CgroupV1 {
    /// Every controller of `membership` mounted per `<proc>/self/mountinfo` (the first mount
    /// carrying it) and whose directory exists, as cgroup1's `Load(PidPath(pid))` keeps them.
    pub(crate) fn find(
        host: &Host,
        pid: i32,
        membership: &Membership,
    ) -> Result<CgroupV1, CgroupError> {
        let mounts = cgroup_mounts(&host.proc)?;
        let mut dirs = BTreeMap::new();
        for (name, path) in &membership.controllers {
            let Some(mount) = mounts.iter().find(|m| m.options.iter().any(|o| o == name)) else {
                continue;
            };
            let dir = mount.dir_of(path);
            if dir.symlink_metadata().is_ok() {
                dirs.insert(name.clone(), dir);
            }
        }
        if dirs.is_empty() {
            return Err(CgroupError::NotFound {
                pid,
                reason: "no mounted v1 controller has its cgroup".into(),
            });
        }
        Ok(CgroupV1 {
            dirs,
            proc: host.proc.clone(),
            page_sizes: page_sizes(&host.hugepages),
        })
    }

    /// The directory of `controller` (`memory`, `cpuacct`, `name=systemd`...), if it is there.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    /// Every controller's statistics, as cgroup1's `Stat(IgnoreNotExist)`: a controller whose
    /// file is missing (cgroup gone, kernel without it) keeps what it read before; any other
    /// failure is the answer.
    pub fn stats(&self) -> Result<Metrics, CgroupError> {
        let mut m = Metrics::default();
        for name in STAT_CONTROLLERS {
            let Some(dir) = self.dir(name) else {
                continue;
            };
            let read = match name {
                "pids" => pids::read(dir, &mut m),
                "cpu" => cpu::read_cpu(dir, &mut m),
                "cpuacct" => cpu::read_cpuacct(dir, &mut m),
                "memory" => memory::read(dir, &mut m),
                "blkio" => blkio::read_blkio(dir, &self.proc, &mut m),
                _ => hugetlb::read(dir, &self.page_sizes, &mut m),
            };
            match read {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;
    use crate::cgroup::Mode;

    /// A hybrid host like this one: cpu and cpuacct co-mounted, memory under a nested root,
    /// pids, blkio and hugetlb on their own; the process is in `/ctr` everywhere.
    fn host(dir: &FakeDir) -> Host {
        let host = dir.host(Mode::Legacy);
        let root = host.cgroup_root.display().to_string();
        dir.write(
            "proc/self/mountinfo",
            &format!(
                "31 23 0:28 / {root} rw - tmpfs tmpfs rw\n\
                 32 31 0:29 / {root}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                 35 31 0:32 /outer {root}/memory rw - cgroup cgroup rw,memory\n\
                 36 31 0:33 / {root}/pids rw - cgroup cgroup rw,pids\n\
                 37 31 0:34 / {root}/blkio rw - cgroup cgroup rw,blkio\n\
                 38 31 0:35 / {root}/hugetlb rw - cgroup cgroup rw,hugetlb\n\
                 39 31 0:36 / {root}/systemd rw - cgroup cgroup rw,name=systemd\n\
                 41 31 0:38 / {root}/unified rw - cgroup2 cgroup2 rw\n"
            ),
        );
        dir.write(
            "proc/42/cgroup",
            "9:name=systemd:/ctr\n8:hugetlb:/ctr\n7:blkio:/ctr\n6:pids:/ctr\n\
             5:freezer:/ctr\n4:memory:/outer/ctr\n2:cpu,cpuacct:/ctr\n0::/\n",
        );
        dir.write("proc/partitions", blkio::tests::PARTITIONS);
        dir.mkdir("hugepages/hugepages-2048kB");
        dir.mkdir("hugepages/hugepages-1048576kB");
        host
    }

    fn fill_all(dir: &FakeDir) {
        let root = "sys/fs/cgroup";
        memory::tests::fill(dir, &format!("{root}/memory/ctr"));
        cpu::tests::fill_cpu(dir, &format!("{root}/cpu,cpuacct/ctr"));
        cpu::tests::fill_cpuacct(dir, &format!("{root}/cpu,cpuacct/ctr"));
        dir.write(&format!("{root}/pids/ctr/pids.current"), "2\n");
        dir.write(&format!("{root}/pids/ctr/pids.max"), "max\n");
        blkio::tests::fill_throttle(dir, &format!("{root}/blkio/ctr"));
        hugetlb::tests::fill(dir, &format!("{root}/hugetlb/ctr"));
        dir.mkdir(&format!("{root}/systemd/ctr"));
    }

    fn find(host: &Host) -> Result<CgroupV1, CgroupError> {
        let membership = Membership::of_pid(&host.proc, 42)?;
        CgroupV1::find(host, 42, &membership)
    }

    #[test]
    fn controllers_are_found_through_mountinfo_and_skipped_when_unmounted_or_gone() {
        let dir = FakeDir::new();
        let host = host(&dir);
        fill_all(&dir);
        let cg = find(&host).ok();
        let cg = cg.as_ref();
        let root = &host.cgroup_root;
        let dir_of = |c: &str| cg.and_then(|cg| cg.dir(c)).map(Path::to_path_buf);
        assert_eq!(dir_of("memory"), Some(root.join("memory/ctr")));
        assert_eq!(dir_of("cpu"), Some(root.join("cpu,cpuacct/ctr")));
        assert_eq!(dir_of("cpuacct"), Some(root.join("cpu,cpuacct/ctr")));
        assert_eq!(dir_of("name=systemd"), Some(root.join("systemd/ctr")));
        // Not mounted at all:
        assert_eq!(dir_of("freezer"), None);
        assert_eq!(
            cg.map(|cg| cg.page_sizes.clone()),
            Some(vec!["1GB".into(), "2MB".into()])
        );

        std::fs::remove_dir_all(root.join("pids/ctr")).ok();
        let cg = find(&host).ok();
        assert_eq!(cg.as_ref().and_then(|cg| cg.dir("pids")), None);
    }

    #[test]
    fn no_controller_left_is_not_found() {
        let dir = FakeDir::new();
        let host = host(&dir);
        assert!(matches!(
            find(&host),
            Err(CgroupError::NotFound { pid: 42, .. })
        ));
    }

    #[test]
    fn stats_gather_every_controller() {
        let dir = FakeDir::new();
        let host = host(&dir);
        fill_all(&dir);
        let m = find(&host).and_then(|cg| cg.stats());
        let m = m.as_ref().ok();
        assert_eq!(
            m.and_then(|m| m.pids),
            Some(PidsStat {
                current: 2,
                limit: 0
            })
        );
        assert_eq!(m.map(|m| m.cpu.usage.total), Some(123_456_789));
        assert_eq!(m.map(|m| m.cpu.throttling.periods), Some(10));
        assert_eq!(
            m.and_then(|m| m.memory.as_ref())
                .map(|s| s.total_unevictable),
            Some(32)
        );
        assert_eq!(
            m.and_then(|m| m.memory_oom_control).map(|o| o.oom_kill),
            Some(4)
        );
        assert_eq!(
            m.and_then(|m| m.blkio.as_ref())
                .map(|b| b.io_service_bytes_recursive.len()),
            Some(3)
        );
        let sizes: Option<Vec<_>> =
            m.map(|m| m.hugetlb.iter().map(|h| h.pagesize.as_str()).collect());
        assert_eq!(sizes, Some(vec!["1GB", "2MB"]));
    }

    #[test]
    fn missing_files_are_tolerated_but_other_failures_are_not() {
        let dir = FakeDir::new();
        let host = host(&dir);
        fill_all(&dir);
        let root = &host.cgroup_root;
        for gone in [
            "memory/ctr/memory.stat",
            "pids/ctr/pids.max",
            "cpu,cpuacct/ctr/cpu.stat",
        ] {
            std::fs::remove_file(root.join(gone)).ok();
        }
        let m = find(&host).and_then(|cg| cg.stats()).ok();
        assert_eq!(m.as_ref().map(|m| m.memory.is_none()), Some(true));
        assert_eq!(m.as_ref().map(|m| m.pids.is_none()), Some(true));
        assert_eq!(
            m.as_ref().map(|m| m.cpu.throttling),
            Some(Throttle::default())
        );
        assert_eq!(m.as_ref().map(|m| m.cpu.usage.total), Some(123_456_789));

        dir.write("sys/fs/cgroup/pids/ctr/pids.max", "lots\n");
        let err = find(&host).and_then(|cg| cg.stats()).err();
        assert!(matches!(err, Some(CgroupError::Parse { .. })));
    }
}
