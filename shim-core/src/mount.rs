//! Rootfs mounts: mount CreateTaskRequest.rootfs onto `<bundle>/rootfs`, and take them down again.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::Error;

/// One mount as containerd sends it (`target` is ignored: everything lands on rootfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub target: String,
    pub options: Vec<String>,
}

/// Split mount options into flags and the data string, with containerd's flag table.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (clear, set) = match o.as_str() {
            "defaults" => (false, MsFlags::empty()),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nodev" => (false, MsFlags::MS_NODEV),
            "dev" => (true, MsFlags::MS_NODEV),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            "private" => (false, MsFlags::MS_PRIVATE),
            "rprivate" => (false, MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => (false, MsFlags::MS_SHARED),
            "rshared" => (false, MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => (false, MsFlags::MS_SLAVE),
            "rslave" => (false, MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => (false, MsFlags::MS_UNBINDABLE),
            "runbindable" => (false, MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        if clear {
            flags.remove(set);
        } else {
            flags.insert(set);
        }
    }
    (flags, data.join(","))
}

/// Mount every entry on `<bundle>/rootfs`, in order; on failure undo what was mounted.
pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<(), Error> {
    if mounts.is_empty() {
        return Ok(());
    }
    let target = rootfs(bundle);
    if let Err(e) = std::fs::create_dir(&target) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(Error::Internal(format!("create {}: {e}", target.display())));
        }
    }
    let _ = std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o711));
    for m in mounts {
        if let Err(e) = mount_one(&target, m) {
            // Also takes down an entry whose propagation or read-only remount step failed.
            let _ = unmount_all(bundle);
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(target: &Path, m: &Mount) -> Result<(), Error> {
    let (flags, data) = parse_options(&m.options);
    let propagation =
        MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE;
    let fail = |e: nix::Error| {
        Error::Internal(format!(
            "failed to mount rootfs component {:?} ({}) on {}: {e}",
            m.source,
            m.kind,
            target.display()
        ))
    };
    let data = (!data.is_empty()).then_some(data.as_str());
    mount(
        Some(m.source.as_str()),
        target,
        Some(m.kind.as_str()),
        flags - propagation,
        data,
    )
    .map_err(fail)?;
    if flags.intersects(propagation) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags & (propagation | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(fail)?;
    }
    // A read-only bind needs a remount to take effect.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(fail)?;
    }
    Ok(())
}

/// Unmount everything stacked on `<bundle>/rootfs` (lazily when busy). Missing rootfs is fine.
pub fn unmount_all(bundle: &Path) -> Result<(), Error> {
    let target = rootfs(bundle);
    loop {
        match umount2(&target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(nix::Error::EBUSY) => {
                umount2(&target, MntFlags::MNT_DETACH)
                    .map_err(|e| Error::Internal(format!("unmount {}: {e}", target.display())))?;
            }
            Err(e) => {
                return Err(Error::Internal(format!(
                    "unmount {}: {e}",
                    target.display()
                )))
            }
        }
    }
}

fn rootfs(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_options_become_flags_and_the_rest_data() {
        let (flags, data) = parse_options(&opts(&[
            "ro",
            "rbind",
            "nosuid",
            "lowerdir=/a:/b",
            "upperdir=/u",
        ]));
        assert!(flags.contains(
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID
        ));
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
    }

    #[test]
    fn propagation_options_are_flags_not_data() {
        let table = [
            ("private", MsFlags::MS_PRIVATE),
            ("rprivate", MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            ("shared", MsFlags::MS_SHARED),
            ("rshared", MsFlags::MS_SHARED | MsFlags::MS_REC),
            ("slave", MsFlags::MS_SLAVE),
            ("rslave", MsFlags::MS_SLAVE | MsFlags::MS_REC),
            ("unbindable", MsFlags::MS_UNBINDABLE),
            ("runbindable", MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        ];
        for (option, want) in table {
            assert_eq!(
                parse_options(&opts(&[option])),
                (want, String::new()),
                "{option}"
            );
        }
    }

    #[test]
    fn defaults_and_no_options_mount_read_write_without_data() {
        assert_eq!(parse_options(&[]), (MsFlags::empty(), String::new()));
        assert_eq!(
            parse_options(&opts(&["defaults"])),
            (MsFlags::empty(), String::new())
        );
    }

    #[test]
    fn unknown_options_keep_their_order_in_the_data() {
        let (flags, data) = parse_options(&opts(&["mode=755", "nodev", "size=65536k"]));
        assert_eq!(flags, MsFlags::MS_NODEV);
        assert_eq!(data, "mode=755,size=65536k");
    }

    #[test]
    fn later_options_clear_earlier_flags() {
        let (flags, _) = parse_options(&opts(&["ro", "rw", "noexec", "exec"]));
        assert!(flags.is_empty());
    }
}
