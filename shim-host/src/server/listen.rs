//! The listening socket: containerd's inherited fd 3, or our own for `-socket`; and who may connect.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    bind, getsockopt, listen, socket, sockopt::PeerCredentials, AddressFamily, Backlog, SockFlag,
    SockType, UnixAddr,
};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{getegid, geteuid};

/// The listening socket containerd creates and passes to the shim.
const CONTAINERD_LISTENER_FD: RawFd = 3;

/// Where the server listens.
pub enum Listen<'a> {
    /// containerd mode: the listener inherited as fd 3.
    Inherited,
    /// Standalone mode: `unix:///path` (created 0600; a stale socket replaced) or an abstract name.
    Address(&'a str),
}

/// The listener, non-blocking and close-on-exec (runc and the containers must not inherit it).
pub fn open(listen: Listen<'_>) -> io::Result<UnixListener> {
    let listener = match listen {
        Listen::Inherited => inherited()?,
        Listen::Address(addr) => own(addr)?,
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| context(e, "making the listener non-blocking"))?;
    Ok(listener)
}

fn inherited() -> io::Result<UnixListener> {
    fcntl(
        CONTAINERD_LISTENER_FD,
        FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| {
        context(
            e.into(),
            "fd 3 (the listener containerd passes) is not open",
        )
    })?;
    // SAFETY: fd 3 is open (fcntl just succeeded) and from now on owned by this listener alone.
    Ok(unsafe { UnixListener::from_raw_fd(CONTAINERD_LISTENER_FD) })
}

/// Our own listener (std opens it close-on-exec).
fn own(addr: &str) -> io::Result<UnixListener> {
    match addr.strip_prefix("unix://") {
        Some(path) => own_path(Path::new(path)),
        None => {
            let name = addr.trim_start_matches('\0').trim_start_matches('@');
            if name.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "empty socket address",
                ));
            }
            let sa = SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(|e| context(e, "abstract socket name"))?;
            UnixListener::bind_addr(&sa)
                .map_err(|e| context(e, &format!("listening on abstract socket @{name}")))
        }
    }
}

/// Bind `path` with mode 0600 (see `bind_private`), after replacing a stale socket that nobody
/// serves any more.
fn own_path(path: &Path) -> io::Result<UnixListener> {
    remove_stale_socket(path)?;
    bind_private(path).map_err(|e| context(e, &format!("listening on {}", path.display())))
}

/// A close-on-exec listener on `path` whose socket file is mode 0600 from the moment it exists.
///
/// The mode is set on the socket before `bind` (Linux gives the new file the socket inode's mode,
/// less the umask), never by changing the umask: that is process-wide, and another thread
/// creating a directory meanwhile would get it 0600 too (runc then fails to exec in a rootfs
/// made that way). The chmod after `bind` keeps 0600 whatever the umask.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let addr = UnixAddr::new(path)?;
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o600))?;
    bind(fd.as_raw_fd(), &addr)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| context(e, &format!("chmod 0600 {}", path.display())))?;
    listen(&fd, Backlog::MAXCONN)?;
    Ok(UnixListener::from(fd))
}

/// A socket file left behind by an earlier shim is removed; one that still answers belongs to a
/// live shim and is an error, as is any other file.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a running server", path.display()),
            )),
            Err(_) => fs::remove_file(path)
                .map_err(|e| context(e, &format!("removing stale socket {}", path.display()))),
        },
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(e, &format!("checking {}", path.display()))),
    }
}

/// Go's `UnixSocketRequireSameUser`: the peer's uid and gid must be our euid and egid.
pub fn same_user(sock: &UnixStream) -> bool {
    match getsockopt(&sock.as_fd(), PeerCredentials) {
        Ok(cred) if cred.uid() == geteuid().as_raw() && cred.gid() == getegid().as_raw() => true,
        Ok(cred) => {
            log::warn!(uid:% = cred.uid(), gid:% = cred.gid(), pid:% = cred.pid(); "refused connection from another user");
            false
        }
        Err(e) => {
            log::warn!(error:% = e; "refused connection: no peer credentials");
            false
        }
    }
}

/// `e` with what was being done in front of its message.
fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
