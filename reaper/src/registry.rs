//! Who wants which exit: per-pid watchers, the bounded unclaimed buffer, and all-exit subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

use crate::Exit;

/// Unclaimed exits are kept this long, and at most this many (oldest dropped first).
const UNCLAIMED_AGE: Duration = Duration::from_secs(60);
const UNCLAIMED_MAX: usize = 4096;

#[derive(Default)]
pub struct Registry {
    watchers: HashMap<i32, Sender<Exit>>,
    unclaimed: VecDeque<Exit>,
    all: Vec<Sender<Exit>>,
}

impl Registry {
    /// Follow `pid`: an exit already buffered is delivered at once.
    pub fn watch(&mut self, pid: i32, tx: Sender<Exit>) {
        if let Some(i) = self.unclaimed.iter().position(|e| e.pid == pid) {
            if let Some(e) = self.unclaimed.remove(i) {
                // A dropped receiver simply means nobody cares any more.
                let _ = tx.send(e);
                return;
            }
        }
        self.watchers.insert(pid, tx);
    }

    /// Follow a child we just spawned: any buffered exit for this pid belongs to an older process.
    pub fn watch_new_child(&mut self, pid: i32, tx: Sender<Exit>) {
        self.unclaimed.retain(|e| e.pid != pid);
        self.watchers.insert(pid, tx);
    }

    pub fn forget(&mut self, pid: i32) {
        self.watchers.remove(&pid);
    }

    pub fn subscribe_all(&mut self, tx: Sender<Exit>) {
        self.all.push(tx);
    }

    /// Hand one exit to its watcher (or the buffer), then to every subscriber.
    pub fn deliver(&mut self, exit: Exit) {
        match self.watchers.remove(&exit.pid) {
            Some(tx) => {
                let _ = tx.send(exit);
            }
            None => self.buffer(exit),
        }
        self.all.retain(|tx| tx.send(exit).is_ok());
    }

    fn buffer(&mut self, exit: Exit) {
        let now = SystemTime::now();
        while let Some(front) = self.unclaimed.front() {
            let old = now
                .duration_since(front.at)
                .map(|age| age > UNCLAIMED_AGE)
                .unwrap_or(false);
            if old || self.unclaimed.len() >= UNCLAIMED_MAX {
                self.unclaimed.pop_front();
            } else {
                break;
            }
        }
        self.unclaimed.push_back(exit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

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
        r.deliver(exit(10));
        let (tx, rx) = channel();
        r.watch(10, tx);
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(10));
        let (tx2, rx2) = channel();
        r.watch(10, tx2);
        assert!(rx2.try_recv().is_err(), "claimed twice");
    }

    #[test]
    fn a_new_child_never_claims_a_stale_exit_of_a_reused_pid() {
        let mut r = Registry::default();
        r.deliver(exit(11));
        let (tx, rx) = channel();
        r.watch_new_child(11, tx);
        assert!(rx.try_recv().is_err());
        r.deliver(exit(11));
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn the_unclaimed_buffer_is_bounded() {
        let mut r = Registry::default();
        for pid in 0..(UNCLAIMED_MAX as i32 + 10) {
            r.deliver(exit(pid));
        }
        assert_eq!(r.unclaimed.len(), UNCLAIMED_MAX);
        assert_eq!(r.unclaimed.front().map(|e| e.pid), Some(10));
    }

    #[test]
    fn subscribers_see_every_exit_and_dropped_ones_are_pruned() {
        let mut r = Registry::default();
        let (tx, rx) = channel();
        r.subscribe_all(tx);
        let (tx2, rx2) = channel();
        r.subscribe_all(tx2);
        drop(rx2);
        r.deliver(exit(1));
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(1));
        assert_eq!(r.all.len(), 1);
    }
}
