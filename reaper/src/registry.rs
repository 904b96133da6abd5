//! Who wants which exit: per-pid watchers (channels or callbacks), the bounded unclaimed buffer,
//! and all-exit subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::Exit;

/// Unclaimed exits are kept this long, and at most this many (oldest dropped first).
const UNCLAIMED_AGE: Duration = Duration::from_secs(60);
const UNCLAIMED_MAX: usize = 4096;

/// How a per-pid watcher is told of its exit.
pub enum Deliver {
    /// Sent on the channel (a dropped receiver is ignored).
    Channel(Sender<Exit>),
    /// Called once with the exit, outside the registry's lock (see [`Due`]).
    Call(Box<dyn FnOnce(Exit) + Send>),
}

impl From<Sender<Exit>> for Deliver {
    fn from(tx: Sender<Exit>) -> Deliver {
        Deliver::Channel(tx)
    }
}

/// A callback owed its exit. The registry never calls one itself: whoever holds the registry's
/// lock hands it back, to be run once the lock is released (a callback may use the reaper).
#[must_use = "a callback owed an exit must be run"]
pub struct Due(Box<dyn FnOnce(Exit) + Send>, Exit);

impl Due {
    pub fn run(self) {
        (self.0)(self.1)
    }
}

impl Deliver {
    /// Send at once, or hand back the call owed.
    fn deliver(self, exit: Exit) -> Option<Due> {
        match self {
            // A dropped receiver simply means nobody cares any more.
            Deliver::Channel(tx) => {
                let _ = tx.send(exit);
                None
            }
            Deliver::Call(f) => Some(Due(f, exit)),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    /// Every watcher of a pid gets its exit.
    watchers: HashMap<i32, Vec<Deliver>>,
    /// Exits nobody watched, oldest first, with the monotonic time each was reaped (wall-clock
    /// `Exit::at` may step, which must not make an exit look older or newer than it is).
    unclaimed: VecDeque<(Exit, Instant)>,
    all: Vec<Sender<Exit>>,
}

impl Registry {
    /// Follow `pid`: an exit already buffered is delivered at once, unless it was reaped before
    /// `since` (then it belongs to an earlier process with the same pid and is dropped). A
    /// callback owed that buffered exit is handed back.
    pub fn watch(
        &mut self,
        pid: i32,
        to: impl Into<Deliver>,
        since: Option<Instant>,
    ) -> Option<Due> {
        self.watch_at(pid, to.into(), since, Instant::now())
    }

    fn watch_at(
        &mut self,
        pid: i32,
        to: Deliver,
        since: Option<Instant>,
        now: Instant,
    ) -> Option<Due> {
        self.prune(now);
        if let Some(since) = since {
            self.unclaimed
                .retain(|(e, reaped)| e.pid != pid || *reaped >= since);
        }
        if let Some(i) = self.unclaimed.iter().position(|(e, _)| e.pid == pid) {
            if let Some((e, _)) = self.unclaimed.remove(i) {
                return to.deliver(e);
            }
        }
        self.watchers.entry(pid).or_default().push(to);
        None
    }

    /// Follow a child we just spawned: any buffered exit for this pid belongs to an older process.
    pub fn watch_new_child(&mut self, pid: i32, tx: Sender<Exit>) {
        self.unclaimed.retain(|(e, _)| e.pid != pid);
        self.watchers
            .entry(pid)
            .or_default()
            .push(Deliver::Channel(tx));
    }

    /// Drop every watcher of `pid`.
    pub fn forget(&mut self, pid: i32) {
        self.watchers.remove(&pid);
    }

    pub fn subscribe_all(&mut self, tx: Sender<Exit>) {
        self.all.push(tx);
    }

    /// Hand one exit, reaped at `reaped`, to each watcher of its pid (or the buffer), then to
    /// every subscriber. The callbacks owed it are appended to `due`.
    pub fn deliver(&mut self, exit: Exit, reaped: Instant, due: &mut Vec<Due>) {
        match self.watchers.remove(&exit.pid) {
            Some(watchers) => due.extend(watchers.into_iter().filter_map(|w| w.deliver(exit))),
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

    /// Deliver with no callback watchers (the channel tests).
    fn deliver(r: &mut Registry, exit: Exit, reaped: Instant) {
        let mut due = Vec::new();
        r.deliver(exit, reaped, &mut due);
        assert!(due.is_empty());
    }

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
        deliver(&mut r, exit(10), Instant::now());
        let (tx, rx) = channel();
        assert!(r.watch(10, tx, None).is_none());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(10));
        let (tx2, rx2) = channel();
        assert!(r.watch(10, tx2, None).is_none());
        assert!(rx2.try_recv().is_err(), "claimed twice");
    }

    #[test]
    fn a_new_child_never_claims_a_stale_exit_of_a_reused_pid() {
        let mut r = Registry::default();
        deliver(&mut r, exit(11), Instant::now());
        let (tx, rx) = channel();
        r.watch_new_child(11, tx);
        assert!(rx.try_recv().is_err());
        deliver(&mut r, exit(11), Instant::now());
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn every_watcher_of_a_pid_gets_its_exit() {
        let mut r = Registry::default();
        let (tx, rx) = channel();
        r.watch_new_child(12, tx);
        let (tx2, rx2) = channel();
        assert!(r.watch(12, tx2, None).is_none());
        deliver(&mut r, exit(12), Instant::now());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(12));
        assert_eq!(rx2.try_recv().map(|e| e.pid), Ok(12));
    }

    #[test]
    fn a_buffered_exit_reaped_before_since_belongs_to_an_earlier_process() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        deliver(&mut r, exit(13), t0);
        let (tx, rx) = channel();
        assert!(r
            .watch(13, tx, Some(t0 + Duration::from_millis(1)))
            .is_none());
        assert!(
            rx.try_recv().is_err(),
            "an older process's exit was claimed"
        );
        // Dropped, not kept for a later watch without `since` either.
        let (tx2, rx2) = channel();
        assert!(r.watch(13, tx2, None).is_none());
        assert!(rx2.try_recv().is_err());
        // The watch stays: the new process's own exit arrives.
        deliver(&mut r, exit(13), t0 + Duration::from_millis(2));
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn a_buffered_exit_reaped_since_the_given_time_is_claimed() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        deliver(&mut r, exit(14), t0 + Duration::from_millis(1));
        let (tx, rx) = channel();
        assert!(r.watch(14, tx, Some(t0)).is_none());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(14));
    }

    #[test]
    fn an_unclaimed_exit_is_kept_a_minute_and_no_longer() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        deliver(&mut r, exit(15), t0);
        deliver(&mut r, exit(16), t0);
        let (tx, rx) = channel();
        assert!(r
            .watch_at(15, tx.into(), None, t0 + UNCLAIMED_AGE)
            .is_none());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(15), "kept a full minute");
        let (tx, rx) = channel();
        assert!(r
            .watch_at(
                16,
                tx.into(),
                None,
                t0 + UNCLAIMED_AGE + Duration::from_millis(1)
            )
            .is_none());
        assert!(rx.try_recv().is_err(), "claimed after a minute");
        // A new exit also pushes out the ones that aged meanwhile.
        deliver(&mut r, exit(17), t0);
        deliver(
            &mut r,
            exit(18),
            t0 + UNCLAIMED_AGE + Duration::from_secs(1),
        );
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
            deliver(&mut r, exit(pid), now);
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
        deliver(&mut r, exit(1), Instant::now());
        assert_eq!(rx.try_recv().map(|e| e.pid), Ok(1));
        assert_eq!(r.all.len(), 1);
    }

    /// A watcher that records the exits it is called with.
    fn call(seen: &std::sync::Arc<std::sync::Mutex<Vec<i32>>>) -> Deliver {
        let seen = std::sync::Arc::clone(seen);
        Deliver::Call(Box::new(move |e: Exit| {
            seen.lock().unwrap_or_else(|p| p.into_inner()).push(e.pid)
        }))
    }

    #[test]
    fn a_callback_watcher_is_handed_back_due_never_called_under_the_registry() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut r = Registry::default();
        assert!(r.watch(20, call(&seen), None).is_none());
        let (tx, rx) = channel();
        assert!(r.watch(20, tx, None).is_none());
        let mut due = Vec::new();
        r.deliver(exit(20), Instant::now(), &mut due);
        assert_eq!(
            rx.try_recv().map(|e| e.pid),
            Ok(20),
            "the channel is sent at once"
        );
        assert!(seen.lock().unwrap().is_empty(), "called under the registry");
        assert_eq!(due.len(), 1);
        due.into_iter().for_each(Due::run);
        assert_eq!(*seen.lock().unwrap(), [20]);
        // Delivered once: the watch is gone.
        let mut due = Vec::new();
        r.deliver(exit(20), Instant::now(), &mut due);
        assert!(due.is_empty());
    }

    #[test]
    fn a_callback_claims_a_buffered_exit_unless_it_is_older_than_since() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut r = Registry::default();
        let t0 = Instant::now();
        deliver(&mut r, exit(21), t0);
        deliver(&mut r, exit(22), t0);
        let due = r.watch(21, call(&seen), Some(t0));
        assert!(seen.lock().unwrap().is_empty(), "called under the registry");
        due.into_iter().for_each(Due::run);
        assert_eq!(*seen.lock().unwrap(), [21]);
        assert!(r
            .watch(22, call(&seen), Some(t0 + Duration::from_millis(1)))
            .is_none());
        let mut due = Vec::new();
        r.deliver(exit(22), t0 + Duration::from_millis(2), &mut due);
        due.into_iter().for_each(Due::run);
        assert_eq!(*seen.lock().unwrap(), [21, 22]);
    }
}
