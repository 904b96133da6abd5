//! Caught signals: handlers record them in a bitmask and wake the reaping thread through a pipe.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::Error;

/// Write end of the pipe, for the handler. -1 until installed; set once per process.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Signals caught and not yet taken by [`Wakeups::next`], bit N for signal N.
static PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(signo: libc::c_int) {
    // Async-signal-safe: one lock-free atomic, one write(2), errno preserved. The signal is
    // recorded before the wake-up, so a write that fails because the pipe is full loses nothing:
    // the bytes already there wake the reader, which takes every recorded bit.
    if (1..64).contains(&signo) {
        PENDING.fetch_or(1 << signo, Ordering::SeqCst);
    }
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: __errno_location and write are async-signal-safe; the buffer is on our stack.
        unsafe {
            let saved = *libc::__errno_location();
            let byte = 0u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// The reading end, owned by the reaping thread.
pub struct Wakeups {
    read: File,
    /// The signals with our handler, which the reaping thread must be able to take.
    handled: SigSet,
}

impl Wakeups {
    /// Create the pipe and install handlers for `signals`. Fails if already installed.
    pub fn install(signals: &[Signal]) -> Result<Wakeups, Error> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(sys("pipe2", std::io::Error::last_os_error()));
        }
        // SAFETY: both fds were just created and are owned here.
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = std::os::fd::IntoRawFd::into_raw_fd(write);
        // SAFETY: wfd is a valid fd we own; O_NONBLOCK so a handler never blocks.
        unsafe { libc::fcntl(wfd, libc::F_SETFL, libc::O_NONBLOCK) };
        if WRITE_FD
            .compare_exchange(-1, wfd, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // SAFETY: wfd is ours and was not published.
            unsafe { libc::close(wfd) };
            return Err(Error::AlreadyStarted);
        }
        // The write end lives for the rest of the process: handlers may run at any time.
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        let mut handled = SigSet::empty();
        for &sig in signals {
            // SAFETY: the handler is async-signal-safe (see on_signal).
            unsafe { sigaction(sig, &action) }
                .map_err(|e| sys("sigaction", std::io::Error::from_raw_os_error(e as i32)))?;
            handled.add(sig);
        }
        Ok(Wakeups { read, handled })
    }

    /// Unblock the handled signals in the calling thread. A process-directed signal goes to a
    /// thread that does not block it, so with this the reaping thread takes them even when every
    /// other thread (or the process we were started from) blocks them. Signals already pending
    /// reach the handler now.
    pub fn unblock_in_this_thread(&self) -> Result<(), Error> {
        self.handled.thread_unblock().map_err(|e| {
            sys(
                "pthread_sigmask",
                std::io::Error::from_raw_os_error(e as i32),
            )
        })
    }

    /// Block until at least one signal arrived; return the distinct signal numbers seen, lowest
    /// first. Several deliveries of one signal between two calls count once.
    pub fn next(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 512];
        loop {
            // Take the bits before blocking: any signal recorded after this swap also wrote (or
            // found the pipe full of) a wake-up, so the read below returns.
            let bits = PENDING.swap(0, Ordering::SeqCst);
            if bits != 0 {
                return (1..64).filter(|n| bits & (1 << n) != 0).collect();
            }
            match self.read.read(&mut buf) {
                Ok(0) => return Vec::new(),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Vec::new(),
            }
        }
    }
}

fn sys(what: &'static str, source: std::io::Error) -> Error {
    Error::Sys { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_caught_while_the_pipe_is_full_is_not_lost() {
        // No handler is installed: the test plays the handler itself (install works once).
        let mut w = Wakeups::install(&[]).unwrap();
        let fd = WRITE_FD.load(Ordering::SeqCst);
        // SAFETY: fcntl on our own pipe's write end.
        let capacity = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
        assert!(capacity > 0);
        for _ in 0..=capacity {
            on_signal(libc::SIGCHLD);
        }
        on_signal(libc::SIGUSR1);
        assert_eq!(w.next(), vec![libc::SIGUSR1, libc::SIGCHLD]);
    }
}
