//! One private containerd for the bench, torn down completely on drop.
//!
//! It has its own temp dir, namespace, mount namespace (tmpfs over /run/containerd) and CPU meter,
//! and is driven with `ctr` through nsenter.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cpu::Meter;

pub const RUNTIME: &str = "io.containerd.runtime.v1.linux";
const READY_BOUND: Duration = Duration::from_secs(30);
/// Bound for each ctr call made while tearing down.
const TEARDOWN_BOUND: &str = "30";

pub struct Containerd {
    /// `ours` or `go`.
    pub name: &'static str,
    /// The containerd namespace, unique to this bench run and shim.
    pub ns: String,
    dir: PathBuf,
    daemon: Option<Child>,
    pub meter: Meter,
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Containerd {
    /// Starts a private containerd named `name` (`ours`, `go`) whose v1 runtime uses `shim`,
    /// in `<parent>/<name>`, and waits until it answers.
    pub fn start(name: &'static str, shim: &Path, parent: &Path) -> Result<Containerd> {
        let ns = format!("xtask-bench-{}-{name}", std::process::id());
        let dir = parent.join(name);
        for d in ["root", "state", "opt"] {
            fs::create_dir_all(dir.join(d)).with_context(|| format!("mkdir under {dir:?}"))?;
        }
        fs::create_dir_all("/run/containerd").context("mkdir /run/containerd (mount point)")?;
        let mut cd = Containerd {
            name,
            ns,
            dir,
            daemon: None,
            meter: Meter::create(name),
        };
        cd.write_config(shim)?;
        cd.spawn()?;
        cd.wait_ready()?;
        Ok(cd)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    fn write_config(&self, shim: &Path) -> Result<()> {
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

    /// `sh` joins the CPU group, then becomes (through exec, same pid) `unshare -m` and containerd.
    fn spawn(&mut self) -> Result<()> {
        let config = self.dir.join("config.toml");
        let inner = format!(
            "mount -t tmpfs tmpfs /run/containerd && exec containerd --config {}",
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
        cmd.args(["-t", &self.pid().to_string(), "-m", "ctr", "--address"])
            .arg(self.socket())
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `ctr run --runtime <v1> <flags> --rootfs <rootfs> <id> <argv>`
    pub fn run_cmd(&self, flags: &[&str], rootfs: &Path, id: &str, argv: &[&str]) -> Command {
        let mut cmd = self.ctr(&["run", "--runtime", RUNTIME]);
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

    /// The pid of the shim serving container `id` (from its bundle's `shim.pid`).
    pub fn shim_pid(&self, id: &str) -> Result<i32> {
        let p = self
            .dir
            .join("state")
            .join(RUNTIME)
            .join(&self.ns)
            .join(id)
            .join("shim.pid");
        let s = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        s.trim()
            .parse()
            .with_context(|| format!("{}: {s:?}", p.display()))
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
            for id in q(&["t", "ls", "-q"]).split_whitespace() {
                q(&["t", "rm", "-f", id]);
            }
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
            let mut dirs = walk_dirs(cg);
            for d in &dirs {
                let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                    kill_and_reap(pid);
                }
            }
            dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for d in dirs {
                let _ = fs::remove_dir(d);
            }
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

/// `dir` and every directory below it.
fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            out.extend(
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out
}
