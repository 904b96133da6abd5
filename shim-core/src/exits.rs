//! The events thread: reaper exits -> the owning process, each settled on its own, init's last;
//! and, when the shim watches OOMs, each container's OOM -> its Oom event, ahead of its exit.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::cgroup::OomWatcher;
use crate::events::{Event, EventSink, TaskExit};
use crate::process::exec::Exec;
use crate::process::init::Init;
use crate::process::state::ExecState;
use crate::table::{Proc, Table};

/// How long the init's TaskExit may wait for the exits of execs that die with it.
const INIT_LAST_LIMIT: Duration = Duration::from_secs(1);

/// epoll data of the exit queue's eventfd and of the OOM watcher's epoll fd.
const EXITS: u64 = 0;
const OOMS: u64 = 1;

/// Exits on their way from the reaper to the events thread.
struct Queue {
    state: Mutex<Queued>,
    /// Written after each push and when the last feed goes: the events thread wakes.
    wake: EventFd,
}

#[derive(Default)]
struct Queued {
    exits: VecDeque<reaper::Exit>,
    /// Live [`Feed`]s: with none left and the queue empty, no exit can come any more.
    feeds: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        if let Err(e) = self.wake.write(1) {
            // Only an overflow of the counter fails, and then a wake-up is pending anyway.
            log::debug!(error:% = e; "waking the events thread");
        }
    }

    /// Every exit queued so far, and whether more may come.
    fn take(&self) -> (VecDeque<reaper::Exit>, bool) {
        let mut q = self.lock();
        (std::mem::take(&mut q.exits), q.feeds > 0)
    }
}

/// Feeds exits to the events thread; that thread ends (orderly) once every feed is dropped and
/// what they queued is dispatched. Cloned into each reaper watch.
pub(crate) struct Feed(Arc<Queue>);

impl Feed {
    /// Queue `exit` and wake the events thread. Short and non-blocking: it runs on the reaper's
    /// thread.
    pub(crate) fn push(&self, exit: reaper::Exit) {
        self.0.lock().exits.push_back(exit);
        self.0.wake();
    }
}

impl Clone for Feed {
    fn clone(&self) -> Feed {
        self.0.lock().feeds += 1;
        Feed(Arc::clone(&self.0))
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let last = {
            let mut q = self.0.lock();
            q.feeds -= 1;
            q.feeds == 0
        };
        if last {
            self.0.wake();
        }
    }
}

/// Start the one events thread, a vital one: without it no exit is ever recorded, so the shim
/// ends if it stops. `settle_limit` bounds how long an exit waits for its process's output before
/// it is recorded. `oom`, when given, is drained on the same thread: its OOMs become Oom events.
/// Returns the first feed.
pub(crate) fn spawn(
    table: Arc<Table>,
    events: Arc<dyn EventSink>,
    settle_limit: Duration,
    oom: Option<Arc<OomWatcher>>,
) -> std::io::Result<(Feed, JoinHandle<()>)> {
    let queue = Arc::new(Queue {
        state: Mutex::new(Queued {
            feeds: 1,
            ..Queued::default()
        }),
        wake: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
    });
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&queue.wake, EpollEvent::new(EpollFlags::EPOLLIN, EXITS))?;
    if let Some(oom) = &oom {
        epoll.add(oom.fd(), EpollEvent::new(EpollFlags::EPOLLIN, OOMS))?;
    }
    let feed = Feed(Arc::clone(&queue));
    let thread = crate::vital::spawn("events", move || {
        let publisher = Arc::new(Publisher {
            events,
            table,
            lock: Mutex::new(()),
            recorded: Condvar::new(),
        });
        run(&publisher, &queue, &epoll, oom.as_deref(), settle_limit)
    })?;
    Ok((feed, thread))
}

/// One exit, claimed from the table: whose it is and what the reaper saw.
struct Claimed {
    process: Process,
    pid: u32,
    status: u32,
    at: SystemTime,
}

/// The process an exit belongs to (an exec comes with its init, for the event's container id).
enum Process {
    Init(Arc<Init>),
    Exec(Arc<Exec>, Arc<Init>),
}

/// Exits are claimed here in reaper order. Settling one (waiting for its output, `runc kill
/// --all`, `runc resume`) can take a while, so it runs on a short-lived thread of its own, joined
/// later, and never holds up the next exit or OOM. An exec whose output is already drained is
/// settled at once, on this thread. An OOM is published here, under its init's order lock.
fn run(
    publisher: &Arc<Publisher>,
    queue: &Queue,
    epoll: &Epoll,
    oom: Option<&OomWatcher>,
    settle_limit: Duration,
) -> Result<(), String> {
    let mut settling: Vec<JoinHandle<()>> = Vec::new();
    let mut ready = [EpollEvent::empty(); 2];
    loop {
        let (exits, open) = queue.take();
        for exit in exits {
            join_finished(&mut settling);
            dispatch(publisher, &exit, settle_limit, &mut settling);
        }
        if !open {
            break;
        }
        let n = match epoll.wait(&mut ready, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        };
        for event in &ready[..n] {
            match event.data() {
                // Read before the queue is taken: a push after that wakes us again.
                EXITS => {
                    let _ = queue.wake.read();
                }
                OOMS => {
                    if let Some(oom) = oom {
                        let ids = oom.take_ready().map_err(|e| format!("OOM watch: {e}"))?;
                        for id in ids {
                            publisher.oom(&id);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for handle in settling {
        let _ = handle.join();
    }
    Ok(())
}

/// Claim `exit` and settle it: here when quick, else on a thread pushed onto `settling`.
fn dispatch(
    publisher: &Arc<Publisher>,
    exit: &reaper::Exit,
    settle_limit: Duration,
    settling: &mut Vec<JoinHandle<()>>,
) {
    let Some(claimed) = claim(&publisher.table, exit) else {
        return;
    };
    let quick = matches!(&claimed.process, Process::Exec(e, _) if e.stdio.is_drained());
    if quick {
        publisher.settle(claimed, settle_limit);
        return;
    }
    let (p, job) = (Arc::clone(publisher), claimed.share());
    let spawned = std::thread::Builder::new()
        .name("exit-settle".into())
        .spawn(move || p.settle(job, settle_limit));
    match spawned {
        Ok(handle) => settling.push(handle),
        // No thread to be had: settle here, late rather than never.
        Err(_) => publisher.settle(claimed, settle_limit),
    }
}

fn join_finished(settling: &mut Vec<JoinHandle<()>>) {
    let (done, running): (Vec<_>, Vec<_>) = settling.drain(..).partition(|h| h.is_finished());
    for handle in done {
        let _ = handle.join();
    }
    *settling = running;
}

/// Take `exit`'s pid out of the table: from here on only this exit's settling records it. An
/// exec is marked reaped at once: its pid may already belong to another process.
fn claim(table: &Table, exit: &reaper::Exit) -> Option<Claimed> {
    let pid = exit.pid as u32;
    let process = match table.lock().claim(pid)? {
        Proc::Init(init) => Process::Init(init),
        Proc::Exec(exec, init) => {
            exec.reaped();
            Process::Exec(exec, init)
        }
    };
    Some(Claimed {
        process,
        pid,
        status: exit.status.max(0) as u32,
        at: exit.at,
    })
}

impl Claimed {
    /// Another handle on the same exit, for the thread that settles it.
    fn share(&self) -> Claimed {
        let process = match &self.process {
            Process::Init(i) => Process::Init(Arc::clone(i)),
            Process::Exec(e, i) => Process::Exec(Arc::clone(e), Arc::clone(i)),
        };
        Claimed {
            process,
            pid: self.pid,
            status: self.status,
            at: self.at,
        }
    }
}

/// Records exits and publishes their TaskExits: an exec's as soon as it is recorded, the init's
/// once no exec is still running (bounded), so the exits it caused go first.
struct Publisher {
    events: Arc<dyn EventSink>,
    table: Arc<Table>,
    /// Held while an exec's exit is recorded and published, and while the init's event checks
    /// for running execs: an exec recorded but not yet published is never seen as done.
    lock: Mutex<()>,
    /// Notified after each exec exit.
    recorded: Condvar,
}

impl Publisher {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settle(&self, c: Claimed, settle_limit: Duration) {
        match c.process {
            Process::Exec(exec, init) => {
                // The last output first: whoever learns of the exit may close its end at once.
                exec.stdio.wait_drained(settle_limit);
                let _published = self.lock();
                if exec.exited(c.status, c.at) {
                    self.events.event(Event::Exit(TaskExit {
                        container_id: init.parts.id.clone(),
                        id: exec.id.clone(),
                        pid: c.pid,
                        exit_status: c.status,
                        exited_at: c.at,
                    }));
                }
                self.recorded.notify_all();
            }
            Process::Init(init) => {
                if !init.exited(c.status, c.at, settle_limit) {
                    return;
                }
                let event = TaskExit {
                    container_id: init.parts.id.clone(),
                    id: init.parts.id.clone(),
                    pid: c.pid,
                    exit_status: c.status,
                    exited_at: c.at,
                };
                let container = init.parts.id.clone();
                let published = self.lock();
                let _published = self
                    .recorded
                    .wait_timeout_while(published, INIT_LAST_LIMIT, |_| {
                        self.execs_running(&container)
                    })
                    .unwrap_or_else(|p| p.into_inner());
                let _order = init.order();
                // An OOM that caused this exit goes first, even if the watcher is behind.
                if init.oom_unsent() {
                    self.events.event(Event::Oom {
                        container_id: container.clone(),
                    });
                    init.set_oom_sent();
                }
                self.events.event(Event::Exit(event));
                init.set_exit_published();
            }
        }
    }

    /// Publish an OOM of container `id`. Under the lock the exit is published with: an OOM goes
    /// out before the exit it caused, and the cgroup's late wake-ups after that exit are not news.
    fn oom(&self, id: &str) {
        let Ok(init) = self.table.lock().init(id) else {
            return;
        };
        let _order = init.order();
        if init.exit_published() {
            log::debug!(id:% = id; "OOM wake-up after the exit was published, not sent");
            return;
        }
        self.events.event(Event::Oom {
            container_id: id.to_string(),
        });
        init.set_oom_sent();
    }

    /// Whether an exec of `container` still runs (its exit not yet recorded).
    fn execs_running(&self, container: &str) -> bool {
        self.table
            .lock()
            .containers
            .get(container)
            .is_some_and(|c| c.execs.values().any(|e| e.state() == ExecState::Running))
    }
}
