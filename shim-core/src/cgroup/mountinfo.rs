//! Mountinfo: where each v1 controller's hierarchy is mounted, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use super::files::read;
use super::CgroupError;

/// One `cgroup` (v1) mount: the hierarchy's `root` shown at `mount_point`, for `controllers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub root: String,
    pub mount_point: PathBuf,
    /// The super options: the controllers (`cpu`, `cpuacct`, `name=systemd`) and `rw`...
    pub options: Vec<String>,
}

impl CgroupMount {
    /// The directory of cgroup `path` (as in /proc/<pid>/cgroup) under this mount.
    pub fn dir_of(&self, path: &str) -> PathBuf {
        let rel = Path::new(path)
            .strip_prefix(&self.root)
            .unwrap_or_else(|_| Path::new(path.trim_start_matches('/')));
        if rel.as_os_str().is_empty() {
            return self.mount_point.clone();
        }
        self.mount_point.join(rel)
    }
}

/// Every v1 cgroup mount of `<proc>/self/mountinfo`, in file order.
pub(crate) fn cgroup_mounts(proc: &Path) -> Result<Vec<CgroupMount>, CgroupError> {
    let path = proc.join("self/mountinfo");
    let text = read(&path)?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// `id parent maj:min root mount-point options [optional...] - fstype source super-options`;
/// `None` for anything that is not a well-formed `cgroup` line.
fn parse_line(line: &str) -> Option<CgroupMount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let (fstype, options) = (fields.get(sep + 1)?, fields.get(sep + 3)?);
    if *fstype != "cgroup" {
        return None;
    }
    Some(CgroupMount {
        root: unescape(fields.get(3)?),
        mount_point: PathBuf::from(unescape(fields.get(4)?)),
        options: options.split(',').map(str::to_string).collect(),
    })
}

/// Mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /ns /sys/fs/cgroup/mem\\040ory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn only_v1_cgroup_mounts_are_kept_with_their_controllers_and_unescaped_paths() {
        let mounts: Vec<_> = MOUNTINFO.lines().filter_map(parse_line).collect();
        assert_eq!(mounts.len(), 2);
        assert_eq!(
            mounts[0].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(mounts[0].options, ["rw", "cpu", "cpuacct"]);
        assert_eq!(mounts[1].root, "/ns");
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/mem ory")
        );
    }

    #[test]
    fn a_cgroup_path_is_taken_relative_to_the_mount_root() {
        let mounts: Vec<_> = MOUNTINFO.lines().filter_map(parse_line).collect();
        assert_eq!(
            mounts[0].dir_of("/a/b"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b")
        );
        assert_eq!(
            mounts[1].dir_of("/ns/ctr"),
            PathBuf::from("/sys/fs/cgroup/mem ory/ctr")
        );
        assert_eq!(
            mounts[1].dir_of("/ns"),
            PathBuf::from("/sys/fs/cgroup/mem ory")
        );
        assert_eq!(
            mounts[0].dir_of("/"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
    }

    #[test]
    fn escapes_other_than_three_octal_digits_stay() {
        assert_eq!(unescape("a\\134b\\x\\04"), "a\\b\\x\\04");
    }
}
