//! The IO thread: one epoll loop moves every process's stdio between its pipes or pty and the client.
//!
//! Each stream is a `Copy` from a source fd to a destination fd. Pipe to fifo (and fifo to pipe)
//! moves with splice(2), so the bytes never enter this process; a pty or a regular file goes
//! through a buffer. All fds are non-blocking and registered edge-triggered, so one thread serves
//! every stream of every process and none can block another. The thread starts with the first
//! copy and lives as long as the process (like the reaper's); nobody joins it. A copy owns its
//! fds: they are closed when it ends (EOF, or an error it cannot drain past) or is cancelled.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::fifo::set_nonblocking;
use super::latch::LatchGuard;
use super::IoError;

/// Bytes one splice may move; a pipe holds far less, so this only means "all there is".
const SPLICE_MAX: usize = 1 << 20;
/// Buffer of a copy that cannot splice (pty, regular file).
const BUF: usize = 32 * 1024;
/// Transfers one copy may make before the others get a turn.
const BUDGET: usize = 16;
/// epoll data of the wake-up eventfd (copy ids start at 1).
const WAKE: u64 = 0;

/// What a copy does when writing to its destination fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnWriteError {
    /// Give up (stdin: the container is gone).
    Stop,
    /// Keep reading the source and count what is dropped (output: never block the container).
    Drain,
}

/// One stream to move until its source ends.
pub(crate) struct Copy {
    pub src: File,
    pub dst: File,
    /// Closed together with the copy (a fifo's keep-alive reader).
    pub keep: Vec<File>,
    /// What a failed write to `dst` does: end the copy, or keep reading and count what is dropped.
    pub on_error: OnWriteError,
    /// Counted down when the copy ends (however it ends).
    pub done: Option<LatchGuard>,
    /// Bytes thrown away after `dst` failed.
    pub dropped: Option<Arc<AtomicU64>>,
}

/// Names a running copy, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CopyId(u64);

enum Command {
    Add(CopyId, Box<Copy>),
    Cancel(CopyId),
}

/// The handle to the IO thread.
pub(crate) struct Reactor {
    commands: Mutex<Vec<Command>>,
    wake: EventFd,
    next_id: AtomicU64,
}

static REACTOR: OnceLock<Result<Arc<Reactor>, String>> = OnceLock::new();

impl Reactor {
    /// The process's IO thread, started on first use.
    pub fn get() -> Result<Arc<Reactor>, IoError> {
        REACTOR
            .get_or_init(|| Reactor::start().map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| IoError::Os {
                what: "start the IO thread",
                source: io::Error::other(e),
            })
    }

    fn start() -> io::Result<Arc<Reactor>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let reactor = Arc::new(Reactor {
            commands: Mutex::new(Vec::new()),
            wake,
            next_id: AtomicU64::new(1),
        });
        let handle = Arc::clone(&reactor);
        thread::Builder::new()
            .name("io".into())
            .spawn(move || Loop::new(epoll, handle).run())?;
        Ok(reactor)
    }

    /// Start moving `copy`. Its fds are made non-blocking.
    pub fn add(&self, copy: Copy) -> Result<CopyId, IoError> {
        for f in [&copy.src, &copy.dst] {
            set_nonblocking(f, true).map_err(IoError::os("set a stdio fd non-blocking"))?;
        }
        let id = CopyId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.send(Command::Add(id, Box::new(copy)));
        Ok(id)
    }

    /// Stop `id` and close its fds (if it has not ended already).
    pub fn cancel(&self, id: CopyId) {
        self.send(Command::Cancel(id));
    }

    fn send(&self, c: Command) {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
        // A full counter (never, at 2^64) still leaves the loop awake: nothing is lost.
        let _ = self.wake.write(1);
    }
}

/// How a copy moves its bytes.
enum Mode {
    /// Both ends are pipes or fifos: the kernel moves the pages.
    Splice,
    /// Through our buffer: bytes [start, end) read but not written yet.
    Buffered {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

struct Job {
    copy: Copy,
    mode: Mode,
    /// Registered with epoll (pipes, fifos, ttys; regular files cannot be and are always ready).
    src_polled: bool,
    dst_polled: bool,
    /// False once a write failed and the copy only drains its source.
    dst_ok: bool,
}

enum Progress {
    /// Waiting for an edge on either end.
    Blocked,
    /// Out of budget with more to do.
    More,
    /// The source ended, or the copy gave up.
    Finished,
}

struct Loop {
    epoll: Epoll,
    reactor: Arc<Reactor>,
    jobs: HashMap<u64, Job>,
    /// Copies that used up their budget: run again before waiting.
    ready: VecDeque<u64>,
    /// Where a draining copy reads what it drops.
    scratch: Box<[u8]>,
}

/// (is a pipe or fifo, is a regular file), from one fstat.
fn kind(f: &File) -> (bool, bool) {
    f.metadata()
        .map(|m| (m.file_type().is_fifo(), m.file_type().is_file()))
        .unwrap_or((false, false))
}

impl Loop {
    fn new(epoll: Epoll, reactor: Arc<Reactor>) -> Loop {
        Loop {
            epoll,
            reactor,
            jobs: HashMap::new(),
            ready: VecDeque::new(),
            scratch: vec![0u8; BUF].into_boxed_slice(),
        }
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let timeout = if self.ready.is_empty() {
                EpollTimeout::NONE
            } else {
                EpollTimeout::ZERO
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(_) => return, // the epoll fd itself failed: nothing can be served any more
            };
            for ev in &events[..n] {
                if ev.data() == WAKE {
                    let _ = self.reactor.wake.read();
                    self.commands();
                } else {
                    self.pump(ev.data() >> 1);
                }
            }
            for _ in 0..self.ready.len() {
                if let Some(id) = self.ready.pop_front() {
                    self.pump(id);
                }
            }
        }
    }

    fn commands(&mut self) {
        let commands = std::mem::take(
            &mut *self
                .reactor
                .commands
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for c in commands {
            match c {
                Command::Add(CopyId(id), copy) => self.add(id, *copy),
                Command::Cancel(CopyId(id)) => self.finish(id),
            }
        }
    }

    fn add(&mut self, id: u64, copy: Copy) {
        let ((src_pipe, src_file), (dst_pipe, dst_file)) = (kind(&copy.src), kind(&copy.dst));
        let splice = src_pipe && dst_pipe;
        let mode = if splice {
            Mode::Splice
        } else {
            Mode::Buffered {
                buf: vec![0u8; BUF].into_boxed_slice(),
                start: 0,
                end: 0,
            }
        };
        let edge = EpollFlags::EPOLLET;
        let src_polled = !src_file
            && self
                .epoll
                .add(
                    &copy.src,
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | edge, id << 1),
                )
                .is_ok();
        let dst_polled = !dst_file
            && self
                .epoll
                .add(
                    &copy.dst,
                    EpollEvent::new(EpollFlags::EPOLLOUT | edge, (id << 1) | 1),
                )
                .is_ok();
        self.jobs.insert(
            id,
            Job {
                copy,
                mode,
                src_polled,
                dst_polled,
                dst_ok: true,
            },
        );
        // Readiness from before the registration (data already in the pipe, a regular file).
        self.pump(id);
    }

    /// End copy `id`: out of epoll, fds closed, its latch counted down.
    fn finish(&mut self, id: u64) {
        if let Some(job) = self.jobs.remove(&id) {
            if job.src_polled {
                let _ = self.epoll.delete(&job.copy.src);
            }
            if job.dst_polled {
                let _ = self.epoll.delete(&job.copy.dst);
            }
            let Copy {
                src,
                dst,
                keep,
                done,
                ..
            } = job.copy;
            // The client sees EOF before anyone waiting on the latch learns the copy ended.
            drop((src, dst, keep));
            drop(done);
        }
    }

    fn pump(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return; // an event for a copy that already ended
        };
        match step(job, &self.epoll, &mut self.scratch) {
            Progress::Blocked => {}
            Progress::More => self.ready.push_back(id),
            Progress::Finished => self.finish(id),
        }
    }
}

/// Move what can be moved now, within the budget.
fn step(job: &mut Job, epoll: &Epoll, scratch: &mut [u8]) -> Progress {
    for _ in 0..BUDGET {
        let moved = if !job.dst_ok {
            discard(job, scratch)
        } else {
            match &mut job.mode {
                Mode::Splice => splice(&job.copy.src, &job.copy.dst),
                Mode::Buffered { buf, start, end } => {
                    buffered(&job.copy.src, &job.copy.dst, buf, start, end)
                }
            }
        };
        match moved {
            Moved::Some => {}
            Moved::Blocked => return Progress::Blocked,
            Moved::Eof => return Progress::Finished,
            Moved::WriteFailed => match job.copy.on_error {
                OnWriteError::Stop => return Progress::Finished,
                OnWriteError::Drain => {
                    // Keep the container from blocking on us: drop what the client cannot take.
                    if let Mode::Buffered { start, end, .. } = &mut job.mode {
                        let pending = (*end - *start) as u64;
                        (*start, *end) = (0, 0);
                        add_dropped(job, pending);
                    }
                    job.dst_ok = false;
                    job.copy.keep.clear();
                    if job.dst_polled {
                        let _ = epoll.delete(&job.copy.dst);
                        job.dst_polled = false;
                    }
                }
            },
        }
    }
    Progress::More
}

enum Moved {
    Some,
    Blocked,
    Eof,
    WriteFailed,
}

fn retry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

fn blocked(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn splice(src: &File, dst: &File) -> Moved {
    loop {
        // SAFETY: splice between two fds we own; null offsets (pipes have none).
        let n = unsafe {
            libc::splice(
                src.as_raw_fd(),
                std::ptr::null_mut(),
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                SPLICE_MAX,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        match n {
            0 => return Moved::Eof,
            n if n > 0 => return Moved::Some,
            _ => {
                let e = io::Error::last_os_error();
                if retry(&e) {
                    continue;
                }
                if blocked(&e) {
                    return Moved::Blocked;
                }
                // Our read end of a pipe does not fail: the write side did (no reader, closed).
                return Moved::WriteFailed;
            }
        }
    }
}

/// Write what is buffered, else read more. EIO from a pty master means its slave side closed: EOF.
fn buffered(
    mut src: &File,
    mut dst: &File,
    buf: &mut [u8],
    start: &mut usize,
    end: &mut usize,
) -> Moved {
    if *start < *end {
        return match dst.write(&buf[*start..*end]) {
            Ok(0) => Moved::WriteFailed,
            Ok(n) => {
                *start += n;
                if *start == *end {
                    (*start, *end) = (0, 0);
                }
                Moved::Some
            }
            Err(e) if retry(&e) => Moved::Some,
            Err(e) if blocked(&e) => Moved::Blocked,
            Err(_) => Moved::WriteFailed,
        };
    }
    match src.read(buf) {
        Ok(0) => Moved::Eof,
        Ok(n) => {
            (*start, *end) = (0, n);
            Moved::Some
        }
        Err(e) if retry(&e) => Moved::Some,
        Err(e) if blocked(&e) => Moved::Blocked,
        Err(_) => Moved::Eof,
    }
}

/// After the destination failed: read and drop, counting.
fn discard(job: &mut Job, scratch: &mut [u8]) -> Moved {
    match (&job.copy.src).read(scratch) {
        Ok(0) => Moved::Eof,
        Ok(n) => {
            add_dropped(job, n as u64);
            Moved::Some
        }
        Err(e) if retry(&e) => Moved::Some,
        Err(e) if blocked(&e) => Moved::Blocked,
        Err(_) => Moved::Eof,
    }
}

fn add_dropped(job: &Job, n: u64) {
    if let Some(d) = &job.copy.dropped {
        d.fetch_add(n, Ordering::Relaxed);
    }
}
