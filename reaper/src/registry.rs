//! Who wants which exit: per-pid watchers, the bounded unclaimed buffer, and all-exit subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::Exit;

/// Unclaimed exits are kept this long, and at most this many (oldest dropped first).
const UNCLAIMED_AGE: Duration = Duration::from_secs(60);
const UNCLAIMED_MAX: usize = 4096;

#[derive(Default)]
pub struct Registry {
    /// Every watcher of a pid gets its exit.
    watchers: HashMap<i32, Vec<Sender<Exit>>>,
    /// Exits nobody watched, oldest first, with the monotonic time each was reaped (wall-clock
    /// `Exit::at` may step, which must not make an exit look older or newer than it is).
    unclaimed: VecDeque<(Exit, Instant)>,
    all: Vec<Sender<Exit>>,
}

impl Registry {
    /// Follow `pid`: an exit already buffered is delivered at once, unless it was reaped before
    /// `since` (then it belongs to an earlier process with the same pid and is dropped).
    pub fn watch(&mut self, pid: i32, tx: Sender<Exit>, since: Option<Instant>) {
        self.watch_at(pid, tx, since, Instant::now());
    }

    fn watch_at(&mut self, pid: i32, tx: Sender<Exit>, since: Option<Instant>, now: Instant) {
        self.prune(now);
        if let Some(since) = since {
            self.unclaimed
                .retain(|(e, reaped)| e.pid != pid || *reaped >= since);
        }
        if let Some(i) = self.unclaimed.iter().position(|(e, _)| e.pid == pid) {
            if let Some((e, _)) = self.unclaimed.remove(i) {
                // A dropped receiver simply means nobody cares any more.
                let _ = tx.send(e);
                return;
            }
        }
        self.watchers.entry(pid).or_default().push(tx);
    }

    /// Follow a child we just spawned: any buffered exit for this pid belongs to an older process.
    pub fn watch_new_child(&mut self, pid: i32, tx: Sender<Exit>) {
        self.unclaimed.retain(|(e, _)| e.pid != pid);
        self.watchers.entry(pid).or_default().push(tx);
    }

    /// Drop every watcher of `pid`.
    pub fn forget(&mut self, pid: i32) {
        self.watchers.remove(&pid);
    }

    pub fn subscribe_all(&mut self, tx: Sender<Exit>) {
        self.all.push(tx);
    }

    /// Hand one exit, reaped at `reaped`, to each watcher of its pid (or the buffer), then to
    /// every subscriber.
    pub fn deliver(&mut self, exit: Exit, reaped: Instant) {
        match self.watchers.remove(&exit.pid) {
            Some(watchers) => {
                for tx in watchers {
                    let _ = tx.send(exit);
                }
            }
            None => self.buffer(exit, reaped),
        }
        self.all.retain(|tx| tx.send(exit).is_ok());
    }

    fn buffer(&mut self, exit: Exit, reaped: Instant) {
        self.prune(reaped);
        if self.unclaimed.len() >= UNCLAIMED_MAX {
            self.unclaimed.pop_front();
        }
        self.unclaimed.push_back((exit, reaped));
    }

    /// Drop the unclaimed exits older than UNCLAIMED_AGE at `now`.
    fn prune(&mut self, now: Instant) {
        while let Some((_, reaped)) = self.unclaimed.front() {
            if now.saturating_duration_since(*reaped) > UNCLAIMED_AGE {
                self.unclaimed.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::SystemTime;

    fn exit(pid: i32) -> Exit {
        Exit {
            pid,
            status: 0,
            signal: None,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn an_exit_nobody_watched_is_claimed_once_by_a_later_watch() {
        let mut r = Registry::default();
        r.deliver(exit(10), Instant::now());
        let (tx, rx) = channel();
        r.watch(10, tx, None);
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(10));
        let (tx2, rx2) = channel();
        r.watch(10, tx2, None);
        assert!(rx2.try_recv().is_err(), "claimed twice");
    }

    #[test]
    fn a_new_child_never_claims_a_stale_exit_of_a_reused_pid() {
        let mut r = Registry::default();
        r.deliver(exit(11), Instant::now());
        let (tx, rx) = channel();
        r.watch_new_child(11, tx);
        assert!(rx.try_recv().is_err());
        r.deliver(exit(11), Instant::now());
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn every_watcher_of_a_pid_gets_its_exit() {
        let mut r = Registry::default();
        let (tx, rx) = channel();
        r.watch_new_child(12, tx);
        let (tx2, rx2) = channel();
        r.watch(12, tx2, None);
        r.deliver(exit(12), Instant::now());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(12));
        assert_eq!(rx2.try_recv().map(|e| e.pid), Ok(12));
    }

    #[test]
    fn a_buffered_exit_reaped_before_since_belongs_to_an_earlier_process() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        r.deliver(exit(13), t0);
        let (tx, rx) = channel();
        r.watch(13, tx, Some(t0 + Duration::from_millis(1)));
        assert!(
            rx.try_recv().is_err(),
            "an older process's exit was claimed"
        );
        // Dropped, not kept for a later watch without `since` either.
        let (tx2, rx2) = channel();
        r.watch(13, tx2, None);
        assert!(rx2.try_recv().is_err());
        // The watch stays: the new process's own exit arrives.
        r.deliver(exit(13), t0 + Duration::from_millis(2));
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn a_buffered_exit_reaped_since_the_given_time_is_claimed() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        r.deliver(exit(14), t0 + Duration::from_millis(1));
        let (tx, rx) = channel();
        r.watch(14, tx, Some(t0));
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(14));
    }

    #[test]
    fn an_unclaimed_exit_is_kept_a_minute_and_no_longer() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        r.deliver(exit(15), t0);
        r.deliver(exit(16), t0);
        let (tx, rx) = channel();
        r.watch_at(15, tx, None, t0 + UNCLAIMED_AGE);
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(15), "kept a full minute");
        let (tx, rx) = channel();
        r.watch_at(16, tx, None, t0 + UNCLAIMED_AGE + Duration::from_millis(1));
        assert!(rx.try_recv().is_err(), "claimed after a minute");
        // A new exit also pushes out the ones that aged meanwhile.
        r.deliver(exit(17), t0);
        r.deliver(exit(18), t0 + UNCLAIMED_AGE + Duration::from_secs(1));
        assert_eq!(
            r.unclaimed.iter().map(|(e, _)| e.pid).collect::<Vec<_>>(),
            [18]
        );
    }

    #[test]
    fn the_unclaimed_buffer_is_bounded() {
        let mut r = Registry::default();
        let now = Instant::now();
        for pid in 0..(UNCLAIMED_MAX as i32 + 10) {
            r.deliver(exit(pid), now);
        }
        assert_eq!(r.unclaimed.len(), UNCLAIMED_MAX);
        assert_eq!(r.unclaimed.front().map(|(e, _)| e.pid), Some(10));
    }

    #[test]
    fn subscribers_see_every_exit_and_dropped_ones_are_pruned() {
        let mut r = Registry::default();
        let (tx, rx) = channel();
        r.subscribe_all(tx);
        let (tx2, rx2) = channel();
        r.subscribe_all(tx2);
        drop(rx2);
        r.deliver(exit(1), Instant::now());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(1));
        assert_eq!(r.all.len(), 1);
    }
}
