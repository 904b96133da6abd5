//! The set-once exit of one process: written once, waited on by any number of threads or watches.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Pending,
    Exited {
        status: u32,
        at: SystemTime,
    },
    /// No exit will ever come (an exec whose start failed, or that was deleted unstarted):
    /// waiters return status 0 and no time, as Go's Wait does after a failed exec start.
    Released,
}

/// Told once, without a thread blocked for it, when the exit is recorded or released.
pub trait ExitWatch: Send {
    /// False once nobody waits for the answer any more (its caller hung up): such a watch is
    /// dropped at the next registration instead of being kept until the process exits.
    fn wanted(&self) -> bool;
    /// The exit, as `ExitCell::wait` returns it. Runs on the thread recording the exit: be quick.
    fn exited(self: Box<Self>, status: u32, at: Option<SystemTime>);
}

struct State {
    cell: Cell,
    watches: Vec<Box<dyn ExitWatch>>,
}

pub struct ExitCell {
    state: Mutex<State>,
    cv: Condvar,
}

impl Default for ExitCell {
    fn default() -> Self {
        ExitCell {
            state: Mutex::new(State {
                cell: Cell::Pending,
                watches: Vec::new(),
            }),
            cv: Condvar::new(),
        }
    }
}

impl Cell {
    /// What a waiter gets: (status, time), or (0, None) without an exit.
    fn outcome(self) -> (u32, Option<SystemTime>) {
        match self {
            Cell::Exited { status, at } => (status, Some(at)),
            _ => (0, None),
        }
    }
}

impl ExitCell {
    /// Record the exit. Only the first call counts; returns whether this one did.
    pub fn set(&self, status: u32, at: SystemTime) -> bool {
        self.settle(Cell::Exited { status, at })
    }

    /// Let waiters go without an exit.
    pub fn release(&self) {
        self.settle(Cell::Released);
    }

    /// Move from pending to `to`, wake the waiters, then tell the watches (outside the lock).
    fn settle(&self, to: Cell) -> bool {
        let watches = {
            let mut s = self.lock();
            if s.cell != Cell::Pending {
                return false;
            }
            s.cell = to;
            self.cv.notify_all();
            std::mem::take(&mut s.watches)
        };
        let (status, at) = to.outcome();
        for w in watches {
            w.exited(status, at);
        }
        true
    }

    /// Tell `watch` of the exit: at once if it already happened, else when it does.
    pub fn watch(&self, watch: Box<dyn ExitWatch>) {
        let mut s = self.lock();
        if s.cell == Cell::Pending {
            s.watches.retain(|w| w.wanted());
            s.watches.push(watch);
            return;
        }
        let (status, at) = s.cell.outcome();
        drop(s);
        watch.exited(status, at);
    }

    /// The exit status and time, if the process exited.
    pub fn get(&self) -> Option<(u32, SystemTime)> {
        match self.lock().cell {
            Cell::Exited { status, at } => Some((status, at)),
            _ => None,
        }
    }

    /// Status and time as State, Wait and Delete report them so far: (0, None) before the exit.
    pub fn so_far(&self) -> (u32, Option<SystemTime>) {
        self.get()
            .map_or((0, None), |(status, at)| (status, Some(at)))
    }

    /// Block until the exit is recorded or released.
    pub fn wait(&self) -> (u32, Option<SystemTime>) {
        let s = self
            .cv
            .wait_while(self.lock(), |s| s.cell == Cell::Pending)
            .unwrap_or_else(|p| p.into_inner());
        s.cell.outcome()
    }

    /// Like wait, bounded. None if still pending.
    pub fn wait_timeout(&self, limit: std::time::Duration) -> Option<(u32, Option<SystemTime>)> {
        let (s, _) = self
            .cv
            .wait_timeout_while(self.lock(), limit, |s| s.cell == Cell::Pending)
            .unwrap_or_else(|p| p.into_inner());
        match s.cell {
            Cell::Pending => None,
            done => Some(done.outcome()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn many_waiters_before_and_after_the_exit_all_see_it() {
        let cell = Arc::new(ExitCell::default());
        let early: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&cell);
                std::thread::spawn(move || c.wait())
            })
            .collect();
        let at = SystemTime::now();
        assert!(cell.set(3, at));
        assert!(!cell.set(4, at), "second set ignored");
        for w in early {
            assert_eq!(w.join().unwrap(), (3, Some(at)));
        }
        assert_eq!(cell.wait(), (3, Some(at)));
        assert_eq!(cell.get(), Some((3, at)));
    }

    /// A watch that reports into a channel, and says it is unwanted once `gone` is set.
    struct Probe {
        tx: std::sync::mpsc::Sender<(u32, Option<SystemTime>)>,
        gone: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ExitWatch for Probe {
        fn wanted(&self) -> bool {
            !self.gone.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn exited(self: Box<Self>, status: u32, at: Option<SystemTime>) {
            let _ = self.tx.send((status, at));
        }
    }

    type Heard = std::sync::mpsc::Receiver<(u32, Option<SystemTime>)>;

    fn probe() -> (Box<Probe>, Heard, Arc<std::sync::atomic::AtomicBool>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        (
            Box::new(Probe {
                tx,
                gone: Arc::clone(&gone),
            }),
            rx,
            gone,
        )
    }

    #[test]
    fn watches_hear_of_the_exit_once_whether_registered_before_or_after_it() {
        let cell = ExitCell::default();
        let (early, early_rx, _) = probe();
        cell.watch(early);
        assert!(early_rx.try_recv().is_err(), "no exit yet");
        let at = SystemTime::now();
        cell.set(7, at);
        assert_eq!(early_rx.try_recv().unwrap(), (7, Some(at)));
        let (late, late_rx, _) = probe();
        cell.watch(late);
        assert_eq!(late_rx.try_recv().unwrap(), (7, Some(at)));
        cell.set(8, at);
        assert!(early_rx.try_recv().is_err(), "told once");
    }

    #[test]
    fn unwanted_watches_are_dropped_before_the_exit() {
        let cell = ExitCell::default();
        let (abandoned, abandoned_rx, gone) = probe();
        cell.watch(abandoned);
        gone.store(true, std::sync::atomic::Ordering::SeqCst);
        let (kept, kept_rx, _) = probe();
        cell.watch(kept);
        assert_eq!(
            cell.lock().watches.len(),
            1,
            "the abandoned watch was pruned"
        );
        cell.release();
        assert_eq!(kept_rx.try_recv().unwrap(), (0, None));
        assert!(abandoned_rx.try_recv().is_err());
    }

    #[test]
    fn a_released_cell_lets_waiters_go_with_status_zero() {
        let cell = ExitCell::default();
        assert_eq!(cell.wait_timeout(Duration::from_millis(1)), None);
        cell.release();
        assert_eq!(cell.wait(), (0, None));
        assert!(!cell.set(1, SystemTime::now()));
    }
}
