//! The set-once exit of one process: written once, waited on by any number of threads.

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

pub struct ExitCell {
    cell: Mutex<Cell>,
    cv: Condvar,
}

impl Default for ExitCell {
    fn default() -> Self {
        ExitCell {
            cell: Mutex::new(Cell::Pending),
            cv: Condvar::new(),
        }
    }
}

impl ExitCell {
    /// Record the exit. Only the first call counts; returns whether this one did.
    pub fn set(&self, status: u32, at: SystemTime) -> bool {
        let mut c = self.lock();
        if *c != Cell::Pending {
            return false;
        }
        *c = Cell::Exited { status, at };
        self.cv.notify_all();
        true
    }

    /// Let waiters go without an exit.
    pub fn release(&self) {
        let mut c = self.lock();
        if *c == Cell::Pending {
            *c = Cell::Released;
            self.cv.notify_all();
        }
    }

    /// The exit status and time, if the process exited.
    pub fn get(&self) -> Option<(u32, SystemTime)> {
        match *self.lock() {
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
        let c = self
            .cv
            .wait_while(self.lock(), |c| *c == Cell::Pending)
            .unwrap_or_else(|p| p.into_inner());
        match *c {
            Cell::Exited { status, at } => (status, Some(at)),
            _ => (0, None),
        }
    }

    /// Like wait, bounded. None if still pending.
    pub fn wait_timeout(&self, limit: std::time::Duration) -> Option<(u32, Option<SystemTime>)> {
        let (c, _) = self
            .cv
            .wait_timeout_while(self.lock(), limit, |c| *c == Cell::Pending)
            .unwrap_or_else(|p| p.into_inner());
        match *c {
            Cell::Pending => None,
            Cell::Exited { status, at } => Some((status, Some(at))),
            Cell::Released => Some((0, None)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cell> {
        self.cell.lock().unwrap_or_else(|p| p.into_inner())
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

    #[test]
    fn a_released_cell_lets_waiters_go_with_status_zero() {
        let cell = ExitCell::default();
        assert_eq!(cell.wait_timeout(Duration::from_millis(1)), None);
        cell.release();
        assert_eq!(cell.wait(), (0, None));
        assert!(!cell.set(1, SystemTime::now()));
    }
}
