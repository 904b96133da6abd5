//! The IO thread: one epoll loop moves every process's stdio between its pipes or pty and the client.
//!
//! Each stream is a `Copy` from a source fd to a destination fd. Pipe to fifo (and fifo to pipe)
//! moves with splice(2), so the bytes never enter this process; a pty or a regular file goes
//! through a buffer. All fds are non-blocking and registered edge-triggered, so one thread serves
//! every stream of every process and none can block another. The thread starts with the first
//! copy and lives as long as the process (like the reaper's); nobody joins it. A copy owns its
//! fds: they are closed when it ends (EOF, or an error it cannot drain past) or is cancelled.
//!
//! An output copy into a client's fifo does not end at its source's EOF while the fifo still holds
//! bytes nobody has read: it *lingers*, holding its writer, until the fifo is empty or its owner
//! releases it. A fifo's buffer lives only as long as someone has it open, and a client may not
//! have opened its end yet (ctr opens its fifos on goroutines that can lag behind a short exec
//! by hundreds of milliseconds), or may have opened it without having read yet: closing our last
//! end then throws the output away. The kernel says nothing when a reader empties a pipe that was
//! not full, so a lingering copy looks at FIONREAD on a short timer that backs off.
//!
//! An output that streams is moved in batches (see `rest`): its source goes unwatched for a
//! millisecond while its pipe gathers the container's small writes, instead of one wake-up here
//! and one in the client per write.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::fifo::set_nonblocking;
use super::latch::LatchGuard;
use super::IoError;

/// Bytes one splice may move; a pipe holds far less, so this only means "all there is".
const SPLICE_MAX: usize = 1 << 20;
/// The buffer size a spliced copy asks for on both its pipes (the kernel's default is 64 KiB).
/// A bigger pipe lets each wake-up move more: on 1 GiB of stdout it cut the splice calls from
/// about 94,000 to 28,000 (1 MiB alone did no better; a batched source gets 1 MiB, see
/// `BATCH_PIPE_SIZE`). Best effort: the kernel may refuse (a lower pipe-max-size, or a user
/// over pipe-user-pages-soft), and the copy works either way. The pages are charged to the
/// container that wrote them, and a client that never reads holds at most this much per pipe
/// (its source pipe's too).
const PIPE_SIZE: libc::c_int = 256 << 10;
/// Batching of a streaming output (see `rest`): a wake-up that moved less than this...
const BATCH_BELOW: usize = 64 << 10;
/// ...no longer than this after the one before it...
const BATCH_WINDOW: Duration = Duration::from_millis(1);
/// ...leaves the source unwatched this long (the epoll timeout's millisecond, rounded up).
const BATCH_DELAY: Duration = Duration::from_millis(1);
/// The source pipe of a batched copy: what a container can write while its batch gathers, so
/// the delay caps a stream at about this much per `BATCH_DELAY` (about 900 MiB/s). A pipe the
/// kernel will not grow this far is not batched.
const BATCH_PIPE_SIZE: libc::c_int = 1 << 20;
/// Buffer of a copy that cannot splice (pty, regular file).
const BUF: usize = 32 * 1024;
/// Transfers one copy may make before the others get a turn.
const BUDGET: usize = 16;
/// epoll data of the wake-up eventfd (copy ids start at 1).
const WAKE: u64 = 0;
/// A lingering copy first looks at its fifo this soon after its source ended, then twice as late
/// each time, up to `LINGER_MAX_STEP`; after `LINGER_PATIENT` (longer than an exit's and a
/// Delete's waits) only every `LINGER_SLOW_STEP`, until its owner releases it.
const LINGER_FIRST_STEP: Duration = Duration::from_millis(1);
const LINGER_MAX_STEP: Duration = Duration::from_millis(50);
const LINGER_PATIENT: Duration = Duration::from_secs(5);
const LINGER_SLOW_STEP: Duration = Duration::from_secs(1);

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
    /// At the source's EOF, keep `dst` open while it is a fifo still holding unread bytes (see the
    /// module docs), until it is empty or the copy is released or cancelled. For output to a
    /// client; never for stdin (the container may never read it all).
    pub linger: bool,
    /// Counted down when the copy ends (however it ends): after lingering, once the client has
    /// read every byte.
    pub done: Option<LatchGuard>,
    /// Bytes thrown away after `dst` failed.
    pub dropped: Option<Arc<AtomicU64>>,
    /// A source that streams is read in batches, at most `BATCH_DELAY` late (output to a
    /// client through pipes; never a terminal's, where a keystroke's echo must not wait).
    pub batch: bool,
    /// Names the stream in log lines (`stdout fifo /run/…/e1-stdout`).
    pub label: String,
}

/// Names a running copy, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CopyId(u64);

enum Command {
    Add(CopyId, Box<Copy>),
    Cancel(CopyId),
    Release(CopyId),
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
        // Vital: without it no output is copied any more, so the shim ends if it fails.
        crate::vital::spawn("io", move || Loop::new(epoll, handle).run())?;
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

    /// The owner stops waiting for `id`: a lingering copy ends now (the bytes left in its fifo
    /// stay readable to a client that has it open). A running one goes on while a client has
    /// its fifo open (our keep-alive reader is closed, so once none has, writing fails and the
    /// rest is drained and dropped), and ends at its source's EOF without lingering.
    pub fn release(&self, id: CopyId) {
        self.send(Command::Release(id));
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
    /// The source's readiness is asked for: false while a batch gathers (see `rest`).
    src_armed: bool,
    /// A streaming source is read in batches: asked for, and the source pipe could hold one.
    batch: bool,
    /// When the source is watched again, while a batch gathers.
    rearm_at: Option<Instant>,
    /// When the copy last moved bytes.
    last_moved: Option<Instant>,
    /// `dst` is a fifo (or pipe): only then can the copy linger.
    dst_fifo: bool,
    /// False once a write failed and the copy only drains its source.
    dst_ok: bool,
    /// Bytes this copy threw away (also added to `copy.dropped`), for its closing log line.
    dropped: u64,
    /// The owner released it: no lingering from now on.
    released: bool,
    /// Source at EOF, waiting for the client to empty the fifo.
    linger: Option<Linger>,
}

/// When a lingering copy next looks at its fifo.
struct Linger {
    since: Instant,
    next: Instant,
    step: Duration,
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
    /// Where a draining copy reads what it drops; allocated at the first drop, since most shims
    /// never drop a byte and an idle shim should not hold the pages.
    scratch: Vec<u8>,
}

/// Ask for a `size` buffer on pipe `f`; its capacity after. A refusal is logged at debug level only.
fn grow_pipe(f: &File, size: libc::c_int) -> usize {
    // SAFETY: F_SETPIPE_SZ on an fd we own; it changes only the pipe's capacity.
    let got = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    if got >= 0 {
        return got as usize;
    }
    log::debug!("pipe size stays: {}", io::Error::last_os_error());
    // SAFETY: as above; F_GETPIPE_SZ only reads.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) }.max(0) as usize
}

/// Bytes in a pipe's buffer that no reader has taken yet.
fn unread(f: &File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which outlives the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return 0;
    }
    usize::try_from(n).unwrap_or(0)
}

/// Whether a fifo we hold for writing has a reader (POLLERR on a writer means none).
fn has_reader(f: &File) -> bool {
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n < 0 || pfd.revents & libc::POLLERR == 0
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
            scratch: Vec::new(),
        }
    }

    /// Move bytes until epoll itself fails (then nothing can be served: the reason).
    fn run(mut self) -> Result<(), String> {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let timeout = if !self.ready.is_empty() {
                EpollTimeout::ZERO
            } else {
                match self.next_timer() {
                    None => EpollTimeout::NONE,
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        // Round up: never spin on a sub-millisecond remainder.
                        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                        EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
                    }
                }
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                // The epoll fd itself failed: nothing can be served any more.
                Err(e) => return Err(format!("epoll_wait: {e}")),
            };
            for ev in &events[..n] {
                if ev.data() == WAKE {
                    let _ = self.reactor.wake.read();
                    self.commands();
                } else {
                    self.pump(ev.data() >> 1);
                }
            }
            self.rearm_due();
            for _ in 0..self.ready.len() {
                if let Some(id) = self.ready.pop_front() {
                    self.pump(id);
                }
            }
            self.check_lingering();
        }
    }

    /// The next timer: a lingering copy's look at its fifo, or a batch's end.
    fn next_timer(&self) -> Option<Instant> {
        self.jobs
            .values()
            .filter_map(|j| j.linger.as_ref().map(|l| l.next).or(j.rearm_at))
            .min()
    }

    /// End the lingering copies whose fifo is empty now; look again later at the others.
    fn check_lingering(&mut self) {
        let now = Instant::now();
        let mut emptied = Vec::new();
        for (id, job) in &mut self.jobs {
            let Some(l) = &mut job.linger else { continue };
            if l.next > now {
                continue;
            }
            if unread(&job.copy.dst) == 0 {
                emptied.push(*id);
            } else {
                l.step = if now.duration_since(l.since) < LINGER_PATIENT {
                    (l.step * 2).min(LINGER_MAX_STEP)
                } else {
                    LINGER_SLOW_STEP
                };
                l.next = now + l.step;
            }
        }
        for id in emptied {
            self.finish(id);
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
                Command::Release(CopyId(id)) => self.release(id),
            }
        }
    }

    fn add(&mut self, id: u64, copy: Copy) {
        let ((src_pipe, src_file), (dst_pipe, dst_file)) = (kind(&copy.src), kind(&copy.dst));
        let splice = src_pipe && dst_pipe;
        let mut batch = false;
        let mode = if splice {
            let want = if copy.batch {
                BATCH_PIPE_SIZE
            } else {
                PIPE_SIZE
            };
            batch = copy.batch && grow_pipe(&copy.src, want) >= want as usize;
            grow_pipe(&copy.dst, PIPE_SIZE);
            Mode::Splice
        } else {
            Mode::Buffered {
                buf: vec![0u8; BUF].into_boxed_slice(),
                start: 0,
                end: 0,
            }
        };
        let edge = EpollFlags::EPOLLET;
        let register = |f: &File, flags: EpollFlags, data: u64, end: &str| -> bool {
            match self.epoll.add(f, EpollEvent::new(flags | edge, data)) {
                Ok(()) => true,
                // A file that cannot be polled (a device such as /dev/null) is always ready.
                Err(Errno::EPERM) => false,
                Err(e) => {
                    // Served only when the other end or a retry wakes the copy: it may stall.
                    log::warn!("{}: cannot watch its {end} for readiness: {e}", copy.label);
                    false
                }
            }
        };
        let src_polled = !src_file
            && register(
                &copy.src,
                EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP,
                id << 1,
                "source",
            );
        let dst_polled = !dst_file
            && register(
                &copy.dst,
                EpollFlags::EPOLLOUT,
                (id << 1) | 1,
                "destination",
            );
        self.jobs.insert(
            id,
            Job {
                copy,
                mode,
                src_polled,
                dst_polled,
                src_armed: src_polled,
                batch,
                rearm_at: None,
                last_moved: None,
                dst_fifo: dst_pipe,
                dst_ok: true,
                dropped: 0,
                released: false,
                linger: None,
            },
        );
        // Readiness from before the registration (data already in the pipe, a regular file).
        self.pump(id);
    }

    /// The source ended: linger while the fifo holds unread bytes (see the module docs), else end.
    fn source_ended(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let linger = job.copy.linger && job.dst_fifo && job.dst_ok && !job.released;
        if !linger || unread(&job.copy.dst) == 0 {
            return self.finish(id);
        }
        // Only the writer is needed now: it keeps the bytes alive and lets a late client's
        // open(2) return. Without our reader, a reader-less fifo shows as POLLERR at the end.
        if job.src_polled {
            let _ = self.epoll.delete(&job.copy.src);
            job.src_polled = false;
        }
        if job.dst_polled {
            let _ = self.epoll.delete(&job.copy.dst);
            job.dst_polled = false;
        }
        job.copy.keep.clear();
        job.rearm_at = None;
        let now = Instant::now();
        job.linger = Some(Linger {
            since: now,
            next: now + LINGER_FIRST_STEP,
            step: LINGER_FIRST_STEP,
        });
    }

    /// The owner stops waiting: a lingering copy ends; a running one copies on only for a client
    /// that has the fifo open, and will not linger.
    fn release(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.released = true;
        if job.linger.is_some() {
            return self.finish(id);
        }
        job.copy.keep.clear();
        // A write blocked on a fifo nobody reads fails now (EPIPE): step again to see it.
        self.ready.push_back(id);
    }

    /// End copy `id`: out of epoll, fds closed, its latch counted down. Says what was lost.
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
                linger,
                done,
                label,
                ..
            } = job.copy;
            drop(keep);
            if job.dropped > 0 {
                log::warn!(
                    "{label}: {} bytes of output dropped: the client could not take them",
                    job.dropped
                );
            }
            if job.dst_fifo && job.dst_ok && linger {
                let left = unread(&dst);
                if left > 0 && !has_reader(&dst) {
                    log::warn!("{label}: {left} bytes of output dropped: no client read them and none has the fifo open");
                } else if left > 0 {
                    log::debug!(
                        "{label}: {left} unread bytes left to the client that has the fifo open"
                    );
                }
            }
            // The client sees EOF before anyone waiting on the latch learns the copy ended.
            drop((src, dst));
            drop(done);
        }
    }

    fn pump(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return; // an event for a copy that already ended
        };
        if job.linger.is_some() {
            return; // an event from before its source ended: nothing is left to move
        }
        let (progress, moved) = step(job, &self.epoll, &mut self.scratch);
        if moved > 0 {
            rest(job, &self.epoll, id, moved);
        }
        match progress {
            Progress::Blocked => {}
            Progress::More => self.ready.push_back(id),
            Progress::Finished => self.source_ended(id),
        }
    }

    /// Watch again the sources whose batch has gathered, and pump them.
    fn rearm_due(&mut self) {
        let now = Instant::now();
        for (id, job) in &mut self.jobs {
            if job.rearm_at.is_some_and(|at| at <= now) {
                job.rearm_at = None;
                arm_source(job, &self.epoll, *id, true);
                self.ready.push_back(*id);
            }
        }
    }
}

/// After a wake-up that moved `moved` bytes: batch a streaming source.
///
/// The kernel wakes an epoll'd pipe's reader on every write into it, and a container streaming
/// output writes small pieces (busybox `head`: 4 KiB). Served as they come, each piece costs a
/// wake-up here and another in the client (ctr reads 32 KiB at a time but got 4 KiB): on 1 GiB
/// of stdout that was 65,000 wake-ups a second and about 2.6 KiB per splice, and Go's shim does
/// the same. So when a wake-up moved little and came right after the one before (the source
/// streams), the source goes unwatched for `BATCH_DELAY` while its pipe gathers the next pieces;
/// then it is watched again (EPOLL_CTL_MOD looks at its readiness anew: nothing is missed, its
/// EOF included) and pumped. Output written now and then is moved at once, as before; a stream
/// waits at most `BATCH_DELAY` (plus the epoll timeout's rounding) more.
fn rest(job: &mut Job, epoll: &Epoll, id: u64, moved: usize) {
    let now = Instant::now();
    let streaming = job
        .last_moved
        .is_some_and(|t| now.duration_since(t) < BATCH_WINDOW);
    job.last_moved = Some(now);
    let batch = job.batch && job.dst_ok && moved < BATCH_BELOW && streaming;
    if batch && job.rearm_at.is_none() && arm_source(job, epoll, id, false) {
        job.rearm_at = Some(now + BATCH_DELAY);
    }
}

/// Ask (or stop asking) for the source's readiness; false when epoll refused (the source then
/// stays as it was: armed means wake-ups as before, never a missed one).
fn arm_source(job: &mut Job, epoll: &Epoll, id: u64, arm: bool) -> bool {
    if !job.src_polled || arm == job.src_armed {
        return job.src_polled;
    }
    let flags = if arm {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
    } else {
        EpollFlags::empty()
    };
    let mut event = EpollEvent::new(flags | EpollFlags::EPOLLET, id << 1);
    match epoll.modify(&job.copy.src, &mut event) {
        Ok(()) => {
            job.src_armed = arm;
            true
        }
        Err(e) => {
            log::debug!("{}: source interest stays: {e}", job.copy.label);
            false
        }
    }
}

/// Move what can be moved now, within the budget; with the bytes delivered to the destination.
fn step(job: &mut Job, epoll: &Epoll, scratch: &mut Vec<u8>) -> (Progress, usize) {
    let mut delivered = 0;
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
            Moved::Some(n) => delivered += n,
            Moved::Blocked => return (Progress::Blocked, delivered),
            Moved::Eof => return (Progress::Finished, delivered),
            Moved::ReadFailed(e) => {
                log::warn!(
                    "{}: reading the source failed, taken as its end: {e}",
                    job.copy.label
                );
                return (Progress::Finished, delivered);
            }
            Moved::WriteFailed(e) => match job.copy.on_error {
                OnWriteError::Stop => {
                    log::debug!("{}: stopped: writing failed: {e}", job.copy.label);
                    return (Progress::Finished, delivered);
                }
                OnWriteError::Drain => {
                    log::warn!(
                        "{}: writing to the client failed ({e}): its output is read and dropped from now on, so the process never blocks",
                        job.copy.label
                    );
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
    (Progress::More, delivered)
}

enum Moved {
    /// Bytes moved; the count is what reached the destination (0 for a read into our buffer).
    Some(usize),
    Blocked,
    Eof,
    /// Reading failed other than with a pty's EIO: the copy ends there.
    ReadFailed(io::Error),
    WriteFailed(io::Error),
}

fn retry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

fn blocked(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// The end of a source: EOF, or EIO from a pty master whose slave side closed.
fn source_end(e: io::Error) -> Moved {
    if e.raw_os_error() == Some(libc::EIO) {
        Moved::Eof
    } else {
        Moved::ReadFailed(e)
    }
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
            n if n > 0 => return Moved::Some(n as usize),
            _ => {
                let e = io::Error::last_os_error();
                if retry(&e) {
                    continue;
                }
                if blocked(&e) {
                    return Moved::Blocked;
                }
                // Our read end of a pipe does not fail: the write side did (no reader, closed).
                return Moved::WriteFailed(e);
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
            Ok(0) => Moved::WriteFailed(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *start += n;
                if *start == *end {
                    (*start, *end) = (0, 0);
                }
                Moved::Some(n)
            }
            Err(e) if retry(&e) => Moved::Some(0),
            Err(e) if blocked(&e) => Moved::Blocked,
            Err(e) => Moved::WriteFailed(e),
        };
    }
    match src.read(buf) {
        Ok(0) => Moved::Eof,
        Ok(n) => {
            (*start, *end) = (0, n);
            Moved::Some(0)
        }
        Err(e) if retry(&e) => Moved::Some(0),
        Err(e) if blocked(&e) => Moved::Blocked,
        Err(e) => source_end(e),
    }
}

/// After the destination failed: read and drop, counting.
fn discard(job: &mut Job, scratch: &mut Vec<u8>) -> Moved {
    if scratch.is_empty() {
        scratch.resize(BUF, 0);
    }
    match (&job.copy.src).read(scratch) {
        Ok(0) => Moved::Eof,
        Ok(n) => {
            add_dropped(job, n as u64);
            Moved::Some(0)
        }
        Err(e) if retry(&e) => Moved::Some(0),
        Err(e) if blocked(&e) => Moved::Blocked,
        Err(e) => source_end(e),
    }
}

fn add_dropped(job: &mut Job, n: u64) {
    job.dropped += n;
    if let Some(d) = &job.copy.dropped {
        d.fetch_add(n, Ordering::Relaxed);
    }
}
