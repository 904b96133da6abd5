//! OomWatcher: one epoll over every container's OOM notifier, drained by its owner's loop.
//!
//! A v1 container is watched through an eventfd registered on memory.oom_control, a v2 one through
//! inotify on memory.events (see `v1` and `v2`). Watches are added and removed at any time from
//! any thread; the fds are created by the caller (so their errors are the caller's) and handed
//! to the watcher's epoll. The watcher owns no thread: its epoll fd ([`OomWatcher::fd`]) is
//! readable while an OOM notifier has news, and the owner (the shim's events thread, which nests
//! that fd in its own epoll) then calls [`OomWatcher::take_ready`] for the ids to report. A watch
//! ends by itself when its cgroup goes away.

mod v1;
mod v2;

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::{Cgroup, CgroupError};
use v1::OomEventFd;
use v2::MemoryEventsWatch;

/// What one wake-up of a watch's fd meant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Report one OOM for the watch's container.
    pub oom: bool,
    /// The cgroup is gone or empty: drop the watch.
    pub ended: bool,
}

enum Source {
    V1(OomEventFd),
    V2(MemoryEventsWatch),
}

impl Source {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Source::V1(s) => s.fd(),
            Source::V2(s) => s.fd(),
        }
    }

    fn on_ready(&mut self) -> Outcome {
        match self {
            Source::V1(s) => s.on_ready(),
            Source::V2(s) => s.on_ready(),
        }
    }
}

struct Watch {
    id: String,
    source: Source,
}

#[derive(Default)]
struct State {
    next_token: u64,
    watches: HashMap<u64, Watch>,
    tokens: HashMap<String, u64>,
}

impl State {
    fn drop_watch(&mut self, token: u64, epoll: &Epoll) -> Option<Watch> {
        let watch = self.watches.remove(&token)?;
        if self.tokens.get(&watch.id) == Some(&token) {
            self.tokens.remove(&watch.id);
        }
        let _ = epoll.delete(watch.source.fd());
        Some(watch)
    }
}

/// Every container's OOM watch. Dropping it closes every watch's fds.
pub struct OomWatcher {
    epoll: Epoll,
    state: Mutex<State>,
}

impl OomWatcher {
    /// A watcher with no watch yet.
    pub fn new() -> Result<OomWatcher, CgroupError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| CgroupError::os("epoll_create1")(e.into()))?;
        Ok(OomWatcher {
            epoll,
            state: Mutex::new(State::default()),
        })
    }

    /// The state; nothing panics under this lock, so a poisoned lock still holds consistent data.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch `cgroup` and report its OOMs as `id`'s. Replaces an earlier watch of `id`.
    /// A v1 cgroup needs its memory controller (`NoController` otherwise).
    pub fn add(&self, id: &str, cgroup: &Cgroup) -> Result<(), CgroupError> {
        let source = match cgroup {
            Cgroup::V1(cg) => {
                let dir = cg
                    .dir("memory")
                    .ok_or(CgroupError::NoController("memory"))?;
                Source::V1(OomEventFd::register(dir)?)
            }
            Cgroup::V2(cg) => Source::V2(MemoryEventsWatch::register(cg.dir())?),
        };
        let mut state = self.lock();
        if let Some(old) = state.tokens.get(id).copied() {
            state.drop_watch(old, &self.epoll);
        }
        let token = state.next_token;
        self.epoll
            .add(source.fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| CgroupError::os("epoll_ctl")(e.into()))?;
        state.next_token += 1;
        state.tokens.insert(id.to_string(), token);
        state.watches.insert(
            token,
            Watch {
                id: id.to_string(),
                source,
            },
        );
        Ok(())
    }

    /// Stop watching `id`; false when it was not watched (never added, or its cgroup went away).
    /// A report already taken from the kernel may still be returned by a `take_ready` under way.
    pub fn remove(&self, id: &str) -> bool {
        let mut state = self.lock();
        match state.tokens.get(id).copied() {
            Some(token) => state.drop_watch(token, &self.epoll).is_some(),
            None => false,
        }
    }

    /// Whether `id` is watched.
    pub fn is_watching(&self, id: &str) -> bool {
        self.lock().tokens.contains_key(id)
    }

    /// The watcher's epoll fd, readable (level-triggered) while some watch has news: poll it, or
    /// nest it in another epoll, and call [`OomWatcher::take_ready`] when it is.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    /// Never blocks: handle every watch with news, and return the id of each OOM to report, one
    /// per OOM (an id may come more than once). Watches whose cgroup went away end here. An
    /// `Err` is the epoll itself failing.
    pub fn take_ready(&self) -> Result<Vec<String>, CgroupError> {
        let mut events = [EpollEvent::empty(); 64];
        let n = loop {
            match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(CgroupError::os("epoll_wait")(e.into())),
            }
        };
        let mut oom = Vec::new();
        let mut state = self.lock();
        for event in &events[..n] {
            let token = event.data();
            let Some(watch) = state.watches.get_mut(&token) else {
                continue;
            };
            let outcome = watch.source.on_ready();
            if outcome.oom {
                oom.push(watch.id.clone());
            }
            if outcome.ended {
                state.drop_watch(token, &self.epoll);
            }
        }
        Ok(oom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;
    use crate::cgroup::Mode;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{self, Receiver};
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(5);
    /// How long "no report came" is waited for.
    const QUIET: Duration = Duration::from_millis(300);

    fn events(oom_kill: u64, high: u64) -> String {
        format!("low 0\nhigh {high}\nmax 0\noom {oom_kill}\noom_kill {oom_kill}\n")
    }

    /// A unified fake host with process `pid` in `/<name>`, populated.
    fn v2_cgroup(dir: &FakeDir, pid: i32, name: &str) -> Cgroup {
        let host = dir.host(Mode::Unified);
        dir.write(&format!("proc/{pid}/cgroup"), &format!("0::/{name}\n"));
        dir.write(
            &format!("sys/fs/cgroup/{name}/memory.events"),
            &events(0, 0),
        );
        dir.write(
            &format!("sys/fs/cgroup/{name}/cgroup.events"),
            "populated 1\n",
        );
        match Cgroup::for_pid(&host, pid) {
            Ok(cg) => cg,
            Err(e) => panic!("for_pid: {e}"),
        }
    }

    /// Stands in for the events thread in these tests: waits for the watcher's fd, drains it,
    /// and sends each report on. Stops when dropped.
    struct Driver {
        stop: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Whether `fd` becomes readable within `ms` milliseconds.
    fn readable(fd: BorrowedFd<'_>, ms: u16) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
    }

    fn watcher() -> (Arc<OomWatcher>, Driver, Receiver<String>) {
        let Ok(watcher) = OomWatcher::new() else {
            panic!("new");
        };
        let watcher = Arc::new(watcher);
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (w, stopped) = (Arc::clone(&watcher), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                if !readable(w.fd(), 20) {
                    continue;
                }
                let Ok(ids) = w.take_ready() else {
                    panic!("take_ready");
                };
                for id in ids {
                    let _ = tx.send(id);
                }
            }
        });
        let driver = Driver {
            stop,
            thread: Some(thread),
        };
        (watcher, driver, rx)
    }

    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn one_report_per_increase_of_oom_kill_and_none_for_other_changes() {
        let dir = FakeDir::new();
        let (watcher, _driver, rx) = watcher();
        let a = v2_cgroup(&dir, 1, "a");
        let b = v2_cgroup(&dir, 2, "b");
        assert!(watcher.add("ctr-a", &a).is_ok());
        assert!(watcher.add("ctr-b", &b).is_ok());

        dir.write("sys/fs/cgroup/a/memory.events", &events(0, 1));
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 1));
        assert_eq!(rx.recv_timeout(WAIT).ok().as_deref(), Some("ctr-a"));
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 2));
        dir.write("sys/fs/cgroup/b/memory.events", &events(0, 9));
        assert!(rx.recv_timeout(QUIET).is_err(), "high changes are no OOM");

        dir.write("sys/fs/cgroup/b/memory.events", &events(1, 9));
        assert_eq!(rx.recv_timeout(WAIT).ok().as_deref(), Some("ctr-b"));
        dir.write("sys/fs/cgroup/a/memory.events", &events(2, 2));
        assert_eq!(rx.recv_timeout(WAIT).ok().as_deref(), Some("ctr-a"));
        assert!(
            rx.recv_timeout(QUIET).is_err(),
            "exactly one report per increase"
        );
    }

    #[test]
    fn removed_and_emptied_cgroups_are_no_longer_watched() {
        let dir = FakeDir::new();
        let (watcher, _driver, rx) = watcher();
        let a = v2_cgroup(&dir, 1, "a");
        let b = v2_cgroup(&dir, 2, "b");
        assert!(watcher.add("ctr-a", &a).is_ok());
        assert!(watcher.add("ctr-b", &b).is_ok());

        assert!(watcher.remove("ctr-a"));
        assert!(!watcher.remove("ctr-a"));
        assert!(!watcher.is_watching("ctr-a"));
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 0));

        dir.write("sys/fs/cgroup/b/cgroup.events", "populated 0\n");
        eventually("the emptied cgroup's watch to end", || {
            !watcher.is_watching("ctr-b")
        });
        dir.write("sys/fs/cgroup/b/memory.events", &events(1, 0));
        assert!(rx.recv_timeout(QUIET).is_err());

        // Re-adding an id watches afresh.
        dir.write("sys/fs/cgroup/b/cgroup.events", "populated 1\n");
        assert!(watcher.add("ctr-b", &b).is_ok());
        dir.write("sys/fs/cgroup/b/memory.events", &events(2, 0));
        assert_eq!(rx.recv_timeout(WAIT).ok().as_deref(), Some("ctr-b"));
    }

    #[test]
    fn adding_the_same_id_twice_keeps_one_watch() {
        let dir = FakeDir::new();
        let (watcher, _driver, rx) = watcher();
        let a = v2_cgroup(&dir, 1, "a");
        assert!(watcher.add("ctr", &a).is_ok());
        assert!(watcher.add("ctr", &a).is_ok());
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 0));
        assert_eq!(rx.recv_timeout(WAIT).ok().as_deref(), Some("ctr"));
        assert!(rx.recv_timeout(QUIET).is_err());
    }

    #[test]
    fn a_v1_cgroup_without_memory_cannot_be_watched() {
        let dir = FakeDir::new();
        let host = dir.host(Mode::Legacy);
        let root = host.cgroup_root.display().to_string();
        dir.write(
            "proc/self/mountinfo",
            &format!("36 31 0:33 / {root}/pids rw - cgroup cgroup rw,pids\n"),
        );
        dir.write("proc/3/cgroup", "6:pids:/c\n4:memory:/c\n");
        dir.mkdir("sys/fs/cgroup/pids/c");
        let (watcher, _driver, _rx) = watcher();
        let cg = Cgroup::for_pid(&host, 3);
        let err = cg.and_then(|cg| watcher.add("c", &cg)).err();
        assert!(matches!(err, Some(CgroupError::NoController("memory"))));
    }

    #[test]
    fn the_handle_and_cgroups_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<OomWatcher>();
        shareable::<Cgroup>();
    }

    #[test]
    fn the_fd_is_readable_only_with_news_and_take_ready_never_blocks() {
        let dir = FakeDir::new();
        let Ok(watcher) = OomWatcher::new() else {
            panic!("new");
        };
        let started = Instant::now();
        assert!(matches!(watcher.take_ready(), Ok(ids) if ids.is_empty()));
        assert!(started.elapsed() < QUIET, "take_ready blocked");
        let a = v2_cgroup(&dir, 1, "a");
        assert!(watcher.add("ctr-a", &a).is_ok());
        assert!(!readable(watcher.fd(), 100), "readable with no news");
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 0));
        assert!(
            readable(watcher.fd(), 5000),
            "the OOM never made the fd readable"
        );
        assert!(matches!(watcher.take_ready(), Ok(ids) if ids == ["ctr-a"]));
        assert!(!readable(watcher.fd(), 100), "still readable once drained");
        // The owner's own epoll can hold it: an epoll fd is pollable like any other.
        dir.write("sys/fs/cgroup/a/memory.events", &events(2, 0));
        let Ok(outer) = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) else {
            panic!("epoll_create1");
        };
        assert!(outer
            .add(watcher.fd(), EpollEvent::new(EpollFlags::EPOLLIN, 7))
            .is_ok());
        let mut got = [EpollEvent::empty(); 1];
        assert!(matches!(outer.wait(&mut got, 5000u16), Ok(1)));
        assert_eq!(got[0].data(), 7);
        assert!(matches!(watcher.take_ready(), Ok(ids) if ids == ["ctr-a"]));
    }
}
