//! Commands that act on a running container: kill, pause, resume, close-stdin, resize, update, checkpoint.

use super::Ctx;
use crate::cli::{CheckpointArgs, UpdateArgs};
use crate::client::CheckpointParams;
use crate::error::UsageError;
use crate::ocispec::{self, ResourceFlags};
use crate::output;
use crate::signal;
use serde_json::{json, Value};
use std::io::Read;

fn done(ctx: &Ctx, text: String, value: Value) -> anyhow::Result<i32> {
    if ctx.json {
        output::print_json(&value)?;
    } else {
        output::print_text(&format!("{text}\n"))?;
    }
    Ok(0)
}

pub fn kill(ctx: &Ctx, all: bool, exec_id: Option<String>, number: u32) -> anyhow::Result<i32> {
    // An empty id means the init to a v1 shim; we send the container id when we know it.
    let p = ctx.process(None, exec_id.as_deref(), false)?;
    ctx.shim.kill(&p, number, all)?;
    let id = p.name().to_string();
    let name = signal::name(number);
    let whom = if id.is_empty() {
        "the container".to_string()
    } else {
        id.clone()
    };
    let scope = if all { " (all processes)" } else { "" };
    done(
        ctx,
        format!("sent {name} to {whom}{scope}"),
        json!({ "id": id, "signal": number, "all": all }),
    )
}

pub fn pause(ctx: &Ctx) -> anyhow::Result<i32> {
    ctx.shim.pause(&ctx.container()?)?;
    done(ctx, "paused".into(), json!({ "status": "paused" }))
}

pub fn resume(ctx: &Ctx) -> anyhow::Result<i32> {
    ctx.shim.resume(&ctx.container()?)?;
    done(ctx, "resumed".into(), json!({ "status": "running" }))
}

pub fn close_stdin(ctx: &Ctx, id: Option<String>, exec_id: Option<String>) -> anyhow::Result<i32> {
    let p = ctx.process(id.as_deref(), exec_id.as_deref(), true)?;
    ctx.shim.close_stdin(&p)?;
    let id = p.name();
    done(ctx, format!("closed stdin of {id}"), json!({ "id": id }))
}

/// `[PROCESS] COLS ROWS` as resize takes them.
fn resize_args(args: &[String]) -> anyhow::Result<(Option<&str>, u32, u32)> {
    let (process, size) = match args {
        [cols, rows] => (None, [cols, rows]),
        [process, cols, rows] => (Some(process.as_str()), [cols, rows]),
        _ => return Err(UsageError("resize takes [PROCESS] COLS ROWS".into()).into()),
    };
    let number = |what: &str, v: &String| {
        v.parse::<u32>()
            .map_err(|_| UsageError(format!("resize: {what} {v:?} is not a number")))
    };
    Ok((process, number("COLS", size[0])?, number("ROWS", size[1])?))
}

pub fn resize(ctx: &Ctx, args: &[String], exec_id: Option<String>) -> anyhow::Result<i32> {
    let (process, cols, rows) = resize_args(args)?;
    if process.is_some() && exec_id.is_some() {
        return Err(UsageError("resize: give PROCESS or --exec-id, not both".into()).into());
    }
    let p = ctx.process(process, exec_id.as_deref(), true)?;
    ctx.shim.resize(&p, cols, rows)?;
    let id = p.name();
    done(
        ctx,
        format!("resized {id} to {cols}x{rows}"),
        json!({ "id": id, "cols": cols, "rows": rows }),
    )
}

fn read_resources(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(path)
            .map_err(|e| UsageError(format!("--resources {}: {e}", path.display())))?;
    }
    ocispec::check_resources_json(&bytes).map_err(|e| UsageError(e.to_string()))?;
    Ok(bytes)
}

pub fn update(ctx: &Ctx, args: &UpdateArgs) -> anyhow::Result<i32> {
    let flags = ResourceFlags {
        memory: args.memory,
        cpu_shares: args.cpu_shares,
        cpu_quota: args.cpu_quota,
        cpu_period: args.cpu_period,
        pids_limit: args.pids_limit,
    };
    let resources = match &args.resources {
        Some(path) => read_resources(path)?,
        None if flags.is_empty() => {
            return Err(UsageError("update: give at least one limit or --resources".into()).into())
        }
        None => ocispec::linux_resources(&flags),
    };
    let value: Value = serde_json::from_slice(&resources)?;
    ctx.shim.update(&ctx.container()?, resources)?;
    done(
        ctx,
        format!("updated: {value}"),
        json!({ "resources": value }),
    )
}

pub fn checkpoint(ctx: &Ctx, args: &CheckpointArgs) -> anyhow::Result<i32> {
    let params = CheckpointParams {
        exit: args.exit,
        open_tcp: args.tcp,
        external_unix_sockets: args.unix_sockets,
        terminal: args.terminal,
        file_locks: args.file_locks,
        work_path: args.work_path.clone().unwrap_or_default(),
    };
    ctx.shim
        .checkpoint(&ctx.container()?, &args.path, &params)?;
    done(
        ctx,
        format!("checkpointed to {}", args.path),
        json!({ "path": args.path, "exit": args.exit }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resize_takes_an_optional_process_before_the_size() {
        let two = strings(&["120", "40"]);
        assert_eq!(resize_args(&two).unwrap(), (None, 120, 40));
        let three = strings(&["web", "80", "24"]);
        assert_eq!(resize_args(&three).unwrap(), (Some("web"), 80, 24));
        let bad = strings(&["120", "wide"]);
        let err = resize_args(&bad).unwrap_err();
        assert_eq!(err.to_string(), "resize: ROWS \"wide\" is not a number");
    }
}
