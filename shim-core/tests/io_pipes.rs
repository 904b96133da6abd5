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
    // It stays alive until the re-attached reader has read: once it exits, the copier closes
    // the fifo and, with no reader attached, the kernel drops what the fifo held (as with Go).
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
    // Nobody ever opens the fifo: start must still return, and the output waits in the fifo.
    let dir = TempDir::new("io-noreader");
    let out = dir.join("stdout");
    mkfifo(&out);
    let (mut io, stdio) = ProcessIo::new(&spec("", &s(&out), ""), owner()).unwrap();
    let mut child = spawn_container("echo early", stdio);
    io.start().unwrap();
    assert!(child.wait().unwrap().success());
    // The line sits in the fifo (held open by our keep-alive reader): the copier is not blocked.
    assert!(io.wait_drained(LIMIT));
    io.close();
}
