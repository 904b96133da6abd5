//! The exit dispatcher: reaper exits -> the owning process, each settled on its own, init's last.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::events::{Event, EventSink, TaskExit};
use crate::process::exec::Exec;
use crate::process::init::Init;
use crate::process::state::ExecState;
use crate::table::{Proc, Table};

/// How long the init's TaskExit may wait for the exits of execs that die with it.
const INIT_LAST_LIMIT: Duration = Duration::from_secs(1);

/// Start the one dispatcher thread, a vital one: without it no exit is ever recorded, so the shim
/// ends if it stops. `settle_limit` bounds how long an exit waits for its process's output before
/// it is recorded.
pub(crate) fn spawn(
    table: Arc<Table>,
    exits: Receiver<reaper::Exit>,
    events: Arc<dyn EventSink>,
    settle_limit: Duration,
) -> std::io::Result<JoinHandle<()>> {
    crate::vital::spawn("exits", move || {
        let publisher = Arc::new(Publisher {
            events,
            table,
            lock: Mutex::new(()),
            recorded: Condvar::new(),
        });
        run(&publisher, &exits, settle_limit);
        Ok(())
    })
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
/// here, and never holds up the next exit. An exec whose output is already drained is settled at
/// once, on this thread.
fn run(publisher: &Arc<Publisher>, exits: &Receiver<reaper::Exit>, settle_limit: Duration) {
    let mut settling: Vec<JoinHandle<()>> = Vec::new();
    while let Ok(exit) = exits.recv() {
        join_finished(&mut settling);
        let Some(claimed) = claim(&publisher.table, &exit) else {
            continue;
        };
        let quick = matches!(&claimed.process, Process::Exec(e, _) if e.stdio.is_drained());
        if quick {
            publisher.settle(claimed, settle_limit);
            continue;
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
    for handle in settling {
        let _ = handle.join();
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

    /// Whether an exec of `container` still runs (its exit not yet recorded).
    fn execs_running(&self, container: &str) -> bool {
        self.table
            .lock()
            .containers
            .get(container)
            .is_some_and(|c| c.execs.values().any(|e| e.state() == ExecState::Running))
    }
}
