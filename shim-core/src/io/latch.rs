//! The latch that tells when a process's output copies have all finished.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Counts running copies down to zero; `wait` blocks (bounded) until then.
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

/// Counts its latch down when dropped: held by a copy, dropped when it ends however it ends.
pub(crate) struct LatchGuard(pub Arc<Latch>);

impl Drop for LatchGuard {
    fn drop(&mut self) {
        self.0.count_down();
    }
}
