//! Attaching local stdio to a process: fifos in a private temp dir and cancellable copier threads.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Instant;

/// A private temp directory (mode 0700) holding our fifos; removed on drop.
pub struct FifoDir {
    path: PathBuf,
}

impl FifoDir {
    pub fn new() -> io::Result<FifoDir> {
        let template = std::env::temp_dir().join("shim-ctl-XXXXXX");
        let path = nix::unistd::mkdtemp(&template).map_err(io::Error::from)?;
        Ok(FifoDir { path })
    }

    /// Makes `<dir>/<name>` as a fifo (0600) and returns its path.
    pub fn mkfifo(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.path.join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(io::Error::from)?;
        Ok(path)
    }
}

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Our end of an output fifo (stdout/stderr of the process): read side, opened without waiting
/// for the shim. Until a writer has connected, poll reports nothing (no early EOF).
pub fn open_output_fifo(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Our writer on the stdin fifo: a blocking write-only open, which returns once the shim has a
/// reader open. Go's shims open theirs on a goroutine that may run only after Start returned; had
/// we written and closed before it, the bytes would go with the fifo's last fd and the shim's open
/// would wait for a writer that never comes, the process for its EOF. (containerd's own clients
/// open their writer the same way.) The copier opens it on its own thread; see `Sink::Fifo`.
/// Once open it writes without blocking, so that a full fifo still lets a cancel through.
fn open_input_fifo(path: &Path) -> io::Result<File> {
    let fifo = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    let nonblocking = nix::fcntl::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fifo), nonblocking)?;
    Ok(fifo)
}

/// A duplicate of one of our own standard streams (0, 1, 2), as a File a copier can own.
pub fn dup_std(fd: BorrowedFd<'_>) -> io::Result<File> {
    Ok(File::from(fd.try_clone_to_owned()?))
}

/// How a copier ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyEnd {
    Eof,
    Cancelled,
}

/// Where a copier writes.
pub enum Sink {
    /// An open file.
    File(File),
    /// The stdin fifo at this path, which the copier opens write-only itself: `open_input_fifo`.
    Fifo(PathBuf),
}

/// One copier thread; dropping `cancel` (the write end of a pipe) wakes and stops it.
pub struct Copier {
    cancel: Option<OwnedFd>,
    /// A `Sink::Fifo`'s path: stopping opens a reader on it, so that an open still waiting for
    /// the shim's reader returns and sees the cancel.
    fifo: Option<PathBuf>,
    done: Receiver<()>,
    handle: Option<JoinHandle<io::Result<CopyEnd>>>,
}

impl Copier {
    /// Copies `src` to `dst` until EOF or cancel. `on_eof` runs after `dst` is closed on EOF.
    pub fn spawn(
        name: &str,
        src: File,
        dst: Sink,
        on_eof: Option<Box<dyn FnOnce() + Send>>,
    ) -> io::Result<Copier> {
        let (cancel_rx, cancel_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let (done_tx, done) = mpsc::channel();
        let fifo = match &dst {
            Sink::Fifo(path) => Some(path.clone()),
            Sink::File(_) => None,
        };
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let end = match dst {
                    Sink::File(f) => Ok(f),
                    Sink::Fifo(path) => open_input_fifo(&path),
                }
                .and_then(|dst| pump(src, dst, &cancel_rx));
                if let Ok(CopyEnd::Eof) = end {
                    if let Some(f) = on_eof {
                        f();
                    }
                }
                let _ = done_tx.send(());
                end
            })?;
        Ok(Copier {
            cancel: Some(cancel_tx),
            fifo,
            done,
            handle: Some(handle),
        })
    }

    /// Waits until the copier has finished on its own or `deadline` passes; true if finished.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        !matches!(self.done.recv_timeout(left), Err(RecvTimeoutError::Timeout))
    }

    /// Cancels (if still running) and joins the thread.
    pub fn stop(mut self) -> io::Result<CopyEnd> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<CopyEnd> {
        self.cancel.take();
        // Held until the join: an open that has not begun yet returns at once too. A fifo
        // already gone (its dir removed) has no open waiting on it.
        let _release = self.fifo.take().and_then(|p| open_output_fifo(&p).ok());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(end)) => end,
            Some(Err(_)) => Err(io::Error::other("copier thread panicked")),
            None => Ok(CopyEnd::Cancelled),
        }
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Waits until `fd` has `events` or the cancel pipe is closed. Returns false when cancelled.
fn ready(fd: BorrowedFd<'_>, events: PollFlags, cancel: &OwnedFd) -> io::Result<bool> {
    loop {
        let mut fds = [
            PollFd::new(fd, events),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds[1].any().unwrap_or(false) {
            return Ok(false);
        }
        if fds[0].any().unwrap_or(false) {
            return Ok(true);
        }
    }
}

fn pump(mut src: File, mut dst: File, cancel: &OwnedFd) -> io::Result<CopyEnd> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if !ready(src.as_fd(), PollFlags::POLLIN, cancel)? {
            return Ok(CopyEnd::Cancelled);
        }
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(CopyEnd::Eof),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            match dst.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(w) => chunk = &chunk[w..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !ready(dst.as_fd(), PollFlags::POLLOUT, cancel)? {
                        return Ok(CopyEnd::Cancelled);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn output_fifo_copies_until_the_writer_closes() {
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("out").unwrap();
        let reader = open_output_fifo(&path).unwrap();
        let sink_path = dir.path.join("sink");
        let sink = File::create(&sink_path).unwrap();
        let copier = Copier::spawn("t-out", reader, Sink::File(sink), None).unwrap();
        let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all(b"hello").unwrap();
        drop(writer);
        assert!(copier.wait_until(Instant::now() + Duration::from_secs(60)));
        assert_eq!(copier.stop().unwrap(), CopyEnd::Eof);
        assert_eq!(std::fs::read(&sink_path).unwrap(), b"hello");
    }

    #[test]
    fn output_fifo_without_any_writer_waits_and_can_be_cancelled() {
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("out").unwrap();
        let reader = open_output_fifo(&path).unwrap();
        let sink = File::create(dir.path.join("sink")).unwrap();
        let copier = Copier::spawn("t-cancel", reader, Sink::File(sink), None).unwrap();
        assert!(!copier.wait_until(Instant::now()));
        assert_eq!(copier.stop().unwrap(), CopyEnd::Cancelled);
    }

    /// A stdin copier from a file holding `data` into the fifo at `path`; the receiver hears of
    /// its EOF callback.
    fn input_copier(dir: &FifoDir, path: &Path, data: &[u8]) -> (Copier, Receiver<()>) {
        let src_path = dir.path.join("src");
        std::fs::write(&src_path, data).unwrap();
        let (tx, rx) = mpsc::channel();
        let copier = Copier::spawn(
            "t-in",
            File::open(&src_path).unwrap(),
            Sink::Fifo(path.to_path_buf()),
            Some(Box::new(move || tx.send(()).unwrap())),
        )
        .unwrap();
        (copier, rx)
    }

    #[test]
    fn input_eof_closes_our_writer_and_runs_the_callback() {
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("in").unwrap();
        // Our shims open their reader before Start returns, without waiting for a writer.
        let mut shim_side = open_output_fifo(&path).unwrap();
        let (copier, eof) = input_copier(&dir, &path, b"data");
        eof.recv().unwrap();
        let blocking = nix::fcntl::F_SETFL(nix::fcntl::OFlag::empty());
        nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&shim_side), blocking).unwrap();
        let mut got = Vec::new();
        shim_side.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"data");
        assert_eq!(copier.stop().unwrap(), CopyEnd::Eof);
    }

    #[test]
    fn input_waits_for_the_shims_reader_before_it_writes_and_closes() {
        // The shim opens its reader only after our input has ended: the bytes and the EOF are
        // still there for it (with a writer that did not wait, they went with its fd).
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("in").unwrap();
        let (copier, eof) = input_copier(&dir, &path, b"late");
        // Nothing to wait on but the absence of an event: the copier cannot have finished.
        assert!(eof.recv_timeout(Duration::from_millis(100)).is_err());
        let mut shim_side = OpenOptions::new().read(true).open(&path).unwrap();
        let mut got = Vec::new();
        shim_side.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"late");
        eof.recv().unwrap();
        assert_eq!(copier.stop().unwrap(), CopyEnd::Eof);
    }

    #[test]
    fn input_into_a_full_fifo_can_be_cancelled() {
        // A process that never reads its stdin: the fifo fills and the copier must still stop.
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("in").unwrap();
        let _shim_side = open_output_fifo(&path).unwrap();
        let (src, feed) = nix::unistd::pipe().unwrap();
        let copier = Copier::spawn("t-full", File::from(src), Sink::Fifo(path), None).unwrap();
        // Our pipe and the fifo hold 64 KiB each: once this much has left our pipe, the copier
        // holds bytes the fifo has no room for, and has begun or will begin a write that waits.
        let mut feed = File::from(feed);
        feed.write_all(&vec![b'y'; (128 << 10) + 1]).unwrap();
        assert_eq!(copier.stop().unwrap(), CopyEnd::Cancelled);
    }

    #[test]
    fn input_whose_fifo_never_gets_a_reader_can_be_cancelled() {
        let dir = FifoDir::new().unwrap();
        let path = dir.mkfifo("in").unwrap();
        let (src, _keep_src_open) = nix::unistd::pipe().unwrap();
        let copier = Copier::spawn("t-none", File::from(src), Sink::Fifo(path), None).unwrap();
        assert!(!copier.wait_until(Instant::now()));
        assert_eq!(copier.stop().unwrap(), CopyEnd::Cancelled);
    }
}
