//! v1 hugetlb controller: usage, max usage and failcnt per huge page size, as cgroup1 reads them.

use std::path::Path;

use super::Metrics;
use crate::cgroup::files::read_uint_v1;
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v1.HugetlbStat`, one per page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugetlbStat {
    /// hugetlb.<size>.usage_in_bytes
    pub usage: u64,
    /// hugetlb.<size>.max_usage_in_bytes
    pub max: u64,
    /// hugetlb.<size>.failcnt
    pub failcnt: u64,
    /// "2MB", "1GB"...
    pub pagesize: String,
}

/// One entry per size, in order; the first unreadable file ends the list.
pub(super) fn read(dir: &Path, sizes: &[String], m: &mut Metrics) -> Result<(), CgroupError> {
    for size in sizes {
        let file = |name: &str| read_uint_v1(&dir.join(format!("hugetlb.{size}.{name}")));
        let stat = HugetlbStat {
            usage: file("usage_in_bytes")?,
            max: file("max_usage_in_bytes")?,
            failcnt: file("failcnt")?,
            pagesize: size.clone(),
        };
        m.hugetlb.push(stat);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    pub(crate) fn fill(dir: &FakeDir, at: &str) {
        for (size, base) in [("2MB", 10), ("1GB", 20)] {
            for (i, name) in ["usage_in_bytes", "max_usage_in_bytes", "failcnt"]
                .iter()
                .enumerate()
            {
                dir.write(
                    &format!("{at}/hugetlb.{size}.{name}"),
                    &format!("{}\n", base + i),
                );
            }
        }
    }

    #[test]
    fn one_entry_per_size_from_its_three_files() {
        let dir = FakeDir::new();
        fill(&dir, "h");
        let mut m = Metrics::default();
        let sizes = ["2MB".to_string(), "1GB".to_string()];
        assert!(read(&dir.join("h"), &sizes, &mut m).is_ok());
        assert_eq!(
            m.hugetlb,
            [
                HugetlbStat {
                    usage: 10,
                    max: 11,
                    failcnt: 12,
                    pagesize: "2MB".into(),
                },
                HugetlbStat {
                    usage: 20,
                    max: 21,
                    failcnt: 22,
                    pagesize: "1GB".into(),
                },
            ]
        );
    }
}
