//! Runc against the real runc: a busybox container created, started, listed, killed and deleted,
//! with its stdout through ProcessIo; and a failing create worded from log.json.

#[path = "fixtures/common.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{mkfifo, TempDir};
use shim_core::io::{IoOwner, IoSpec, ProcessIo};
use shim_core::runc::{CreateOpts, Runc, RuncConfig, RuncOp};

static REAPER: OnceLock<reaper::Reaper> = OnceLock::new();

/// Why these tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if which("runc").is_none() {
        return Some("runc not found in PATH".into());
    }
    if !Path::new("/usr/bin/busybox").exists() {
        return Some("/usr/bin/busybox (busybox-static) missing".into());
    }
    None
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    })
}

/// Run a helper command through the reaper (Child::wait would race the reaper for the status).
fn run(cmd: &mut Command) {
    let spawned = REAPER.get().unwrap().spawn(cmd).unwrap();
    let exit = spawned.exit.wait();
    assert_eq!(exit.status, 0, "{cmd:?}");
}

/// A bundle with a busybox rootfs and `args` as the process.
fn bundle(dir: &TempDir, args: &[&str]) -> PathBuf {
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
    for tool in ["sh", "sleep", "cat", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    run(Command::new("runc").arg("spec").current_dir(&bundle));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = serde_json::json!(false);
    config["root"]["readonly"] = serde_json::json!(false);
    let unique = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    config["linux"]["cgroupsPath"] = serde_json::json!(format!("/shim-core-test-{unique}"));
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    bundle
}

fn runc_for(dir: &TempDir, bundle: &Path) -> Runc {
    let cfg = RuncConfig {
        binary: PathBuf::from("runc"),
        root: dir.join("runc-root"),
        log: bundle.join("log.json"),
        criu: None,
        systemd_cgroup: false,
        timeout: Duration::from_secs(60),
    };
    Runc::new(cfg, REAPER.get().unwrap().clone())
}

/// Force-deletes the container even when an assertion failed half way.
struct Cleanup<'a>(&'a Runc, &'a str);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(self.1, true);
    }
}

fn owner() -> IoOwner {
    IoOwner::default()
}

fn a_created_started_and_killed_container_streams_its_output_and_deletes_cleanly() {
    let dir = TempDir::new("runc-real");
    let bundle = bundle(
        &dir,
        &["sh", "-c", "echo hello-from-busybox; exec sleep 1000"],
    );
    let runc = runc_for(&dir, &bundle);
    let id = format!("shim-core-{}", std::process::id());
    let _cleanup = Cleanup(&runc, &id);

    let out = dir.join("stdout");
    mkfifo(&out);
    let spec = IoSpec {
        stdout: out.display().to_string(),
        ..Default::default()
    };
    let (mut io, stdio) = ProcessIo::new(&spec, owner()).unwrap();
    let opts = CreateOpts {
        pid_file: bundle.join("init.pid"),
        ..Default::default()
    };
    runc.create(&id, &bundle, &opts, stdio).unwrap();
    io.start().unwrap();
    let pid: u32 = std::fs::read_to_string(bundle.join("init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    runc.start(&id).unwrap();
    let mut line = String::new();
    BufReader::new(std::fs::File::open(&out).unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "hello-from-busybox\n");
    assert_eq!(runc.ps(&id).unwrap(), vec![pid]);

    runc.kill(&id, 9, false).unwrap();
    assert!(
        io.wait_drained(Duration::from_secs(60)),
        "stdout reached EOF once the container died"
    );
    io.close();
    runc.delete(&id, true).unwrap();
    let err = runc.delete(&id, false).unwrap_err();
    assert!(err.is_not_exist(), "{err}");
    assert!(
        err.to_string().starts_with("failed to delete task: "),
        "{err}"
    );
}

fn failing_create_is_worded_from_log_json() {
    let dir = TempDir::new("runc-real");
    let bundle = bundle(&dir, &["/bin/nonexistent"]);
    let runc = runc_for(&dir, &bundle);
    let id = format!("shim-core-bad-{}", std::process::id());
    let _cleanup = Cleanup(&runc, &id);
    let (io, stdio) = ProcessIo::new(&IoSpec::default(), owner()).unwrap();
    let opts = CreateOpts {
        pid_file: bundle.join("init.pid"),
        ..Default::default()
    };
    let err = runc.create(&id, &bundle, &opts, stdio).unwrap_err();
    io.close();
    assert_eq!(err.op, RuncOp::Create);
    let text = err.to_string();
    assert!(text.starts_with("OCI runtime create failed: "), "{text}");
    assert!(text.contains("/bin/nonexistent"), "{text}");
    assert!(
        !text.contains("did not terminate successfully"),
        "message came from log.json: {text}"
    );
}

fn main() {
    let (reaper, _signals) = reaper::Reaper::builder().start().expect("start the reaper");
    REAPER.set(reaper).ok();
    trials::run_in_order(trials::trials!(
        missing_prerequisite();
        a_created_started_and_killed_container_streams_its_output_and_deletes_cleanly,
        failing_create_is_worded_from_log_json,
    ));
}
