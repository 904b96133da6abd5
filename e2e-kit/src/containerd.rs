//! A private containerd for one test and one shim: its own temp dir, namespace and mount namespace,
//! driven with `ctr`, restartable in the same mount namespace, and torn down completely on drop.
//!
//! [`Setup`] says which containerd binaries run it and which runtime (and shim) its tasks use.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::cgroup;
use crate::events::Events;
use crate::proc::{self, Exit, Output, Proc};
use crate::rootfs;
use crate::sys;

/// The v1 runtime (containerd 1.x): one shim per task, the shim named in the config.
pub const RUNTIME: &str = "io.containerd.runtime.v1.linux";
/// The runtime name of v2 tasks here: containerd looks up `containerd-shim-runc-v2` on its PATH
/// (a symlink to the shim under test, first on that PATH). Not the shim's absolute path,
/// though containerd takes one: ctr sends runc options (`--runc-binary`, our logging runc
/// wrapper) only for this name (every ctr: "only supported for io.containerd.runc.v2").
pub const RUNTIME_V2: &str = "io.containerd.runc.v2";
/// The directory of v2 bundles (and, under root, of their work dirs).
pub const RUNTIME_V2_DIR: &str = "io.containerd.runtime.v2.task";
/// Bound for one ctr call (a hung ctr fails the row instead of the suite).
pub const CTR_BOUND: Duration = Duration::from_secs(60);
/// Bound for containerd to answer `ctr version` after start.
const READY_BOUND: Duration = Duration::from_secs(30);

/// Which containerd binaries: a bin dir holding `containerd`, `ctr` and Go's
/// `containerd-shim-runc-v2`, or those on PATH (the system's).
#[derive(Clone, Debug)]
pub struct Build {
    /// `None`: `containerd` and `ctr` as found on PATH.
    pub bin: Option<PathBuf>,
    /// `major.minor` of `containerd --version` (`1.6`, `1.7`, `2.1`), `?` if it would not say.
    pub version: String,
}

impl Build {
    /// The system's containerd and ctr, found on PATH (its version asked once per process).
    pub fn system() -> Build {
        static VERSION: OnceLock<String> = OnceLock::new();
        let version = VERSION.get_or_init(|| version_of(Path::new("containerd")));
        Build {
            bin: None,
            version: version.clone(),
        }
    }

    /// The containerd, ctr and Go shim of `bin` (a `usr/bin` holding them).
    pub fn in_dir(bin: &Path) -> Build {
        Build {
            version: version_of(&bin.join("containerd")),
            bin: Some(bin.to_path_buf()),
        }
    }

    /// `containerd`, `ctr` (…): the path in the bin dir, or the bare name for a PATH lookup.
    pub fn tool(&self, name: &str) -> PathBuf {
        match &self.bin {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// Go's runc v2 shim of this containerd: beside it (from PATH for the system's).
    pub fn go_shim_v2(&self) -> PathBuf {
        match &self.bin {
            Some(dir) => dir.join("containerd-shim-runc-v2"),
            None => find_on_path("containerd-shim-runc-v2"),
        }
    }

    /// 2 for containerd 1.x, 3 for 2.x (`containerd config default` says which).
    pub fn config_version(&self) -> u32 {
        if self.major() >= 2 {
            3
        } else {
            2
        }
    }

    fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(1)
    }
}

/// `major.minor` from `containerd --version` (`containerd <module> 1.6.20~ds1 <rev>`; Debian's
/// 2.x says `2.1.9+unknown`).
fn version_of(containerd: &Path) -> String {
    let mut cmd = Command::new(containerd);
    cmd.arg("--version");
    let out = proc::run(cmd, CTR_BOUND, None);
    out.stdout
        .split_whitespace()
        .nth(2)
        .map(|v| {
            let v = v.trim_start_matches('v');
            let mut parts = v.split(|c: char| !c.is_ascii_digit());
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => format!("{a}.{b}"),
                _ => "?".to_string(),
            }
        })
        .unwrap_or_else(|| "?".to_string())
}

/// Which runtime the tasks of this containerd use, with which shim binary.
#[derive(Clone, Debug)]
pub enum Runtime {
    /// `io.containerd.runtime.v1.linux`, the shim set as the plugin's `shim` (containerd 1.x).
    V1 { shim: PathBuf },
    /// Task v2 as [`RUNTIME_V2`], run by `shim` (through a `containerd-shim-runc-v2` symlink
    /// first on containerd's PATH); runc is the logging wrapper, given as `--runc-binary`.
    V2 { shim: PathBuf },
}

impl Runtime {
    pub fn shim(&self) -> &Path {
        match self {
            Runtime::V1 { shim } | Runtime::V2 { shim } => shim,
        }
    }

    /// The directory name of bundles and work dirs under containerd's state and root.
    fn dir_name(&self) -> &'static str {
        match self {
            Runtime::V1 { .. } => RUNTIME,
            Runtime::V2 { .. } => RUNTIME_V2_DIR,
        }
    }
}

/// Everything that tells one private containerd from another.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Short label of the shim for namespaces and reports: `go`, `ours`.
    pub label: String,
    pub build: Build,
    pub runtime: Runtime,
}

/// One private containerd. Every method panics on harness failure (this is test code).
pub struct Containerd {
    pub setup: Setup,
    /// The containerd namespace: unique per test run, row and shim.
    pub ns: String,
    pub dir: PathBuf,
    holder: Option<Proc>,
    daemon: Option<Proc>,
    generation: u32,
    /// Directories put on containerd's PATH after the shim link dir, before the inherited PATH
    /// (from the next start on).
    path_dirs: Vec<PathBuf>,
    /// containerd logs at debug level (from the next start on).
    debug: bool,
    pub events: Events,
}

fn find_on_path(tool: &str) -> PathBuf {
    env::var_os("PATH")
        .and_then(|p| {
            env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// Single-quotes `s` for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn with_pdeathsig(cmd: &mut Command) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(sys::set_parent_death_signal);
    }
}

impl Containerd {
    /// Starts a private containerd as `setup` says, for the row `tag`.
    pub fn start(setup: &Setup, tag: &str) -> Containerd {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ns = format!("e2e-{}-{n}-{tag}-{}", std::process::id(), setup.label);
        let dir = PathBuf::from(format!("/tmp/{ns}"));
        let _ = fs::remove_dir_all(&dir);
        for d in ["root", "state", "opt"] {
            fs::create_dir_all(dir.join(d)).expect("create temp dirs");
        }
        let mut cd = Containerd {
            setup: setup.clone(),
            ns,
            dir,
            holder: None,
            daemon: None,
            generation: 0,
            path_dirs: Vec::new(),
            debug: false,
            events: Events::default(),
        };
        rootfs::busybox(&cd.rootfs()).expect("busybox rootfs");
        cd.write_runc_wrapper();
        cd.link_shim();
        cd.write_config();
        cd.start_holder();
        cd.start_daemon();
        cd
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `<state>/io.containerd.runtime.v1.linux/<ns>/<id>`, for v2
    /// `<state>/io.containerd.runtime.v2.task/<ns>/<id>`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        let runtime = self.setup.runtime.dir_name();
        self.dir.join("state").join(runtime).join(&self.ns).join(id)
    }

    /// `<root>/io.containerd.runtime.v1.linux/<ns>/<id>`, for v2
    /// `<root>/io.containerd.runtime.v2.task/<ns>/<id>` (a v2 bundle's `work` links to it).
    pub fn workdir(&self, id: &str) -> PathBuf {
        let runtime = self.setup.runtime.dir_name();
        self.dir.join("root").join(runtime).join(&self.ns).join(id)
    }

    /// The directory first on containerd's PATH for v2: `containerd-shim-runc-v2` links to the
    /// shim under test there.
    fn shim_link_dir(&self) -> PathBuf {
        self.dir.join("shim-bin")
    }

    fn read_pid(&self, id: &str, file: &str) -> i32 {
        let p = self.bundle(id).join(file);
        let s = fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        s.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {s:?}: {e}", p.display()))
    }

    /// The pid of the shim serving `id`. v1: the bundle's `shim.pid` (containerd writes it).
    /// v2: no file names it (Go's v2 shims write none), so it is the process of this
    /// namespace holding the shim's socket, the one the task's address names.
    pub fn shim_pid(&self, id: &str) -> i32 {
        match self.setup.runtime {
            Runtime::V1 { .. } => self.read_pid(id, "shim.pid"),
            Runtime::V2 { .. } => {
                let address = self.shim_address(id);
                let path = address.trim_start_matches("unix://");
                let inodes = sys::unix_socket_inodes(path);
                let pids = self.shim_pids();
                pids.iter()
                    .copied()
                    .find(|pid| sys::holds_socket(*pid, &inodes))
                    .unwrap_or_else(|| {
                        panic!("no shim of {} holds {address} (shims: {pids:?})", self.ns)
                    })
            }
        }
    }

    /// The ttrpc address of `id`'s shim: the bundle's `address` (v1, and v2 under containerd
    /// 1.x), else the `address` of its `bootstrap.json` (containerd 2.x writes only that).
    pub fn shim_address(&self, id: &str) -> String {
        let b = self.bundle(id);
        if let Ok(a) = fs::read_to_string(b.join("address")) {
            return a.trim().to_string();
        }
        let p = b.join("bootstrap.json");
        let json = fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: neither address nor bootstrap.json: {e}", b.display()));
        json_string(&json, "address")
            .unwrap_or_else(|| panic!("no address in {}: {json}", p.display()))
    }

    pub fn init_pid(&self, id: &str) -> i32 {
        self.read_pid(id, "init.pid")
    }

    pub fn daemon_pid(&self) -> i32 {
        self.daemon.as_ref().expect("containerd is running").pid()
    }

    /// Every runc command line the shims (and containerd) ran, one per line, without `runc`.
    pub fn runc_calls(&self) -> String {
        fs::read_to_string(self.dir.join("runc-calls.log")).unwrap_or_default()
    }

    /// Everything containerd (and, with shim_debug, the shims) logged, all generations.
    pub fn log(&self) -> String {
        (0..=self.generation)
            .filter_map(|g| fs::read_to_string(self.dir.join(format!("containerd-{g}.log"))).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The log file of the containerd running now (this generation only).
    pub fn log_of_this_generation(&self) -> PathBuf {
        self.dir.join(format!("containerd-{}.log", self.generation))
    }

    /// `<dir>/runc`: logs its command line to `runc-calls.log`, then runs runc.
    pub fn runc_wrapper(&self) -> PathBuf {
        self.dir.join("runc")
    }

    fn write_runc_wrapper(&self) {
        let runc = find_on_path("runc");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
            sh_quote(&self.dir.join("runc-calls.log").to_string_lossy()),
            sh_quote(&runc.to_string_lossy())
        );
        let p = self.runc_wrapper();
        fs::write(&p, script).expect("write runc wrapper");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod runc wrapper");
    }

    fn write_config(&self) {
        let mut cfg = match (&self.setup.runtime, self.setup.build.config_version()) {
            (Runtime::V1 { shim }, _) => self.config_v1(shim),
            (Runtime::V2 { .. }, 2) => self.config_2(),
            (Runtime::V2 { .. }, _) => self.config_3(),
        };
        if self.debug {
            // The same key in config versions 2 and 3.
            cfg.push_str("\n[debug]\n  level = \"debug\"\n");
        }
        fs::write(self.dir.join("config.toml"), cfg).expect("write config.toml");
    }

    /// containerd logs at debug level from its next start on (it then logs every event it
    /// takes: `event forwarded`, `event published`, with topic and namespace).
    pub fn log_debug(&mut self) {
        self.debug = true;
        self.write_config();
    }

    /// containerd 1.x with the v1 runtime running `shim`.
    fn config_v1(&self, shim: &Path) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.runtime.v1.linux"]
  shim = "{shim}"
  runtime = "{d}/runc"
  shim_debug = true
"#,
            shim = shim.display()
        )
    }

    /// containerd 1.x (config version 2) for v2 tasks: no CRI, the native snapshotter only
    /// (`--rootfs` needs none), no NRI (its socket would be the host's /var/run/nri), no
    /// tracing, no transfer service (1.7: it errors without the snapshotters it unpacks to).
    fn config_2(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.nri.v1.nri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.transfer.v1.local",
  "io.containerd.grpc.v1.transfer",
]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        )
    }

    /// containerd 2.x (config version 3; key names from its `containerd config default`):
    /// as [`Self::config_2`], and without CRI's split plugins (images, runtime, the pod sandbox
    /// controller), the restart monitor, and the erofs snapshotter and differ.
    fn config_3(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 3
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.nri.v1.nri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.transfer.v1.local",
  "io.containerd.grpc.v1.transfer",
  "io.containerd.monitor.container.v1.restart",
]

[grpc]
  address = "{d}/containerd.sock"

[plugins.'io.containerd.internal.v1.opt']
  path = "{d}/opt"
"#
        )
    }

    /// v2: `<dir>/shim-bin/containerd-shim-runc-v2` → the shim under test.
    fn link_shim(&self) {
        if let Runtime::V2 { shim } = &self.setup.runtime {
            let dir = self.shim_link_dir();
            fs::create_dir_all(&dir).expect("mkdir shim-bin");
            std::os::unix::fs::symlink(shim, dir.join("containerd-shim-runc-v2"))
                .expect("link the shim as containerd-shim-runc-v2");
        }
    }

    /// The long-lived holder of the private mount namespace (a tmpfs on /run/containerd, so
    /// `/run/containerd/s` and runc's default root are ours alone). It outlives containerd restarts.
    fn start_holder(&mut self) {
        fs::create_dir_all("/run/containerd").expect("mkdir /run/containerd (mount point)");
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/containerd && echo ready && exec sleep infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        with_pdeathsig(&mut cmd);
        let (holder, mut child) = Proc::spawn(&mut cmd).expect("spawn mount namespace holder");
        let mut line = String::new();
        let out = child.stdout.take().expect("holder stdout");
        let _ = BufReader::new(out).read_line(&mut line);
        self.holder = Some(holder);
        assert_eq!(line.trim(), "ready", "mount namespace holder failed");
    }

    pub fn holder_pid(&self) -> String {
        self.holder.as_ref().expect("holder").pid().to_string()
    }

    /// A command run inside the private mount namespace.
    pub fn in_ns(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder_pid(), "-m", program]);
        cmd
    }

    /// `nsenter … ctr --address <sock> --namespace <ns> <args>`
    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let ctr = self.setup.build.tool("ctr");
        let mut cmd = self.in_ns(&ctr.to_string_lossy());
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", &self.ns])
            .args(args);
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        proc::run(self.ctr_cmd(args), CTR_BOUND, None)
    }

    /// `run --runtime <v1> --env PATH=/bin <flags> --rootfs <dir> <id> <argv>`; for v2
    /// `run --runtime io.containerd.runc.v2 --runc-binary <wrapper> --env PATH=/bin …`.
    pub fn run_args(&self, flags: &[&str], id: &str, argv: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--runtime".into()];
        match self.setup.runtime {
            Runtime::V1 { .. } => a.push(RUNTIME.into()),
            Runtime::V2 { .. } => {
                a.push(RUNTIME_V2.into());
                a.push("--runc-binary".into());
                a.push(self.runc_wrapper().to_string_lossy().into_owned());
            }
        }
        a.extend(["--env", "PATH=/bin"].iter().map(|s| s.to_string()));
        a.extend(flags.iter().map(|s| s.to_string()));
        a.push("--rootfs".into());
        a.push(self.rootfs().to_string_lossy().into_owned());
        a.push(id.into());
        a.extend(argv.iter().map(|s| s.to_string()));
        a
    }

    pub fn run(&self, flags: &[&str], id: &str, argv: &[&str]) -> Output {
        let a = self.run_args(flags, id, argv);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.ctr(&refs)
    }

    /// `ctr run -d`, asserting success and waiting for the task's start event.
    pub fn run_detached(&self, id: &str, argv: &[&str]) {
        self.run(&["-d"], id, argv).expect_code(0);
        self.events.wait("/tasks/start", id);
    }

    /// The full ctr command line as one sh string (for `script -c`).
    pub fn ctr_shell(&self, args: &[String]) -> String {
        let cmd = self.ctr_cmd(&[]);
        std::iter::once(cmd.get_program().to_string_lossy().into_owned())
            .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
            .chain(args.iter().cloned())
            .map(|s| sh_quote(&s))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts containerd (again) inside the mount namespace and waits until it answers.
    pub fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "containerd already running");
        self.generation += 1;
        let log = fs::File::create(self.dir.join(format!("containerd-{}.log", self.generation)))
            .expect("create containerd log");
        let containerd = self.setup.build.tool("containerd");
        let mut cmd = self.in_ns(&containerd.to_string_lossy());
        if let Runtime::V2 { .. } = self.setup.runtime {
            let path = env::var_os("PATH").unwrap_or_default();
            let dirs = std::iter::once(self.shim_link_dir())
                .chain(self.path_dirs.iter().cloned())
                .chain(env::split_paths(&path));
            cmd.env("PATH", env::join_paths(dirs).expect("PATH"));
        }
        cmd.arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        with_pdeathsig(&mut cmd);
        let (daemon, _child) = Proc::spawn(&mut cmd).expect("spawn containerd");
        self.daemon = Some(daemon);
        self.wait_ready();
        self.events.attach(self.ctr_cmd(&["events"]));
        self.events_barrier();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_BOUND;
        let daemon = self.daemon.as_ref().expect("daemon");
        loop {
            let v = proc::run(self.ctr_cmd(&["version"]), CTR_BOUND, None);
            if v.code() == Some(0) {
                return;
            }
            if let e @ (Exit::Code(_) | Exit::Signal(_)) = daemon.wait_timeout(Duration::ZERO) {
                panic!("containerd exited ({e:?}) before ready:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd not ready within {READY_BOUND:?}: {v}\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Publishes marker events until `ctr events` prints one: then its subscription is live.
    /// (A readiness check: nothing tells us when ctr has subscribed.)
    fn events_barrier(&self) {
        let id = format!("e2e-ready-{}", self.generation);
        let type_url = b"containerd.events.TaskOOM";
        let mut oom = vec![0x0a, id.len() as u8];
        oom.extend_from_slice(id.as_bytes());
        let mut any = vec![0x0a, type_url.len() as u8];
        any.extend_from_slice(type_url);
        any.push(0x12);
        any.push(oom.len() as u8);
        any.extend_from_slice(&oom);
        let deadline = Instant::now() + READY_BOUND;
        loop {
            let mut cmd = Command::new(self.setup.build.tool("containerd"));
            cmd.arg("--address").arg(self.socket()).args([
                "publish",
                "--topic",
                "/e2e/ready",
                "--namespace",
                &self.ns,
            ]);
            let payload = any.clone();
            let feed: Box<dyn FnOnce(std::process::ChildStdin) + Send> = Box::new(move |mut w| {
                let _ = w.write_all(&payload);
            });
            proc::run(cmd, CTR_BOUND, Some(feed)).expect_code(0);
            let seen = self
                .events
                .wait_within(Duration::from_millis(200), |e| e.is("/e2e/ready", &id));
            if seen.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ctr events did not subscribe within {READY_BOUND:?}"
            );
        }
    }

    /// Stops containerd (SIGTERM, then SIGKILL); shims keep running and re-parent to this process.
    pub fn stop_daemon(&mut self) {
        self.events.detach();
        if let Some(d) = self.daemon.take() {
            d.stop(Duration::from_secs(15));
        }
    }

    /// v2: put `dir` on containerd's PATH (after the shim link dir, before the inherited PATH),
    /// from the next start on: where it finds shims by runtime name.
    pub fn add_to_path(&mut self, dir: &Path) {
        self.path_dirs.push(dir.to_path_buf());
    }

    pub fn restart_daemon(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    /// Pids of every process started with `-namespace <ns>` (the shims of this containerd).
    pub fn shim_pids(&self) -> Vec<i32> {
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let needle = format!("\0-namespace\0{}\0", self.ns);
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        let mut c = c;
                        c.insert(0, 0);
                        String::from_utf8_lossy(&c).contains(&needle)
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    /// The task's own cgroups, `<ns>/<id>`, those that exist: on cgroup v1 its memory and
    /// pids ones (each holds every process of the task), on v2 the one directory.
    pub fn task_cgroups(&self, id: &str) -> Vec<PathBuf> {
        cgroup::controller_dirs(&format!("/{}/{id}", self.ns), &["memory", "pids"])
    }

    /// Mount points in the private mount namespace (containerd's and the shims') at or below `dir`.
    pub fn mounts_under(&self, dir: &Path) -> Vec<String> {
        let info = fs::read_to_string(format!("/proc/{}/mountinfo", self.holder_pid()))
            .expect("mountinfo of the mount namespace holder");
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(dir))
            .map(String::from)
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup::dirs(&self.ns)
    }

    /// For a failure's report: the last 40 lines of containerd's log, the runc calls and the
    /// events seen.
    pub fn diagnostics(&self) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        format!(
            "--- [{}] containerd log (last 40 lines) ---\n{}\n--- runc calls ---\n{}\n--- events ---\n{}",
            self.setup.label,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            self.runc_calls(),
            self.events.transcript()
        )
    }

    fn teardown(&mut self) {
        if self.daemon.is_some() {
            let bound = Duration::from_secs(20);
            let q = |args: &[&str]| proc::run(self.ctr_cmd(args), bound, None);
            let tasks = q(&["t", "ls", "-q"]).stdout;
            for id in tasks.split_whitespace() {
                q(&["t", "resume", id]);
                q(&["t", "kill", "-a", "-s", "SIGKILL", id]);
                q(&["t", "rm", "-f", id]);
            }
            for id in q(&["c", "ls", "-q"]).stdout.split_whitespace() {
                q(&["c", "rm", id]);
            }
        }
        self.stop_daemon();
        let bound = Duration::from_secs(10);
        for pid in self.shim_pids() {
            sys::signal(pid, sys::SIGKILL);
            sys::wait_pid_gone(pid, bound);
        }
        // Container processes left behind (their shim died): thaw, then kill by cgroup.
        let cgroups = self.cgroup_dirs();
        for cg in &cgroups {
            for sub in sys::walk_dirs(cg) {
                let _ = fs::write(sub.join("freezer.state"), "THAWED");
                let procs = fs::read_to_string(sub.join("cgroup.procs")).unwrap_or_default();
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    sys::signal(pid, sys::SIGKILL);
                    sys::wait_pid_gone(pid, bound);
                }
            }
        }
        if let Some(h) = self.holder.take() {
            h.kill_group();
        }
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            let prefix = self.dir.to_string_lossy().into_owned();
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            points.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in points {
                sys::unmount_detach(Path::new(m));
            }
        }
        for cg in &cgroups {
            sys::remove_cgroup_tree(cg);
        }
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The string value of `"key":"…"` in a flat JSON object (no escapes in the value).
fn json_string(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let rest = json[json.find(&pat)? + pat.len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}
