//! v2 pids: pids.current and pids.max ("max" read as u64::MAX), as cgroup2 reads them.

use std::path::Path;

use crate::cgroup::files::read_uint_v2;

/// `io.containerd.cgroups.v2.PidsStat`; always sent, 0 for a file that is not there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsStat {
    /// pids.current
    pub current: u64,
    /// pids.max; u64::MAX when unlimited
    pub limit: u64,
}

pub(crate) fn read(dir: &Path) -> PidsStat {
    PidsStat {
        current: read_uint_v2(&dir.join("pids.current")),
        limit: read_uint_v2(&dir.join("pids.max")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn max_is_the_largest_number_and_missing_is_zero() {
        let dir = FakeDir::new();
        dir.write("pids.current", "5\n");
        dir.write("pids.max", "max\n");
        assert_eq!(
            read(dir.path()),
            PidsStat {
                current: 5,
                limit: u64::MAX,
            }
        );
        let empty = FakeDir::new();
        assert_eq!(read(empty.path()), PidsStat::default());
    }
}
