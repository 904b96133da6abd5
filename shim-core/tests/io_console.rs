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
