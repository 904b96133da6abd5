//! ProcessIo end to end with real child processes on the pipes and real fifos on the client side.

#[path = "fixtures/common.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{mkfifo, TempDir};
use shim_core::io::{IoError, IoOwner, IoSpec, ProcessIo};
use shim_core::runc::RuncStdio;

const LIMIT: Duration = Duration::from_secs(60);

fn owner() -> IoOwner {
    IoOwner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

fn spec(stdin: &str, stdout: &str, stderr: &str) -> IoSpec {
    IoSpec {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal: false,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Start `sh -c script` with runc's ends as its stdio (as runc hands them to the container),
/// then drop our copies of those ends.
fn spawn_container(script: &str, stdio: RuncStdio) -> std::process::Child {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    cmd.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from));
    cmd.stdout(stdio.stdout.map_or_else(Stdio::null, Stdio::from));
    cmd.stderr(stdio.stderr.map_or_else(Stdio::null, Stdio::from));
    cmd.spawn().unwrap()
}

/// FNV-1a over a stream, with its length.
fn checksum(mut r: impl Read) -> (u64, u64) {
    let (mut hash, mut len) = (0xcbf29ce484222325u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (hash, len);
        }
        for b in &buf[..n] {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        len += n as u64;
    }
}

#[test]
fn fifo_copy_is_byte_exact_for_a_64_mib_stream() {
    let dir = TempDir::new("io-big");
    let source = dir.join("source");
    {
        let mut f = File::create(&source).unwrap();
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut chunk = Vec::with_capacity(1 << 20);
        for _ in 0..64 {
            chunk.clear();
            for _ in 0..(1 << 17) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.extend_from_slice(&x.to_le_bytes());
            }
            f.write_all(&chunk).unwrap();
        }
    }
    let expected = checksum(File::open(&source).unwrap());
    assert_eq!(expected.1, 64 << 20);

    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container(&format!("exec cat {}", s(&source)), stdio);
    io.start().unwrap();
    let got = checksum(File::open(&out).unwrap());
    assert!(child.wait().unwrap().success());
    assert_eq!(got, expected);
    assert!(io.wait_drained(LIMIT));
    assert_eq!(io.dropped_bytes(), 0);
    io.close();
}

#[test]
fn stdin_reaches_the_container_and_close_stdin_gives_it_eof() {
    let dir = TempDir::new("io-stdin");
    let (inp, out) = (dir.join("stdin"), dir.join("stdout"));
    mkfifo(&inp);
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec(&s(&inp), &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container("cat; echo cat-done-after-eof", stdio);
    io.start().unwrap();
    let mut reader = File::open(&out).unwrap();
    {
        // Our held reader exists, so this open does not block.
        let mut client = OpenOptions::new().write(true).open(&inp).unwrap();
        client.write_all(b"hello through stdin\n").unwrap();
    }
    // The client's writer is gone but ours is still held: no EOF until CloseIO.
    io.close_stdin();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello through stdin\ncat-done-after-eof\n");
    assert!(child.wait().unwrap().success());
    assert!(io.wait_drained(LIMIT));
    io.close();
}

#[test]
fn keep_alive_reader_means_no_epipe_when_the_client_reader_goes_away() {
    let dir = TempDir::new("io-keep");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, mut stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    // The test drives the container through its own stdin pipe.
    let (go_r, mut go_w) = os_pipe::pipe().unwrap();
    stdio.stdin = Some(go_r.into());
    // It stays alive until the re-attached reader has read (the output of a process that has
    // exited waits in the fifo for a reader: another test).
    let mut child = spawn_container("echo one; read x; echo two; read y", stdio);
    io.start().unwrap();
    {
        let mut first = BufReader::new(File::open(&out).unwrap());
        let mut line = String::new();
        first.read_line(&mut line).unwrap();
        assert_eq!(line, "one\n");
    } // the client reader goes away (a detached ctr)
    go_w.write_all(b"go\n").unwrap();
    // Re-attach (nonblocking open: our writer exists, so it succeeds; then read blocking).
    let again = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&out)
        .unwrap();
    let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&again), libc::F_GETFL) };
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&again),
            libc::F_SETFL,
            flags & !libc::O_NONBLOCK,
        )
    };
    let mut rest = String::new();
    let mut again = BufReader::new(again);
    again.read_line(&mut rest).unwrap();
    assert_eq!(rest, "two\n");
    go_w.write_all(b"done\n").unwrap();
    again.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "two\n", "nothing after the container's last line");
    assert!(child.wait().unwrap().success());
    assert!(io.wait_drained(LIMIT));
    assert_eq!(
        io.dropped_bytes(),
        0,
        "no write failed: the keep-alive reader prevented EPIPE"
    );
    io.close();
}

#[test]
fn file_scheme_appends_both_streams_to_one_file() {
    let dir = TempDir::new("io-file");
    let log = dir.join("sub/dir/t6.log");
    let uri = format!("file://{}", s(&log));
    for round in ["a", "b"] {
        let (mut io, stdio) = ProcessIo::new(&spec("", &uri, &uri), owner()).unwrap();
        let mut child = spawn_container(&format!("echo out-{round}; echo err-{round} >&2"), stdio);
        io.start().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(io.wait_drained(LIMIT));
        io.close();
    }
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[..2].iter().filter(|l| l.ends_with("-a")).count(),
        2,
        "round a before round b: {lines:?}"
    );
    lines.sort();
    assert_eq!(lines, ["err-a", "err-b", "out-a", "out-b"]);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(mode, 0o644 & !umask);
    assert!(std::fs::metadata(log.parent().unwrap()).unwrap().is_dir());
}

#[test]
fn null_io_gives_runc_dev_null() {
    let (io, stdio) = ProcessIo::new(&spec("", "", ""), owner()).unwrap();
    for fd in [
        stdio.stdout.as_ref().unwrap(),
        stdio.stderr.as_ref().unwrap(),
    ] {
        let target = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .unwrap();
        assert_eq!(target, Path::new("/dev/null"));
    }
    assert!(stdio.stdin.is_none());
    assert!(io.wait_drained(Duration::ZERO));
    io.close();
}

#[test]
fn empty_streams_get_dev_null_not_a_pipe() {
    let dir = TempDir::new("io-partial");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let err = stdio.stderr.as_ref().unwrap();
    let target = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(err)
    ))
    .unwrap();
    assert_eq!(target, Path::new("/dev/null"));
    let outfd = stdio.stdout.as_ref().unwrap();
    let target = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(outfd)
    ))
    .unwrap();
    assert!(
        target.display().to_string().starts_with("pipe:"),
        "{target:?}"
    );
    io.close();
}

#[test]
fn a_binary_logger_needs_to_know_who_it_logs_for() {
    // The shim always supplies the context; without one, start refuses instead of guessing.
    let (mut io, _stdio) =
        ProcessIo::new(&spec("", "binary:///usr/bin/logger?a=b", ""), owner()).unwrap();
    let err = io.start().err().unwrap();
    assert!(matches!(err, IoError::Unsupported(_)), "{err}");
}

#[test]
fn missing_fifo_fails_start_naming_the_path() {
    let dir = TempDir::new("io-missing");
    let out = dir.join("nope");
    let (mut io, _stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let err = io.start().unwrap_err();
    assert!(err.to_string().contains(&s(&out)), "{err}");
    io.close();
}

#[test]
fn start_does_not_wait_for_a_client_reader() {
    // Nobody has the fifo open: start must still return, and the process is not blocked.
    let dir = TempDir::new("io-noreader");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container("echo early", stdio);
    io.start().unwrap();
    assert!(child.wait().unwrap().success());
    io.close();
}

/// Opens `fifo` for reading as ctr does (a blocking open(2), which waits for a writer) after
/// `delay`, and reads it to EOF, on a thread.
fn client_reads(fifo: &Path, delay: Duration) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut got = Vec::new();
        File::open(&fifo).unwrap().read_to_end(&mut got).unwrap();
        let _ = tx.send(got);
    });
    rx
}

/// What the client read. Called once the shim is done with the fifo: a client still stuck in
/// open(2) then waits for a writer that will never come, and is unblocked the way ctr's Cancel
/// does it (containerd/fifo opens the other end), reading nothing.
fn collect(rx: &std::sync::mpsc::Receiver<Vec<u8>>, fifo: &Path) -> Vec<u8> {
    let deadline = std::time::Instant::now() + LIMIT;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(got) => return got,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo);
            }
            Err(e) => panic!("client thread: {e}"),
        }
    }
    panic!("the client never finished reading {}", fifo.display());
}

#[test]
fn output_waits_in_the_fifo_for_a_client_that_opens_after_the_process_ended() {
    // A short exec under load: ctr's goroutine opening its stdout fifo runs late, after the
    // process has exited and its output sits in the fifo. That output must still reach it, and
    // "drained" (what the exit and Delete wait for) must mean the client has read it.
    let dir = TempDir::new("io-late");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container("echo early", stdio);
    io.start().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        !io.wait_drained(Duration::from_millis(300)),
        "drained before any client read the output"
    );
    let got = client_reads(&out, Duration::ZERO);
    assert_eq!(collect(&got, &out), b"early\n");
    assert!(io.wait_drained(LIMIT));
    assert_eq!(io.dropped_bytes(), 0);
    io.close();
}

#[test]
fn every_short_process_output_reaches_a_late_client_in_400_rounds() {
    // The shape of `ctr task exec` under load, as a loop: the process writes one line and exits;
    // the client opens its fifo at some point around that (before, during, after the copy), and
    // the shim waits for "drained" (the exit) and then closes (Delete), as the service does. No
    // round may lose its line, however the client's open falls.
    const ROUNDS: u32 = 400;
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let dir = TempDir::new("io-race");
        let out = dir.join("stdout");
        mkfifo(&out);
        let delay = Duration::from_micros(u64::from(round % 20) * 500);
        let got = client_reads(&out, delay);
        let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
        let mut child = spawn_container(&format!("echo out-{round}"), stdio);
        io.start().unwrap();
        assert!(child.wait().unwrap().success());
        let drained = io.wait_drained(LIMIT);
        io.close();
        let text = collect(&got, &out);
        if text != format!("out-{round}\n").as_bytes() {
            let text = String::from_utf8_lossy(&text).into_owned();
            lost.push(format!("round {round}: read {text:?}, drained {drained}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost their line: {lost:?}",
        lost.len()
    );
}

/// Every log record of this test binary, as `LEVEL message` (the facade's backend in the shim is
/// its logrus-style log; here a list).
fn logs() -> &'static std::sync::Mutex<Vec<String>> {
    struct Capture(std::sync::Mutex<Vec<String>>);
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, r: &log::Record) {
            let line = format!("{} {}", r.level(), r.args());
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
        fn flush(&self) {}
    }
    static CAPTURE: std::sync::OnceLock<&'static Capture> = std::sync::OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Default::default())));
        log::set_logger(c).expect("one logger per test binary");
        log::set_max_level(log::LevelFilter::Trace);
        c
    });
    &capture.0
}

/// Waits (bounded: the IO thread logs when a copy ends) for a log line containing every needle.
fn logged(needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let found = logs()
            .lock()
            .unwrap()
            .iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .cloned();
        if let Some(line) = found {
            return line;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "no log line with {needles:?} in {:#?}",
                logs().lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn output_a_failing_destination_cannot_take_is_dropped_counted_and_logged() {
    logs();
    // /dev/full fails every write with ENOSPC: the copy drains the pipe so the process never
    // blocks, and says once that it does and, at the end, how much it dropped.
    let (mut io, stdio) =
        ProcessIo::new(&spec("", "file:///dev/full", "file:///dev/full"), owner()).unwrap();
    let mut child = spawn_container("head -c 1000 /dev/zero", stdio);
    io.start().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(io.wait_drained(LIMIT));
    assert_eq!(io.dropped_bytes(), 1000);
    let line = logged(&["stdout to /dev/full", "writing to the client failed"]);
    assert!(line.starts_with("WARN "), "{line}");
    logged(&["stdout to /dev/full", "1000 bytes of output dropped"]);
    io.close();
}

#[test]
fn output_nobody_read_by_close_is_dropped_and_logged_with_its_size() {
    logs();
    let dir = TempDir::new("io-unread");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container("echo never-read", stdio);
    io.start().unwrap();
    assert!(child.wait().unwrap().success());
    // No client ever opened the fifo: Delete's bounded wait runs out, and close gives up on it.
    assert!(!io.wait_drained(Duration::from_millis(100)));
    io.close();
    let line = logged(&[
        &s(&out),
        "11 bytes of output dropped",
        "none has the fifo open",
    ]);
    assert!(line.starts_with("WARN "), "{line}");
}
