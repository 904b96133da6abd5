//! The ttrpc server: its listener (containerd's fd 3 or our own socket), peer check and thread pool.

use std::collections::HashMap;
use std::fs;
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;

use anyhow::{bail, Context};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{getegid, geteuid};
use ttrpc::{AcceptHook, ConnectionData, HookError, HookOutput, MethodHandler};

use crate::{guard, log};

/// The listening socket containerd creates and passes to the shim.
const CONTAINERD_LISTENER_FD: RawFd = 3;

/// Idle workers per connection: Wait handlers block one thread each; the pool grows past `max`
/// while handlers are busy and shrinks back to it when they finish.
const THREADS_MIN: usize = 1;
const THREADS_DEFAULT: usize = 2;
const THREADS_MAX: usize = 4;

/// Where the server listens.
pub enum Listen<'a> {
    /// containerd mode: the listener inherited as fd 3.
    Inherited,
    /// Standalone mode: `unix:///path` (made 0600, a stale socket replaced) or an abstract name.
    Address(&'a str),
}

/// Start serving `methods` (a generated service map) on `listen`. The server runs on its own
/// threads until the process exits.
pub fn start(
    listen: Listen<'_>,
    methods: HashMap<String, Box<dyn MethodHandler + Send + Sync>>,
) -> anyhow::Result<ttrpc::Server> {
    let fd = match listen {
        Listen::Inherited => inherited_listener()?,
        Listen::Address(addr) => own_listener(addr)?,
    };
    let mut server = ttrpc::Server::new()
        .add_listener(fd)
        .context("using the listener")?
        .set_accept_hook(SameUser {
            uid: geteuid().as_raw(),
            gid: getegid().as_raw(),
        })
        .register_service(guard::guard_all(methods))
        .set_thread_count_min(THREADS_MIN)
        .set_thread_count_default(THREADS_DEFAULT)
        .set_thread_count_max(THREADS_MAX);
    server.start().context("starting the ttrpc server")?;
    Ok(server)
}

/// fd 3, made close-on-exec first so runc and the containers do not inherit containerd's listener.
fn inherited_listener() -> anyhow::Result<RawFd> {
    fcntl(
        CONTAINERD_LISTENER_FD,
        FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
    )
    .context("fd 3 (the listener containerd passes) is not open")?;
    Ok(CONTAINERD_LISTENER_FD)
}

/// Our own listener for `-socket`: std opens it close-on-exec.
fn own_listener(addr: &str) -> anyhow::Result<RawFd> {
    let listener = match addr.strip_prefix("unix://") {
        Some(path) => {
            let path = Path::new(path);
            remove_stale_socket(path)?;
            let listener = UnixListener::bind(path)
                .with_context(|| format!("listening on {}", path.display()))?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod 0600 {}", path.display()))?;
            listener
        }
        None => {
            let name = addr.trim_start_matches('\0').trim_start_matches('@');
            if name.is_empty() {
                bail!("empty socket address");
            }
            let sa =
                SocketAddr::from_abstract_name(name.as_bytes()).context("abstract socket name")?;
            UnixListener::bind_addr(&sa)
                .with_context(|| format!("listening on abstract socket @{name}"))?
        }
    };
    Ok(listener.into_raw_fd())
}

/// A socket file left behind by an earlier shim is removed; any other file is an error.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display())),
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// Go's `UnixSocketRequireSameUser`: the peer's uid and gid must be our euid and egid.
#[derive(Debug)]
struct SameUser {
    uid: u32,
    gid: u32,
}

impl AcceptHook for SameUser {
    fn on_accept(&self, fd: RawFd) -> Result<HookOutput, HookError> {
        // SAFETY: ttrpc keeps `fd` open for the duration of this call.
        let sock = unsafe { BorrowedFd::borrow_raw(fd) };
        let cred = getsockopt(&sock, PeerCredentials).map_err(|e| HookError::Io(e.into()))?;
        if cred.uid() != self.uid || cred.gid() != self.gid {
            log::warn!("refused connection from another user", "uid" => cred.uid(), "gid" => cred.gid(), "pid" => cred.pid());
            return Err(HookError::Rejected(format!(
                "peer uid {} gid {} is not ours",
                cred.uid(),
                cred.gid()
            )));
        }
        Ok(HookOutput {
            data: ConnectionData::new(),
            payload_transform: None,
        })
    }
}
