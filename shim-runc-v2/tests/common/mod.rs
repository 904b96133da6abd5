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

/// containerd's ttrpc `Events.Forward`, standing in at `<containerd address>.ttrpc`: every event
/// a daemon publishes, in arrival order.
#[derive(Default)]
pub struct Events {
    got: std::sync::Mutex<Vec<(String, shim_proto::protobuf::Any)>>,
    changed: std::sync::Condvar,
}

impl Events {
    /// Serve Forward at `<world's containerd address>.ttrpc` for the life of the test process.
    pub fn serve(w: &World) -> std::sync::Arc<Events> {
        let events = std::sync::Arc::new(Events::default());
        let address = format!("unix://{}.ttrpc", w.containerd_address());
        shim_host::server::start(
            shim_host::server::Listen::Address(&address),
            std::sync::Arc::clone(&events) as std::sync::Arc<dyn shim_host::server::Service>,
        )
        .expect("serve the fake Events service");
        events
    }

    /// The topics received so far.
    pub fn topics(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Every event received so far.
    pub fn all(&self) -> Vec<(String, shim_proto::protobuf::Any)> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `n` events have arrived (or RUN_BOUND passes); the topics.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        self.wait_until(|topics| topics.len() >= n)
    }

    /// Wait until the topics so far satisfy `done` (or RUN_BOUND passes); the topics.
    pub fn wait_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let got = self.got.lock().unwrap();
        let topics = |g: &Vec<(String, shim_proto::protobuf::Any)>| -> Vec<String> {
            g.iter().map(|(t, _)| t.clone()).collect()
        };
        let (got, _) = self
            .changed
            .wait_timeout_while(got, RUN_BOUND, |g| !done(&topics(g)))
            .unwrap();
        topics(&got)
    }
}

impl shim_host::server::Service for Events {
    fn serves(&self, name: &str) -> bool {
        name == "containerd.services.events.ttrpc.v1.Events"
    }

    fn call(
        &self,
        _service: &str,
        _method: &str,
        payload: &[u8],
        respond: Box<dyn shim_host::server::Respond>,
    ) {
        use prost::Message;
        let req =
            shim_proto::events_ttrpc::ForwardRequest::decode(payload).expect("ForwardRequest");
        let envelope = req.envelope.expect("envelope");
        assert_eq!(envelope.namespace, NAMESPACE);
        self.got
            .lock()
            .unwrap()
            .push((envelope.topic, envelope.event.unwrap_or_default()));
        self.changed.notify_all();
        respond.respond(Ok(shim_proto::protobuf::Empty {}.encode_to_vec()));
    }
}

/// Make `bundle` a runnable busybox bundle running `args` (config from `runc spec`).
pub fn busybox_bundle(bundle: &Path, id: &str, args: &[&str]) {
    busybox_bundle_with(bundle, id, args, |_| {})
}

/// [`busybox_bundle`], with `edit` applied to the spec last.
pub fn busybox_bundle_with(
    bundle: &Path,
    id: &str,
    args: &[&str],
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let bin = bundle.join("rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    if fs::hard_link("/usr/bin/busybox", bin.join("busybox")).is_err() {
        fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
    }
    for tool in ["sh", "sleep", "true", "head", "tail"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    let _ = fs::remove_file(bundle.join("config.json"));
    let st = Command::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(bundle)
        .status()
        .expect("runc spec");
    assert!(st.success(), "runc spec failed");
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(args);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    cfg["root"]["readonly"] = serde_json::json!(false);
    // Unique per world (its dir: tag, pid, counter) and container: tests never share a cgroup.
    let world = bundle
        .ancestors()
        .nth(2)
        .and_then(|w| w.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    cfg["linux"]["cgroupsPath"] = serde_json::json!(format!("/{world}-{id}"));
    edit(&mut cfg);
    fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

/// One task API call over a fresh connection to the daemon's socket.
pub fn call<Req: prost::Message, Resp: prost::Message + Default>(
    socket: &Path,
    method: &str,
    req: &Req,
) -> Result<Resp, shim_host::wire::CallError> {
    let bytes = shim_host::wire::call(
        socket,
        "containerd.task.v2.Task",
        method,
        req.encode_to_vec(),
        RUN_BOUND,
    )?;
    Ok(Resp::decode(bytes.as_slice()).expect("decodable response"))
}

/// The socket of the world's only daemon, reached from outside its mount namespace.
pub fn daemon_socket(w: &World, address: &str) -> (i32, PathBuf) {
    let pids = w.daemons();
    assert_eq!(pids.len(), 1, "one daemon");
    let path = address.trim_start_matches("unix://");
    (
        pids[0],
        PathBuf::from(format!("/proc/{}/root{path}", pids[0])),
    )
}
