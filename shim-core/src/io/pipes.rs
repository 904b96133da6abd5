//! ProcessIo: the pipes runc gets for a non-terminal process, and the copier threads between
//! those pipes and the client's fifos or log file (contract 6.3).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::binary::{BinaryLogger, LoggerContext};
use super::fifo::{open_input, open_output, OutputFifo};
use super::pump::{pump, stop_pipe, Latch, LatchGuard, OnWriteError};
use super::{IoError, IoOwner, IoSpec, Scheme};
use crate::runc::RuncStdio;

/// Non-terminal IO of one process: pipes for runc, copier threads to/from the client's fifos/files.
///
/// Threads: one output copier per stdout/stderr (`std::io::copy` between two `File`s, so the
/// kernel splices), one stdin pump (poll-driven, stoppable). The stdin pump is always joined.
/// An output copier is joined when it has finished; one still running at `close` is detached on
/// purpose: it is blocked on a pipe whose writer lives outside our control (a daemon left in the
/// container) or on a fifo nobody reads, owns only its own fds, and ends when those do.
pub struct ProcessIo {
    stdin_path: Option<PathBuf>,
    stdout_path: Option<PathBuf>,
    stderr_path: Option<PathBuf>,
    /// Our ends of the pipes until `start` hands them to threads.
    stdin_pipe: Option<File>,
    stdout_pipe: Option<File>,
    stderr_pipe: Option<File>,
    stdin_writer: Mutex<HeldWriter>,
    stop: Option<File>,
    stdin_pump: Option<JoinHandle<()>>,
    copiers: Vec<JoinHandle<()>>,
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
            stop: None,
            stdin_pump: None,
            copiers: Vec::new(),
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

        let outputs: Vec<(&str, File, OutputFifo)> = [
            ("stdout", self.stdout_pipe.take(), stdout),
            ("stderr", self.stderr_pipe.take(), stderr),
        ]
        .into_iter()
        .filter_map(|(name, pipe, target)| Some((name, pipe?, target?)))
        .collect();
        self.drained = Latch::new(outputs.len());
        for (name, from, to) in outputs {
            let guard = LatchGuard(self.drained.clone());
            let dropped = self.dropped.clone();
            let handle = thread::Builder::new()
                .name(format!("io-{name}"))
                .spawn(move || {
                    let _done = guard;
                    copy_output(from, to, &dropped);
                });
            self.copiers
                .push(handle.map_err(IoError::os("spawn copier thread"))?);
        }

        if let (Some(input), Some(pipe)) = (stdin, self.stdin_pipe.take()) {
            {
                let mut held = self.stdin_writer.lock().unwrap_or_else(|e| e.into_inner());
                if !held.closed {
                    held.writer = input.writer;
                }
            }
            let (stop_rx, stop_tx) = stop_pipe().map_err(IoError::os("create pipe"))?;
            let reader = input.reader;
            let handle = thread::Builder::new()
                .name("io-stdin".into())
                .spawn(move || {
                    // At EOF the pump returns and drops the pipe's write end: the container sees EOF.
                    pump(reader, pipe, &stop_rx, OnWriteError::Stop);
                });
            self.stdin_pump = Some(handle.map_err(IoError::os("spawn stdin thread"))?);
            self.stop = Some(stop_tx);
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

    /// Delete: wait (bounded) for the output copiers (or the logger) to reach EOF. True when they did.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        self.drained.wait(limit) && self.logger.as_ref().map_or(true, |l| l.wait(limit))
    }

    /// Output bytes thrown away because the client's side failed (the container never blocks on us).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stop the stdin pump and join it, join finished copiers (see the type's docs), close every fd.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        self.stop = None; // hangs up the stdin pump's stop pipe
        if let Some(logger) = self.logger.take() {
            logger.stop();
        }
        if let Some(handle) = self.stdin_pump.take() {
            let _ = handle.join();
        }
        self.close_stdin();
        for handle in self.copiers.drain(..) {
            if handle.is_finished() {
                let _ = handle.join();
            } // else detached on purpose: see the type's docs
        }
    }
}

/// Pipe → client until EOF. On a write error keep draining the pipe so the container never blocks,
/// counting what is dropped. Closing the writer and keep-alive reader tells the client EOF.
fn copy_output(mut from: File, to: OutputFifo, dropped: &AtomicU64) {
    let OutputFifo {
        mut writer,
        keep_alive,
    } = to;
    loop {
        match io::copy(&mut from, &mut writer) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                drop(writer);
                drop(keep_alive);
                dropped.fetch_add(discard(&mut from), Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Read `from` to EOF, returning the byte count.
fn discard(from: &mut File) -> u64 {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return total,
        }
    }
}
