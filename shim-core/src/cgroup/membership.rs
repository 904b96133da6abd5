//! Membership: a process's `/proc/<pid>/cgroup`, as per-controller v1 paths and the v2 path.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::CgroupError;

/// What `/proc/<pid>/cgroup` says, parsed like containerd's `ParseCgroupFileUnified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    /// v1 controller (`memory`, `cpu`, `name=systemd`...) to its path in that hierarchy.
    pub controllers: BTreeMap<String, String>,
    /// The path of the `0::` line, when there is one.
    pub unified: Option<String>,
}

impl Membership {
    /// Read `<proc>/<pid>/cgroup`; a process that is gone is `NotFound`.
    pub fn of_pid(proc: &Path, pid: i32) -> Result<Membership, CgroupError> {
        let path = proc.join(pid.to_string()).join("cgroup");
        match std::fs::read_to_string(&path) {
            Ok(text) => Membership::parse(&path, &text),
            Err(e)
                if matches!(e.kind(), io::ErrorKind::NotFound)
                    || e.raw_os_error() == Some(libc::ESRCH) =>
            {
                Err(CgroupError::NotFound {
                    pid,
                    reason: format!("{} does not exist", path.display()),
                })
            }
            Err(e) => Err(CgroupError::path("read", path)(e)),
        }
    }

    /// Lines are `hierarchy-id:controller,controller:path`; an empty controller list is v2's line.
    pub fn parse(path: &Path, text: &str) -> Result<Membership, CgroupError> {
        let mut out = Membership::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(names), Some(cgroup)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(CgroupError::parse(path, line, "invalid cgroup entry"));
            };
            for name in names.split(',') {
                if name.is_empty() {
                    out.unified = Some(cgroup.to_string());
                } else {
                    out.controllers.insert(name.to_string(), cgroup.to_string());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn hybrid_lines_give_every_controller_and_the_unified_path() {
        let text = "9:name=systemd:/\n4:memory:/ns/ctr\n2:cpu,cpuacct:/ns/ctr\n0::/\n";
        let m = Membership::parse(Path::new("/proc/1/cgroup"), text).ok();
        let m = m.unwrap_or_default();
        assert_eq!(m.controllers["memory"], "/ns/ctr");
        assert_eq!(m.controllers["cpu"], "/ns/ctr");
        assert_eq!(m.controllers["cpuacct"], "/ns/ctr");
        assert_eq!(m.controllers["name=systemd"], "/");
        assert_eq!(m.unified.as_deref(), Some("/"));
    }

    #[test]
    fn a_unified_host_has_only_the_zero_line() {
        let m = Membership::parse(Path::new("x"), "0::/system.slice/ctr.scope\n").ok();
        let m = m.unwrap_or_default();
        assert!(m.controllers.is_empty());
        assert_eq!(m.unified.as_deref(), Some("/system.slice/ctr.scope"));
    }

    #[test]
    fn a_line_without_two_colons_is_an_error() {
        assert!(matches!(
            Membership::parse(Path::new("x"), "4:memory\n"),
            Err(CgroupError::Parse { .. })
        ));
    }

    #[test]
    fn a_gone_process_is_not_found() {
        let dir = FakeDir::new();
        dir.write("proc/7/cgroup", "0::/a\n");
        assert!(Membership::of_pid(&dir.join("proc"), 7).is_ok());
        assert!(matches!(
            Membership::of_pid(&dir.join("proc"), 8),
            Err(CgroupError::NotFound { pid: 8, .. })
        ));
    }
}
