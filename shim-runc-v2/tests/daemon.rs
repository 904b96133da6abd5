//! The daemon against the real binary: what it serves, and how it stops.

mod common;

use std::time::Duration;

use common::{text, World};
use shim_host::wire::{self, CallError};

/// SIGTERM `pid` and reap it: its exit status.
fn terminate(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: signal and reap a daemon this test started (our orphan or child).
    let reaped = unsafe {
        libc::kill(pid, libc::SIGTERM);
        libc::waitpid(pid, &mut status, 0)
    };
    assert_eq!(reaped, pid);
    status
}

#[test]
fn the_daemon_stops_on_sigterm_and_removes_its_socket() {
    let w = World::new("term");
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", None);
    assert!(out.status.success(), "{out:?}");
    let path = text(&out.stdout).trim_start_matches("unix://").to_string();
    let pids = w.daemons();
    assert_eq!(pids.len(), 1);
    // Once it answers it handles signals (a SIGTERM before that would kill it outright).
    let socket = format!("/proc/{}/root{path}", pids[0]);
    let _: shim_proto::task_v2::ConnectResponse = common::call(
        socket.as_ref(),
        "Connect",
        &shim_proto::task_v2::ConnectRequest::default(),
    )
    .unwrap();
    let status = terminate(pids[0]);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    assert!(!w.exists_in_ns(&path), "the socket must be gone");
}

#[test]
fn the_daemon_serves_the_task_service_and_refuses_others_by_name() {
    let w = World::new("serves");
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", None);
    assert!(out.status.success(), "{out:?}");
    // The socket lives in the namespace's /run/containerd: reach it through the daemon's root.
    let pid = w.daemons()[0];
    let path = format!(
        "/proc/{pid}/root{}",
        text(&out.stdout).trim_start_matches("unix://")
    );
    let call = |service: &str| {
        wire::call(
            path.as_ref(),
            service,
            "Connect",
            Vec::new(),
            Duration::from_secs(5),
        )
    };
    match call("containerd.task.v1.Nope") {
        Err(CallError::Status(12, m)) => assert_eq!(m, "service containerd.task.v1.Nope"),
        other => panic!("{other:?}"),
    }
    for service in ["containerd.task.v2.Task", "containerd.task.v3.Task"] {
        match call(service) {
            Err(CallError::Status(_, m)) => {
                assert!(!m.starts_with("service "), "{service} must be served: {m}")
            }
            Ok(_) => {}
            Err(e) => panic!("{service}: {e}"),
        }
    }
}

#[test]
fn standalone_with_socket_serves_there_and_removes_it_on_sigterm() {
    let w = World::new("standalone");
    let b = w.bundle("c1", &[]);
    let sock = w.dir.join("standalone.sock");
    let mut cmd = w.shim_with(
        &w.containerd_address(),
        &b,
        "c1",
        &["-socket", &sock.to_string_lossy()],
        "",
    );
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&sock)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.unwrap(), 0o600);
    // nsenter execs the shim: the child is the daemon itself.
    let status = terminate(child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    let _ = child.try_wait();
    assert!(!sock.exists(), "the socket must be gone");
}

#[test]
fn the_daemon_raises_its_open_file_limit_to_the_hard_one_as_go_does() {
    let w = World::new("nofile");
    let b = w.bundle("c1", &[]);
    let cmd = w.shim(&b, "c1", "start");
    // `prlimit --nofile=1024:4096 -- nsenter ... shim start`.
    let inner: Vec<std::ffi::OsString> = std::iter::once(cmd.get_program().to_owned())
        .chain(cmd.get_args().map(|a| a.to_owned()))
        .collect();
    let mut limited = std::process::Command::new("prlimit");
    limited.arg("--nofile=1024:4096").arg("--").args(&inner);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    limited.stdin(std::process::Stdio::null());
    let out = common::run_bounded(limited);
    assert!(out.status.success(), "{out:?}");
    let pid = w.daemons()[0];
    // `start` returns once the daemon is spawned, maybe before it ran a line of its own: once it
    // answers, its startup (the raise first of all) is behind it.
    let path = text(&out.stdout).trim_start_matches("unix://").to_string();
    let socket = format!("/proc/{pid}/root{path}");
    let _: shim_proto::task_v2::ConnectResponse = common::call(
        socket.as_ref(),
        "Connect",
        &shim_proto::task_v2::ConnectRequest::default(),
    )
    .unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], ["4096", "4096"], "{line}");
}
