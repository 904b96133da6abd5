//! Read-only inspection: pids (runc ps with exec ids) and info (the shim's pid).

use super::Ctx;
use crate::output::{self, Table};
use serde_json::json;

pub fn pids(ctx: &Ctx) -> anyhow::Result<i32> {
    let entries = ctx.shim.pids(&ctx.container()?)?;
    if ctx.json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| json!({ "pid": e.pid, "exec_id": e.exec_id }))
            .collect();
        output::print_json(&list)?;
        return Ok(0);
    }
    let mut table = Table::new(&["PID", "EXEC ID"]);
    for e in &entries {
        table.row(vec![
            e.pid.to_string(),
            e.exec_id.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    output::print_text(&table.render())?;
    Ok(0)
}

pub fn info(ctx: &Ctx) -> anyhow::Result<i32> {
    let pid = ctx.shim.shim_pid(&ctx.container_or_empty())?;
    if ctx.json {
        output::print_json(&json!({ "shim_pid": pid, "address": ctx.target.address }))?;
    } else {
        output::print_text(&output::key_values(&[
            ("ADDRESS", ctx.target.address.clone()),
            ("SHIM PID", pid.to_string()),
        ]))?;
    }
    Ok(0)
}
