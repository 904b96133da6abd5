//! `exec`: run a process in the container with our stdio attached through fifos, then delete it.

use super::Ctx;
use crate::cli::ExecArgs;
use crate::client::{ExecParams, Exit, Proc, Shim};
use crate::error::UsageError;
use crate::ocispec::{self, ExecOverrides};
use crate::output::rfc3339_utc;
use crate::procfs;
use crate::stdio::{self, Copier, FifoDir, Sink};
use crate::tty::{self, RawMode, SignalWatcher};
use anyhow::Context as _;
use nix::sys::signal::Signal;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long output copiers may keep draining after the process exited (Go's shim waits as long).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// The fifos of one exec and our open ends of them.
struct Fifos {
    _dir: FifoDir,
    /// Opened only once the process started, by its copier (`stdio::Sink::Fifo`).
    stdin: Option<PathBuf>,
    stdout: (PathBuf, std::fs::File),
    stderr: Option<(PathBuf, std::fs::File)>,
}

fn make_fifos(interactive: bool, tty: bool) -> anyhow::Result<Fifos> {
    let dir = FifoDir::new().context("creating fifo dir")?;
    let stdin = if interactive {
        Some(dir.mkfifo("stdin")?)
    } else {
        None
    };
    let out = dir.mkfifo("stdout")?;
    let stdout = (out.clone(), stdio::open_output_fifo(&out)?);
    let stderr = if tty {
        None
    } else {
        let p = dir.mkfifo("stderr")?;
        let f = stdio::open_output_fifo(&p)?;
        Some((p, f))
    };
    Ok(Fifos {
        _dir: dir,
        stdin,
        stdout,
        stderr,
    })
}

/// The size of our terminal (stdout's, else stdin's).
fn local_size() -> Option<(u32, u32)> {
    tty::size(std::io::stdout().as_fd()).or_else(|| tty::size(std::io::stdin().as_fd()))
}

/// A fifo's path as the shim opens it: through our own `/proc/<pid>/root` when the shim lives in
/// another mount namespace (one that may not have our /tmp).
fn fifo_path(ctx: &Ctx, p: Option<&Path>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let p = match ctx.target.shim_root {
        Some(_) => procfs::under(Some(&procfs::root_of(std::process::id())), p),
        None => p.to_path_buf(),
    };
    p.to_string_lossy().into_owned()
}

pub fn run(ctx: &Ctx, args: &ExecArgs) -> anyhow::Result<i32> {
    let bundle = match &ctx.target.bundle {
        Some(b) if b.join("config.json").is_file() => b.clone(),
        _ => ctx.target.local(Path::new(
            &ctx.shim.state(&ctx.process(None, None, true)?)?.bundle,
        )),
    };
    let config_path = bundle.join("config.json");
    let config = std::fs::read(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let overrides = ExecOverrides {
        args: args.command.clone(),
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        user: args.user.clone(),
        terminal: args.tty,
        console_size: args.tty.then(local_size).flatten(),
    };
    let spec_json = match ocispec::exec_process(&config, &overrides) {
        Ok(s) => s,
        Err(e @ (ocispec::SpecError::User(_) | ocispec::SpecError::Env(_))) => {
            return Err(UsageError(e.to_string()).into())
        }
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e).into()),
    };
    let exec_id = args
        .exec_id
        .clone()
        .unwrap_or_else(|| format!("shim-ctl-{}", std::process::id()));
    let process = Proc::exec(&ctx.container()?, &exec_id);
    let fifos = make_fifos(args.interactive, args.tty)?;
    ctx.shim.exec(
        &process,
        &ExecParams {
            terminal: args.tty,
            stdin: fifo_path(ctx, fifos.stdin.as_deref()),
            stdout: fifo_path(ctx, Some(&fifos.stdout.0)),
            stderr: fifo_path(ctx, fifos.stderr.as_ref().map(|(p, _)| p.as_path())),
            spec_json,
        },
    )?;
    let outcome = attach_and_run(&ctx.shim, &process, args.tty, fifos);
    let deleted = ctx.shim.delete(&process);
    let exit = outcome?;
    if let Err(e) = deleted {
        eprintln!("shim-ctl: warning: deleting exec {exec_id}: {e}");
    }
    if ctx.json {
        let report = serde_json::json!({
            "exec_id": exec_id, "pid": exit.pid, "exit_status": exit.exit_status,
            "exited_at": rfc3339_utc(exit.exited_at),
        });
        let _ = writeln!(std::io::stderr(), "{report}");
    }
    Ok(i32::try_from(exit.exit_status.min(255)).unwrap_or(255))
}

/// Copies stdio, starts the exec, follows window size and signals, waits for the exit.
fn attach_and_run(shim: &Shim, process: &Proc, tty: bool, fifos: Fifos) -> anyhow::Result<Exit> {
    let mut outputs = vec![Copier::spawn(
        "stdout",
        fifos.stdout.1,
        Sink::File(stdio::dup_std(std::io::stdout().as_fd())?),
        None,
    )?];
    if let Some((_, f)) = fifos.stderr {
        outputs.push(Copier::spawn(
            "stderr",
            f,
            Sink::File(stdio::dup_std(std::io::stderr().as_fd())?),
            None,
        )?);
    }
    let local_tty = tty && tty::is_tty(std::io::stdin().as_fd());
    let raw = if local_tty {
        Some(RawMode::enable(std::io::stdin().as_fd())?)
    } else {
        None
    };
    let watcher = {
        let shim = shim.clone();
        let p = process.clone();
        SignalWatcher::spawn(&tty::exec_signals(), move |sig| {
            if sig == Signal::SIGWINCH {
                if let Some((cols, rows)) = tty.then(local_size).flatten() {
                    let _ = shim.resize(&p, cols, rows);
                }
            } else {
                let _ = shim.kill(&p, sig as u32, false);
            }
        })?
    };
    let started = shim.start(process);
    let result = started.map_err(anyhow::Error::from).and_then(|pid| {
        if tty {
            // The first resize goes through the signal watcher too, as a window change of our
            // own: it reads the size when it handles it, in order with real SIGWINCHes. Sent
            // from here, a size read before a resize of the terminal could land after the
            // watcher's newer one and undo it.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), Signal::SIGWINCH);
        }
        let input = match fifos.stdin {
            Some(fifo) => {
                let shim = shim.clone();
                let p = process.clone();
                let on_eof: Box<dyn FnOnce() + Send> = Box::new(move || {
                    let _ = shim.close_stdin(&p);
                });
                Some(Copier::spawn(
                    "stdin",
                    stdio::dup_std(std::io::stdin().as_fd())?,
                    Sink::Fifo(fifo),
                    Some(on_eof),
                )?)
            }
            None => None,
        };
        let exit = shim.wait(process);
        if let Some(input) = input {
            let _ = input.stop();
        }
        let exit = exit?;
        Ok(Exit { pid, ..exit })
    });
    // Let the outputs drain what the process wrote before it exited, then stop them.
    let deadline = Instant::now()
        + if result.is_ok() {
            OUTPUT_GRACE
        } else {
            Duration::ZERO
        };
    for copier in outputs {
        copier.wait_until(deadline);
        let _ = copier.stop();
    }
    drop(watcher);
    drop(raw);
    result
}
