//! OomWatcher: one thread, one epoll over every container's OOM notifier, a callback per OOM.
//!
//! A v1 container is watched through an eventfd registered on memory.oom_control, a v2 one through
//! inotify on memory.events (see `v1` and `v2`). Watches are added and removed at any time from
//! any thread; the fds are created by the caller (so their errors are the caller's) and handed
//! to the thread's epoll. The callback runs on the watcher thread, outside every lock: it may
//! add or remove watches, and it should be short (it delays the next OOM report). A watch ends
//! by itself when its cgroup goes away.

mod v1;
mod v2;

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Cgroup, CgroupError};
use v1::OomEventFd;
use v2::MemoryEventsWatch;

/// epoll data of the wake-up eventfd (watch tokens start at 1).
const WAKE: u64 = 0;

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
    /// False once the thread has ended (returned or panicked): nothing more is watched.
    running: bool,
    /// Set by the handle's drop: the thread returns at its next wake-up.
    stopping: bool,
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

struct Shared {
    epoll: Epoll,
    wake: EventFd,
    state: Mutex<State>,
}

impl Shared {
    /// The state; a panic elsewhere never happens under this lock (the callback runs outside
    /// it), so a poisoned lock still holds consistent data.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle to the OOM thread. Dropping it stops the thread (and closes every watch's fds).
pub struct OomWatcher {
    shared: Arc<Shared>,
}

/// How the watcher thread ended: `Ok` after its handle was dropped, `Err` when epoll failed;
/// a panicking callback ends it too (the join then gives the panic).
pub type OomThread = JoinHandle<Result<(), CgroupError>>;

impl OomWatcher {
    /// Start the thread; `on_oom(container_id)` is called once per OOM reported.
    pub fn start<F>(on_oom: F) -> Result<(OomWatcher, OomThread), CgroupError>
    where
        F: Fn(&str) + Send + 'static,
    {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| CgroupError::os("epoll_create1")(e.into()))?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| CgroupError::os("eventfd")(e.into()))?;
        epoll
            .add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
            .map_err(|e| CgroupError::os("epoll_ctl")(e.into()))?;
        let shared = Arc::new(Shared {
            epoll,
            wake,
            state: Mutex::new(State {
                running: true,
                next_token: WAKE + 1,
                ..State::default()
            }),
        });
        let thread_shared = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("oom-watcher".into())
            .spawn(move || run(&thread_shared, on_oom))
            .map_err(CgroupError::os("spawn the OOM watcher thread"))?;
        Ok((OomWatcher { shared }, handle))
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
        let mut state = self.shared.lock();
        if !state.running || state.stopping {
            return Err(CgroupError::WatcherStopped);
        }
        if let Some(old) = state.tokens.get(id).copied() {
            state.drop_watch(old, &self.shared.epoll);
        }
        let token = state.next_token;
        self.shared
            .epoll
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
    /// A report already taken from the kernel may still reach the callback once.
    pub fn remove(&self, id: &str) -> bool {
        let mut state = self.shared.lock();
        match state.tokens.get(id).copied() {
            Some(token) => state.drop_watch(token, &self.shared.epoll).is_some(),
            None => false,
        }
    }

    /// Whether `id` is watched.
    pub fn is_watching(&self, id: &str) -> bool {
        self.shared.lock().tokens.contains_key(id)
    }

    /// False once the thread has ended: OOMs are no longer reported and `add` fails.
    pub fn is_running(&self) -> bool {
        self.shared.lock().running
    }
}

impl Drop for OomWatcher {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        let _ = self.shared.wake.write(1);
    }
}

/// Marks the thread ended and closes every watch, however the thread ends.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.running = false;
        let tokens: Vec<u64> = state.watches.keys().copied().collect();
        for token in tokens {
            state.drop_watch(token, &self.0.epoll);
        }
    }
}

fn run<F: Fn(&str)>(shared: &Shared, on_oom: F) -> Result<(), CgroupError> {
    let _ended = Ended(shared);
    let mut events = vec![EpollEvent::empty(); 64];
    loop {
        let n = match shared.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(CgroupError::os("epoll_wait")(e.into())),
        };
        let mut oom = Vec::new();
        {
            let mut state = shared.lock();
            if state.stopping {
                return Ok(());
            }
            for event in &events[..n] {
                let token = event.data();
                if token == WAKE {
                    let _ = shared.wake.read();
                    continue;
                }
                let Some(watch) = state.watches.get_mut(&token) else {
                    continue;
                };
                let outcome = watch.source.on_ready();
                if outcome.oom {
                    oom.push(watch.id.clone());
                }
                if outcome.ended {
                    state.drop_watch(token, &shared.epoll);
                }
            }
        }
        for id in &oom {
            on_oom(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;
    use crate::cgroup::Mode;
    use std::sync::mpsc::{self, Receiver};
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

    fn watcher() -> (OomWatcher, OomThread, Receiver<String>) {
        let (tx, rx) = mpsc::channel();
        let started = OomWatcher::start(move |id| {
            let _ = tx.send(id.to_string());
        });
        let Ok((watcher, thread)) = started else {
            panic!("start");
        };
        (watcher, thread, rx)
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
        let (watcher, _thread, rx) = watcher();
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
        let (watcher, _thread, rx) = watcher();
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
        let (watcher, _thread, rx) = watcher();
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
        let (watcher, _thread, _rx) = watcher();
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
    fn dropping_the_handle_ends_the_thread_cleanly() {
        let (watcher, thread, _rx) = watcher();
        drop(watcher);
        assert!(matches!(thread.join(), Ok(Ok(()))));
    }

    #[test]
    fn a_panicking_callback_ends_the_thread_visibly() {
        let dir = FakeDir::new();
        let started = OomWatcher::start(|id| panic!("callback for {id}"));
        let Ok((watcher, thread)) = started else {
            panic!("start");
        };
        let a = v2_cgroup(&dir, 1, "a");
        assert!(watcher.add("ctr-a", &a).is_ok());
        dir.write("sys/fs/cgroup/a/memory.events", &events(1, 0));
        assert!(thread.join().is_err(), "the join gives the panic");
        assert!(!watcher.is_running());
        assert!(!watcher.is_watching("ctr-a"), "its watches are closed");
        assert!(matches!(
            watcher.add("ctr-a", &a),
            Err(CgroupError::WatcherStopped)
        ));
    }
}
