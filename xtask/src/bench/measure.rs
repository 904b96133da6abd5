//! The bench measurements: what one run does and which figures it yields.
//!
//! Each runs on both containerds interleaved (ours, Go, ours, Go, ...); wall times are in ms, CPU
//! in ms, memory in KiB.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::containerd::Containerd;

/// Repeated figures of one shim: the measured value and the CPU time (ms) spent meanwhile by
/// its containerd, shims and runc.
#[derive(Default)]
pub struct Series {
    pub value: Vec<f64>,
    pub cpu_ms: Vec<f64>,
}

/// Runs `op(cd, i)` `runs` times on each containerd, interleaved, recording what `op` returns
/// and the CPU its containerd's group used meanwhile.
pub fn interleaved(
    cds: &[Containerd],
    runs: usize,
    mut op: impl FnMut(&Containerd, usize) -> Result<f64>,
) -> Result<Vec<Series>> {
    let mut out: Vec<Series> = cds.iter().map(|_| Series::default()).collect();
    for i in 0..runs {
        once(cds, i, &mut op, &mut out)?;
    }
    Ok(out)
}

/// Run `i` of `op` on each containerd in turn, appended to `into` (one series per containerd).
pub fn once(
    cds: &[Containerd],
    i: usize,
    mut op: impl FnMut(&Containerd, usize) -> Result<f64>,
    into: &mut [Series],
) -> Result<()> {
    for (cd, s) in cds.iter().zip(into) {
        if super::interrupted() {
            bail!("interrupted");
        }
        let before = cd.cpu_ns()?;
        let v = op(cd, i).with_context(|| format!("{} run {i}", cd.name))?;
        let after = cd.cpu_ns()?;
        s.value.push(v);
        s.cpu_ms.push(after.saturating_sub(before) as f64 / 1e6);
    }
    Ok(())
}

/// Runs `cmd` to completion; fails with its stderr unless it exits 0.
pub fn check(mut cmd: Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Wall milliseconds `f` took.
pub fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// `ctr run --rm <id> /bin/true`: wall ms.
pub fn start(cd: &Containerd, rootfs: &Path, i: usize) -> Result<f64> {
    let id = format!("start-{i}");
    timed(|| check(cd.run_cmd(&["--rm"], rootfs, &id, &["/bin/true"])))
}

/// `ctr run -d <flags> <id> sleep 1000000`: an idle container.
pub fn idle(cd: &Containerd, rootfs: &Path, id: &str, flags: &[&str]) -> Result<()> {
    let flags = [&["-d"][..], flags].concat();
    check(cd.run_cmd(&flags, rootfs, id, &["/bin/sleep", "1000000"]))
}

/// The ids of pod `p`'s containers, the pause-like one first.
pub fn pod_ids(p: usize) -> Vec<String> {
    let mut ids = vec![format!("pod-{p}-pause")];
    ids.extend((1..=super::POD_CONTAINERS).map(|c| format!("pod-{p}-c{c}")));
    ids
}

/// Pod `p`: its pause-like container then the others, one after the other, all idle and in
/// group `pod-<p>` (task v2's grouping annotation, which puts them in one shim): wall ms.
pub fn pod(cd: &Containerd, rootfs: &Path, p: usize) -> Result<f64> {
    let group = format!("{}=pod-{p}", super::GROUP_ANNOTATION);
    timed(|| {
        for id in pod_ids(p) {
            idle(cd, rootfs, &id, &["--annotation", &group])?;
        }
        Ok(())
    })
}

/// Memory and threads of one process, or of several added up.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    /// Proportional set size, KiB.
    pub pss: f64,
    /// Resident set size, KiB.
    pub rss: f64,
    pub threads: f64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            pss: self.pss + o.pss,
            rss: self.rss + o.rss,
            threads: self.threads + o.threads,
        }
    }
}

/// The distinct shims serving pod `p`, and their usage added up.
pub struct PodUsage {
    pub shims: usize,
    pub pss: f64,
    pub rss: f64,
    pub threads: f64,
}

pub fn pod_memory(cd: &Containerd, p: usize) -> Result<PodUsage> {
    let mut pids = pod_ids(p)
        .iter()
        .map(|id| cd.shim_pid(id))
        .collect::<Result<Vec<_>>>()?;
    pids.sort_unstable();
    pids.dedup();
    let total = sum_memory(&pids)?;
    Ok(PodUsage {
        shims: pids.len(),
        pss: total.pss,
        rss: total.rss,
        threads: total.threads,
    })
}

/// Usage of the processes `pids` added up.
pub fn sum_memory(pids: &[i32]) -> Result<Usage> {
    pids.iter()
        .try_fold(Usage::default(), |acc, &pid| Ok(acc + memory(pid)?))
}

/// `ctr task exec --exec-id e<i> <id> /bin/true`: wall ms.
pub fn exec(cd: &Containerd, id: &str, i: usize) -> Result<f64> {
    let eid = format!("e{i}");
    timed(|| check(cd.ctr(&["task", "exec", "--exec-id", &eid, id, "/bin/true"])))
}

/// Bare `runc exec <id> /bin/true` on `cd`'s running container, no shim or containerd in the
/// way (through nsenter, as ctr is): wall ms.
pub fn bare_exec(cd: &Containerd, id: &str) -> Result<f64> {
    timed(|| check(cd.runc(&["exec", id, "/bin/true"])))
}

/// One runc call's CPU, the least a start's create, start and delete each cost: `runc state
/// <id>` on `cd`'s container (through nsenter, whose own share is counted too), from our
/// children's rusage.
pub fn runc_call_cpu(cd: &Containerd, id: &str) -> Result<f64> {
    let before = children_cpu_ms();
    check(cd.runc(&["state", id]))?;
    Ok(children_cpu_ms() - before)
}

/// Process `pid`'s PSS, RSS and threads.
pub fn memory(pid: i32) -> Result<Usage> {
    let field = |text: &str, key: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {key} for process {pid}"))
    };
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .with_context(|| format!("read /proc/{pid}/smaps_rollup"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    Ok(Usage {
        pss: field(&smaps, "Pss:")?,
        rss: field(&smaps, "Rss:")?,
        threads: field(&status, "Threads:")?,
    })
}

/// One IO run.
pub struct IoRun {
    /// From the first byte to EOF.
    pub mib_per_s: f64,
    /// The shim's own CPU until the last byte.
    pub shim_cpu_ms: f64,
    /// The container's (the writer's), from its cgroup v1 cpuacct group; NaN without one.
    pub container_cpu_ms: f64,
    /// The container's CPU over the stream's time: near 1, the writer is the bottleneck.
    pub writer_busy: f64,
}

/// The container's CPU ms so far: ctr puts it in `/<namespace>/<id>` of each hierarchy.
fn container_cpu_ms(cd: &Containerd, id: &str) -> f64 {
    let p = Path::new("/sys/fs/cgroup/cpuacct")
        .join(&cd.ns)
        .join(id)
        .join("cpuacct.usage");
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e6)
}

/// The container writes `bytes` of zeros to stdout; we count what ctr hands us.
pub fn io(cd: &Containerd, rootfs: &Path, i: usize, bytes: u64) -> Result<IoRun> {
    let id = format!("io-{i}");
    let n = bytes.to_string();
    let mut cmd = cd.run_cmd(
        &["--rm"],
        rootfs,
        &id,
        &["/bin/head", "-c", &n, "/dev/zero"],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn ctr run")?;
    let mut out = child.stdout.take().context("ctr stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut first = None;
    let mut shim = None;
    let mut shim_cpu = None;
    let mut container_cpu = f64::NAN;
    loop {
        let r = out.read(&mut buf).context("read ctr stdout")?;
        if r == 0 {
            break;
        }
        if first.is_none() {
            first = Some(Instant::now());
            // The task runs, so its bundle names the shim.
            shim = Some(cd.shim_pid(&id)?);
        }
        total += r as u64;
        if total >= bytes && shim_cpu.is_none() {
            // The last byte is here: the shim has done its copying, and it lives until the exit
            // reaches ctr and ctr deletes the task (EOF of ctr's stdout comes after that).
            shim_cpu = shim.map(process_cpu_ms).transpose()?;
            container_cpu = container_cpu_ms(cd, &id);
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let shim_cpu = shim_cpu.context("the stream ended short: no shim CPU")?;
    let out = child.wait_with_output()?;
    if !out.status.success() || total != bytes {
        bail!(
            "io run: {} after {total} of {bytes} bytes: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(IoRun {
        mib_per_s: bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
        shim_cpu_ms: shim_cpu,
        container_cpu_ms: container_cpu,
        writer_busy: container_cpu / (secs * 1e3).max(1e-9),
    })
}

/// The same writer as `io` (`busybox head -c <bytes> /dev/zero`, 4 KiB writes) straight into a
/// pipe we read, no container, shim or ctr: the ceiling of any shim's IO figure (MiB/s from the
/// first byte to EOF).
pub fn bare_io(busybox: &Path, bytes: u64) -> Result<f64> {
    let mut child = Command::new(busybox)
        .args(["head", "-c", &bytes.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn busybox head")?;
    let mut out = child.stdout.take().context("head stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut first) = (0u64, None);
    loop {
        let r = out.read(&mut buf).context("read head stdout")?;
        if r == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        total += r as u64;
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    if !child.wait()?.success() || total != bytes {
        bail!("bare io: {total} of {bytes} bytes");
    }
    Ok(bytes as f64 / (1 << 20) as f64 / secs.max(1e-9))
}

/// User+system CPU ms of process `pid` so far (all its threads, live or exited).
pub fn process_cpu_ms(pid: i32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .context("malformed stat")
    };
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) * 1e3 / hz)
}

/// `n` `ctr run -d` at once, one thread each: wall ms until every one has returned (task running).
pub fn burst(cd: &Containerd, rootfs: &Path, n: usize) -> Result<f64> {
    timed(|| {
        let handles: Vec<_> = (0..n)
            .map(|k| {
                let cmd = cd.run_cmd(
                    &["-d"],
                    rootfs,
                    &format!("burst-{k}"),
                    &["/bin/sleep", "1000000"],
                );
                thread::spawn(move || check(cmd))
            })
            .collect();
        let mut first_err = None;
        for h in handles {
            let r = h.join().unwrap_or_else(|_| bail!("burst thread panicked"));
            if let (Err(e), None) = (r, &first_err) {
                first_err = Some(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

/// A bundle for bare `runc run`: `runc spec`, then /bin/true on our rootfs, no terminal.
pub fn bare_bundle(dir: &Path, rootfs: &Path) -> Result<PathBuf> {
    let b = dir.join("bare-bundle");
    fs::create_dir_all(&b)?;
    let mut spec = Command::new("runc");
    spec.args(["spec", "--bundle"]).arg(&b);
    check(spec)?;
    let p = b.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&fs::read_to_string(&p)?)?;
    cfg["process"]["args"] = serde_json::json!(["/bin/true"]);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["root"]["path"] = serde_json::json!(rootfs);
    fs::write(&p, serde_json::to_vec_pretty(&cfg)?)?;
    Ok(b)
}

/// Bare `runc --root <dir>/runc-root run --bundle <b> bare-<i>`: (wall ms, CPU ms of runc and
/// the container, from our children's rusage).
pub fn bare_runc(dir: &Path, bundle: &Path, i: usize) -> Result<(f64, f64)> {
    let before = children_cpu_ms();
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(dir.join("runc-root"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(format!("bare-{i}"))
        .stdin(Stdio::null());
    let wall = timed(|| check(cmd))?;
    Ok((wall, children_cpu_ms() - before))
}

/// User+system ms of our reaped descendants.
fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}
