//! v2 hugetlb: current, max and the `max` event count per huge page size, as cgroup2 reads them.

use std::path::Path;

use crate::cgroup::files::{read_kv_value_v2, read_uint_v2};

/// `io.containerd.cgroups.v2.HugeTlbStat`, one per page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugetlbStat {
    /// hugetlb.<size>.current
    pub current: u64,
    /// hugetlb.<size>.max; u64::MAX when unlimited
    pub max: u64,
    /// "2MB", "1GB"...
    pub pagesize: String,
    /// hugetlb.<size>.events `max`
    pub failcnt: u64,
}

pub(crate) fn read(dir: &Path, sizes: &[String]) -> Vec<HugetlbStat> {
    sizes
        .iter()
        .map(|size| {
            let file = |name: &str| dir.join(format!("hugetlb.{size}.{name}"));
            HugetlbStat {
                current: read_uint_v2(&file("current")),
                max: read_uint_v2(&file("max")),
                pagesize: size.clone(),
                failcnt: read_kv_value_v2(&file("events"), "max"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn one_entry_per_size_from_current_max_and_events() {
        let dir = FakeDir::new();
        dir.write("hugetlb.2MB.current", "4\n");
        dir.write("hugetlb.2MB.max", "max\n");
        dir.write("hugetlb.2MB.events", "max 3\n");
        let sizes = ["2MB".to_string(), "1GB".to_string()];
        assert_eq!(
            read(dir.path(), &sizes),
            [
                HugetlbStat {
                    current: 4,
                    max: u64::MAX,
                    pagesize: "2MB".into(),
                    failcnt: 3,
                },
                HugetlbStat {
                    pagesize: "1GB".into(),
                    ..HugetlbStat::default()
                },
            ]
        );
    }
}
