//! Huge page sizes: the names (`2MB`, `1GB`) cgroup hugetlb files carry, from the kernel's list.

use std::path::Path;

/// The sizes of `<dir>/hugepages-<n>kB`, named as the hugetlb controller names them, sorted by
/// entry name. A missing directory means no huge pages; an odd entry is skipped (containerd's
/// cgroup2 `getHugePageSizeFromFilenames`).
pub(crate) fn page_sizes(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().filter_map(|n| size_name(n)).collect()
}

fn size_name(entry: &str) -> Option<String> {
    let kb: u64 = entry
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kb >= 1 << 20 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn sizes_are_named_like_the_hugetlb_files() {
        let dir = FakeDir::new();
        for entry in [
            "hugepages-2048kB",
            "hugepages-1048576kB",
            "hugepages-64kB",
            "other",
        ] {
            dir.mkdir(&format!("hp/{entry}"));
        }
        assert_eq!(page_sizes(&dir.join("hp")), ["1GB", "2MB", "64KB"]);
        assert!(page_sizes(&dir.join("missing")).is_empty());
    }
}
