//! Test harness: busybox bundles, the real shim binary under test, its client, and stdio fifos.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode as FileMode;
use nix::unistd::Pid;
use shim_proto::protobuf::{Any, Empty};
use shim_proto::shim::{
    CreateTaskRequest, KillRequest, ShimClient, StartRequest, StateRequest, StateResponse,
    WaitRequest, WaitResponse,
};

/// The shim under test; SHIM_IT_BINARY overrides it (e.g. /usr/bin/containerd-shim, the Go shim,
/// to check the tests' expectations against the original).
pub fn shim_binary() -> PathBuf {
    std::env::var_os("SHIM_IT_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_shim-runc-v1")),
        PathBuf::from,
    )
}
pub const RPC_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on waiting for anything the shim or a container should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(60);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{:x}", std::process::id(), nanos & 0xffff)
}

/// What this machine lacks for these tests (root, runc, busybox), if anything: every test is
/// then ignored, or failed under SHIM_REQUIRE_ROOT_TESTS=1 (`trials`).
pub fn missing() -> Option<String> {
    let why = if !nix::unistd::geteuid().is_root() {
        "not running as root"
    } else if which("runc").is_none() {
        "runc not found in PATH"
    } else if !Path::new("/usr/bin/busybox").exists() {
        "/usr/bin/busybox missing"
    } else {
        return None;
    };
    Some(why.to_string())
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("shim-it-"));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Build an OCI bundle at `dir` running `args` from a busybox rootfs; returns the cgroupsPath.
pub fn make_bundle(dir: &Path, id: &str, args: &[&str], terminal: bool) -> String {
    let bin = dir.join("rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        fs::create_dir_all(dir.join("rootfs").join(d)).unwrap();
    }
    if fs::hard_link("/usr/bin/busybox", bin.join("busybox")).is_err() {
        fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
    }
    for tool in [
        "sh", "sleep", "cat", "echo", "true", "head", "tty", "stty", "ls", "yes", "kill",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    let st = Command::new(which("runc").unwrap())
        .arg("spec")
        .arg("--bundle")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "runc spec failed");
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    let cgroups_path = format!("/shim-it-{id}");
    cfg["process"]["args"] = serde_json::json!(args);
    cfg["process"]["terminal"] = serde_json::json!(terminal);
    cfg["process"]["env"] = serde_json::json!(["PATH=/bin", "TERM=xterm"]);
    cfg["root"]["readonly"] = serde_json::json!(false);
    cfg["linux"]["cgroupsPath"] = serde_json::json!(cgroups_path);
    fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    cgroups_path
}

/// How the shim under test gets its listener.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// containerd-style: the test listens and passes the socket as fd 3.
    Fd3,
    /// `-socket unix://...`: the shim listens itself.
    Standalone,
}

/// The shim binary running for one container, with its own dirs; stopped and cleaned on drop.
pub struct ShimUnderTest {
    child: Option<Child>,
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    pub socket: PathBuf,
    pub cgroups_path: String,
    pub runc_root: PathBuf,
    log: Arc<LogSink>,
    log_thread: Option<JoinHandle<()>>,
    dir: TempDir,
}

/// The shim's log lines as they arrive.
#[derive(Default)]
struct LogSink {
    text: Mutex<(String, bool)>,
    changed: Condvar,
}

impl ShimUnderTest {
    /// A shim for a container running `args` (fd 3 mode).
    pub fn start(args: &[&str], terminal: bool) -> ShimUnderTest {
        Self::start_with(args, terminal, Mode::Fd3)
    }

    pub fn start_with(args: &[&str], terminal: bool, mode: Mode) -> ShimUnderTest {
        Self::start_full(args, terminal, mode, None)
    }

    /// `publisher`: a script made from this body, run as `-containerd-binary` (default /bin/true).
    pub fn start_full(
        args: &[&str],
        terminal: bool,
        mode: Mode,
        publisher: Option<&str>,
    ) -> ShimUnderTest {
        Self::start_publishing(args, terminal, mode, publisher, Path::new("/nonexistent"))
    }

    /// Like `start_full`, with `address` as containerd's address (`-address`): events go to
    /// `<address>.ttrpc` when that socket exists.
    pub fn start_publishing(
        args: &[&str],
        terminal: bool,
        mode: Mode,
        publisher: Option<&str>,
        address: &Path,
    ) -> ShimUnderTest {
        Self::start_inner(args, terminal, mode, publisher, address, None)
    }

    /// Like `start_full` (fd 3 mode), the shim started with RLIMIT_NOFILE `soft`/`hard`, as from
    /// a shell that ran `ulimit -n`.
    pub fn start_fd_limited(
        args: &[&str],
        publisher: Option<&str>,
        soft: u64,
        hard: u64,
    ) -> ShimUnderTest {
        Self::start_inner(
            args,
            false,
            Mode::Fd3,
            publisher,
            Path::new("/nonexistent"),
            Some((soft, hard)),
        )
    }

    fn start_inner(
        args: &[&str],
        terminal: bool,
        mode: Mode,
        publisher: Option<&str>,
        address: &Path,
        fd_limit: Option<(u64, u64)>,
    ) -> ShimUnderTest {
        let dir = TempDir::new();
        let containerd_binary = match publisher {
            None => PathBuf::from("/bin/true"),
            Some(body) => {
                use std::os::unix::fs::PermissionsExt;
                let p = dir.path().join("fake-containerd");
                fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
                p
            }
        };
        let id = unique("c");
        let namespace = unique("test-");
        let bundle = dir.path().join("bundle");
        let work = dir.path().join("work");
        let runtime_root = dir.path().join("runc");
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(&runtime_root).unwrap();
        let cgroups_path = make_bundle(&bundle, &id, args, terminal);
        let socket = dir.path().join("s.sock");

        // The shim's log: a fifo we read, like containerd does.
        let log_path = work.join("shim.stdout.log");
        nix::unistd::mkfifo(&log_path, FileMode::from_bits_truncate(0o700)).unwrap();
        let log = Arc::new(LogSink::default());
        let log_thread = {
            let log = log.clone();
            let path = log_path.clone();
            thread::spawn(move || collect_log(&path, &log))
        };

        let mut cmd = Command::new(shim_binary());
        cmd.args(["-namespace", &namespace, "-workdir"])
            .arg(&work)
            .arg("-address")
            .arg(address)
            .arg("-containerd-binary")
            .arg(&containerd_binary)
            .arg("-runtime-root")
            .arg(&runtime_root)
            .arg("-debug")
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let listener = match mode {
            Mode::Standalone => {
                cmd.arg("-socket")
                    .arg(format!("unix://{}", socket.display()));
                None
            }
            Mode::Fd3 => {
                let l = UnixListener::bind(&socket).unwrap();
                let fd = l.as_raw_fd();
                // SAFETY: dup2/fcntl are async-signal-safe.
                unsafe {
                    cmd.pre_exec(move || {
                        if fd == 3 {
                            if libc::fcntl(3, libc::F_SETFD, 0) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        } else if libc::dup2(fd, 3) != 3 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                Some(l)
            }
        };
        if let Some((soft, hard)) = fd_limit {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: setrlimit is async-signal-safe and reads a value copied into the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap();
        drop(listener);
        let shim = ShimUnderTest {
            child: Some(child),
            id,
            namespace: namespace.clone(),
            bundle,
            socket,
            cgroups_path,
            runc_root: runtime_root.join(&namespace),
            log,
            log_thread: Some(log_thread),
            dir,
        };
        if mode == Mode::Standalone {
            assert!(
                shim.wait_log("serving", PATIENCE),
                "shim did not start serving:\n{}",
                shim.log_text()
            );
        }
        shim
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn client(&self) -> ShimClient {
        let c = ttrpc::Client::connect(&format!("unix://{}", self.socket.display())).unwrap();
        ShimClient::new(c)
    }

    /// The shim's log so far.
    pub fn log_text(&self) -> String {
        self.log.text.lock().unwrap().0.clone()
    }

    /// Wait until a log line contains `needle`; false if the log ended or time ran out.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let guard = self.log.text.lock().unwrap();
        let (guard, _) = self
            .log
            .changed
            .wait_timeout_while(guard, limit, |(text, ended)| {
                !text.contains(needle) && !*ended
            })
            .unwrap();
        guard.0.contains(needle)
    }

    /// Create the task with no stdio (all "").
    pub fn create_plain(&self, client: &ShimClient) -> u32 {
        self.create(client, Stdio3::default())
    }

    pub fn create(&self, client: &ShimClient, io: Stdio3) -> u32 {
        let req = CreateTaskRequest {
            id: self.id.clone(),
            bundle: self.bundle.display().to_string(),
            stdin: io.stdin,
            stdout: io.stdout,
            stderr: io.stderr,
            terminal: io.terminal,
            ..Default::default()
        };
        client
            .create(ctx(), &req)
            .unwrap_or_else(|e| panic!("create: {e:?}\nshim log:\n{}", self.log_text()))
            .pid
    }

    pub fn start_task(&self, client: &ShimClient) -> u32 {
        client
            .start(
                ctx(),
                &StartRequest {
                    id: self.id.clone(),
                },
            )
            .unwrap_or_else(|e| panic!("start: {e:?}\nshim log:\n{}", self.log_text()))
            .pid
    }

    pub fn wait_for(&self, client: &ShimClient, id: &str) -> u32 {
        wait_response(client, id).exit_status
    }

    /// Paths of fifos made in this shim's dir (like containerd's per-process fifos).
    pub fn fifo(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        nix::unistd::mkfifo(&p, FileMode::from_bits_truncate(0o600)).unwrap();
        p
    }

    /// Container ids runc still knows in this shim's runc root.
    pub fn runc_list(&self) -> Vec<String> {
        let out = Command::new(which("runc").unwrap())
            .arg("--root")
            .arg(&self.runc_root)
            .args(["list", "-q"])
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn collect_log(path: &Path, sink: &LogSink) {
    // Blocks until the shim opens the fifo; Drop unblocks it if the shim never does.
    let Ok(f) = File::open(path) else { return };
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        let mut g = sink.text.lock().unwrap();
        g.0.push_str(&line);
        g.0.push('\n');
        sink.changed.notify_all();
    }
    sink.text.lock().unwrap().1 = true;
    sink.changed.notify_all();
}

impl Drop for ShimUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            // Graceful first (the shim kills and deletes its container), then force.
            let _ = kill(pid, Signal::SIGTERM);
            let (tx, rx) = mpsc::channel();
            let waiter = thread::spawn(move || {
                let _ = child.wait();
                let _ = tx.send(());
            });
            if rx.recv_timeout(Duration::from_secs(20)).is_err() {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = waiter.join();
        }
        for id in self.runc_list() {
            let _ = Command::new(which("runc").unwrap())
                .arg("--root")
                .arg(&self.runc_root)
                .args(["delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // runc removes the container's cgroups; this catches what a killed shim left behind.
        if let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let _ = fs::remove_dir(format!("{}{}", c.path().display(), self.cgroups_path));
            }
        }
        // Unblock the log reader if the shim never opened its log.
        if let Ok(f) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dir.path().join("work/shim.stdout.log"))
        {
            drop(f);
        }
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        if thread::panicking() {
            eprintln!("--- shim log ({}) ---\n{}", self.id, self.log_text());
        }
    }
}

/// Stdio URIs for Create/Exec.
#[derive(Default, Clone)]
pub struct Stdio3 {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// State of `id`, which must succeed.
pub fn state_now(client: &ShimClient, id: &str) -> StateResponse {
    client
        .state(ctx(), &StateRequest { id: id.to_string() })
        .unwrap()
}

/// Wait for `id`, which must succeed.
pub fn wait_response(client: &ShimClient, id: &str) -> WaitResponse {
    client
        .wait(ctx(), &WaitRequest { id: id.to_string() })
        .unwrap()
}

/// `Kill{id, signal}` (not `all`).
pub fn kill_process(client: &ShimClient, id: &str, signal: u32) -> ttrpc::Result<Empty> {
    client.kill(
        ctx(),
        &KillRequest {
            id: id.to_string(),
            signal,
            all: false,
        },
    )
}

pub fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_duration(RPC_TIMEOUT)
}

/// (code, message) of a failed call.
pub fn status_of<T>(r: ttrpc::Result<T>) -> (i32, String) {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) => (s.code, s.message),
        Err(e) => panic!("not a status: {e:?}"),
        Ok(_) => panic!("call succeeded, an error was expected"),
    }
}

/// An OCI process spec Any for Exec.
pub fn process_spec(args: &[&str], terminal: bool) -> Any {
    let spec = serde_json::json!({
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
    });
    shim_proto::any::pack_json(shim_proto::type_url::OCI_PROCESS, &spec)
}

/// What a reader thread got from an output fifo: its length and FNV-1a hash, and the first bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    pub len: u64,
    pub hash: u64,
    pub head: Vec<u8>,
}

pub const HEAD_KEEP: usize = 1 << 20;

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }
}

pub fn fnv1a(hash: u64, data: &[u8]) -> u64 {
    data.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Reads an output fifo to EOF on a thread (opened blocking, as a client would).
pub struct FifoReader {
    path: PathBuf,
    rx: mpsc::Receiver<Received>,
    handle: Option<JoinHandle<()>>,
}

impl FifoReader {
    pub fn start(path: &Path) -> FifoReader {
        let (tx, rx) = mpsc::channel();
        let p = path.to_path_buf();
        let handle = thread::spawn(move || {
            let Ok(mut f) = File::open(&p) else { return };
            let mut got = Received {
                len: 0,
                hash: FNV_OFFSET,
                head: Vec::new(),
            };
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got.len += n as u64;
                        got.hash = fnv1a(got.hash, &buf[..n]);
                        let keep = HEAD_KEEP.saturating_sub(got.head.len()).min(n);
                        got.head.extend_from_slice(&buf[..keep]);
                    }
                }
            }
            let _ = tx.send(got);
        });
        FifoReader {
            path: path.to_path_buf(),
            rx,
            handle: Some(handle),
        }
    }

    /// Everything until EOF (bounded by PATIENCE; panics if EOF never comes).
    pub fn finish(mut self) -> Received {
        let got = self
            .rx
            .recv_timeout(PATIENCE)
            .expect("output fifo never reached EOF");
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        got
    }
}

impl Drop for FifoReader {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            // Unblock an open() still waiting for a writer; a reading thread ends at the shim's exit.
            if let Ok(f) = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)
            {
                drop(f);
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

/// Writes `data` into a stdin fifo from a thread (open blocks until the shim opens its end), then closes.
pub struct FifoWriter {
    handle: Option<JoinHandle<std::io::Result<()>>>,
    path: PathBuf,
}

impl FifoWriter {
    pub fn start(path: &Path, data: Vec<u8>) -> FifoWriter {
        let p = path.to_path_buf();
        let handle = thread::spawn(move || {
            let mut f = OpenOptions::new().write(true).open(&p)?;
            f.write_all(&data)
        });
        FifoWriter {
            handle: Some(handle),
            path: path.to_path_buf(),
        }
    }

    pub fn finish(mut self) {
        if let Some(h) = self.handle.take() {
            h.join().unwrap().unwrap();
        }
    }
}

impl Drop for FifoWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            // Unblock an open() waiting for a reader.
            if let Ok(f) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)
            {
                drop(f);
            }
            let _ = h.join();
        }
    }
}

/// A stdin fifo the test keeps open for writing (for line-by-line input, e.g. a terminal).
pub fn open_writer(path: &Path) -> mpsc::Receiver<File> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    thread::spawn(move || {
        if let Ok(f) = OpenOptions::new().write(true).open(&p) {
            let _ = tx.send(f);
        }
    });
    rx
}

/// A shim whose init (`args`, no stdio) is created and started.
pub fn running(args: &[&str]) -> (ShimUnderTest, ShimClient, u32) {
    let shim = ShimUnderTest::start(args, false);
    let client = shim.client();
    let created = shim.create_plain(&client);
    let started = shim.start_task(&client);
    assert_eq!(
        created, started,
        "Start must report the pid Create returned"
    );
    (shim, client, started)
}

/// Exec `args` as `exec_id` with the given stdio and start it; returns its pid.
pub fn exec_started(
    shim: &ShimUnderTest,
    client: &ShimClient,
    exec_id: &str,
    args: &[&str],
    io: Stdio3,
) -> u32 {
    let req = shim_proto::shim::ExecProcessRequest {
        id: exec_id.to_string(),
        terminal: io.terminal,
        stdin: io.stdin,
        stdout: io.stdout,
        stderr: io.stderr,
        spec: Some(process_spec(args, io.terminal)),
    };
    client
        .exec(ctx(), &req)
        .unwrap_or_else(|e| panic!("exec {exec_id}: {e:?}\n{}", shim.log_text()));
    client
        .start(
            ctx(),
            &StartRequest {
                id: exec_id.to_string(),
            },
        )
        .unwrap_or_else(|e| panic!("start {exec_id}: {e:?}\n{}", shim.log_text()))
        .pid
}
