//! Cgroup against the real v1 hierarchy: a memory cgroup with an 8 MiB limit, a busybox pipeline
//! that outgrows it, the eventfd OOM watcher's report (drained as the shim's events thread drains
//! it), stats read from the kernel, and cleanup.

#[path = "fixtures/common.rs"]
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use shim_core::cgroup::{Cgroup, CgroupError, Host, Metrics, Mode, OomWatcher};

const LIMIT: u64 = 8 << 20;
/// Bound on anything that should happen: a hang fails the test instead of stalling the suite.
const HANG: Duration = Duration::from_secs(30);
const BUSYBOX: &str = "/bin/busybox";
/// The controllers the test puts its process in (when mounted); memory is required.
const CONTROLLERS: [&str; 4] = ["memory", "cpuacct", "cpu", "pids"];

/// Why these tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    match Host::default().mode() {
        Ok(Mode::Legacy) => {}
        Ok(Mode::Unified) => return Some("the host is cgroup v2 only (unified)".into()),
        Err(e) => return Some(format!("no cgroup mode: {e}")),
    }
    if mount_point("memory").is_none() {
        return Some("no v1 memory controller mounted".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} (busybox-static) missing"));
    }
    None
}

/// Where the v1 hierarchy holding `controller` is mounted, from /proc/self/mountinfo.
fn mount_point(controller: &str) -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split(' ');
        let (fstype, _source, options) = (right.next()?, right.next()?, right.next()?);
        let on = fstype == "cgroup" && options.split(',').any(|o| o == controller);
        on.then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or_default()))
    })
}

/// Test cgroups named `name` under each mounted controller of CONTROLLERS; removed on drop.
struct TestCgroups {
    dirs: Vec<(&'static str, PathBuf)>,
}

impl TestCgroups {
    fn create(name: &str) -> TestCgroups {
        let mut this = TestCgroups { dirs: Vec::new() };
        for controller in CONTROLLERS {
            let Some(mount) = mount_point(controller) else {
                continue;
            };
            // cpu and cpuacct may share one mount: one directory serves both.
            let dir = mount.join(name);
            if !this.dirs.iter().any(|(_, d)| *d == dir) {
                fs::create_dir(&dir).unwrap();
            }
            this.dirs.push((controller, dir));
        }
        this
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn procs_files(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs").display().to_string())
            .collect()
    }

    /// rmdir every directory, retrying while the kernel still counts a dying task.
    fn remove(&mut self) {
        for (_, dir) in self.dirs.drain(..) {
            let deadline = Instant::now() + HANG;
            while dir.exists() && fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The child, killed and reaped on drop.
struct Hog(Child);

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Moves itself into every cgroup.procs given, says ready, waits for a line, burns some CPU,
/// then pipes 64 MiB without a newline into tail, which must hold it all: far over 8 MiB.
const SCRIPT: &str = r#"
for f in "$@"; do echo $$ > "$f" || exit 1; done
echo ready
read go
i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done
/bin/busybox head -c 67108864 /dev/zero | /bin/busybox tail > /dev/null
echo after
read done
"#;

fn v1(metrics: Metrics) -> shim_core::cgroup::v1::Metrics {
    match metrics {
        Metrics::V1(m) => m,
        Metrics::V2(m) => panic!("v2 metrics on a v1 host: {m:?}"),
    }
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn a_memory_cgroup_over_its_limit_is_reported_by_the_eventfd_watcher_and_its_stats_are_read() {
    let name = format!("shim-core-test-oom-{}", std::process::id());
    let mut cgroups = TestCgroups::create(&name);
    let memory = cgroups.dir("memory").unwrap().to_path_buf();
    fs::write(memory.join("memory.limit_in_bytes"), LIMIT.to_string()).unwrap();
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    let has_memsw = memsw.exists();
    if has_memsw {
        fs::write(&memsw, LIMIT.to_string()).unwrap();
    }

    let mut child = Hog(Command::new(BUSYBOX)
        .args(["sh", "-c", SCRIPT, "sh"])
        .args(cgroups.procs_files())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap());
    let pid = child.0.id() as i32;
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the child could not join its cgroups");

    let cg = Cgroup::for_pid(&Host::default(), pid).unwrap();
    let Cgroup::V1(ref found) = cg else {
        panic!("a v2 cgroup on a v1 host: {cg:?}");
    };
    assert_eq!(found.dir("memory"), Some(memory.as_path()));
    if let Some(cpuacct) = cgroups.dir("cpuacct") {
        assert_eq!(found.dir("cpuacct"), Some(cpuacct));
    }

    // Stands in for the events thread: waits for the watcher's fd, drains it, sends reports on.
    let (tx, rx) = mpsc::channel();
    let watcher = Arc::new(OomWatcher::new().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (w, stopped) = (Arc::clone(&watcher), Arc::clone(&stop));
    let driver = std::thread::spawn(move || {
        while !stopped.load(Ordering::SeqCst) {
            let mut fds = [nix::poll::PollFd::new(w.fd(), nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, 20u16).unwrap() == 0 {
                continue;
            }
            for id in w.take_ready().unwrap() {
                let _ = tx.send(id);
            }
        }
    });
    watcher.add("oom-test", &cg).unwrap();
    assert!(watcher.is_watching("oom-test"));

    child.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let reported = rx.recv_timeout(HANG);
    let oom_control = fs::read_to_string(memory.join("memory.oom_control")).unwrap_or_default();
    assert_eq!(
        reported.as_deref(),
        Ok("oom-test"),
        "no OOM report; memory.oom_control: {oom_control:?}"
    );

    // The eventfd is signalled as the OOM starts; the victim's kill is counted just after.
    eventually("memory.oom_control to count the kill", || {
        v1(cg.stats().unwrap())
            .memory_oom_control
            .is_some_and(|o| o.oom_kill >= 1)
    });
    let m = v1(cg.stats().unwrap());
    eprintln!("v1 metrics after the OOM: {m:#?}");
    let mem = m.memory.as_ref().expect("memory stats");
    assert_eq!(mem.usage.limit, LIMIT);
    // The pipeline reached the limit. (failcnt stays 0 on this 6.18 kernel even so: not asserted.)
    assert!(
        mem.usage.max >= LIMIT / 2,
        "max_usage_in_bytes: {}",
        mem.usage.max
    );
    assert!(mem.usage.usage > 0, "usage_in_bytes");
    assert!(mem.pg_fault > 0 && mem.total_pg_fault >= mem.pg_fault);
    assert_eq!(mem.hierarchical_memory_limit, LIMIT);
    if has_memsw {
        assert_eq!(mem.swap.limit, LIMIT);
        assert_eq!(mem.hierarchical_swap_limit, LIMIT);
        assert!(mem.swap.max > 0);
    }
    let oom = m.memory_oom_control.expect("memory.oom_control");
    assert!(oom.oom_kill >= 1, "{oom:?}");
    assert_eq!(oom.oom_kill_disable, 0);
    if cgroups.dir("cpuacct").is_some() {
        assert!(m.cpu.usage.total > 0, "cpuacct.usage");
        assert!(m.cpu.usage.user + m.cpu.usage.kernel > 0, "cpuacct.stat");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(
            m.cpu.usage.per_cpu.len() >= cpus,
            "{:?}",
            m.cpu.usage.per_cpu
        );
    }
    if cgroups.dir("pids").is_some() {
        let pids = m.pids.expect("pids stats");
        assert!(pids.current >= 1);
        assert_eq!(pids.limit, 0, "pids.max is \"max\", read as 0");
    }
    assert!(m.blkio.is_some());

    // Let any further wake-up of this OOM arrive, then count: removal must add none.
    std::thread::sleep(Duration::from_millis(500));
    let before_removal = rx.try_iter().count() + 1;
    eprintln!("OOM reports for one pipeline: {before_removal}");
    drop(child);
    cgroups.remove();
    eventually("the removed cgroup's watch to end", || {
        !watcher.is_watching("oom-test")
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "removal is no OOM"
    );
    assert!(!driver.is_finished(), "draining the watcher failed");

    // The cgroup is gone: its files are missing, which Stats tolerates as cgroup1 does.
    let m = v1(cg.stats().unwrap());
    assert_eq!(m.memory, None);
    assert_eq!(m.pids, None);
    assert!(matches!(
        Cgroup::for_pid(&Host::default(), pid),
        Err(CgroupError::NotFound { .. })
    ));

    stop.store(true, Ordering::SeqCst);
    assert!(driver.join().is_ok(), "draining the watcher failed");
}

fn this_process_is_found_where_proc_self_cgroup_says() {
    let pid = std::process::id() as i32;
    let cg = Cgroup::for_pid(&Host::default(), pid).unwrap();
    let Cgroup::V1(found) = &cg else {
        panic!("a v2 cgroup on a v1 host: {cg:?}");
    };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let memory_path = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    let want = mount_point("memory")
        .unwrap()
        .join(memory_path.trim_start_matches('/'));
    assert_eq!(
        found
            .dir("memory")
            .map(|d| d.components().collect::<PathBuf>()),
        Some(want.components().collect::<PathBuf>())
    );
    let m = v1(cg.stats().unwrap());
    assert!(m.memory.is_some_and(|mem| mem.usage.usage > 0));
}

fn main() {
    trials::run_in_order(trials::trials!(
        missing_prerequisite();
        a_memory_cgroup_over_its_limit_is_reported_by_the_eventfd_watcher_and_its_stats_are_read,
        this_process_is_found_where_proc_self_cgroup_says,
    ));
}
