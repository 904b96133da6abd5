//! `start` against the real binary: what it prints per containerd version, the address file, the
//! daemon it leaves, group reuse, and its refusals.

mod common;

use std::fs;

use common::{is_shim_address, text, World, NAMESPACE};

#[test]
fn without_max_shim_version_it_prints_the_bare_address_as_containerd_1_6_reads_it() {
    let w = World::new("bare");
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", None);
    assert!(out.status.success(), "{out:?}");
    let answer = text(&out.stdout);
    assert!(is_shim_address(&answer), "{answer:?}");
    // containerd reads stdout and stderr together: nothing else may be there.
    assert_eq!(text(&out.stderr), "");
    assert_eq!(fs::read_to_string(b.join("address")).unwrap(), answer);
    let path = answer.trim_start_matches("unix://");
    assert!(
        w.exists_in_ns(path),
        "the socket {path} must exist in the namespace"
    );
    assert_eq!(w.daemons().len(), 1, "one daemon runs");
}

#[test]
fn with_max_shim_version_2_it_prints_version_2_json() {
    let w = World::new("json");
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", Some("2"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stderr), "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON bootstrap params");
    assert_eq!(v["version"], 2);
    assert_eq!(v["protocol"], "ttrpc");
    let address = v["address"].as_str().unwrap();
    assert!(is_shim_address(address), "{address}");
    assert_eq!(fs::read_to_string(b.join("address")).unwrap(), address);
}

#[test]
fn the_address_is_go_s_hash_of_address_namespace_and_id() {
    let w = World::new("hash");
    let b = w.bundle("c1", &[]);
    let out = w.start(&b, "c1", None);
    assert!(out.status.success(), "{out:?}");
    // The same name Go's containerd-shim-runc-v2 computes: sha256 of filepath.Join(address, ns, id).
    let mut sha = w.in_ns("sh");
    sha.args(["-c", "printf %s \"$1\" | sha256sum", "sh"])
        .arg(format!("{}/{NAMESPACE}/c1", w.containerd_address()));
    let digest = text(&common::run_bounded(sha).stdout);
    let digest = digest.split_whitespace().next().unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("unix:///run/containerd/s/{digest}")
    );
}

#[test]
fn a_second_start_in_the_same_group_gets_the_running_daemon() {
    let w = World::new("group");
    let group = [("io.containerd.runc.v2.group", "g1")];
    let b1 = w.bundle("c1", &group);
    let b2 = w.bundle("c2", &group);
    let first = w.start(&b1, "c1", Some("2"));
    assert!(first.status.success(), "{first:?}");
    let second = w.start(&b2, "c2", Some("2"));
    assert!(second.status.success(), "{second:?}");
    assert_eq!(text(&first.stdout), text(&second.stdout));
    assert_eq!(
        fs::read_to_string(b2.join("address")).unwrap(),
        fs::read_to_string(b1.join("address")).unwrap()
    );
    assert_eq!(w.daemons().len(), 1, "the group has one daemon");
    // A CRI sandbox id groups the same way.
    let b3 = w.bundle("c3", &[("io.kubernetes.cri.sandbox-id", "g1")]);
    let third = w.start(&b3, "c3", Some("2"));
    assert_eq!(text(&third.stdout), text(&first.stdout));
}

#[test]
fn a_dead_group_daemon_is_replaced_on_the_same_address() {
    let w = World::new("dead");
    let group = [("io.containerd.runc.v2.group", "g2")];
    let b1 = w.bundle("c1", &group);
    let first = w.start(&b1, "c1", None);
    assert!(first.status.success(), "{first:?}");
    let old = w.daemons();
    assert_eq!(old.len(), 1);
    w.kill_daemon(old[0]);
    let b2 = w.bundle("c2", &group);
    let second = w.start(&b2, "c2", None);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(text(&second.stdout), text(&first.stdout));
    let new = w.daemons();
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
}

#[test]
fn different_ids_without_a_group_get_different_daemons() {
    let w = World::new("two");
    let a = w.start(&w.bundle("c1", &[]), "c1", None);
    let b = w.start(&w.bundle("c2", &[]), "c2", None);
    assert!(a.status.success() && b.status.success());
    assert_ne!(a.stdout, b.stdout);
    assert_eq!(w.daemons().len(), 2);
}

#[test]
fn start_without_id_fails_clearly_and_leaves_nothing() {
    let w = World::new("noid");
    let b = w.bundle("c1", &[]);
    let out = common::run_bounded(w.shim(&b, "", "start"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(err.starts_with("io.containerd.rsrunc.v2: "), "{err}");
    assert!(err.contains("-id"), "{err}");
    assert!(!b.join("address").exists());
    assert!(w.daemons().is_empty());
}

#[test]
fn start_with_a_bad_id_is_refused() {
    let w = World::new("badid");
    let b = w.bundle("c1", &[]);
    for id in ["../x", "a/b", &"x".repeat(2000)] {
        let out = common::run_bounded(w.shim(&b, id, "start"));
        assert_eq!(out.status.code(), Some(1), "{id}: {out:?}");
        assert!(text(&out.stderr).contains("invalid task id"), "{out:?}");
    }
    assert!(w.daemons().is_empty());
}

#[test]
fn start_without_a_reachable_containerd_fails_clearly() {
    let w = World::new("noaddr");
    let b = w.bundle("c1", &[]);
    let out = common::run_bounded(w.shim_at("", &b, "c1", "start"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("-address"), "{out:?}");
    let nobody = w.dir.join("nobody.sock").to_string_lossy().into_owned();
    let out = common::run_bounded(w.shim_at(&nobody, &b, "c1", "start"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("does not answer"), "{out:?}");
    assert!(w.daemons().is_empty());
    assert!(!b.join("address").exists());
}

#[test]
fn start_without_a_spec_fails_naming_it() {
    let w = World::new("nospec");
    let b = w.bundle("c1", &[]);
    fs::remove_file(b.join("config.json")).unwrap();
    let out = w.start(&b, "c1", None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("config.json"), "{out:?}");
}

/// A v1 cgroup `/<name>` in the memory and pids hierarchies, removed on drop (after the
/// World that is declared after it has killed its daemons).
struct ShimCgroup {
    path: String,
    dirs: Vec<std::path::PathBuf>,
}

impl ShimCgroup {
    fn new(name: &str) -> ShimCgroup {
        let path = format!("/{name}-{}", std::process::id());
        let dirs: Vec<_> = ["memory", "pids"]
            .iter()
            .map(|c| {
                std::path::Path::new("/sys/fs/cgroup")
                    .join(c)
                    .join(&path[1..])
            })
            .collect();
        for d in &dirs {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        ShimCgroup { path, dirs }
    }
}

impl Drop for ShimCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

/// `start` with containerd's runtime options on stdin, reading what it logs to the bundle's
/// log fifo (containerd makes the fifo and reads it while `start` runs).
fn start_with_options(
    w: &World,
    b: &std::path::Path,
    options: shim_proto::runc_v1_options::Options,
) -> (std::process::Output, String) {
    start_with_options_by(w.shim(b, "c1", "start"), b, options)
}

/// [`start_with_options`] for the `start` command `cmd` (ours or Go's).
fn start_with_options_by(
    mut cmd: std::process::Command,
    b: &std::path::Path,
    options: shim_proto::runc_v1_options::Options,
) -> (std::process::Output, String) {
    use prost::Message;
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = b.join("log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o700)).unwrap();
    let mut log = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let options = shim_proto::any::pack("containerd.runc.v1.Options", &options);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&options.encode_to_vec())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut logged = vec![0u8; 64 * 1024];
    let n = log.read(&mut logged).unwrap_or(0);
    (out, text(&logged[..n]))
}

#[test]
fn start_moves_the_daemon_into_the_shim_cgroup_option_s_cgroup_and_logs_to_the_bundle_fifo() {
    let cg = ShimCgroup::new("rsrunc-v2-shim-cgroup");
    let w = World::new("stdin");
    let b = w.bundle("c1", &[]);
    let options = shim_proto::runc_v1_options::Options {
        shim_cgroup: cg.path.clone(),
        ..Default::default()
    };
    let (out, logged) = start_with_options(&w, &b, options);
    assert!(out.status.success(), "{out:?}");
    assert!(common::is_shim_address(&text(&out.stdout)));
    assert_eq!(text(&out.stderr), "");
    assert!(logged.contains("msg=\"started shim daemon\""), "{logged}");
    assert!(
        logged.contains(&format!("shim_cgroup={}", cg.path)),
        "{logged}"
    );
    let daemons = w.daemons();
    assert_eq!(daemons.len(), 1);
    let own = fs::read_to_string(format!("/proc/{}/cgroup", daemons[0])).unwrap();
    for c in ["memory", "pids"] {
        assert!(
            own.lines()
                .any(|l| l.ends_with(&format!(":{c}:{}", cg.path))),
            "not in {c}:{}:\n{own}",
            cg.path
        );
    }
}

#[test]
fn a_shim_cgroup_that_does_not_exist_fails_start_as_go_s_and_leaves_no_daemon() {
    let w = World::new("nocgroup");
    let b = w.bundle("c1", &[]);
    let missing = format!("/rsrunc-v2-nowhere-{}", std::process::id());
    let options = shim_proto::runc_v1_options::Options {
        shim_cgroup: missing.clone(),
        ..Default::default()
    };
    let (out, _) = start_with_options(&w, &b, options);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "failed to load cgroup {missing}: cgroups: cgroup deleted"
        )),
        "{err}"
    );
    assert!(w.daemons().is_empty(), "the daemon was left running");
    let address = fs::read_to_string(b.join("address")).unwrap_or_default();
    let path = address.trim().trim_start_matches("unix://");
    assert!(
        path.is_empty() || !w.exists_in_ns(path),
        "the socket {path} was left behind"
    );
}

/// Go's containerd-shim-runc-v2 of the system's containerd 1.6: what ours is held to.
const GO_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

/// Go's `start` as containerd 1.6 runs it, in `w`'s namespace.
fn go_start(w: &World, b: &std::path::Path) -> std::process::Command {
    let mut cmd = w.in_ns_at(b, GO_SHIM);
    // nsenter's --wd leaves the cwd where getcwd(2) cannot name it from the namespace's root;
    // Go's os.Getwd takes PWD when it is the same directory.
    cmd.env("PWD", b)
        .args(["-namespace", NAMESPACE, "-address", &w.containerd_address()])
        .args([
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "start",
        ])
        .env_remove("MAX_SHIM_VERSION")
        .env("TTRPC_ADDRESS", format!("{}.ttrpc", w.containerd_address()));
    cmd
}

/// The pids in `/sys/fs/cgroup/memory<path>`.
fn members(path: &str) -> Vec<i32> {
    fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn go_s_shim_does_the_same_with_shim_cgroup_joining_it_or_failing_start_for_a_cgroup_nowhere() {
    if !std::path::Path::new(GO_SHIM).is_file() {
        assert!(
            std::env::var("SHIM_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
            "{GO_SHIM} is missing"
        );
        return;
    }
    let cg = ShimCgroup::new("rsrunc-v2-go-shim-cgroup");
    let w = World::new("gocg");
    let b = w.bundle("c1", &[]);
    let options = shim_proto::runc_v1_options::Options {
        shim_cgroup: cg.path.clone(),
        ..Default::default()
    };
    let (out, _) = start_with_options_by(go_start(&w, &b), &b, options);
    assert!(out.status.success(), "{out:?}");
    let joined = members(&cg.path);
    let go_daemons: Vec<i32> = joined
        .iter()
        .copied()
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e == std::path::Path::new(GO_SHIM))
        })
        .collect();
    for pid in &joined {
        w.kill_daemon(*pid);
    }
    assert_eq!(
        go_daemons.len(),
        1,
        "Go's daemon is not in {}: {joined:?}",
        cg.path
    );

    let b2 = w.bundle("c2", &[]);
    let missing = format!("/rsrunc-v2-go-nowhere-{}", std::process::id());
    let options = shim_proto::runc_v1_options::Options {
        shim_cgroup: missing.clone(),
        ..Default::default()
    };
    let (out, _) = start_with_options_by(go_start(&w, &b2), &b2, options);
    assert!(!out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "failed to load cgroup {missing}: cgroups: cgroup deleted"
        )),
        "{err}"
    );
}
