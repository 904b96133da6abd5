//! A streaming output is moved in batches: the IO thread does not wake once per write the
//! container makes. A test binary of its own, so that no other test's streams wake its IO thread.

#[path = "fixtures/common.rs"]
mod common;

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{mkfifo, TempDir};
use shim_core::io::{IoOwner, IoSpec, ProcessIo};

/// The container's writer: busybox `head` writes 4 KiB at a time, as glibc's stdio does on a pipe.
const BUSYBOX: &str = "/usr/bin/busybox";
const CHUNK: usize = 4 << 10;
const WRITES: usize = 16 << 10;
/// How long the IO thread may take to show up in /proc after the first copy started it.
const START_LIMIT: Duration = Duration::from_secs(10);

/// The IO thread's voluntary context switches so far: one per sleep in epoll_wait.
fn io_thread_sleeps() -> Option<u64> {
    for task in fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "io" {
            continue;
        }
        let status = fs::read_to_string(dir.join("status")).ok()?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok());
    }
    None
}

/// The IO thread's count, once the thread has named itself.
fn sleeps_now() -> u64 {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(n) = io_thread_sleeps() {
            return n;
        }
        assert!(Instant::now() < deadline, "no IO thread in /proc/self/task");
        thread::yield_now();
    }
}

fn a_stream_of_small_writes_wakes_the_io_thread_far_less_than_once_per_write_and_loses_nothing() {
    let dir = TempDir::new("io-batching");
    let out = dir.join("stdout");
    mkfifo(&out);
    // The client, as ctr: a blocking open, then 32 KiB reads to EOF.
    let client = {
        let out = out.clone();
        thread::spawn(move || {
            let mut fifo = File::open(out).unwrap();
            let mut buf = vec![0u8; 32 << 10];
            let mut total = 0usize;
            loop {
                match fifo.read(&mut buf).unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        })
    };
    let spec = IoSpec {
        stdout: out.display().to_string(),
        ..IoSpec::default()
    };
    let owner = IoOwner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    let (mut io, stdio) = ProcessIo::new(&spec, owner).unwrap();
    io.start().unwrap();
    let before = sleeps_now();
    let status = Command::new(BUSYBOX)
        .args(["head", "-c", &(WRITES * CHUNK).to_string(), "/dev/zero"])
        .stdout(Stdio::from(stdio.stdout.unwrap()))
        .status()
        .unwrap();
    assert!(status.success());
    let total = client.join().unwrap();
    let sleeps = sleeps_now() - before;

    assert_eq!(total, WRITES * CHUNK, "every byte reaches the client");
    // Served write by write it was 8,000 to 12,000 here; batched, under 3,000 (most of them
    // for room the client made in the full fifo, 2,048 reads of 32 KiB).
    assert!(
        sleeps < (WRITES / 3) as u64,
        "the IO thread woke {sleeps} times for {WRITES} writes of {CHUNK} bytes"
    );
    io.close();
}

fn main() {
    let missing = (!Path::new(BUSYBOX).exists()).then(|| format!("{BUSYBOX} (busybox-static)"));
    trials::run(trials::trials!(
        missing;
        a_stream_of_small_writes_wakes_the_io_thread_far_less_than_once_per_write_and_loses_nothing,
    ));
}
