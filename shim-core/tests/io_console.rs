//! ConsoleSocket receiving a pty master over SCM_RIGHTS, and Console copying and resizing.

#[path = "fixtures/common.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{mkfifo, TempDir};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use nix::sys::stat::fstat;
use shim_core::io::{Console, ConsoleSocket, IoError, IoSpec};

const LIMIT: Duration = Duration::from_secs(60);

fn send_fd(path: &std::path::Path, fd: &OwnedFd) {
    let stream = UnixStream::connect(path).unwrap();
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(b"/dev/ptmx")];
    sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
}

#[test]
fn console_socket_receives_a_fd_sent_with_scm_rights() {
    let socket = ConsoleSocket::new().unwrap();
    let path = socket.path().to_path_buf();
    assert_eq!(path.file_name().unwrap(), "pty.sock");
    assert!(path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("pty"));
    let pty = nix::pty::openpty(None, None).unwrap();
    let sender = {
        let (path, master) = (path.clone(), pty.master.try_clone().unwrap());
        std::thread::spawn(move || send_fd(&path, &master))
    };
    let got = socket.receive_master(LIMIT).unwrap();
    sender.join().unwrap();
    let (a, b) = (
        fstat(got.as_raw_fd()).unwrap(),
        fstat(pty.master.as_raw_fd()).unwrap(),
    );
    assert_eq!(
        (a.st_dev, a.st_ino, a.st_rdev),
        (b.st_dev, b.st_ino, b.st_rdev)
    );
    let flags = unsafe { libc::fcntl(got.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(
        flags & libc::FD_CLOEXEC,
        libc::FD_CLOEXEC,
        "received fd is close-on-exec"
    );
    assert!(
        !path.exists() && !path.parent().unwrap().exists(),
        "socket and dir removed"
    );
}

#[test]
fn receive_master_is_bounded_by_its_limit() {
    let socket = ConsoleSocket::new().unwrap();
    let dir = socket.path().parent().unwrap().to_path_buf();
    let err = socket
        .receive_master(Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(err, IoError::TimedOut { .. }), "{err}");
    assert!(!dir.exists());
}

#[test]
fn a_peer_that_sends_no_fd_is_an_error() {
    let socket = ConsoleSocket::new().unwrap();
    let path = socket.path().to_path_buf();
    let sender = std::thread::spawn(move || {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(b"/dev/ptmx").unwrap();
    });
    let err = socket.receive_master(LIMIT).unwrap_err();
    sender.join().unwrap();
    assert!(matches!(err, IoError::Protocol(_)), "{err}");
}

#[test]
fn dropping_the_socket_removes_its_dir() {
    let socket = ConsoleSocket::new().unwrap();
    let dir = socket.path().parent().unwrap().to_path_buf();
    assert!(socket.path().exists());
    drop(socket);
    assert!(!dir.exists());
}

#[test]
fn resize_changes_the_window_size_of_the_pty() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let console = Console::start(pty.master, &IoSpec::default()).unwrap();
    console.resize(120, 40).unwrap();
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
        0
    );
    assert_eq!((ws.ws_row, ws.ws_col), (40, 120));
    console.close();
}

#[test]
fn console_copies_both_ways_and_ends_when_the_slave_closes() {
    let dir = TempDir::new("io-console");
    let (inp, out) = (dir.join("stdin"), dir.join("stdout"));
    mkfifo(&inp);
    mkfifo(&out);
    let pty = nix::pty::openpty(None, None).unwrap();
    // Raw mode: no echo, no CR/LF translation, so bytes are compared exactly.
    let mut t = nix::sys::termios::tcgetattr(pty.slave.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(pty.slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t)
        .unwrap();
    let spec = IoSpec {
        stdin: inp.display().to_string(),
        stdout: out.display().to_string(),
        stderr: String::new(),
        terminal: true,
    };
    let console = Console::start(pty.master, &spec).unwrap();
    let mut slave = File::from(pty.slave);

    let mut client_in = OpenOptions::new().write(true).open(&inp).unwrap();
    client_in.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    slave.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    let mut client_out = File::open(&out).unwrap();
    slave.write_all(b"pong").unwrap();
    client_out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");

    drop(slave); // the process is gone: the master reads EIO, which is EOF
    assert!(console.wait_drained(LIMIT));
    let mut rest = Vec::new();
    client_out.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    console.close_stdin();
    console.close();
}

/// `seq 1 <lines>` as a terminal shows it (ONLCR: each line ends in `\r\n`).
fn seq_on_a_tty(lines: u32) -> Vec<u8> {
    (1..=lines)
        .flat_map(|i| format!("{i}\r\n").into_bytes())
        .collect()
}

#[test]
fn the_last_line_reaches_a_slow_client_in_200_rounds_however_soon_the_console_closes() {
    // A terminal exec's output races its exit: when the process has exited, the end of its
    // output can still sit in the pty and in our buffer, behind a client that reads slowly (a
    // loaded machine: ctr, then the terminal ctr writes to). The exit and Delete wait for it
    // only so long; then the console closes. Nothing the process wrote may be lost for a
    // client that still has its fifo open: every round must end with the last line.
    const ROUNDS: u32 = 200;
    const LINES: u32 = 20_000; // 129 KB: more than the pty, our buffer and the fifo hold
    let expected = seq_on_a_tty(LINES);
    let mut short = Vec::new();
    for round in 0..ROUNDS {
        let dir = TempDir::new("io-tty-tail");
        let out = dir.join("stdout");
        mkfifo(&out);
        let pty = nix::pty::openpty(None, None).unwrap();
        let spec = IoSpec {
            stdin: String::new(),
            stdout: out.display().to_string(),
            stderr: String::new(),
            terminal: true,
        };
        // The client: opens as ctr does (before the process runs), reads 4 KiB at a time with
        // a pause that varies per round.
        let pause = Duration::from_micros(u64::from(round % 5) * 200);
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut fifo = File::open(&out).unwrap();
                let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                loop {
                    match fifo.read(&mut buf).unwrap() {
                        0 => break,
                        n => got.extend_from_slice(&buf[..n]),
                    }
                    std::thread::sleep(pause);
                }
                let _ = tx.send(got);
            });
        }
        let console = Console::start(pty.master, &spec).unwrap();
        let slave = File::from(pty.slave);
        let mut child = std::process::Command::new("seq")
            .args(["1", &LINES.to_string()])
            .stdout(slave.try_clone().unwrap())
            .spawn()
            .unwrap();
        drop(slave);
        assert!(child.wait().unwrap().success());
        // The exit's and Delete's bounded waits, shorter than the client needs; then Delete.
        console.wait_drained(Duration::from_millis(u64::from(round % 3)));
        console.close();
        let got = rx.recv_timeout(LIMIT).expect("the client never saw EOF");
        if got != expected {
            let tail = String::from_utf8_lossy(&got[got.len().saturating_sub(16)..]).into_owned();
            short.push(format!(
                "round {round}: {} of {} bytes, ending {tail:?}",
                got.len(),
                expected.len()
            ));
        }
    }
    assert!(
        short.is_empty(),
        "{} of {ROUNDS} rounds cut short: {short:#?}",
        short.len()
    );
}

/// Every log record of this test binary, as `LEVEL message`.
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

#[test]
fn a_console_socket_dir_that_cannot_be_removed_is_logged() {
    logs();
    let socket = ConsoleSocket::new().unwrap();
    let dir = socket.path().parent().unwrap().to_path_buf();
    std::fs::write(dir.join("left-by-someone"), b"x").unwrap();
    drop(socket);
    let needle = format!("cannot remove {} (console socket)", dir.display());
    let line = logs()
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains(&needle))
        .cloned();
    std::fs::remove_dir_all(&dir).unwrap();
    let line =
        line.unwrap_or_else(|| panic!("no log line {needle:?}: {:?}", logs().lock().unwrap()));
    assert!(line.starts_with("WARN "), "{line}");
}
