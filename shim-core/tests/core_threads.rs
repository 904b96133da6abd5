//! shim-core's core threads are vital (issue 10 item 8): when the IO thread's epoll fails, the
//! process ends with `vital::DIED` and says which thread died, instead of living on deaf.
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

fn an_io_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CASE_ENV, "io")
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
    assert_eq!(
        status.code(),
        Some(shim_core::vital::DIED),
        "the process outlived its IO thread ({SURVIVED} = survived); stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("shim: vital thread io failed: epoll_wait: "),
        "{stderr}"
    );
}

fn main() {
    if std::env::var_os(CASE_ENV).is_some() {
        child();
    }
    trials::run_in_order(trials::trials!(
        None;
        an_io_thread_whose_epoll_fails_ends_the_process_with_died_and_says_so,
    ));
}
