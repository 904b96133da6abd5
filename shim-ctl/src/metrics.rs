//! A task v2 shim's `StatsResponse.stats`: cgroup v1 or v2 metrics, decoded from their `Any`, as
//! JSON (every field, proto names) and as the few numbers an operator looks at first.

use anyhow::Context as _;
use serde_json::{Map, Value};
use shim_proto::any::{type_url_matches, unpack};
use shim_proto::protobuf::Any;
use shim_proto::type_url::{CGROUPS_V1_METRICS, CGROUPS_V2_METRICS};
use shim_proto::{cgroups_v1, cgroups_v2};

/// Limits at or above this mean "none": cgroup v1 reports an unlimited memory cgroup as
/// 9223372036854771712 (the page counter's maximum), cgroup v2's `max` decodes as u64::MAX.
const NO_LIMIT_FROM: u64 = 1 << 62;

/// Decoded metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    V1(cgroups_v1::Metrics),
    V2(cgroups_v2::Metrics),
}

/// What the human output shows; `None` where the shim sent no such group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub memory_usage: Option<u64>,
    /// `None` also when unlimited.
    pub memory_limit: Option<u64>,
    pub cpu_total_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub pids_current: Option<u64>,
    /// `None` also when unlimited (0).
    pub pids_limit: Option<u64>,
}

fn limit(v: u64) -> Option<u64> {
    (v != 0 && v < NO_LIMIT_FROM).then_some(v)
}

impl Metrics {
    /// Decodes the two types runc shims send; anything else is an io error (invalid data).
    pub fn decode(any: &Any) -> anyhow::Result<Metrics> {
        let what = || format!("decoding the shim's {} metrics", any.type_url);
        if type_url_matches(&any.type_url, CGROUPS_V1_METRICS) {
            return Ok(Metrics::V1(
                unpack(any, CGROUPS_V1_METRICS)
                    .map_err(invalid)
                    .with_context(what)?,
            ));
        }
        if type_url_matches(&any.type_url, CGROUPS_V2_METRICS) {
            return Ok(Metrics::V2(
                unpack(any, CGROUPS_V2_METRICS)
                    .map_err(invalid)
                    .with_context(what)?,
            ));
        }
        Err(invalid(format!(
            "the shim sent metrics of type {:?}; shim-ctl reads {CGROUPS_V1_METRICS} and \
             {CGROUPS_V2_METRICS}",
            any.type_url
        ))
        .into())
    }

    pub fn type_url(&self) -> &'static str {
        match self {
            Metrics::V1(_) => CGROUPS_V1_METRICS,
            Metrics::V2(_) => CGROUPS_V2_METRICS,
        }
    }

    /// The whole message, fields by their proto names (absent messages are null).
    pub fn to_json(&self) -> Value {
        match self {
            Metrics::V1(m) => m.to_json(),
            Metrics::V2(m) => m.to_json(),
        }
    }

    pub fn summary(&self) -> Summary {
        match self {
            Metrics::V1(m) => {
                let memory = m.memory.as_ref().and_then(|m| m.usage.as_ref());
                let cpu = m.cpu.as_ref().and_then(|c| c.usage.as_ref());
                Summary {
                    memory_usage: memory.map(|u| u.usage),
                    memory_limit: memory.and_then(|u| limit(u.limit)),
                    cpu_total_ns: cpu.map(|c| c.total),
                    cpu_user_ns: cpu.map(|c| c.user),
                    cpu_system_ns: cpu.map(|c| c.kernel),
                    pids_current: m.pids.as_ref().map(|p| p.current),
                    pids_limit: m.pids.as_ref().and_then(|p| limit(p.limit)),
                }
            }
            Metrics::V2(m) => {
                let usec = |v: u64| v.saturating_mul(1000);
                Summary {
                    memory_usage: m.memory.as_ref().map(|u| u.usage),
                    memory_limit: m.memory.as_ref().and_then(|u| limit(u.usage_limit)),
                    cpu_total_ns: m.cpu.as_ref().map(|c| usec(c.usage_usec)),
                    cpu_user_ns: m.cpu.as_ref().map(|c| usec(c.user_usec)),
                    cpu_system_ns: m.cpu.as_ref().map(|c| usec(c.system_usec)),
                    pids_current: m.pids.as_ref().map(|p| p.current),
                    pids_limit: m.pids.as_ref().and_then(|p| limit(p.limit)),
                }
            }
        }
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// `512 B`, `1.5 KiB`, `256.0 MiB`.
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if v < 1024 {
        return format!("{v} B");
    }
    let mut value = v as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Nanoseconds as seconds with millisecond precision: `1.234s`.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:03}s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

impl Summary {
    /// `KEY  value` rows for the human output.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let of = |v: Option<u64>, limit: Option<u64>, show: fn(u64) -> String| match (v, limit) {
            (None, _) => "-".to_string(),
            (Some(v), Some(l)) => format!("{} of {}", show(v), show(l)),
            (Some(v), None) => format!("{} (no limit)", show(v)),
        };
        let cpu = match (self.cpu_total_ns, self.cpu_user_ns, self.cpu_system_ns) {
            (Some(t), Some(u), Some(s)) => {
                format!(
                    "{} (user {}, system {})",
                    seconds(t),
                    seconds(u),
                    seconds(s)
                )
            }
            (Some(t), _, _) => seconds(t),
            (None, _, _) => "-".to_string(),
        };
        vec![
            ("MEMORY", of(self.memory_usage, self.memory_limit, bytes)),
            ("CPU", cpu),
            (
                "PIDS",
                of(self.pids_current, self.pids_limit, |v| v.to_string()),
            ),
        ]
    }
}

/// A message (or field value) as JSON.
trait ToJson {
    fn to_json(&self) -> Value;
}

macro_rules! json_scalars {
    ($($t:ty),*) => {
        $(impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::from(self.clone())
            }
        })*
    };
}

json_scalars!(u64, u32, f64, String);

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

/// `ToJson` for messages of a module, each destructured without `..`, so that a field added to
/// the proto fails to compile here until it is listed.
macro_rules! json_messages {
    ($module:ident { $($message:ident { $($field:ident),* $(,)? }),* $(,)? }) => {
        $(impl ToJson for $module::$message {
            fn to_json(&self) -> Value {
                let $module::$message { $($field),* } = self;
                let mut map = Map::new();
                $(map.insert(stringify!($field).to_string(), $field.to_json());)*
                Value::Object(map)
            }
        })*
    };
}

json_messages!(cgroups_v1 {
    Metrics { hugetlb, pids, cpu, memory, blkio, rdma, network, cgroup_stats, memory_oom_control },
    HugetlbStat { usage, max, failcnt, pagesize },
    PidsStat { current, limit },
    CpuStat { usage, throttling },
    CpuUsage { total, kernel, user, per_cpu },
    Throttle { periods, throttled_periods, throttled_time },
    MemoryStat { cache, rss, rss_huge, mapped_file, dirty, writeback, pg_pg_in, pg_pg_out, pg_fault, pg_maj_fault, inactive_anon, active_anon, inactive_file, active_file, unevictable, hierarchical_memory_limit, hierarchical_swap_limit, total_cache, total_rss, total_rss_huge, total_mapped_file, total_dirty, total_writeback, total_pg_pg_in, total_pg_pg_out, total_pg_fault, total_pg_maj_fault, total_inactive_anon, total_active_anon, total_inactive_file, total_active_file, total_unevictable, usage, swap, kernel, kernel_tcp },
    MemoryEntry { limit, usage, max, failcnt },
    MemoryOomControl { oom_kill_disable, under_oom, oom_kill },
    BlkIoStat { io_service_bytes_recursive, io_serviced_recursive, io_queued_recursive, io_service_time_recursive, io_wait_time_recursive, io_merged_recursive, io_time_recursive, sectors_recursive },
    BlkIoEntry { op, device, major, minor, value },
    RdmaStat { current, limit },
    RdmaEntry { device, hca_handles, hca_objects },
    NetworkStat { name, rx_bytes, rx_packets, rx_errors, rx_dropped, tx_bytes, tx_packets, tx_errors, tx_dropped },
    CgroupStats { nr_sleeping, nr_running, nr_stopped, nr_uninterruptible, nr_io_wait },
});
json_messages!(cgroups_v2 {
    Metrics { pids, cpu, memory, rdma, io, hugetlb, memory_events, network },
    PsiData { avg10, avg60, avg300, total },
    PsiStats { some, full },
    PidsStat { current, limit },
    CpuStat { usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec, psi, nr_bursts, burst_usec },
    MemoryStat { anon, file, kernel_stack, slab, sock, shmem, file_mapped, file_dirty, file_writeback, anon_thp, inactive_anon, active_anon, inactive_file, active_file, unevictable, slab_reclaimable, slab_unreclaimable, pgfault, pgmajfault, workingset_refault, workingset_activate, workingset_nodereclaim, pgrefill, pgscan, pgsteal, pgactivate, pgdeactivate, pglazyfree, pglazyfreed, thp_fault_alloc, thp_collapse_alloc, usage, usage_limit, swap_usage, swap_limit, max_usage, swap_max_usage, psi },
    MemoryEvents { low, high, max, oom, oom_kill, oom_group_kill },
    RdmaStat { current, limit },
    RdmaEntry { device, hca_handles, hca_objects },
    IoStat { usage, psi },
    IoEntry { major, minor, rbytes, wbytes, rios, wios },
    HugeTlbStat { current, max, pagesize, failcnt },
    NetworkStat { name, rx_bytes, rx_packets, rx_errors, rx_dropped, tx_bytes, tx_packets, tx_errors, tx_dropped },
});

#[cfg(test)]
mod tests {
    use super::*;
    use shim_proto::any::pack;

    #[test]
    fn v1_metrics_decode_and_summarise() {
        let m = cgroups_v1::Metrics {
            pids: Some(cgroups_v1::PidsStat {
                current: 3,
                limit: 64,
            }),
            cpu: Some(cgroups_v1::CpuStat {
                usage: Some(cgroups_v1::CpuUsage {
                    total: 1_234_000_000,
                    kernel: 234_000_000,
                    user: 1_000_000_000,
                    per_cpu: vec![1, 2],
                }),
                throttling: None,
            }),
            memory: Some(cgroups_v1::MemoryStat {
                usage: Some(cgroups_v1::MemoryEntry {
                    usage: 1536 * 1024,
                    limit: 9_223_372_036_854_771_712,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let decoded = Metrics::decode(&pack(CGROUPS_V1_METRICS, &m)).unwrap();
        assert_eq!(decoded, Metrics::V1(m));
        assert_eq!(
            decoded.summary().rows(),
            [
                ("MEMORY", "1.5 MiB (no limit)".to_string()),
                ("CPU", "1.234s (user 1.000s, system 0.234s)".to_string()),
                ("PIDS", "3 of 64".to_string()),
            ]
        );
        let json = decoded.to_json();
        assert_eq!(json["pids"]["current"], 3);
        assert_eq!(json["cpu"]["usage"]["per_cpu"], serde_json::json!([1, 2]));
        assert_eq!(json["memory"]["usage"]["usage"], 1536 * 1024);
        assert!(json["blkio"].is_null());
        assert_eq!(json["hugetlb"], serde_json::json!([]));
    }

    #[test]
    fn v2_metrics_decode_and_summarise_in_microseconds() {
        let m = cgroups_v2::Metrics {
            pids: Some(cgroups_v2::PidsStat {
                current: 1,
                limit: 0,
            }),
            cpu: Some(cgroups_v2::CpuStat {
                usage_usec: 2_500_000,
                user_usec: 2_000_000,
                system_usec: 500_000,
                ..Default::default()
            }),
            memory: Some(cgroups_v2::MemoryStat {
                usage: 512,
                usage_limit: 256 << 20,
                ..Default::default()
            }),
            ..Default::default()
        };
        let decoded = Metrics::decode(&pack(CGROUPS_V2_METRICS, &m)).unwrap();
        assert_eq!(decoded.type_url(), CGROUPS_V2_METRICS);
        assert_eq!(
            decoded.summary().rows(),
            [
                ("MEMORY", "512 B of 256.0 MiB".to_string()),
                ("CPU", "2.500s (user 2.000s, system 0.500s)".to_string()),
                ("PIDS", "1 (no limit)".to_string()),
            ]
        );
        assert_eq!(decoded.to_json()["memory"]["usage_limit"], 256 << 20);
    }

    #[test]
    fn other_types_and_bad_bytes_are_invalid_data() {
        let other = Any {
            type_url: "example.Other".into(),
            value: vec![],
        };
        let err = Metrics::decode(&other).unwrap_err();
        assert!(err.to_string().contains("\"example.Other\""), "{err}");
        let garbage = Any {
            type_url: CGROUPS_V2_METRICS.into(),
            value: vec![0xff, 0xff],
        };
        let err = Metrics::decode(&garbage).unwrap_err();
        assert!(err.downcast_ref::<std::io::Error>().is_some(), "{err:#}");
    }

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(seconds(1_500_000), "0.001s");
    }
}
