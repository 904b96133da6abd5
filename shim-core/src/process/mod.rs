//! What init and exec processes share: their IO (pipes or console, with a pending resize) and pid files.

pub mod exec;
pub mod exit_cell;
pub mod init;
pub mod state;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{io_error, Error};
use crate::io::{Console, ConsoleSocket, IoOwner, IoSpec, LoggerContext, ProcessIo};
use crate::runc::RuncStdio;

/// How long runc may take to hand over the pty master once it returned.
const CONSOLE_LIMIT: Duration = Duration::from_secs(10);
/// Delete waits this long for output to drain (Go: 2 s).
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The IO a process owns once runc has started it. Shared so that a wait for the output to drain
/// holds only a clone, never the slot's lock: CloseIO and ResizePty go on meanwhile. Whoever drops
/// the last clone closes the IO (in practice the slot: an exit's wait is over before Delete).
enum Stdio {
    None,
    Pipes(Arc<ProcessIo>),
    Console(Arc<Console>),
}

impl Stdio {
    fn share(&self) -> Stdio {
        match self {
            Stdio::None => Stdio::None,
            Stdio::Pipes(p) => Stdio::Pipes(Arc::clone(p)),
            Stdio::Console(c) => Stdio::Console(Arc::clone(c)),
        }
    }

    fn wait_drained(&self, limit: Duration) -> bool {
        match self {
            Stdio::Pipes(p) => p.wait_drained(limit),
            Stdio::Console(c) => c.wait_drained(limit),
            Stdio::None => true,
        }
    }
}

struct Slot {
    stdio: Stdio,
    /// A resize that arrived before the console existed; applied when it appears.
    pending_resize: Option<(u32, u32)>,
}

/// A process's IO, safe to reach from any RPC.
pub struct ProcIo {
    slot: Mutex<Slot>,
}

impl Default for ProcIo {
    fn default() -> Self {
        ProcIo {
            slot: Mutex::new(Slot {
                stdio: Stdio::None,
                pending_resize: None,
            }),
        }
    }
}

impl ProcIo {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn close_stdin(&self) {
        match &self.lock().stdio {
            Stdio::Pipes(p) => p.close_stdin(),
            Stdio::Console(c) => c.close_stdin(),
            Stdio::None => {}
        }
    }

    /// Resize the console, or remember the size until the console exists.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), Error> {
        let mut slot = self.lock();
        match &slot.stdio {
            Stdio::Console(c) => c
                .resize(width, height)
                .map_err(|e| Error::Internal(e.to_string())),
            _ => {
                slot.pending_resize = Some((width, height));
                Ok(())
            }
        }
    }

    /// Wait (bounded) until the output copiers reached EOF; true if they did. Nothing is closed,
    /// and the slot is not locked while waiting.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        let stdio = self.lock().stdio.share();
        stdio.wait_drained(limit)
    }

    /// Whether the output already reached EOF (or there is none).
    pub fn is_drained(&self) -> bool {
        self.wait_drained(Duration::ZERO)
    }

    /// Close stdin, every fd and every copier (see `Stdio` for who closes when shared).
    pub fn close(&self) {
        let stdio = std::mem::replace(&mut self.lock().stdio, Stdio::None);
        drop(stdio);
    }

    fn attach(&self, stdio: Stdio) -> Result<(), Error> {
        let mut slot = self.lock();
        if let (Stdio::Console(c), Some((w, h))) = (&stdio, slot.pending_resize.take()) {
            c.resize(w, h).map_err(|e| Error::Internal(e.to_string()))?;
        }
        slot.stdio = stdio;
        Ok(())
    }
}

/// IO made ready for one runc call (create, exec, restore), finished once runc has returned.
pub(crate) struct Prepared {
    console_socket: Option<ConsoleSocket>,
    pipes: Option<ProcessIo>,
}

impl Prepared {
    /// Make the pipes or the console socket; returns runc's side of the IO too.
    pub fn new(
        spec: &IoSpec,
        owner: IoOwner,
        logger: LoggerContext,
        what: &str,
    ) -> Result<(Prepared, RuncStdio), Error> {
        if spec.terminal {
            let socket = ConsoleSocket::new().map_err(|e| io_error(what, e))?;
            return Ok((
                Prepared {
                    console_socket: Some(socket),
                    pipes: None,
                },
                RuncStdio::captured(),
            ));
        }
        let (pipes, runc) = ProcessIo::new(spec, owner).map_err(|e| io_error(what, e))?;
        Ok((
            Prepared {
                console_socket: None,
                pipes: Some(pipes.with_logger(logger)),
            },
            runc,
        ))
    }

    /// Where runc must send the pty master, in terminal mode.
    pub fn console_path(&self) -> Option<std::path::PathBuf> {
        self.console_socket.as_ref().map(|s| s.path().to_path_buf())
    }

    /// runc returned: receive the console or start the copiers, and hand the IO to `io`.
    pub fn finish(self, spec: &IoSpec, io: &ProcIo, what: &str) -> Result<(), Error> {
        let stdio = match (self.console_socket, self.pipes) {
            (Some(socket), _) => {
                let master = socket
                    .receive_master(CONSOLE_LIMIT)
                    .map_err(|e| io_error(what, e))?;
                let console = Console::start(master, spec).map_err(|e| io_error(what, e))?;
                Stdio::Console(Arc::new(console))
            }
            (None, Some(mut pipes)) => {
                pipes.start().map_err(|e| io_error(what, e))?;
                Stdio::Pipes(Arc::new(pipes))
            }
            (None, None) => Stdio::None,
        };
        io.attach(stdio)
    }
}

/// The pid runc wrote.
pub(crate) fn read_pid_file(path: &Path) -> Result<u32, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Internal(format!(
            "failed to retrieve OCI runtime container pid: {}: {e}",
            path.display()
        ))
    })?;
    text.trim().parse().map_err(|_| {
        Error::Internal(format!(
            "failed to retrieve OCI runtime container pid: {}: {text:?}",
            path.display()
        ))
    })
}
