//! One private containerd for the bench, torn down completely on drop.
//!
//! It has its own temp dir, namespace, mount namespace (tmpfs over /run/containerd) and CPU meter,
//! and is driven with `ctr` through nsenter. Runtime v1 runs on the system's containerd 1.6 (the
//! shim set in its config), task v2 on containerd 2.1 (the shim named by absolute path in
//! `ctr run --runtime`).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e_kit::sys::{remove_cgroup_tree, walk_dirs};

use super::cpu::Meter;

pub const RUNTIME: &str = "io.containerd.runtime.v1.linux";
/// Where containerd keeps task v2 bundles under its state dir.
const RUNTIME_V2_DIR: &str = "io.containerd.runtime.v2.task";
const READY_BOUND: Duration = Duration::from_secs(30);
/// Bound for each ctr call made while tearing down.
const TEARDOWN_BOUND: &str = "30";
/// Tasks removed at once while tearing down.
const TEARDOWN_THREADS: usize = 4;

/// Which shim API a containerd drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Api {
    /// Runtime v1 (`io.containerd.runtime.v1.linux`), containerd 1.6, config version 2.
    V1,
    /// Task v2, containerd 2.x, config version 3.
    V2,
}

/// What a bench containerd runs.
pub struct Setup<'a> {
    pub api: Api,
    /// The directory of `containerd` and `ctr`; `None`: the ones on PATH.
    pub bin_dir: Option<&'a Path>,
    /// The shim binary (absolute path).
    pub shim: &'a Path,
}

pub struct Containerd {
    /// `ours` or `go`.
    pub name: &'static str,
    /// The containerd namespace, unique to this bench run and shim.
    pub ns: String,
    pub api: Api,
    containerd: PathBuf,
    ctr: PathBuf,
    /// `ctr run --runtime` value: the v1 runtime name or the v2 shim's absolute path.
    runtime: String,
    dir: PathBuf,
    daemon: Option<Child>,
    pub meter: Meter,
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Containerd {
    /// Starts a private containerd named `name` (`ours`, `go`) that runs `setup`'s shim, in
    /// `<parent>/<name>`, and waits until it answers.
    pub fn start(name: &'static str, setup: &Setup, parent: &Path) -> Result<Containerd> {
        let ns = format!("xtask-bench-{}-{name}", std::process::id());
        let dir = parent.join(name);
        for d in ["root", "state", "opt"] {
            fs::create_dir_all(dir.join(d)).with_context(|| format!("mkdir under {dir:?}"))?;
        }
        fs::create_dir_all("/run/containerd").context("mkdir /run/containerd (mount point)")?;
        let bin = |b: &str| {
            setup
                .bin_dir
                .map_or_else(|| PathBuf::from(b), |d| d.join(b))
        };
        let runtime = match setup.api {
            Api::V1 => RUNTIME.to_string(),
            Api::V2 => setup.shim.to_string_lossy().into_owned(),
        };
        let mut cd = Containerd {
            name,
            ns,
            api: setup.api,
            containerd: bin("containerd"),
            ctr: bin("ctr"),
            runtime,
            dir,
            daemon: None,
            meter: Meter::create(name),
        };
        match setup.api {
            Api::V1 => cd.write_config_v1(setup.shim)?,
            Api::V2 => cd.write_config_v2()?,
        }
        cd.spawn()?;
        cd.wait_ready()?;
        Ok(cd)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// containerd 1.6 (config version 2): no CRI, no unused snapshotters, our v1 shim.
    fn write_config_v1(&self, shim: &Path) -> Result<()> {
        let d = self.dir.display();
        let cfg = format!(
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
  runtime = "runc"
  shim_debug = false
"#,
            shim = shim.display()
        );
        fs::write(self.dir.join("config.toml"), cfg).context("write config.toml")
    }

    /// containerd 2.x (config version 3, key names from its `containerd config default`): no
    /// CRI (nor its split plugins), NRI, tracing, transfer, restart monitor or unused
    /// snapshotters. The shim comes from `ctr run --runtime <path>`.
    fn write_config_v2(&self) -> Result<()> {
        let d = self.dir.display();
        let cfg = format!(
            r#"version = 3
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.sandbox.controller.v1.podsandbox",
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
        );
        fs::write(self.dir.join("config.toml"), cfg).context("write config.toml")
    }

    /// `sh` joins the CPU group, then becomes (through exec, same pid) `unshare -m` and containerd.
    fn spawn(&mut self) -> Result<()> {
        let config = self.dir.join("config.toml");
        let inner = format!(
            "mount -t tmpfs tmpfs /run/containerd && exec {} --config {}",
            sh_quote(&self.containerd.to_string_lossy()),
            sh_quote(&config.to_string_lossy())
        );
        let join = match self.meter.procs_file() {
            Some(f) => format!("echo $$ > {} && ", sh_quote(&f.to_string_lossy())),
            None => String::new(),
        };
        let script = format!(
            "{join}exec unshare -m --propagation private sh -c {}",
            sh_quote(&inner)
        );
        let log = fs::File::create(self.dir.join("containerd.log")).context("containerd.log")?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0); // a Ctrl-C at the terminal is ours to handle, not containerd's
                               // SAFETY: prctl is async-signal-safe: containerd dies with us even if we are SIGKILLed.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.daemon = Some(cmd.spawn().context("spawn containerd")?);
        Ok(())
    }

    /// Polls `ctr version` (no event tells when containerd's socket serves).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_BOUND;
        loop {
            let out = self.ctr(&["version"]).output().context("run ctr version")?;
            if out.status.success() {
                return Ok(());
            }
            if let Some(d) = self.daemon.as_mut() {
                if let Some(st) = d.try_wait()? {
                    bail!(
                        "containerd ({}) exited {st} before ready:\n{}",
                        self.name,
                        self.log()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd ({}) not ready in {READY_BOUND:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.daemon.as_ref().map_or(0, |d| d.id() as i32)
    }

    /// `nsenter -t <containerd> -m ctr --address <sock> --namespace <ns> <args>`
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid().to_string(), "-m"])
            .arg(&self.ctr)
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `nsenter -t <containerd> -m runc --root /run/containerd/runc/<ns> <args>`: runc itself on
    /// this containerd's containers, with the root both shims give it.
    pub fn runc(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid().to_string(), "-m", "runc", "--root"])
            .arg(Path::new("/run/containerd/runc").join(&self.ns))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `ctr run --runtime <v1 name | v2 shim path> <flags> --rootfs <rootfs> <id> <argv>`
    pub fn run_cmd(&self, flags: &[&str], rootfs: &Path, id: &str, argv: &[&str]) -> Command {
        let mut cmd = self.ctr(&["run", "--runtime", &self.runtime]);
        cmd.args(flags)
            .arg("--rootfs")
            .arg(rootfs)
            .arg(id)
            .args(argv);
        cmd
    }

    /// CPU nanoseconds used so far by this containerd, its shims and their runc calls.
    pub fn cpu_ns(&self) -> Result<u64> {
        self.meter.usage_ns(self.pid())
    }

    /// The pid of the shim serving container `id`: v1, from its bundle's `shim.pid`; v2 (where
    /// a group's later containers have no `shim.pid`), the parent of its running init process,
    /// which the shim adopted as subreaper.
    pub fn shim_pid(&self, id: &str) -> Result<i32> {
        let pid_file = |dir: &str, file: &str| -> Result<i32> {
            let p = self
                .dir
                .join("state")
                .join(dir)
                .join(&self.ns)
                .join(id)
                .join(file);
            let s = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
            s.trim()
                .parse()
                .with_context(|| format!("{}: {s:?}", p.display()))
        };
        match self.api {
            Api::V1 => pid_file(RUNTIME, "shim.pid"),
            Api::V2 => {
                let init = pid_file(RUNTIME_V2_DIR, "init.pid")?;
                let status = fs::read_to_string(format!("/proc/{init}/status"))
                    .with_context(|| format!("{id}: init {init} is gone"))?;
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("PPid:"))
                    .and_then(|v| v.trim().parse().ok())
                    .with_context(|| format!("{id}: no PPid for init {init}"))
            }
        }
    }

    fn teardown(&mut self) {
        if self.daemon.is_some() {
            let q = |args: &[&str]| -> String {
                let mut c = Command::new("timeout");
                let inner = self.ctr(args);
                c.args(["-s", "KILL", TEARDOWN_BOUND])
                    .arg(inner.get_program())
                    .args(inner.get_args())
                    .stdin(Stdio::null())
                    .stderr(Stdio::null());
                c.output()
                    .map(|o: Output| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            // A few at a time: a scale run leaves hundreds.
            let tasks = q(&["t", "ls", "-q"]);
            let tasks: Vec<&str> = tasks.split_whitespace().collect();
            std::thread::scope(|s| {
                for part in tasks.chunks(tasks.len().div_ceil(TEARDOWN_THREADS).max(1)) {
                    let q = &q;
                    s.spawn(move || {
                        for id in part {
                            q(&["t", "rm", "-f", id]);
                        }
                    });
                }
            });
            let ids = q(&["c", "ls", "-q"]);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                q(&[&["c", "rm"][..], &ids].concat());
            }
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for pid in pids_with_arg(&format!("\0-namespace\0{}\0", self.ns)) {
            kill_and_reap(pid);
        }
        // Containers whose shim died: kill by cgroup, then remove their cgroups.
        let cgroups: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
            .map(|rd| {
                rd.filter_map(|e| Some(e.ok()?.path().join(&self.ns)))
                    .collect()
            })
            .unwrap_or_default();
        for cg in cgroups.iter().filter(|p| p.is_dir()) {
            for d in &walk_dirs(cg) {
                let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                    kill_and_reap(pid);
                }
            }
            remove_cgroup_tree(cg);
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("xtask bench: cannot remove {}: {e}", self.dir.display());
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Pids whose NUL-separated command line (with a leading NUL) contains `needle`.
fn pids_with_arg(needle: &str) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = [&[0u8][..], &c].concat();
                String::from_utf8_lossy(&c).contains(needle)
            })
        })
        .collect()
}

/// SIGKILLs `pid` and waits for it: reaps it if it is our child (we are a subreaper, so orphans
/// are), else waits on a pidfd for a bounded time.
pub fn kill_and_reap(pid: i32) {
    // SAFETY: kill, waitpid, pidfd_open and poll get plain integers or pointers to live locals.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) == pid {
            return;
        }
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int;
        if fd >= 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut pfd, 1, 10_000);
            libc::close(fd);
        }
    }
}
