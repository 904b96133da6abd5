//! Test harness: busybox bundles, either shim started like containerd does, running shim-ctl, cleanup.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod v2;

pub const GO_SHIM: &str = "/usr/bin/containerd-shim";
pub const BUSYBOX: &str = "/usr/bin/busybox";
pub const NAMESPACE: &str = "shimctltest";

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Which shim a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// containerd's Go containerd-shim, the reference.
    Go,
    /// Our shim-runc-v1, built in this workspace.
    Ours,
}

impl Kind {
    pub fn binary(self) -> PathBuf {
        match self {
            Kind::Go => PathBuf::from(GO_SHIM),
            Kind::Ours => our_shim(),
        }
    }
}

/// What is missing to drive the `kind` shim here (root, runc, busybox, its binary), if anything:
/// its tests are then ignored, or failed under SHIM_REQUIRE_ROOT_TESTS=1 (`trials`).
pub fn missing(kind: Kind) -> Option<String> {
    let shim = kind.binary();
    if !nix::unistd::geteuid().is_root() {
        Some("not root".to_string())
    } else if which("runc").is_none() {
        Some("runc not on PATH".to_string())
    } else if !Path::new(BUSYBOX).is_file() {
        Some(format!("{BUSYBOX} missing"))
    } else if !shim.is_file() {
        Some(match kind {
            Kind::Go => format!("{} missing", shim.display()),
            Kind::Ours => format!(
                "{} missing: build it with `cargo build -p shim-runc-v1`",
                shim.display()
            ),
        })
    } else {
        None
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

impl Bundle {
    /// Gives the init a terminal (config.json `process.terminal`), as `create --terminal` needs.
    pub fn set_terminal(&self) {
        let path = self.dir.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["process"]["terminal"] = true.into();
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
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

/// A shim (Go's or ours), started as containerd does: listening socket on fd 3, cwd = bundle,
/// own process group; `address` and `shim.pid` written into the bundle. Killed and reaped on drop.
pub struct RunningShim {
    pub address: String,
    child: Child,
}

impl RunningShim {
    pub fn start(b: &Bundle, kind: Kind) -> RunningShim {
        let sock = b.tmp.0.join("shim.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(kind.binary());
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
        RunningShim { address, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs shim-ctl with `args`; stdin from /dev/null unless `input` is given. After HANG_GUARD
/// it is killed and the test fails (a guard, not a timing).
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
        let data = data.to_vec();
        // On a thread: shim-ctl may end before it has read it all (a process that does not
        // read its stdin), and reading its output must not wait for the input to go in.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    wait_guarded(child, Child::wait_with_output)
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

/// How long `Collector::until` waits before failing the test: a guard against a hang, not a
/// timing the test checks.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// What a reader (a child's stdout, a fifo) yields, gathered on a thread of its own.
pub struct Collector {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    pub seen: String,
}

impl Collector {
    pub fn spawn(mut r: impl std::io::Read + Send + 'static) -> Collector {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Collector {
            rx,
            seen: String::new(),
        }
    }

    /// Blocks until what was read so far (with `\r` removed) contains `pattern`.
    pub fn until(&mut self, pattern: &str) -> &str {
        while !self.seen.contains(pattern) {
            match self.rx.recv_timeout(HANG_GUARD) {
                Ok(chunk) => self
                    .seen
                    .push_str(&String::from_utf8_lossy(&chunk).replace('\r', "")),
                Err(e) => panic!("waiting for {pattern:?} ({e}); got {:?}", self.seen),
            }
        }
        &self.seen
    }
}

/// Makes a fifo and opens it O_RDWR, so neither we nor the shim's writer ever block on open.
pub fn fifo(path: &Path) -> std::fs::File {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// shim-ctl with `args` as a child with piped stdin and stdout (stderr inherited).
pub fn shim_ctl_child(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shim-ctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for `child`; after HANG_GUARD it is killed and the test fails (a guard, not a timing).
pub fn wait_child(child: Child) -> std::process::ExitStatus {
    wait_guarded(child, |mut c| c.wait())
}

/// Runs `wait` on `child` on a thread of its own; after HANG_GUARD the child is killed and the
/// test fails (a guard, not a timing).
fn wait_guarded<T: Send + 'static>(
    child: Child,
    wait: impl FnOnce(Child) -> std::io::Result<T> + Send + 'static,
) -> T {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait(child));
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(waited) => waited.unwrap(),
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("child {pid} did not exit ({e})");
        }
    }
}
