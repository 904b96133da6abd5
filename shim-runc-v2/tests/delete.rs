//! `delete` against the real binary: the DeleteResponse it prints, and the cleanup it does.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use common::{text, World, NAMESPACE};
use prost::Message;
use shim_proto::task_v2::DeleteResponse;

#[test]
fn delete_prints_go_s_response_with_the_init_pid() {
    let w = World::new("delete");
    let b = w.bundle("c1", &[]);
    fs::write(b.join("init.pid"), "4321").unwrap();
    // What Create wrote: runc's root and binary (here a wrapper that records its argv).
    let root = w.dir.join("runc-root");
    fs::write(
        b.join("options.json"),
        serde_json::json!({"root": root.to_string_lossy()}).to_string(),
    )
    .unwrap();
    let calls = w.dir.join("runc-calls");
    let runc = w.dir.join("runc");
    fs::write(
        &runc,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    )
    .unwrap();
    fs::set_permissions(&runc, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(b.join("runtime"), runc.to_string_lossy().as_bytes()).unwrap();

    let before = SystemTime::now();
    let out = w.delete(&b, "c1");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = DeleteResponse::decode(out.stdout.as_slice()).expect("a protobuf DeleteResponse");
    assert_eq!(r.pid, 4321);
    assert_eq!(r.exit_status, 137);
    let at = shim_proto::time::from_timestamp(r.exited_at.as_ref().expect("exited_at")).unwrap();
    assert!(at >= before - Duration::from_secs(1) && at <= SystemTime::now());
    assert_eq!(
        fs::read_to_string(&calls).unwrap().trim(),
        format!(
            "--root {}/{NAMESPACE} --log {}/log.json --log-format json delete --force c1",
            root.display(),
            b.display()
        )
    );
}

#[test]
fn a_failing_runc_delete_is_a_warning_on_stderr_not_a_failure() {
    let w = World::new("delwarn");
    let b = w.bundle("c1", &[]);
    fs::write(b.join("init.pid"), "7").unwrap();
    fs::write(
        b.join("options.json"),
        serde_json::json!({"root": w.dir.join("r")}).to_string(),
    )
    .unwrap();
    fs::write(b.join("runtime"), "/bin/false").unwrap();
    let out = w.delete(&b, "c1");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        DeleteResponse::decode(out.stdout.as_slice()).unwrap().pid,
        7
    );
    // containerd logs what the shim says on stderr as cleanup warnings.
    let err = text(&out.stderr);
    assert!(
        err.contains("level=warning") && err.contains("failed to remove runc container"),
        "{err}"
    );
}

#[test]
fn delete_without_init_pid_answers_pid_0_and_unmounts_the_rootfs() {
    let w = World::new("unmount");
    let b = w.bundle("c1", &[]);
    fs::write(
        b.join("options.json"),
        serde_json::json!({"root": w.dir.join("r")}).to_string(),
    )
    .unwrap();
    let src = w.dir.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(b.join("rootfs")).unwrap();
    let mut mount = w.in_ns("mount");
    mount.arg("--bind").arg(&src).arg(b.join("rootfs"));
    assert!(common::run_bounded(mount).status.success());
    let mounted = || {
        let mut m = w.in_ns("mountpoint");
        m.arg("-q").arg(b.join("rootfs"));
        common::run_bounded(m).status.success()
    };
    assert!(mounted());
    let out = w.delete(&b, "c1");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = DeleteResponse::decode(out.stdout.as_slice()).unwrap();
    assert_eq!((r.pid, r.exit_status), (0, 137));
    assert!(text(&out.stderr).contains("failed to read init pid file"));
    assert!(!mounted(), "the rootfs must be unmounted");
}

#[test]
fn delete_with_broken_options_fails_as_go_does() {
    let w = World::new("badopts");
    let b = w.bundle("c1", &[]);
    fs::write(b.join("options.json"), "not json").unwrap();
    let out = w.delete(&b, "c1");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, b"");
    assert!(text(&out.stderr).contains("options.json"), "{out:?}");
}

#[test]
fn delete_without_id_fails_clearly() {
    let w = World::new("delnoid");
    let b = w.bundle("c1", &[]);
    let out = w.delete(&b, "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("-id"), "{out:?}");
}

#[test]
fn delete_removes_a_dead_daemon_s_socket_and_keeps_a_live_one() {
    let w = World::new("delsock");
    let group = [("io.containerd.runc.v2.group", "g")];
    let b1 = w.bundle("c1", &group);
    let b2 = w.bundle("c2", &group);
    let out = w.start(&b1, "c1", None);
    assert!(out.status.success(), "{out:?}");
    assert!(w.start(&b2, "c2", None).status.success());
    let path = text(&out.stdout).trim_start_matches("unix://").to_string();
    for b in [&b1, &b2] {
        fs::write(
            b.join("options.json"),
            serde_json::json!({"root": w.dir.join("r")}).to_string(),
        )
        .unwrap();
    }
    // c1's cleanup while the group's daemon still serves c2: the socket stays.
    assert_eq!(w.delete(&b1, "c1").status.code(), Some(0));
    assert!(w.exists_in_ns(&path));
    // The daemon dies: the next cleanup removes what it left.
    let daemons = w.daemons();
    assert_eq!(daemons.len(), 1);
    w.kill_daemon(daemons[0]);
    assert!(w.exists_in_ns(&path));
    assert_eq!(w.delete(&b2, "c2").status.code(), Some(0));
    assert!(!w.exists_in_ns(&path));
}
