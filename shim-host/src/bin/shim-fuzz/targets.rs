//! What is fuzzed: the server's frame reader, ttrpc request decoding, every request message a
//! front decodes (the `requests!` table: runtime v1's Shim, task v2's and v3's Task), the runtime
//! options the v2 shim reads on stdin, and the helpers that quote client strings.

use prost::Message;
use shim_core::validate;
use shim_host::server::frames::{Incoming, Reader};
use shim_host::wire::{self, HEADER_LEN, MAX_PAYLOAD, TYPE_REQUEST, TYPE_RESPONSE};
use shim_proto::protobuf::{Any, Empty};
use shim_proto::runc::{CheckpointOptions, CreateOptions};
use shim_proto::runc_v1_options::{CheckpointOptions as V1CheckpointOptions, Options as V1Options};
use shim_proto::shim::{
    CheckpointTaskRequest, CloseIoRequest, CreateTaskRequest, DeleteProcessRequest,
    ExecProcessRequest, KillRequest, ListPidsRequest, ResizePtyRequest, StartRequest, StateRequest,
    UpdateTaskRequest, WaitRequest,
};
use shim_proto::type_url::{
    CHECKPOINT_OPTIONS, CREATE_OPTIONS, OCI_PROCESS, RUNC_V1_CHECKPOINT_OPTIONS, RUNC_V1_OPTIONS,
};
use shim_proto::{task_v2 as v2, task_v3 as v3};

use crate::engine::{fnv, Rng, Target};

/// Every target, run on every input.
pub const TARGETS: &[Target] = &[
    ("frames", frames),
    ("server-path", server_path),
    ("request-messages", request_messages),
    ("runtime-options-stdin", runtime_options_stdin),
    ("client-strings", client_strings),
];

/// One request message a front decodes: its service and method, and its decoder (which also
/// checks what the front reads inside it, e.g. the options Any).
pub struct Request {
    pub service: &'static str,
    pub method: &'static str,
    pub decode: fn(&[u8]) -> bool,
}

/// The request table, one line per message: `"Method" => Type` decodes the payload as `Type`
/// (and checks the round trip); `[check]` after it also runs `check` on the decoded message.
/// The task v2 and v3 Task services (the same messages in two packages) are blocks of the same
/// form, checked as the v2 front's dispatch checks them: ids within bounds (`ids`), then the
/// options (`containerd.runc.v1.Options`, `.CheckpointOptions`), exec spec and resources Anys.
macro_rules! requests {
    ($($service:literal { $($method:literal => $ty:ty $([$check:expr])?,)* })*) => {
        pub const REQUESTS: &[Request] = &[$($(Request {
            service: $service,
            method: $method,
            decode: |bytes| match decode::<$ty>(bytes) {
                Some(_m) => {
                    $($check(&_m);)?
                    true
                }
                None => false,
            },
        },)*)*];
    };
}

requests! {
    "containerd.runtime.linux.shim.v1.Shim" {
        "State" => StateRequest,
        "Create" => CreateTaskRequest [|m: &CreateTaskRequest| options::<CreateOptions>(&m.options, CREATE_OPTIONS)],
        "Start" => StartRequest,
        "Delete" => Empty,
        "DeleteProcess" => DeleteProcessRequest,
        "ListPids" => ListPidsRequest,
        "Pause" => Empty,
        "Resume" => Empty,
        "Checkpoint" => CheckpointTaskRequest [|m: &CheckpointTaskRequest| options::<CheckpointOptions>(&m.options, CHECKPOINT_OPTIONS)],
        "Kill" => KillRequest,
        "Exec" => ExecProcessRequest [|m: &ExecProcessRequest| spec(&m.spec)],
        "ResizePty" => ResizePtyRequest,
        "CloseIO" => CloseIoRequest,
        "ShimInfo" => Empty,
        "Update" => UpdateTaskRequest [|m: &UpdateTaskRequest| resources(&m.resources)],
        "Wait" => WaitRequest,
    }
    "containerd.task.v2.Task" {
        "State" => v2::StateRequest [|m: &v2::StateRequest| ids(&m.id, Some(&m.exec_id))],
        "Create" => v2::CreateTaskRequest [|m: &v2::CreateTaskRequest| { ids(&m.id, None); options::<V1Options>(&m.options, RUNC_V1_OPTIONS) }],
        "Start" => v2::StartRequest [|m: &v2::StartRequest| ids(&m.id, Some(&m.exec_id))],
        "Delete" => v2::DeleteRequest [|m: &v2::DeleteRequest| ids(&m.id, Some(&m.exec_id))],
        "Pids" => v2::PidsRequest [|m: &v2::PidsRequest| ids(&m.id, None)],
        "Pause" => v2::PauseRequest [|m: &v2::PauseRequest| ids(&m.id, None)],
        "Resume" => v2::ResumeRequest [|m: &v2::ResumeRequest| ids(&m.id, None)],
        "Checkpoint" => v2::CheckpointTaskRequest [|m: &v2::CheckpointTaskRequest| { ids(&m.id, None); options::<V1CheckpointOptions>(&m.options, RUNC_V1_CHECKPOINT_OPTIONS) }],
        "Kill" => v2::KillRequest [|m: &v2::KillRequest| ids(&m.id, Some(&m.exec_id))],
        "Exec" => v2::ExecProcessRequest [|m: &v2::ExecProcessRequest| { ids(&m.id, Some(&m.exec_id)); spec(&m.spec) }],
        "ResizePty" => v2::ResizePtyRequest [|m: &v2::ResizePtyRequest| ids(&m.id, Some(&m.exec_id))],
        "CloseIO" => v2::CloseIoRequest [|m: &v2::CloseIoRequest| ids(&m.id, Some(&m.exec_id))],
        "Update" => v2::UpdateTaskRequest [|m: &v2::UpdateTaskRequest| { ids(&m.id, None); resources(&m.resources) }],
        "Wait" => v2::WaitRequest [|m: &v2::WaitRequest| ids(&m.id, Some(&m.exec_id))],
        "Stats" => v2::StatsRequest [|m: &v2::StatsRequest| ids(&m.id, None)],
        "Connect" => v2::ConnectRequest [|m: &v2::ConnectRequest| ids(&m.id, None)],
        "Shutdown" => v2::ShutdownRequest [|m: &v2::ShutdownRequest| ids(&m.id, None)],
    }
    "containerd.task.v3.Task" {
        "State" => v3::StateRequest [|m: &v3::StateRequest| ids(&m.id, Some(&m.exec_id))],
        "Create" => v3::CreateTaskRequest [|m: &v3::CreateTaskRequest| { ids(&m.id, None); options::<V1Options>(&m.options, RUNC_V1_OPTIONS) }],
        "Start" => v3::StartRequest [|m: &v3::StartRequest| ids(&m.id, Some(&m.exec_id))],
        "Delete" => v3::DeleteRequest [|m: &v3::DeleteRequest| ids(&m.id, Some(&m.exec_id))],
        "Pids" => v3::PidsRequest [|m: &v3::PidsRequest| ids(&m.id, None)],
        "Pause" => v3::PauseRequest [|m: &v3::PauseRequest| ids(&m.id, None)],
        "Resume" => v3::ResumeRequest [|m: &v3::ResumeRequest| ids(&m.id, None)],
        "Checkpoint" => v3::CheckpointTaskRequest [|m: &v3::CheckpointTaskRequest| { ids(&m.id, None); options::<V1CheckpointOptions>(&m.options, RUNC_V1_CHECKPOINT_OPTIONS) }],
        "Kill" => v3::KillRequest [|m: &v3::KillRequest| ids(&m.id, Some(&m.exec_id))],
        "Exec" => v3::ExecProcessRequest [|m: &v3::ExecProcessRequest| { ids(&m.id, Some(&m.exec_id)); spec(&m.spec) }],
        "ResizePty" => v3::ResizePtyRequest [|m: &v3::ResizePtyRequest| ids(&m.id, Some(&m.exec_id))],
        "CloseIO" => v3::CloseIoRequest [|m: &v3::CloseIoRequest| ids(&m.id, Some(&m.exec_id))],
        "Update" => v3::UpdateTaskRequest [|m: &v3::UpdateTaskRequest| { ids(&m.id, None); resources(&m.resources) }],
        "Wait" => v3::WaitRequest [|m: &v3::WaitRequest| ids(&m.id, Some(&m.exec_id))],
        "Stats" => v3::StatsRequest [|m: &v3::StatsRequest| ids(&m.id, None)],
        "Connect" => v3::ConnectRequest [|m: &v3::ConnectRequest| ids(&m.id, None)],
        "Shutdown" => v3::ShutdownRequest [|m: &v3::ShutdownRequest| ids(&m.id, None)],
    }
}

/// Decode `bytes` as `M`; a message that decodes must encode and decode back to itself.
fn decode<M: Message + Default + PartialEq>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    match M::decode(m.encode_to_vec().as_slice()) {
        Ok(again) => assert!(again == m, "the re-encoded message decodes differently"),
        Err(e) => panic!("the re-encoded message does not decode: {e}"),
    }
    Some(m)
}

/// An options Any as every front reads it: decoded, or refused without quoting much of it.
fn options<M: Message + Default>(any: &Option<Any>, expected: &str) {
    if let Err(s) = shim_host::options::decode::<M>(any.as_ref(), expected) {
        assert!(s.message.len() < 300, "a {}-byte message", s.message.len());
    }
}

/// A task API request's ids as the v2 front's dispatch checks them before any handler: within
/// `validate::MAX_ID_BYTES`, refused with a short message.
fn ids(id: &str, exec_id: Option<&str>) {
    for (kind, id) in [("container", Some(id)), ("exec", exec_id)] {
        if let Some(Err(e)) = id.map(|id| validate::id_size(kind, id)) {
            assert!(
                e.to_string().len() < 300,
                "a {}-byte message",
                e.to_string().len()
            );
        }
    }
}

/// Exec's process spec: the OCI JSON Any as every front reads it.
fn spec(any: &Option<Any>) {
    if let Err(s) = shim_host::options::json(any.clone(), OCI_PROCESS, "spec") {
        assert!(s.message.len() < 300, "a {}-byte message", s.message.len());
    }
}

/// What the v2 shim reads on stdin (`start`, `-info`): an Any holding `containerd.runc.v1.Options`.
fn runtime_options_stdin(input: &[u8]) -> u64 {
    let Ok(any) = Any::decode(input) else {
        return 1;
    };
    match shim_host::options::decode::<V1Options>(Some(&any), RUNC_V1_OPTIONS) {
        Ok(_) => 2,
        Err(s) => {
            assert!(s.message.len() < 300, "a {}-byte message", s.message.len());
            4
        }
    }
}

/// Update's resources: the OCI JSON Any as every front reads it, and its JSON as shim-core
/// checks it (whatever the URL, so any bytes reach the check).
fn resources(any: &Option<Any>) {
    let url = shim_proto::type_url::OCI_LINUX_RESOURCES;
    if let Err(s) = shim_host::options::json(any.clone(), url, "resources") {
        assert!(s.message.len() < 300, "a {}-byte message", s.message.len());
    }
    if let Some(any) = any {
        let _ = validate::resources(&any.value);
    }
}

/// Bytes per push of the chunked run: small and varied, from a generator seeded by the input.
fn chunks(input: &[u8]) -> Vec<&[u8]> {
    let mut rng = Rng::new(fnv(input));
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let most = if rng.below(4) == 0 { 4096 } else { 24 };
        let n = (1 + rng.below(most)).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// The frame reader: whole or in pieces, the same frames come out; a request never exceeds the
/// size limit nor has an even stream id; no more than one frame is ever buffered.
fn frames(input: &[u8]) -> u64 {
    let mut whole = Reader::new();
    let mut at_once = Vec::new();
    whole.push(input, &mut at_once);
    let mut pieces = Reader::new();
    let mut piecewise = Vec::new();
    for chunk in chunks(input) {
        pieces.push(chunk, &mut piecewise);
        assert!(
            pieces.buffered() <= HEADER_LEN + MAX_PAYLOAD + chunk.len(),
            "{} bytes buffered",
            pieces.buffered()
        );
    }
    assert!(at_once == piecewise, "frames differ when read in pieces");
    assert_eq!(whole.buffered(), pieces.buffered());
    assert_eq!(whole.skipping(), pieces.skipping());
    // The rest of a refused frame, then a valid one: that one comes out next, whole. (Skips of
    // up to 4 GiB take the same path; the short ones keep each input quick.)
    if whole.skipping() > 0 && whole.skipping() <= 2 * MAX_PAYLOAD {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut left = whole.skipping();
        let mut after = Vec::new();
        while left > 0 {
            let n = left.min(ZEROS.len());
            whole.push(&ZEROS[..n], &mut after);
            left -= n;
        }
        assert!(after.is_empty(), "a frame came out of a skipped payload");
        whole.push(&wire::frame(7, TYPE_REQUEST, b"next"), &mut after);
        assert!(
            after
                == [Incoming::Request {
                    stream_id: 7,
                    payload: b"next".to_vec()
                }],
            "the frame after a skipped payload: {after:?}"
        );
    }
    let mut features = match whole.buffered() {
        0 => 0,
        n if n < HEADER_LEN => 1,
        _ => 2,
    };
    let mut requests = 0;
    for frame in &at_once {
        match frame {
            Incoming::Request { stream_id, payload } => {
                assert!(stream_id % 2 == 1, "request on even stream {stream_id}");
                assert!(payload.len() <= MAX_PAYLOAD);
                requests += 1;
                features |= if payload.is_empty() { 1 << 3 } else { 1 << 4 };
            }
            Incoming::Refused { status, .. } => {
                assert!(status.code != 0, "a refusal with status OK");
                features |= 1 << (5 + (status.code as u32 % 16));
            }
        }
    }
    features | 1 << (21 + requests.min(8))
}

/// What the server does with a connection's bytes: frames, then each request decoded and its
/// payload decoded as the message its method takes.
fn server_path(input: &[u8]) -> u64 {
    let mut reader = Reader::new();
    let mut out = Vec::new();
    reader.push(input, &mut out);
    let mut features = 0;
    for frame in out {
        if let Incoming::Request { payload, .. } = frame {
            features |= request(&payload);
        }
    }
    features
}

/// The input as one ttrpc request, and as each request message.
fn request_messages(input: &[u8]) -> u64 {
    let mut features = request(input);
    for (i, r) in REQUESTS.iter().enumerate() {
        if (r.decode)(input) {
            features |= 1 << bit(i, 40);
        }
    }
    features
}

/// Bit `offset + i`, folded into the 64 available.
fn bit(i: usize, offset: usize) -> u32 {
    ((offset + i) % 64) as u32
}

/// Decode a ttrpc request and route its payload by service and method, as the server does; the
/// path taken as feature bits.
fn request(bytes: &[u8]) -> u64 {
    let Ok(req) = ttrpc::Request::decode(bytes) else {
        return 1;
    };
    let _ = shim_host::status::unimplemented("method", &req.method);
    match REQUESTS
        .iter()
        .position(|r| r.service == req.service && r.method == req.method)
    {
        Some(i) if (REQUESTS[i].decode)(&req.payload) => 1 << bit(i, 2),
        Some(i) => 1 << bit(i, 18),
        None => 2,
    }
}

/// The helpers that validate and quote what clients send: never more than a short quote.
fn client_strings(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let shown = validate::shown(&text);
    assert!(
        shown.chars().count() <= 65,
        "quoted {} chars",
        shown.chars().count()
    );
    let id_ok = validate::id("exec", &text).is_ok();
    let size_ok = validate::id_size("process", &text).is_ok();
    if let Err(e) = validate::id_size("process", &text) {
        assert!(
            e.to_string().len() < 300,
            "a {}-byte message",
            e.to_string().len()
        );
    }
    let status = shim_host::status::unimplemented("service", &text);
    assert!(status.message.len() < 300);
    u64::from(id_ok)
        | u64::from(size_ok) << 1
        | u64::from(shown.len() < text.len()) << 2
        | u64::from(!text.is_ascii()) << 3
}

/// The corpus to start from: a valid frame per request message (empty and with typical
/// contents), and the frame shapes the reader must handle.
pub fn seeds() -> Vec<Vec<u8>> {
    let frame = |stream: u32, service: &str, method: &str, payload: Vec<u8>| {
        let req = ttrpc::Request {
            service: service.into(),
            method: method.into(),
            payload,
            timeout_nano: 10_000_000_000,
            metadata: Vec::new(),
        };
        wire::frame(stream, TYPE_REQUEST, &req.encode_to_vec())
    };
    let v1 = "containerd.runtime.linux.shim.v1.Shim";
    let mut seeds: Vec<Vec<u8>> = REQUESTS
        .iter()
        .map(|r| frame(1, r.service, r.method, Vec::new()))
        .collect();
    let json = |type_url: &str, json: &str| Any {
        type_url: type_url.into(),
        value: json.as_bytes().to_vec(),
    };
    let examples: Vec<(&str, Vec<u8>)> = vec![
        ("State", StateRequest { id: "c1".into() }.encode_to_vec()),
        (
            "Create",
            CreateTaskRequest {
                id: "c1".into(),
                bundle: "/run/bundle".into(),
                stdout: "/run/fifo".into(),
                options: Some(shim_proto::any::pack(
                    CREATE_OPTIONS,
                    &CreateOptions {
                        io_uid: 1000,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "Exec",
            ExecProcessRequest {
                id: "e1".into(),
                spec: Some(json(
                    shim_proto::type_url::OCI_PROCESS,
                    r#"{"args":["sh"],"cwd":"/"}"#,
                )),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "Kill",
            KillRequest {
                id: "c1".into(),
                signal: 9,
                all: true,
            }
            .encode_to_vec(),
        ),
        (
            "Update",
            UpdateTaskRequest {
                resources: Some(json(
                    shim_proto::type_url::OCI_LINUX_RESOURCES,
                    r#"{"memory":{"limit":1048576}}"#,
                )),
            }
            .encode_to_vec(),
        ),
        (
            "Checkpoint",
            CheckpointTaskRequest {
                path: "/tmp/cp".into(),
                options: Some(shim_proto::any::pack(
                    CHECKPOINT_OPTIONS,
                    &CheckpointOptions {
                        exit: true,
                        ..Default::default()
                    },
                )),
            }
            .encode_to_vec(),
        ),
        ("Wait", WaitRequest { id: "e1".into() }.encode_to_vec()),
    ];
    let mut stream = Vec::new();
    for (i, (method, payload)) in examples.into_iter().enumerate() {
        let f = frame(2 * i as u32 + 3, v1, method, payload);
        stream.extend_from_slice(&f);
        seeds.push(f);
    }
    seeds.push(stream);
    // Task v2 and v3: the messages whose Anys the v2 front reads, with typical contents; and the
    // runtime options as `start` and `-info` read them on stdin.
    let runc_v1 = shim_proto::any::pack(
        RUNC_V1_OPTIONS,
        &V1Options {
            binary_name: "runc".into(),
            root: "/run/containerd/runc".into(),
            systemd_cgroup: true,
            ..Default::default()
        },
    );
    for service in ["containerd.task.v2.Task", "containerd.task.v3.Task"] {
        let v2_examples: Vec<(&str, Vec<u8>)> = vec![
            (
                "Create",
                v2::CreateTaskRequest {
                    id: "c1".into(),
                    bundle: "/run/bundle".into(),
                    options: Some(runc_v1.clone()),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            (
                "Exec",
                v2::ExecProcessRequest {
                    id: "c1".into(),
                    exec_id: "e1".into(),
                    spec: Some(json(OCI_PROCESS, r#"{"args":["sh"],"cwd":"/"}"#)),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            (
                "Update",
                v2::UpdateTaskRequest {
                    id: "c1".into(),
                    resources: Some(json(
                        shim_proto::type_url::OCI_LINUX_RESOURCES,
                        r#"{"pids":{"limit":64}}"#,
                    )),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            (
                "Checkpoint",
                v2::CheckpointTaskRequest {
                    id: "c1".into(),
                    path: "/tmp/cp".into(),
                    options: Some(shim_proto::any::pack(
                        RUNC_V1_CHECKPOINT_OPTIONS,
                        &V1CheckpointOptions {
                            exit: true,
                            ..Default::default()
                        },
                    )),
                }
                .encode_to_vec(),
            ),
            (
                "Kill",
                v2::KillRequest {
                    id: "c1".into(),
                    exec_id: "e1".into(),
                    signal: 9,
                    all: false,
                }
                .encode_to_vec(),
            ),
        ];
        for (i, (method, payload)) in v2_examples.into_iter().enumerate() {
            seeds.push(frame(2 * i as u32 + 1, service, method, payload));
        }
    }
    seeds.push(runc_v1.encode_to_vec());
    seeds.push(frame(2, v1, "State", Vec::new())); // even stream id
    seeds.push(frame(1, "no.such.Service", "Nope", Vec::new()));
    seeds.push(wire::frame(1, TYPE_REQUEST, &[])); // zero-length payload
    seeds.push(wire::frame(3, TYPE_RESPONSE, b"stray response"));
    seeds.push(wire::frame(5, 3, b"a data frame"));
    let mut oversized = wire::frame(7, TYPE_REQUEST, &[]);
    oversized[..4].copy_from_slice(&((MAX_PAYLOAD + 1) as u32).to_be_bytes());
    oversized.extend_from_slice(&[0xaa; 64]);
    oversized.extend(frame(9, v1, "ShimInfo", Vec::new()));
    seeds.push(oversized);
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_passes_every_target() {
        for seed in seeds() {
            for (_, target) in TARGETS {
                target(&seed);
            }
        }
    }

    #[test]
    fn every_method_of_each_service_is_in_the_table_once() {
        for (service, rpcs) in [
            ("containerd.runtime.linux.shim.v1.Shim", 16),
            ("containerd.task.v2.Task", 17),
            ("containerd.task.v3.Task", 17),
        ] {
            let mut methods: Vec<&str> = REQUESTS
                .iter()
                .filter(|r| r.service == service)
                .map(|r| r.method)
                .collect();
            assert_eq!(methods.len(), rpcs, "{service}");
            methods.sort_unstable();
            methods.dedup();
            assert_eq!(methods.len(), rpcs, "{service} has a method twice");
        }
        assert_eq!(REQUESTS.len(), 16 + 17 + 17);
    }
}
