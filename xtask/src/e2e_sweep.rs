//! Leftovers of e2e runs whose test process is gone (killed before its teardown): processes,
//! mounts, `/tmp/e2e-<pid>-…` dirs and `e2e-<pid>-…` cgroups, named with the dead test's pid.
//!
//! Only names the suite creates are touched (its dirs, containerd namespaces and cgroups are all
//! `e2e-<test pid>-…`), and only when `<test pid>` is no running e2e test: a concurrent run, or
//! any other containerd on the machine, is left alone.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How long killed leftovers get to disappear, each.
const GONE_MS: i32 = 10_000;

/// What one sweep removed.
#[derive(Default)]
pub struct Swept {
    runs: BTreeSet<i32>,
    processes: usize,
    mounts: usize,
    dirs: usize,
    cgroups: usize,
    /// What could not be removed, and why.
    left: Vec<String>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

impl fmt::Display for Swept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs: Vec<String> = self.runs.iter().map(|p| p.to_string()).collect();
        write!(
            f,
            "leftovers of dead e2e runs (test pids {}): {} processes killed, {} mounts, {} dirs, \
             {} cgroups removed",
            runs.join(", "),
            self.processes,
            self.mounts,
            self.dirs,
            self.cgroups
        )?;
        for l in &self.left {
            write!(f, "\n  left: {l}")?;
        }
        Ok(())
    }
}

/// The test pid in a name `e2e-<pid>-…`.
fn owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("e2e-")?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|p| *p > 1)
}

/// True while `pid` is a running e2e test binary (`e2e_containerd-<hash>`, the v1 checklist, or
/// `e2e_containerd_v2-<hash>`, the task v2 checklist).
fn is_live_suite(pid: i32) -> bool {
    fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .is_some_and(|n| n.starts_with("e2e_containerd"))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `/tmp/e2e-<dead>-…` dirs and top-level `<controller>/e2e-<dead>-…` cgroups.
fn stale_roots() -> (BTreeSet<i32>, Vec<PathBuf>, Vec<PathBuf>) {
    let mut runs = BTreeSet::new();
    let mut stale = |p: &Path| match owner(&name_of(p)) {
        Some(pid) if !is_live_suite(pid) => {
            runs.insert(pid);
            true
        }
        _ => false,
    };
    let tmp: Vec<PathBuf> = entries(Path::new("/tmp"))
        .into_iter()
        .filter(|p| p.is_dir() && stale(p))
        .collect();
    let cgroups: Vec<PathBuf> = entries(Path::new(CGROUP_ROOT))
        .into_iter()
        .flat_map(|controller| entries(&controller))
        .filter(|p| p.is_dir() && stale(p))
        .collect();
    (runs, tmp, cgroups)
}

/// True when `text` names `e2e-<pid>-` of one of `runs` as a path or argument component.
fn names_a_run(text: &str, runs: &BTreeSet<i32>) -> bool {
    text.match_indices("e2e-").any(|(at, _)| {
        let before_ok = at == 0 || matches!(text.as_bytes()[at - 1], b'/' | b'\0' | b' ');
        before_ok && owner(&text[at..]).is_some_and(|pid| runs.contains(&pid))
    })
}

/// Processes of dead runs: their cwd, argv or cgroup names one (containerd, shims, runc, ctr,
/// and the containers, found by their cgroup).
fn stale_processes(runs: &BTreeSet<i32>) -> Vec<i32> {
    let me = std::process::id() as i32;
    entries(Path::new("/proc"))
        .iter()
        .filter_map(|p| name_of(p).parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let text = format!(
                "{}\0{}\0{cgroup}",
                cwd.display(),
                String::from_utf8_lossy(&cmdline)
            );
            names_a_run(&text, runs)
        })
        .collect()
}

/// SIGKILLs `pid` and waits (pidfd, bounded) for it to be gone; false if it stayed.
fn kill_and_wait(pid: i32) -> bool {
    // SAFETY: pidfd_open(pid, 0) has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true; // already gone
    }
    let fd = fd as libc::c_int;
    // SAFETY: the pidfd refers to exactly this process, whatever happens to the pid.
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0, 0) };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one live pollfd; fd is ours and closed once.
    let gone = unsafe { libc::poll(&mut pfd, 1, GONE_MS) } > 0;
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    gone
}

/// `dir` and every directory below it, deepest first.
fn dirs_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let below: Vec<PathBuf> = entries(&out[i])
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        out.extend(below);
        i += 1;
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Mount points of this mount namespace at or below `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

fn unmount(point: &Path) -> bool {
    let Ok(c) = CString::new(point.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated path.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) == 0 }
}

/// Finds and removes the leftovers of dead e2e runs.
pub fn sweep() -> Swept {
    let (runs, tmp_dirs, cgroups) = stale_roots();
    let mut swept = Swept {
        runs,
        ..Swept::default()
    };
    if swept.runs.is_empty() {
        return swept;
    }
    // Frozen (paused) containers only die once thawed.
    for cg in cgroups
        .iter()
        .filter(|c| c.starts_with("/sys/fs/cgroup/freezer"))
    {
        for d in dirs_deepest_first(cg) {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
        }
    }
    for pid in stale_processes(&swept.runs) {
        if kill_and_wait(pid) {
            swept.processes += 1;
        } else {
            swept.left.push(format!("process {pid} survived SIGKILL"));
        }
    }
    for dir in &tmp_dirs {
        for point in mounts_under(dir) {
            if unmount(&point) {
                swept.mounts += 1;
            }
        }
        // Never recurse into something still mounted there (it may not be ours).
        if let Some(m) = mounts_under(dir).first() {
            swept.left.push(format!(
                "{} (still mounted: {})",
                dir.display(),
                m.display()
            ));
            continue;
        }
        match fs::remove_dir_all(dir) {
            Ok(()) => swept.dirs += 1,
            Err(e) => swept.left.push(format!("{}: {e}", dir.display())),
        }
    }
    for cg in &cgroups {
        for d in dirs_deepest_first(cg) {
            match fs::remove_dir(&d) {
                Ok(()) => swept.cgroups += 1,
                Err(e) => swept.left.push(format!("{}: {e}", d.display())),
            }
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_e2e_names_of_the_given_runs_match() {
        assert_eq!(owner("e2e-4242-3-r01-go"), Some(4242));
        assert_eq!(owner("e2e-res.tsv"), None);
        assert_eq!(owner("e2e-ready-1"), None);
        assert_eq!(owner("e2e_containerd-abc"), None);
        let runs = BTreeSet::from([4242]);
        assert!(names_a_run("/tmp/e2e-4242-3-r01-go/state", &runs));
        assert!(names_a_run("shim\0-namespace\0e2e-4242-3-r01-go\0", &runs));
        assert!(names_a_run("7:memory:/e2e-4242-3-r01-go/t1\n", &runs));
        assert!(!names_a_run("/tmp/e2e-4243-3-r01-go/state", &runs));
        assert!(!names_a_run("/tmp/note-e2e-4242-3", &runs));
        assert!(!names_a_run(
            "containerd --config /etc/containerd.toml",
            &runs
        ));
    }
}
