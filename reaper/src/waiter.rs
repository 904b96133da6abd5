//! A one-shot receiver for the exit of one pid.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::Exit;

/// Receives exactly one [`Exit`]. Once received it is kept, so every method can be called again.
pub struct ExitWaiter {
    pid: i32,
    rx: Receiver<Exit>,
    got: Mutex<Option<Exit>>,
}

impl ExitWaiter {
    pub(crate) fn new(pid: i32, rx: Receiver<Exit>) -> ExitWaiter {
        ExitWaiter {
            pid,
            rx,
            got: Mutex::new(None),
        }
    }

    /// The pid this waiter follows.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Block until the exit. If the watch was dropped with [`crate::Reaper::forget`], returns an
    /// exit with status -1 at once instead of blocking forever.
    pub fn wait(self) -> Exit {
        if let Some(e) = self.cached() {
            return e;
        }
        self.rx.recv().unwrap_or(Exit {
            pid: self.pid,
            status: -1,
            signal: None,
            at: SystemTime::now(),
        })
    }

    /// Wait at most `d`.
    pub fn wait_timeout(&self, d: Duration) -> Option<Exit> {
        if let Some(e) = self.cached() {
            return Some(e);
        }
        match self.rx.recv_timeout(d) {
            Ok(e) => Some(self.keep(e)),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The exit, if it already happened.
    pub fn try_exit(&self) -> Option<Exit> {
        if let Some(e) = self.cached() {
            return Some(e);
        }
        match self.rx.try_recv() {
            Ok(e) => Some(self.keep(e)),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }

    fn cached(&self) -> Option<Exit> {
        *self.got.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep(&self, e: Exit) -> Exit {
        *self.got.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        e
    }
}
