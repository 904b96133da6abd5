//! The handler pool: a job starts at once on an idle worker or a new one, up to `MAX_WORKERS`;
//! beyond that jobs queue in order. Idle workers retire.
//!
//! Tens of workers let State and Kill pass slow runc calls, and a storm of requests (thousands of
//! Waits from connections closed at once) costs a queue, not a thread each. An idle shim keeps no
//! worker: a worker idle for `RETIRE_AFTER` exits. Workers are detached: each owns nothing but
//! its job, and ends by itself (or with the process).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long a worker waits for another job before it exits.
const RETIRE_AFTER: Duration = Duration::from_secs(2);
/// Workers at most; more jobs wait for one of them.
pub const MAX_WORKERS: usize = 32;

pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers alive (running a job or idle), at most MAX_WORKERS.
    workers: usize,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
            }),
        }
    }

    /// Run `job`: on an idle worker if one is free, else on a new one while there are fewer than
    /// MAX_WORKERS; else it waits for the first worker free.
    pub fn submit(&self, job: Job) {
        let mut st = self.shared.lock();
        st.jobs.push_back(job);
        if st.jobs.len() <= st.idle {
            self.shared.work.notify_one();
            return;
        }
        if st.workers >= MAX_WORKERS {
            return;
        }
        st.workers += 1;
        drop(st);
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name("rpc".into())
            .spawn(move || shared.work());
        if let Err(e) = spawned {
            // Out of threads: the job waits for the next worker that frees up.
            self.shared.lock().workers -= 1;
            log::error!(error:% = e; "cannot start a handler thread");
        }
    }

    /// Workers alive now.
    #[cfg(test)]
    pub fn workers(&self) -> usize {
        self.shared.lock().workers
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker: run jobs until none came for `RETIRE_AFTER`.
    fn work(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            st.idle += 1;
            let (guard, waited) = self
                .work
                .wait_timeout_while(st, RETIRE_AFTER, |s| s.jobs.is_empty())
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.idle -= 1;
            if waited.timed_out() && st.jobs.is_empty() {
                st.workers -= 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_blocked_job_does_not_hold_up_the_next_one() {
        let pool = Pool::new();
        let (release_tx, release_rx) = channel::<()>();
        let (done_tx, done_rx) = channel();
        let first_done = done_tx.clone();
        pool.submit(Box::new(move || {
            let _ = release_rx.recv();
            let _ = first_done.send("first");
        }));
        pool.submit(Box::new(move || {
            let _ = done_tx.send("second");
        }));
        assert_eq!(done_rx.recv().unwrap(), "second");
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), "first");
    }

    #[test]
    fn a_storm_of_jobs_gets_max_workers_threads_and_the_rest_queue() {
        let pool = Pool::new();
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (done_tx, done_rx) = channel();
        for i in 0..1000 {
            let release = Arc::clone(&release_rx);
            let done = done_tx.clone();
            pool.submit(Box::new(move || {
                // Every job blocks until released: none can hand its worker to the next.
                let _ = release.lock().unwrap().recv();
                let _ = done.send(i);
            }));
        }
        assert_eq!(pool.workers(), MAX_WORKERS);
        for _ in 0..1000 {
            release_tx.send(()).unwrap();
        }
        drop(done_tx);
        let mut got: Vec<i32> = done_rx.iter().take(1000).collect();
        got.sort_unstable();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert!(pool.workers() <= MAX_WORKERS);
    }

    #[test]
    fn many_jobs_all_run_once() {
        let pool = Pool::new();
        let (tx, rx) = channel();
        for i in 0..200 {
            let tx = tx.clone();
            pool.submit(Box::new(move || {
                let _ = tx.send(i);
            }));
        }
        drop(tx);
        let mut got: Vec<i32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }
}
