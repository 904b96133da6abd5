//! A busybox root filesystem directory for `ctr run --rootfs`.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "tty", "stty", "true", "false", "head", "tail", "ls", "wait",
    "tr", "seq",
];

/// Creates `<dir>/bin/busybox` (copied from /usr/bin/busybox) with applet symlinks.
pub fn busybox(dir: &Path) -> io::Result<()> {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    fs::copy("/usr/bin/busybox", bin.join("busybox"))?;
    for a in APPLETS {
        symlink("busybox", bin.join(a))?;
    }
    Ok(())
}

/// Adds applet symlinks to a rootfs made by [`busybox`] (for checklists needing more tools).
pub fn applets(dir: &Path, names: &[&str]) -> io::Result<()> {
    let bin = dir.join("bin");
    for a in names {
        let link = bin.join(a);
        if link.symlink_metadata().is_err() {
            symlink("busybox", link)?;
        }
    }
    Ok(())
}
