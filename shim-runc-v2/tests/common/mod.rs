//! Harness for running the shim binary as containerd runs it: a private mount namespace with its
//! own /run/containerd, a stand-in containerd socket, bundles in a temp dir, and every daemon the
//! test started killed and reaped at the end.

#![allow(dead_code)] // each test file uses its part

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_containerd-shim-rsrunc-v2");
/// Bound on one run of the binary: `start` must return at once, its daemon detached.
pub const RUN_BOUND: Duration = Duration::from_secs(20);
pub const NAMESPACE: &str = "v2-test";

/// One test's world: temp dir, mount namespace, a socket standing in for containerd.
pub struct World {
    pub dir: PathBuf,
    holder: Child,
    /// Held open so `start` finds containerd answering; never accepted from (the backlog keeps
    /// the few probes a test makes).
    _containerd: UnixListener,
}

impl World {
    pub fn new(tag: &str) -> World {
        static SUBREAPER: Once = Once::new();
        // Orphaned daemons come to us, so we can reap the ones we kill (pid 1 here does not).
        SUBREAPER.call_once(|| {
            // SAFETY: plain prctl with integer arguments.
            let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
        });
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rsrunc-v2-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let containerd =
            UnixListener::bind(dir.join("containerd.sock")).expect("bind containerd.sock");
        fs::create_dir_all("/run/containerd").expect("mkdir /run/containerd (mount point)");
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/containerd && echo ready && exec sleep infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the mount namespace holder");
        let mut line = String::new();
        let out = holder.stdout.take().expect("holder stdout");
        let _ = BufReader::new(out).read_line(&mut line);
        assert_eq!(line.trim(), "ready", "mount namespace holder failed");
        World {
            dir,
            holder,
            _containerd: containerd,
        }
    }

    pub fn containerd_address(&self) -> String {
        self.dir
            .join("containerd.sock")
            .to_string_lossy()
            .into_owned()
    }

    /// A bundle directory for `id` with a config.json carrying `annotations`.
    pub fn bundle(&self, id: &str, annotations: &[(&str, &str)]) -> PathBuf {
        let b = self.dir.join("bundles").join(id);
        fs::create_dir_all(&b).expect("bundle dir");
        let annotations: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let spec = serde_json::json!({"ociVersion": "1.0.2", "annotations": annotations});
        fs::write(b.join("config.json"), spec.to_string()).expect("config.json");
        b
    }

    /// `program args...` inside the mount namespace (entering it moves the cwd to its `/`).
    pub fn in_ns(&self, program: &str) -> Command {
        self.in_ns_at(Path::new("/"), program)
    }

    /// `program args...` inside the mount namespace, in `cwd`.
    pub fn in_ns_at(&self, cwd: &Path, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m"])
            .arg(format!("--wd={}", cwd.display()))
            .args(["--", program]);
        cmd
    }

    /// The shim binary inside the namespace, as containerd 1.7 would run it (cwd the bundle,
    /// containerd's flags; environment set by the caller).
    pub fn shim(&self, bundle: &Path, id: &str, action: &str) -> Command {
        self.shim_with(&self.containerd_address(), bundle, id, &[], action)
    }

    /// [`World::shim`] with another containerd address.
    pub fn shim_at(&self, address: &str, bundle: &Path, id: &str, action: &str) -> Command {
        self.shim_with(address, bundle, id, &[], action)
    }

    /// `delete` as containerd runs it (with `-bundle`).
    pub fn delete(&self, bundle: &Path, id: &str) -> Output {
        let bundle_flag = bundle.to_string_lossy();
        let flags = ["-bundle", bundle_flag.as_ref()];
        run_bounded(self.shim_with(&self.containerd_address(), bundle, id, &flags, "delete"))
    }

    /// The shim with containerd's flags, then `flags`, then `action`.
    pub fn shim_with(
        &self,
        address: &str,
        bundle: &Path,
        id: &str,
        flags: &[&str],
        action: &str,
    ) -> Command {
        let mut cmd = self.in_ns_at(bundle, BIN);
        cmd.args(["-namespace", NAMESPACE, "-address", address])
            .args(["-publish-binary", "/usr/bin/containerd", "-id", id])
            .args(flags)
            .args((!action.is_empty()).then_some(action))
            .env_remove("MAX_SHIM_VERSION")
            .env_remove("NAMESPACE")
            .env_remove("GRPC_ADDRESS")
            .env(
                "TTRPC_ADDRESS",
                format!("{}.ttrpc", self.containerd_address()),
            )
            .stdin(Stdio::null());
        cmd
    }

    /// `start` for `id` in `bundle`, with `MAX_SHIM_VERSION` if given.
    pub fn start(&self, bundle: &Path, id: &str, max_shim_version: Option<&str>) -> Output {
        let mut cmd = self.shim(bundle, id, "start");
        if let Some(v) = max_shim_version {
            cmd.env("MAX_SHIM_VERSION", v);
        }
        run_bounded(cmd)
    }

    /// Whether `path` exists inside the namespace.
    pub fn exists_in_ns(&self, path: &str) -> bool {
        let mut cmd = self.in_ns("test");
        cmd.args(["-e", path]);
        run_bounded(cmd).status.success()
    }

    /// The daemons of this world: our binary running with its cwd in one of our bundles.
    pub fn daemons(&self) -> Vec<i32> {
        let bundles = self.dir.join("bundles");
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let exe = fs::read_link(entry.path().join("exe")).unwrap_or_default();
            let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
            let zombie = fs::read_to_string(entry.path().join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            if exe == Path::new(BIN) && cwd.starts_with(&bundles) && !zombie {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGKILL a daemon and reap it (it is our orphan, or our child's).
    pub fn kill_daemon(&self, pid: i32) {
        // SAFETY: kill and waitpid on a pid this test started.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pid in self.daemons() {
            self.kill_daemon(pid);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Run `cmd` to completion with its output captured; panic if it takes longer than RUN_BOUND
/// (a `start` whose daemon kept the output pipes open would never finish).
pub fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let start = Instant::now();
    match rx.recv_timeout(RUN_BOUND) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            // SAFETY: kill on the pid of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} did not finish within {:?}", start.elapsed());
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `unix:///run/containerd/s/<64 hex>`?
pub fn is_shim_address(s: &str) -> bool {
    s.strip_prefix("unix:///run/containerd/s/")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
