//! `cargo xtask bench [--quick] [--v2] [--scale]`: time our shims against Go's.
//!
//! Without `--v2`: shim-runc-v1 against the Go `containerd-shim`, each behind a private
//! containerd 1.6. With `--v2`: containerd-shim-rsrunc-v2 against Go's `containerd-shim-runc-v2`
//! of containerd 2.1, each behind a private containerd 2.1. Both containerds run side by side,
//! measured interleaved run by run; one table of ratios on stdout and the samples as JSON.
//! `--scale` instead measures 10, 50 and 200 idle containers per shim kind (`--sizes 1000` or
//! `--sizes 100,500`: those sizes instead).

mod containerd;
mod cpu;
mod machine;
mod measure;
mod scale;
mod stats;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::run::{target_dir, which};
use containerd::{Api, Containerd, Setup};
use machine::Machine;
use measure::Series;
use stats::{median, p90};

const GO_SHIM_V1: &str = "/usr/bin/containerd-shim";
/// Go's task v2 shim, in containerd 2.1's bin dir.
const GO_SHIM_V2: &str = "containerd-shim-runc-v2";
/// The containerd 2.1 bin dir's name in `debs::containerd_bin_dirs`.
const CONTAINERD_2_1: &str = "CONTAINERD_2_1";
const BUSYBOX: &str = "/usr/bin/busybox";
const MIB: u64 = 1 << 20;
/// The spec annotation that puts task v2 containers in one shim (Go's and ours).
const GROUP_ANNOTATION: &str = "io.containerd.runc.v2.group";
/// Containers in a bench pod besides its pause-like one.
const POD_CONTAINERS: usize = 3;

/// What `cargo xtask bench` was asked for.
struct Opts {
    quick: bool,
    api: Api,
    scale: bool,
    /// `--sizes N[,N...]`: the scale run's sizes instead of its own.
    sizes: Option<Vec<usize>>,
}

const USAGE: &str = "usage: cargo xtask bench [--quick] [--v2] [--scale [--sizes N[,N...]]]";

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            quick: false,
            api: Api::V1,
            scale: false,
            sizes: None,
        };
        let mut args = args.iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--v2" => o.api = Api::V2,
                "--scale" => o.scale = true,
                "--sizes" => {
                    let list = args.next().context(USAGE)?;
                    let sizes = list
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
                        .collect::<Option<Vec<_>>>()
                        .with_context(|| {
                            format!("--sizes {list:?}: sizes are positive numbers\n{USAGE}")
                        })?;
                    if !sizes.windows(2).all(|w| w[0] < w[1]) {
                        bail!("--sizes {list:?}: sizes go up\n{USAGE}");
                    }
                    o.sizes = Some(sizes);
                }
                _ => bail!(USAGE),
            }
        }
        if o.sizes.is_some() && !o.scale {
            bail!("--sizes is for --scale\n{USAGE}");
        }
        Ok(o)
    }
}

/// How much of everything: the full run or `--quick`.
struct Plan {
    quick: bool,
    idle: usize,
    runs: usize,
    io_bytes: u64,
    io_runs: usize,
    /// v1 only: concurrent `ctr run -d`.
    burst: usize,
    /// v2 only: pods of 1 + POD_CONTAINERS grouped containers.
    pods: usize,
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
                pods: 2,
            }
        } else {
            Plan {
                quick,
                idle: 20,
                runs: 30,
                io_bytes: 1024 * MIB,
                io_runs: 3,
                burst: 20,
                pods: 5,
            }
        }
    }

    /// How the IO figure is sized, said in the output when `--quick` shrank it.
    fn io_note(&self) -> String {
        let mib = self.io_bytes / MIB;
        if self.io_bytes == 1024 * MIB {
            format!("{mib} MiB (1 GiB)")
        } else {
            format!("{mib} MiB (--quick: shrunk from the full run's 1 GiB)")
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

/// The two shims compared and the containerd each runs behind.
struct Pair {
    api: Api,
    ours: PathBuf,
    go: PathBuf,
    /// containerd and ctr's dir; `None`: the system's (PATH).
    bin_dir: Option<PathBuf>,
    /// `containerd --version` of the one used.
    containerd_version: String,
}

impl Pair {
    /// Title of the table.
    fn title(&self) -> String {
        match self.api {
            Api::V1 => "shim-runc-v1 (ours) vs containerd-shim (Go), runtime v1".into(),
            Api::V2 => {
                "containerd-shim-rsrunc-v2 (ours) vs containerd-shim-runc-v2 (Go), task v2".into()
            }
        }
    }

    /// Both containerds, ours first, in `<dir>/ours` and `<dir>/go`.
    fn start(&self, dir: &Path) -> Result<Vec<Containerd>> {
        let setup = |shim| Setup {
            api: self.api,
            bin_dir: self.bin_dir.as_deref(),
            shim,
        };
        Ok(vec![
            Containerd::start("ours", &setup(&self.ours), dir)?,
            Containerd::start("go", &setup(&self.go), dir)?,
        ])
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = Opts::parse(args)?;
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench needs root (private mount namespaces, cgroups, runc)");
    }
    for tool in ["runc", "nsenter", "unshare", "timeout"] {
        which(tool).with_context(|| format!("{tool} not found on PATH"))?;
    }
    let pair = prepare(opts.api)?;
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
    let plan = Plan::new(opts.quick);
    let machine = Machine::now();
    let started = Instant::now();
    let tmp = TempDir(std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id())));
    let _ = fs::remove_dir_all(&tmp.0);
    let rootfs = tmp.0.join("rootfs");
    let result = busybox_rootfs(&rootfs).and_then(|()| {
        if opts.scale {
            scale::bench(&plan, opts.sizes.as_deref(), &pair, &tmp.0, &rootfs)
        } else {
            bench(&plan, &pair, &tmp.0, &rootfs)
        }
    });
    reap_orphans();
    let mut out = result?;
    let machine = machine.finish(started.elapsed());
    print_table(&out.title, &out.rows);
    for note in &out.notes {
        println!("{note}");
    }
    println!("{}", machine.describe());
    let name = match (opts.scale, opts.api) {
        (false, Api::V1) => "latest.json".to_string(),
        (false, Api::V2) => "latest-v2.json".to_string(),
        (true, api) => {
            // Sizes of one's own do not replace the standard run's samples.
            let sizes = opts.sizes.as_ref().map_or(String::new(), |s| {
                let s: Vec<String> = s.iter().map(|n| n.to_string()).collect();
                format!("-{}", s.join("-"))
            });
            let v2 = if api == Api::V2 { "-v2" } else { "" };
            format!("latest-scale{sizes}{v2}.json")
        }
    };
    let path = target_dir().join("bench").join(name);
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    out.json["quick"] = json!(plan.quick);
    out.json["api"] = json!(format!("{:?}", opts.api));
    out.json["containerd"] = json!(pair.containerd_version);
    out.json["machine"] = machine.to_json();
    out.json["rows"] = rows_json(&out.rows);
    fs::write(&path, serde_json::to_vec_pretty(&out.json)?)
        .with_context(|| format!("write {}", path.display()))?;
    println!("\nwritten to {}", path.display());
    if opts.api == Api::V2 && !opts.scale {
        cri_pods(plan.quick)?;
    }
    Ok(())
}

/// `--v2` also measures what Kubernetes runs: 10 pods (2 with `--quick`) of 1 pause + 3
/// containers each through containerd 2.1.9's CRI, Go's runc.v2 against ours (cri-e2e's
/// `cri-pods-memory`, release builds: ours static as installed, the reaper as the nodes' init).
fn cri_pods(quick: bool) -> Result<()> {
    crate::release::build("shim-runc-v2", "containerd-shim-rsrunc-v2")?;
    crate::release::build("reaper", "reaper")?;
    // The measuring tool itself is an ordinary release build.
    crate::run::step(
        "build cri-pods-memory (release)",
        crate::run::cargo().args([
            "build",
            "--release",
            "-p",
            "cri-e2e",
            "--bin",
            "cri-pods-memory",
        ]),
    )?;
    let tool = target_dir().join("release").join("cri-pods-memory");
    println!("\n==> memory of CRI pods");
    let pods = if quick { "2" } else { "10" };
    crate::run::step(
        &format!("cri-pods-memory {pods}"),
        std::process::Command::new(tool)
            .arg(pods)
            .envs(crate::debs::containerd_bin_dirs()),
    )
}

/// Builds our shim for `api` and finds Go's and the containerd to run them behind.
fn prepare(api: Api) -> Result<Pair> {
    let (package, bin, go, bin_dir) = match api {
        Api::V1 => {
            for tool in ["containerd", "ctr"] {
                which(tool).with_context(|| format!("{tool} not found on PATH"))?;
            }
            (
                "shim-runc-v1",
                "shim-runc-v1",
                PathBuf::from(GO_SHIM_V1),
                None,
            )
        }
        Api::V2 => {
            let dir = crate::debs::containerd_bin_dirs()
                .into_iter()
                .find_map(|(env, dir)| (env == CONTAINERD_2_1).then_some(dir))
                .context("containerd 2.1 is not unpacked: run `cargo xtask deps` first")?;
            (
                "shim-runc-v2",
                "containerd-shim-rsrunc-v2",
                dir.join(GO_SHIM_V2),
                Some(dir),
            )
        }
    };
    for f in [go.as_path(), Path::new(BUSYBOX)] {
        if !f.is_file() {
            bail!("{} is missing", f.display());
        }
    }
    let ours = crate::release::build(package, bin)?;
    let containerd = bin_dir
        .as_ref()
        .map_or_else(|| PathBuf::from("containerd"), |d| d.join("containerd"));
    let version = std::process::Command::new(&containerd)
        .arg("--version")
        .output()
        .with_context(|| format!("run {} --version", containerd.display()))?;
    Ok(Pair {
        api,
        ours,
        go,
        bin_dir,
        containerd_version: String::from_utf8_lossy(&version.stdout).trim().to_string(),
    })
}

/// What one bench produced: the table, lines printed under it, and the JSON (rows are added).
struct Outcome {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
    json: serde_json::Value,
}

/// Pushes rows of both shims' values.
struct Rows(Vec<Row>);

impl Rows {
    fn add(&mut self, figure: impl Into<String>, unit: &'static str, v: [f64; 2]) {
        self.0.push(Row {
            figure: figure.into(),
            unit,
            ours: v[0],
            go: v[1],
        });
    }
}

/// `f` of both shims' series.
fn pair_of(s: &[Series], f: impl Fn(&Series) -> f64) -> [f64; 2] {
    [f(&s[0]), f(&s[1])]
}

/// The side-by-side bench: start, idle, (v2: pods), exec, IO, memory, (v1: burst).
fn bench(plan: &Plan, pair: &Pair, dir: &Path, rootfs: &Path) -> Result<Outcome> {
    let cds = pair.start(dir)?;
    let cpu_source = cds[0].meter.source();
    let mut rows = Rows(Vec::new());

    println!(
        "==> start: {} runs per shim, with bare runc beside",
        plan.runs
    );
    let bundle = measure::bare_bundle(dir, rootfs)?;
    let mut start = vec![Series::default(), Series::default()];
    let (mut bare_wall, mut bare_cpu) = (Vec::new(), Vec::new());
    for i in 0..plan.runs {
        measure::once(&cds, i, |cd, i| measure::start(cd, rootfs, i), &mut start)?;
        let (w, c) = measure::bare_runc(dir, &bundle, i)?;
        bare_wall.push(w);
        bare_cpu.push(c);
    }
    rows.add("start median", "ms", pair_of(&start, |s| median(&s.value)));
    rows.add("start p90", "ms", pair_of(&start, |s| p90(&s.value)));
    rows.add(
        "start CPU median",
        "ms",
        pair_of(&start, |s| median(&s.cpu_ms)),
    );
    let bare = median(&bare_wall);
    rows.add(
        "shim overhead (start - bare runc run)",
        "ms",
        pair_of(&start, |s| median(&s.value) - bare),
    );

    println!("==> idle: {} containers per shim", plan.idle);
    let idle_id = |k: usize| format!("idle-{k}");
    measure::interleaved(&cds, plan.idle, |cd, k| {
        measure::idle(cd, rootfs, &idle_id(k), &[]).map(|()| 0.0)
    })?;

    let pods = if pair.api == Api::V2 {
        println!(
            "==> pods: {} per shim, each 1 pause-like + {POD_CONTAINERS} containers in group pod-<n>",
            plan.pods
        );
        let pods = measure::interleaved(&cds, plan.pods, |cd, p| measure::pod(cd, rootfs, p))?;
        rows.add(
            format!("pod start ({} containers) median", 1 + POD_CONTAINERS),
            "ms",
            pair_of(&pods, |s| median(&s.value)),
        );
        rows.add(
            "pod start CPU median",
            "ms",
            pair_of(&pods, |s| median(&s.cpu_ms)),
        );
        Some(pods)
    } else {
        None
    };

    println!("==> exec: {} runs per shim", plan.runs);
    // The shim's own share of an exec's CPU (containerd, ctr's request and runc take the rest):
    // its clock ticks over every run, per run, since one exec takes less than a tick.
    let exec_shims = cds
        .iter()
        .map(|cd| cd.shim_pid(&idle_id(0)))
        .collect::<Result<Vec<_>>>()?;
    let shim_cpu_before = exec_shims
        .iter()
        .map(|&pid| measure::process_cpu_ms(pid))
        .collect::<Result<Vec<_>>>()?;
    let exec = measure::interleaved(&cds, plan.runs, |cd, i| measure::exec(cd, &idle_id(0), i))?;
    let mut exec_shim_cpu = [0.0; 2];
    for (k, (&pid, before)) in exec_shims.iter().zip(&shim_cpu_before).enumerate() {
        exec_shim_cpu[k] = (measure::process_cpu_ms(pid)? - before) / plan.runs.max(1) as f64;
    }
    rows.add("exec median", "ms", pair_of(&exec, |s| median(&s.value)));
    rows.add("exec p90", "ms", pair_of(&exec, |s| p90(&s.value)));
    rows.add(
        "exec CPU median",
        "ms",
        pair_of(&exec, |s| median(&s.cpu_ms)),
    );
    rows.add("exec shim CPU mean", "ms", exec_shim_cpu);
    // The floor under both: runc exec alone, on ours' idle-0 (the same container kind).
    let bare_exec = (0..plan.runs)
        .map(|_| measure::bare_exec(&cds[0], &idle_id(0)))
        .collect::<Result<Vec<_>>>()?;
    let bare_exec_median = median(&bare_exec);
    let runc_call = (0..plan.runs)
        .map(|_| measure::runc_call_cpu(&cds[0], &idle_id(0)))
        .collect::<Result<Vec<_>>>()?;
    rows.add(
        "shim overhead (exec - bare runc exec)",
        "ms",
        pair_of(&exec, |s| median(&s.value) - bare_exec_median),
    );

    println!(
        "==> IO: {} to stdout, {} run(s) per shim",
        plan.io_note(),
        plan.io_runs
    );
    let (mut io_shim_cpu, mut io_ctr_cpu) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut io_busy = [Vec::new(), Vec::new()];
    let io = measure::interleaved(&cds, plan.io_runs, |cd, i| {
        let run = measure::io(cd, rootfs, i, plan.io_bytes)?;
        io_shim_cpu[usize::from(cd.name != "ours")].push(run.shim_cpu_ms);
        io_ctr_cpu[usize::from(cd.name != "ours")].push(run.container_cpu_ms);
        io_busy[usize::from(cd.name != "ours")].push(run.writer_busy);
        Ok(run.mib_per_s)
    })?;
    let mib = plan.io_bytes / MIB;
    let gib = plan.io_bytes as f64 / (1u64 << 30) as f64;
    rows.add(
        format!("IO {mib} MiB stdout median"),
        "MiB/s",
        pair_of(&io, |s| median(&s.value)),
    );
    rows.add(
        format!("IO {mib} MiB CPU median"),
        "ms",
        pair_of(&io, |s| median(&s.cpu_ms)),
    );
    // The writer alone into a pipe we read at once, no container, shim or ctr (a note).
    let bare_io = (0..plan.io_runs)
        .map(|_| measure::bare_io(Path::new(BUSYBOX), plan.io_bytes))
        .collect::<Result<Vec<_>>>()?;
    rows.add(
        "IO shim CPU per GiB median",
        "ms",
        [median(&io_shim_cpu[0]) / gib, median(&io_shim_cpu[1]) / gib],
    );
    rows.add(
        "IO container CPU per GiB median",
        "ms",
        [median(&io_ctr_cpu[0]) / gib, median(&io_ctr_cpu[1]) / gib],
    );
    rows.add(
        "IO writer busy (its CPU / stream time)",
        "%",
        [median(&io_busy[0]) * 100.0, median(&io_busy[1]) * 100.0],
    );

    // Sampled now, long after they started: every shim has settled into idle (no RPC for tens
    // of seconds; idle-0 took the execs).
    println!("==> memory of the idle containers' shims");
    let mut mem = [[0.0; 3]; 2];
    for (cd, m) in cds.iter().zip(&mut mem) {
        let (mut pss, mut rss, mut thr) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..plan.idle {
            let u = measure::memory(cd.shim_pid(&idle_id(k))?)?;
            pss.push(u.pss);
            rss.push(u.rss);
            thr.push(u.threads);
        }
        *m = [median(&pss), median(&rss), median(&thr)];
    }
    rows.add("shim PSS median", "KiB", [mem[0][0], mem[1][0]]);
    rows.add("shim RSS median", "KiB", [mem[0][1], mem[1][1]]);
    rows.add("shim threads median", "", [mem[0][2], mem[1][2]]);

    let mut pod_json = json!(null);
    if let Some(pods) = &pods {
        println!("==> memory of the pods' shims");
        let mut per = [[0.0; 4]; 2];
        let mut samples = Vec::new();
        for (cd, m) in cds.iter().zip(&mut per) {
            let (mut n, mut pss, mut rss, mut thr) = (Vec::new(), Vec::new(), Vec::new(), vec![]);
            for p in 0..plan.pods {
                let u = measure::pod_memory(cd, p)?;
                n.push(u.shims as f64);
                pss.push(u.pss);
                rss.push(u.rss);
                thr.push(u.threads);
            }
            samples.push(json!({"shims": n, "pss_kib": pss, "rss_kib": rss, "threads": thr}));
            *m = [median(&n), median(&pss), median(&rss), median(&thr)];
        }
        rows.add("shims per pod median", "", [per[0][0], per[1][0]]);
        rows.add("pod shim PSS median", "KiB", [per[0][1], per[1][1]]);
        rows.add("pod shim RSS median", "KiB", [per[0][2], per[1][2]]);
        rows.add("pod shim threads median", "", [per[0][3], per[1][3]]);
        pod_json = json!({
            "containers_per_pod": 1 + POD_CONTAINERS,
            "start": series_json(pods),
            "ours": samples[0],
            "go": samples[1],
        });
    }

    let mut burst_json = json!(null);
    if pair.api == Api::V1 {
        println!("==> burst: {} concurrent ctr run -d per shim", plan.burst);
        let burst = measure::interleaved(&cds, 1, |cd, _| measure::burst(cd, rootfs, plan.burst))?;
        rows.add(
            format!("burst of {}: all running", plan.burst),
            "ms",
            pair_of(&burst, |s| s.value[0]),
        );
        rows.add(
            format!("burst of {}: CPU", plan.burst),
            "ms",
            pair_of(&burst, |s| s.cpu_ms[0]),
        );
        burst_json = series_json(&burst);
    }

    println!("==> cleanup");
    drop(cds);
    let mut title = pair.title();
    if plan.quick {
        title.push_str(", --quick");
    }
    let notes = vec![
        format!(
            "bare runc run (same bundle, /bin/true): median {:.1} ms, p90 {:.1} ms, CPU median {:.1} ms",
            median(&bare_wall),
            p90(&bare_wall),
            median(&bare_cpu)
        ),
        format!(
            "bare runc exec (idle-0, /bin/true, through nsenter as ctr is): median {:.1} ms, p90 {:.1} ms",
            bare_exec_median,
            p90(&bare_exec)
        ),
        format!(
            "bare writer (busybox head -c {} /dev/zero into a pipe read at once, no shim or ctr): median {:.1} MiB/s",
            plan.io_bytes,
            median(&bare_io)
        ),
        format!(
            "one runc call (runc state of idle-0): CPU median {:.1} ms; a start makes three (create, start, delete), an exec one",
            median(&runc_call)
        ),
        format!("containerd: {}", pair.containerd_version),
        format!("CPU: {cpu_source}"),
        format!("IO: {}", plan.io_note()),
        "IO shim CPU: the shim process's own user+system time until the stream's last byte \
         (/proc/PID/stat); IO container CPU: the writer's, from its cgroup v1 cpuacct.usage at \
         the last byte (NaN without cpuacct)"
            .into(),
        "exec shim CPU: the idle-0 shim's own user+system time over all exec runs, per run; the \
         rest of exec CPU is containerd's and runc's (bare runc run above)"
            .into(),
        "shim overhead: the start median minus bare runc run; besides the shim it holds ctr, \
         containerd, and runc started three times (create, start, delete) instead of once; for \
         exec, the exec median minus bare runc exec: ctr, containerd and the shim"
            .into(),
    ];
    let json = json!({
        "plan": {
            "idle_containers": plan.idle,
            "runs": plan.runs,
            "io_bytes": plan.io_bytes,
            "io_runs": plan.io_runs,
            "burst": if pair.api == Api::V1 { json!(plan.burst) } else { json!(null) },
            "pods": if pair.api == Api::V2 { json!(plan.pods) } else { json!(null) },
        },
        "shims": {"ours": pair.ours, "go": pair.go},
        "cpu_source": cpu_source,
        "bare_runc": {
            "median_ms": median(&bare_wall),
            "p90_ms": p90(&bare_wall),
            "cpu_median_ms": median(&bare_cpu),
            "wall_ms": bare_wall,
        },
        "runc_call_cpu_ms": runc_call,
        "bare_runc_exec": {
            "median_ms": bare_exec_median,
            "p90_ms": p90(&bare_exec),
            "wall_ms": bare_exec,
        },
        "samples": {
            "start": series_json(&start),
            "exec": series_json(&exec),
            "bare_io_mib_per_s": bare_io,
            "io": {
                "ours": {"mib_per_s": io[0].value, "cpu_ms": io[0].cpu_ms, "shim_cpu_ms": io_shim_cpu[0], "container_cpu_ms": io_ctr_cpu[0]},
                "go": {"mib_per_s": io[1].value, "cpu_ms": io[1].cpu_ms, "shim_cpu_ms": io_shim_cpu[1], "container_cpu_ms": io_ctr_cpu[1]},
            },
            "pods": pod_json,
            "burst": burst_json,
        },
    });
    Ok(Outcome {
        title,
        rows: rows.0,
        notes,
        json,
    })
}

/// Wall and CPU ms of both shims' runs.
fn series_json(s: &[Series]) -> serde_json::Value {
    json!({
        "ours": {"wall_ms": s[0].value, "cpu_ms": s[0].cpu_ms},
        "go": {"wall_ms": s[1].value, "cpu_ms": s[1].cpu_ms},
    })
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

fn print_table(title: &str, rows: &[Row]) {
    let w = rows.iter().map(|r| r.figure.len()).max().unwrap_or(0);
    println!("\n{title}");
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
}

fn rows_json(rows: &[Row]) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            json!({
                "figure": r.figure,
                "unit": r.unit,
                "ours": r.ours,
                "go": r.go,
                "ratio": ratio(r),
            })
        })
        .collect()
}
