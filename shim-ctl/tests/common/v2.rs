//! Task v2 shims under a private containerd 1.6: its own temp dir, containerd namespace and mount
//! namespace (a tmpfs on /run/containerd, so the shims' sockets `/run/containerd/s/<hash>` exist
//! only in there), driven with `ctr`, torn down on drop. Scenarios run against Go's
//! containerd-shim-runc-v2 and, when it is built, our containerd-shim-rsrunc-v2.

use super::{which, BUSYBOX, HANG_GUARD};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const GO_V2_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
/// Our task v2 shim's binary name (built on the `v2` branch, not on main yet).
pub const OUR_V2_SHIM: &str = "containerd-shim-rsrunc-v2";
/// Set to 1 to make failures against our v2 shim count (and its absence, under
/// SHIM_REQUIRE_ROOT_TESTS=1).
pub const OURS_SWITCH: &str = "SHIM_CTL_V2_OURS";
/// containerd's group annotation: containers with the same value share one runc v2 shim.
pub const GROUP_ANNOTATION: &str = "io.containerd.runc.v2.group";
/// containerd's directory for runtime v2 bundles under its state root.
pub const V2_RUNTIME_DIR: &str = "io.containerd.runtime.v2.task";

/// Which task v2 shim a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Kind {
    /// containerd's Go containerd-shim-runc-v2 (runtime io.containerd.runc.v2).
    Go,
    /// Our containerd-shim-rsrunc-v2 (runtime io.containerd.rsrunc.v2), next to shim-ctl.
    Ours,
}

impl V2Kind {
    pub fn binary(self) -> PathBuf {
        match self {
            V2Kind::Go => PathBuf::from(GO_V2_SHIM),
            V2Kind::Ours => Path::new(env!("CARGO_BIN_EXE_shim-ctl")).with_file_name(OUR_V2_SHIM),
        }
    }

    /// The runtime name `ctr run --runtime` takes (containerd finds `containerd-shim-<x>-v2`).
    pub fn runtime(self) -> &'static str {
        match self {
            V2Kind::Go => "io.containerd.runc.v2",
            V2Kind::Ours => "io.containerd.rsrunc.v2",
        }
    }
}

fn ours_switched_on() -> bool {
    std::env::var(OURS_SWITCH).is_ok_and(|v| v == "1")
}

/// What is missing to run a v2 scenario against `kind`, if anything.
fn missing(kind: V2Kind) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in ["runc", "containerd", "ctr", "unshare", "nsenter"] {
        if which(tool).is_none() {
            return Some(format!("{tool} not on PATH"));
        }
    }
    if !Path::new(BUSYBOX).is_file() {
        return Some(format!("{BUSYBOX} missing"));
    }
    let shim = kind.binary();
    if !shim.is_file() {
        return Some(match kind {
            V2Kind::Go => format!("{} missing", shim.display()),
            V2Kind::Ours => format!(
                "{} missing (our task v2 shim is built on the v2 branch: cargo build -p \
                 shim-runc-v2)",
                shim.display()
            ),
        });
    }
    None
}

/// The trial `name` running `scenario` against `kind`:
/// - Go's shim: ignored when something is missing, a failure under SHIM_REQUIRE_ROOT_TESTS=1;
/// - ours: ignored when missing; when present it runs, but until SHIM_CTL_V2_OURS=1 a failure is
///   reported and not counted. With SHIM_CTL_V2_OURS=1 it counts, and so does its absence under
///   SHIM_REQUIRE_ROOT_TESTS=1.
pub fn v2_trial(name: String, kind: V2Kind, scenario: fn(V2Kind)) -> trials::Trial {
    let counted = kind == V2Kind::Go || ours_switched_on();
    match missing(kind) {
        Some(why) if !counted => trials::ignored(name, &format!("missing: {why}")),
        missing if counted => trials::trial(name, missing.as_deref(), move || scenario(kind)),
        _ => trials::trial(name.clone(), None, move || {
            if let Err(e) = std::panic::catch_unwind(|| scenario(kind)) {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!(
                    "{name} failed against our v2 shim, not counted until {OURS_SWITCH}=1: {why}"
                );
            }
        }),
    }
}

fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: prctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes this process the reaper of the shims (they double-fork away from containerd), so that
/// the ones a test ends are reaped by [`wait_gone`] instead of lingering as zombies.
fn become_subreaper() {
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Waits until `pid` has exited (reaped if it is our child, else gone from /proc); false after
/// HANG_GUARD.
pub fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + HANG_GUARD;
    let p = nix::unistd::Pid::from_raw(pid as i32);
    while Instant::now() < deadline {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            // Not our child: watch /proc (a zombie of someone else's counts as gone).
            Err(_) => {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat.rsplit_once(") ").map(|(_, s)| s.chars().next());
                if stat.is_empty() || state == Some(Some('Z')) {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private containerd 1.6 whose shims are `kind`'s. Everything it started is killed on drop.
pub struct Containerd {
    pub kind: V2Kind,
    /// The containerd namespace: unique per test process and containerd.
    pub ns: String,
    pub dir: PathBuf,
    holder: Child,
    daemon: Option<Child>,
}

impl Containerd {
    pub fn start(tag: &str, kind: V2Kind) -> Containerd {
        become_subreaper();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let ns = format!("sctv2-{tag}-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/{ns}"));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["root", "state", "opt", "bin", "rootfs/bin"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let bin = dir.join("rootfs/bin");
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in ["sh", "sleep", "cat", "echo", "true", "id", "env"] {
            symlink("busybox", bin.join(applet)).unwrap();
        }
        // containerd looks the shim up on its PATH as containerd-shim-<name>-v2.
        if kind == V2Kind::Ours {
            symlink(kind.binary(), dir.join("bin").join(OUR_V2_SHIM)).unwrap();
        }
        let d = dir.display();
        let config = format!(
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
"#
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        std::fs::create_dir_all("/run/containerd").unwrap();
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/containerd && echo ready && exec sleep infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        set_parent_death_signal(&mut cmd);
        let mut holder = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "mount namespace holder failed");
        let mut cd = Containerd {
            kind,
            ns,
            dir,
            holder,
            daemon: None,
        };
        cd.start_daemon();
        cd
    }

    fn start_daemon(&mut self) {
        let log = std::fs::File::create(self.dir.join("containerd.log")).unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = self.in_ns("containerd");
        cmd.arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        set_parent_death_signal(&mut cmd);
        self.daemon = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + HANG_GUARD;
        while !self.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nsenter -t <holder> -m <program>`: run inside the private mount namespace.
    pub fn in_ns(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m", program]);
        cmd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address <sock> --namespace <ns> ARGS` in the mount namespace.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut cmd = self.in_ns("ctr");
        cmd.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// `ctr run -d` of `argv` as container `id` on this containerd's shim, asserting success.
    pub fn run(&self, id: &str, flags: &[&str], argv: &[&str]) {
        let rootfs = self.dir.join("rootfs");
        let mut args = vec![
            "run",
            "-d",
            "--runtime",
            self.kind.runtime(),
            "--env",
            "PATH=/bin",
        ];
        args.extend(flags);
        args.extend(["--rootfs", rootfs.to_str().unwrap(), id]);
        args.extend(argv);
        let o = self.ctr(&args);
        assert!(
            o.status.success(),
            "ctr run {id}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
    }

    /// The state root (`--state-root` for shim-ctl).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn state_str(&self) -> String {
        self.state().to_string_lossy().into_owned()
    }

    /// `<state>/io.containerd.runtime.v2.task/<ns>/<id>`
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.state().join(V2_RUNTIME_DIR).join(&self.ns).join(id)
    }

    /// The container's init pid, as runc wrote it into the bundle.
    pub fn init_pid(&self, id: &str) -> u64 {
        let p = self.bundle(id).join("init.pid");
        let text = std::fs::read_to_string(&p).unwrap();
        text.trim().parse().unwrap()
    }

    /// The address containerd wrote into the bundle (`unix:///run/containerd/s/<hash>`).
    pub fn address(&self, id: &str) -> String {
        std::fs::read_to_string(self.bundle(id).join("address"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Pids of every process started with this containerd's namespace: its shim daemons.
    pub fn shim_pids(&self) -> Vec<u32> {
        let needle = format!("\0-namespace\0{}\0", self.ns);
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    let mut c = c;
                    c.insert(0, 0);
                    String::from_utf8_lossy(&c).contains(&needle)
                })
            })
            .collect();
        pids.sort();
        pids
    }

    /// The one shim daemon of this containerd.
    pub fn shim_pid(&self) -> u32 {
        let pids = self.shim_pids();
        assert_eq!(pids.len(), 1, "shims of {}: {pids:?}", self.ns);
        pids[0]
    }

    /// `shim-ctl -n <ns> --state-root <state> --id <id> ARGS`
    pub fn shim_ctl(&self, id: &str, args: &[&str]) -> Output {
        let state = self.state_str();
        let target = ["-n", &self.ns, "--state-root", &state, "--id", id];
        super::shim_ctl(&[&target[..], args].concat())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- containerd log ({}) ---\n{}", self.ns, self.log());
        }
        if self.daemon.is_some() {
            let tasks = self.ctr(&["t", "ls", "-q"]);
            for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
                self.ctr(&["t", "resume", id]);
                self.ctr(&["t", "kill", "-a", "-s", "SIGKILL", id]);
                self.ctr(&["t", "rm", "-f", id]);
            }
            let containers = self.ctr(&["c", "ls", "-q"]);
            for id in String::from_utf8_lossy(&containers.stdout).split_whitespace() {
                self.ctr(&["c", "rm", id]);
            }
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(pid);
        }
        // Processes of containers whose shim died: kill them by cgroup, then remove the cgroups.
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.filter_map(Result::ok) {
                let ns_dir = c.path().join(&self.ns);
                let Ok(subs) = std::fs::read_dir(&ns_dir) else {
                    continue;
                };
                for sub in subs.filter_map(Result::ok).filter(|s| s.path().is_dir()) {
                    let _ = std::fs::write(sub.path().join("freezer.state"), "THAWED");
                    let procs = std::fs::read_to_string(sub.path().join("cgroup.procs"))
                        .unwrap_or_default();
                    for pid in procs
                        .split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                    {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                        wait_gone(pid as u32);
                    }
                    let _ = std::fs::remove_dir(sub.path());
                }
                let _ = std::fs::remove_dir(&ns_dir);
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
