//! CPU time spent by one containerd and everything it spawns (shims, runc).
//!
//! Read from a cgroup v1 cpuacct group when there is one, else from /proc accounting of
//! containerd and its children.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

/// Where one containerd's CPU time is read from.
pub enum Meter {
    /// `<CPUACCT>/xtask-bench-<name>-<pid>`: containerd was placed in it before it spawned anything.
    Cgroup(PathBuf),
    /// No cpuacct hierarchy: utime+stime of containerd, its reaped children and its live children.
    Proc,
}

impl Meter {
    /// A fresh cpuacct group for `name`, or the /proc fallback when cpuacct is unavailable.
    pub fn create(name: &str) -> Meter {
        let dir = Path::new(CPUACCT).join(format!("xtask-bench-{name}-{}", std::process::id()));
        if Path::new(CPUACCT).join("cpuacct.usage").is_file() && fs::create_dir(&dir).is_ok() {
            Meter::Cgroup(dir)
        } else {
            Meter::Proc
        }
    }

    /// Human words for the table: what the CPU figures cover.
    pub fn source(&self) -> &'static str {
        match self {
            Meter::Cgroup(_) => {
                "cgroup v1 cpuacct.usage of each containerd's group (containerd, shims, runc)"
            }
            Meter::Proc => {
                "FALLBACK /proc utime+stime of containerd + reaped and live children (no cpuacct)"
            }
        }
    }

    /// The file a shell writes its own pid to so that it (and what it execs) joins the group.
    pub fn procs_file(&self) -> Option<PathBuf> {
        match self {
            Meter::Cgroup(dir) => Some(dir.join("cgroup.procs")),
            Meter::Proc => None,
        }
    }

    /// CPU nanoseconds used so far by containerd (`pid`) and its descendants outside containers.
    pub fn usage_ns(&self, pid: i32) -> Result<u64> {
        match self {
            Meter::Cgroup(dir) => {
                let p = dir.join("cpuacct.usage");
                let s = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
                s.trim()
                    .parse()
                    .with_context(|| format!("{}: {s:?}", p.display()))
            }
            Meter::Proc => {
                let mut ticks = proc_ticks(pid).context("containerd's /proc stat")?.1;
                for child in children(pid) {
                    ticks += proc_ticks(child).map(|t| t.1).unwrap_or(0);
                }
                // SAFETY: sysconf has no memory arguments.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                Ok(ticks * 1_000_000_000 / hz)
            }
        }
    }
}

/// `(ppid, utime+stime+cutime+cstime)` from `/proc/<pid>/stat`.
fn proc_ticks(pid: i32) -> Option<(i32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let sum = f
        .get(11..15)?
        .iter()
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    Some((ppid, sum))
}

fn children(pid: i32) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|c| proc_ticks(*c).is_some_and(|(ppid, _)| ppid == pid))
        .collect()
}

impl Drop for Meter {
    /// Moves any process still in the group to the root group, then removes the group.
    fn drop(&mut self) {
        if let Meter::Cgroup(dir) = self {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.split_whitespace() {
                let _ = fs::write(Path::new(CPUACCT).join("cgroup.procs"), pid);
            }
            if let Err(e) = fs::remove_dir(&*dir) {
                eprintln!("xtask bench: cannot remove {}: {e}", dir.display());
            }
        }
    }
}
