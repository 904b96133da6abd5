//! The ttrpc server: one thread polls the listener and every connection; handlers run on a pool.
//!
//! Threads: the loop (the shim's main thread, or one named `ttrpc`; vital either way: the shim
//! exits if it ever stops) and pool
//! workers, none of them kept while the shim is idle. A Wait holds no thread at all: its answer
//! is sent when the exit is recorded. Replies go out through each connection's outbox, so a
//! client that stops reading never blocks a handler, and every request gets an answer; the loop
//! stops reading a connection whose replies pile up or whose requests are still being handled
//! beyond its bounds (conn.rs), so no client can grow the shim without limit.

mod conn;
pub mod frames;
mod listen;
mod pool;
mod reserve;
mod wait;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use prost::Message;

use crate::status::{self as errors, Reply};
use conn::{Conn, ReadOutcome, Responder};
use frames::Incoming;
pub use listen::{bind_private, Listen};
use pool::Pool;
use reserve::Reserve;
pub use wait::answer_at_exit;

/// While accepting is paused for lack of fds, try to take the reserve back this often (nothing
/// signals that fds came free).
const ACCEPT_RETRY: Duration = Duration::from_secs(1);
/// Connections served at once; one more is closed as soon as it is accepted. containerd keeps
/// one or two; each costs at most a partial frame plus its connection's bounds (conn.rs).
pub const MAX_CONNECTIONS: usize = 1024;

/// A front's ttrpc services, as the server calls them.
pub trait Service: Send + Sync + 'static {
    /// Whether the ttrpc service `name` (e.g. `containerd.task.v2.Task`) is served.
    fn serves(&self, name: &str) -> bool;
    /// Run `method` of `service` and answer through `respond`, now or later (a Wait answers when
    /// the process exits). Runs on a pool thread; a panic is caught and answered.
    fn call(&self, service: &str, method: &str, payload: &[u8], respond: Box<dyn Respond>);
}

/// Where a call's answer goes: the connection and stream that asked.
pub trait Respond: Send {
    /// False once the caller's connection is gone.
    fn wanted(&self) -> bool;
    /// The encoded response, or the status to answer with. Called at most once.
    fn respond(self: Box<Self>, reply: Reply<Vec<u8>>);
}

/// Open the listener and start serving `service` on it, on a vital thread named `ttrpc`.
pub fn start(listen: Listen<'_>, service: Arc<dyn Service>) -> std::io::Result<()> {
    let server = bind(listen, service)?;
    shim_core::vital::spawn("ttrpc", move || server.run())?;
    Ok(())
}

/// A server bound to its listener, to run on the caller's thread (a shim's main thread).
pub struct Server(Loop);

impl Server {
    /// Serve until polling fails (then the shim cannot be reached: its end). Run it under
    /// `shim_core::vital::run`.
    pub fn run(self) -> Result<(), String> {
        self.0.run()
    }
}

/// Open the listener for `service`; nothing is served until [`Server::run`].
pub fn bind(listen: Listen<'_>, service: Arc<dyn Service>) -> std::io::Result<Server> {
    let listener = listen::open(listen)?;
    let wake = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    let server = Loop {
        listener,
        wake: Arc::new(wake),
        conns: Vec::new(),
        pool: Pool::new(),
        service,
        reserve: Reserve::new(),
        accept_paused: None,
    };
    if !server.reserve.is_full() {
        log::warn!(
            "no fds to hold in reserve: a shim out of fds will accept nobody until some are free"
        );
    }
    Ok(Server(server))
}

struct Loop {
    listener: UnixListener,
    /// Written by outboxes with replies queued: the loop then also waits for writability.
    wake: Arc<EventFd>,
    conns: Vec<Conn>,
    pool: Pool,
    service: Arc<dyn Service>,
    /// Fds given back when accept runs out, so one more client is served (reserve.rs).
    reserve: Reserve,
    /// Out of fds: the listener is not polled until the reserve is whole again, tried when a
    /// connection ends and at this time.
    accept_paused: Option<Instant>,
}

impl Loop {
    /// Serve until polling fails (then the shim cannot be reached: its end).
    fn run(mut self) -> Result<(), String> {
        let mut frames = Vec::new();
        loop {
            let (listener_ready, conn_events) = match self.wait() {
                Ok(ready) => ready,
                Err(e) => return Err(format!("polling: {e}")),
            };
            let mut gone = Vec::new();
            for (i, (conn, events)) in self.conns.iter_mut().zip(conn_events).enumerate() {
                if !conn.outbox.flush() {
                    gone.push(i);
                    continue;
                }
                // A hung-up client can send nothing more: what it left is read whatever the
                // bounds (at most a socket buffer), so its end is seen and nothing spins on it.
                let hung_up = events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR);
                if !hung_up && !events.contains(PollFlags::POLLIN) {
                    continue;
                }
                loop {
                    if !hung_up && !conn.outbox.takes_requests() {
                        break;
                    }
                    let outcome = conn.read(&mut frames);
                    for frame in frames.drain(..) {
                        handle(&self.pool, &self.service, conn, frame);
                    }
                    match outcome {
                        ReadOutcome::More => {}
                        ReadOutcome::Dry => break,
                        ReadOutcome::Closed => {
                            gone.push(i);
                            break;
                        }
                    }
                }
            }
            let someone_left = !gone.is_empty();
            for i in gone.into_iter().rev() {
                let conn = self.conns.swap_remove(i);
                conn.close();
            }
            if let Some(retry_at) = self.accept_paused {
                if someone_left || Instant::now() >= retry_at {
                    self.resume_accepting();
                }
            }
            if listener_ready && self.accept_paused.is_none() {
                self.accept();
            }
        }
    }

    /// Block until something happens; whether the listener is ready, and each connection's events.
    fn wait(&mut self) -> io::Result<(bool, Vec<PollFlags>)> {
        let mut fds = Vec::with_capacity(2 + self.conns.len());
        let listen_events = if self.accept_paused.is_some() {
            PollFlags::empty()
        } else {
            PollFlags::POLLIN
        };
        fds.push(PollFd::new(self.listener.as_fd(), listen_events));
        fds.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
        for c in &self.conns {
            let mut events = PollFlags::empty();
            if c.outbox.takes_requests() {
                events |= PollFlags::POLLIN;
            }
            if c.outbox.pending() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.fd(), events));
        }
        let timeout = match self.accept_paused {
            Some(retry_at) => {
                let ms = retry_at
                    .saturating_duration_since(Instant::now())
                    .as_millis();
                PollTimeout::from(ms.min(u128::from(u16::MAX)) as u16)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let events: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !events[1].is_empty() {
            // Only a wake-up; its count does not matter. EAGAIN means another read took it.
            let _ = self.wake.read();
        }
        Ok((!events[0].is_empty(), events[2..].to_vec()))
    }

    /// Take the reserve back if enough fds are free, and accept again; else retry later.
    fn resume_accepting(&mut self) {
        if self.reserve.refill() {
            self.accept_paused = None;
            self.accept();
        } else {
            self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
        }
    }

    /// Take every waiting connection from a peer with our uid and gid. Out of fds, give the
    /// reserve back and serve one more client with it, then pause until it can be taken again.
    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => self.serve(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of fds (accept says so even with nobody waiting): the reserve's turn.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    if !self.reserve.is_full() {
                        log::error!(error:% = e; "accept failed, paused until fds are free");
                        self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    }
                    self.reserve.release();
                    match self.listener.accept() {
                        Ok((sock, _)) => {
                            log::warn!(connections:% = self.conns.len(); "out of file descriptors: one more client served from the reserve, accepting paused");
                            self.serve(sock);
                            self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
                        }
                        // Nobody was waiting: keep the reserve for the next client.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if !self.reserve.take_back() {
                                self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
                            }
                        }
                        Err(e) => {
                            log::error!(error:% = e; "accept failed");
                            if !self.reserve.take_back() {
                                self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
                            }
                        }
                    }
                    return;
                }
                Err(e) => {
                    log::error!(error:% = e; "accept failed");
                    return;
                }
            }
        }
    }

    /// Serve an accepted connection if it is our user's and there is room for it.
    fn serve(&mut self, sock: std::os::unix::net::UnixStream) {
        if !listen::same_user(&sock) {
            return;
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            log::warn!(connections:% = self.conns.len(); "too many connections: closing a new one");
            return;
        }
        match Conn::new(sock, Arc::clone(&self.wake)) {
            Ok(conn) => self.conns.push(conn),
            Err(e) => log::warn!(error:% = e; "cannot serve a connection"),
        }
    }
}

/// One whole frame: decode the request and start its handler (never run on the loop itself).
fn handle(pool: &Pool, service: &Arc<dyn Service>, conn: &Conn, frame: Incoming) {
    let (stream_id, payload) = match frame {
        Incoming::Refused { stream_id, status } => {
            conn.outbox.send(stream_id, Err(status));
            return;
        }
        Incoming::Request { stream_id, payload } => (stream_id, payload),
    };
    let req = match ttrpc::Request::decode(payload.as_slice()) {
        Ok(req) => req,
        Err(e) => {
            conn.outbox.send(stream_id, Err(errors::not_a_request(e)));
            return;
        }
    };
    if !service.serves(&req.service) {
        let status = errors::unimplemented("service", &req.service);
        conn.outbox.send(stream_id, Err(status));
        return;
    }
    let respond = Box::new(Responder::new(&conn.outbox, stream_id));
    let panic_respond = Responder::new(&conn.outbox, stream_id);
    let service = Arc::clone(service);
    let outbox = Arc::clone(&conn.outbox);
    let bytes = payload.len();
    outbox.started(bytes);
    pool.submit(Box::new(move || {
        let _finished = Finished(&outbox, bytes);
        let called = catch_unwind(AssertUnwindSafe(|| {
            service.call(&req.service, &req.method, &req.payload, respond)
        }));
        match called {
            // The handler answered (or will, for Wait): the spare answer is never sent.
            Ok(()) => panic_respond.forget(),
            Err(panic) => {
                let text = errors::panic_text(panic.as_ref());
                log::error!(method:% = req.method, panic:% = text; "handler panicked");
                Box::new(panic_respond).respond(Err(errors::panicked(&text)));
            }
        }
    }));
}

/// Counts a request's handler as finished when it ends, however it ends.
struct Finished<'a>(&'a conn::Outbox, usize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finished(self.1);
    }
}
