//! One client connection: frames reassembled on the way in, an outbox of replies on the way out.

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

/// The loop's side of a connection: the socket's read half and the bytes of a partial frame.
pub struct Conn {
    sock: Arc<UnixStream>,
    inbox: Reader,
    pub outbox: Arc<Outbox>,
}

/// What reading found.
pub enum ReadOutcome {
    Open,
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
                }),
            }),
            sock,
            inbox: Reader::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Read what the socket has, and append every whole frame to `frames`.
    pub fn read(&mut self, frames: &mut Vec<Incoming>) -> ReadOutcome {
        // Requests are small (a Create is a few KiB): a small buffer, read until the socket is dry.
        let mut buf = [0u8; 8 * 1024];
        loop {
            match (&*self.sock).read(&mut buf) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    self.inbox.push(&buf[..n], frames);
                    if n < buf.len() {
                        return ReadOutcome::Open;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }

    /// The socket is done with: replies that arrive later are dropped, and the socket closes
    /// when the loop drops this `Conn` (a pending Wait does not keep it open).
    pub fn close(&self) {
        self.outbox.lock().sock = None;
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
