//! The exit dispatcher: reaper exits -> the owning process -> TaskExit, init's last.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{EventSink, TaskExit};
use crate::process::state::ExecState;
use crate::service::{Owner, Table};

/// How long the init's TaskExit may wait for the exits of execs that die with it.
const INIT_LAST_LIMIT: Duration = Duration::from_secs(1);

/// Start the one dispatcher thread. It runs until every sender is gone (the process ends first).
pub(crate) fn spawn(
    table: Arc<Table>,
    exits: Receiver<reaper::Exit>,
    events: Arc<dyn EventSink>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("exits".into())
        .spawn(move || run(&table, &exits, &*events))
}

fn run(table: &Table, exits: &Receiver<reaper::Exit>, events: &dyn EventSink) {
    // The init's exit is recorded at once; only its event waits for the execs that die with it.
    let mut held: Option<(TaskExit, Instant)> = None;
    loop {
        let next = match &held {
            None => exits.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some((_, deadline)) => {
                exits.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
        };
        match next {
            Ok(exit) => {
                if let Some(event) = record(table, &exit) {
                    if event.id == event.container_id {
                        held = Some((event, Instant::now() + INIT_LAST_LIMIT));
                    } else {
                        events.task_exit(event);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let release = match &held {
            Some((_, deadline)) => Instant::now() >= *deadline || !execs_running(table),
            None => false,
        };
        if release {
            if let Some((event, _)) = held.take() {
                events.task_exit(event);
            }
        }
    }
}

/// Record one exit on its process; the event to publish, if it was news.
fn record(table: &Table, exit: &reaper::Exit) -> Option<TaskExit> {
    let pid = exit.pid as u32;
    let status = exit.status.max(0) as u32;
    let (owner, init, exec) = {
        let mut t = table.lock();
        let owner = t.by_pid.remove(&pid)?;
        let exec = match &owner {
            Owner::Exec(id) => t.execs.get(id).cloned(),
            Owner::Init => None,
        };
        (owner, t.init.clone()?, exec)
    };
    let id = match owner {
        Owner::Init => init
            .exited(status, exit.at)
            .then(|| init.parts.id.clone())?,
        Owner::Exec(id) => exec?.exited(status, exit.at).then_some(id)?,
    };
    Some(TaskExit {
        container_id: init.parts.id.clone(),
        id,
        pid,
        exit_status: status,
        exited_at: exit.at,
    })
}

fn execs_running(table: &Table) -> bool {
    table
        .lock()
        .execs
        .values()
        .any(|e| e.state() == ExecState::Running)
}
