//! v2 memory: memory.stat, the usage/limit/peak files and memory.events, as cgroup2 reads them.

use std::collections::HashMap;
use std::path::Path;

use super::psi::{self, PsiStats};
use crate::cgroup::files::{read_kv, read_uint_v2};
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v2.MemoryStat`: memory.stat's counters, then the single-value files.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryStat {
    pub anon: u64,
    pub file: u64,
    pub kernel_stack: u64,
    pub slab: u64,
    pub sock: u64,
    pub shmem: u64,
    pub file_mapped: u64,
    pub file_dirty: u64,
    pub file_writeback: u64,
    pub anon_thp: u64,
    pub inactive_anon: u64,
    pub active_anon: u64,
    pub inactive_file: u64,
    pub active_file: u64,
    pub unevictable: u64,
    pub slab_reclaimable: u64,
    pub slab_unreclaimable: u64,
    pub pgfault: u64,
    pub pgmajfault: u64,
    pub workingset_refault: u64,
    pub workingset_activate: u64,
    pub workingset_nodereclaim: u64,
    pub pgrefill: u64,
    pub pgscan: u64,
    pub pgsteal: u64,
    pub pgactivate: u64,
    pub pgdeactivate: u64,
    pub pglazyfree: u64,
    pub pglazyfreed: u64,
    pub thp_fault_alloc: u64,
    pub thp_collapse_alloc: u64,
    /// memory.current
    pub usage: u64,
    /// memory.max; u64::MAX when unlimited
    pub usage_limit: u64,
    /// memory.swap.current
    pub swap_usage: u64,
    /// memory.swap.max; u64::MAX when unlimited
    pub swap_limit: u64,
    /// memory.peak
    pub max_usage: u64,
    /// memory.swap.peak
    pub swap_max_usage: u64,
    /// memory.pressure
    pub psi: Option<PsiStats>,
    pub workingset_refault_anon: u64,
    pub workingset_refault_file: u64,
    pub workingset_activate_anon: u64,
    pub workingset_activate_file: u64,
}

/// `io.containerd.cgroups.v2.MemoryEvents`, from memory.events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// All zeroes (not even memory.current) when memory.stat does not exist, as in cgroup2; a
/// malformed memory.stat is an error.
pub(crate) fn read_stat(dir: &Path) -> Result<MemoryStat, CgroupError> {
    let stat = match read_kv(&dir.join("memory.stat")) {
        Ok(stat) => stat,
        Err(e) if e.is_not_found() => return Ok(MemoryStat::default()),
        Err(e) => return Err(e),
    };
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    let file = |name: &str| read_uint_v2(&dir.join(name));
    Ok(MemoryStat {
        anon: get("anon"),
        file: get("file"),
        kernel_stack: get("kernel_stack"),
        slab: get("slab"),
        sock: get("sock"),
        shmem: get("shmem"),
        file_mapped: get("file_mapped"),
        file_dirty: get("file_dirty"),
        file_writeback: get("file_writeback"),
        anon_thp: get("anon_thp"),
        inactive_anon: get("inactive_anon"),
        active_anon: get("active_anon"),
        inactive_file: get("inactive_file"),
        active_file: get("active_file"),
        unevictable: get("unevictable"),
        slab_reclaimable: get("slab_reclaimable"),
        slab_unreclaimable: get("slab_unreclaimable"),
        pgfault: get("pgfault"),
        pgmajfault: get("pgmajfault"),
        workingset_refault: get("workingset_refault"),
        workingset_activate: get("workingset_activate"),
        workingset_nodereclaim: get("workingset_nodereclaim"),
        pgrefill: get("pgrefill"),
        pgscan: get("pgscan"),
        pgsteal: get("pgsteal"),
        pgactivate: get("pgactivate"),
        pgdeactivate: get("pgdeactivate"),
        pglazyfree: get("pglazyfree"),
        pglazyfreed: get("pglazyfreed"),
        thp_fault_alloc: get("thp_fault_alloc"),
        thp_collapse_alloc: get("thp_collapse_alloc"),
        usage: file("memory.current"),
        usage_limit: file("memory.max"),
        swap_usage: file("memory.swap.current"),
        swap_limit: file("memory.swap.max"),
        max_usage: file("memory.peak"),
        swap_max_usage: file("memory.swap.peak"),
        psi: psi::read(&dir.join("memory.pressure")),
        workingset_refault_anon: get("workingset_refault_anon"),
        workingset_refault_file: get("workingset_refault_file"),
        workingset_activate_anon: get("workingset_activate_anon"),
        workingset_activate_file: get("workingset_activate_file"),
    })
}

/// `None` when memory.events is missing or empty (cgroup2 sends no MemoryEvents then); a
/// malformed file is an error.
pub(crate) fn read_events(dir: &Path) -> Result<Option<MemoryEvents>, CgroupError> {
    let events = match read_kv(&dir.join("memory.events")) {
        Ok(events) => events,
        Err(e) if e.is_not_found() => HashMap::new(),
        Err(e) => return Err(e),
    };
    if events.is_empty() {
        return Ok(None);
    }
    Ok(Some(events_from(&events)))
}

/// The six counters of a parsed memory.events (absent keys are 0).
pub(crate) fn events_from(events: &HashMap<String, u64>) -> MemoryEvents {
    let get = |k: &str| events.get(k).copied().unwrap_or(0);
    MemoryEvents {
        low: get("low"),
        high: get("high"),
        max: get("max"),
        oom: get("oom"),
        oom_kill: get("oom_kill"),
        oom_group_kill: get("oom_group_kill"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    /// Every memory.stat key cgroup2 maps, valued 1..=35 in field order, plus one it ignores.
    pub(crate) const MEMORY_STAT: &str = "\
anon 1\nfile 2\nkernel_stack 3\nslab 4\nsock 5\nshmem 6\nfile_mapped 7\nfile_dirty 8\n\
file_writeback 9\nanon_thp 10\ninactive_anon 11\nactive_anon 12\ninactive_file 13\n\
active_file 14\nunevictable 15\nslab_reclaimable 16\nslab_unreclaimable 17\npgfault 18\n\
pgmajfault 19\nworkingset_refault 20\nworkingset_activate 21\nworkingset_nodereclaim 22\n\
pgrefill 23\npgscan 24\npgsteal 25\npgactivate 26\npgdeactivate 27\npglazyfree 28\n\
pglazyfreed 29\nthp_fault_alloc 30\nthp_collapse_alloc 31\nworkingset_refault_anon 32\n\
workingset_refault_file 33\nworkingset_activate_anon 34\nworkingset_activate_file 35\n\
percpu 999\n";

    pub(crate) fn fill(dir: &FakeDir, at: &str) {
        dir.write(&format!("{at}/memory.stat"), MEMORY_STAT);
        dir.write(&format!("{at}/memory.current"), "1000\n");
        dir.write(&format!("{at}/memory.max"), "max\n");
        dir.write(&format!("{at}/memory.swap.current"), "2000\n");
        dir.write(&format!("{at}/memory.swap.max"), "4096\n");
        dir.write(&format!("{at}/memory.peak"), "3000\n");
        dir.write(&format!("{at}/memory.swap.peak"), "4000\n");
        dir.write(
            &format!("{at}/memory.events"),
            "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n",
        );
    }

    #[test]
    fn every_field_comes_from_its_file() {
        let dir = FakeDir::new();
        fill(&dir, "g");
        assert_eq!(
            read_stat(&dir.join("g")).ok(),
            Some(MemoryStat {
                anon: 1,
                file: 2,
                kernel_stack: 3,
                slab: 4,
                sock: 5,
                shmem: 6,
                file_mapped: 7,
                file_dirty: 8,
                file_writeback: 9,
                anon_thp: 10,
                inactive_anon: 11,
                active_anon: 12,
                inactive_file: 13,
                active_file: 14,
                unevictable: 15,
                slab_reclaimable: 16,
                slab_unreclaimable: 17,
                pgfault: 18,
                pgmajfault: 19,
                workingset_refault: 20,
                workingset_activate: 21,
                workingset_nodereclaim: 22,
                pgrefill: 23,
                pgscan: 24,
                pgsteal: 25,
                pgactivate: 26,
                pgdeactivate: 27,
                pglazyfree: 28,
                pglazyfreed: 29,
                thp_fault_alloc: 30,
                thp_collapse_alloc: 31,
                usage: 1000,
                usage_limit: u64::MAX,
                swap_usage: 2000,
                swap_limit: 4096,
                max_usage: 3000,
                swap_max_usage: 4000,
                psi: None,
                workingset_refault_anon: 32,
                workingset_refault_file: 33,
                workingset_activate_anon: 34,
                workingset_activate_file: 35,
            })
        );
        assert_eq!(
            read_events(&dir.join("g")).ok(),
            Some(Some(MemoryEvents {
                low: 1,
                high: 2,
                max: 3,
                oom: 4,
                oom_kill: 5,
                oom_group_kill: 6,
            }))
        );
    }

    #[test]
    fn without_memory_stat_even_usage_is_zero() {
        let dir = FakeDir::new();
        fill(&dir, "g");
        std::fs::remove_file(dir.join("g/memory.stat")).ok();
        assert_eq!(read_stat(&dir.join("g")).ok(), Some(MemoryStat::default()));
    }

    #[test]
    fn events_are_none_when_missing_or_empty_and_an_error_when_malformed() {
        let dir = FakeDir::new();
        dir.mkdir("g");
        assert_eq!(read_events(&dir.join("g")).ok(), Some(None));
        dir.write("g/memory.events", "");
        assert_eq!(read_events(&dir.join("g")).ok(), Some(None));
        dir.write("g/memory.events", "oom_kill many\n");
        assert!(read_events(&dir.join("g")).is_err());
    }
}
