//! Every shim, event and options message survives encode/decode unchanged; service paths are Go's.

mod support;

use std::sync::Arc;

use shim_proto::events::*;
use shim_proto::events_ttrpc::{create_events, Envelope, Events, ForwardRequest};
use shim_proto::protobuf::{Any, Empty, Timestamp};
use shim_proto::runc::{CheckpointOptions, CreateOptions, ProcessDetails, RuncOptions};
use shim_proto::shim::*;
use shim_proto::time::GO_ZERO_TIME;
use shim_proto::types::{Mount, Process, ProcessInfo, Status};
use shim_proto::{pack, pack_json, type_url};

macro_rules! table {
    ($($ty:ident $body:tt),* $(,)?) => {
        vec![$((stringify!($ty), support::round_trip(&$ty $body))),*]
    };
}

fn ts() -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 123_456_789,
    })
}

fn mount() -> Mount {
    Mount {
        r#type: "overlay".into(),
        source: "overlay".into(),
        target: "/".into(),
        options: vec!["lowerdir=/a".into(), "upperdir=/b".into()],
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn every_message_round_trips() {
    let opts = pack(
        type_url::CREATE_OPTIONS,
        &CreateOptions {
            no_pivot_root: true,
            ..Default::default()
        },
    );
    let spec = pack_json(type_url::OCI_PROCESS, &serde_json::json!({"args": ["sh"]}));
    let results = table![
        // containerd.runtime.linux.shim.v1
        CreateTaskRequest {
            id: s("c1"),
            bundle: s("/b"),
            runtime: s("runc"),
            rootfs: vec![mount()],
            terminal: true,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            checkpoint: s("/cp"),
            parent_checkpoint: s("/pcp"),
            options: Some(opts.clone()),
        },
        CreateTaskResponse { pid: 42 },
        DeleteResponse {
            pid: 42,
            exit_status: 137,
            exited_at: ts()
        },
        DeleteProcessRequest { id: s("e1") },
        ExecProcessRequest {
            id: s("e1"),
            terminal: true,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            spec: Some(spec.clone()),
        },
        ExecProcessResponse {},
        ResizePtyRequest {
            id: s("c1"),
            width: 80,
            height: 24
        },
        StateRequest { id: s("c1") },
        StateResponse {
            id: s("c1"),
            bundle: s("/b"),
            pid: 42,
            status: Status::Paused as i32,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            terminal: true,
            exit_status: 0,
            exited_at: Some(GO_ZERO_TIME),
        },
        KillRequest {
            id: s("c1"),
            signal: 9,
            all: true
        },
        CloseIoRequest {
            id: s("c1"),
            stdin: true
        },
        ListPidsRequest { id: s("c1") },
        ListPidsResponse {
            processes: vec![
                ProcessInfo { pid: 1, info: None },
                ProcessInfo {
                    pid: 2,
                    info: Some(pack(
                        type_url::PROCESS_DETAILS,
                        &ProcessDetails { exec_id: s("e1") }
                    )),
                },
            ],
        },
        CheckpointTaskRequest {
            path: s("/cp"),
            options: Some(pack(
                type_url::CHECKPOINT_OPTIONS,
                &CheckpointOptions {
                    exit: true,
                    ..Default::default()
                }
            )),
        },
        ShimInfoResponse { shim_pid: 7 },
        UpdateTaskRequest {
            resources: Some(pack_json(
                type_url::OCI_LINUX_RESOURCES,
                &serde_json::json!({"cpu": {"shares": 2}})
            )),
        },
        StartRequest { id: s("c1") },
        StartResponse {
            id: s("c1"),
            pid: 42
        },
        WaitRequest { id: s("c1") },
        WaitResponse {
            exit_status: 1,
            exited_at: ts()
        },
        // containerd.types, containerd.v1.types, containerd.linux.runc
        Mount {
            r#type: s("bind"),
            source: s("/s"),
            target: s("/t"),
            options: vec![s("rbind")]
        },
        ProcessInfo {
            pid: 3,
            info: Some(spec.clone())
        },
        Process {
            container_id: s("c1"),
            id: s("e1"),
            pid: 43,
            status: Status::Stopped as i32,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            terminal: true,
            exit_status: 2,
            exited_at: ts(),
        },
        RuncOptions {
            runtime: s("runc"),
            runtime_root: s("/r"),
            criu_path: s("/c"),
            systemd_cgroup: true
        },
        CreateOptions {
            no_pivot_root: true,
            open_tcp: true,
            external_unix_sockets: true,
            terminal: true,
            file_locks: true,
            empty_namespaces: vec![s("network")],
            cgroups_mode: s("soft"),
            no_new_keyring: true,
            shim_cgroup: s("/shim"),
            io_uid: 1000,
            io_gid: 1001,
            criu_work_path: s("/w"),
            criu_image_path: s("/i"),
        },
        CheckpointOptions {
            exit: true,
            open_tcp: true,
            external_unix_sockets: true,
            terminal: true,
            file_locks: true,
            empty_namespaces: vec![s("ipc")],
            cgroups_mode: s("full"),
            work_path: s("/w"),
            image_path: s("/i"),
        },
        ProcessDetails { exec_id: s("e1") },
        // containerd.events
        TaskCreate {
            container_id: s("c1"),
            bundle: s("/b"),
            rootfs: vec![mount()],
            io: Some(TaskIo {
                stdin: s("/i"),
                stdout: s("/o"),
                stderr: s("/e"),
                terminal: true
            }),
            checkpoint: s("/cp"),
            pid: 42,
        },
        TaskStart {
            container_id: s("c1"),
            pid: 42
        },
        TaskDelete {
            container_id: s("c1"),
            pid: 42,
            exit_status: 3,
            exited_at: ts(),
            id: s("e1")
        },
        TaskIo {
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            terminal: true
        },
        TaskExit {
            container_id: s("c1"),
            id: s("c1"),
            pid: 42,
            exit_status: 137,
            exited_at: ts()
        },
        TaskOom {
            container_id: s("c1")
        },
        TaskExecAdded {
            container_id: s("c1"),
            exec_id: s("e1")
        },
        TaskExecStarted {
            container_id: s("c1"),
            exec_id: s("e1"),
            pid: 43
        },
        TaskPaused {
            container_id: s("c1")
        },
        TaskResumed {
            container_id: s("c1")
        },
        TaskCheckpointed {
            container_id: s("c1"),
            checkpoint: s("sha256:00")
        },
        // containerd.services.events.ttrpc.v1 and google.protobuf
        ForwardRequest {
            envelope: Some(Envelope {
                timestamp: ts(),
                namespace: s("default"),
                topic: s("/tasks/exit"),
                event: Some(TaskExit::default().to_any()),
            }),
        },
        Envelope {
            timestamp: ts(),
            namespace: s("k8s.io"),
            topic: s("/tasks/oom"),
            event: Some(
                TaskOom {
                    container_id: s("c1")
                }
                .to_any()
            ),
        },
        Any {
            type_url: s("x"),
            value: vec![1, 2, 3]
        },
        Empty {},
        Timestamp {
            seconds: -62_135_596_800,
            nanos: 999_999_999
        },
    ];
    let failures = support::failures(&results);
    assert!(failures.is_empty(), "round trip failed:\n{failures}");
    assert_eq!(results.len(), 43, "the table should list 43 messages");
}

#[test]
fn runc_v1_options_round_trip() {
    use shim_proto::runc_v1_options as v1;
    let results = vec![
        (
            "Options",
            support::round_trip(&v1::Options {
                no_pivot_root: true,
                no_new_keyring: true,
                shim_cgroup: s("/shim"),
                io_uid: 1000,
                io_gid: 1001,
                binary_name: s("runc"),
                root: s("/run/containerd/runc"),
                systemd_cgroup: true,
                criu_image_path: s("/i"),
                criu_work_path: s("/w"),
                task_api_address: s("ttrpc+unix:///run/t.sock"),
                task_api_version: 3,
            }),
        ),
        (
            "CheckpointOptions",
            support::round_trip(&v1::CheckpointOptions {
                exit: true,
                open_tcp: true,
                external_unix_sockets: true,
                terminal: true,
                file_locks: true,
                empty_namespaces: vec![s("network"), s("ipc")],
                cgroups_mode: s("soft"),
                image_path: s("/i"),
                work_path: s("/w"),
            }),
        ),
        (
            "ProcessDetails",
            support::round_trip(&v1::ProcessDetails { exec_id: s("e1") }),
        ),
    ];
    let failures = support::failures(&results);
    assert!(failures.is_empty(), "round trip failed:\n{failures}");
}

#[test]
fn cgroups_v1_metrics_round_trip() {
    use shim_proto::cgroups_v1::*;
    let blkio = |op: &str| BlkIoEntry {
        op: s(op),
        device: s("sda"),
        major: 8,
        minor: 0,
        value: 4096,
    };
    let entry = |n: u64| MemoryEntry {
        limit: n,
        usage: n + 1,
        max: n + 2,
        failcnt: n + 3,
    };
    let rdma = RdmaEntry {
        device: s("mlx5_0"),
        hca_handles: 1,
        hca_objects: 2,
    };
    let m = Metrics {
        hugetlb: vec![HugetlbStat {
            usage: 1,
            max: 2,
            failcnt: 3,
            pagesize: s("2MB"),
        }],
        pids: Some(PidsStat {
            current: 3,
            limit: 10,
        }),
        cpu: Some(CpuStat {
            usage: Some(CpuUsage {
                total: 300,
                kernel: 100,
                user: 200,
                per_cpu: vec![150, 150],
            }),
            throttling: Some(Throttle {
                periods: 1,
                throttled_periods: 2,
                throttled_time: 3,
            }),
        }),
        memory: Some(MemoryStat {
            cache: 1,
            rss: 2,
            pg_maj_fault: 10,
            total_unevictable: 32,
            usage: Some(entry(33)),
            swap: Some(entry(34)),
            kernel: Some(entry(35)),
            kernel_tcp: Some(entry(36)),
            ..Default::default()
        }),
        blkio: Some(BlkIoStat {
            io_service_bytes_recursive: vec![blkio("Read"), blkio("Write")],
            sectors_recursive: vec![blkio("Total")],
            ..Default::default()
        }),
        rdma: Some(RdmaStat {
            current: vec![rdma.clone()],
            limit: vec![rdma],
        }),
        network: vec![NetworkStat {
            name: s("eth0"),
            rx_bytes: 1,
            tx_dropped: 9,
            ..Default::default()
        }],
        cgroup_stats: Some(CgroupStats {
            nr_sleeping: 1,
            nr_running: 2,
            nr_stopped: 3,
            nr_uninterruptible: 4,
            nr_io_wait: 5,
        }),
        memory_oom_control: Some(MemoryOomControl {
            oom_kill_disable: 1,
            under_oom: 0,
            oom_kill: 3,
        }),
    };
    support::round_trip(&m).unwrap();
}

#[test]
fn cgroups_v2_metrics_round_trip() {
    use shim_proto::cgroups_v2::*;
    let psi = || {
        Some(PsiStats {
            some: Some(PsiData {
                avg10: 0.25,
                avg60: 1.5,
                avg300: 99.99,
                total: 7,
            }),
            full: Some(PsiData::default()),
        })
    };
    let rdma = RdmaEntry {
        device: s("mlx5_0"),
        hca_handles: 1,
        hca_objects: 2,
    };
    let m = Metrics {
        pids: Some(PidsStat {
            current: 3,
            limit: 10,
        }),
        cpu: Some(CpuStat {
            usage_usec: 1,
            user_usec: 2,
            system_usec: 3,
            nr_periods: 4,
            nr_throttled: 5,
            throttled_usec: 6,
            psi: psi(),
            nr_bursts: 8,
            burst_usec: 9,
        }),
        memory: Some(MemoryStat {
            anon: 1,
            file: 2,
            thp_collapse_alloc: 31,
            usage: 32,
            usage_limit: 33,
            swap_usage: 34,
            swap_limit: 35,
            max_usage: 36,
            swap_max_usage: 37,
            psi: psi(),
            ..Default::default()
        }),
        rdma: Some(RdmaStat {
            current: vec![rdma.clone()],
            limit: vec![rdma],
        }),
        io: Some(IoStat {
            usage: vec![IoEntry {
                major: 8,
                minor: 0,
                rbytes: 3,
                wbytes: 4,
                rios: 5,
                wios: 6,
            }],
            psi: psi(),
        }),
        hugetlb: vec![HugeTlbStat {
            current: 1,
            max: 2,
            pagesize: s("1GB"),
            failcnt: 4,
        }],
        memory_events: Some(MemoryEvents {
            low: 1,
            high: 2,
            max: 3,
            oom: 4,
            oom_kill: 5,
            oom_group_kill: 6,
        }),
        network: vec![NetworkStat {
            name: s("eth0"),
            rx_packets: 3,
            tx_bytes: 6,
            ..Default::default()
        }],
    };
    support::round_trip(&m).unwrap();
}

#[test]
fn status_enum_values_are_containerd_values() {
    let expected = [
        (Status::Unknown, 0),
        (Status::Created, 1),
        (Status::Running, 2),
        (Status::Stopped, 3),
        (Status::Paused, 4),
        (Status::Pausing, 5),
    ];
    for (status, value) in expected {
        assert_eq!(status as i32, value, "{status:?}");
    }
}

struct NoShim;
impl Shim for NoShim {}

#[test]
fn shim_service_registers_all_sixteen_go_method_paths() {
    let methods = create_shim(Arc::new(NoShim));
    let mut names: Vec<&str> = methods.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected: Vec<String> = [
        "State",
        "Create",
        "Start",
        "Delete",
        "DeleteProcess",
        "ListPids",
        "Pause",
        "Resume",
        "Checkpoint",
        "Kill",
        "Exec",
        "ResizePty",
        "CloseIO",
        "ShimInfo",
        "Update",
        "Wait",
    ]
    .iter()
    .map(|m| format!("/containerd.runtime.linux.shim.v1.Shim/{m}"))
    .collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
}

struct NoEvents;
impl Events for NoEvents {}

#[test]
fn events_service_registers_go_forward_path() {
    let methods = create_events(Arc::new(NoEvents));
    let names: Vec<&str> = methods.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["/containerd.services.events.ttrpc.v1.Events/Forward"]
    );
}
