//! A private Kubernetes node for one test and one shim: containerd 2.1 with CRI on, in mount,
//! pid and network namespaces of its own (the host's network and `/run/containerd` are never
//! touched), the offline images imported, CNI bridge networking, torn down completely on drop.
//!
//! Test code: harness failures panic.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use e2e_kit::proc::{self, Exit, Output, Proc};
use e2e_kit::sys;

use crate::client::Cri;
use crate::image;

/// containerd's namespace of everything CRI makes.
pub const K8S_NS: &str = "k8s.io";
/// Bound for one ctr call, and for containerd to answer after start.
const BOUND: Duration = Duration::from_secs(60);
/// The pod network of the bridge (inside the node's own network namespace only).
pub const POD_SUBNET: &str = "10.88.0.0/16";

/// Which shim runs the node's pods, and under which CRI runtime handler.
#[derive(Clone, Debug)]
pub struct ShimSetup {
    /// `go` or `ours`: the column of the results table.
    pub label: String,
    /// The handler name pods ask for (`RunPodSandboxRequest.runtime_handler`), also the default.
    pub handler: String,
    /// The handler's `runtime_type`: Go's `io.containerd.runc.v2`, our `io.containerd.rsrunc.v2`.
    pub runtime_type: String,
    /// The handler's `runtime_path`: the shim binary.
    pub shim: PathBuf,
}

/// The containerd (with CRI) and the shims that run nodes.
#[derive(Clone, Debug)]
pub struct Setup {
    /// A `usr/bin` holding `containerd`, `ctr` and Go's `containerd-shim-runc-v2` (2.1.9).
    pub bin: PathBuf,
    pub shim: ShimSetup,
    /// Our `reaper` binary: pid 1 of the node's pid namespace (reaps the daemonised shims).
    pub init: PathBuf,
}

/// Our task v2 shim's binary (crate shim-runc-v2).
pub const OURS_BIN: &str = "containerd-shim-rsrunc-v2";

/// The cargo profile dir (`<target>/debug`) of the running binary: its own dir, or the parent
/// of `deps/` for a test.
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("the executable has no dir")?;
    Ok(match dir.file_name() {
        Some(n) if n == "deps" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    })
}

impl Setup {
    /// The setup of shim `label` (`go`, `ours`), or why it cannot run here. containerd 2.1's
    /// bin dir is `CONTAINERD_2_1` (`cargo xtask test` passes it), else where `cargo xtask
    /// deps` unpacks it; ours and the reaper are beside the running binary.
    pub fn find(label: &str) -> Result<Setup, String> {
        e2e_kit::prereq::missing(&[
            "ip",
            "tar",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni/host-local",
        ])?;
        let profile = profile_dir()?;
        let bin = match std::env::var_os("CONTAINERD_2_1") {
            Some(d) => PathBuf::from(d),
            None => profile
                .parent()
                .ok_or("no target dir")?
                .join("debs/containerd-2.1.9/usr/bin"),
        };
        let init = profile.join("reaper");
        let shim = match label {
            "go" => ShimSetup::go(&bin),
            "ours" => ShimSetup::ours(&profile.join(OURS_BIN)),
            other => return Err(format!("unknown shim {other:?} (go, ours)")),
        };
        let needed: [&Path; 5] = [
            &bin.join("containerd"),
            &bin.join("ctr"),
            &shim.shim,
            &init,
            Path::new("/usr/lib/cni/loopback"),
        ];
        let absent: Vec<String> = needed
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !absent.is_empty() {
            return Err(format!(
                "missing: {} (`cargo xtask deps`, `cargo build --bins`)",
                absent.join(", ")
            ));
        }
        Ok(Setup { bin, shim, init })
    }
}

impl ShimSetup {
    /// Go's runc v2 shim of the containerd in `bin`, as the stock `runc` handler.
    pub fn go(bin: &Path) -> ShimSetup {
        ShimSetup {
            label: "go".into(),
            handler: "runc".into(),
            runtime_type: "io.containerd.runc.v2".into(),
            shim: bin.join("containerd-shim-runc-v2"),
        }
    }

    /// Our `containerd-shim-rsrunc-v2` as the handler `rsrunc`, under our runtime name.
    pub fn ours(shim: &Path) -> ShimSetup {
        ShimSetup {
            label: "ours".into(),
            handler: "rsrunc".into(),
            runtime_type: "io.containerd.rsrunc.v2".into(),
            shim: shim.to_path_buf(),
        }
    }
}

/// The CRI part of containerd 2.1's config (version 3) for `shim`, with the pinned sandbox image
/// and CNI from `cni_conf_dir`/`cni_bin_dir`: what the README shows users, plus test-only paths.
/// `restrict_oom_score_adj`: for machines without CAP_SYS_RESOURCE (this test sandbox), where a
/// pod's oom_score_adj (-998 for the pause) may not go below containerd's own.
pub fn cri_config(
    shim: &ShimSetup,
    cni_conf_dir: &Path,
    cni_bin_dir: &Path,
    restrict_oom_score_adj: bool,
) -> String {
    let restrict = if restrict_oom_score_adj {
        "\n  restrict_oom_score_adj = true"
    } else {
        ""
    };
    format!(
        r#"[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{pause}'

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = false
  disable_apparmor = true
  netns_mounts_under_state_dir = true{restrict}
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = '{handler}'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{handler}]
      runtime_type = '{runtime_type}'
      runtime_path = '{path}'
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{bin}']
    conf_dir = '{conf}'
"#,
        pause = image::PAUSE,
        handler = shim.handler,
        runtime_type = shim.runtime_type,
        path = shim.shim.display(),
        bin = cni_bin_dir.display(),
        conf = cni_conf_dir.display(),
    )
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff in /proc/self/status).
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// Where Debian's containernetworking-plugins put bridge, host-local and loopback.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// One private node.
pub struct Node {
    pub setup: Setup,
    pub dir: PathBuf,
    /// `e2e-<pid>-<n>-<tag>-<shim>`: names the dir and the pods' cgroup parent.
    pub name: String,
    /// `unshare … --fork`: its child is pid 1 of the node's namespaces.
    holder: Option<Proc>,
    /// Host pid of the node's pid 1 (whose namespaces every command enters).
    init: i32,
    /// `nsenter … containerd` and the containerd it forked (host pid).
    daemon: Option<(Proc, i32)>,
    generation: u32,
    /// Processes of the namespace that are the node's own (init and its sleep).
    baseline: Vec<i32>,
    pub cri: Cri,
}

fn with_pdeathsig(cmd: &mut Command) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(sys::set_parent_death_signal);
    }
}

/// The children of `pid` (from /proc).
fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The parent pid of `pid` (field 4 of /proc/<pid>/stat, after the parenthesised name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Re-checks `probe` until it yields, within `bound` (for what offers no event to wait on).
pub fn wait_until<T>(bound: Duration, probe: impl Fn() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

impl Node {
    /// Starts a node as `setup` says, for the test `tag`: namespaces, config, containerd, images.
    pub fn start(setup: &Setup, tag: &str) -> Node {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "e2e-{}-{n}-cri-{tag}-{}",
            std::process::id(),
            setup.shim.label
        );
        let dir = PathBuf::from(format!("/tmp/{name}"));
        let _ = fs::remove_dir_all(&dir);
        for d in ["root", "state", "opt", "cni/net.d", "cni/ipam", "logs"] {
            fs::create_dir_all(dir.join(d)).expect("create node dirs");
        }
        let cri = Cri::connect(&dir.join("containerd.sock")).expect("tokio runtime");
        let mut node = Node {
            setup: setup.clone(),
            dir,
            name,
            holder: None,
            init: 0,
            daemon: None,
            generation: 0,
            baseline: Vec::new(),
            cri,
        };
        node.write_config();
        node.write_runc_wrapper();
        node.start_holder();
        node.start_daemon();
        node.import_images();
        node
    }

    /// Host pid of the node's pid 1.
    pub fn init_pid(&self) -> i32 {
        self.init
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The pods' cgroup parent (cgroupfs): `/e2e-<pid>-…`, so the e2e sweep finds leftovers.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// A directory for a pod's logs (`PodSandboxConfig.log_directory`).
    pub fn log_dir(&self, pod: &str) -> PathBuf {
        self.dir.join("logs").join(pod)
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let cni = self.dir.join("cni");
        let cfg = format!(
            r#"version = 3
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.nri.v1.nri",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{d}/opt"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'

{cri}
# The same shim as the handler `<handler>-opts` of runtime_type io.containerd.runc.v2, the one
# type for which CRI sends runc's options: BinaryName names a runc wrapper of its own.
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{handler}-opts]
  runtime_type = 'io.containerd.runc.v2'
  runtime_path = '{path}'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{handler}-opts.options]
    BinaryName = '{d}/bin/runc-opts'
"#,
            handler = self.setup.shim.handler,
            path = self.setup.shim.shim.display(),
            cri = cri_config(
                &self.setup.shim,
                &cni.join("net.d"),
                Path::new(CNI_BIN_DIR),
                !has_cap_sys_resource(),
            ),
        );
        fs::write(self.dir.join("config.toml"), cfg).expect("write config.toml");
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "e2e-pods",
            "plugins": [{
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": cni.join("ipam"),
                },
            }],
        });
        fs::write(
            cni.join("net.d/10-e2e-pods.conflist"),
            serde_json::to_string_pretty(&conflist).expect("json"),
        )
        .expect("write the CNI config");
    }

    /// `<dir>/bin/runc`, first on containerd's (and so the shims') PATH: logs each command line
    /// to `runc-calls.log`, keeps each `create`'s bundle config in `specs/`, then runs runc.
    /// `<dir>/bin/runc-opts` (the `-opts` handler's BinaryName) logs to `runc-opts-calls.log`.
    fn write_runc_wrapper(&self) {
        let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("runc");
        let q = |p: &Path| e2e_kit::containerd::sh_quote(&p.to_string_lossy());
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> {calls}\n\
             b=; p=; for a in \"$@\"; do [ \"$p\" = --bundle ] && b=$a; p=$a; done\n\
             [ -n \"$b\" ] && mkdir -p {specs} && cp \"$b/config.json\" {specs}/\"${{b##*/}}.json\"\n\
             exec {runc} \"$@\"\n",
            calls = q(&self.dir.join("runc-calls.log")),
            specs = q(&self.dir.join("specs")),
            runc = runc,
        );
        let opts = format!(
            "#!/bin/sh\necho \"$*\" >> {calls}\nexec {runc} \"$@\"\n",
            calls = q(&self.dir.join("runc-opts-calls.log")),
        );
        let bin = self.dir.join("bin");
        fs::create_dir_all(&bin).expect("mkdir bin");
        for (name, text) in [("runc", script), ("runc-opts", opts)] {
            fs::write(bin.join(name), text).expect("write a runc wrapper");
            fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755))
                .expect("chmod a runc wrapper");
        }
    }

    /// `unshare` of mount, pid and network namespaces whose pid 1 is our reaper: tmpfs on
    /// /run/containerd, /var/lib/cni and /run/netns (libcni's cache and netns mounts stay in
    /// the node), loopback up. Killing pid 1 ends every process of the node.
    fn start_holder(&mut self) {
        for d in ["/run/containerd", "/var/lib/cni", "/run/netns"] {
            fs::create_dir_all(d).expect("mount points");
        }
        let script = format!(
            "mount -t tmpfs tmpfs /run/containerd && mount -t tmpfs tmpfs /var/lib/cni && \
             mount -t tmpfs tmpfs /run/netns && ip link set lo up && echo ready && \
             exec {} -- sleep infinity",
            e2e_kit::containerd::sh_quote(&self.setup.init.to_string_lossy())
        );
        // Its stderr goes to holder.log: unshare says "sigprocmask unblock failed" as its
        // pid 1 is killed at teardown, which is noise; a failed start is reported with it.
        let log = self.dir.join("holder.log");
        let err = fs::File::create(&log).expect("create holder.log");
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "-n", "-p", "--fork", "--kill-child", "--mount-proc"])
            .args(["--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err);
        with_pdeathsig(&mut cmd);
        let (holder, mut child) = Proc::spawn(&mut cmd).expect("spawn the node's namespaces");
        let mut line = String::new();
        let out = child.stdout.take().expect("holder stdout");
        let _ = BufReader::new(out).read_line(&mut line);
        assert_eq!(
            line.trim(),
            "ready",
            "the node's namespaces failed: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        self.init = *children(holder.pid())
            .first()
            .expect("unshare forked pid 1");
        self.holder = Some(holder);
        // The reaper may not have forked its sleep yet: wait for it, it belongs to the node.
        let init = self.init;
        wait_until(BOUND, || (!children(init).is_empty()).then_some(()))
            .expect("pid 1 of the node runs its child");
        self.baseline = self.processes();
    }

    /// A command run in the node's namespaces (mount, network, pid; it is forked by nsenter).
    pub fn in_node(&self, program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.init.to_string(), "-m", "-n", "-p", "--"])
            .arg(program);
        cmd
    }

    /// `ctr --address <sock> --namespace k8s.io <args>` in the node.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut cmd = self.in_node(&self.setup.bin.join("ctr"));
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", K8S_NS])
            .args(args);
        proc::run(cmd, BOUND, None)
    }

    /// Builds the offline images in the node's dir (a few milliseconds) and imports them.
    fn import_images(&self) {
        let tar = image::build(&self.dir.join("images")).expect("build the offline OCI images");
        self.ctr(&["images", "import", &tar.to_string_lossy()])
            .expect_code(0);
    }

    /// The runc command lines (without `runc`) run through `bin/runc-opts`, the `-opts`
    /// handler's BinaryName.
    pub fn runc_opts_calls(&self) -> String {
        fs::read_to_string(self.dir.join("runc-opts-calls.log")).unwrap_or_default()
    }

    /// Everything containerd logged, all generations.
    pub fn log(&self) -> String {
        (1..=self.generation)
            .filter_map(|g| fs::read_to_string(self.dir.join(format!("containerd-{g}.log"))).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts containerd (again) in the node and waits until its CRI answers `Version`.
    pub fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "containerd already running");
        self.generation += 1;
        let log = fs::File::create(self.dir.join(format!("containerd-{}.log", self.generation)))
            .expect("create containerd log");
        let mut cmd = self.in_node(&self.setup.bin.join("containerd"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(self.dir.join("bin")).chain(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
        cmd.arg("--log-level")
            .arg("debug")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        with_pdeathsig(&mut cmd);
        let (nsenter, _child) = Proc::spawn(&mut cmd).expect("spawn containerd");
        let pid = wait_until(BOUND, || match children(nsenter.pid()).first() {
            Some(pid) => Some(Some(*pid)),
            None if nsenter.wait_timeout(Duration::ZERO) != Exit::TimedOut => Some(None),
            None => None,
        })
        .flatten();
        let Some(pid) = pid else {
            panic!("nsenter forked no containerd:\n{}", self.log());
        };
        self.daemon = Some((nsenter, pid));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + BOUND;
        let (nsenter, _) = self.daemon.as_ref().expect("daemon");
        loop {
            let req = crate::api::VersionRequest::default();
            match self.cri.call(self.cri.runtime().version(req)) {
                Ok(_) => return,
                Err(e) => {
                    if let e2 @ (Exit::Code(_) | Exit::Signal(_)) =
                        nsenter.wait_timeout(Duration::ZERO)
                    {
                        panic!("containerd exited ({e2:?}) before ready:\n{}", self.log());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "containerd's CRI not ready within {BOUND:?}: {e}\n{}",
                        self.log()
                    );
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Stops containerd (SIGTERM, then SIGKILL); shims and pods keep running.
    pub fn stop_daemon(&mut self) {
        if let Some((nsenter, pid)) = self.daemon.take() {
            sys::signal(pid, sys::SIGTERM);
            if !sys::wait_pid_gone(pid, Duration::from_secs(15)) {
                sys::signal(pid, sys::SIGKILL);
                sys::wait_pid_gone(pid, Duration::from_secs(10));
            }
            nsenter.wait_timeout(Duration::from_secs(10));
        }
    }

    pub fn restart_daemon(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    /// Host pids of every process of the node: its pid 1 and all its descendants (those of the
    /// pods' nested pid namespaces included).
    pub fn processes(&self) -> Vec<i32> {
        if self.init <= 0 {
            return Vec::new();
        }
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let parents: Vec<(i32, i32)> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| Some((pid, parent_of(pid)?)))
            .collect();
        let mut out = vec![self.init];
        let mut i = 0;
        while i < out.len() {
            let p = out[i];
            out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            i += 1;
        }
        out
    }

    /// Processes of the node that are neither its own (init, its sleep, nsenters) nor containerd.
    pub fn workload_processes(&self) -> Vec<(i32, String)> {
        let daemon = self.daemon.as_ref().map(|(_, pid)| *pid);
        self.processes()
            .into_iter()
            .filter(|p| !self.baseline.contains(p) && Some(*p) != daemon)
            .map(|p| (p, cmdline(p)))
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    /// Pids of the shim processes of this node (their executable is the shim under test).
    pub fn shim_pids(&self) -> Vec<i32> {
        let shim = fs::canonicalize(&self.setup.shim.shim).unwrap_or(self.setup.shim.shim.clone());
        self.processes()
            .into_iter()
            .filter(|p| {
                fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&shim)
                    && !cmdline(*p).is_empty()
            })
            .collect()
    }

    /// Mount points in the node's mount namespace at or below `dir`.
    pub fn mounts_under(&self, dir: &Path) -> Vec<String> {
        let info = fs::read_to_string(format!("/proc/{}/mountinfo", self.init)).unwrap_or_default();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(dir))
            .map(String::from)
            .collect()
    }

    /// `/sys/fs/cgroup/<controller>/<cgroup parent>/<rest>`.
    pub fn cgroup(&self, controller: &str, rest: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.name)
            .join(rest)
    }

    /// For a failure's report: the last 60 lines of containerd's log.
    pub fn diagnostics(&self) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        format!(
            "--- [{}] containerd log (last 60 lines) ---\n{}",
            self.setup.shim.label,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    fn teardown(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
            // A debugging aid: E2E_CRI_KEEP=<dir> keeps a copy of what a failed test's node
            // wrote (config, containerd logs, runc calls and specs) for a look.
            if let Some(keep) = std::env::var_os("E2E_CRI_KEEP") {
                let mut cp = Command::new("cp");
                cp.arg("-a").arg(&self.dir).arg(keep);
                proc::run(cp, BOUND, None);
            }
        }
        self.stop_daemon();
        // Pid 1 of the node gone: the kernel kills every process of its pid namespace, the
        // namespaces and their mounts go with the last of them.
        let procs = self.processes();
        if self.init > 0 {
            sys::signal(self.init, sys::SIGKILL);
        }
        for p in procs {
            sys::wait_pid_gone(p, Duration::from_secs(10));
        }
        if let Some(h) = self.holder.take() {
            h.kill_group();
        }
        if let Ok(subs) = fs::read_dir("/sys/fs/cgroup") {
            for sub in subs.filter_map(|e| e.ok()) {
                e2e_kit::sys::remove_cgroup_tree(&sub.path().join(&self.name));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// `/proc/<pid>/cmdline` with spaces for NULs ("" for kernel threads and zombies).
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}
