//! Byte-compatibility with Go: encodings derived by hand from the field numbers equal prost's.
//!
//! Go's `proto.Marshal` writes the set fields of a proto3 message in field-number order, skips
//! zero scalars and empty strings, packs repeated scalars and writes a present sub-message even
//! when it is empty; so the bytes of a small message follow from its .proto alone. Each expected
//! value below is spelled out field by field: tag byte(s) `(number << 3) | wire type`, then a
//! varint, or a length and the bytes. prost must encode the message to exactly those bytes and
//! decode them back to the same message.

use std::collections::HashMap;

use prost::Message;
use shim_proto::events::{Event, TaskCreate, TaskExit, TaskIo, TaskOom};
use shim_proto::protobuf::{Any, Timestamp};
use shim_proto::runc_v1_options::{CheckpointOptions, Options, ProcessDetails};
use shim_proto::task_v2::{
    ConnectResponse, CreateTaskRequest, DeleteResponse, PidsResponse, StateResponse, StatsResponse,
    UpdateTaskRequest,
};
use shim_proto::types::{Mount, ProcessInfo, Status};
use shim_proto::{event_topic, pack, task_v3, type_url, unpack};

fn wire(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn s(v: &str) -> String {
    v.to_string()
}

fn one_second() -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1,
        nanos: 0,
    })
}

/// `m` encodes to exactly `expected`, and `expected` decodes back to `m`.
fn assert_wire<M: Message + Default + PartialEq + std::fmt::Debug>(m: &M, expected: &[u8]) {
    assert_eq!(
        m.encode_to_vec(),
        expected,
        "prost's encoding of {m:?} differs from the hand-derived bytes"
    );
    assert_eq!(&M::decode(expected).unwrap(), m);
}

// containerd.task.v2

#[test]
fn create_task_request_with_rootfs_and_runc_options() {
    let m = CreateTaskRequest {
        id: s("c1"),
        bundle: s("/b"),
        rootfs: vec![Mount {
            r#type: s("overlay"),
            source: s("overlay"),
            target: s(""),
            options: vec![s("ro")],
        }],
        stdout: s("/o"),
        options: Some(pack(
            type_url::RUNC_V1_OPTIONS,
            &Options {
                binary_name: s("runc"),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 2], b"c1", // 1 id
        &[0x12, 2], b"/b", // 2 bundle
        &[0x1a, 22],       // 3 rootfs[0]: Mount, 22 bytes
        &[0x0a, 7], b"overlay", //   1 type
        &[0x12, 7], b"overlay", //   2 source (3 target empty: absent)
        &[0x22, 2], b"ro", //   4 options[0]
        &[0x32, 2], b"/o", // 6 stdout (4 terminal, 5 stdin: absent)
        &[0x52, 36],       // 10 options: Any, 36 bytes
        &[0x0a, 26], b"containerd.runc.v1.Options", // 1 type_url
        &[0x12, 6], //   2 value: Options, 6 bytes
        &[0x32, 4], b"runc", //     6 binary_name
    ]);
    assert_wire(&m, &expected);
}

#[test]
fn state_response_carries_exec_id_as_field_11() {
    let m = StateResponse {
        id: s("c1"),
        pid: 42,
        status: Status::Running as i32,
        exited_at: one_second(),
        exec_id: s("e1"),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 2], b"c1",       // 1 id
        &[0x18, 42],             // 3 pid
        &[0x20, 2],              // 4 status RUNNING = 2
        &[0x52, 2, 0x08, 0x01],  // 10 exited_at { 1 seconds: 1 }
        &[0x5a, 2], b"e1",       // 11 exec_id
    ]);
    assert_wire(&m, &expected);
    // v3 declares the same message: same bytes.
    let v3 = task_v3::StateResponse::decode(expected.as_slice()).unwrap();
    assert_eq!(v3.exec_id, "e1");
    assert_eq!(v3.encode_to_vec(), expected);
}

#[test]
fn delete_response_as_the_shim_delete_action_prints_it() {
    let m = DeleteResponse {
        pid: 42,
        exit_status: 137,
        exited_at: one_second(),
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x08, 42],             // 1 pid
        &[0x10, 0x89, 0x01],     // 2 exit_status: varint 137
        &[0x1a, 2, 0x08, 0x01],  // 3 exited_at { 1 seconds: 1 }
    ]);
    assert_wire(&m, &expected);
}

#[test]
fn connect_response_with_multi_byte_varint() {
    let m = ConnectResponse {
        shim_pid: 300,
        task_pid: 42,
        version: s("2"),
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x08, 0xac, 0x02], // 1 shim_pid: varint 300
        &[0x10, 42],         // 2 task_pid
        &[0x1a, 1], b"2",    // 3 version
    ]);
    assert_wire(&m, &expected);
}

#[test]
fn pids_response_with_runc_v1_process_details() {
    let m = PidsResponse {
        processes: vec![ProcessInfo {
            pid: 42,
            info: Some(pack(
                type_url::RUNC_V1_PROCESS_DETAILS,
                &ProcessDetails { exec_id: s("e1") },
            )),
        }],
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 45], // 1 processes[0]: ProcessInfo, 45 bytes
        &[0x08, 42], //   1 pid
        &[0x12, 41], //   2 info: Any, 41 bytes
        &[0x0a, 33], b"containerd.runc.v1.ProcessDetails", // 1 type_url
        &[0x12, 4], //     2 value: ProcessDetails, 4 bytes
        &[0x0a, 2], b"e1", //       1 exec_id
    ]);
    assert_wire(&m, &expected);
}

#[test]
fn update_task_request_annotation_is_a_map_entry_message() {
    let m = UpdateTaskRequest {
        id: s("c1"),
        resources: None,
        annotations: HashMap::from([(s("a"), s("b"))]),
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 2], b"c1", // 1 id
        &[0x1a, 6],        // 3 annotations entry, 6 bytes
        &[0x0a, 1], b"a",  //   1 key
        &[0x12, 1], b"b",  //   2 value
    ]);
    assert_wire(&m, &expected);
}

/// The one place where prost and Go write different bytes for the same value: Go writes both
/// key and value of a map entry even when one is empty, prost leaves an empty one out. Both are
/// valid encodings of the same entry and each side decodes the other's.
#[test]
fn map_entry_with_empty_value_decodes_from_go_form_and_encodes_shorter() {
    #[rustfmt::skip]
    let go = wire(&[
        &[0x1a, 5],       // 3 annotations entry, 5 bytes
        &[0x0a, 1], b"a", //   1 key
        &[0x12, 0],       //   2 value "" (Go writes it)
    ]);
    let m = UpdateTaskRequest::decode(go.as_slice()).unwrap();
    assert_eq!(m.annotations, HashMap::from([(s("a"), s(""))]));
    let prost = wire(&[&[0x1a, 3], &[0x0a, 1], b"a"]);
    assert_eq!(m.encode_to_vec(), prost);
}

// containerd.events inside an Any, as the shim publishes them

#[test]
fn task_exit_any() {
    let exit = TaskExit {
        container_id: s("c1"),
        id: s("e1"),
        pid: 42,
        exit_status: 137,
        exited_at: one_second(),
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 26], b"containerd.events.TaskExit", // Any 1 type_url
        &[0x12, 17],             // Any 2 value: TaskExit, 17 bytes
        &[0x0a, 2], b"c1",       //   1 container_id
        &[0x12, 2], b"e1",       //   2 id
        &[0x18, 42],             //   3 pid
        &[0x20, 0x89, 0x01],     //   4 exit_status: varint 137
        &[0x2a, 2, 0x08, 0x01],  //   5 exited_at { 1 seconds: 1 }
    ]);
    assert_wire(&exit.to_any(), &expected);
    let any = Any::decode(expected.as_slice()).unwrap();
    assert_eq!(unpack::<TaskExit>(&any, type_url::TASK_EXIT).unwrap(), exit);
    assert_eq!(event_topic(&any.type_url), Some("/tasks/exit"));
}

#[test]
fn task_oom_any() {
    let oom = TaskOom {
        container_id: s("c1"),
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 25], b"containerd.events.TaskOOM", // Any 1 type_url
        &[0x12, 4],        // Any 2 value: TaskOOM, 4 bytes
        &[0x0a, 2], b"c1", //   1 container_id
    ]);
    assert_wire(&oom.to_any(), &expected);
    let any = Any::decode(expected.as_slice()).unwrap();
    assert_eq!(unpack::<TaskOom>(&any, type_url::TASK_OOM).unwrap(), oom);
    assert_eq!(event_topic(&any.type_url), Some("/tasks/oom"));
}

#[test]
fn task_create_any_with_rootfs_and_io() {
    let create = TaskCreate {
        container_id: s("c1"),
        bundle: s("/b"),
        rootfs: vec![Mount {
            r#type: s("bind"),
            source: s("/s"),
            target: s(""),
            options: vec![s("ro")],
        }],
        io: Some(TaskIo {
            stdout: s("/o"),
            terminal: true,
            ..Default::default()
        }),
        checkpoint: s(""),
        pid: 42,
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 28], b"containerd.events.TaskCreate", // Any 1 type_url
        &[0x12, 34],             // Any 2 value: TaskCreate, 34 bytes
        &[0x0a, 2], b"c1",       //   1 container_id
        &[0x12, 2], b"/b",       //   2 bundle
        &[0x1a, 14],             //   3 rootfs[0]: Mount, 14 bytes
        &[0x0a, 4], b"bind",     //     1 type
        &[0x12, 2], b"/s",       //     2 source
        &[0x22, 2], b"ro",       //     4 options[0]
        &[0x22, 6],              //   4 io: TaskIO, 6 bytes
        &[0x12, 2], b"/o",       //     2 stdout
        &[0x20, 1],              //     4 terminal
        &[0x30, 42],             //   6 pid (5 checkpoint empty: absent)
    ]);
    assert_wire(&create.to_any(), &expected);
    let any = Any::decode(expected.as_slice()).unwrap();
    assert_eq!(
        unpack::<TaskCreate>(&any, type_url::TASK_CREATE).unwrap(),
        create
    );
    assert_eq!(event_topic(&any.type_url), Some("/tasks/create"));
}

// containerd.runc.v1

fn runc_options() -> Options {
    Options {
        no_pivot_root: true,
        io_uid: 1000,
        binary_name: s("runc"),
        root: s("/r"),
        systemd_cgroup: true,
        task_api_address: s("/t"),
        task_api_version: 3,
        ..Default::default()
    }
}

#[test]
fn runc_v1_options_any_as_containerd_sends_it() {
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 26], b"containerd.runc.v1.Options", // Any 1 type_url
        &[0x12, 23],         // Any 2 value: Options, 23 bytes
        &[0x08, 1],          //   1 no_pivot_root
        &[0x20, 0xe8, 0x07], //   4 io_uid: varint 1000
        &[0x32, 4], b"runc", //   6 binary_name
        &[0x3a, 2], b"/r",   //   7 root (8 is reserved: criu_path, removed in 2.0)
        &[0x48, 1],          //   9 systemd_cgroup
        &[0x62, 2], b"/t",   //   12 task_api_address
        &[0x68, 3],          //   13 task_api_version
    ]);
    let any = pack(type_url::RUNC_V1_OPTIONS, &runc_options());
    assert_wire(&any, &expected);
    let back: Options = unpack(
        &Any::decode(expected.as_slice()).unwrap(),
        type_url::RUNC_V1_OPTIONS,
    )
    .unwrap();
    assert_eq!(back, runc_options());
}

#[test]
fn runc_v1_options_from_containerd_1_7_skip_the_removed_criu_path() {
    // containerd 1.7 still declares `string criu_path = 8`.
    #[rustfmt::skip]
    let from_1_7 = wire(&[
        &[0x08, 1],          // 1 no_pivot_root
        &[0x42, 4], b"criu", // 8 criu_path
        &[0x48, 1],          // 9 systemd_cgroup
    ]);
    let m = Options::decode(from_1_7.as_slice()).unwrap();
    let expected = Options {
        no_pivot_root: true,
        systemd_cgroup: true,
        ..Default::default()
    };
    assert_eq!(m, expected);
    assert_eq!(m.encode_to_vec(), [0x08, 1, 0x48, 1]);
}

#[test]
fn runc_v1_checkpoint_options() {
    let m = CheckpointOptions {
        exit: true,
        empty_namespaces: vec![s("network")],
        image_path: s("/i"),
        work_path: s("/w"),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x08, 1],             // 1 exit
        &[0x32, 7], b"network", // 6 empty_namespaces[0]
        &[0x42, 2], b"/i",      // 8 image_path
        &[0x4a, 2], b"/w",      // 9 work_path
    ]);
    assert_wire(&m, &expected);
}

// io.containerd.cgroups.v1 and v2, as StatsResponse.stats

#[test]
fn cgroups_v1_metrics_with_packed_per_cpu() {
    use shim_proto::cgroups_v1::{CpuStat, CpuUsage, MemoryOomControl, Metrics, PidsStat};
    let m = Metrics {
        pids: Some(PidsStat {
            current: 3,
            limit: 10,
        }),
        cpu: Some(CpuStat {
            usage: Some(CpuUsage {
                total: 300,
                per_cpu: vec![100, 200],
                ..Default::default()
            }),
            throttling: None,
        }),
        memory_oom_control: Some(MemoryOomControl {
            oom_kill: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x12, 4],                // 2 pids: PidsStat, 4 bytes
        &[0x08, 3, 0x10, 10],      //   1 current, 2 limit
        &[0x1a, 10],               // 3 cpu: CPUStat, 10 bytes
        &[0x0a, 8],                //   1 usage: CPUUsage, 8 bytes
        &[0x08, 0xac, 0x02],       //     1 total: varint 300
        &[0x22, 3, 100, 0xc8, 1],  //     4 per_cpu: packed, 3 bytes: 100, 200
        &[0x4a, 2, 0x18, 1],       // 9 memory_oom_control { 3 oom_kill: 1 }
    ]);
    assert_wire(&m, &expected);
    let stats = StatsResponse {
        stats: Some(pack(type_url::CGROUPS_V1_METRICS, &m)),
    };
    let any = stats.stats.as_ref().unwrap();
    assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
    assert_eq!(
        unpack::<Metrics>(any, type_url::CGROUPS_V1_METRICS).unwrap(),
        m
    );
}

#[test]
fn cgroups_v2_metrics_with_psi_double_and_high_field_numbers() {
    use shim_proto::cgroups_v2::{
        CpuStat, MemoryEvents, MemoryStat, Metrics, PidsStat, PsiData, PsiStats,
    };
    let m = Metrics {
        pids: Some(PidsStat {
            current: 3,
            limit: 0,
        }),
        cpu: Some(CpuStat {
            usage_usec: 5,
            nr_bursts: 1,
            ..Default::default()
        }),
        memory: Some(MemoryStat {
            usage: 4096,
            psi: Some(PsiStats {
                some: Some(PsiData {
                    avg10: 1.5,
                    total: 7,
                    ..Default::default()
                }),
                full: None,
            }),
            ..Default::default()
        }),
        memory_events: Some(MemoryEvents {
            oom_kill: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected = wire(&[
        &[0x0a, 2, 0x08, 3],       // 1 pids { 1 current: 3 }
        &[0x12, 4],                // 2 cpu: CPUStat, 4 bytes
        &[0x08, 5],                //   1 usage_usec
        &[0x40, 1],                //   8 nr_bursts (cgroups v3.1)
        &[0x22, 20],               // 4 memory: MemoryStat, 20 bytes (3 is unused)
        &[0x80, 0x02, 0x80, 0x20], //   32 usage: two-byte tag 256, varint 4096
        &[0xb2, 0x02, 13],         //   38 psi: PSIStats, two-byte tag 306, 13 bytes
        &[0x0a, 11],               //     1 some: PSIData, 11 bytes
        &[0x09],                   //       1 avg10: fixed64 double 1.5, little-endian
        &[0, 0, 0, 0, 0, 0, 0xf8, 0x3f],
        &[0x20, 7],                //       4 total
        &[0x42, 2, 0x28, 2],       // 8 memory_events { 5 oom_kill: 2 }
    ]);
    assert_wire(&m, &expected);
    let any = pack(type_url::CGROUPS_V2_METRICS, &m);
    assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    assert_eq!(
        unpack::<Metrics>(&any, type_url::CGROUPS_V2_METRICS).unwrap(),
        m
    );
    assert!(unpack::<Metrics>(&any, type_url::CGROUPS_V1_METRICS).is_err());
}
