//! v1 memory controller: memory.stat, memory.oom_control and the usage/limit files, as cgroup1 reads them.

use std::path::Path;

use super::Metrics;
use crate::cgroup::files::{read_kv, read_uint_v1};
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v1.MemoryStat`: memory.stat's counters, then the four usage families.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStat {
    pub cache: u64,
    pub rss: u64,
    pub rss_huge: u64,
    pub mapped_file: u64,
    pub dirty: u64,
    pub writeback: u64,
    pub pg_pg_in: u64,
    pub pg_pg_out: u64,
    pub pg_fault: u64,
    pub pg_maj_fault: u64,
    pub inactive_anon: u64,
    pub active_anon: u64,
    pub inactive_file: u64,
    pub active_file: u64,
    pub unevictable: u64,
    pub hierarchical_memory_limit: u64,
    pub hierarchical_swap_limit: u64,
    pub total_cache: u64,
    pub total_rss: u64,
    pub total_rss_huge: u64,
    pub total_mapped_file: u64,
    pub total_dirty: u64,
    pub total_writeback: u64,
    pub total_pg_pg_in: u64,
    pub total_pg_pg_out: u64,
    pub total_pg_fault: u64,
    pub total_pg_maj_fault: u64,
    pub total_inactive_anon: u64,
    pub total_active_anon: u64,
    pub total_inactive_file: u64,
    pub total_active_file: u64,
    pub total_unevictable: u64,
    /// memory.{usage_in_bytes,max_usage_in_bytes,failcnt,limit_in_bytes}
    pub usage: MemoryEntry,
    /// memory.memsw.*
    pub swap: MemoryEntry,
    /// memory.kmem.*
    pub kernel: MemoryEntry,
    /// memory.kmem.tcp.*
    pub kernel_tcp: MemoryEntry,
}

/// `io.containerd.cgroups.v1.MemoryEntry`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

/// `io.containerd.cgroups.v1.MemoryOomControl`, from memory.oom_control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryOomControl {
    pub oom_kill_disable: u64,
    pub under_oom: u64,
    pub oom_kill: u64,
}

/// Fill `m.memory` and `m.memory_oom_control` in cgroup1's order, stopping at the first failure:
/// memory.stat, memory.oom_control, then for "", memsw, kmem, kmem.tcp in turn
/// usage_in_bytes, max_usage_in_bytes, failcnt, limit_in_bytes.
pub(super) fn read(dir: &Path, m: &mut Metrics) -> Result<(), CgroupError> {
    let raw = read_kv(&dir.join("memory.stat"))?;
    let get = |k: &str| raw.get(k).copied().unwrap_or(0);
    let memory = m.memory.insert(MemoryStat {
        cache: get("cache"),
        rss: get("rss"),
        rss_huge: get("rss_huge"),
        mapped_file: get("mapped_file"),
        dirty: get("dirty"),
        writeback: get("writeback"),
        pg_pg_in: get("pgpgin"),
        pg_pg_out: get("pgpgout"),
        pg_fault: get("pgfault"),
        pg_maj_fault: get("pgmajfault"),
        inactive_anon: get("inactive_anon"),
        active_anon: get("active_anon"),
        inactive_file: get("inactive_file"),
        active_file: get("active_file"),
        unevictable: get("unevictable"),
        hierarchical_memory_limit: get("hierarchical_memory_limit"),
        hierarchical_swap_limit: get("hierarchical_memsw_limit"),
        total_cache: get("total_cache"),
        total_rss: get("total_rss"),
        total_rss_huge: get("total_rss_huge"),
        total_mapped_file: get("total_mapped_file"),
        total_dirty: get("total_dirty"),
        total_writeback: get("total_writeback"),
        total_pg_pg_in: get("total_pgpgin"),
        total_pg_pg_out: get("total_pgpgout"),
        total_pg_fault: get("total_pgfault"),
        total_pg_maj_fault: get("total_pgmajfault"),
        total_inactive_anon: get("total_inactive_anon"),
        total_active_anon: get("total_active_anon"),
        total_inactive_file: get("total_inactive_file"),
        total_active_file: get("total_active_file"),
        total_unevictable: get("total_unevictable"),
        ..MemoryStat::default()
    });

    let oom = read_kv(&dir.join("memory.oom_control"))?;
    let get = |k: &str| oom.get(k).copied().unwrap_or(0);
    m.memory_oom_control = Some(MemoryOomControl {
        oom_kill_disable: get("oom_kill_disable"),
        under_oom: get("under_oom"),
        oom_kill: get("oom_kill"),
    });

    for (prefix, entry) in [
        ("memory.", &mut memory.usage),
        ("memory.memsw.", &mut memory.swap),
        ("memory.kmem.", &mut memory.kernel),
        ("memory.kmem.tcp.", &mut memory.kernel_tcp),
    ] {
        for (name, value) in [
            ("usage_in_bytes", &mut entry.usage),
            ("max_usage_in_bytes", &mut entry.max),
            ("failcnt", &mut entry.failcnt),
            ("limit_in_bytes", &mut entry.limit),
        ] {
            *value = read_uint_v1(&dir.join(format!("{prefix}{name}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    /// Every memory.stat key cgroup1 maps, each with its own value (1..=32), plus one it ignores.
    pub(crate) const MEMORY_STAT: &str = "\
cache 1\nrss 2\nrss_huge 3\nmapped_file 4\ndirty 5\nwriteback 6\npgpgin 7\npgpgout 8\n\
pgfault 9\npgmajfault 10\ninactive_anon 11\nactive_anon 12\ninactive_file 13\nactive_file 14\n\
unevictable 15\nhierarchical_memory_limit 16\nhierarchical_memsw_limit 17\ntotal_cache 18\n\
total_rss 19\ntotal_rss_huge 20\ntotal_mapped_file 21\ntotal_dirty 22\ntotal_writeback 23\n\
total_pgpgin 24\ntotal_pgpgout 25\ntotal_pgfault 26\ntotal_pgmajfault 27\n\
total_inactive_anon 28\ntotal_active_anon 29\ntotal_inactive_file 30\ntotal_active_file 31\n\
total_unevictable 32\nshmem 99\n";

    /// A full memory controller directory; the usage families count 100, 200, 300, 400 up.
    pub(crate) fn fill(dir: &FakeDir, at: &str) {
        dir.write(&format!("{at}/memory.stat"), MEMORY_STAT);
        dir.write(
            &format!("{at}/memory.oom_control"),
            "oom_kill_disable 1\nunder_oom 1\noom_kill 4\n",
        );
        for (i, prefix) in [
            "memory.",
            "memory.memsw.",
            "memory.kmem.",
            "memory.kmem.tcp.",
        ]
        .iter()
        .enumerate()
        {
            let base = 100 * (i as u64 + 1);
            for (j, name) in [
                "usage_in_bytes",
                "max_usage_in_bytes",
                "failcnt",
                "limit_in_bytes",
            ]
            .iter()
            .enumerate()
            {
                dir.write(
                    &format!("{at}/{prefix}{name}"),
                    &format!("{}\n", base + j as u64),
                );
            }
        }
    }

    fn entry(base: u64) -> MemoryEntry {
        MemoryEntry {
            usage: base,
            max: base + 1,
            failcnt: base + 2,
            limit: base + 3,
        }
    }

    #[test]
    fn every_field_comes_from_its_file() {
        let dir = FakeDir::new();
        fill(&dir, "mem");
        let mut m = Metrics::default();
        assert!(read(&dir.join("mem"), &mut m).is_ok());
        let want = MemoryStat {
            cache: 1,
            rss: 2,
            rss_huge: 3,
            mapped_file: 4,
            dirty: 5,
            writeback: 6,
            pg_pg_in: 7,
            pg_pg_out: 8,
            pg_fault: 9,
            pg_maj_fault: 10,
            inactive_anon: 11,
            active_anon: 12,
            inactive_file: 13,
            active_file: 14,
            unevictable: 15,
            hierarchical_memory_limit: 16,
            hierarchical_swap_limit: 17,
            total_cache: 18,
            total_rss: 19,
            total_rss_huge: 20,
            total_mapped_file: 21,
            total_dirty: 22,
            total_writeback: 23,
            total_pg_pg_in: 24,
            total_pg_pg_out: 25,
            total_pg_fault: 26,
            total_pg_maj_fault: 27,
            total_inactive_anon: 28,
            total_active_anon: 29,
            total_inactive_file: 30,
            total_active_file: 31,
            total_unevictable: 32,
            usage: entry(100),
            swap: entry(200),
            kernel: entry(300),
            kernel_tcp: entry(400),
        };
        assert_eq!(m.memory, Some(want));
        assert_eq!(
            m.memory_oom_control,
            Some(MemoryOomControl {
                oom_kill_disable: 1,
                under_oom: 1,
                oom_kill: 4,
            })
        );
    }

    #[test]
    fn without_memsw_the_read_stops_there_as_in_cgroup1() {
        let dir = FakeDir::new();
        fill(&dir, "mem");
        std::fs::remove_file(dir.join("mem/memory.memsw.usage_in_bytes")).ok();
        let mut m = Metrics::default();
        let err = read(&dir.join("mem"), &mut m).err();
        assert!(err.is_some_and(|e| e.is_not_found()));
        let memory = m.memory.unwrap_or_default();
        assert_eq!(memory.usage, entry(100));
        assert_eq!(memory.swap, MemoryEntry::default());
        assert_eq!(memory.kernel, MemoryEntry::default());
        assert_eq!(memory.cache, 1);
    }

    #[test]
    fn without_memory_stat_nothing_is_set() {
        let dir = FakeDir::new();
        dir.mkdir("mem");
        let mut m = Metrics::default();
        assert!(read(&dir.join("mem"), &mut m).is_err_and(|e| e.is_not_found()));
        assert_eq!(m.memory, None);
        assert_eq!(m.memory_oom_control, None);
    }

    #[test]
    fn a_malformed_memory_stat_is_an_error_that_is_not_tolerated() {
        let dir = FakeDir::new();
        fill(&dir, "mem");
        dir.write("mem/memory.stat", "cache lots\n");
        let mut m = Metrics::default();
        assert!(read(&dir.join("mem"), &mut m).is_err_and(|e| !e.is_not_found()));
    }
}
