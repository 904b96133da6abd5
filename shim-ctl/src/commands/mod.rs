//! Dispatch: resolve the target, connect, and run one command group; returns the exit status.

mod control;
mod exec;
mod inspect;
mod task;

use crate::cli::{Cli, Command};
use crate::client::Shim;
use crate::connect::{self, Resolved};
use crate::error::UsageError;
use std::time::Duration;

/// What every command that talks to a shim gets.
pub struct Ctx {
    pub json: bool,
    pub target: Resolved,
    pub shim: Shim,
}

fn timeout(cli: &Cli) -> anyhow::Result<Option<Duration>> {
    cli.timeout
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| UsageError(format!("invalid --timeout {s}")).into())
        })
        .transpose()
}

/// Runs the parsed command line; `Ok(code)` is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let json = cli.json;
    let fallback_bundle = match &cli.command {
        Command::Ls {
            state_root,
            processes,
        } => {
            let root = state_root
                .clone()
                .unwrap_or_else(|| cli.target.state_root.clone());
            return crate::ls::run(&root, json, timeout(&cli)?, *processes);
        }
        Command::Spawn(args) => return crate::spawn::run(args, json),
        Command::Completions { .. } if json => {
            return Err(UsageError(
                "completions prints a shell script: --json does not apply".into(),
            )
            .into())
        }
        Command::Completions { shell } => return crate::completions::run(shell),
        Command::Create(args) => Some(args.bundle.as_path()),
        _ => None,
    };
    if let Command::Exec(_) = &cli.command {
        // Before the ttrpc client starts its threads, so they all inherit the mask.
        crate::tty::block(&crate::tty::exec_signals())?;
    }
    let target = connect::resolve(&cli.target, fallback_bundle)?;
    let shim = Shim::connect(&target.address, timeout(&cli)?)?;
    let ctx = Ctx { json, target, shim };
    match cli.command {
        Command::State { id } => task::state(&ctx, id),
        Command::Create(args) => task::create(&ctx, &args),
        Command::Start { id } => task::start(&ctx, id),
        Command::Delete { exec_id } => task::delete(&ctx, exec_id),
        Command::Wait { id } => task::wait(&ctx, id),
        Command::Kill {
            all,
            exec_id,
            signal,
        } => control::kill(&ctx, all, exec_id, signal),
        Command::Pause => control::pause(&ctx),
        Command::Resume => control::resume(&ctx),
        Command::CloseStdin { id } => control::close_stdin(&ctx, &id),
        Command::Resize { id, cols, rows } => control::resize(&ctx, &id, cols, rows),
        Command::Update(args) => control::update(&ctx, &args),
        Command::Checkpoint(args) => control::checkpoint(&ctx, &args),
        Command::Pids => inspect::pids(&ctx),
        Command::Info => inspect::info(&ctx),
        Command::Exec(args) => exec::run(&ctx, &args),
        Command::Ls { .. } | Command::Spawn(_) | Command::Completions { .. } => Ok(0),
    }
}
