//! Task API v2 and v3: every message round-trips, v2 and v3 bytes are interchangeable, and the
//! generated server and client use Go's ttrpc paths `/containerd.task.v{2,3}.Task/<Method>`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use shim_proto::protobuf::{Any, Timestamp};
use shim_proto::task_v2::*;
use shim_proto::time::GO_ZERO_TIME;
use shim_proto::types::{Mount, ProcessInfo, Status};
use shim_proto::{pack_json, task_v3, type_url};
use support::{ctx, TempDir};

macro_rules! table {
    ($($ty:ident $body:tt),* $(,)?) => {
        vec![$((stringify!($ty), support::round_trip(&$ty $body))),*]
    };
}

fn s(v: &str) -> String {
    v.to_string()
}

fn ts() -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 123_456_789,
    })
}

fn any() -> Option<Any> {
    Some(Any {
        type_url: s("containerd.runc.v1.Options"),
        value: vec![0x08, 0x01],
    })
}

/// A value of every `containerd.task.v2` message, every field set: its name, its encoding, and
/// whether it round-trips ([`support::round_trip`]).
type Row = (&'static str, Vec<u8>, Result<(), String>);

fn v2_messages() -> Vec<Row> {
    macro_rules! encoded {
        ($($ty:ident $body:tt),* $(,)?) => {
            vec![$({
                let m = $ty $body;
                (stringify!($ty), m.encode_to_vec(), support::round_trip(&m))
            }),*]
        };
    }
    encoded![
        CreateTaskRequest {
            id: s("c1"),
            bundle: s("/b"),
            rootfs: vec![Mount {
                r#type: s("overlay"),
                source: s("overlay"),
                target: s("/t"),
                options: vec![s("lowerdir=/l"), s("upperdir=/u")],
            }],
            terminal: true,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            checkpoint: s("/cp"),
            parent_checkpoint: s("/pcp"),
            options: any(),
        },
        CreateTaskResponse { pid: 42 },
        DeleteRequest {
            id: s("c1"),
            exec_id: s("e1")
        },
        DeleteResponse {
            pid: 42,
            exit_status: 137,
            exited_at: ts()
        },
        ExecProcessRequest {
            id: s("c1"),
            exec_id: s("e1"),
            terminal: true,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            spec: Some(pack_json(
                type_url::OCI_PROCESS,
                &serde_json::json!({"args": ["sh"]})
            )),
        },
        ExecProcessResponse {},
        ResizePtyRequest {
            id: s("c1"),
            exec_id: s("e1"),
            width: 80,
            height: 24
        },
        StateRequest {
            id: s("c1"),
            exec_id: s("e1")
        },
        StateResponse {
            id: s("c1"),
            bundle: s("/b"),
            pid: 42,
            status: Status::Running as i32,
            stdin: s("/i"),
            stdout: s("/o"),
            stderr: s("/e"),
            terminal: true,
            exit_status: 1,
            exited_at: Some(GO_ZERO_TIME),
            exec_id: s("e1"),
        },
        KillRequest {
            id: s("c1"),
            exec_id: s("e1"),
            signal: 9,
            all: true
        },
        CloseIoRequest {
            id: s("c1"),
            exec_id: s("e1"),
            stdin: true
        },
        PidsRequest { id: s("c1") },
        PidsResponse {
            processes: vec![
                ProcessInfo { pid: 1, info: None },
                ProcessInfo {
                    pid: 2,
                    info: any()
                },
            ],
        },
        CheckpointTaskRequest {
            id: s("c1"),
            path: s("/cp"),
            options: any()
        },
        UpdateTaskRequest {
            id: s("c1"),
            resources: Some(pack_json(
                type_url::OCI_LINUX_RESOURCES,
                &serde_json::json!({"cpu": {"shares": 2}})
            )),
            // One entry: Go writes map entries in random order, so several would not be stable.
            annotations: HashMap::from([(s("io.kubernetes.cri.sandbox-id"), s("s1"))]),
        },
        StartRequest {
            id: s("c1"),
            exec_id: s("e1")
        },
        StartResponse { pid: 42 },
        WaitRequest {
            id: s("c1"),
            exec_id: s("e1")
        },
        WaitResponse {
            exit_status: 137,
            exited_at: ts()
        },
        StatsRequest { id: s("c1") },
        StatsResponse { stats: any() },
        ConnectRequest { id: s("c1") },
        ConnectResponse {
            shim_pid: 7,
            task_pid: 42,
            version: s("2.1.9")
        },
        ShutdownRequest {
            id: s("c1"),
            now: true
        },
        PauseRequest { id: s("c1") },
        ResumeRequest { id: s("c1") },
    ]
}

/// Decodes `bytes` as `M` and re-encodes it; non-empty bytes must not decode to the default.
fn reencode<M: Message + Default + PartialEq>(bytes: &[u8]) -> Result<(), String> {
    let m = M::decode(bytes).map_err(|e| format!("decode: {e}"))?;
    if !bytes.is_empty() && m == M::default() {
        return Err("decoded to the default message".to_string());
    }
    if m.encode_to_vec() != bytes {
        return Err("re-encoding changed the bytes".to_string());
    }
    Ok(())
}

/// Decodes and re-encodes the bytes of every row of [`v2_messages`] as the same-named message of
/// `module`.
macro_rules! reencode_all {
    ($module:path; $($ty:ident),* $(,)?) => {{
        use $module as m;
        let rows = v2_messages();
        let names: Vec<&str> = rows.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(names, [$(stringify!($ty)),*], "table and type list differ");
        let mut results: Vec<(&str, Result<(), String>)> = Vec::new();
        let mut rows = rows.into_iter();
        $(
            let (name, bytes, _) = rows.next().unwrap();
            results.push((name, reencode::<m::$ty>(&bytes)));
        )*
        results
    }};
}

macro_rules! every_v2_message {
    ($module:path) => {
        reencode_all!(
            $module;
            CreateTaskRequest, CreateTaskResponse, DeleteRequest, DeleteResponse,
            ExecProcessRequest, ExecProcessResponse, ResizePtyRequest, StateRequest,
            StateResponse, KillRequest, CloseIoRequest, PidsRequest, PidsResponse,
            CheckpointTaskRequest, UpdateTaskRequest, StartRequest, StartResponse, WaitRequest,
            WaitResponse, StatsRequest, StatsResponse, ConnectRequest, ConnectResponse,
            ShutdownRequest, PauseRequest, ResumeRequest,
        )
    };
}

#[test]
fn every_v2_message_round_trips() {
    let results: Vec<(&str, Result<(), String>)> = v2_messages()
        .into_iter()
        .map(|(name, _, result)| (name, result))
        .collect();
    let failures = support::failures(&results);
    assert!(failures.is_empty(), "round trip failed:\n{failures}");
    assert_eq!(results.len(), 26, "containerd.task.v2 has 26 messages");
    // The type list of every_v2_message! matches the table too.
    let failures = support::failures(&every_v2_message!(shim_proto::task_v2));
    assert!(failures.is_empty(), "re-encoding failed:\n{failures}");
}

#[test]
fn v3_messages_decode_v2_bytes_and_reencode_them_identically() {
    let results = every_v2_message!(shim_proto::task_v3);
    let failures = support::failures(&results);
    assert!(failures.is_empty(), "v2 bytes as v3 failed:\n{failures}");
    assert_eq!(results.len(), 26);
}

#[test]
fn map_and_message_fields_round_trip() {
    let results = table![
        UpdateTaskRequest {
            id: s("c1"),
            resources: None,
            // One entry per map: prost writes a HashMap in its (random) iteration order.
            annotations: HashMap::from([(s("a"), s(""))]),
        },
        StateResponse {
            status: Status::Pausing as i32,
            exited_at: Some(Timestamp::default()),
            ..Default::default()
        },
    ];
    let failures = support::failures(&results);
    assert!(failures.is_empty(), "round trip failed:\n{failures}");
}

const METHODS: [&str; 17] = [
    "State",
    "Create",
    "Start",
    "Delete",
    "Pids",
    "Pause",
    "Resume",
    "Checkpoint",
    "Kill",
    "Exec",
    "ResizePty",
    "CloseIO",
    "Update",
    "Wait",
    "Stats",
    "Connect",
    "Shutdown",
];

fn paths(service: &str) -> Vec<String> {
    let mut paths: Vec<String> = METHODS.iter().map(|m| format!("/{service}/{m}")).collect();
    paths.sort_unstable();
    paths
}

fn sorted_keys<V>(methods: &HashMap<String, V>) -> Vec<String> {
    let mut keys: Vec<String> = methods.keys().cloned().collect();
    keys.sort_unstable();
    keys
}

struct NoTask;
impl Task for NoTask {}
impl task_v3::Task for NoTask {}

#[test]
fn task_servers_register_all_seventeen_go_method_paths() {
    let v2 = create_task(Arc::new(NoTask));
    assert_eq!(sorted_keys(&v2), paths("containerd.task.v2.Task"));
    let v3 = task_v3::create_task(Arc::new(NoTask));
    assert_eq!(sorted_keys(&v3), paths("containerd.task.v3.Task"));
}

/// A ttrpc server for `methods` on a socket in a fresh temp dir; shut down on drop.
struct Served {
    server: Option<ttrpc::Server>,
    address: String,
    _dir: TempDir,
}

impl Served {
    fn start(
        tag: &str,
        methods: HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>>,
    ) -> Served {
        let dir = TempDir::new(tag);
        let address = format!("unix://{}", dir.path().join("ttrpc.sock").display());
        let mut server = ttrpc::Server::new()
            .bind(&address)
            .unwrap()
            .register_service(methods);
        server.start().unwrap();
        Served {
            server: Some(server),
            address,
            _dir: dir,
        }
    }

    fn client(&self) -> ttrpc::Client {
        ttrpc::Client::connect(&self.address).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

/// Calls every method of the generated client against a server whose handlers are the trait's
/// defaults. A default handler answers NOT_FOUND "<path> is not supported", while a path the
/// server does not know gets INVALID_ARGUMENT "<path> does not exist"; so each answer names the
/// exact path the client sent, and it must be `/<service>/<Method>`.
macro_rules! client_paths {
    ($client:expr, $module:ident, $service:literal;
     $($method:ident $req:ident $name:literal),* $(,)?) => {{
        let client = &$client;
        let mut seen: Vec<String> = Vec::new();
        $(
            let result = client.$method(ctx(), &shim_proto::$module::$req::default());
            match result {
                Err(ttrpc::Error::RpcStatus(status)) => {
                    assert_eq!(status.code(), ttrpc::Code::NOT_FOUND, "{}: {status:?}", $name);
                    let path = status
                        .message
                        .strip_suffix(" is not supported")
                        .unwrap_or_else(|| panic!("{}: unexpected message {status:?}", $name));
                    assert_eq!(path, concat!("/", $service, "/", $name));
                    seen.push(path.to_string());
                }
                other => panic!("{}: expected the default NOT_FOUND, got {other:?}", $name),
            }
        )*
        seen.sort_unstable();
        seen
    }};
}

macro_rules! every_client_path {
    ($client:expr, $module:ident, $service:literal) => {
        client_paths!(
            $client, $module, $service;
            state StateRequest "State",
            create CreateTaskRequest "Create",
            start StartRequest "Start",
            delete DeleteRequest "Delete",
            pids PidsRequest "Pids",
            pause PauseRequest "Pause",
            resume ResumeRequest "Resume",
            checkpoint CheckpointTaskRequest "Checkpoint",
            kill KillRequest "Kill",
            exec ExecProcessRequest "Exec",
            resize_pty ResizePtyRequest "ResizePty",
            close_io CloseIoRequest "CloseIO",
            update UpdateTaskRequest "Update",
            wait WaitRequest "Wait",
            stats StatsRequest "Stats",
            connect ConnectRequest "Connect",
            shutdown ShutdownRequest "Shutdown",
        )
    };
}

#[test]
fn v2_client_sends_every_call_to_its_go_method_path() {
    let served = Served::start("task-v2-paths", create_task(Arc::new(NoTask)));
    let client = TaskClient::new(served.client());
    let seen = every_client_path!(client, task_v2, "containerd.task.v2.Task");
    assert_eq!(seen, paths("containerd.task.v2.Task"));
}

#[test]
fn v3_client_sends_every_call_to_its_go_method_path() {
    let served = Served::start("task-v3-paths", task_v3::create_task(Arc::new(NoTask)));
    let client = task_v3::TaskClient::new(served.client());
    let seen = every_client_path!(client, task_v3, "containerd.task.v3.Task");
    assert_eq!(seen, paths("containerd.task.v3.Task"));
}

#[test]
fn v2_client_against_a_v3_only_server_names_the_missing_v2_path() {
    let served = Served::start("task-v2-on-v3", task_v3::create_task(Arc::new(NoTask)));
    let client = TaskClient::new(served.client());
    match client.connect(ctx(), &ConnectRequest::default()) {
        Err(ttrpc::Error::RpcStatus(status)) => assert_eq!(
            (status.code(), status.message.as_str()),
            (
                ttrpc::Code::INVALID_ARGUMENT,
                "/containerd.task.v2.Task/Connect does not exist"
            )
        ),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}
