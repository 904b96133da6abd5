//! Test harness: busybox bundles, a Go shim started like containerd does, running shim-ctl, cleanup.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const GO_SHIM: &str = "/usr/bin/containerd-shim";
pub const BUSYBOX: &str = "/usr/bin/busybox";
pub const NAMESPACE: &str = "shimctltest";

fn require_all() -> bool {
    std::env::var("SHIM_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1")
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// True when root, runc, busybox and the Go shim are here; otherwise prints why (or panics
/// when SHIM_REQUIRE_ROOT_TESTS=1).
pub fn root_and_runc(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("not root".to_string())
    } else if which("runc").is_none() {
        Some("runc not on PATH".to_string())
    } else if !Path::new(BUSYBOX).is_file() {
        Some(format!("{BUSYBOX} missing"))
    } else if !Path::new(GO_SHIM).is_file() {
        Some(format!("{GO_SHIM} missing"))
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if require_all() => panic!("{test}: SHIM_REQUIRE_ROOT_TESTS=1 but {why}"),
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// Our shim binary, built next to shim-ctl.
pub fn our_shim() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_shim-ctl")).with_file_name("shim-runc-v1")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sct-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A busybox bundle `<tmp>/<id>` (config from `runc spec`) plus a runc root; on drop the
/// container is force-deleted and the dir removed.
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub runc_root: PathBuf,
    pub workdir: PathBuf,
    pub tmp: TempDir,
}

impl Bundle {
    /// `args` is the init process.
    pub fn new(tag: &str, args: &[&str]) -> Bundle {
        let tmp = TempDir::new(tag);
        let id = format!(
            "{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tmp.0.join(&id);
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in [
            "sh", "sleep", "cat", "echo", "true", "stty", "env", "id", "pwd",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let st = Command::new("runc")
            .arg("spec")
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "runc spec failed");
        let path = dir.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(args);
        cfg["linux"]["cgroupsPath"] = format!("/shim-ctl-test-{id}").into();
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        let runc_root = tmp.0.join("runc");
        let workdir = tmp.0.join("work");
        std::fs::create_dir_all(&workdir).unwrap();
        Bundle {
            id,
            dir,
            runc_root,
            workdir,
            tmp,
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root.join(NAMESPACE))
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The Go containerd-shim, started as containerd does: listening socket on fd 3, cwd = bundle,
/// own process group. Killed and reaped on drop.
pub struct GoShim {
    pub address: String,
    child: Child,
}

impl GoShim {
    pub fn start(b: &Bundle) -> GoShim {
        let sock = b.tmp.0.join("go-shim.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(GO_SHIM);
        cmd.args(["-namespace", NAMESPACE, "-workdir"])
            .arg(&b.workdir)
            .args([
                "-address",
                "/nonexistent",
                "-containerd-binary",
                "/bin/true",
                "-runtime-root",
            ])
            .arg(&b.runc_root)
            .current_dir(&b.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: dup2/fcntl only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let rc = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(listener);
        let address = format!("unix://{}", sock.display());
        std::fs::write(b.dir.join("address"), &address).unwrap();
        std::fs::write(b.dir.join("shim.pid"), child.id().to_string()).unwrap();
        GoShim { address, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs shim-ctl with `args`; stdin from /dev/null unless `input` is given.
pub fn shim_ctl(args: &[&str]) -> Output {
    shim_ctl_with_input(args, None)
}

pub fn shim_ctl_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shim-ctl"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "shim-ctl failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

pub fn json(o: Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}
