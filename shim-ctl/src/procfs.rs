//! Shims among the running processes (/proc), and reaching what lives in another mount namespace.
//!
//! containerd may run in a mount namespace of its own (a private tmpfs on /run/containerd, a
//! systemd unit's PrivateTmp=, a test harness): its shims' sockets (`/run/containerd/s/<hash>`)
//! and maybe its bundles are then not in ours. Every file of that namespace is still reachable
//! as `/proc/<pid>/root/<path>` for any process in it, the shim itself included, and a unix
//! socket can be dialed the same way (path resolution follows the magic link). So shim-ctl does
//! not enter the namespace (setns needs a single-threaded process and would hide our own
//! files); it reads and dials through the shim's `/proc/<pid>/root`.
//!
//! A shim process is recognised by its command line as containerd starts it:
//! - task v2: `containerd-shim-<name>-v2 -namespace NS -id ID -address ADDR [-debug]`, with no
//!   action argument (`start` and `delete` are one-shot invocations, not the daemon), its cwd the
//!   bundle of the container it was started for (a group's first);
//! - v1: `<shim> -namespace NS -workdir DIR -address ADDR -containerd-binary BIN ...`, its cwd the
//!   bundle.

use crate::client::Protocol;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Go flags of the shims that take a value (every other flag is a boolean, like `-debug`).
const VALUE_FLAGS: &[&str] = &[
    "namespace",
    "id",
    "address",
    "publish-binary",
    "bundle",
    "socket",
    "workdir",
    "containerd-binary",
    "runtime-root",
    "criu",
    "shim-cgroup",
];
/// Longest path that fits `sockaddr_un.sun_path` with its terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// A running shim daemon.
#[derive(Debug, Clone)]
pub struct ShimProcess {
    pub pid: u32,
    pub protocol: Protocol,
    pub namespace: String,
    /// Task v2: the `-id` it was started with (a group's first container).
    pub id: Option<String>,
    /// Its working directory (the bundle it was started in), as the shim sees it.
    pub cwd: Option<PathBuf>,
    /// `/proc/<pid>/root` when the shim lives in another mount namespace than we do.
    pub root: Option<PathBuf>,
}

impl ShimProcess {
    /// `path`, as the shim sees it, as we can open it.
    pub fn local(&self, path: &Path) -> PathBuf {
        under(self.root.as_deref(), path)
    }
}

/// `path` seen through `root` (`/proc/<pid>/root`), or as it is without one.
pub fn under(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// `/proc/<pid>/root`
pub fn root_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root"))
}

/// The pid in a path under `/proc/<pid>/root`, if it is one.
pub fn pid_of_root(path: &Path) -> Option<u32> {
    let mut parts = path.strip_prefix("/proc").ok()?.components();
    let pid = parts.next()?.as_os_str().to_str()?.parse().ok()?;
    (parts.next()?.as_os_str() == "root").then_some(pid)
}

fn mount_ns(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// `/proc/<pid>/root` when `pid` lives in another mount namespace than we do, else `None`
/// (also when that cannot be told).
pub fn foreign_root(pid: u32) -> Option<PathBuf> {
    let theirs = mount_ns(&pid.to_string())?;
    (mount_ns("self") != Some(theirs)).then(|| root_of(pid))
}

/// Flags and positional arguments of a Go command line (`-k v`, `-k=v`, `--k v`, `-bool`).
fn go_flags(args: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut flags = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return (flags, rest.cloned().collect());
        }
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            let mut positional = vec![arg.clone()];
            positional.extend(rest.cloned());
            return (flags, positional);
        };
        if name.is_empty() {
            return (flags, std::iter::once(arg).chain(rest).cloned().collect());
        }
        match name.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            None if VALUE_FLAGS.contains(&name) => {
                let value = rest.next().cloned().unwrap_or_default();
                flags.push((name.to_string(), value));
            }
            None => flags.push((name.to_string(), "true".to_string())),
        }
    }
    (flags, Vec::new())
}

/// What a shim daemon's command line tells: its API, namespace and (task v2) id; `None` when
/// `argv` is not a shim daemon's.
pub fn parse_cmdline(argv: &[String]) -> Option<(Protocol, String, Option<String>)> {
    let program = Path::new(argv.first()?).file_name()?.to_str()?;
    let (flags, positional) = go_flags(&argv[1..]);
    if !positional.is_empty() {
        return None;
    }
    let flag = |k: &str| flags.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let namespace = flag("namespace")?;
    let v2_name = program.starts_with("containerd-shim-") && program.ends_with("-v2");
    if v2_name && flag("id").is_some() && flag("address").is_some() {
        return Some((Protocol::V2, namespace, flag("id")));
    }
    if flag("workdir").is_some() && flag("containerd-binary").is_some() {
        return Some((Protocol::V1, namespace, None));
    }
    None
}

fn cmdline(pid: &str) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// Every shim daemon running now, by pid.
pub fn shims() -> Vec<ShimProcess> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let ours = mount_ns("self");
    let mut found: Vec<ShimProcess> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let pid: u32 = name.to_str()?.parse().ok()?;
            let (protocol, namespace, id) = parse_cmdline(&cmdline(&pid.to_string())?)?;
            let theirs = mount_ns(&pid.to_string());
            let root = (theirs.is_some() && theirs != ours).then(|| root_of(pid));
            Some(ShimProcess {
                pid,
                protocol,
                namespace,
                id,
                cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
                root,
            })
        })
        .collect();
    found.sort_by_key(|s| s.pid);
    found
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A dialable `unix://` address for the socket at `path` (seen from here): the path itself, or,
/// when it does not fit a socket address, `/proc/self/fd/<n>` of a path-only descriptor of it,
/// left open for the life of this process.
fn dialable(path: &Path) -> Option<String> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Some(format!("unix://{}", path.display()));
    }
    // O_PATH: a socket cannot be opened for reading; the access mode is ignored with it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    Some(format!("unix:///proc/self/fd/{}", file.into_raw_fd()))
}

/// Where to dial the shim at `address` from here: `address` itself when its socket is in our
/// mount namespace (or it is no socket path at all), else the same path under the root of the
/// first of `pids`, then of `more()`, where a socket is found, with that pid. `None` when no one
/// has it.
pub fn reach(
    address: &str,
    pids: &[u32],
    more: impl FnOnce() -> Vec<u32>,
) -> Option<(String, Option<u32>)> {
    let Some(path) = address.strip_prefix("unix://") else {
        return Some((address.to_string(), None));
    };
    let path = Path::new(path);
    if !path.is_absolute() || is_socket(path) {
        return Some((address.to_string(), None));
    }
    let through = |pid: u32| {
        let there = under(Some(&root_of(pid)), path);
        is_socket(&there).then_some(there)
    };
    let found = pids
        .iter()
        .find_map(|&pid| through(pid).map(|p| (p, pid)))
        .or_else(|| {
            more()
                .into_iter()
                .find_map(|pid| through(pid).map(|p| (p, pid)))
        })?;
    dialable(&found.0).map(|a| (a, Some(found.1)))
}

/// Pids of the running shims that live in another mount namespace than we do.
pub fn foreign_shim_pids() -> Vec<u32> {
    shims()
        .into_iter()
        .filter(|s| s.root.is_some())
        .map(|s| s.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn task_v2_daemons_are_told_from_their_start_and_delete_runs() {
        let go = argv("/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id web -address /run/containerd/containerd.sock");
        assert_eq!(
            parse_cmdline(&go),
            Some((Protocol::V2, "k8s.io".to_string(), Some("web".to_string())))
        );
        let ours = argv("containerd-shim-rsrunc-v2 -namespace=n --id c1 -address /a.sock -publish-binary /usr/bin/containerd -debug");
        assert_eq!(
            parse_cmdline(&ours),
            Some((Protocol::V2, "n".to_string(), Some("c1".to_string())))
        );
        let start =
            argv("containerd-shim-runc-v2 -namespace n -address /a -publish-binary c -id c1 start");
        assert_eq!(parse_cmdline(&start), None);
        let not_a_shim = argv("containerd --config /etc/containerd/config.toml");
        assert_eq!(parse_cmdline(&not_a_shim), None);
    }

    #[test]
    fn v1_shims_are_known_by_their_flags_whatever_their_name() {
        let go = argv("/usr/bin/containerd-shim -namespace rp -workdir /w -address /c.sock -containerd-binary /usr/bin/containerd -debug");
        assert_eq!(
            parse_cmdline(&go),
            Some((Protocol::V1, "rp".to_string(), None))
        );
        let ours = argv("/x/shim-runc-v1 -namespace t -workdir /w -address /nonexistent -containerd-binary /bin/true -runtime-root /r");
        assert_eq!(
            parse_cmdline(&ours),
            Some((Protocol::V1, "t".to_string(), None))
        );
    }

    #[test]
    fn paths_of_other_mount_namespaces_go_through_proc_root() {
        let root = root_of(42);
        assert_eq!(root, Path::new("/proc/42/root"));
        assert_eq!(
            under(Some(&root), Path::new("/run/containerd/s/ab")),
            Path::new("/proc/42/root/run/containerd/s/ab")
        );
        assert_eq!(under(None, Path::new("/x")), Path::new("/x"));
        assert_eq!(pid_of_root(Path::new("/proc/42/root/tmp/b")), Some(42));
        assert_eq!(pid_of_root(Path::new("/proc/self/root/tmp")), None);
        assert_eq!(pid_of_root(Path::new("/tmp/b")), None);
    }

    #[test]
    fn addresses_that_are_no_socket_path_are_dialed_as_they_are() {
        let abstract_ = "unix://@containerd-shim/x.sock";
        let none = Vec::new;
        let as_is = |a: &str| Some((a.to_string(), None));
        assert_eq!(reach(abstract_, &[], none), as_is(abstract_));
        let vsock = "vsock://3:1024";
        assert_eq!(reach(vsock, &[], none), as_is(vsock));
        assert_eq!(reach("unix:///nonexistent/s.sock", &[1], none), None);
    }

    #[test]
    fn a_socket_too_long_for_an_address_is_dialed_through_a_descriptor() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-procfs-{}", std::process::id()));
        let deep = dir.join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path);
        // bind itself refuses paths this long: make the socket short and reach it by a long link.
        assert!(listener.is_err());
        let short = dir.join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&short).unwrap();
        std::os::unix::fs::symlink(&short, &path).unwrap();
        let address = dialable(&path).unwrap();
        assert!(address.starts_with("unix:///proc/self/fd/"), "{address}");
        let fd_path = address.strip_prefix("unix://").unwrap();
        assert!(std::os::unix::net::UnixStream::connect(fd_path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
