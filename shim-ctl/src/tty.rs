//! The local terminal: raw mode for `exec -t`, its size, and a signal thread (SIGWINCH and forwarding).

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

/// True if `fd` is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// `(cols, rows)` of the terminal on `fd`, if it is one.
pub fn size(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    // SAFETY: TIOCGWINSZ fills a winsize; failure leaves it untouched and returns -1.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && (ws.ws_col, ws.ws_row) != (0, 0))
        .then_some((u32::from(ws.ws_col), u32::from(ws.ws_row)))
}

/// Raw mode on a terminal for as long as the guard lives; the old settings come back on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let fd = fd.try_clone_to_owned()?;
        let saved = termios::tcgetattr(&fd).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// The signals `exec` handles itself: window changes, and the ones it forwards to the process.
pub fn exec_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set
}

/// Blocks `set` in the calling thread; call before any thread starts so all threads inherit it
/// and the signals are only seen through a [`SignalWatcher`].
pub fn block(set: &SigSet) -> io::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(set), None)
        .map_err(io::Error::from)
}

/// A thread reading blocked signals from a signalfd and handing each to a callback.
pub struct SignalWatcher {
    cancel: Option<OwnedFd>,
    handle: Option<JoinHandle<()>>,
}

impl SignalWatcher {
    pub fn spawn(
        set: &SigSet,
        mut handler: impl FnMut(Signal) + Send + 'static,
    ) -> io::Result<SignalWatcher> {
        let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(io::Error::from)?;
        let (cancel_rx, cancel_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let handle = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let mut fds = [
                    PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(cancel_rx.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
                if fds[1].any().unwrap_or(true) {
                    return;
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                        handler(sig);
                    }
                }
            })?;
        Ok(SignalWatcher {
            cancel: Some(cancel_tx),
            handle: Some(handle),
        })
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.cancel.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
