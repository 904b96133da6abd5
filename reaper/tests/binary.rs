//! The `reaper` binary, run as a subprocess.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use nix::fcntl::FdFlag;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// Long enough for any healthy run; only a hung reaper reaches it.
const LIMIT: Duration = Duration::from_secs(30);

fn reaper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reaper"))
}

/// The reaper exec'd by a parent that blocks SIGCHLD and SIGTERM, as a mask survives exec.
fn reaper_with_signals_blocked() -> Command {
    let mut cmd = reaper();
    // SAFETY: only sigemptyset/sigaddset/sigprocmask (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = SigSet::empty();
            set.add(Signal::SIGCHLD);
            set.add(Signal::SIGTERM);
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
            Ok(())
        });
    }
    cmd
}

/// Wait for `child` and collect what is left of its output, killing it if it hangs past LIMIT
/// (a reaper that never reaps does).
fn wait_bounded(child: Child) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().unwrap());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out,
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("reaper {pid} hung");
        }
    }
}

#[test]
fn exits_with_the_child_code_after_reaping_its_orphan() {
    let out = reaper()
        .args(["--report", "-", "--", "sh", "-c", "sleep 0.1 & exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let orphan = lines
        .iter()
        .find(|l| l["main"] == false)
        .expect("orphan reported");
    let pid = orphan["pid"].as_i64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "orphan {pid} left behind"
    );
}

#[test]
fn a_signal_death_exits_with_128_plus_the_signal() {
    let status = reaper()
        .args(["--", "sh", "-c", "kill -9 $$"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn a_sigchld_blocked_by_the_parent_does_not_stop_the_reaping() {
    let child = reaper_with_signals_blocked()
        .args(["--", "sh", "-c", "exit 3"])
        .spawn()
        .unwrap();
    assert_eq!(wait_bounded(child).status.code(), Some(3));
}

#[test]
fn sigterm_is_forwarded_even_when_the_parent_blocked_it() {
    let mut child = reaper_with_signals_blocked()
        .args([
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(wait_bounded(child).status.code(), Some(42));
}

#[test]
fn the_child_gets_an_empty_signal_mask_though_the_parent_blocked_signals() {
    let child = reaper_with_signals_blocked()
        .args(["--", "grep", "SigBlk", "/proc/self/status"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "SigBlk:\t0000000000000000"
    );
}

fn wait_ready(child: &mut std::process::Child) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
}

#[test]
fn sigterm_is_forwarded_to_the_child() {
    let mut child = reaper()
        .args([
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

#[test]
fn once_the_command_is_reaped_signals_go_to_its_orphans() {
    let mut child = reaper()
        .args([
            "--report",
            "-",
            "--",
            "sh",
            "-c",
            "(trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done) & exit 0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal only once the orphan is ready and the command's exit is reported (so reaped).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ready, mut reaped) = (false, false);
    while !(ready && reaped) {
        let line = lines.next().expect("output ended early").unwrap();
        if line == "ready" {
            ready = true;
        } else {
            let report: serde_json::Value = serde_json::from_str(&line).unwrap();
            reaped |= report["main"] == true;
        }
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let orphan: serde_json::Value =
        serde_json::from_str(&lines.next().expect("orphan reported").unwrap()).unwrap();
    assert_eq!(
        (orphan["main"].as_bool(), orphan["status"].as_i64()),
        (Some(false), Some(7))
    );
    assert_eq!(wait_bounded(child).status.code(), Some(0));
}

#[test]
fn group_mode_signals_the_whole_process_group() {
    // Without -g the background sleep would keep the reaper waiting for 30 s.
    let mut child = reaper()
        .args(["-g", "--", "sh", "-c", "sleep 30 & echo ready; wait"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
}

/// Have `cmd` start with `fd` at `at`, not close-on-exec, as an fd a parent passed on. The caller
/// keeps `fd` open until the spawn.
fn inherit_fd(cmd: &mut Command, fd: &impl AsRawFd, at: i32) {
    let from = fd.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if from == at {
                nix::fcntl::fcntl(at, nix::fcntl::FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                nix::unistd::dup2(from, at)?;
            }
            Ok(())
        });
    }
}

/// `cmd` with `/dev/null` on fd `at`.
fn with_inherited_fd(mut cmd: Command, at: i32) -> (Command, std::fs::File) {
    let null = std::fs::File::open("/dev/null").unwrap();
    inherit_fd(&mut cmd, &null, at);
    (cmd, null)
}

#[test]
fn inherited_fds_are_passed_on_to_the_command() {
    let (mut cmd, _null) = with_inherited_fd(reaper(), 9);
    let out = cmd
        .args(["--", "sh", "-c", "test -e /proc/self/fd/9 && echo kept"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kept");
}

#[test]
fn close_fds_closes_inherited_fds_before_the_command_runs() {
    let (mut cmd, _null) = with_inherited_fd(reaper(), 9);
    let out = cmd
        .args(["--close-fds", "--", "sh", "-c", "ls /proc/self/fd | wc -l"])
        .output()
        .unwrap();
    // 0, 1, 2 and the fd ls opens for the directory.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
}

#[test]
fn the_report_fd_is_not_inherited_by_the_command() {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut cmd = reaper();
    inherit_fd(&mut cmd, &write, 5);
    let out = cmd
        .args([
            "--report",
            "5",
            "--",
            "sh",
            "-c",
            "test -e /proc/self/fd/5 && echo leaked || echo closed",
        ])
        .output()
        .unwrap();
    drop(write);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "closed");
    let mut report = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut report).unwrap();
    let line: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(
        (line["main"].as_bool(), line["status"].as_i64()),
        (Some(true), Some(0))
    );
}

#[test]
fn a_report_fd_that_is_not_open_is_a_clear_error() {
    let out = reaper()
        .args(["--report", "77", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--report 77: not an open fd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_explains_usage_with_an_example() {
    let out = reaper().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("reaper -- sh -c"), "{text}");
    assert!(text.contains("--close-fds"), "{text}");
}

#[test]
fn a_missing_command_is_a_clear_error() {
    let out = reaper().args(["--", "/nonexistent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /nonexistent"));
}
