//! Where a container's cgroup limits are read back on this host, cgroup v1 (one hierarchy per
//! controller, `memory.limit_in_bytes`, `cpu.shares`) or v2 (one unified tree, `memory.max`,
//! `cpu.weight`), picked at run time, and how each spells a limit the OCI spec gives.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the cgroup file systems are mounted.
pub const ROOT: &str = "/sys/fs/cgroup";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Legacy or hybrid: a hierarchy per controller under the root (this project's hosts).
    V1,
    /// Unified: the root itself is a cgroup v2 tree.
    V2,
}

impl Version {
    /// The version in force under [`ROOT`].
    pub fn of_host() -> Version {
        Version::at(Path::new(ROOT))
    }

    /// V2 when `root` is the unified tree's root (it has `cgroup.controllers`), else V1.
    pub fn at(root: &Path) -> Version {
        if root.join("cgroup.controllers").is_file() {
            Version::V2
        } else {
            Version::V1
        }
    }
}

/// A limit a test sets through Update and reads back from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `memory.limit` in bytes.
    Memory,
    /// `cpu.shares`.
    CpuShares,
    /// `pids.limit`.
    Pids,
}

impl Limit {
    /// The v1 controller whose hierarchy holds the limit.
    pub fn controller(self) -> &'static str {
        match self {
            Limit::Memory => "memory",
            Limit::CpuShares => "cpu",
            Limit::Pids => "pids",
        }
    }

    /// The file that holds the limit under `version`.
    pub fn file_name(self, version: Version) -> &'static str {
        match (self, version) {
            (Limit::Memory, Version::V1) => "memory.limit_in_bytes",
            (Limit::Memory, Version::V2) => "memory.max",
            (Limit::CpuShares, Version::V1) => "cpu.shares",
            (Limit::CpuShares, Version::V2) => "cpu.weight",
            (Limit::Pids, _) => "pids.max",
        }
    }

    /// What that file says once the OCI value `value` is set: the value itself, except v2's
    /// cpu.weight, which runc converts from shares (`1 + (shares - 2) * 9999 / 262142`).
    pub fn expected(self, version: Version, value: u64) -> String {
        match (self, version) {
            (Limit::CpuShares, Version::V2) => {
                (1 + value.saturating_sub(2) * 9999 / 262_142).to_string()
            }
            _ => value.to_string(),
        }
    }
}

/// The file holding `limit` of the cgroup `path` (a cgroupsPath such as `/ns/id`, cgroupfs
/// driver) under the cgroup root `root` of `version`.
pub fn file_at(root: &Path, version: Version, path: &str, limit: Limit) -> PathBuf {
    let rel = path.trim_start_matches('/');
    let dir = match version {
        Version::V1 => root.join(limit.controller()).join(rel),
        Version::V2 => root.join(rel),
    };
    dir.join(limit.file_name(version))
}

/// [`file_at`] on this host.
pub fn file(path: &str, limit: Limit) -> PathBuf {
    file_at(Path::new(ROOT), Version::of_host(), path, limit)
}

/// The cgroup path of `limit`'s controller in a `/proc/<pid>/cgroup` table: v1's
/// `N:ctrl,ctrl:/path` line naming the controller, or v2's `0::/path`.
pub fn path_in_table(table: &str, version: Version, limit: Limit) -> Option<String> {
    table.lines().find_map(|line| {
        let (_, rest) = line.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        let wanted = match version {
            Version::V1 => controllers.split(',').any(|c| c == limit.controller()),
            Version::V2 => controllers.is_empty(),
        };
        wanted.then(|| path.to_string())
    })
}

/// The file holding `limit` for the cgroup process `pid` is in, on this host.
pub fn file_of_pid(pid: u64, limit: Limit) -> Result<PathBuf, String> {
    let table = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    let version = Version::of_host();
    let path = path_in_table(&table, version, limit)
        .ok_or_else(|| format!("no {limit:?} cgroup ({version:?}) in {table}"))?;
    Ok(file_at(Path::new(ROOT), version, &path, limit))
}

/// The directories of the cgroup `path` that exist under `root`: one per v1 controller
/// hierarchy, or the one v2 directory.
pub fn dirs_at(root: &Path, path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    let candidates: Vec<PathBuf> = match Version::at(root) {
        Version::V2 => vec![root.join(rel)],
        Version::V1 => fs::read_dir(root)
            .map(|subs| subs.flatten().map(|e| e.path().join(rel)).collect())
            .unwrap_or_default(),
    };
    candidates.into_iter().filter(|p| p.is_dir()).collect()
}

/// [`dirs_at`] on this host.
pub fn dirs(path: &str) -> Vec<PathBuf> {
    dirs_at(Path::new(ROOT), path)
}

/// The directories of the cgroup `path` that exist under `root` for `controllers`: on v1
/// each one's hierarchy, on v2 the one directory (which holds them all).
pub fn controller_dirs_at(root: &Path, path: &str, controllers: &[&str]) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    let candidates: Vec<PathBuf> = match Version::at(root) {
        Version::V2 => vec![root.join(rel)],
        Version::V1 => controllers.iter().map(|c| root.join(c).join(rel)).collect(),
    };
    candidates.into_iter().filter(|p| p.is_dir()).collect()
}

/// [`controller_dirs_at`] on this host.
pub fn controller_dirs(path: &str, controllers: &[&str]) -> Vec<PathBuf> {
    controller_dirs_at(Path::new(ROOT), path, controllers)
}

/// The trimmed text of a cgroup file; a panic naming it when it cannot be read (test code).
pub fn read(file: &Path) -> String {
    fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake cgroup root under the temp dir, removed on drop.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new(version: Version) -> FakeRoot {
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "e2e-kit-cgroup-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            match version {
                Version::V2 => {
                    fs::create_dir_all(dir.join("ns/c1")).unwrap();
                    fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
                    fs::write(dir.join("ns/c1/memory.max"), "52428800\n").unwrap();
                    fs::write(dir.join("ns/c1/cpu.weight"), "20\n").unwrap();
                }
                Version::V1 => {
                    for c in ["memory", "cpu", "pids"] {
                        fs::create_dir_all(dir.join(c).join("ns/c1")).unwrap();
                    }
                    fs::write(dir.join("memory/ns/c1/memory.limit_in_bytes"), "52428800\n")
                        .unwrap();
                    fs::write(dir.join("cpu/ns/c1/cpu.shares"), "512\n").unwrap();
                }
            }
            FakeRoot(dir)
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_unified_root_is_v2_and_its_limits_are_memory_max_and_cpu_weight() {
        let root = FakeRoot::new(Version::V2);
        let v = Version::at(&root.0);
        assert_eq!(v, Version::V2);
        let memory = file_at(&root.0, v, "/ns/c1", Limit::Memory);
        assert_eq!(memory, root.0.join("ns/c1/memory.max"));
        assert_eq!(read(&memory), Limit::Memory.expected(v, 50 << 20));
        let cpu = file_at(&root.0, v, "/ns/c1", Limit::CpuShares);
        assert_eq!(read(&cpu), Limit::CpuShares.expected(v, 512));
        assert_eq!(dirs_at(&root.0, "/ns/c1"), vec![root.0.join("ns/c1")]);
        assert_eq!(
            controller_dirs_at(&root.0, "/ns/c1", &["memory", "pids"]),
            vec![root.0.join("ns/c1")]
        );
    }

    #[test]
    fn a_root_of_hierarchies_is_v1_and_its_limits_are_limit_in_bytes_and_cpu_shares() {
        let root = FakeRoot::new(Version::V1);
        let v = Version::at(&root.0);
        assert_eq!(v, Version::V1);
        let memory = file_at(&root.0, v, "/ns/c1", Limit::Memory);
        assert_eq!(memory, root.0.join("memory/ns/c1/memory.limit_in_bytes"));
        assert_eq!(read(&memory), Limit::Memory.expected(v, 50 << 20));
        let cpu = file_at(&root.0, v, "/ns/c1", Limit::CpuShares);
        assert_eq!(read(&cpu), "512");
        assert_eq!(read(&cpu), Limit::CpuShares.expected(v, 512));
        let mut found = dirs_at(&root.0, "/ns/c1");
        found.sort();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            controller_dirs_at(&root.0, "/ns/c1", &["memory", "pids"]),
            vec![root.0.join("memory/ns/c1"), root.0.join("pids/ns/c1")]
        );
    }

    #[test]
    fn cpu_shares_become_runcs_cpu_weight_on_v2_only() {
        assert_eq!(Limit::CpuShares.expected(Version::V2, 512), "20");
        assert_eq!(Limit::CpuShares.expected(Version::V2, 1024), "39");
        assert_eq!(Limit::CpuShares.expected(Version::V2, 2), "1");
        assert_eq!(Limit::CpuShares.expected(Version::V1, 512), "512");
        assert_eq!(Limit::Pids.expected(Version::V2, 64), "64");
    }

    #[test]
    fn a_pids_cgroup_path_is_read_from_either_table() {
        let v1 = "12:pids:/ns/c1\n4:cpu,cpuacct:/ns/c1\n3:memory:/ns/c1\n0::/\n";
        assert_eq!(
            path_in_table(v1, Version::V1, Limit::CpuShares).as_deref(),
            Some("/ns/c1")
        );
        assert_eq!(
            path_in_table(v1, Version::V1, Limit::Memory).as_deref(),
            Some("/ns/c1")
        );
        let v2 = "0::/ns/c1\n";
        assert_eq!(
            path_in_table(v2, Version::V2, Limit::Pids).as_deref(),
            Some("/ns/c1")
        );
        assert_eq!(path_in_table(v2, Version::V1, Limit::Pids), None);
    }
}
