//! Lifecycle commands: create, start, state, wait, delete.

use super::Ctx;
use crate::cli::CreateArgs;
use crate::client::{CreateParams, Exit};
use crate::error::UsageError;
use crate::output::{self, exit_description, key_values, local_time, rfc3339_utc, status_name};
use serde_json::json;

/// `exited 3 at 2024-…` (time left out when unknown).
fn exit_text(exit: &Exit) -> String {
    match exit.exited_at {
        Some(_) => format!(
            "{} at {}",
            exit_description(exit.exit_status),
            local_time(exit.exited_at)
        ),
        None => exit_description(exit.exit_status),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

pub fn state(ctx: &Ctx, id: Option<String>) -> anyhow::Result<i32> {
    let id = ctx.target.id_or(id.as_ref())?;
    let s = ctx.shim.state(&id)?;
    let status = status_name(s.status);
    if ctx.json {
        output::print_json(&json!({
            "id": s.id, "bundle": s.bundle, "pid": s.pid, "status": status,
            "stdin": s.stdin, "stdout": s.stdout, "stderr": s.stderr, "terminal": s.terminal,
            "exit_status": s.exit_status, "exited_at": rfc3339_utc(s.exited_at),
        }))?;
        return Ok(0);
    }
    let exit = if status == "stopped" {
        exit_text(&Exit {
            pid: s.pid,
            exit_status: s.exit_status,
            exited_at: s.exited_at,
        })
    } else {
        "-".to_string()
    };
    output::print_text(&key_values(&[
        ("ID", s.id.clone()),
        ("BUNDLE", s.bundle.clone()),
        ("PID", s.pid.to_string()),
        ("STATUS", status.to_string()),
        ("TERMINAL", s.terminal.to_string()),
        ("STDIN", or_dash(&s.stdin)),
        ("STDOUT", or_dash(&s.stdout)),
        ("STDERR", or_dash(&s.stderr)),
        ("EXIT", exit),
    ]))?;
    Ok(0)
}

pub fn create(ctx: &Ctx, args: &CreateArgs) -> anyhow::Result<i32> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| UsageError(format!("bundle {}: {e}", args.bundle.display())))?;
    let id = match &args.id {
        Some(id) => id.clone(),
        None => bundle
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                UsageError("cannot name the container after the bundle: use --id".into())
            })?,
    };
    let params = CreateParams {
        id: id.clone(),
        bundle: bundle.to_string_lossy().into_owned(),
        runtime: args.runtime.clone(),
        terminal: args.terminal,
        stdin: args.stdin.clone().unwrap_or_default(),
        stdout: args.stdout.clone().unwrap_or_default(),
        stderr: args.stderr.clone().unwrap_or_default(),
    };
    let pid = ctx.shim.create(&params)?;
    if ctx.json {
        output::print_json(&json!({ "id": id, "pid": pid }))?;
    } else {
        output::print_text(&format!("created {id}: pid {pid}\n"))?;
    }
    Ok(0)
}

pub fn start(ctx: &Ctx, id: Option<String>) -> anyhow::Result<i32> {
    let id = ctx.target.id_or(id.as_ref())?;
    let pid = ctx.shim.start(&id)?;
    if ctx.json {
        output::print_json(&json!({ "id": id, "pid": pid }))?;
    } else {
        output::print_text(&format!("started {id}: pid {pid}\n"))?;
    }
    Ok(0)
}

pub fn delete(ctx: &Ctx, exec_id: Option<String>) -> anyhow::Result<i32> {
    let (id, exit) = match exec_id {
        Some(exec_id) => {
            let exit = ctx.shim.delete_process(&exec_id)?;
            (exec_id, exit)
        }
        None => {
            let exit = ctx.shim.delete()?;
            (ctx.target.container_id.clone().unwrap_or_default(), exit)
        }
    };
    if ctx.json {
        output::print_json(&json!({
            "id": id, "pid": exit.pid, "exit_status": exit.exit_status, "exited_at": rfc3339_utc(exit.exited_at),
        }))?;
    } else {
        let name = if id.is_empty() {
            "container".to_string()
        } else {
            id
        };
        output::print_text(&format!(
            "deleted {name}: pid {}, {}\n",
            exit.pid,
            exit_text(&exit)
        ))?;
    }
    Ok(0)
}

pub fn wait(ctx: &Ctx, id: Option<String>) -> anyhow::Result<i32> {
    let id = ctx.target.id_or(id.as_ref())?;
    let exit = ctx.shim.wait(&id)?;
    if ctx.json {
        output::print_json(&json!({
            "id": id, "exit_status": exit.exit_status, "exited_at": rfc3339_utc(exit.exited_at),
        }))?;
    } else {
        output::print_text(&format!("{id}: {}\n", exit_text(&exit)))?;
    }
    Ok(0)
}
