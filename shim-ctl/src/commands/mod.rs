//! Dispatch: resolve the target, connect, and run one command group; returns the exit status.

mod control;
mod exec;
mod inspect;
mod task;
mod taskv2;

use crate::cli::{Cli, Command};
use crate::client::{Proc, Protocol, Shim};
use crate::connect::{self, Resolved};
use crate::error::UsageError;
use std::path::PathBuf;
use std::time::Duration;

/// What every command that talks to a shim gets.
pub struct Ctx {
    pub json: bool,
    pub target: Resolved,
    pub shim: Shim,
}

impl Ctx {
    /// The container id, as `--id` or the bundle's name gives it. A v1 shim serves one container
    /// and takes an empty id for it; a task v2 shim needs the id.
    pub fn container(&self) -> anyhow::Result<String> {
        match (&self.target.container_id, self.shim.protocol()) {
            (Some(id), _) => Ok(id.clone()),
            (None, Protocol::V1) => Ok(String::new()),
            (None, Protocol::V2) => Err(UsageError(
                "container id unknown: a task v2 shim names every process by its container: \
                 use --id or --bundle"
                    .into(),
            )
            .into()),
        }
    }

    /// The container id, or `""` when unknown (for calls any shim answers without it).
    pub fn container_or_empty(&self) -> String {
        self.target.container_id.clone().unwrap_or_default()
    }

    /// The process that `--exec-id` or a PROCESS argument names, else the container's init.
    /// PROCESS is a process id as v1 shims know it: the container id (the init) or an exec id.
    /// `init_needs_id`: the init must be named by its container id even to a v1 shim.
    pub fn process(
        &self,
        process: Option<&str>,
        exec_id: Option<&str>,
        init_needs_id: bool,
    ) -> anyhow::Result<Proc> {
        let known = self.target.container_id.as_deref();
        match (exec_id.or(process), known) {
            (Some(p), Some(c)) if p == c && exec_id.is_none() => Ok(Proc::init(c)),
            (Some(exec), _) => Ok(Proc::exec(&self.container()?, exec)),
            (None, Some(c)) => Ok(Proc::init(c)),
            (None, None) if init_needs_id && self.shim.protocol() == Protocol::V1 => {
                Err(UsageError(
                    "container id unknown: pass it as an argument, or use --id or --bundle".into(),
                )
                .into())
            }
            (None, None) => Ok(Proc::init(&self.container()?)),
        }
    }
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
            let root = state_root.as_ref().or(cli.target.state_root.as_ref());
            return crate::ls::run(root.map(PathBuf::as_path), json, timeout(&cli)?, *processes);
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
    let shim = Shim::connect(&target.dial, target.protocol, timeout(&cli)?)?;
    let ctx = Ctx { json, target, shim };
    match cli.command {
        Command::State { id, exec_id } => task::state(&ctx, id, exec_id),
        Command::Create(args) => task::create(&ctx, &args),
        Command::Start { id, exec_id } => task::start(&ctx, id, exec_id),
        Command::Delete { exec_id } => task::delete(&ctx, exec_id),
        Command::Wait { id, exec_id } => task::wait(&ctx, id, exec_id),
        Command::Kill {
            all,
            exec_id,
            signal,
        } => control::kill(&ctx, all, exec_id, signal),
        Command::Pause => control::pause(&ctx),
        Command::Resume => control::resume(&ctx),
        Command::CloseStdin { id, exec_id } => control::close_stdin(&ctx, id, exec_id),
        Command::Resize { args, exec_id } => control::resize(&ctx, &args, exec_id),
        Command::Update(args) => control::update(&ctx, &args),
        Command::Checkpoint(args) => control::checkpoint(&ctx, &args),
        Command::Pids => inspect::pids(&ctx),
        Command::Info => inspect::info(&ctx),
        Command::Stats => taskv2::stats(&ctx),
        Command::Connect => taskv2::connect(&ctx),
        Command::Shutdown { now } => taskv2::shutdown(&ctx, now),
        Command::Exec(args) => exec::run(&ctx, &args),
        Command::Ls { .. } | Command::Spawn(_) | Command::Completions { .. } => Ok(0),
    }
}
