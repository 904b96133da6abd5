//! `cargo xtask bench [--quick]`: time our shim against the Go containerd-shim.
//!
//! Each runs behind a private containerd, interleaved run by run; one table on stdout and the
//! same as JSON.

mod containerd;
mod cpu;
mod measure;
mod stats;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::run::{cargo, step, target_dir, which};
use containerd::Containerd;
use measure::Series;
use stats::{median, p90};

const GO_SHIM: &str = "/usr/bin/containerd-shim";
const BUSYBOX: &str = "/usr/bin/busybox";
const MIB: u64 = 1 << 20;

/// How much of everything: the full run or `--quick`.
struct Plan {
    quick: bool,
    idle: usize,
    runs: usize,
    io_bytes: u64,
    io_runs: usize,
    burst: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                idle: 5,
                runs: 5,
                io_bytes: 128 * MIB,
                io_runs: 1,
                burst: 5,
            }
        } else {
            Plan {
                quick,
                idle: 20,
                runs: 30,
                io_bytes: 1024 * MIB,
                io_runs: 3,
                burst: 20,
            }
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// True once SIGINT or SIGTERM arrived: measurements stop and everything is cleaned up.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One figure for both shims.
struct Row {
    figure: String,
    unit: &'static str,
    ours: f64,
    go: f64,
}

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let quick = match args {
        [] => false,
        [q] if q == "--quick" => true,
        _ => bail!("usage: cargo xtask bench [--quick]"),
    };
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench needs root (private mount namespaces, cgroups, runc)");
    }
    for tool in ["containerd", "ctr", "runc", "nsenter", "unshare", "timeout"] {
        which(tool).with_context(|| format!("{tool} not found on PATH"))?;
    }
    for f in [GO_SHIM, BUSYBOX] {
        if !Path::new(f).is_file() {
            bail!("{f} is missing");
        }
    }
    step(
        "build shim-runc-v1 (release)",
        cargo().args(["build", "--release", "-p", "shim-runc-v1"]),
    )?;
    let ours = target_dir().join("release/shim-runc-v1");
    // Shims outlive a killed containerd: adopt and reap them.
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    }
    // A Ctrl-C stops the bench between runs instead of killing it before its cleanup.
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let plan = Plan::new(quick);
    let result = bench(&plan, &ours);
    reap_orphans();
    let (rows, extra) = result?;
    print_table(&plan, &rows, &extra);
    let out = target_dir().join("bench/latest.json");
    fs::create_dir_all(out.parent().unwrap_or(Path::new(".")))?;
    fs::write(
        &out,
        serde_json::to_vec_pretty(&to_json(&plan, &rows, &extra))?,
    )
    .with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// Figures that are not a per-shim comparison: the bare runc baseline and where CPU comes from.
struct Extra {
    cpu_source: &'static str,
    bare_wall: Vec<f64>,
    bare_cpu: Vec<f64>,
    start: Vec<Series>,
    exec: Vec<Series>,
}

fn bench(plan: &Plan, ours: &Path) -> Result<(Vec<Row>, Extra)> {
    let tmp = TempDir(std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id())));
    let _ = fs::remove_dir_all(&tmp.0);
    let rootfs = tmp.0.join("rootfs");
    busybox_rootfs(&rootfs)?;
    let cds = vec![
        Containerd::start("ours", ours, &tmp.0)?,
        Containerd::start("go", Path::new(GO_SHIM), &tmp.0)?,
    ];
    let cpu_source = cds[0].meter.source();
    let mut rows = Vec::new();
    let mut row = |figure: String, unit, v: [f64; 2]| {
        rows.push(Row {
            figure,
            unit,
            ours: v[0],
            go: v[1],
        });
    };
    let pair = |s: &[Series], f: &dyn Fn(&Series) -> f64| [f(&s[0]), f(&s[1])];

    println!(
        "==> start: {} runs per shim, with bare runc beside",
        plan.runs
    );
    let bundle = measure::bare_bundle(&tmp.0, &rootfs)?;
    let mut start = vec![Series::default(), Series::default()];
    let (mut bare_wall, mut bare_cpu) = (Vec::new(), Vec::new());
    for i in 0..plan.runs {
        measure::once(&cds, i, |cd, i| measure::start(cd, &rootfs, i), &mut start)?;
        let (w, c) = measure::bare_runc(&tmp.0, &bundle, i)?;
        bare_wall.push(w);
        bare_cpu.push(c);
    }
    row(
        "start median".into(),
        "ms",
        pair(&start, &|s| median(&s.value)),
    );
    row("start p90".into(), "ms", pair(&start, &|s| p90(&s.value)));
    row(
        "start CPU median".into(),
        "ms",
        pair(&start, &|s| median(&s.cpu_ms)),
    );
    let bare = median(&bare_wall);
    row(
        "shim overhead (start - bare runc run)".into(),
        "ms",
        pair(&start, &|s| median(&s.value) - bare),
    );

    println!("==> idle: {} containers per shim", plan.idle);
    let idle_id = |k: usize| format!("idle-{k}");
    measure::interleaved(&cds, plan.idle, |cd, k| {
        measure::idle(cd, &rootfs, &idle_id(k)).map(|()| 0.0)
    })?;

    println!("==> exec: {} runs per shim", plan.runs);
    let exec = measure::interleaved(&cds, plan.runs, |cd, i| measure::exec(cd, &idle_id(0), i))?;
    row(
        "exec median".into(),
        "ms",
        pair(&exec, &|s| median(&s.value)),
    );
    row("exec p90".into(), "ms", pair(&exec, &|s| p90(&s.value)));
    row(
        "exec CPU median".into(),
        "ms",
        pair(&exec, &|s| median(&s.cpu_ms)),
    );

    println!(
        "==> IO: {} MiB to stdout, {} run(s) per shim",
        plan.io_bytes / MIB,
        plan.io_runs
    );
    let mut io_shim_cpu = [Vec::new(), Vec::new()];
    let io = measure::interleaved(&cds, plan.io_runs, |cd, i| {
        let (mibs, shim_cpu) = measure::io(cd, &rootfs, i, plan.io_bytes)?;
        io_shim_cpu[usize::from(cd.name != "ours")].push(shim_cpu);
        Ok(mibs)
    })?;
    let mib = plan.io_bytes / MIB;
    let gib = plan.io_bytes as f64 / (1u64 << 30) as f64;
    row(
        format!("IO {mib} MiB stdout median"),
        "MiB/s",
        pair(&io, &|s| median(&s.value)),
    );
    row(
        format!("IO {mib} MiB CPU median"),
        "ms",
        pair(&io, &|s| median(&s.cpu_ms)),
    );
    row(
        "IO shim CPU per GiB median".into(),
        "ms",
        [median(&io_shim_cpu[0]) / gib, median(&io_shim_cpu[1]) / gib],
    );

    // Sampled now, long after they started: every shim has settled into idle (no RPC for tens
    // of seconds; idle-0 took the execs).
    println!("==> memory of the idle containers");
    let mut mem = [[0.0; 3]; 2];
    for (cd, m) in cds.iter().zip(&mut mem) {
        let (mut pss, mut rss, mut thr) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..plan.idle {
            let (p, r, t) = measure::memory(cd, &idle_id(k))?;
            pss.push(p);
            rss.push(r);
            thr.push(t);
        }
        *m = [median(&pss), median(&rss), median(&thr)];
    }
    row("shim PSS median".into(), "KiB", [mem[0][0], mem[1][0]]);
    row("shim RSS median".into(), "KiB", [mem[0][1], mem[1][1]]);
    row("shim threads median".into(), "", [mem[0][2], mem[1][2]]);

    println!("==> burst: {} concurrent ctr run -d per shim", plan.burst);
    let burst = measure::interleaved(&cds, 1, |cd, _| measure::burst(cd, &rootfs, plan.burst))?;
    row(
        format!("burst of {}: all running", plan.burst),
        "ms",
        pair(&burst, &|s| s.value[0]),
    );
    row(
        format!("burst of {}: CPU", plan.burst),
        "ms",
        pair(&burst, &|s| s.cpu_ms[0]),
    );

    println!("==> cleanup");
    drop(cds);
    let extra = Extra {
        cpu_source,
        bare_wall,
        bare_cpu,
        start,
        exec,
    };
    Ok((rows, extra))
}

/// `<dir>/bin/busybox` with the applets the bench runs.
fn busybox_rootfs(dir: &Path) -> Result<()> {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("mkdir {}", bin.display()))?;
    fs::copy(BUSYBOX, bin.join("busybox")).context("copy busybox")?;
    for applet in ["sh", "true", "sleep", "head", "cat"] {
        symlink("busybox", bin.join(applet))?;
    }
    // runc mounts /proc, /dev, /sys there; ctr's spec wants them to exist or creates them.
    for d in ["proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(dir.join(d))?;
    }
    Ok(())
}

/// Reaps every exited orphan we adopted as subreaper (none of our own children remain).
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes to a live local.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

fn ratio(r: &Row) -> f64 {
    r.ours / r.go
}

fn print_table(plan: &Plan, rows: &[Row], extra: &Extra) {
    let w = rows.iter().map(|r| r.figure.len()).max().unwrap_or(0);
    println!(
        "\nshim-runc-v1 (ours) vs containerd-shim (Go){}",
        if plan.quick { ", --quick" } else { "" }
    );
    println!(
        "{:<w$}  {:<5}  {:>10}  {:>10}  {:>7}",
        "figure", "unit", "ours", "go", "ours/go"
    );
    println!("{}", "-".repeat(w + 40));
    for r in rows {
        println!(
            "{:<w$}  {:<5}  {:>10.1}  {:>10.1}  {:>7.2}",
            r.figure,
            r.unit,
            r.ours,
            r.go,
            ratio(r)
        );
    }
    println!(
        "bare runc run (same bundle, /bin/true): median {:.1} ms, p90 {:.1} ms, CPU median {:.1} ms",
        median(&extra.bare_wall),
        p90(&extra.bare_wall),
        median(&extra.bare_cpu)
    );
    println!("CPU: {}", extra.cpu_source);
    println!(
        "IO shim CPU: the shim process's own user+system time until the stream's last byte (/proc/PID/stat)"
    );
    println!(
        "shim overhead: the start median minus bare runc run; besides the shim it holds ctr, \
         containerd, and runc started three times (create, start, delete) instead of once"
    );
}

fn to_json(plan: &Plan, rows: &[Row], extra: &Extra) -> serde_json::Value {
    let series = |s: &[Series]| {
        json!({
            "ours": {"wall_ms": s[0].value, "cpu_ms": s[0].cpu_ms},
            "go": {"wall_ms": s[1].value, "cpu_ms": s[1].cpu_ms},
        })
    };
    json!({
        "quick": plan.quick,
        "plan": {
            "idle_containers": plan.idle,
            "runs": plan.runs,
            "io_bytes": plan.io_bytes,
            "io_runs": plan.io_runs,
            "burst": plan.burst,
        },
        "cpu_source": extra.cpu_source,
        "rows": rows.iter().map(|r| json!({
            "figure": r.figure,
            "unit": r.unit,
            "ours": r.ours,
            "go": r.go,
            "ratio": ratio(r),
        })).collect::<Vec<_>>(),
        "bare_runc": {
            "median_ms": median(&extra.bare_wall),
            "p90_ms": p90(&extra.bare_wall),
            "cpu_median_ms": median(&extra.bare_cpu),
            "wall_ms": extra.bare_wall,
        },
        "samples": {"start": series(&extra.start), "exec": series(&extra.exec)},
    })
}
