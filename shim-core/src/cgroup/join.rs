//! Moving a process into a named cgroup, as containerd's cgroups packages do for the runtime
//! option `shim_cgroup`: v2 one `cgroup.procs`, v1 that of every hierarchy that has the cgroup.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::mountinfo::cgroup_mounts;
use super::{CgroupError, Host, Mode};

/// Move `pid` into the cgroup `path` (`/a/b`, from the hierarchy's root). Unified: the write to
/// `<root>/<path>/cgroup.procs` decides (cgroupsv2.Load + AddProc). Legacy: every v1 hierarchy
/// where the directory exists gets the pid, and none having it is `Deleted` (cgroup1.Load with a
/// static path + AddProc). A path with a `..` component is refused before anything is written.
pub fn join(host: &Host, path: &str, pid: u32) -> Result<(), CgroupError> {
    let rel = relative(path)?;
    let dirs = match host.mode()? {
        Mode::Unified => vec![host.cgroup_root.join(&rel)],
        Mode::Legacy => {
            let dirs: Vec<PathBuf> = cgroup_mounts(&host.proc)?
                .into_iter()
                .map(|m| m.mount_point.join(&rel))
                .filter(|d| d.is_dir())
                .collect();
            if dirs.is_empty() {
                return Err(CgroupError::Deleted);
            }
            dirs
        }
    };
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        fs::write(&procs, pid.to_string()).map_err(CgroupError::path("write", procs))?;
    }
    Ok(())
}

/// `path` below a hierarchy's root (`/` is the root itself): leading `/` dropped, `..` refused.
fn relative(path: &str) -> Result<PathBuf, CgroupError> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(CgroupError::BadPath(path.to_string()));
    }
    Ok(p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeDir;
    use super::*;

    fn legacy(dir: &FakeDir) -> Host {
        let host = dir.host(Mode::Legacy);
        let root = host.cgroup_root.display().to_string();
        dir.write(
            "proc/self/mountinfo",
            &format!(
                "31 23 0:28 / {root} rw - tmpfs tmpfs rw\n\
                 32 31 0:29 / {root}/memory rw - cgroup cgroup rw,memory\n\
                 33 31 0:30 / {root}/pids rw - cgroup cgroup rw,pids\n\
                 34 31 0:31 / {root}/cpu rw - cgroup cgroup rw,cpu\n\
                 41 31 0:38 / {root}/unified rw - cgroup2 cgroup2 rw\n"
            ),
        );
        host
    }

    #[test]
    fn legacy_writes_the_pid_in_every_hierarchy_that_has_the_cgroup() {
        let dir = FakeDir::new();
        let host = legacy(&dir);
        dir.write("sys/fs/cgroup/memory/shims/a/cgroup.procs", "");
        dir.write("sys/fs/cgroup/pids/shims/a/cgroup.procs", "");
        dir.mkdir("sys/fs/cgroup/unified/shims/a");
        join(&host, "/shims/a", 42).expect("join");
        for c in ["memory", "pids"] {
            let procs =
                fs::read_to_string(dir.join(&format!("sys/fs/cgroup/{c}/shims/a/cgroup.procs")));
            assert_eq!(procs.ok().as_deref(), Some("42"), "{c}");
        }
        assert!(
            !dir.join("sys/fs/cgroup/cpu/shims").exists(),
            "cpu has no such cgroup"
        );
        assert!(!dir
            .join("sys/fs/cgroup/unified/shims/a/cgroup.procs")
            .exists());
    }

    #[test]
    fn legacy_without_the_cgroup_anywhere_is_deleted_as_go_says() {
        let dir = FakeDir::new();
        let host = legacy(&dir);
        let err = join(&host, "/nowhere", 42).unwrap_err();
        assert_eq!(err.to_string(), "cgroups: cgroup deleted");
    }

    #[test]
    fn unified_writes_the_one_cgroup_procs_and_a_missing_group_fails_naming_it() {
        let dir = FakeDir::new();
        let host = dir.host(Mode::Unified);
        dir.write("sys/fs/cgroup/shims/cgroup.procs", "");
        join(&host, "shims", 7).expect("join");
        let procs = fs::read_to_string(dir.join("sys/fs/cgroup/shims/cgroup.procs"));
        assert_eq!(procs.ok().as_deref(), Some("7"));
        let err = join(&host, "/missing", 7).unwrap_err().to_string();
        assert!(err.contains("missing/cgroup.procs"), "{err}");
    }

    #[test]
    fn dot_dot_paths_are_refused_before_any_write() {
        let dir = FakeDir::new();
        let host = legacy(&dir);
        for bad in ["../x", "/a/../../x", "a/.."] {
            let err = join(&host, bad, 1).unwrap_err();
            assert!(matches!(err, CgroupError::BadPath(_)), "{bad:?}: {err}");
        }
    }
}
