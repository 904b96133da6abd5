//! Stopping a shim: once, whoever asks first (SIGTERM, SIGINT, or v2's Shutdown), on a thread of
//! its own, so no thread has to sit waiting for the reason.
//!
//! The reaper hands signals to [`Stopper::on_signal`] on its thread, which must not block; the
//! server's pool thread answering Shutdown must not either (its reply is still to go out). So the
//! first request starts a thread named `stop` that runs the front's sequence (kill and delete the
//! containers, flush the events, remove the socket) and ends the process; later requests find it
//! started and do nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use nix::sys::signal::Signal;

/// The front's stop sequence: handed why the shim stops, it ends the process.
type Sequence = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
pub struct Stopper {
    started: AtomicBool,
    sequence: OnceLock<Sequence>,
}

impl Stopper {
    pub fn new() -> Arc<Stopper> {
        Arc::new(Stopper::default())
    }

    /// What stopping does, once the shim serves. `sequence` is expected to end the process; if it
    /// returns, the process exits 0 after it.
    pub fn set(&self, sequence: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.sequence.set(Box::new(sequence));
    }

    /// Stop because of `why`. The first call starts the `stop` thread; a call before `set` (the
    /// shim serves nothing yet, so holds nothing to clean up) exits 0 at once.
    pub fn stop(self: &Arc<Self>, why: String) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        log::info!(reason:% = why; "stopping");
        if self.sequence.get().is_none() {
            std::process::exit(0);
        }
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("stop".into())
            .spawn(move || me.run(&why));
        if let Err(e) = spawned {
            // Without a thread the sequence cannot wait for anything: end as cleanly as can be.
            log::error!(error:% = e; "cannot start the stop thread; exiting without cleanup");
            std::process::exit(1);
        }
    }

    fn run(&self, why: &str) {
        if let Some(sequence) = self.sequence.get() {
            sequence(why);
        }
        std::process::exit(0);
    }

    /// The reaper's signal handler: SIGTERM and SIGINT stop the shim, any other forwarded signal
    /// is logged (Go's shims dump their goroutines on SIGUSR1; this one has nothing to dump).
    pub fn on_signal(self: &Arc<Self>) -> impl Fn(Signal) + Send + 'static {
        let me = Arc::clone(self);
        move |signal| match signal {
            Signal::SIGTERM | Signal::SIGINT => me.stop(format!("signal {signal}")),
            other => log::info!(signal:% = other; "signal received (no stack dump in this shim)"),
        }
    }
}
