//! `cargo xtask bench --scale [--v2]`: what 10, 50 and 200 idle containers cost per shim kind,
//! each container with a shim of its own (v2: no grouping annotation).
//!
//! Both containerds grow together from zero, a chunk of containers at a time, ours and Go's in
//! turn: the CPU to reach all-running at a size is what each containerd's group (containerd,
//! shims, runc) used during its own chunks up to that size, and memory is summed over every shim
//! once the size is reached and the last ones have settled.

use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::measure::{self, Series, Usage};
use super::{Outcome, Pair, Plan, Rows};

const SIZES: &[usize] = &[10, 50, 200];
const QUICK_SIZES: &[usize] = &[5, 10];
/// Containers one containerd starts before the other's turn.
const CHUNK: usize = 10;
const QUICK_CHUNK: usize = 5;
/// Pause between the last start and the memory sample: the newest shims settle into idle.
const SETTLE: Duration = Duration::from_secs(5);
const QUICK_SETTLE: Duration = Duration::from_secs(1);

fn id(j: usize) -> String {
    format!("scale-{j}")
}

/// `own`: the sizes `--sizes` asked for, instead of `SIZES` (or `QUICK_SIZES`).
pub fn bench(
    plan: &Plan,
    own: Option<&[usize]>,
    pair: &Pair,
    dir: &Path,
    rootfs: &Path,
) -> Result<Outcome> {
    let (sizes, chunk, settle) = if plan.quick {
        (QUICK_SIZES, QUICK_CHUNK, QUICK_SETTLE)
    } else {
        (SIZES, CHUNK, SETTLE)
    };
    let sizes = own.unwrap_or(sizes);
    let cds = pair.start(dir)?;
    let cpu_source = cds[0].meter.source();
    let mut rows = Rows(Vec::new());
    // One sample per chunk: its wall ms and the CPU ms its containerd's group used meanwhile.
    let mut chunks = vec![Series::default(), Series::default()];
    let mut points = Vec::new();
    let mut running = 0;
    for &n in sizes {
        println!(
            "==> scale: {running} -> {n} idle containers per shim kind, {chunk} at a time, interleaved"
        );
        while running < n {
            let k = chunk.min(n - running);
            let from = running;
            measure::once(
                &cds,
                chunks[0].value.len(),
                |cd, _| {
                    measure::timed(|| {
                        (from..from + k).try_for_each(|j| measure::idle(cd, rootfs, &id(j), &[]))
                    })
                },
                &mut chunks,
            )?;
            running += k;
        }
        thread::sleep(settle);
        let mut shims = [0.0; 2];
        let mut usage = [Usage::default(); 2];
        let mut containerd = [Usage::default(); 2];
        for (x, cd) in cds.iter().enumerate() {
            let mut pids = (0..n)
                .map(|j| cd.shim_pid(&id(j)))
                .collect::<Result<Vec<_>>>()?;
            pids.sort_unstable();
            pids.dedup();
            shims[x] = pids.len() as f64;
            usage[x] = measure::sum_memory(&pids)?;
            containerd[x] = measure::memory(cd.pid())?;
        }
        let sum = |s: &Series, f: fn(&Series) -> &Vec<f64>| f(s).iter().sum::<f64>();
        let cpu = [
            sum(&chunks[0], |s| &s.cpu_ms),
            sum(&chunks[1], |s| &s.cpu_ms),
        ];
        let wall = [sum(&chunks[0], |s| &s.value), sum(&chunks[1], |s| &s.value)];
        let per = |v: [f64; 2]| v.map(|x| x / n as f64);
        let kib_to_mib = |v: [f64; 2]| v.map(|x| x / 1024.0);
        let pss = [usage[0].pss, usage[1].pss];
        rows.add(format!("{n}: shims"), "", shims);
        rows.add(format!("{n}: shim PSS total"), "MiB", kib_to_mib(pss));
        rows.add(format!("{n}: shim PSS per container"), "KiB", per(pss));
        rows.add(
            format!("{n}: shim RSS total"),
            "MiB",
            kib_to_mib([usage[0].rss, usage[1].rss]),
        );
        rows.add(
            format!("{n}: shim threads total"),
            "",
            [usage[0].threads, usage[1].threads],
        );
        rows.add(format!("{n}: CPU to all running"), "ms", cpu);
        rows.add(format!("{n}: CPU per container"), "ms", per(cpu));
        rows.add(
            format!("{n}: wall to all running"),
            "s",
            wall.map(|w| w / 1e3),
        );
        rows.add(
            format!("{n}: containerd RSS"),
            "MiB",
            kib_to_mib([containerd[0].rss, containerd[1].rss]),
        );
        let point = |x: usize| {
            json!({
                "shims": shims[x],
                "shim_pss_kib": usage[x].pss,
                "shim_rss_kib": usage[x].rss,
                "shim_threads": usage[x].threads,
                "cpu_ms": cpu[x],
                "wall_ms": wall[x],
                "containerd_pss_kib": containerd[x].pss,
                "containerd_rss_kib": containerd[x].rss,
            })
        };
        points.push(json!({"containers": n, "ours": point(0), "go": point(1)}));
    }

    println!("==> cleanup ({running} containers per shim kind)");
    drop(cds);
    let mut title = format!("{}: idle containers at scale", pair.title());
    if own.is_some() {
        title.push_str(&format!(", --sizes {sizes:?}"));
    } else if plan.quick {
        title.push_str(&format!(", --quick (sizes {sizes:?} instead of {SIZES:?})"));
    }
    let notes = vec![
        format!("containerd: {}", pair.containerd_version),
        format!(
            "each size: both containerds grew from the last size {chunk} containers at a time, \
             ours and Go's in turn; one shim per container"
        ),
        format!(
            "CPU to all running: {cpu_source}, summed over the kind's own chunks of `ctr run -d` \
             from zero containers (ctr itself not counted)"
        ),
        format!(
            "shim PSS/RSS/threads: summed over every shim of the kind, {} s after the size was \
             reached; PSS shares each binary's pages among its shims",
            settle.as_secs()
        ),
    ];
    let json = json!({
        "plan": {"sizes": sizes, "chunk": chunk, "settle_s": settle.as_secs()},
        "shims": {"ours": pair.ours, "go": pair.go},
        "cpu_source": cpu_source,
        "points": points,
        "samples": {"chunks": super::series_json(&chunks)},
    });
    Ok(Outcome {
        title,
        rows: rows.0,
        notes,
        json,
    })
}
