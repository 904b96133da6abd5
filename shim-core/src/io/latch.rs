//! Stoppable copy loops (stdin and console streams, driven by poll) and the latch that tells
//! when a process's output copiers have finished.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::fifo::set_nonblocking;

/// What a pump does when writing to its destination fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnWriteError {
    /// Give up (stdin: the container is gone).
    Stop,
    /// Keep reading the source and count what is dropped (output: never block the container).
    Drain,
}

/// Bytes a pump moved and dropped.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub copied: u64,
    pub dropped: u64,
}

const BUF: usize = 32 * 1024;

/// Copy `src` into `dst` until `src` ends (EOF, or EIO from a pty master whose slave closed) or
/// `stop` becomes readable or hangs up (its writer was dropped). `dst` is closed on return.
pub(crate) fn pump(mut src: File, dst: File, stop: &File, on_error: OnWriteError) -> Totals {
    let mut totals = Totals::default();
    if set_nonblocking(&src, true).is_err() || set_nonblocking(&dst, true).is_err() {
        return totals;
    }
    let mut dst = Some(dst);
    let mut buf = vec![0u8; BUF];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        let writing = start < end;
        let (stopped, ready) = {
            let target = match (&dst, writing) {
                (Some(d), true) => PollFd::new(d.as_fd(), PollFlags::POLLOUT),
                _ => PollFd::new(src.as_fd(), PollFlags::POLLIN),
            };
            let mut fds = [PollFd::new(stop.as_fd(), PollFlags::POLLIN), target];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return totals,
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if stopped {
            return totals;
        }
        if !ready {
            continue;
        }
        if writing {
            let Some(d) = dst.as_mut() else { continue };
            match d.write(&buf[start..end]) {
                Ok(n) => {
                    start += n;
                    totals.copied += n as u64;
                }
                Err(e) if retry(&e) => {}
                Err(_) if on_error == OnWriteError::Drain => {
                    totals.dropped += (end - start) as u64;
                    start = end;
                    dst = None;
                }
                Err(_) => return totals,
            }
        } else {
            match src.read(&mut buf) {
                Ok(0) => return totals,
                Ok(n) if dst.is_some() => (start, end) = (0, n),
                Ok(n) => totals.dropped += n as u64,
                Err(e) if retry(&e) => {}
                Err(_) => return totals, // EIO: the pty slave is closed, i.e. EOF
            }
        }
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Counts running copiers down to zero; `wait` blocks (bounded) until then.
#[derive(Debug)]
pub(crate) struct Latch {
    running: Mutex<usize>,
    done: Condvar,
}

impl Latch {
    pub fn new(running: usize) -> Arc<Latch> {
        Arc::new(Latch {
            running: Mutex::new(running),
            done: Condvar::new(),
        })
    }

    fn count_down(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running = running.saturating_sub(1);
        if *running == 0 {
            self.done.notify_all();
        }
    }

    /// True when every copier finished within `limit`.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now().checked_add(limit);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *running > 0 {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            running = self
                .done
                .wait_timeout(running, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// Counts its latch down when dropped, so a copier that panics still counts as finished.
pub(crate) struct LatchGuard(pub Arc<Latch>);

impl Drop for LatchGuard {
    fn drop(&mut self) {
        self.0.count_down();
    }
}

/// A stop signal shared by pumps: every pump polls its own dup of the read end; dropping the
/// returned writer hangs them all up.
pub(crate) fn stop_pipe() -> io::Result<(File, File)> {
    let (rx, tx) = os_pipe::pipe()?;
    Ok((
        File::from(std::os::fd::OwnedFd::from(rx)),
        File::from(std::os::fd::OwnedFd::from(tx)),
    ))
}
