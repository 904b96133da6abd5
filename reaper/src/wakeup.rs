//! The self-pipe: signal handlers write the signal number, the reaping thread reads it.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::Error;

/// Write end of the pipe, for the handler. -1 until installed; set once per process.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    // Async-signal-safe: one write(2), errno preserved. A full pipe already holds a wake-up.
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: __errno_location and write are async-signal-safe; the buffer is on our stack.
        unsafe {
            let saved = *libc::__errno_location();
            let byte = signo as u8;
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

    /// Block until at least one signal arrived; return the distinct signal numbers seen.
    pub fn next(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 128];
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => return Vec::new(),
                Ok(n) => {
                    let mut seen: Vec<i32> = buf[..n].iter().map(|&b| i32::from(b)).collect();
                    seen.sort_unstable();
                    seen.dedup();
                    return seen;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Vec::new(),
            }
        }
    }
}

fn sys(what: &'static str, source: std::io::Error) -> Error {
    Error::Sys { what, source }
}
