//! What every shim binary does as it starts, in this order: `begin` first thing in `main`; the
//! reaper built with `reaper` before any child exists; once the log is open, `log_panics` and
//! `log_fd_limit`.

use std::io;

use crate::limits::{self, FdLimit};

/// First thing in `main`, before any other thread exists: the soft open-file limit raised to the
/// hard one, as every Go program does (the Go shim included), and malloc tuned for a shim. Returns
/// the limit the shim started with, for its children (`reaper`) and the log (`log_fd_limit`);
/// there is nowhere to say a failure yet.
pub fn begin() -> io::Result<FdLimit> {
    let started = limits::raise_fd_limit();
    tune_malloc();
    started
}

/// One malloc arena: the shim's threads allocate little, and glibc would otherwise give each
/// thread an arena of its own (most of an idle shim's private memory).
/// A fixed mmap threshold: big buffers (a large request or reply) get their own mapping and go
/// back to the system when freed, instead of raising glibc's threshold and staying in the heap
/// after the client that caused them has gone.
fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: plain mallopt calls, made (see `begin`) before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// The reaper, handing the open-file limit the shim started with (`begin`'s) to every child it
/// spawns: runc, loggers and `containerd publish` start with it, as Go restores it for them.
pub fn reaper(started: Option<FdLimit>) -> reaper::Builder {
    let builder = reaper::Reaper::builder();
    match started {
        Some(l) => builder.child_fd_limit(l.soft, l.hard),
        None => builder,
    }
}

/// From now on a panic is logged, with where it happened (the server still answers the call).
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = crate::status::panic_text(info.payload());
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        log::error!(panic:% = text, at:% = at; "panic");
    }));
}

/// Log the open-file limit the shim started with (`begin`'s) and the one it has now, or why it
/// could not be raised.
pub fn log_fd_limit(started: io::Result<FdLimit>) {
    match (started, limits::fd_limit()) {
        (Ok(started), Ok(now)) => {
            log::debug!(started_with:% = started, now:% = now; "open file limit")
        }
        (Err(e), _) | (_, Err(e)) => log::warn!(error:% = e; "cannot raise the open file limit"),
    }
}
