//! FakeDir: a temp directory the unit tests fill with fake cgroupfs and procfs files.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Host, Mode};

/// A fresh directory under the temp dir, removed with everything in it on drop.
pub(crate) struct FakeDir(PathBuf);

impl FakeDir {
    pub fn new() -> FakeDir {
        let template = std::env::temp_dir().join("shim-cgroup-XXXXXX");
        FakeDir(nix::unistd::mkdtemp(&template).expect("mkdtemp"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Write `rel` (parents created), replacing it in place so an inotify watch on it stays.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, content).expect("write fake file");
    }

    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.join(rel)).expect("mkdir");
    }

    /// A host whose /sys/fs/cgroup, /proc and hugepages directories live under this one.
    pub fn host(&self, mode: Mode) -> Host {
        self.mkdir("sys/fs/cgroup");
        self.mkdir("proc/self");
        self.mkdir("hugepages");
        Host {
            cgroup_root: self.join("sys/fs/cgroup"),
            proc: self.join("proc"),
            hugepages: self.join("hugepages"),
            mode: Some(mode),
        }
    }
}

impl Drop for FakeDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
