//! Bad input never harms the shim: invalid ids and bundles, unknown Any types, malformed or
//! oversized frames, clients that vanish mid-call or belong to another user.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::*;
use prost::Message;
use shim_proto::protobuf::{Any, Empty};
use shim_proto::shim::{
    CreateTaskRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ShimInfoResponse,
    StartRequest, StateRequest, WaitRequest,
};

const SERVICE: &str = "containerd.runtime.linux.shim.v1.Shim";

fn frame(stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(10 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&stream_id.to_be_bytes());
    f.extend_from_slice(&[1, 0]); // request, no flags
    f.extend_from_slice(payload);
    f
}

fn request(stream_id: u32, method: &str, payload: Vec<u8>) -> Vec<u8> {
    let req = ttrpc::Request {
        service: SERVICE.into(),
        method: method.into(),
        payload,
        ..Default::default()
    };
    frame(stream_id, &req.encode_to_vec())
}

/// Read one response frame: (stream id, response).
fn read_response(sock: &mut UnixStream) -> (u32, ttrpc::Response) {
    let mut header = [0u8; 10];
    sock.read_exact(&mut header).expect("no response frame");
    let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let stream = u32::from_be_bytes(header[4..8].try_into().unwrap());
    assert_eq!(header[8], 2, "not a response frame");
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).unwrap();
    (stream, ttrpc::Response::decode(body.as_slice()).unwrap())
}

fn code(r: &ttrpc::Response) -> i32 {
    r.status.as_ref().map_or(0, |s| s.code)
}

fn raw(shim: &ShimUnderTest) -> UnixStream {
    let s = UnixStream::connect(&shim.socket).unwrap();
    s.set_read_timeout(Some(RPC_TIMEOUT)).unwrap();
    s
}

fn invalid_ids_are_invalid_argument_and_create_nothing() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    for id in ["a/b", "..", "a\0b", &"x".repeat(1100), ""] {
        let req = CreateTaskRequest {
            id: id.to_string(),
            bundle: shim.bundle.display().to_string(),
            ..Default::default()
        };
        let (code, msg) = status_of(client.create(ctx(), &req));
        assert_eq!(code, 3, "id {id:?}: {msg}");
    }
    assert!(
        shim.runc_list().is_empty(),
        "runc created something: {:?}",
        shim.runc_list()
    );
    // The shim is still good for a valid create.
    shim.create_plain(&client);
}

fn a_huge_id_is_refused_by_every_method_without_being_echoed() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let mut sock = raw(&shim);
    let huge = "x".repeat(1 << 20);
    let calls: Vec<(&str, Vec<u8>)> = vec![
        ("State", StateRequest { id: huge.clone() }.encode_to_vec()),
        ("Wait", WaitRequest { id: huge.clone() }.encode_to_vec()),
        ("Start", StartRequest { id: huge.clone() }.encode_to_vec()),
        (
            "Kill",
            KillRequest {
                id: huge.clone(),
                signal: 9,
                all: false,
            }
            .encode_to_vec(),
        ),
        (
            "DeleteProcess",
            DeleteProcessRequest { id: huge.clone() }.encode_to_vec(),
        ),
        (
            "Exec",
            ExecProcessRequest {
                id: huge.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    for (i, (method, payload)) in calls.into_iter().enumerate() {
        let stream = 2 * i as u32 + 1;
        sock.write_all(&request(stream, method, payload)).unwrap();
        let (got, resp) = read_response(&mut sock);
        let status = resp.status.unwrap_or_default();
        // The message is not printed: before the fix it is the whole 1 MiB id.
        assert_eq!(
            (got, status.code),
            (stream, 3),
            "{method}: a {}-byte message",
            status.message.len()
        );
        assert!(
            status.message.len() < 300,
            "{method} echoed {} bytes",
            status.message.len()
        );
    }
}

fn relative_or_missing_bundles_are_invalid_argument() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    for bundle in ["bundle", "", "/nonexistent/shim-it-bundle"] {
        let req = CreateTaskRequest {
            id: shim.id.clone(),
            bundle: bundle.into(),
            ..Default::default()
        };
        let (code, msg) = status_of(client.create(ctx(), &req));
        assert_eq!(code, 3, "bundle {bundle:?}: {msg}");
    }
    assert!(shim.runc_list().is_empty());
}

fn unknown_any_type_urls_are_invalid_argument() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    let bogus = Any {
        type_url: "example.com/Bogus".into(),
        value: vec![1, 2, 3],
    };
    let req = CreateTaskRequest {
        id: shim.id.clone(),
        bundle: shim.bundle.display().to_string(),
        options: Some(bogus.clone()),
        ..Default::default()
    };
    let (code, msg) = status_of(client.create(ctx(), &req));
    assert_eq!(code, 3);
    assert!(msg.contains("example.com/Bogus"), "{msg}");
    assert!(shim.runc_list().is_empty());

    shim.create_plain(&client);
    let exec = ExecProcessRequest {
        id: "e1".into(),
        spec: Some(bogus),
        ..Default::default()
    };
    assert_eq!(status_of(client.exec(ctx(), &exec)).0, 3);
}

fn malformed_requests_get_an_answer_and_the_connection_survives() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let mut sock = raw(&shim);

    // A valid ttrpc request whose State payload is not a StateRequest.
    sock.write_all(&request(1, "State", vec![0xff, 0xff, 0xff]))
        .unwrap();
    let (stream, resp) = read_response(&mut sock);
    assert_eq!((stream, code(&resp)), (1, 3), "{resp:?}");

    // A frame that is not even a ttrpc request.
    sock.write_all(&frame(3, &[0xff, 0xff])).unwrap();
    let (stream, resp) = read_response(&mut sock);
    assert_eq!((stream, code(&resp)), (3, 3), "{resp:?}");

    // An unknown method: Unimplemented, as Go's ttrpc answers.
    sock.write_all(&request(5, "Nope", Vec::new())).unwrap();
    let (stream, resp) = read_response(&mut sock);
    assert_eq!((stream, code(&resp)), (5, 12), "{resp:?}");

    // The same connection still works.
    sock.write_all(&request(7, "ShimInfo", Empty {}.encode_to_vec()))
        .unwrap();
    let (stream, resp) = read_response(&mut sock);
    assert_eq!((stream, code(&resp)), (7, 0));
    assert_eq!(
        ShimInfoResponse::decode(resp.payload.as_slice())
            .unwrap()
            .shim_pid,
        shim.pid()
    );
}

fn even_stream_ids_are_invalid_argument_and_odd_ones_are_served() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let mut sock = raw(&shim);
    for stream in [0u32, 1, 2, 3] {
        sock.write_all(&request(stream, "ShimInfo", Empty {}.encode_to_vec()))
            .unwrap();
        let (got, resp) = read_response(&mut sock);
        assert_eq!(got, stream);
        if stream % 2 == 0 {
            let status = resp.status.unwrap_or_default();
            assert_eq!(
                (status.code, status.message.as_str()),
                (3, "StreamID must be odd for client initiated streams"),
                "stream {stream}"
            );
        } else {
            assert_eq!(code(&resp), 0, "stream {stream}: {resp:?}");
        }
    }
}

fn an_oversized_frame_is_refused_and_the_shim_stays_up() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let mut sock = raw(&shim);
    let big = vec![0u8; 5 << 20];
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The shim may close instead of reading it all: a write error is fine.
        let _ = writer.write_all(&frame(1, &big));
    });
    let mut header = [0u8; 10];
    if sock.read_exact(&mut header).is_ok() {
        let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        sock.read_exact(&mut body).unwrap();
        let resp = ttrpc::Response::decode(body.as_slice()).unwrap();
        assert_ne!(code(&resp), 0, "an oversized request must not succeed");
    }
    sender.join().unwrap();
    let info = shim.client().shim_info(ctx(), &Empty {}).unwrap();
    assert_eq!(info.shim_pid, shim.pid());
}

/// A `/proc/<pid>/status` size (VmRSS, VmHWM: the peak RSS) in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Pipeline 300 requests of about 1 MiB (built by `make`) on one connection, reading no reply
/// until every request is written or the shim says it stopped reading that connection; then
/// read the 300 replies (each must have `want_code`), or, if `leave`, hang up instead. Returns
/// the shim's RSS before, at its peak, and once that client has gone (KiB).
fn pipeline_unread(
    method: &'static str,
    want_code: i32,
    make: fn(&str) -> Vec<u8>,
    leave: bool,
) -> (u64, u64, u64) {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let pid = shim.pid();
    shim.client().shim_info(ctx(), &Empty {}).unwrap();
    let base = vm_kib(pid, "VmRSS");
    let mut sock = raw(&shim);
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let payload = make(&"x".repeat(1 << 20));
        for i in 0..300u32 {
            // Once the test hangs up, the rest cannot be written: that is expected.
            if writer
                .write_all(&request(2 * i + 1, method, payload.clone()))
                .is_err()
            {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    while !sender.is_finished()
        && !shim.wait_log(
            "connection paused: its replies are not read",
            std::time::Duration::from_millis(50),
        )
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer neither finished nor was paused"
        );
    }
    let peak = vm_kib(pid, "VmHWM");
    if leave {
        sock.shutdown(std::net::Shutdown::Both).unwrap();
    } else {
        for _ in 0..300 {
            let (_, resp) = read_response(&mut sock);
            assert_eq!(code(&resp), want_code, "{method}");
        }
    }
    sender.join().unwrap();
    drop(sock);
    // A new connection is accepted only after the loop saw the old one end (it handles
    // connections before the listener, and the old end came first).
    shim.client().shim_info(ctx(), &Empty {}).unwrap();
    let after = vm_kib(pid, "VmRSS");
    eprintln!(
        "{method} (leave: {leave}): shim RSS {base} KiB before, {peak} KiB peak, {after} KiB after"
    );
    (base, peak, after)
}

fn a_client_pipelining_huge_requests_without_reading_cannot_grow_the_shim() {
    // Replies as big as the requests: Create names the options type it refuses.
    let bogus_create = |url: &str| {
        CreateTaskRequest {
            id: "c1".into(),
            options: Some(Any {
                type_url: url.into(),
                value: Vec::new(),
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    // Small replies: the id is refused without being echoed.
    let huge_state = |id: &str| StateRequest { id: id.into() }.encode_to_vec();
    for (method, want, make, leave) in [
        ("Create", 3, bogus_create as fn(&str) -> Vec<u8>, false),
        ("Create", 3, bogus_create, true),
        ("State", 3, huge_state, false),
    ] {
        let (base, peak, after) = pipeline_unread(method, want, make, leave);
        assert!(
            peak < base + 32 * 1024,
            "{method}: 300 MiB of pipelined requests took the shim from {base} KiB to {peak} KiB"
        );
        assert!(
            after < base + 8 * 1024,
            "{method}: the shim still holds {after} KiB (from {base} KiB) once the client left"
        );
    }
}

/// A raw connection with a Wait for the init in flight: registered, since a later call on the
/// same connection (ShimInfo) has been answered. Dropping it hangs up mid-Wait.
fn wait_in_flight(shim: &ShimUnderTest) -> UnixStream {
    let mut sock = raw(shim);
    let wait = WaitRequest {
        id: shim.id.clone(),
    };
    sock.write_all(&request(1, "Wait", wait.encode_to_vec()))
        .unwrap();
    sock.write_all(&request(3, "ShimInfo", Empty {}.encode_to_vec()))
        .unwrap();
    assert_eq!(read_response(&mut sock).0, 3);
    sock
}

fn a_client_that_disconnects_mid_wait_harms_nothing() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    drop(wait_in_flight(&shim));
    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), shim_proto::types::Status::Running);
    kill_process(&client, &shim.id, 9).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
    client.shim_info(ctx(), &Empty {}).unwrap();
}

fn abandoned_waits_keep_neither_threads_nor_sockets_once_their_clients_hang_up() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", shim.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    for _ in 0..10 {
        drop(wait_in_flight(&shim));
    }
    // The shim notices each hang-up on its own time; nothing tells us when, so re-check (bounded).
    let deadline = std::time::Instant::now() + PATIENCE;
    while fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        fds() <= before,
        "sockets of gone clients stay open: {} > {before}",
        fds()
    );
    // A Wait holds no thread: ten of them leave the shim within its idle thread count + workers.
    let threads = std::fs::read_dir(format!("/proc/{}/task", shim.pid()))
        .unwrap()
        .count();
    assert!(threads < 20, "{threads} threads after 10 abandoned Waits");
    // And the process still reports its exit to a caller that stays.
    kill_process(&client, &shim.id, 9).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
}

/// Threads of process `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn ten_thousand_waits_from_connections_closed_at_once_cost_tens_of_threads_not_thousands() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let pid = shim.pid();
    let idle = threads(pid);
    // Sample the thread count from before the storm until the shim has run every job of it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(threads(pid));
                std::thread::yield_now();
            }
            peak
        })
    };
    let wait = request(
        1,
        "Wait",
        WaitRequest {
            id: shim.id.clone(),
        }
        .encode_to_vec(),
    );
    let mut socks = Vec::new();
    for _ in 0..100 {
        let mut sock = raw(&shim);
        let mut batch = Vec::new();
        for i in 0..100u32 {
            let mut frame = wait.clone();
            frame[4..8].copy_from_slice(&(2 * i + 1).to_be_bytes());
            batch.extend(frame);
        }
        sock.write_all(&batch).unwrap();
        socks.push(sock);
    }
    drop(socks);
    // Jobs run in order: once a later call is answered, every Wait's job has started.
    shim.client().shim_info(ctx(), &Empty {}).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    eprintln!("shim threads: {idle} idle, {peak} at most during 10000 Waits");
    // At most 32 handler workers, and a few short-lived threads of the shim's own besides.
    assert!(
        peak <= idle + 32 + 8,
        "{peak} threads for 10000 Waits (idle: {idle}, handler workers at most 32)"
    );
    // Every Wait was abandoned; the shim still serves and reports the exit.
    kill_process(&client, &shim.id, 9).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
}

fn a_shim_out_of_file_descriptors_still_serves_a_new_client_state_kill_and_wait() {
    // 64 fds and no more (soft = hard: raising the soft limit cannot help).
    const LIMIT: usize = 64;
    let shim =
        ShimUnderTest::start_fd_limited(&["sleep", "1000"], None, LIMIT as u64, LIMIT as u64);
    // runc's default spec asks 1024 fds for the container, which a 64-hard runc cannot grant.
    let config = shim.bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    spec["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": LIMIT, "soft": LIMIT}]);
    std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    // The limit bounds fd numbers: count those under it (an fd inherited above it is no slot).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", shim.pid()))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
            .filter(|fd| *fd < LIMIT)
            .count()
    };
    // Idle clients, each served once, until the shim holds every fd it may.
    let mut idle = Vec::new();
    while fds() < LIMIT {
        let mut sock = raw(&shim);
        sock.write_all(&request(1, "ShimInfo", Empty {}.encode_to_vec()))
            .unwrap();
        assert_eq!(code(&read_response(&mut sock).1), 0);
        idle.push(sock);
        assert!(idle.len() < LIMIT, "{} fds open", fds());
    }
    // One more client: containerd coming to stop the container.
    let mut sock = raw(&shim);
    let state = StateRequest {
        id: shim.id.clone(),
    };
    sock.write_all(&request(1, "State", state.encode_to_vec()))
        .unwrap();
    let (_, resp) = read_response(&mut sock);
    assert_eq!(code(&resp), 0, "{resp:?}");
    let st = shim_proto::shim::StateResponse::decode(resp.payload.as_slice()).unwrap();
    assert_eq!(st.status(), shim_proto::types::Status::Running);
    let kill = KillRequest {
        id: shim.id.clone(),
        signal: 9,
        all: false,
    };
    sock.write_all(&request(3, "Kill", kill.encode_to_vec()))
        .unwrap();
    let (_, resp) = read_response(&mut sock);
    assert_eq!(code(&resp), 0, "{resp:?}");
    let wait = WaitRequest {
        id: shim.id.clone(),
    };
    sock.write_all(&request(5, "Wait", wait.encode_to_vec()))
        .unwrap();
    let (_, resp) = read_response(&mut sock);
    assert_eq!(code(&resp), 0, "{resp:?}");
    let waited = shim_proto::shim::WaitResponse::decode(resp.payload.as_slice()).unwrap();
    assert_eq!(waited.exit_status, 137);
    assert!(
        shim.log_text().contains("out of file descriptors"),
        "{}",
        shim.log_text()
    );
    // Clients leaving give the shim its fds back: new clients are served as usual again.
    drop(idle);
    drop(sock);
    shim.client().shim_info(ctx(), &Empty {}).unwrap();
}

fn the_shim_raises_its_open_file_limit_and_its_children_start_with_the_original() {
    let dir = TempDir::new();
    let seen = dir.path().join("limits");
    // The publish binary is a child of the shim like runc and the loggers: it says what it got.
    let script = format!(
        "cat >/dev/null; ulimit -Sn > {seen}; ulimit -Hn >> {seen}",
        seen = seen.display()
    );
    let shim = ShimUnderTest::start_fd_limited(&["sh", "-c", "exit 3"], Some(&script), 100, 4096);
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 3);
    assert!(
        shim.wait_log("published event", PATIENCE),
        "the exit was never published:\n{}",
        shim.log_text()
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "100\n4096\n");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", shim.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let words: Vec<&str> = open_files.split_whitespace().collect();
    assert_eq!(words[3..5], ["4096", "4096"], "{open_files}");
}

/// Send ShimInfo to `socket` as user `uid` from a child process, which answers with its exit
/// code: 10 when the connection is closed without an answer, 11 when served, 12 when it cannot
/// connect. The child does this between fork and exec, with raw syscalls only, on data made
/// before the fork, and ends with `_exit`: it never runs the program it was given.
fn client_as(uid: u32, socket: &std::path::Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let frame = request(1, "ShimInfo", Empty {}.encode_to_vec());
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let timeout = libc::timeval {
        tv_sec: RPC_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    let mut cmd = std::process::Command::new("/bin/true");
    cmd.uid(uid).gid(uid);
    // SAFETY: after fork only async-signal-safe calls (socket, connect, setsockopt, send, read,
    // _exit) on memory owned by the closure; the child never returns to Rust code.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if fd < 0 || libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
                libc::_exit(12);
            }
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            libc::send(fd, frame.as_ptr().cast(), frame.len(), libc::MSG_NOSIGNAL);
            let mut buf = [0u8; 64];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::_exit(if n > 0 { 11 } else { 10 });
        });
    }
    cmd.status().unwrap().code()
}

fn a_connection_from_another_user_is_refused() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    // Let the other user reach the socket at all (the check under test is the peer credential one).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shim.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shim.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        client_as(0, &shim.socket),
        Some(11),
        "our own user must be served"
    );
    assert_eq!(
        client_as(65534, &shim.socket),
        Some(10),
        "another user's connection was served (11) or could not connect (12)"
    );
    // We are still served.
    shim.client().shim_info(ctx(), &Empty {}).unwrap();
}

fn main() {
    trials::run(trials::trials!(
        missing();
        invalid_ids_are_invalid_argument_and_create_nothing,
        a_huge_id_is_refused_by_every_method_without_being_echoed,
        relative_or_missing_bundles_are_invalid_argument,
        unknown_any_type_urls_are_invalid_argument,
        malformed_requests_get_an_answer_and_the_connection_survives,
        even_stream_ids_are_invalid_argument_and_odd_ones_are_served,
        an_oversized_frame_is_refused_and_the_shim_stays_up,
        a_client_pipelining_huge_requests_without_reading_cannot_grow_the_shim,
        a_client_that_disconnects_mid_wait_harms_nothing,
        abandoned_waits_keep_neither_threads_nor_sockets_once_their_clients_hang_up,
        ten_thousand_waits_from_connections_closed_at_once_cost_tens_of_threads_not_thousands,
        a_shim_out_of_file_descriptors_still_serves_a_new_client_state_kill_and_wait,
        the_shim_raises_its_open_file_limit_and_its_children_start_with_the_original,
        a_connection_from_another_user_is_refused,
    ));
}
