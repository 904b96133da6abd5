//! v2 cpu: cpu.stat's usage and throttling counters and cpu.pressure, as cgroup2 reads them.

use std::path::Path;

use super::psi::{self, PsiStats};
use crate::cgroup::files::read_kv;
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v2.CPUStat`, from cpu.stat (microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuStat {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_usec: u64,
    /// cpu.pressure
    pub psi: Option<PsiStats>,
    pub nr_bursts: u64,
    pub burst_usec: u64,
}

/// Zeroes (and no PSI) when cpu.stat does not exist; a malformed cpu.stat is an error.
pub(crate) fn read(dir: &Path) -> Result<CpuStat, CgroupError> {
    let stat = match read_kv(&dir.join("cpu.stat")) {
        Ok(stat) => stat,
        Err(e) if e.is_not_found() => return Ok(CpuStat::default()),
        Err(e) => return Err(e),
    };
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    Ok(CpuStat {
        usage_usec: get("usage_usec"),
        user_usec: get("user_usec"),
        system_usec: get("system_usec"),
        nr_periods: get("nr_periods"),
        nr_throttled: get("nr_throttled"),
        throttled_usec: get("throttled_usec"),
        psi: psi::read(&dir.join("cpu.pressure")),
        nr_bursts: get("nr_bursts"),
        burst_usec: get("burst_usec"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    pub(crate) const CPU_STAT: &str = "usage_usec 1\nuser_usec 2\nsystem_usec 3\nnr_periods 4\n\
nr_throttled 5\nthrottled_usec 6\nnr_bursts 7\nburst_usec 8\ncore_sched.force_idle_usec 0\n";

    #[test]
    fn every_field_comes_from_cpu_stat() {
        let dir = FakeDir::new();
        dir.write("cpu.stat", CPU_STAT);
        dir.write(
            "cpu.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n",
        );
        let got = read(dir.path()).ok();
        assert_eq!(
            got,
            Some(CpuStat {
                usage_usec: 1,
                user_usec: 2,
                system_usec: 3,
                nr_periods: 4,
                nr_throttled: 5,
                throttled_usec: 6,
                psi: psi::read(&dir.join("cpu.pressure")),
                nr_bursts: 7,
                burst_usec: 8,
            })
        );
        assert_eq!(
            got.and_then(|c| c.psi)
                .and_then(|p| p.some)
                .map(|s| s.total),
            Some(9)
        );
    }

    #[test]
    fn missing_is_zero_and_malformed_is_an_error() {
        let dir = FakeDir::new();
        assert_eq!(read(dir.path()).ok(), Some(CpuStat::default()));
        dir.write("cpu.stat", "usage_usec x\n");
        assert!(read(dir.path()).is_err());
    }
}
