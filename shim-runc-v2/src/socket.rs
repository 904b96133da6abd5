//! The daemon's socket: its address as Go's shims compute it, and binding, probing and removing it.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use sha2::{Digest, Sha256};
use shim_host::server::bind_private;

/// containerd's state dir on Linux (`defaults.DefaultStateDir`); shim sockets live in `s/` under
/// it whatever containerd's config says (1.6, 1.7 and 2.x alike).
pub const STATE_DIR: &str = "/run/containerd";

/// Go's `shim.SocketAddress`: `unix://<state>/s/<hex sha256 of filepath.Join(address, ns, id)>`,
/// `id` being the group id when the container belongs to a group.
pub fn address(containerd_address: &str, namespace: &str, id: &str) -> String {
    let joined = go_join(&[containerd_address, namespace, id]);
    format!("unix://{STATE_DIR}/s/{}", hex_sha256(joined.as_bytes()))
}

/// The filesystem path of a `unix://` address.
pub fn path_of(address: &str) -> io::Result<&Path> {
    address
        .strip_prefix("unix://")
        .map(Path::new)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{address:?} is not a unix:// address"),
            )
        })
}

/// How binding the daemon's socket went.
pub enum Bound {
    /// A fresh listener (mode 0600); any stale socket file was replaced.
    New(UnixListener),
    /// A live server already answers there: the group's daemon.
    Running,
}

/// Bind `address` (its directory made if missing). If the path is taken by a socket that still
/// accepts connections, that is a running daemon; a dead one's file is removed and bound anew.
pub fn bind(address: &str) -> io::Result<Bound> {
    let path = path_of(address)?;
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| context(e, &format!("mkdir {}", dir.display())))?;
    }
    match bind_private(path) {
        Ok(l) => return Ok(Bound::New(l)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(context(e, &format!("listen on {}", path.display()))),
    }
    if answers(path) {
        return Ok(Bound::Running);
    }
    remove(address)?;
    bind_private(path)
        .map(Bound::New)
        .map_err(|e| context(e, &format!("listen on {} again", path.display())))
}

/// Whether a server accepts connections on `path`, asked without blocking: a full backlog
/// (EAGAIN) still means someone listens.
pub fn answers(path: &Path) -> bool {
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    matches!(connect(fd.as_raw_fd(), &addr), Ok(()) | Err(Errno::EAGAIN))
}

/// Remove the socket file of `address`; a missing one is fine.
pub fn remove(address: &str) -> io::Result<()> {
    let path = path_of(address)?;
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(e, &format!("remove {}", path.display()))),
    }
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Go's `filepath.Join` on Unix: the non-empty elements joined by `/`, then cleaned.
pub fn go_join(parts: &[&str]) -> String {
    let joined: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if joined.is_empty() {
        return String::new();
    }
    go_clean(&joined.join("/"))
}

/// Go's `filepath.Clean`: one slash between elements, no `.`, `..` resolved lexically (and
/// dropped at the root), no trailing slash, `.` for nothing.
pub fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            p => out.push(p),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

/// Lower-case hex of the SHA-256 of `data`, as Go's `fmt.Sprintf("%x", sha256.Sum256(data))`.
fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_address_is_the_hash_of_the_joined_path_under_the_state_dir() {
        // As Go: sha256("/run/containerd/containerd.sock/default/c1").
        let want = hex_sha256(b"/run/containerd/containerd.sock/default/c1");
        assert_eq!(
            address("/run/containerd/containerd.sock", "default", "c1"),
            format!("unix:///run/containerd/s/{want}")
        );
        assert_eq!(address("/a//b/", "ns", "id"), address("/a/b", "ns", "id"));
        assert!(address("/a", "ns", "id").len() <= "unix://".len() + 106);
    }

    #[test]
    fn go_join_and_clean_agree_with_go() {
        let table = [
            (
                vec!["/run/c.sock", "default", "c1"],
                "/run/c.sock/default/c1",
            ),
            (vec!["", "ns", "id"], "ns/id"),
            (vec!["/a/", "./b", "c/"], "/a/b/c"),
            (vec!["/a", "..", "..", "b"], "/b"),
            (vec!["a", "../..", "b"], "../b"),
            (vec!["", "", ""], ""),
        ];
        for (parts, want) in table {
            assert_eq!(go_join(&parts), want, "{parts:?}");
        }
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_clean("//x//y/."), "/x/y");
    }

    #[test]
    fn a_live_socket_is_reused_and_a_dead_one_replaced() {
        let dir = std::env::temp_dir().join(format!("rsrunc-v2-sock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("s").join("x");
        let address = format!("unix://{}", path.display());
        let Bound::New(first) = bind(&address).unwrap() else {
            panic!("a fresh path must bind");
        };
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(bind(&address).unwrap(), Bound::Running));
        drop(first);
        assert!(!answers(&path));
        assert!(matches!(bind(&address).unwrap(), Bound::New(_)));
        remove(&address).unwrap();
        remove(&address).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_unix_addresses_have_a_path() {
        assert_eq!(path_of("unix:///x/y").unwrap(), Path::new("/x/y"));
        assert!(path_of("/x/y").is_err());
    }
}
