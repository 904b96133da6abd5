//! v1 cpu and cpuacct controllers: usage from cpuacct.*, throttling from cpu.stat, as cgroup1 reads them.

use std::path::Path;

use super::Metrics;
use crate::cgroup::files::{parse_kv, read, read_kv, read_uint_v1};
use crate::cgroup::CgroupError;

/// cgroup1 converts cpuacct.stat's USER_HZ ticks with a fixed 100 (Linux's value everywhere).
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `io.containerd.cgroups.v1.CPUStat`; cgroup1 always sends it, zeroed when nothing was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStat {
    pub usage: CpuUsage,
    pub throttling: Throttle,
}

/// `io.containerd.cgroups.v1.CPUUsage`, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuUsage {
    /// cpuacct.usage
    pub total: u64,
    /// cpuacct.stat `system`, ticks to ns
    pub kernel: u64,
    /// cpuacct.stat `user`, ticks to ns
    pub user: u64,
    /// cpuacct.usage_percpu
    pub per_cpu: Vec<u64>,
}

/// `io.containerd.cgroups.v1.Throttle`, from cpu.stat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// nr_periods
    pub periods: u64,
    /// nr_throttled
    pub throttled_periods: u64,
    /// throttled_time (ns)
    pub throttled_time: u64,
}

/// The cpuacct controller: all four usage values, set together only when every file was read.
pub(super) fn read_cpuacct(dir: &Path, m: &mut Metrics) -> Result<(), CgroupError> {
    let stat_path = dir.join("cpuacct.stat");
    let stat = read_kv(&stat_path)?;
    let ticks = |name: &str| {
        stat.get(name)
            .map(|t| t.saturating_mul(NANOS_PER_SECOND) / CLOCK_TICKS)
            .ok_or_else(|| CgroupError::parse(&stat_path, name, "expected field not found"))
    };
    let (user, kernel) = (ticks("user")?, ticks("system")?);
    let total = read_uint_v1(&dir.join("cpuacct.usage"))?;
    let percpu_path = dir.join("cpuacct.usage_percpu");
    let per_cpu = read(&percpu_path)?
        .split_whitespace()
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| CgroupError::parse(&percpu_path, v, "expected a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    m.cpu.usage = CpuUsage {
        total,
        kernel,
        user,
        per_cpu,
    };
    Ok(())
}

/// The cpu controller: throttling counters, set as cpu.stat's lines are read.
pub(super) fn read_cpu(dir: &Path, m: &mut Metrics) -> Result<(), CgroupError> {
    let path = dir.join("cpu.stat");
    for line in read(&path)?.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = parse_kv(line)
            .ok_or_else(|| CgroupError::parse(&path, line, "expected `key value`"))?;
        match key {
            "nr_periods" => m.cpu.throttling.periods = value,
            "nr_throttled" => m.cpu.throttling.throttled_periods = value,
            "throttled_time" => m.cpu.throttling.throttled_time = value,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    pub(crate) fn fill_cpuacct(dir: &FakeDir, at: &str) {
        dir.write(&format!("{at}/cpuacct.stat"), "user 250\nsystem 30\n");
        dir.write(&format!("{at}/cpuacct.usage"), "123456789\n");
        dir.write(&format!("{at}/cpuacct.usage_percpu"), "100 200 \n");
    }

    pub(crate) fn fill_cpu(dir: &FakeDir, at: &str) {
        dir.write(
            &format!("{at}/cpu.stat"),
            "nr_periods 10\nnr_throttled 3\nthrottled_time 777\nnr_bursts 0\nburst_time 0\n",
        );
    }

    #[test]
    fn usage_comes_from_cpuacct_with_ticks_in_nanoseconds() {
        let dir = FakeDir::new();
        fill_cpuacct(&dir, "acct");
        let mut m = Metrics::default();
        assert!(read_cpuacct(&dir.join("acct"), &mut m).is_ok());
        assert_eq!(
            m.cpu.usage,
            CpuUsage {
                total: 123_456_789,
                kernel: 300_000_000,
                user: 2_500_000_000,
                per_cpu: vec![100, 200],
            }
        );
    }

    #[test]
    fn throttling_comes_from_cpu_stat() {
        let dir = FakeDir::new();
        fill_cpu(&dir, "cpu");
        let mut m = Metrics::default();
        assert!(read_cpu(&dir.join("cpu"), &mut m).is_ok());
        assert_eq!(
            m.cpu.throttling,
            Throttle {
                periods: 10,
                throttled_periods: 3,
                throttled_time: 777,
            }
        );
    }

    #[test]
    fn usage_is_all_or_nothing_and_a_missing_stat_field_is_an_error() {
        let dir = FakeDir::new();
        fill_cpuacct(&dir, "acct");
        std::fs::remove_file(dir.join("acct/cpuacct.usage_percpu")).ok();
        let mut m = Metrics::default();
        assert!(read_cpuacct(&dir.join("acct"), &mut m).is_err_and(|e| e.is_not_found()));
        assert_eq!(m.cpu.usage, CpuUsage::default());

        dir.write("acct/cpuacct.stat", "user 1\n");
        let err = read_cpuacct(&dir.join("acct"), &mut m).err();
        assert!(matches!(err, Some(CgroupError::Parse { ref line, .. }) if line == "system"));
    }
}
