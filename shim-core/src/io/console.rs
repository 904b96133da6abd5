//! Terminals: ConsoleSocket receives the pty master from runc (--console-socket); Console copies
//! between the master and the client's fifos and resizes the window (contract 6.4).

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

use super::fifo::{open_input, open_output};
use super::latch::{Latch, LatchGuard};
use super::reactor::{Copy, CopyId, OnWriteError, Reactor};
use super::{IoError, IoSpec};

/// A listening socket `pty.sock` in a fresh `pty*` dir under $XDG_RUNTIME_DIR or the temp dir.
#[derive(Debug)]
pub struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket, IoError> {
        let template = crate::runc::temp_dir().join("ptyXXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(|e| IoError::Path {
            what: "create console socket directory",
            path: template.clone(),
            source: e.into(),
        })?;
        let path = dir.join("pty.sock");
        let listener =
            match UnixListener::bind(&path).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(IoError::Path {
                        what: "listen on console socket",
                        path,
                        source: e,
                    });
                }
            };
        let socket = ConsoleSocket {
            dir,
            path,
            listener,
        };
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| !d.is_empty()) {
            // As Go: 0755 plus sticky on the socket when a runtime dir is in use.
            std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o1755))
                .map_err(IoError::path("chmod console socket", &socket.path))?;
        }
        Ok(socket)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept runc's one connection and receive the pty master (SCM_RIGHTS). Bounded by `limit`.
    /// Removes the socket and its dir once done (also on Drop).
    pub fn receive_master(&self, limit: Duration) -> Result<OwnedFd, IoError> {
        let deadline = Instant::now().checked_add(limit);
        let result = self.accept_and_receive(deadline, limit);
        self.remove();
        result
    }

    fn accept_and_receive(
        &self,
        deadline: Option<Instant>,
        limit: Duration,
    ) -> Result<OwnedFd, IoError> {
        let stream = loop {
            wait_readable(self.listener.as_fd(), deadline, limit)?;
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(IoError::path("accept on console socket", &self.path)(e)),
            }
        };
        stream
            .set_nonblocking(true)
            .map_err(IoError::os("console socket"))?;
        let mut payload = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        loop {
            wait_readable(stream.as_fd(), deadline, limit)?;
            let mut iov = [IoSliceMut::new(&mut payload)];
            let msg = match recvmsg::<UnixAddr>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    return Err(IoError::Os {
                        what: "receive from console socket",
                        source: e.into(),
                    })
                }
            };
            let mut fds: Vec<OwnedFd> = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel just installed these fds in our table; we own them.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
            }
            let bytes = msg.bytes;
            let mut fds = fds.into_iter();
            return match (fds.next(), fds.next()) {
                (Some(master), None) => Ok(master),
                (Some(_), Some(_)) => Err(IoError::Protocol("received more than one fd".into())),
                (None, _) if bytes == 0 => Err(IoError::Protocol(
                    "peer closed without sending the pty master".into(),
                )),
                (None, _) => Err(IoError::Protocol("message carried no fd".into())),
            };
        }
    }

    /// Remove the socket and its directory (again: a second call finds nothing, and is quiet).
    fn remove(&self) {
        let removed = [
            (&self.path, std::fs::remove_file(&self.path)),
            (&self.dir, std::fs::remove_dir(&self.dir)),
        ];
        for (path, result) in removed {
            match result {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    log::warn!("cannot remove {} (console socket): {e}", path.display());
                }
                _ => {}
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Poll one fd for input until `deadline`; a timeout is an error naming `limit`.
fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    deadline: Option<Instant>,
    limit: Duration,
) -> Result<(), IoError> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(IoError::TimedOut {
                        what: "waiting for the pty master from runc",
                        after: limit,
                    });
                }
                // Round up so we never spin on a sub-millisecond remainder.
                let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => {
                return Err(IoError::Os {
                    what: "poll console socket",
                    source: e.into(),
                })
            }
        }
    }
}

/// A running terminal: stdin fifo into the master, master into the stdout fifo (stderr unused).
/// Both copies run on the IO thread. When the console is dropped (Delete, after its bounded
/// wait), the input copy is cancelled and the output copy released: the end of the output may
/// still sit in the pty (the process is gone, its last lines are not), and it goes on to a
/// client that has the fifo open, up to the master's EIO (see `Reactor::release`).
pub struct Console {
    master: File,
    stdin_writer: Mutex<Option<File>>,
    /// Output, then input: released and cancelled at drop.
    output_copy: Option<CopyId>,
    input_copy: Option<CopyId>,
    drained: Arc<Latch>,
    dropped: Arc<AtomicU64>,
}

/// A terminal's stdout/stdin URI as a path (Go opens the string as a fifo; `file://` then fails).
fn terminal_path(uri: &str) -> Result<&Path, IoError> {
    if uri.starts_with("binary:") {
        return Err(IoError::Unsupported(format!(
            "binary logging is not supported yet: {uri}"
        )));
    }
    Ok(Path::new(uri))
}

impl Console {
    pub fn start(master: OwnedFd, spec: &IoSpec) -> Result<Console, IoError> {
        let master = File::from(master);
        let stdin = match spec.stdin.as_str() {
            "" => None,
            uri => Some(open_input(terminal_path(uri)?)?),
        };
        let stdout = match spec.stdout.as_str() {
            "" => None,
            uri => Some(open_output(terminal_path(uri)?)?),
        };
        let mut console = Console {
            master,
            stdin_writer: Mutex::new(None),
            output_copy: None,
            input_copy: None,
            drained: Latch::new(usize::from(stdout.is_some())),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        if stdout.is_none() && stdin.is_none() {
            return Ok(console);
        }
        let reactor = Reactor::get()?;
        let dup = |f: &File| f.try_clone().map_err(IoError::os("dup"));
        if let Some(out) = stdout {
            // Ends at EIO (the process and everyone else holding the slave are gone), then
            // lingers until the client has read what the fifo holds.
            let id = reactor.add(Copy {
                src: dup(&console.master)?,
                dst: out.writer,
                keep: out.keep_alive.into_iter().collect(),
                on_error: OnWriteError::Drain,
                linger: true,
                done: Some(LatchGuard(console.drained.clone())),
                dropped: Some(console.dropped.clone()),
                batch: false,
                label: format!("terminal output to {}", spec.stdout),
            })?;
            console.output_copy = Some(id);
        }
        if let Some(input) = stdin {
            *console
                .stdin_writer
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = input.writer;
            let id = reactor.add(Copy {
                src: input.reader,
                dst: dup(&console.master)?,
                keep: Vec::new(),
                on_error: OnWriteError::Stop,
                linger: false,
                done: None,
                dropped: None,
                batch: false,
                label: format!("terminal input from {}", spec.stdin),
            })?;
            console.input_copy = Some(id);
        }
        Ok(console)
    }

    /// TIOCSWINSZ on the master: rows = height, cols = width.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), IoError> {
        let size = libc::winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(IoError::Os {
                what: "resize pty",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// CloseIO: drop our stdin writer.
    pub fn close_stdin(&self) {
        *self.stdin_writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Wait (bounded) until the master reached EOF and the client read all of the output.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        self.drained.wait(limit)
    }

    /// Output bytes thrown away because writing to the client failed.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Cancel the input copy, release the output copy (see the type's docs), close the master.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if self.output_copy.is_some() || self.input_copy.is_some() {
            // Copies exist only once the IO thread did.
            if let Ok(reactor) = Reactor::get() {
                if let Some(id) = self.input_copy.take() {
                    reactor.cancel(id);
                }
                if let Some(id) = self.output_copy.take() {
                    reactor.release(id);
                }
            }
        }
        self.close_stdin();
    }
}
