//! v1 pids controller: pids.current and pids.max ("max" read as 0), as cgroup1 reads them.

use std::path::Path;

use super::Metrics;
use crate::cgroup::files::read_uint_v1;
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v1.PidsStat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsStat {
    /// pids.current
    pub current: u64,
    /// pids.max; 0 when unlimited ("max")
    pub limit: u64,
}

pub(super) fn read(dir: &Path, m: &mut Metrics) -> Result<(), CgroupError> {
    let current = read_uint_v1(&dir.join("pids.current"))?;
    let limit = read_uint_v1(&dir.join("pids.max"))?;
    m.pids = Some(PidsStat { current, limit });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn current_and_limit_with_max_as_zero() {
        let dir = FakeDir::new();
        dir.write("p/pids.current", "3\n");
        dir.write("p/pids.max", "max\n");
        let mut m = Metrics::default();
        assert!(read(&dir.join("p"), &mut m).is_ok());
        assert_eq!(
            m.pids,
            Some(PidsStat {
                current: 3,
                limit: 0
            })
        );
        dir.write("p/pids.max", "64\n");
        assert!(read(&dir.join("p"), &mut m).is_ok());
        assert_eq!(
            m.pids,
            Some(PidsStat {
                current: 3,
                limit: 64
            })
        );
    }

    #[test]
    fn a_missing_file_leaves_pids_unset() {
        let dir = FakeDir::new();
        dir.write("p/pids.current", "3\n");
        let mut m = Metrics::default();
        assert!(read(&dir.join("p"), &mut m).is_err_and(|e| e.is_not_found()));
        assert_eq!(m.pids, None);
    }
}
