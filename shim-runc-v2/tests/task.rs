//! The Task service against the real daemon and runc: a container's whole life, an exec, the
//! events containerd receives and their order, and Shutdown.

mod common;

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use common::{call, daemon_socket, text, Events, World};
use prost::Message;
use shim_host::wire::CallError;
use shim_proto::protobuf::{Any, Empty};
use shim_proto::runc_v1_options::Options;
use shim_proto::task_v2::*;
use shim_proto::type_url::{OCI_PROCESS, RUNC_V1_OPTIONS};

/// Status numbers of `containerd.v1.types.Status`.
const CREATED: i32 = 1;
const RUNNING: i32 = 2;
const STOPPED: i32 = 3;

fn exec_spec(args: &[&str]) -> Any {
    let spec = serde_json::json!({
        "args": args, "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
    });
    Any {
        type_url: OCI_PROCESS.into(),
        value: spec.to_string().into_bytes(),
    }
}

/// Wait for process `exec_id` of `id` (empty: the init) to exit: its Wait reply.
fn wait(socket: &std::path::Path, id: &str, exec_id: &str) -> WaitResponse {
    let req = WaitRequest {
        id: id.into(),
        exec_id: exec_id.into(),
    };
    call(socket, "Wait", &req).unwrap()
}

/// Delete process `exec_id` of `id` (empty: the container): its Delete reply.
fn delete(socket: &std::path::Path, id: &str, exec_id: &str) -> DeleteResponse {
    let req = DeleteRequest {
        id: id.into(),
        exec_id: exec_id.into(),
    };
    call(socket, "Delete", &req).unwrap()
}

/// SIGKILL the init of `id`, wait for it and delete the container: the Wait and Delete replies.
fn kill_wait_delete(socket: &std::path::Path, id: &str) -> (WaitResponse, DeleteResponse) {
    let kill = KillRequest {
        id: id.into(),
        exec_id: String::new(),
        signal: 9,
        all: false,
    };
    let _: Empty = call(socket, "Kill", &kill).unwrap();
    (wait(socket, id, ""), delete(socket, id, ""))
}

/// The names of process `pid`'s threads.
fn thread_names(pid: i32) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect();
    names.sort();
    names
}

fn code<T: std::fmt::Debug>(r: Result<T, CallError>) -> i32 {
    match r {
        Err(CallError::Status(code, _)) => code,
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn a_container_lives_and_dies_through_the_task_api_and_containerd_hears_of_it_in_order() {
    let w = World::new("life");
    let events = Events::serve(&w);
    let id = "c1";
    let b = w.bundle(id, &[]);
    common::busybox_bundle(&b, id, &["sleep", "600"]);
    let out = w.start(&b, id, Some("2"));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (daemon, socket) = daemon_socket(&w, v["address"].as_str().unwrap());

    let c: ConnectResponse = call(&socket, "Connect", &ConnectRequest { id: id.into() }).unwrap();
    assert_eq!((c.shim_pid, c.task_pid), (daemon as u32, 0));

    let root = w.dir.join("runc-root");
    let options = shim_proto::any::pack(
        RUNC_V1_OPTIONS,
        &Options {
            root: root.to_string_lossy().into_owned(),
            ..Default::default()
        },
    );
    let created: CreateTaskResponse = call(
        &socket,
        "Create",
        &CreateTaskRequest {
            id: id.into(),
            bundle: b.to_string_lossy().into_owned(),
            options: Some(options),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(created.pid > 0);
    // What `delete` reads back if the daemon dies.
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("options.json")).unwrap()).unwrap();
    assert_eq!(written["root"], root.to_string_lossy().as_ref());
    assert!(
        root.join(common::NAMESPACE).join(id).exists(),
        "runc state under the task's root"
    );

    let state = |exec_id: &str| -> StateResponse {
        call(
            &socket,
            "State",
            &StateRequest {
                id: id.into(),
                exec_id: exec_id.into(),
            },
        )
        .unwrap()
    };
    assert_eq!(state("").status, CREATED);
    let started: StartResponse = call(
        &socket,
        "Start",
        &StartRequest {
            id: id.into(),
            exec_id: String::new(),
        },
    )
    .unwrap();
    assert_eq!(started.pid, created.pid);
    let s = state("");
    assert_eq!((s.status, s.pid, s.id.as_str()), (RUNNING, created.pid, id));
    let c: ConnectResponse = call(&socket, "Connect", &ConnectRequest { id: id.into() }).unwrap();
    assert_eq!(c.task_pid, created.pid);

    // An exec that exits 3.
    let _: Empty = call(
        &socket,
        "Exec",
        &ExecProcessRequest {
            id: id.into(),
            exec_id: "e1".into(),
            spec: Some(exec_spec(&["sh", "-c", "exit 3"])),
            ..Default::default()
        },
    )
    .unwrap();
    let exec_pid = call::<_, StartResponse>(
        &socket,
        "Start",
        &StartRequest {
            id: id.into(),
            exec_id: "e1".into(),
        },
    )
    .unwrap()
    .pid;
    assert_eq!(wait(&socket, id, "e1").exit_status, 3);
    let s = state("e1");
    assert_eq!(
        (s.status, s.exit_status, s.exec_id.as_str()),
        (STOPPED, 3, "e1")
    );
    let d = delete(&socket, id, "e1");
    assert_eq!((d.pid, d.exit_status), (exec_pid, 3));

    // This host is cgroup v1 (hybrid): Go's runc shim answers with v1 Metrics here.
    let stats: StatsResponse = call(&socket, "Stats", &StatsRequest { id: id.into() }).unwrap();
    let any = stats.stats.expect("stats");
    assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
    let m = shim_proto::cgroups_v1::Metrics::decode(any.value.as_slice()).unwrap();
    assert!(m.pids.expect("pids").current >= 1);
    assert!(m.memory.expect("memory").usage.expect("usage").usage > 0);

    let pids: PidsResponse = call(&socket, "Pids", &PidsRequest { id: id.into() }).unwrap();
    assert!(pids
        .processes
        .iter()
        .any(|p| p.pid == created.pid && p.info.is_none()));

    // Shutdown with a container left does nothing.
    let _: Empty = call(
        &socket,
        "Shutdown",
        &ShutdownRequest {
            id: id.into(),
            now: false,
        },
    )
    .unwrap();
    assert_eq!(w.daemons(), vec![daemon]);

    let (waited, d) = kill_wait_delete(&socket, id);
    assert_eq!(waited.exit_status, 137);
    assert_eq!((d.pid, d.exit_status), (created.pid, 137));
    assert_eq!(
        code(call::<_, StateResponse>(
            &socket,
            "State",
            &StateRequest {
                id: id.into(),
                exec_id: String::new()
            }
        )),
        5
    );

    let topics = events.wait_for(7);
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    let exits: Vec<shim_proto::events::TaskExit> = events
        .all()
        .into_iter()
        .filter(|(t, _)| t == "/tasks/exit")
        .map(|(_, any)| shim_proto::events::TaskExit::decode(any.value.as_slice()).unwrap())
        .collect();
    assert_eq!((exits[0].id.as_str(), exits[0].exit_status), ("e1", 3));
    assert_eq!(
        (exits[1].id.as_str(), exits[1].pid, exits[1].exit_status),
        (id, created.pid, 137)
    );

    // The last container is gone: Shutdown stops the daemon, which removes its socket.
    let _: Empty = call(
        &socket,
        "Shutdown",
        &ShutdownRequest {
            id: id.into(),
            now: false,
        },
    )
    .unwrap();
    let mut status = 0;
    // SAFETY: reap the daemon this test started (our orphan).
    let reaped = unsafe { libc::waitpid(daemon, &mut status, 0) };
    assert_eq!(reaped, daemon);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    assert!(!w.exists_in_ns(v["address"].as_str().unwrap().trim_start_matches("unix://")));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn an_idle_shim_with_one_running_container_runs_four_threads() {
    let w = World::new("threads");
    let _events = Events::serve(&w);
    let id = "t1";
    let b = w.bundle(id, &[]);
    common::busybox_bundle(&b, id, &["sleep", "600"]);
    let (daemon, socket) = start_daemon(&w, &b, id);
    // A stdout fifo, as containerd gives one: its output is copied by the IO thread.
    let stdout = w.dir.join("t1-stdout");
    nix::unistd::mkfifo(&stdout, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let _reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&stdout)
        .unwrap();
    let options = shim_proto::any::pack(
        RUNC_V1_OPTIONS,
        &Options {
            root: w.dir.join("runc-root").to_string_lossy().into_owned(),
            ..Default::default()
        },
    );
    let created: CreateTaskResponse = call(
        &socket,
        "Create",
        &CreateTaskRequest {
            id: id.into(),
            bundle: b.to_string_lossy().into_owned(),
            stdout: stdout.to_string_lossy().into_owned(),
            options: Some(options),
            ..Default::default()
        },
    )
    .unwrap();
    let started: StartResponse = call(
        &socket,
        "Start",
        &StartRequest {
            id: id.into(),
            exec_id: String::new(),
        },
    )
    .unwrap();
    assert_eq!(started.pid, created.pid);

    // Idle: main (serving), reaper, events (exits and OOMs), io. No OOM watcher of its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let threads = loop {
        let threads = thread_names(daemon);
        if threads.len() <= 4 || std::time::Instant::now() >= deadline {
            break threads;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("idle v2 shim threads: {threads:?}");
    assert_eq!(threads.len(), 4, "{threads:?}");
    for name in ["events", "io", "reaper"] {
        assert!(threads.iter().any(|t| t == name), "no {name}: {threads:?}");
    }

    let (waited, _) = kill_wait_delete(&socket, id);
    assert_eq!(waited.exit_status, 137);
    let _: Empty = call(
        &socket,
        "Shutdown",
        &ShutdownRequest {
            id: id.into(),
            now: false,
        },
    )
    .unwrap();
    let mut status = 0;
    // SAFETY: reap the daemon this test started (our orphan).
    let reaped = unsafe { libc::waitpid(daemon, &mut status, 0) };
    assert_eq!(reaped, daemon);
}

#[test]
fn requests_for_unknown_containers_and_bad_options_are_refused_with_containerd_s_codes() {
    let w = World::new("refusals");
    let _events = Events::serve(&w);
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", None);
    assert!(out.status.success(), "{out:?}");
    let (_, socket) = daemon_socket(&w, &text(&out.stdout));
    let nobody = || StateRequest {
        id: "nope".into(),
        exec_id: String::new(),
    };
    assert_eq!(
        code(call::<_, StateResponse>(&socket, "State", &nobody())),
        5
    );
    assert_eq!(
        code(call::<_, Empty>(
            &socket,
            "Pause",
            &PauseRequest { id: "nope".into() }
        )),
        5
    );
    let bad_options = CreateTaskRequest {
        id: "c1".into(),
        bundle: b.to_string_lossy().into_owned(),
        options: Some(Any {
            type_url: "containerd.linux.runc.CreateOptions".into(),
            value: vec![],
        }),
        ..Default::default()
    };
    match call::<_, CreateTaskResponse>(&socket, "Create", &bad_options) {
        Err(CallError::Status(3, m)) => {
            assert!(m.contains("containerd.linux.runc.CreateOptions"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    for id in ["../x", "a/b", "nul\0x", &"x".repeat(2000)] {
        let req = CreateTaskRequest {
            id: id.into(),
            bundle: b.to_string_lossy().into_owned(),
            ..Default::default()
        };
        assert_eq!(
            code(call::<_, CreateTaskResponse>(&socket, "Create", &req)),
            3,
            "{id:?}"
        );
    }
    assert!(
        !b.join("options.json").exists(),
        "nothing written for a refused create"
    );
    // With no container, Shutdown stops the daemon.
    let _: Empty = call(&socket, "Shutdown", &ShutdownRequest::default()).unwrap();
}

/// A race (the OOM watcher's thread against the exit's), so many rounds.
#[test]
fn an_oom_kill_is_published_after_start_and_before_the_exit_it_caused() {
    for round in 0..10 {
        oom_kill_round(&format!("oom{round}"));
    }
}

fn oom_kill_round(name: &str) {
    let w = World::new(name);
    let events = Events::serve(&w);
    let id = "c1";
    let b = w.bundle(id, &[]);
    // 8 MiB of memory (and swap) for a pipeline that must hold 64 MiB in tail: the kernel kills it.
    let limit = 8 << 20;
    common::busybox_bundle_with(
        &b,
        id,
        &["sh", "-c", "head -c 67108864 /dev/zero | tail > /dev/null"],
        |spec| {
            spec["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": limit, "swap": limit})
        },
    );
    let (daemon, socket) = start_daemon(&w, &b, id);
    let create = CreateTaskRequest {
        id: id.into(),
        bundle: b.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let _: CreateTaskResponse = call(&socket, "Create", &create).unwrap();
    let _: StartResponse = call(
        &socket,
        "Start",
        &StartRequest {
            id: id.into(),
            exec_id: String::new(),
        },
    )
    .unwrap();
    assert_eq!(
        wait(&socket, id, "").exit_status,
        137,
        "the pipeline's tail was OOM-killed"
    );
    delete(&socket, id, "");
    // Once the daemon is gone every event it had is out (it flushes before exiting).
    let _: Empty = call(&socket, "Shutdown", &ShutdownRequest::default()).unwrap();
    // SAFETY: reap the daemon this test started (our orphan).
    assert_eq!(
        unsafe { libc::waitpid(daemon, std::ptr::null_mut(), 0) },
        daemon
    );
    // The kernel may signal one episode more than once: each goes out, as Go's watcher sends
    // each, but only between the start and the exit (wake-ups after the exit are not news).
    let topics = events.topics();
    let start = topics.iter().position(|t| t == "/tasks/start").unwrap();
    assert!(
        topics[..start].iter().all(|t| t != "/tasks/oom"),
        "{topics:?}"
    );
    let others: Vec<&String> = topics.iter().filter(|t| *t != "/tasks/oom").collect();
    assert_eq!(
        others,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "{topics:?}"
    );
    let exit = topics.iter().position(|t| t == "/tasks/exit").unwrap();
    assert!(
        topics[..exit].iter().any(|t| t == "/tasks/oom"),
        "{topics:?}"
    );
    assert!(
        topics[exit..].iter().all(|t| t != "/tasks/oom"),
        "{topics:?}"
    );
}

/// `start` of a shim for `id` in `b`, task API up to v2, which must succeed: its daemon's pid
/// and its socket as seen from here.
fn start_daemon(w: &World, b: &std::path::Path, id: &str) -> (i32, std::path::PathBuf) {
    let out = w.start(b, id, Some("2"));
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    daemon_socket(w, v["address"].as_str().unwrap())
}

/// A status's code and message.
fn status<T: std::fmt::Debug>(r: Result<T, CallError>) -> (i32, String) {
    match r {
        Err(CallError::Status(code, message)) => (code, message),
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn a_second_create_of_a_live_id_and_unknown_or_bad_exec_ids_are_refused_and_change_nothing() {
    let w = World::new("dup");
    let _events = Events::serve(&w);
    let id = "c1";
    let b = w.bundle(id, &[]);
    common::busybox_bundle(&b, id, &["sleep", "600"]);
    let (_, socket) = start_daemon(&w, &b, id);
    let root = w.dir.join("runc-root");
    let create = |root: &std::path::Path, binary: &str| CreateTaskRequest {
        id: id.into(),
        bundle: b.to_string_lossy().into_owned(),
        options: Some(shim_proto::any::pack(
            RUNC_V1_OPTIONS,
            &Options {
                root: root.to_string_lossy().into_owned(),
                binary_name: binary.into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let created: CreateTaskResponse = call(&socket, "Create", &create(&root, "")).unwrap();
    let _: StartResponse = call(
        &socket,
        "Start",
        &StartRequest {
            id: id.into(),
            exec_id: String::new(),
        },
    )
    .unwrap();
    let options_before = fs::read_to_string(b.join("options.json")).unwrap();

    // The same id again, with other options: refused, and what `delete` reads is untouched.
    let again = create(&w.dir.join("elsewhere"), "/nonexistent/runc");
    assert_eq!(
        status(call::<_, CreateTaskResponse>(&socket, "Create", &again)),
        (6, "id c1: already exists".to_string())
    );
    assert_eq!(
        fs::read_to_string(b.join("options.json")).unwrap(),
        options_before
    );
    let s: StateResponse = call(
        &socket,
        "State",
        &StateRequest {
            id: id.into(),
            exec_id: String::new(),
        },
    )
    .unwrap();
    assert_eq!((s.status, s.pid), (RUNNING, created.pid));

    // An unknown exec: NotFound, its message ending with the class as Go's does (containerd
    // 2.x shows the message as it is).
    let kill = |exec_id: &str| KillRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        signal: 9,
        all: false,
    };
    assert_eq!(
        status(call::<_, Empty>(&socket, "Kill", &kill("nope"))),
        (5, "process does not exist nope: not found".to_string())
    );
    // Exec ids that are not ids: InvalidArgument, and no exec is added.
    let huge = "x".repeat(2000);
    for exec_id in ["../x", "a/b", "nul\0x", "..", &huge] {
        let exec = ExecProcessRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            spec: Some(exec_spec(&["true"])),
            ..Default::default()
        };
        let (code, message) = status(call::<_, Empty>(&socket, "Exec", &exec));
        assert_eq!(code, 3, "{exec_id:?}: {message}");
        assert!(message.len() < 300, "{message}");
    }
    let pids: PidsResponse = call(&socket, "Pids", &PidsRequest { id: id.into() }).unwrap();
    assert!(
        pids.processes.iter().all(|p| p.info.is_none()),
        "an exec was added: {pids:?}"
    );
    let (waited, _) = kill_wait_delete(&socket, id);
    assert_eq!(waited.exit_status, 137);
    let _: Empty = call(&socket, "Shutdown", &ShutdownRequest::default()).unwrap();
}
