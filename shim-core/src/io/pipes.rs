//! ProcessIo: the pipes runc gets for a non-terminal process, and the copies (on the IO thread)
//! between those pipes and the client's fifos or log file (contract 6.3).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::binary::{BinaryLogger, LoggerContext};
use super::fifo::{open_input, open_output, OutputFifo};
use super::latch::{Latch, LatchGuard};
use super::reactor::{Copy, CopyId, OnWriteError, Reactor};
use super::{IoError, IoOwner, IoSpec, Scheme};
use crate::runc::RuncStdio;

/// Non-terminal IO of one process: pipes for runc, copies to/from the client's fifos/files.
///
/// The copies run on the IO thread (`reactor`): stdout and stderr each from their pipe to the
/// client (spliced when the client has a fifo), stdin from the client's fifo to its pipe. An
/// output copy into a fifo lingers after its source's EOF until the client has read every byte
/// (see `reactor`), so "drained" means the client has the output, not only the fifo. The stdin
/// copy is cancelled at `close`, and the output copies are released: one lingering ends (what
/// the fifo holds stays readable to a client that has it open); one still running goes on on
/// purpose: its pipe's writer lives outside our control (a daemon left in the container); it
/// owns only its own fds and ends when its source does.
pub struct ProcessIo {
    stdin_path: Option<PathBuf>,
    stdout_path: Option<PathBuf>,
    stderr_path: Option<PathBuf>,
    /// Our ends of the pipes until `start` hands them to threads.
    stdin_pipe: Option<File>,
    stdout_pipe: Option<File>,
    stderr_pipe: Option<File>,
    stdin_writer: Mutex<HeldWriter>,
    /// The stdin copy, cancelled at close.
    stdin_copy: Option<CopyId>,
    /// The output copies, released at close.
    output_copies: Vec<CopyId>,
    drained: Arc<Latch>,
    dropped: Arc<AtomicU64>,
    started: bool,
    /// `binary://` logging: the logger and its arguments, who it logs for, and the running logger.
    binary: Option<(PathBuf, Vec<String>)>,
    logger_ctx: Option<LoggerContext>,
    logger: Option<BinaryLogger>,
}

/// Our writer on the stdin fifo: held from `start` until `close_stdin`.
#[derive(Default)]
struct HeldWriter {
    writer: Option<File>,
    closed: bool,
}

fn dev_null() -> Result<OwnedFd, IoError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(IoError::path("open", "/dev/null"))?;
    Ok(file.into())
}

/// A CLOEXEC pipe as (read end, write end).
fn pipe() -> Result<(File, File), IoError> {
    let (r, w) = os_pipe::pipe().map_err(IoError::os("create pipe"))?;
    Ok((File::from(OwnedFd::from(r)), File::from(OwnedFd::from(w))))
}

fn chown(file: &File, owner: IoOwner) -> Result<(), IoError> {
    // SAFETY: fchown on an fd we own.
    if unsafe { libc::fchown(file.as_raw_fd(), owner.uid, owner.gid) } != 0 {
        return Err(IoError::Os {
            what: "fchown pipe",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// `file://` target: mkdir -p its parent (0755) and create it (0644, append), like Go at Create.
fn create_log_file(path: &Path) -> Result<(), IoError> {
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(IoError::path("create directory", parent))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(IoError::path("create log file", path))?;
    Ok(())
}

fn non_empty(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

impl ProcessIo {
    /// Make the pipes (only for non-empty streams; null scheme = /dev/null). Returns runc's ends.
    /// Streams without a pipe get /dev/null (never a capture: runc passes its stdio to the container).
    pub fn new(spec: &IoSpec, owner: IoOwner) -> Result<(ProcessIo, RuncStdio), IoError> {
        let mut io = ProcessIo {
            stdin_path: None,
            stdout_path: None,
            stderr_path: None,
            stdin_pipe: None,
            stdout_pipe: None,
            stderr_pipe: None,
            stdin_writer: Mutex::new(HeldWriter::default()),
            stdin_copy: None,
            output_copies: Vec::new(),
            drained: Latch::new(0),
            dropped: Arc::new(AtomicU64::new(0)),
            started: false,
            binary: None,
            logger_ctx: None,
            logger: None,
        };
        match spec.scheme()? {
            Scheme::Null => {}
            Scheme::Fifo => {
                io.stdin_path = non_empty(&spec.stdin);
                io.stdout_path = non_empty(&spec.stdout);
                io.stderr_path = non_empty(&spec.stderr);
            }
            Scheme::File(path) => {
                create_log_file(&path)?;
                io.stdin_path = non_empty(&spec.stdin);
                io.stdout_path = Some(path.clone());
                io.stderr_path = Some(path);
            }
            Scheme::Binary { path, args } => {
                io.stdin_path = non_empty(&spec.stdin);
                io.binary = Some((path, args));
            }
        }
        let logged = io.binary.is_some();
        let mut stdio = RuncStdio::default();
        if io.stdin_path.is_some() {
            let (r, w) = pipe()?;
            chown(&r, owner)?;
            stdio.stdin = Some(r.into());
            io.stdin_pipe = Some(w);
        }
        for (path, ours, theirs) in [
            (&io.stdout_path, &mut io.stdout_pipe, &mut stdio.stdout),
            (&io.stderr_path, &mut io.stderr_pipe, &mut stdio.stderr),
        ] {
            if path.is_some() || logged {
                let (r, w) = pipe()?;
                chown(&w, owner)?;
                *theirs = Some(w.into());
                *ours = Some(r);
            } else {
                *theirs = Some(dev_null()?);
            }
        }
        Ok((io, stdio))
    }

    /// After runc create/exec returned (runc's ends were consumed by that call): open the client
    /// side in the contract 6.3 order (stdin writer held until close_stdin; stdout/stderr writer
    /// plus keep-alive reader; stdin reader) and start the copiers. No open waits for the client
    /// (see `fifo`), so this returns promptly whether or not a reader is there.
    pub fn start(&mut self) -> Result<(), IoError> {
        if self.started {
            return Ok(());
        }
        if let Some((path, args)) = self.binary.take() {
            let ctx = self.logger_ctx.clone().ok_or_else(|| {
                IoError::Unsupported("binary logging needs the container id and namespace".into())
            })?;
            let (Some(out), Some(err)) = (self.stdout_pipe.take(), self.stderr_pipe.take()) else {
                return Err(IoError::Unsupported(
                    "binary logging without output pipes".into(),
                ));
            };
            self.logger = Some(BinaryLogger::start(&path, &args, out, err, &ctx)?);
        }
        let stdin = self.stdin_path.as_deref().map(open_input).transpose()?;
        let stdout = self.stdout_path.as_deref().map(open_output).transpose()?;
        let stderr = self.stderr_path.as_deref().map(open_output).transpose()?;
        self.started = true;

        let outputs: Vec<(File, OutputFifo, String)> = [
            ("stdout", self.stdout_pipe.take(), stdout, &self.stdout_path),
            ("stderr", self.stderr_pipe.take(), stderr, &self.stderr_path),
        ]
        .into_iter()
        .filter_map(|(name, pipe, target, path)| {
            let label = format!("{name} to {}", path.as_deref()?.display());
            Some((pipe?, target?, label))
        })
        .collect();
        if outputs.is_empty() && stdin.is_none() {
            return Ok(());
        }
        let reactor = Reactor::get()?;
        self.drained = Latch::new(outputs.len());
        for (from, to, label) in outputs {
            // On a write error the copy keeps draining the pipe (counting what it drops), so the
            // container never blocks on us. At EOF it lingers until the client has read what the
            // fifo holds; then closing the writer tells the client EOF.
            let id = reactor.add(Copy {
                src: from,
                dst: to.writer,
                keep: to.keep_alive.into_iter().collect(),
                on_error: OnWriteError::Drain,
                linger: true,
                done: Some(LatchGuard(self.drained.clone())),
                dropped: Some(self.dropped.clone()),
                batch: true,
                label,
            })?;
            self.output_copies.push(id);
        }

        if let (Some(input), Some(pipe)) = (stdin, self.stdin_pipe.take()) {
            {
                let mut held = self.stdin_writer.lock().unwrap_or_else(|e| e.into_inner());
                if !held.closed {
                    held.writer = input.writer;
                }
            }
            let label = match &self.stdin_path {
                Some(path) => format!("stdin from {}", path.display()),
                None => "stdin".to_string(),
            };
            // At EOF the copy ends and closes the pipe's write end: the container sees EOF.
            self.stdin_copy = Some(reactor.add(Copy {
                src: input.reader,
                dst: pipe,
                keep: Vec::new(),
                on_error: OnWriteError::Stop,
                linger: false,
                done: None,
                dropped: None,
                batch: false,
                label,
            })?);
        }
        Ok(())
    }

    /// CloseIO: drop our stdin writer; once the client's writer is gone too, the container sees EOF.
    pub fn close_stdin(&self) {
        let mut held = self.stdin_writer.lock().unwrap_or_else(|e| e.into_inner());
        held.closed = true;
        held.writer = None;
    }

    /// Who a `binary://` logger logs for (ignored by the other schemes).
    pub fn with_logger(mut self, ctx: LoggerContext) -> ProcessIo {
        self.logger_ctx = Some(ctx);
        self
    }

    /// Wait (bounded) until the output copies ended: their sources reached EOF and the client
    /// read every byte the fifos held (or a copy gave up); for `binary://`, until the logger
    /// exited. True when they did.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        self.drained.wait(limit) && self.logger.as_ref().map_or(true, |l| l.wait(limit))
    }

    /// Output bytes thrown away because the client's side failed (the container never blocks on us).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Cancel the stdin copy, release the output copies and close our fds (see the type's docs).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        if let Some(logger) = self.logger.take() {
            logger.stop();
        }
        if self.stdin_copy.is_some() || !self.output_copies.is_empty() {
            // Copies exist only once the IO thread did.
            if let Ok(reactor) = Reactor::get() {
                if let Some(id) = self.stdin_copy.take() {
                    reactor.cancel(id);
                }
                for id in self.output_copies.drain(..) {
                    reactor.release(id);
                }
            }
        }
        self.close_stdin();
    }
}
