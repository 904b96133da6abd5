//! The Reaper handle: start the reaping thread, spawn children, and claim exits by pid (into a
//! waiter, a channel, or a callback).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use crate::registry::{Deliver, Due, Registry};
use crate::wakeup::Wakeups;
use crate::{Error, Exit, ExitWaiter};

/// A started reaper. Cheap to clone; all clones share the one reaping thread.
#[derive(Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Mutex<Registry>,
    /// Spawners hold it shared across fork + registration; the reaping thread holds it exclusively
    /// around `waitpid`. So no exit can be collected before its pid is registered, and std's own
    /// `waitpid` on a child whose exec failed never races ours.
    gate: RwLock<()>,
    /// Whether we have no children at all, and how many spawns happened so far. A spawn clears
    /// the flag; a reaping pass sets it only after delivering its exits and only if no spawn
    /// happened since its waitpid, so the flag is never stale in either direction.
    childless: Mutex<Childless>,
    childless_cv: Condvar,
    /// RLIMIT_NOFILE every child gets back (soft, hard): the one this process started with, if
    /// it raised its own since.
    child_fd_limit: Option<(libc::rlim_t, libc::rlim_t)>,
}

#[derive(Default)]
struct Childless {
    none: bool,
    spawns: u64,
}

/// A child started through [`Reaper::spawn`].
pub struct Spawned {
    pub pid: i32,
    /// Only for its stdio handles: never call `wait` on it (the reaper collects the status).
    pub child: Child,
    pub exit: ExitWaiter,
}

/// Called on the reaping thread with each forwarded signal (see [`Builder::on_signal`]).
type SignalHandler = Box<dyn Fn(Signal) + Send>;

/// Configures and starts the one reaper of this process.
pub struct Builder {
    forward: Vec<Signal>,
    on_signal: Option<SignalHandler>,
    subreaper: bool,
    child_fd_limit: Option<(libc::rlim_t, libc::rlim_t)>,
}

impl Reaper {
    pub fn builder() -> Builder {
        Builder {
            forward: Vec::new(),
            on_signal: None,
            subreaper: true,
            child_fd_limit: None,
        }
    }

    /// Spawn `cmd` with its exit already watched, so it cannot be lost however fast the child dies.
    /// The child starts with an empty signal mask and default dispositions, and with the open-file
    /// limit given to [`Builder::child_fd_limit`] if any.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Spawned> {
        restore_child_signals(cmd);
        if let Some((soft, hard)) = self.inner.child_fd_limit {
            restore_child_fd_limit(cmd, soft, hard);
        }
        let (tx, rx) = channel();
        let _gate = self.inner.gate.read().unwrap_or_else(|p| p.into_inner());
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        self.registry().watch_new_child(pid, tx);
        let mut c = self
            .inner
            .childless
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.none = false;
        c.spawns += 1;
        Ok(Spawned {
            pid,
            child,
            exit: ExitWaiter::new(pid, rx),
        })
    }

    /// Follow a pid we did not spawn. If it already exited in the last minute, the waiter is ready
    /// at once. Every watch of one pid gets its exit.
    pub fn watch(&self, pid: i32) -> ExitWaiter {
        let (tx, rx) = channel();
        self.watch_to(pid, tx, None);
        ExitWaiter::new(pid, rx)
    }

    /// Like [`Reaper::watch`] for a process known to have started at or after `since` (e.g. a pid
    /// read from runc's pid file, with `since` taken just before the runc call): an exit of that
    /// pid reaped before `since` belongs to an earlier process with the same pid and is ignored.
    pub fn watch_since(&self, pid: i32, since: Instant) -> ExitWaiter {
        let (tx, rx) = channel();
        self.watch_to(pid, tx, Some(since));
        ExitWaiter::new(pid, rx)
    }

    /// Like [`Reaper::watch`], delivering into a channel the caller owns.
    pub fn watch_into(&self, pid: i32, tx: Sender<Exit>) {
        self.watch_to(pid, tx, None);
    }

    /// Like [`Reaper::watch_since`], delivering into a channel the caller owns.
    pub fn watch_into_since(&self, pid: i32, tx: Sender<Exit>, since: Instant) {
        self.watch_to(pid, tx, Some(since));
    }

    /// Like [`Reaper::watch_since`], calling `f` once with the exit instead: a caller needs no
    /// thread, nor a channel, of its own to learn of it. `f` runs on the reaping thread (no lock
    /// of the reaper held), or here at once when the exit is already buffered. It must be short
    /// and must not block, since no child is reaped meanwhile: queue the exit and wake whoever
    /// handles it. A panic in `f` is caught and logged. [`Reaper::forget`] drops `f` uncalled.
    pub fn watch_with_since(
        &self,
        pid: i32,
        since: Instant,
        f: impl FnOnce(Exit) + Send + 'static,
    ) {
        self.watch_to(pid, Deliver::Call(Box::new(f)), Some(since));
    }

    /// Register a watcher; a callback owed a buffered exit runs once the registry is unlocked.
    fn watch_to(&self, pid: i32, to: impl Into<Deliver>, since: Option<Instant>) {
        let due = self.registry().watch(pid, to, since);
        if let Some(due) = due {
            run_due(due);
        }
    }

    /// Every exit, after per-pid delivery. Dropped receivers are pruned.
    pub fn subscribe_all(&self) -> Receiver<Exit> {
        let (tx, rx) = channel();
        self.registry().subscribe_all(tx);
        rx
    }

    /// Stop following `pid`; its waiter, if any, stops waiting.
    pub fn forget(&self, pid: i32) {
        self.registry().forget(pid);
    }

    /// Block until this process has no children left, or `limit` passes. True if childless.
    pub fn wait_childless(&self, limit: Option<Duration>) -> bool {
        let guard = self
            .inner
            .childless
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let cv = &self.inner.childless_cv;
        match limit {
            None => {
                cv.wait_while(guard, |c| !c.none)
                    .unwrap_or_else(|p| p.into_inner())
                    .none
            }
            Some(d) => {
                let (g, _) = cv
                    .wait_timeout_while(guard, d, |c| !c.none)
                    .unwrap_or_else(|p| p.into_inner());
                g.none
            }
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Builder {
    /// Extra signals to catch and deliver on the returned channel (SIGCHLD is always handled).
    pub fn forward(mut self, signals: &[Signal]) -> Self {
        self.forward
            .extend(signals.iter().copied().filter(|s| *s != Signal::SIGCHLD));
        self
    }

    /// Hand the forwarded signals to `handler`, called on the reaping thread, instead of the
    /// channel `start` returns (which then stays empty): a process needs no thread of its own to
    /// wait for them. `handler` must not block, since no child is reaped meanwhile: send the
    /// signal on, or start a thread for long work.
    pub fn on_signal(mut self, handler: impl Fn(Signal) + Send + 'static) -> Self {
        self.on_signal = Some(Box::new(handler));
        self
    }

    /// Every child spawned gets RLIMIT_NOFILE `soft`/`hard` back between fork and exec: the limit
    /// this process started with, when it raised its own (as Go does, so do its children).
    pub fn child_fd_limit(mut self, soft: libc::rlim_t, hard: libc::rlim_t) -> Self {
        self.child_fd_limit = Some((soft, hard));
        self
    }

    /// Become `PR_SET_CHILD_SUBREAPER` (skipped when we are pid 1). Default true.
    pub fn subreaper(mut self, on: bool) -> Self {
        self.subreaper = on;
        self
    }

    /// Install the handlers and start the reaping thread, which takes the handled signals whatever
    /// the signal mask of the calling thread. Once per process.
    pub fn start(self) -> Result<(Reaper, Receiver<Signal>), Error> {
        if self.subreaper && std::process::id() != 1 {
            // SAFETY: plain prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                return Err(Error::Sys {
                    what: "prctl(PR_SET_CHILD_SUBREAPER)",
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        let mut signals = self.forward.clone();
        signals.push(Signal::SIGCHLD);
        let wakeups = Wakeups::install(&signals)?;
        let inner = Arc::new(Inner {
            registry: Mutex::new(Registry::default()),
            gate: RwLock::new(()),
            childless: Mutex::new(Childless::default()),
            childless_cv: Condvar::new(),
            child_fd_limit: self.child_fd_limit,
        });
        let (sig_tx, sig_rx) = channel();
        let forward: SignalHandler = match self.on_signal {
            Some(handler) => handler,
            None => Box::new(move |sig| {
                let _ = sig_tx.send(sig);
            }),
        };
        let (ready_tx, ready_rx) = sync_channel(1);
        let thread_inner = Arc::clone(&inner);
        // The reaping thread lives as long as the process; nobody joins it. It inherits our
        // signal mask, so it unblocks the signals it handles before anything else: a caller that
        // blocks SIGCHLD (as a parent's mask survives exec) must not silence the reaper.
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                let unblocked = wakeups.unblock_in_this_thread();
                let ok = unblocked.is_ok();
                let _ = ready_tx.send(unblocked);
                if ok {
                    reap_loop(&thread_inner, wakeups, &forward);
                }
            })
            .map_err(|source| Error::Sys {
                what: "spawn reaping thread",
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((Reaper { inner }, sig_rx)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Sys {
                what: "start reaping thread",
                source: std::io::Error::other("the reaping thread ended before it was ready"),
            }),
        }
    }
}

/// The pre_exec hook every child gets: empty signal mask, default dispositions.
pub fn restore_child_signals(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls (sigemptyset, sigprocmask, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Ignored dispositions survive exec: reset every signal (SIGKILL/SIGSTOP just fail).
            for sig in 1..=libc::SIGRTMAX() {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// The pre_exec hook setting RLIMIT_NOFILE back to `soft`/`hard` in the child.
fn restore_child_fd_limit(cmd: &mut Command, soft: libc::rlim_t, hard: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit is a plain system call (async-signal-safe) on a value copied in. Best
    // effort: a child left with the raised limit is better than a child not started.
    unsafe {
        cmd.pre_exec(move || {
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
}

fn reap_loop(inner: &Inner, mut wakeups: Wakeups, forward: &SignalHandler) {
    // Reap once at start: a child may have exited before the handler was installed.
    let mut pending = true;
    loop {
        if pending {
            let (exits, none_left, spawns) = reap_all(inner);
            let mut due = Vec::new();
            {
                let mut reg = inner.registry.lock().unwrap_or_else(|p| p.into_inner());
                for (e, reaped) in exits {
                    reg.deliver(e, reaped, &mut due);
                }
            }
            due.into_iter().for_each(run_due);
            // After delivery: whoever sees "childless" has every exit of this pass already.
            let mut c = inner.childless.lock().unwrap_or_else(|p| p.into_inner());
            if c.spawns == spawns {
                c.none = none_left;
                if none_left {
                    inner.childless_cv.notify_all();
                }
            }
        }
        pending = false;
        for signo in wakeups.next() {
            if signo == libc::SIGCHLD {
                pending = true;
            } else if let Ok(sig) = Signal::try_from(signo) {
                forward(sig);
            }
        }
    }
}

/// Run a callback owed its exit; a panic in it must not end the reaping thread.
fn run_due(due: Due) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| due.run())) {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        log::error!(why:% = why; "an exit callback panicked");
    }
}

/// Collect every child that has exited. Returns the exits with the monotonic time of each reap,
/// whether no child is left at all, and the spawn count this view of the children belongs to (no
/// spawn runs while we hold the gate).
fn reap_all(inner: &Inner) -> (Vec<(Exit, Instant)>, bool, u64) {
    let _gate = inner.gate.write().unwrap_or_else(|p| p.into_inner());
    let spawns = inner
        .childless
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .spawns;
    let mut exits = Vec::new();
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes the status into `raw`.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        match pid {
            0 => return (exits, false, spawns),
            p if p > 0 => exits.push((
                Exit::from_wait_status(p, raw, SystemTime::now()),
                Instant::now(),
            )),
            _ => match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return (exits, true, spawns),
            },
        }
    }
}
