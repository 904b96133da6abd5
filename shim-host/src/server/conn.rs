//! One client connection: frames reassembled on the way in, an outbox of replies on the way out,
//! and the bound on both: a client that stops reading its replies stops being read.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::eventfd::EventFd;
use prost::Message;
use ttrpc::{Response, Status};

use super::frames::{Incoming, Reader};
use super::Respond;
use crate::status::Reply;
use crate::wire::{self, TYPE_RESPONSE};

/// Bytes of replies queued plus requests being handled, over which the loop reads no more
/// requests from the connection until they drain. With the partial frame in its reader (at most
/// one frame, MAX_PAYLOAD), this bounds what one connection costs however its client behaves.
pub const PRESSURE_LIMIT: usize = 1 << 20;
/// Requests of one connection handed to handlers and not finished yet, over which the loop reads
/// no more of its requests. A Wait counts only until its exit watch is registered.
pub const IN_FLIGHT_LIMIT: usize = 128;
/// Capacity an emptied outbox keeps; what a burst of replies left beyond it is given back.
const KEEP: usize = 64 * 1024;
/// Bytes read per `read` call; the loop checks the connection's bounds between reads. The buffer
/// is on the server loop's stack (the shim's main thread, or `ttrpc`) and zeroed each call, so its
/// pages stay resident for the shim's life: 4 KiB (one page; a Create of a few KiB takes two
/// reads) rather than 16 (measured on an idle shim-runc-v1: 12 KiB less stack).
const CHUNK: usize = 4 * 1024;

/// The loop's side of a connection: the socket's read half and the bytes of a partial frame.
pub struct Conn {
    sock: Arc<UnixStream>,
    inbox: Reader,
    pub outbox: Arc<Outbox>,
}

/// What one read found.
pub enum ReadOutcome {
    /// A whole chunk: the socket may have more.
    More,
    /// The socket has nothing more for now.
    Dry,
    /// EOF or a socket error: the connection is over.
    Closed,
}

impl Conn {
    /// Wrap an accepted socket; it is made non-blocking (the loop polls it).
    pub fn new(sock: UnixStream, wake: Arc<EventFd>) -> io::Result<Conn> {
        sock.set_nonblocking(true)?;
        let sock = Arc::new(sock);
        Ok(Conn {
            outbox: Arc::new(Outbox {
                wake,
                state: Mutex::new(OutState {
                    queued: Vec::new(),
                    sock: Some(Arc::clone(&sock)),
                    in_flight: 0,
                    in_flight_bytes: 0,
                    paused: false,
                }),
            }),
            sock,
            inbox: Reader::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Read once (at most CHUNK bytes) and append every frame completed to `frames`.
    pub fn read(&mut self, frames: &mut Vec<Incoming>) -> ReadOutcome {
        // Requests are small (a Create is a few KiB): a small buffer, and the caller reads again
        // while the socket has more and the connection is within its bounds.
        let mut buf = [0u8; CHUNK];
        loop {
            return match (&*self.sock).read(&mut buf) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    self.inbox.push(&buf[..n], frames);
                    if n < buf.len() {
                        ReadOutcome::Dry
                    } else {
                        ReadOutcome::More
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Dry,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => ReadOutcome::Closed,
            };
        }
    }

    /// The socket is done with: queued replies are freed, replies that arrive later are dropped,
    /// and the socket closes when the loop drops this `Conn` (a pending Wait, which keeps the
    /// outbox, does not keep the socket open nor any buffer).
    pub fn close(&self) {
        let mut st = self.outbox.lock();
        st.sock = None;
        st.queued = Vec::new();
    }
}

/// Replies waiting for the socket to take them. Handlers write straight to the socket when
/// nothing is queued; what does not fit waits here until the loop sees the socket writable.
pub struct Outbox {
    /// Tells the loop there is something to flush.
    wake: Arc<EventFd>,
    state: Mutex<OutState>,
}

struct OutState {
    queued: Vec<u8>,
    /// The socket's write side; None once the connection is closed.
    sock: Option<Arc<UnixStream>>,
    /// Requests handed to handlers and not finished, and their payload bytes.
    in_flight: usize,
    in_flight_bytes: usize,
    /// The loop stopped reading requests: tell it when the bounds are met again.
    paused: bool,
}

impl OutState {
    fn over_bounds(&self) -> bool {
        self.queued.len() + self.in_flight_bytes > PRESSURE_LIMIT
            || self.in_flight >= IN_FLIGHT_LIMIT
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send one reply frame for `stream_id`.
    pub fn send(&self, stream_id: u32, reply: Reply<Vec<u8>>) {
        let response = match reply {
            Ok(payload) => Response {
                status: Some(Status::default()),
                payload,
            },
            Err(status) => Response {
                status: Some(status),
                payload: Vec::new(),
            },
        };
        let frame = wire::frame(stream_id, TYPE_RESPONSE, &response.encode_to_vec());
        let mut st = self.lock();
        let Some(sock) = st.sock.clone() else { return };
        let mut rest: &[u8] = &frame;
        if st.queued.is_empty() {
            match write_some(&sock, rest) {
                Ok(n) => rest = &rest[n..],
                Err(_) => return, // the loop sees the broken socket on its next read
            }
        }
        if !rest.is_empty() {
            st.queued.extend_from_slice(rest);
            drop(st);
            if let Err(e) = self.wake.write(1) {
                log::warn!(error:% = e; "cannot wake the server loop");
            }
        }
    }

    /// Whether replies wait for the socket to become writable.
    pub fn pending(&self) -> bool {
        !self.lock().queued.is_empty()
    }

    /// Whether the loop may read more requests now. When not, the connection is paused: the
    /// outbox wakes the loop once its handlers bring it back within its bounds (the loop itself
    /// sees what its flushes drained).
    pub fn takes_requests(&self) -> bool {
        let mut st = self.lock();
        let over = st.over_bounds();
        if over != st.paused {
            st.paused = over;
            if over {
                log::debug!(replies_queued:% = st.queued.len(), requests_in_flight:% = st.in_flight, request_bytes:% = st.in_flight_bytes; "connection paused: its replies are not read");
            } else {
                log::debug!("connection resumed");
            }
        }
        !over
    }

    /// A request of `bytes` was handed to a handler.
    pub fn started(&self, bytes: usize) {
        let mut st = self.lock();
        st.in_flight += 1;
        st.in_flight_bytes += bytes;
    }

    /// A handler started by `started(bytes)` returned (its answer sent, or, for a Wait, watched).
    pub fn finished(&self, bytes: usize) {
        let mut st = self.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        st.in_flight_bytes = st.in_flight_bytes.saturating_sub(bytes);
        if st.paused && !st.over_bounds() {
            drop(st);
            if let Err(e) = self.wake.write(1) {
                log::warn!(error:% = e; "cannot wake the server loop");
            }
        }
    }

    /// Write what is queued, as far as the socket takes it. False if the socket is broken.
    pub fn flush(&self) -> bool {
        let mut st = self.lock();
        let Some(sock) = st.sock.clone() else {
            return false;
        };
        if st.queued.is_empty() {
            return true;
        }
        match write_some(&sock, &st.queued) {
            Ok(n) => {
                st.queued.drain(..n);
                if st.queued.is_empty() && st.queued.capacity() > KEEP {
                    st.queued = Vec::new();
                }
                true
            }
            Err(_) => false,
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().sock.is_none()
    }
}

/// Write as much of `bytes` as the non-blocking socket takes now.
fn write_some(mut sock: &UnixStream, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match sock.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The answer for one stream of one connection. Dropped unanswered (a handler that lost it), it
/// still answers, so a client never waits for a reply that cannot come.
pub struct Responder {
    outbox: Option<Arc<Outbox>>,
    stream_id: u32,
}

impl Responder {
    pub fn new(outbox: &Arc<Outbox>, stream_id: u32) -> Responder {
        Responder {
            outbox: Some(Arc::clone(outbox)),
            stream_id,
        }
    }
}

impl Responder {
    /// Drop without answering: the answer went out another way.
    pub fn forget(mut self) {
        self.outbox = None;
    }
}

impl Respond for Responder {
    fn wanted(&self) -> bool {
        self.outbox.as_ref().is_some_and(|o| !o.is_closed())
    }

    fn respond(mut self: Box<Self>, reply: Reply<Vec<u8>>) {
        if let Some(outbox) = self.outbox.take() {
            outbox.send(self.stream_id, reply);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(outbox) = self.outbox.take() {
            outbox.send(
                self.stream_id,
                Err(crate::status::status(
                    ttrpc::Code::UNKNOWN,
                    "the request was dropped without an answer",
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::eventfd::EfdFlags;

    fn conn() -> (Conn, UnixStream, Arc<EventFd>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .unwrap(),
        );
        (Conn::new(ours, Arc::clone(&wake)).unwrap(), theirs, wake)
    }

    /// Read what the peer end has now, without blocking.
    fn drain(peer: &mut UnixStream) -> usize {
        peer.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_client_that_reads_no_replies_is_read_no_more_until_it_catches_up() {
        let (conn, mut peer, wake) = conn();
        assert!(conn.outbox.takes_requests());
        // Far more than the socket buffer takes: the rest queues, over the bound.
        for stream in [1, 3, 5, 7] {
            conn.outbox.send(stream, Ok(vec![7; 512 * 1024]));
        }
        assert!(conn.outbox.pending());
        assert!(
            !conn.outbox.takes_requests(),
            "still reading a client that reads nothing"
        );
        // The client reads: flushing drains the queue and reading resumes.
        let mut got = 0;
        while conn.outbox.pending() {
            got += drain(&mut peer);
            assert!(conn.outbox.flush());
        }
        got += drain(&mut peer);
        assert!(got > 4 * 512 * 1024, "{got} bytes");
        assert!(conn.outbox.takes_requests());
        // The loop saw the drain itself: no wake-up was needed for it.
        let _ = wake.read();
        assert!(conn.outbox.lock().queued.capacity() <= KEEP);
    }

    #[test]
    fn requests_in_flight_pause_reading_and_their_end_wakes_the_loop() {
        let (conn, _peer, wake) = conn();
        conn.outbox.started(PRESSURE_LIMIT + 1);
        assert!(!conn.outbox.takes_requests());
        assert!(wake.read().is_err(), "nothing to wake for yet");
        conn.outbox.finished(PRESSURE_LIMIT + 1);
        assert_eq!(wake.read().unwrap(), 1, "the paused loop is told");
        assert!(conn.outbox.takes_requests());

        for _ in 0..IN_FLIGHT_LIMIT {
            assert!(conn.outbox.takes_requests());
            conn.outbox.started(10);
        }
        assert!(
            !conn.outbox.takes_requests(),
            "{IN_FLIGHT_LIMIT} small requests in flight"
        );
        conn.outbox.finished(10);
        assert!(conn.outbox.takes_requests());
    }

    #[test]
    fn closing_frees_queued_replies_even_while_a_wait_holds_the_outbox() {
        let (conn, _peer, _wake) = conn();
        let waiting = Responder::new(&conn.outbox, 9);
        for stream in [1, 3, 5] {
            conn.outbox.send(stream, Ok(vec![7; 512 * 1024]));
        }
        assert!(conn.outbox.pending());
        conn.close();
        assert!(!conn.outbox.pending());
        assert_eq!(conn.outbox.lock().queued.capacity(), 0);
        assert!(!waiting.wanted());
        waiting.forget();
    }
}
