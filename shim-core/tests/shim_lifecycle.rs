//! Shim end to end against the real runc: a busybox container created on a bind-mounted rootfs,
//! started, exec'd into, paused, killed, waited and deleted, with its exits published in order.

#[path = "fixtures/common.rs"]
mod common;
#[path = "fixtures/recorder.rs"]
mod recorder;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::channel;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::TempDir;
use recorder::{Recorder, Sink};
use shim_core::config::DEFAULT_SETTLE_LIMIT;
use shim_core::io::IoSpec;
use shim_core::{
    Config, CreateOptions, CreateRequest, Error, ExecRequest, ExitInfo, Mount, SingleShim, Status,
};

static REAPER: OnceLock<reaper::Reaper> = OnceLock::new();

/// Bound on anything that should finish: a hang fails the test instead of stalling the suite.
const HANG: Duration = Duration::from_secs(60);
const NAMESPACE: &str = "shim-core-test";

fn reaper() -> reaper::Reaper {
    REAPER.get().unwrap().clone()
}

fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    let runc = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("runc"))
            .find(|p| p.exists())
    });
    if runc.is_none() {
        return Some("runc not found in PATH".into());
    }
    if !Path::new("/usr/bin/busybox").exists() {
        return Some("/usr/bin/busybox (busybox-static) missing".into());
    }
    None
}

/// Run a helper command through the reaper (Child::wait would race the reaper for the status).
fn run(cmd: &mut Command) -> i32 {
    reaper().spawn(cmd).unwrap().exit.wait().status
}

/// One container's world: temp dir, bundle, image, shim. Drop force-deletes and unmounts.
struct World {
    dir: TempDir,
    id: String,
    bundle: PathBuf,
    image: PathBuf,
    shim: Arc<SingleShim>,
    events: Arc<Recorder>,
}

impl World {
    fn new(name: &str, args: &[&str]) -> World {
        World::with_config(name, args, |_| {})
    }

    /// Like `new`, with a last edit of config.json.
    fn with_config(name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> World {
        World::build(name, args, edit, DEFAULT_SETTLE_LIMIT)
    }

    /// Like `with_config`, with the shim's bound on how long an exit waits for its output.
    fn build(
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
        settle_limit: Duration,
    ) -> World {
        let dir = TempDir::new("shim-core-e2e");
        let unique = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let id = format!("{name}-{}", unique.to_lowercase());
        // The rootfs lives outside the bundle and is bind-mounted there by Create.
        let image = dir.join("image");
        let bin = image.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
        for tool in ["sh", "sleep", "cat", "echo", "true", "setsid"] {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
        }
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(image.join(d)).unwrap();
        }
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        assert_eq!(
            run(Command::new("runc").arg("spec").current_dir(&bundle)),
            0
        );
        let path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["args"] = serde_json::json!(args);
        config["process"]["terminal"] = serde_json::json!(false);
        config["root"]["readonly"] = serde_json::json!(false);
        config["linux"]["cgroupsPath"] = serde_json::json!(format!("/shim-core-e2e-{unique}"));
        edit(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

        let events = Arc::new(Recorder::default());
        let config = Config {
            namespace: NAMESPACE.into(),
            workdir: dir.join("work"),
            runtime_root: dir.join("runc-root"),
            criu: None,
            systemd_cgroup: false,
            runc_timeout: HANG,
            settle_limit,
            watch_oom: false,
        };
        let shim = SingleShim::new(config, reaper(), Box::new(Sink(Arc::clone(&events)))).unwrap();
        World {
            dir,
            id,
            bundle,
            image,
            shim: Arc::new(shim),
            events,
        }
    }

    fn create(&self, stdout: &str) -> Result<u32, Error> {
        self.shim.create(self.create_request(stdout))
    }

    fn create_request(&self, stdout: &str) -> CreateRequest {
        CreateRequest {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            runtime: String::new(),
            rootfs: vec![Mount {
                kind: "bind".into(),
                source: self.image.display().to_string(),
                target: String::new(),
                options: vec!["rbind".into(), "rw".into()],
            }],
            io: IoSpec {
                stdout: stdout.into(),
                ..Default::default()
            },
            checkpoint: String::new(),
            parent_checkpoint: String::new(),
            options: CreateOptions::default(),
        }
    }

    /// An exec request running `args`, its stdout appended to `stdout` (a file:// URI or "").
    fn exec_request(&self, exec_id: &str, args: &[&str], stdout: &str) -> ExecRequest {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.bundle.join("config.json")).unwrap())
                .unwrap();
        let mut process = config["process"].clone();
        process["args"] = serde_json::json!(args);
        ExecRequest {
            id: exec_id.into(),
            io: IoSpec {
                stdout: stdout.into(),
                ..Default::default()
            },
            spec_json: serde_json::to_vec(&process).unwrap(),
        }
    }

    /// Wait on another thread, so a hang fails the test.
    fn wait(&self, id: &str) -> ExitInfo {
        let (tx, rx) = channel();
        let shim = Arc::clone(&self.shim);
        let id = id.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(shim.wait(&id));
        });
        rx.recv_timeout(HANG).expect("wait hung").unwrap()
    }

    fn status(&self, id: &str) -> Status {
        self.shim.state(id).unwrap().status
    }

    fn file_uri(&self, name: &str) -> String {
        format!("file://{}", self.dir.join(name).display())
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn rootfs_mounted(&self) -> bool {
        let rootfs = self.bundle.join("rootfs").display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(rootfs.as_str()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let root = self.dir.join("runc-root").join(NAMESPACE);
        let _ = reaper()
            .spawn(
                Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", &self.id])
                    .stderr(std::process::Stdio::null()),
            )
            .map(|s| s.exit.wait_timeout(HANG));
        let _ = shim_core::mount::unmount_all(&self.bundle);
    }
}

fn failed_precondition(r: Result<impl std::fmt::Debug, Error>, text: &str) {
    match r {
        Err(Error::FailedPrecondition(m)) => assert_eq!(m, text),
        other => panic!("want FailedPrecondition({text:?}), got {other:?}"),
    }
}

fn invalid_state(r: Result<impl std::fmt::Debug, Error>, text: &str) {
    match r {
        Err(Error::InvalidState(m)) => assert_eq!(m, text),
        other => panic!("want InvalidState({text:?}), got {other:?}"),
    }
}

fn not_found(r: Result<impl std::fmt::Debug, Error>, text: &str) {
    match r {
        Err(Error::NotFound(m) | Error::NoSuchProcess { message: m, .. }) => assert_eq!(m, text),
        other => panic!("want NotFound({text:?}), got {other:?}"),
    }
}

fn init_and_execs_live_and_die_in_contract_order() {
    let w = World::new("life", &["sh", "-c", "echo init-out; exec sleep 1000"]);
    let id = w.id.clone();
    let pid = w.create(&w.file_uri("init.log")).unwrap();
    assert!(pid > 0);
    assert!(w.rootfs_mounted(), "Create mounted the rootfs");
    assert_eq!(w.status(&id), Status::Created);
    invalid_state(w.shim.pause(), "cannot pause task in created state");

    assert_eq!(w.shim.start(&id).unwrap(), pid);
    assert_eq!(w.status(&id), Status::Running);
    not_found(w.shim.state("nope"), "process nope does not exist");

    // An exec that exits on its own, with output and a status.
    let log = w.file_uri("e1.log");
    w.shim
        .exec(w.exec_request("e1", &["sh", "-c", "echo exec-out; exit 3"], &log))
        .unwrap();
    assert_eq!(w.status("e1"), Status::Created);
    assert!(matches!(
        w.shim.exec(w.exec_request("e1", &["true"], "")),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        w.shim.exec(w.exec_request("../e1", &["true"], "")),
        Err(Error::InvalidArgument(_))
    ));
    failed_precondition(w.shim.kill("e1", 9, false), "process not created");
    let e1_pid = w.shim.start("e1").unwrap();
    let e1 = w.wait("e1");
    assert_eq!((e1.pid, e1.status), (e1_pid, 3));
    assert!(e1.exited_at.is_some());
    assert_eq!(w.status("e1"), Status::Stopped);
    not_found(w.shim.kill("e1", 9, false), "process already finished");
    let events = w.events.until("e1", HANG);
    assert_eq!(events[0].exit_status, 3);
    assert_eq!(events[0].container_id, id);

    // Pause: the init and a running exec report paused.
    w.shim
        .exec(w.exec_request("e2", &["sleep", "1000"], ""))
        .unwrap();
    w.shim.start("e2").unwrap();
    let pids = w.shim.list_pids().unwrap();
    assert!(pids
        .iter()
        .any(|p| p.pid == pid && p.exec_id.as_deref() == Some(id.as_str())));
    assert!(pids.iter().any(|p| p.exec_id.as_deref() == Some("e2")));
    w.shim.pause().unwrap();
    assert_eq!(w.status(&id), Status::Paused);
    assert_eq!(w.status("e2"), Status::Paused);
    invalid_state(w.shim.pause(), "cannot pause a paused container");
    invalid_state(
        w.shim.exec(w.exec_request("e3", &["true"], "")),
        "cannot exec in a paused state",
    );
    w.shim.resume().unwrap();
    assert_eq!(w.status("e2"), Status::Running);
    invalid_state(
        w.shim.delete_process("e2"),
        "cannot delete a running process",
    );

    // The init dies: the kernel takes e2 with it, and e2's exit is published first.
    w.shim.kill(&id, 9, false).unwrap();
    let init = w.wait(&id);
    assert_eq!(init.status, 137);
    assert_eq!(w.wait("e2").status, 137);
    assert_eq!(w.status(&id), Status::Stopped);
    not_found(w.shim.kill(&id, 9, false), "process already finished");
    invalid_state(
        w.shim.exec(w.exec_request("e4", &["true"], "")),
        "cannot exec in a stopped state",
    );
    let events = w.events.until(&id, HANG);
    let order: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, ["e1", "e2", id.as_str()]);
    assert_eq!(events[2].exit_status, 137);
    assert_eq!(events[2].pid, pid);

    // Delete: execs first, then the init; the rootfs is unmounted.
    assert!(matches!(
        w.shim.delete_process(&id),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(w.shim.delete_process("e1").unwrap().status, 3);
    assert!(!w.bundle.join("e1.pid").exists(), "exec pid file removed");
    not_found(w.shim.state("e1"), "process e1 does not exist");
    let deleted = w.shim.delete().unwrap();
    assert_eq!((deleted.pid, deleted.status), (pid, 137));
    assert_eq!(deleted.exited_at, init.exited_at);
    assert!(!w.rootfs_mounted(), "Delete unmounted the rootfs");
    not_found(w.shim.state(&id), &format!("process {id} does not exist"));
    failed_precondition(w.shim.delete(), "container must be created");

    assert_eq!(w.read("init.log"), "init-out\n");
    assert_eq!(w.read("e1.log"), "exec-out\n");
}

fn a_failed_exec_start_releases_its_waiters_and_stays_created() {
    let w = World::new("badexec", &["sleep", "1000"]);
    w.create("").unwrap();
    w.shim.start(&w.id).unwrap();
    w.shim
        .exec(w.exec_request("bad", &["/bin/nonexistent"], ""))
        .unwrap();
    match w.shim.start("bad") {
        Err(Error::Runtime(m)) => assert!(m.starts_with("OCI runtime exec failed: "), "{m}"),
        other => panic!("want a runtime error, got {other:?}"),
    }
    let exit = w.wait("bad");
    assert_eq!((exit.status, exit.exited_at), (0, None));
    assert_eq!(w.status("bad"), Status::Created);
    w.shim.kill(&w.id, 9, true).unwrap();
    assert_eq!(w.wait(&w.id).status, 137);
    w.shim.delete().unwrap();
}

fn an_init_that_exits_at_once_is_not_lost() {
    let w = World::new("quick", &["sh", "-c", "exit 7"]);
    w.create("").unwrap();
    w.shim.start(&w.id).unwrap();
    let exit = w.wait(&w.id);
    assert_eq!(exit.status, 7);
    assert_eq!(w.status(&w.id), Status::Stopped);
    assert_eq!(w.events.until(&w.id, HANG)[0].exit_status, 7);
    assert!(w.shim.list_pids().unwrap().is_empty());
    assert_eq!(w.shim.delete().unwrap().status, 7);
}

fn deleting_a_never_started_init_reports_no_exit() {
    let w = World::new("unstarted", &["sleep", "1000"]);
    let pid = w.create("").unwrap();
    let deleted = w.shim.delete().unwrap();
    assert_eq!(
        (deleted.pid, deleted.status, deleted.exited_at),
        (pid, 0, None)
    );
    assert!(!w.rootfs_mounted());
    // The killed `runc init` is not the container's exit: nothing is published for it.
    reaper().wait_childless(Some(HANG));
    assert!(w.events.so_far().is_empty());
}

fn without_a_pid_namespace_the_init_exit_takes_every_process_down() {
    let w = World::with_config("hostpid", &["sleep", "1000"], |config| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|n| n["type"] != "pid");
    });
    w.create("").unwrap();
    w.shim.start(&w.id).unwrap();
    w.shim
        .exec(w.exec_request("orphan", &["sleep", "1000"], ""))
        .unwrap();
    w.shim.start("orphan").unwrap();
    w.shim.kill(&w.id, 9, false).unwrap();
    assert_eq!(w.wait(&w.id).status, 137);
    // No kernel pid-namespace teardown here: only the shim's `runc kill --all` ends the exec.
    assert_eq!(w.wait("orphan").status, 137);
    let events = w.events.until(&w.id, HANG);
    assert!(events.iter().any(|e| e.id == "orphan"));
    w.shim.delete().unwrap();
}

fn an_exec_still_draining_its_output_does_not_hold_up_another_execs_exit() {
    // Exits wait for their output without bound here, so "still draining" lasts until we end it.
    let w = World::build("drain", &["sleep", "1000"], |_| {}, HANG);
    w.create("").unwrap();
    w.shim.start(&w.id).unwrap();
    w.shim
        .exec(w.exec_request("quiet", &["sleep", "1000"], ""))
        .unwrap();
    w.shim.start("quiet").unwrap();
    // `held` exits at once, but the child it leaves behind keeps its stdout open.
    let exits = reaper().subscribe_all();
    let log = w.file_uri("held.log");
    w.shim
        .exec(w.exec_request("held", &["sh", "-c", "sleep 1000 & exit 0"], &log))
        .unwrap();
    let held = w.shim.start("held").unwrap();
    // The broadcast comes after the exit went to the shim: its exit is now ahead of quiet's.
    while exits.recv_timeout(HANG).expect("held never exited").pid as u32 != held {}

    w.shim.kill("quiet", 9, false).unwrap();
    assert_eq!(w.wait("quiet").status, 137);
    assert_eq!(w.status("held"), Status::Running, "held is still draining");

    // The init's death ends the child holding held's stdout: held drains and is recorded.
    w.shim.kill(&w.id, 9, false).unwrap();
    assert_eq!(w.wait("held").status, 0);
    assert_eq!(w.wait(&w.id).status, 137);
    let events = w.events.until(&w.id, HANG);
    let order: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, ["quiet", "held", w.id.as_str()]);
    w.shim.delete().unwrap();
}

/// Issue 10 item 7: between an exec's reaping and the record of its exit (while its output
/// drains) its pid is free, and may already be another process's. Kill must not signal it.
fn kill_after_an_exec_was_reaped_never_signals_a_process_that_reused_its_pid() {
    let w = World::build("reuse", &["sleep", "1000"], |_| {}, HANG);
    w.create("").unwrap();
    w.shim.start(&w.id).unwrap();
    let exits = reaper().subscribe_all();
    let log = w.file_uri("held.log");
    // `held` exits at once, but the child it leaves behind keeps its stdout open: its exit is
    // claimed, and waits for its output without bound. The child leaves held's process group
    // and session, which would otherwise keep held's pid from being reused.
    w.shim
        .exec(w.exec_request("held", &["sh", "-c", "setsid sleep 1000 & exit 0"], &log))
        .unwrap();
    let held = w.shim.start("held").unwrap();
    while exits.recv_timeout(HANG).expect("held never exited").pid as u32 != held {}
    assert_eq!(w.status("held"), Status::Running, "held is still draining");

    // A decoy that takes held's pid: the kernel gives the pid after ns_last_pid to the next fork.
    let mut decoy = None;
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (held - 1).to_string()).unwrap();
        let spawned = reaper().spawn(Command::new("sleep").arg("1000")).unwrap();
        if spawned.pid as u32 == held {
            decoy = Some(spawned);
            break;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(spawned.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        spawned.exit.wait();
    }
    // The pid may have gone to a thread of this process instead (the shim's own threads come
    // and go): then no decoy can have it, and a signal to it would hit this very process.
    let reused_by_a_thread_of_ours =
        std::path::Path::new(&format!("/proc/self/task/{held}")).exists();
    assert!(
        decoy.is_some() || reused_by_a_thread_of_ours,
        "no process could be given the reaped exec's pid"
    );

    not_found(w.shim.kill("held", 9, false), "process already finished");
    if let Some(decoy) = decoy {
        assert!(
            not_signalled(decoy.pid),
            "Kill of the reaped exec signalled the process that reused its pid"
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(decoy.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        decoy.exit.wait();
    }
    w.shim.kill(&w.id, 9, false).unwrap();
    assert_eq!(w.wait("held").status, 0);
    assert_eq!(w.wait(&w.id).status, 137);
    w.shim.delete().unwrap();
}

/// Whether `pid` lives with no SIGKILL pending: a kill(2) that hit it leaves it a zombie, gone,
/// or with the signal still pending, at once (no waiting).
fn not_signalled(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let pending = |name: &str| u64::from_str_radix(&field(name), 16).unwrap_or(0);
    let sigkill = 1u64 << (9 - 1);
    !field("State:").starts_with('Z') && (pending("SigPnd:") | pending("ShdPnd:")) & sigkill == 0
}

fn concurrent_creates_give_one_container_and_the_loser_touches_nothing() {
    let w = World::new("twice", &["sleep", "1000"]);
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (shim, req) = (Arc::clone(&w.shim), w.create_request(""));
            std::thread::spawn(move || shim.create(req))
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let refused = results.iter().find_map(|r| r.as_ref().err());
    assert_eq!(
        refused,
        Some(&Error::AlreadyExists(format!(
            "id {}: already exists",
            w.id
        )))
    );
    assert!(
        w.rootfs_mounted(),
        "the loser unmounted the winner's rootfs"
    );
    assert_eq!(w.shim.start(&w.id).unwrap(), *won[0]);
    assert_eq!(w.status(&w.id), Status::Running);
    w.shim.kill(&w.id, 9, false).unwrap();
    assert_eq!(w.wait(&w.id).status, 137);
    w.shim.delete().unwrap();
    assert!(!w.rootfs_mounted());
}

/// `Some(why)` when criu could dump here, so that the failure path was not exercised.
fn a_failed_checkpoint_points_at_the_copied_criu_log() -> Option<String> {
    let w = World::new("ckpt", &["sleep", "1000"]);
    w.create("").unwrap();
    invalid_state(
        w.shim.checkpoint(
            &w.dir.join("image1").display().to_string(),
            Default::default(),
        ),
        "cannot checkpoint a task in created state",
    );
    w.shim.start(&w.id).unwrap();
    let work = w.dir.join("criu-work");
    let request = shim_core::CheckpointRequest {
        work_path: work.display().to_string(),
        ..Default::default()
    };
    // criu cannot dump on every kernel (not on this project's test machines); when it can,
    // the container keeps running (no exit option) and the failure path is not exercised.
    let dumped = match w
        .shim
        .checkpoint(&w.dir.join("image2").display().to_string(), request)
    {
        Ok(()) => true,
        Err(Error::Runtime(m)) => {
            let dump = w.bundle.join("criu-dump.log");
            assert!(m.ends_with(&format!(" path= {}", dump.display())), "{m}");
            assert!(!m.contains('\n'), "first line only: {m}");
            false
        }
        Err(e) => panic!("want a runtime error, got {e:?}"),
    };
    assert_eq!(w.status(&w.id), Status::Running);
    w.shim.kill(&w.id, 9, false).unwrap();
    assert_eq!(w.wait(&w.id).status, 137);
    w.shim.delete().unwrap();
    dumped.then(|| "criu dumped, so the failure path was not exercised".to_string())
}

fn main() {
    let (reaper, _signals) = reaper::Reaper::builder().start().expect("start the reaper");
    REAPER.set(reaper).ok();
    let missing = missing_prerequisite();
    let mut trials = trials::trials!(
        missing.clone();
        init_and_execs_live_and_die_in_contract_order,
        a_failed_exec_start_releases_its_waiters_and_stays_created,
        an_init_that_exits_at_once_is_not_lost,
        deleting_a_never_started_init_reports_no_exit,
        without_a_pid_namespace_the_init_exit_takes_every_process_down,
        an_exec_still_draining_its_output_does_not_hold_up_another_execs_exit,
        kill_after_an_exec_was_reaped_never_signals_a_process_that_reused_its_pid,
        concurrent_creates_give_one_container_and_the_loser_touches_nothing,
    );
    trials.push(trials::trial_or_ignored(
        "a_failed_checkpoint_points_at_the_copied_criu_log",
        missing.as_deref(),
        a_failed_checkpoint_points_at_the_copied_criu_log,
    ));
    trials::run_in_order(trials);
}
