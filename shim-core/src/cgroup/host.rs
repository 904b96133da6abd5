//! Host: where the kernel's cgroup and proc files are (the real ones, or a fake tree), and its mode.

use std::path::PathBuf;

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::CgroupError;

/// How the host mounts cgroups, decided as containerd's `cgroups.Mode()` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/sys/fs/cgroup` is cgroup2fs: one hierarchy, containerd's `cgroup2`.
    Unified,
    /// Per-controller v1 mounts (a hybrid host's extra `unified` mount included): `cgroup1`.
    Legacy,
}

/// The roots every cgroup file is found under. `Host::default()` is the real system; tests point
/// the roots at a fake tree and set `mode`, since a temp dir is never cgroup2fs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The cgroup v2 mount point, and the place whose filesystem type decides the mode.
    pub cgroup_root: PathBuf,
    /// procfs: `<proc>/<pid>/cgroup` and `<proc>/self/mountinfo`, `<proc>/partitions`.
    pub proc: PathBuf,
    /// One `hugepages-<size>kB` entry per huge page size the kernel has.
    pub hugepages: PathBuf,
    /// `None`: statfs(2) on `cgroup_root` decides.
    pub mode: Option<Mode>,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc: PathBuf::from("/proc"),
            hugepages: PathBuf::from("/sys/kernel/mm/hugepages"),
            mode: None,
        }
    }
}

impl Host {
    /// Unified when `cgroup_root` is cgroup2fs, else legacy (v1 or hybrid).
    pub fn mode(&self) -> Result<Mode, CgroupError> {
        if let Some(mode) = self.mode {
            return Ok(mode);
        }
        let fs = statfs(&self.cgroup_root)
            .map_err(|e| CgroupError::path("statfs", &self.cgroup_root)(e.into()))?;
        Ok(if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
            Mode::Unified
        } else {
            Mode::Legacy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_mode_wins_and_a_plain_directory_is_legacy() {
        let mut host = Host {
            cgroup_root: std::env::temp_dir(),
            ..Host::default()
        };
        assert_eq!(host.mode().ok(), Some(Mode::Legacy));
        host.mode = Some(Mode::Unified);
        assert_eq!(host.mode().ok(), Some(Mode::Unified));
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let host = Host {
            cgroup_root: PathBuf::from("/nonexistent-cgroup-root"),
            ..Host::default()
        };
        let err = host.mode().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("statfs /nonexistent-cgroup-root: No such file or directory (os error 2)")
        );
    }
}
