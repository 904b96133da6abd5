//! The process state machines as data: per (state, operation), whether it is allowed (Go's
//! refusal texts when not), what to do, and the state it leads to, decided here and only here.

use crate::error::Error;

/// States of the init (contract 2.4). `Pausing` is held while `runc pause` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitState {
    Created,
    CreatedCheckpoint,
    Running,
    Pausing,
    Paused,
    Stopped,
    Deleted,
}

/// States of an exec process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecState {
    Created,
    Running,
    Stopped,
    Deleted,
}

/// What a process can be asked to do. `Exit` is the reaper reporting its death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Delete,
    Pause,
    Resume,
    Update,
    Checkpoint,
    Exec,
    Kill,
    Resize,
    Exit,
}

/// What to do when the operation is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Do it (the op's ordinary runc call or bookkeeping).
    Proceed,
    /// Start of a checkpointed init: `runc restore` instead of `runc start`.
    Restore,
    /// Exit of a paused init: record it, then `runc resume` so the cgroup is not left frozen.
    RecordThenResume,
    /// Nothing to do (an exit seen twice, a resize of a process without state to change).
    Ignore,
}

/// An allowed operation: what to do, and the states it moves the process through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S> {
    pub action: Action,
    /// The state while the operation's runc call runs (`Pausing` during `runc pause`).
    pub during: Option<S>,
    /// The state once the operation succeeded (unchanged for most operations). On failure the
    /// process goes back to the state it was in.
    pub next: S,
}

fn refuse<T>(text: &str) -> Result<T, Error> {
    Err(Error::InvalidState(text.to_string()))
}

fn gone<T>(text: &str) -> Result<T, Error> {
    Err(Error::NotFound(text.to_string()))
}

/// The init's transition table: guard, action and next state of `op` in `state`.
pub fn init(state: InitState, op: Op) -> Result<Transition<InitState>, Error> {
    let action = init_action(state, op)?;
    use InitState as S;
    let (during, next) = match (op, action) {
        (_, Action::Ignore) => (None, state),
        (Op::Start, _) => (None, S::Running),
        (Op::Delete, _) => (None, S::Deleted),
        (Op::Pause, _) => (Some(S::Pausing), S::Paused),
        (Op::Resume, _) => (None, S::Running),
        (Op::Exit, _) => (None, S::Stopped),
        (Op::Update | Op::Checkpoint | Op::Exec | Op::Kill | Op::Resize, _) => (None, state),
    };
    Ok(Transition {
        action,
        during,
        next,
    })
}

/// An exec's transition table: guard, action and next state of `op` in `state`.
pub fn exec(state: ExecState, op: Op) -> Result<Transition<ExecState>, Error> {
    let action = exec_action(state, op)?;
    use ExecState as S;
    let next = match (op, action) {
        (_, Action::Ignore) => state,
        (Op::Start, _) => S::Running,
        (Op::Delete, _) => S::Deleted,
        (Op::Exit, _) => S::Stopped,
        _ => state,
    };
    Ok(Transition {
        action,
        during: None,
        next,
    })
}

/// The init's guard: whether `op` is allowed in `state`, and what it does.
fn init_action(state: InitState, op: Op) -> Result<Action, Error> {
    use Action::*;
    use InitState as S;
    match (op, state) {
        (Op::Start, S::Created) => Ok(Proceed),
        (Op::Start, S::CreatedCheckpoint) => Ok(Restore),
        (Op::Start, s) => refuse(&format!("cannot start a {} process", name(s))),

        (Op::Delete, S::Created | S::CreatedCheckpoint | S::Stopped) => Ok(Proceed),
        (Op::Delete, S::Deleted) => gone("cannot delete a deleted process"),
        (Op::Delete, s) => refuse(&format!("cannot delete a {} process", name(s))),

        (Op::Pause, S::Running) => Ok(Proceed),
        (Op::Pause, S::Created | S::CreatedCheckpoint) => {
            refuse("cannot pause task in created state")
        }
        (Op::Pause, S::Deleted) => refuse("cannot pause a deleted process"),
        (Op::Pause, s) => refuse(&format!("cannot pause a {} container", name(s))),

        (Op::Resume, S::Paused) => Ok(Proceed),
        (Op::Resume, S::Created | S::CreatedCheckpoint) => {
            refuse("cannot resume task in created state")
        }
        (Op::Resume, S::Running) => refuse("cannot resume a running process"),
        (Op::Resume, S::Deleted) => refuse("cannot resume a deleted process"),
        (Op::Resume, s) => refuse(&format!("cannot resume a {} container", name(s))),

        (Op::Update, S::Stopped) => refuse("cannot update a stopped container"),
        (Op::Update, S::Deleted) => refuse("cannot update a deleted process"),
        (Op::Update, _) => Ok(Proceed),

        (Op::Checkpoint, S::Running | S::Paused) => Ok(Proceed),
        (Op::Checkpoint, S::Created | S::CreatedCheckpoint) => {
            refuse("cannot checkpoint a task in created state")
        }
        (Op::Checkpoint, S::Deleted) => refuse("cannot checkpoint a deleted process"),
        (Op::Checkpoint, s) => refuse(&format!("cannot checkpoint a {} container", name(s))),

        (Op::Exec, S::Created | S::Running) => Ok(Proceed),
        (Op::Exec, S::CreatedCheckpoint) => refuse("cannot exec in a created state"),
        // Go's Exec waits for the init's mutex held by Pause, then finds it paused.
        (Op::Exec, S::Pausing) => refuse("cannot exec in a paused state"),
        (Op::Exec, s) => refuse(&format!("cannot exec in a {} state", name(s))),

        (Op::Kill, S::Deleted) => gone("cannot kill a deleted process"),
        (Op::Kill, _) => Ok(Proceed),

        (Op::Resize, S::Stopped) => refuse("cannot resize a stopped container"),
        (Op::Resize, S::Deleted) => refuse("cannot resize a deleted process"),
        (Op::Resize, _) => Ok(Proceed),

        (Op::Exit, S::Created | S::CreatedCheckpoint | S::Running) => Ok(Proceed),
        (Op::Exit, S::Paused | S::Pausing) => Ok(RecordThenResume),
        (Op::Exit, S::Stopped | S::Deleted) => Ok(Ignore),
    }
}

/// An exec's guard: whether `op` is allowed in `state`, and what it does.
fn exec_action(state: ExecState, op: Op) -> Result<Action, Error> {
    use Action::*;
    use ExecState as S;
    match (op, state) {
        (Op::Start, S::Created) => Ok(Proceed),
        (Op::Start, s) => refuse(&format!("cannot start a {} process", exec_name(s))),
        (Op::Delete, S::Created | S::Stopped) => Ok(Proceed),
        (Op::Delete, S::Running) => refuse("cannot delete a running process"),
        (Op::Delete, S::Deleted) => gone("cannot delete a deleted process"),
        (Op::Resize, S::Created | S::Running) => Ok(Proceed),
        (Op::Resize, S::Stopped) => refuse("cannot resize a stopped container"),
        (Op::Resize, S::Deleted) => refuse("cannot resize a deleted process"),
        (Op::Kill, S::Deleted) => gone("cannot kill a deleted process"),
        (Op::Kill, _) => Ok(Proceed),
        (Op::Exit, S::Created | S::Running) => Ok(Proceed),
        (Op::Exit, _) => Ok(Ignore),
        (op, _) => Err(Error::InvalidArgument(format!(
            "{op:?} applies to the init process only"
        ))),
    }
}

fn name(s: InitState) -> &'static str {
    match s {
        InitState::Created | InitState::CreatedCheckpoint => "created",
        InitState::Running => "running",
        InitState::Pausing => "pausing",
        InitState::Paused => "paused",
        InitState::Stopped => "stopped",
        InitState::Deleted => "deleted",
    }
}

fn exec_name(s: ExecState) -> &'static str {
    match s {
        ExecState::Created => "created",
        ExecState::Running => "running",
        ExecState::Stopped => "stopped",
        ExecState::Deleted => "deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const OK: &str = "ok";
    const RESTORE: &str = "restore";
    const RESUME: &str = "record+resume";
    const IGNORE: &str = "ignore";

    fn show<S>(r: Result<Transition<S>, Error>) -> String {
        match r.map(|t| t.action) {
            Ok(Proceed) => OK.into(),
            Ok(Restore) => RESTORE.into(),
            Ok(RecordThenResume) => RESUME.into(),
            Ok(Ignore) => IGNORE.into(),
            Err(Error::NotFound(m)) => format!("NotFound: {m}"),
            Err(e) => e.to_string(),
        }
    }

    /// Contract 2.4, row by row: created, createdCheckpoint, running, paused, stopped, deleted.
    #[test]
    fn the_init_matrix_matches_contract_2_4() {
        use InitState::*;
        let states = [
            Created,
            CreatedCheckpoint,
            Running,
            Paused,
            Stopped,
            Deleted,
        ];
        let rows: [(Op, [&str; 6]); 10] = [
            (
                Op::Start,
                [
                    OK,
                    RESTORE,
                    "cannot start a running process",
                    "cannot start a paused process",
                    "cannot start a stopped process",
                    "cannot start a deleted process",
                ],
            ),
            (
                Op::Delete,
                [
                    OK,
                    OK,
                    "cannot delete a running process",
                    "cannot delete a paused process",
                    OK,
                    "NotFound: cannot delete a deleted process",
                ],
            ),
            (
                Op::Pause,
                [
                    "cannot pause task in created state",
                    "cannot pause task in created state",
                    OK,
                    "cannot pause a paused container",
                    "cannot pause a stopped container",
                    "cannot pause a deleted process",
                ],
            ),
            (
                Op::Resume,
                [
                    "cannot resume task in created state",
                    "cannot resume task in created state",
                    "cannot resume a running process",
                    OK,
                    "cannot resume a stopped container",
                    "cannot resume a deleted process",
                ],
            ),
            (
                Op::Update,
                [
                    OK,
                    OK,
                    OK,
                    OK,
                    "cannot update a stopped container",
                    "cannot update a deleted process",
                ],
            ),
            (
                Op::Checkpoint,
                [
                    "cannot checkpoint a task in created state",
                    "cannot checkpoint a task in created state",
                    OK,
                    OK,
                    "cannot checkpoint a stopped container",
                    "cannot checkpoint a deleted process",
                ],
            ),
            (
                Op::Exec,
                [
                    OK,
                    "cannot exec in a created state",
                    OK,
                    "cannot exec in a paused state",
                    "cannot exec in a stopped state",
                    "cannot exec in a deleted state",
                ],
            ),
            (
                Op::Kill,
                [
                    OK,
                    OK,
                    OK,
                    OK,
                    OK,
                    "NotFound: cannot kill a deleted process",
                ],
            ),
            (
                Op::Resize,
                [
                    OK,
                    OK,
                    OK,
                    OK,
                    "cannot resize a stopped container",
                    "cannot resize a deleted process",
                ],
            ),
            (Op::Exit, [OK, OK, OK, RESUME, IGNORE, IGNORE]),
        ];
        for (op, want) in rows {
            for (state, want) in states.iter().zip(want) {
                assert_eq!(show(init(*state, op)), want, "init {op:?} in {state:?}");
            }
        }
    }

    /// Pausing is visible only while `runc pause` runs; ops that serialise on the init's op lock
    /// (start, delete, pause, resume, update, checkpoint) never see it. The rest:
    #[test]
    fn pausing_behaves_like_paused_for_ops_that_do_not_wait_for_pause() {
        let table = [
            (Op::Kill, OK),
            (Op::Exec, "cannot exec in a paused state"),
            (Op::Resize, OK),
            (Op::Exit, RESUME),
            (Op::Start, "cannot start a pausing process"),
            (Op::Delete, "cannot delete a pausing process"),
            (Op::Pause, "cannot pause a pausing container"),
            (Op::Resume, "cannot resume a pausing container"),
            (Op::Update, OK),
            (Op::Checkpoint, "cannot checkpoint a pausing container"),
        ];
        for (op, want) in table {
            assert_eq!(show(init(InitState::Pausing, op)), want, "init {op:?}");
        }
    }

    #[test]
    fn init_only_operations_on_an_exec_are_invalid_arguments() {
        for op in [Op::Pause, Op::Resume, Op::Update, Op::Checkpoint, Op::Exec] {
            for state in [
                ExecState::Created,
                ExecState::Running,
                ExecState::Stopped,
                ExecState::Deleted,
            ] {
                assert!(
                    matches!(exec(state, op), Err(Error::InvalidArgument(_))),
                    "exec {op:?} in {state:?}"
                );
            }
        }
    }

    #[test]
    fn the_exec_matrix_matches_contract_2_4() {
        use ExecState::*;
        let states = [Created, Running, Stopped, Deleted];
        let rows: [(Op, [&str; 4]); 5] = [
            (
                Op::Start,
                [
                    OK,
                    "cannot start a running process",
                    "cannot start a stopped process",
                    "cannot start a deleted process",
                ],
            ),
            (
                Op::Delete,
                [
                    OK,
                    "cannot delete a running process",
                    OK,
                    "NotFound: cannot delete a deleted process",
                ],
            ),
            (
                Op::Resize,
                [
                    OK,
                    OK,
                    "cannot resize a stopped container",
                    "cannot resize a deleted process",
                ],
            ),
            (
                Op::Kill,
                [OK, OK, OK, "NotFound: cannot kill a deleted process"],
            ),
            (Op::Exit, [OK, OK, IGNORE, IGNORE]),
        ];
        for (op, want) in rows {
            for (state, want) in states.iter().zip(want) {
                assert_eq!(show(exec(*state, op)), want, "exec {op:?} in {state:?}");
            }
        }
    }

    #[test]
    fn each_allowed_operation_leads_to_its_next_state() {
        use InitState::*;
        let init_table = [
            (Created, Op::Start, None, Running),
            (CreatedCheckpoint, Op::Start, None, Running),
            (Running, Op::Pause, Some(Pausing), Paused),
            (Paused, Op::Resume, None, Running),
            (Running, Op::Exit, None, Stopped),
            (Paused, Op::Exit, None, Stopped),
            (Pausing, Op::Exit, None, Stopped),
            (Stopped, Op::Exit, None, Stopped),
            (Stopped, Op::Delete, None, Deleted),
            (Created, Op::Delete, None, Deleted),
            (Running, Op::Kill, None, Running),
            (Paused, Op::Update, None, Paused),
        ];
        for (from, op, during, next) in init_table {
            let t = init(from, op).unwrap();
            assert_eq!(
                (t.during, t.next),
                (during, next),
                "init {op:?} in {from:?}"
            );
        }
        let exec_table = [
            (ExecState::Created, Op::Start, ExecState::Running),
            (ExecState::Running, Op::Exit, ExecState::Stopped),
            (ExecState::Stopped, Op::Exit, ExecState::Stopped),
            (ExecState::Stopped, Op::Delete, ExecState::Deleted),
            (ExecState::Created, Op::Delete, ExecState::Deleted),
            (ExecState::Running, Op::Kill, ExecState::Running),
        ];
        for (from, op, next) in exec_table {
            assert_eq!(
                exec(from, op).unwrap().next,
                next,
                "exec {op:?} in {from:?}"
            );
        }
    }

    #[test]
    fn refusals_are_invalid_states() {
        assert!(matches!(
            init(InitState::Paused, Op::Pause),
            Err(Error::InvalidState(_))
        ));
        assert!(matches!(
            exec(ExecState::Running, Op::Delete),
            Err(Error::InvalidState(_))
        ));
    }
}
