//! `cargo xtask deps`: install the Debian packages the build and the tests need, if missing,
//! and unpack the newer containerds the tests also run (debs.rs).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::run::{step, which};

/// What must be present, how to tell, and which package brings it.
struct Need {
    what: &'static str,
    package: &'static str,
    check: Check,
}

enum Check {
    Command(&'static str),
    File(&'static str),
    Package,
}

const NEEDS: &[Need] = &[
    Need {
        what: "C linker",
        package: "gcc",
        check: Check::Command("cc"),
    },
    Need {
        what: "C library for linking",
        package: "libc6-dev",
        check: Check::Package,
    },
    Need {
        what: "protoc",
        package: "protobuf-compiler",
        check: Check::Command("protoc"),
    },
    Need {
        what: "runc",
        package: "runc",
        check: Check::Command("runc"),
    },
    Need {
        what: "containerd",
        package: "containerd",
        check: Check::Command("containerd"),
    },
    Need {
        what: "ctr",
        package: "containerd",
        check: Check::Command("ctr"),
    },
    Need {
        what: "containerd-shim",
        package: "containerd",
        check: Check::Command("containerd-shim"),
    },
    Need {
        what: "CNI bridge plugin (CRI tests)",
        package: "containernetworking-plugins",
        check: Check::File("/usr/lib/cni/bridge"),
    },
    Need {
        what: "CNI host-local plugin",
        package: "containernetworking-plugins",
        check: Check::File("/usr/lib/cni/host-local"),
    },
    Need {
        what: "CNI loopback plugin",
        package: "containernetworking-plugins",
        check: Check::File("/usr/lib/cni/loopback"),
    },
    Need {
        what: "busybox-static",
        package: "busybox-static",
        check: Check::Package,
    },
    Need {
        what: "criu",
        package: "criu",
        check: Check::Command("criu"),
    },
    Need {
        what: "strace",
        package: "strace",
        check: Check::Command("strace"),
    },
    Need {
        what: "unshare",
        package: "util-linux",
        check: Check::Command("unshare"),
    },
    Need {
        what: "nsenter",
        package: "util-linux",
        check: Check::Command("nsenter"),
    },
    Need {
        what: "ip (CRI tests' network namespaces)",
        package: "iproute2",
        check: Check::Command("ip"),
    },
    Need {
        what: "script",
        package: "bsdutils",
        check: Check::Command("script"),
    },
    Need {
        what: "python3 (pdeathsig test)",
        package: "python3",
        check: Check::File("/usr/bin/python3"),
    },
];

/// Check every need, one line each; install the missing packages (apt-get runs only then);
/// then the newer containerds beside the system's (debs.rs).
pub fn run() -> Result<()> {
    system_packages()?;
    crate::debs::run()
}

fn system_packages() -> Result<()> {
    let installed = installed_packages();
    let can_install = is_root() && which("apt-get").is_some();
    let mut missing: Vec<&str> = Vec::new();
    for need in NEEDS {
        let present = match need.check {
            Check::Command(c) => which(c).is_some(),
            Check::File(f) => Path::new(f).exists(),
            Check::Package => installed.contains_key(need.package),
        };
        if present {
            match installed.get(need.package) {
                Some(version) => println!("ok {} {version}", need.what),
                None => println!("ok {}", need.what),
            }
            continue;
        }
        println!(
            "{} {} (package {})",
            if can_install { "installing" } else { "missing" },
            need.what,
            need.package
        );
        if !missing.contains(&need.package) {
            missing.push(need.package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !can_install {
        bail!(
            "missing Debian packages: {}. As root: apt-get install {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    // apt-get update takes the lists lock without waiting, whatever DPkg::Lock::Timeout says
    // (apt 2.6): wait for it here. apt-get install waits for dpkg's locks itself (the timeout),
    // not for the archives lock that a download-only unattended-upgrades holds: wait for that too.
    wait_for_apt_locks(&[LISTS_LOCK])?;
    step(
        "apt-get update",
        Command::new("apt-get").args(apt_get_args(&["update", "-qq"])),
    )?;
    wait_for_apt_locks(&[DPKG_FRONTEND_LOCK, DPKG_LOCK, ARCHIVES_LOCK])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    step(
        "apt-get install",
        Command::new("apt-get")
            .args(apt_get_args(&install))
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// How long we and apt-get wait for another apt or dpkg to finish: unattended-upgrades runs
/// at boot, so a fresh machine often has one going.
const APT_LOCK_WAIT: Duration = Duration::from_secs(600);

const LISTS_LOCK: &str = "/var/lib/apt/lists/lock";
const ARCHIVES_LOCK: &str = "/var/cache/apt/archives/lock";
const DPKG_FRONTEND_LOCK: &str = "/var/lib/dpkg/lock-frontend";
const DPKG_LOCK: &str = "/var/lib/dpkg/lock";

/// `apt-get ARGS`, told to wait for dpkg's locks instead of failing at once.
fn apt_get_args(args: &[&str]) -> Vec<String> {
    let timeout = format!("DPkg::Lock::Timeout={}", APT_LOCK_WAIT.as_secs());
    ["-o", timeout.as_str()]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect()
}

/// Wait, up to APT_LOCK_WAIT, until no other process holds any of these apt/dpkg locks.
fn wait_for_apt_locks(locks: &[&str]) -> Result<()> {
    wait_for_locks(locks, APT_LOCK_WAIT, |line| println!("{line}"))
}

/// Wait, up to `limit`, until no other process holds any of `locks`; `say` is told once what
/// we wait for and who holds it. An error names the lock still held at the limit.
fn wait_for_locks(locks: &[&str], limit: Duration, mut say: impl FnMut(&str)) -> Result<()> {
    let deadline = Instant::now() + limit;
    let minutes = limit.as_secs() / 60;
    let mut told = false;
    loop {
        let Some((lock, holder)) = locks
            .iter()
            .find_map(|l| lock_holder(Path::new(l)).map(|h| (l, h)))
        else {
            return Ok(());
        };
        if !told {
            say(&format!(
                "waiting for the apt lock held by another apt/dpkg (e.g. unattended-upgrades), \
                 up to {minutes} min: {lock} is held by {holder}"
            ));
            told = true;
        }
        if Instant::now() >= deadline {
            bail!(
                "{lock} is still held by {holder} after {minutes} min; run cargo xtask deps again \
                 once that apt/dpkg is done"
            );
        }
        thread::sleep(Duration::from_secs(1));
    }
}

/// Who holds a write-conflicting lock on `path`, as apt and dpkg lock (fcntl record locks):
/// `pid 123 (unattended-upgr)`; None when the lock is free or the file does not exist.
fn lock_holder(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    // SAFETY: a plain C struct, all zeroes is valid; l_start = l_len = 0 is the whole file.
    let mut probe: libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = libc::F_WRLCK as libc::c_short;
    probe.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: an open fd and a valid flock for F_GETLK to fill in.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut probe) } != 0
        || probe.l_type == libc::F_UNLCK as libc::c_short
    {
        return None;
    }
    let pid = probe.l_pid;
    if pid <= 0 {
        // Open file description locks have no owning pid.
        return Some("another process".to_string());
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(format!("pid {pid} ({})", comm.trim()))
}

/// Installed packages among those we need, with their upstream versions (one dpkg-query call).
fn installed_packages() -> HashMap<String, String> {
    let mut names: Vec<&str> = NEEDS.iter().map(|n| n.package).collect();
    names.sort_unstable();
    names.dedup();
    // dpkg-query exits 1 when a name is unknown, yet still prints the known ones.
    let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f=${Package}\t${Status}\t${Version}\n"])
        .args(&names)
        .stderr(Stdio::null())
        .output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (name, status, version) = (fields.next()?, fields.next()?, fields.next()?);
            (status == "install ok installed").then(|| (name.to_string(), upstream(version)))
        })
        .collect()
}

/// `1:1.35.0-4+deb12u1` -> `1.35.0`: drop the epoch, the Debian revision and repack suffixes.
pub(crate) fn upstream(version: &str) -> String {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    let v = v.rsplit_once('-').map_or(v, |(v, _)| v);
    v.split(['+', '~']).next().unwrap_or(v).to_string()
}

/// Effective uid 0: `/proc/self` belongs to the effective uid.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_get_waits_for_the_dpkg_lock() {
        assert_eq!(
            apt_get_args(&["install", "-y", "runc"]),
            ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "runc"]
        );
    }

    /// A temp file with an open file description write lock on it (as apt's), released on drop.
    fn held_lock(tag: &str) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let holder = File::create(&path).unwrap();
        // SAFETY: as in lock_holder; F_OFD_SETLK wants l_pid = 0.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: an open fd and a valid flock.
        let rc = unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
        assert_eq!(rc, 0);
        (path, holder)
    }

    #[test]
    fn deps_waits_for_a_held_apt_lock_saying_so_and_goes_on_once_it_is_free() {
        let (path, holder) = held_lock("wait-test");
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&released);
        let letting_go = thread::spawn(move || {
            thread::sleep(Duration::from_millis(1500));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(holder);
        });
        let mut said = Vec::new();
        let lock = path.to_str().unwrap();
        wait_for_locks(&[lock], APT_LOCK_WAIT, |l| said.push(l.to_string())).unwrap();
        assert!(
            released.load(std::sync::atomic::Ordering::SeqCst),
            "went on while the lock was held"
        );
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("waiting for the apt lock")
                && said[0].ends_with(&format!("{lock} is held by another process")),
            "{said:?}"
        );
        letting_go.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn deps_fails_naming_the_lock_still_held_at_the_limit() {
        let (path, holder) = held_lock("limit-test");
        let lock = path.to_str().unwrap();
        let err = wait_for_locks(&[lock], Duration::ZERO, |_| {}).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "{lock} is still held by another process after 0 min"
            )),
            "{err}"
        );
        drop(holder);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_held_lock_is_seen_and_a_free_one_is_not() {
        let path = std::env::temp_dir().join(format!("xtask-lock-test-{}", std::process::id()));
        let holder = File::create(&path).unwrap();
        assert_eq!(lock_holder(&path), None);
        // An open file description lock conflicts with F_GETLK even from the same process,
        // which a classic record lock would not.
        // SAFETY: as in lock_holder; F_OFD_SETLK wants l_pid = 0.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: an open fd and a valid flock.
        let rc = unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
        assert_eq!(rc, 0);
        assert_eq!(lock_holder(&path).as_deref(), Some("another process"));
        drop(holder);
        assert_eq!(lock_holder(&path), None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(lock_holder(&path), None);
    }

    #[test]
    fn debian_versions_are_shown_as_upstream_versions() {
        assert_eq!(upstream("1.1.5+ds1-1+deb12u1"), "1.1.5");
        assert_eq!(upstream("1:1.35.0-4+deb12u1+b1"), "1.35.0");
        assert_eq!(upstream("1.6.20~ds1-1+deb12u3"), "1.6.20");
        assert_eq!(upstream("6.1-0.1"), "6.1");
        assert_eq!(upstream("3.17.1"), "3.17.1");
    }
}
