//! Stats' answer: shim-core's cgroup metrics as the `io.containerd.cgroups.v1/v2.Metrics` Any
//! containerd decodes.

use shim_core::cgroup::{v1, v2, Metrics};
use shim_proto::protobuf::Any;
use shim_proto::type_url::{CGROUPS_V1_METRICS, CGROUPS_V2_METRICS};
use shim_proto::{cgroups_v1 as pb1, cgroups_v2 as pb2};

/// `Dst { a: src.a, b: src.b, .. }` for fields of the same name and type on both sides; the
/// others (what shim-core does not read: rdma, network, cgroup_stats) stay empty.
macro_rules! same {
    ($src:expr => $module:ident :: $dst:ident { $($field:ident),* $(,)? }) => {{
        let s = $src;
        // Most uses name every field; the update is for the rest.
        #[allow(clippy::needless_update)]
        let d = $module::$dst {
            $($field: s.$field.clone(),)*
            ..Default::default()
        };
        d
    }};
}

/// The metrics in the Any Go's runc shim sends (type by the host's cgroup version).
pub fn to_any(m: &Metrics) -> Any {
    match m {
        Metrics::V1(m) => shim_proto::any::pack(CGROUPS_V1_METRICS, &metrics_v1(m)),
        Metrics::V2(m) => shim_proto::any::pack(CGROUPS_V2_METRICS, &metrics_v2(m)),
    }
}

fn metrics_v1(m: &v1::Metrics) -> pb1::Metrics {
    pb1::Metrics {
        hugetlb: m
            .hugetlb
            .iter()
            .map(|h| same!(h => pb1::HugetlbStat { usage, max, failcnt, pagesize }))
            .collect(),
        pids: m
            .pids
            .as_ref()
            .map(|p| same!(p => pb1::PidsStat { current, limit })),
        cpu: Some(pb1::CpuStat {
            usage: Some(same!(&m.cpu.usage => pb1::CpuUsage { total, kernel, user, per_cpu })),
            throttling: Some(same!(&m.cpu.throttling => pb1::Throttle {
                periods, throttled_periods, throttled_time
            })),
        }),
        memory: m.memory.as_ref().map(memory_v1),
        blkio: m.blkio.as_ref().map(|b| {
            let entries = |v: &[v1::BlkioEntry]| -> Vec<pb1::BlkIoEntry> {
                v.iter()
                    .map(|e| same!(e => pb1::BlkIoEntry { op, device, major, minor, value }))
                    .collect()
            };
            pb1::BlkIoStat {
                io_service_bytes_recursive: entries(&b.io_service_bytes_recursive),
                io_serviced_recursive: entries(&b.io_serviced_recursive),
                io_queued_recursive: entries(&b.io_queued_recursive),
                io_service_time_recursive: entries(&b.io_service_time_recursive),
                io_wait_time_recursive: entries(&b.io_wait_time_recursive),
                io_merged_recursive: entries(&b.io_merged_recursive),
                io_time_recursive: entries(&b.io_time_recursive),
                sectors_recursive: entries(&b.sectors_recursive),
            }
        }),
        memory_oom_control: m
            .memory_oom_control
            .as_ref()
            .map(|o| same!(o => pb1::MemoryOomControl { oom_kill_disable, under_oom, oom_kill })),
        ..Default::default()
    }
}

fn memory_v1(m: &v1::MemoryStat) -> pb1::MemoryStat {
    let entry =
        |e: &v1::MemoryEntry| Some(same!(e => pb1::MemoryEntry { limit, usage, max, failcnt }));
    pb1::MemoryStat {
        usage: entry(&m.usage),
        swap: entry(&m.swap),
        kernel: entry(&m.kernel),
        kernel_tcp: entry(&m.kernel_tcp),
        ..same!(m => pb1::MemoryStat {
            cache, rss, rss_huge, mapped_file, dirty, writeback, pg_pg_in, pg_pg_out, pg_fault,
            pg_maj_fault, inactive_anon, active_anon, inactive_file, active_file, unevictable,
            hierarchical_memory_limit, hierarchical_swap_limit, total_cache, total_rss,
            total_rss_huge, total_mapped_file, total_dirty, total_writeback, total_pg_pg_in,
            total_pg_pg_out, total_pg_fault, total_pg_maj_fault, total_inactive_anon,
            total_active_anon, total_inactive_file, total_active_file, total_unevictable,
        })
    }
}

fn metrics_v2(m: &v2::Metrics) -> pb2::Metrics {
    pb2::Metrics {
        pids: Some(same!(&m.pids => pb2::PidsStat { current, limit })),
        cpu: Some(pb2::CpuStat {
            psi: psi(m.cpu.psi.as_ref()),
            ..same!(&m.cpu => pb2::CpuStat {
                usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec,
                nr_bursts, burst_usec,
            })
        }),
        // workingset_{refault,activate}_{anon,file}: read by shim-core, not in this proto.
        memory: Some(pb2::MemoryStat {
            psi: psi(m.memory.psi.as_ref()),
            ..same!(&m.memory => pb2::MemoryStat {
                anon, file, kernel_stack, slab, sock, shmem, file_mapped, file_dirty,
                file_writeback, anon_thp, inactive_anon, active_anon, inactive_file, active_file,
                unevictable, slab_reclaimable, slab_unreclaimable, pgfault, pgmajfault,
                workingset_refault, workingset_activate, workingset_nodereclaim, pgrefill, pgscan,
                pgsteal, pgactivate, pgdeactivate, pglazyfree, pglazyfreed, thp_fault_alloc,
                thp_collapse_alloc, usage, usage_limit, swap_usage, swap_limit, max_usage,
                swap_max_usage,
            })
        }),
        io: Some(pb2::IoStat {
            usage: m
                .io
                .usage
                .iter()
                .map(|e| same!(e => pb2::IoEntry { major, minor, rbytes, wbytes, rios, wios }))
                .collect(),
            psi: psi(m.io.psi.as_ref()),
        }),
        hugetlb: m
            .hugetlb
            .iter()
            .map(|h| same!(h => pb2::HugeTlbStat { current, max, pagesize, failcnt }))
            .collect(),
        memory_events: m.memory_events.as_ref().map(
            |e| same!(e => pb2::MemoryEvents { low, high, max, oom, oom_kill, oom_group_kill }),
        ),
        ..Default::default()
    }
}

fn psi(p: Option<&v2::PsiStats>) -> Option<pb2::PsiStats> {
    let data = |d: &v2::PsiData| same!(d => pb2::PsiData { avg10, avg60, avg300, total });
    p.map(|p| pb2::PsiStats {
        some: p.some.as_ref().map(data),
        full: p.full.as_ref().map(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn v1_metrics_go_out_as_io_containerd_cgroups_v1_metrics() {
        let mut m = v1::Metrics::default();
        m.cpu.usage.total = 42;
        m.cpu.usage.per_cpu = vec![20, 22];
        m.pids = Some(v1::PidsStat {
            current: 3,
            limit: 10,
        });
        m.memory = Some(v1::MemoryStat {
            rss: 7,
            total_unevictable: 9,
            usage: v1::MemoryEntry {
                limit: 100,
                usage: 50,
                max: 60,
                failcnt: 1,
            },
            ..Default::default()
        });
        let any = to_any(&Metrics::V1(m));
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let back = pb1::Metrics::decode(any.value.as_slice()).unwrap();
        let cpu = back.cpu.unwrap().usage.unwrap();
        assert_eq!((cpu.total, cpu.per_cpu), (42, vec![20, 22]));
        assert_eq!(back.pids.unwrap().limit, 10);
        let mem = back.memory.unwrap();
        assert_eq!((mem.rss, mem.total_unevictable), (7, 9));
        assert_eq!(mem.usage.unwrap().max, 60);
        assert_eq!(back.blkio, None);
    }

    #[test]
    fn v2_metrics_go_out_as_io_containerd_cgroups_v2_metrics() {
        let mut m = v2::Metrics::default();
        m.cpu.usage_usec = 5;
        m.memory.usage = 4096;
        m.memory.psi = Some(v2::PsiStats {
            some: Some(v2::PsiData {
                avg10: 1.5,
                avg60: 0.0,
                avg300: 0.0,
                total: 8,
            }),
            full: None,
        });
        m.memory_events = Some(v2::MemoryEvents {
            oom_kill: 2,
            ..Default::default()
        });
        let any = to_any(&Metrics::V2(m));
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let back = pb2::Metrics::decode(any.value.as_slice()).unwrap();
        assert_eq!(back.cpu.unwrap().usage_usec, 5);
        let mem = back.memory.unwrap();
        assert_eq!(mem.usage, 4096);
        assert_eq!(mem.psi.unwrap().some.unwrap().avg10, 1.5);
        assert_eq!(back.memory_events.unwrap().oom_kill, 2);
    }
}
