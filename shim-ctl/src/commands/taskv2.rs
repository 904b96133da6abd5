//! What only task v2 shims answer: stats (cgroup metrics), connect (pids and version), shutdown.

use super::Ctx;
use crate::connect::dial;
use crate::metrics::Metrics;
use crate::output::{self, key_values};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long `shutdown` watches for the shim to go away before saying it stayed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub fn stats(ctx: &Ctx) -> anyhow::Result<i32> {
    let id = ctx.container()?;
    let metrics = Metrics::decode(&ctx.shim.stats(&id)?)?;
    if ctx.json {
        output::print_json(&json!({
            "id": id, "type_url": metrics.type_url(), "metrics": metrics.to_json(),
        }))?;
        return Ok(0);
    }
    let mut rows = vec![("ID", id), ("METRICS", metrics.type_url().to_string())];
    rows.extend(metrics.summary().rows());
    output::print_text(&key_values(&rows))?;
    Ok(0)
}

pub fn connect(ctx: &Ctx) -> anyhow::Result<i32> {
    let id = ctx.container_or_empty();
    let c = ctx.shim.connect(&id)?;
    if ctx.json {
        output::print_json(&json!({
            "id": id, "shim_pid": c.shim_pid, "task_pid": c.task_pid, "version": c.version,
        }))?;
        return Ok(0);
    }
    let or_dash = |v: String| if v.is_empty() { "-".to_string() } else { v };
    output::print_text(&key_values(&[
        ("ID", or_dash(id)),
        ("SHIM PID", c.shim_pid.to_string()),
        ("TASK PID", c.task_pid.to_string()),
        ("VERSION", or_dash(c.version)),
    ]))?;
    Ok(0)
}

/// True once nothing answers at `address` any more, polled until `deadline`.
fn gone_by(address: &str, deadline: Instant) -> bool {
    loop {
        if dial(address).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shutdown(ctx: &Ctx, now: bool) -> anyhow::Result<i32> {
    let id = ctx.container_or_empty();
    let shim_pid = ctx.shim.shim_pid(&id)?;
    ctx.shim.shutdown(&id, now)?;
    let exited = gone_by(&ctx.target.dial, Instant::now() + SHUTDOWN_GRACE);
    if ctx.json {
        output::print_json(&json!({
            "id": id, "now": now, "shim_pid": shim_pid, "exited": exited,
        }))?;
    } else if exited {
        output::print_text(&format!("shim {shim_pid} exited\n"))?;
    } else {
        output::print_text(&format!(
            "shim {shim_pid} is still running (it exits once it serves no container)\n"
        ))?;
    }
    Ok(0)
}
