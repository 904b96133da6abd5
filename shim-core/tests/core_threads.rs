//! shim-core's core threads are vital (issue 10 item 8): when the IO thread's epoll, or the events
//! thread's (exits and OOMs), fails, the process ends with `vital::DIED` and says which thread
//! died, instead of living on deaf.
//! harness = false (`trials`): the case runs in a child process (this binary again), since the
//! process is meant to exit.

#[path = "fixtures/common.rs"]
mod common;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mkfifo, TempDir};
use shim_core::io::{IoOwner, IoSpec, ProcessIo};

/// Set in the child: the case to stage.
const CASE_ENV: &str = "CORE_THREADS_CASE";
/// The child's exit code if the process outlives its IO thread.
const SURVIVED: i32 = 99;
/// How long the child waits to be ended by its dead IO thread, and the parent for the child.
const HANG: Duration = Duration::from_secs(30);

/// The fds of this process that are epoll instances.
fn epoll_fds() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]")
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The child: a v2-style shim (OOMs watched), then turn every epoll fd it opened into /dev/null
/// and interrupt the events thread's epoll_wait with a signal: its next epoll_wait fails.
fn events_child() -> ! {
    extern "C" fn nothing(_: libc::c_int) {}
    let (reaper, _signals) = reaper::Reaper::builder().start().unwrap();
    let before = epoll_fds();
    let dir = TempDir::new("core-threads-events");
    let config = shim_core::config::Config {
        namespace: "core-threads".into(),
        workdir: dir.join("work"),
        runtime_root: dir.join("runc-root"),
        criu: None,
        systemd_cgroup: false,
        runc_timeout: HANG,
        settle_limit: shim_core::config::DEFAULT_SETTLE_LIMIT,
        watch_oom: true,
    };
    let shim = shim_core::service::Shim::new(config, reaper, Box::new(Discard)).unwrap();
    let opened: Vec<i32> = epoll_fds().difference(&before).copied().collect();
    assert_eq!(
        opened.len(),
        2,
        "the events thread's epoll and the OOM watcher's nested in it"
    );
    let tid = thread_named("events").expect("a thread named events");
    let null = File::open("/dev/null").unwrap();
    for fd in opened {
        nix::unistd::dup2(null.as_raw_fd(), fd).unwrap();
    }
    // SAFETY: a handler that does nothing, for a signal nothing else here uses.
    unsafe {
        libc::signal(libc::SIGUSR2, nothing as *const () as libc::sighandler_t);
        libc::syscall(
            libc::SYS_tgkill,
            std::process::id() as libc::pid_t,
            tid,
            libc::SIGUSR2,
        );
    }
    std::thread::sleep(HANG);
    drop(shim);
    std::process::exit(SURVIVED);
}

/// An event sink that drops every event.
struct Discard;

impl shim_core::events::EventSink for Discard {
    fn event(&self, _: shim_core::events::Event) {}
}

/// The tid of this process's thread named `name`.
fn thread_named(name: &str) -> Option<libc::pid_t> {
    // A new thread names itself once it runs: look again until it has, bounded.
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let found = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .and_then(|t| t.file_name().to_str()?.parse().ok());
        if found.is_some() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::yield_now();
    }
}

/// The child: copy a process's stdout into a fifo, then turn the IO thread's epoll fd into
/// /dev/null and wake it with output: its next epoll_wait fails.
fn child() -> ! {
    let before = epoll_fds();
    let dir = TempDir::new("core-threads");
    let out = dir.join("stdout");
    mkfifo(&out);
    let _reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&out)
        .unwrap();
    let spec = IoSpec {
        stdout: out.display().to_string(),
        ..Default::default()
    };
    let owner = IoOwner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    let (mut io, stdio) = ProcessIo::new(&spec, owner).unwrap();
    io.start().unwrap();
    let reactor: Vec<i32> = epoll_fds().difference(&before).copied().collect();
    assert!(
        !reactor.is_empty(),
        "no epoll fd appeared for the IO thread"
    );
    let null = File::open("/dev/null").unwrap();
    for fd in reactor {
        nix::unistd::dup2(null.as_raw_fd(), fd).unwrap();
    }
    let mut stdout = File::from(stdio.stdout.expect("a stdout pipe"));
    stdout.write_all(b"wake up\n").unwrap();
    std::thread::sleep(HANG);
    std::process::exit(SURVIVED);
}

/// Run this binary as the child staging `case`; its exit code and stderr.
fn run_child(case: &str) -> (Option<i32>, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CASE_ENV, case)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + HANG * 2;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child neither died nor exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// Child `thread` (run_child's mode, also the vital thread's name) ends with vital::DIED and
/// says which thread's epoll_wait failed.
fn assert_died_of_failed_epoll(thread: &str) {
    let (code, stderr) = run_child(thread);
    assert_eq!(
        code,
        Some(shim_core::vital::DIED),
        "the process outlived its {thread} thread ({SURVIVED} = survived); stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("shim: vital thread {thread} failed: epoll_wait: ")),
        "{stderr}"
    );
}

fn an_io_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so() {
    assert_died_of_failed_epoll("io");
}

fn an_events_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so() {
    assert_died_of_failed_epoll("events");
}

fn main() {
    match std::env::var(CASE_ENV).as_deref() {
        Ok("events") => events_child(),
        Ok(_) => child(),
        Err(_) => {}
    }
    trials::run_in_order(trials::trials!(
        None;
        an_io_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so,
        an_events_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so,
    ));
}
