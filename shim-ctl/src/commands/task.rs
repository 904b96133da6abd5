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

pub fn state(ctx: &Ctx, id: Option<String>, exec_id: Option<String>) -> anyhow::Result<i32> {
    let p = ctx.process(id.as_deref(), exec_id.as_deref(), true)?;
    let s = ctx.shim.state(&p)?;
    let status = status_name(s.status);
    if ctx.json {
        output::print_json(&json!({
            "id": s.id, "exec_id": p.exec, "bundle": s.bundle, "pid": s.pid, "status": status,
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
    let mut rows = vec![("ID", s.id.clone())];
    if let Some(exec) = &p.exec {
        rows.push(("EXEC ID", exec.clone()));
    }
    rows.extend([
        ("BUNDLE", s.bundle.clone()),
        ("PID", s.pid.to_string()),
        ("STATUS", status.to_string()),
        ("TERMINAL", s.terminal.to_string()),
        ("STDIN", or_dash(&s.stdin)),
        ("STDOUT", or_dash(&s.stdout)),
        ("STDERR", or_dash(&s.stderr)),
        ("EXIT", exit),
    ]);
    output::print_text(&key_values(&rows))?;
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

pub fn start(ctx: &Ctx, id: Option<String>, exec_id: Option<String>) -> anyhow::Result<i32> {
    let p = ctx.process(id.as_deref(), exec_id.as_deref(), true)?;
    let pid = ctx.shim.start(&p)?;
    let id = p.name();
    if ctx.json {
        output::print_json(&json!({ "id": id, "pid": pid }))?;
    } else {
        output::print_text(&format!("started {id}: pid {pid}\n"))?;
    }
    Ok(0)
}

pub fn delete(ctx: &Ctx, exec_id: Option<String>) -> anyhow::Result<i32> {
    let p = ctx.process(None, exec_id.as_deref(), false)?;
    let exit = ctx.shim.delete(&p)?;
    let id = p.name().to_string();
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

pub fn wait(ctx: &Ctx, id: Option<String>, exec_id: Option<String>) -> anyhow::Result<i32> {
    let p = ctx.process(id.as_deref(), exec_id.as_deref(), true)?;
    let exit = ctx.shim.wait(&p)?;
    let id = p.name();
    if ctx.json {
        output::print_json(&json!({
            "id": id, "exit_status": exit.exit_status, "exited_at": rfc3339_utc(exit.exited_at),
        }))?;
    } else {
        output::print_text(&format!("{id}: {}\n", exit_text(&exit)))?;
    }
    Ok(0)
}
