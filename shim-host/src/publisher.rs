//! Publishing events to containerd, one at a time in queue order on one thread (only while there
//! are events): straight to
//! containerd's ttrpc `Events.Forward` (`<address>.ttrpc`), or, where that socket does not exist,
//! through `<containerd> --address A publish --topic T --namespace N` as the Go shim does (contract
//! 4.1). Unlike the Go shim, an event that cannot be delivered because containerd is down or
//! restarting (no connection, a broken one, or Unavailable) is retried with back-off, in order,
//! until it goes out or the shim is stopped: exits that happen while containerd is away still
//! reach it. Any other refusal is permanent: that event is logged and dropped, so it never holds
//! up the events behind it.
//!
//! Why Forward first: `containerd publish` starts the whole containerd binary for every event
//! (about 40 ms of CPU here), more than the rest of an exec costs the shim; one ttrpc call costs
//! well under a millisecond and reaches the same exchange.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use prost::Message;
use shim_proto::events_ttrpc::{Envelope, ForwardRequest};
use shim_proto::protobuf::Any;

use crate::wire::{self, CallError};

/// First wait before retrying a failed publish; doubles up to RETRY_MAX.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Bound on one delivery: a `containerd publish` is SIGKILLed after this, a Forward call gives up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const EVENTS_SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct Target {
    /// The publish binary (`containerd`, or v2's `-publish-binary`).
    pub containerd_binary: PathBuf,
    /// containerd's gRPC address, for the publish binary.
    pub address: String,
    /// containerd's ttrpc socket, for Forward (v1: `<address>.ttrpc`; v2: `TTRPC_ADDRESS`).
    pub ttrpc_address: PathBuf,
    pub namespace: String,
}

/// One event to publish: its topic, the event in its Any, and a few words for the log.
#[derive(Clone, Debug)]
pub struct Event {
    pub topic: &'static str,
    pub event: Any,
    /// `id=... pid=...`: what the log says of it.
    pub about: String,
}

/// Queues events for the publisher thread. Clones share it.
///
/// The thread runs only while there is something to publish: the first event queued starts it,
/// and it ends once the queue has stayed empty for `LINGER` (an idle shim keeps no thread for
/// it). Whoever starts the next one joins the last one first (it has returned by then, or is
/// returning); `close_within` joins the last.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

/// How long the thread waits for another event before it ends.
const LINGER: Duration = Duration::from_secs(1);

struct Inner {
    target: Target,
    reaper: reaper::Reaper,
    queue: Mutex<Queue>,
    /// Signalled when an event is queued, when the shim closes, and when the thread ends.
    changed: Condvar,
    /// Set when the shim stops or its task is deleted: one last attempt instead of retrying.
    halt: Halt,
}

#[derive(Default)]
struct Queue {
    /// Unbounded: an exit is never dropped because containerd is slow or away.
    events: VecDeque<Event>,
    /// The thread, while it runs (and until the next one starts or `close_within` joins it).
    thread: Option<JoinHandle<()>>,
    running: bool,
    /// No more events are taken (the shim is stopping).
    closed: bool,
}

impl Publisher {
    /// A publisher to `target`; its thread starts with the first event.
    pub fn new(target: Target, reaper: reaper::Reaper) -> Publisher {
        Publisher {
            inner: Arc::new(Inner {
                target,
                reaper,
                queue: Mutex::new(Queue::default()),
                changed: Condvar::new(),
                halt: Halt::default(),
            }),
        }
    }

    /// Queue `event`; it goes out after every event queued before it.
    pub fn publish(&self, event: Event) {
        let mut q = lock(&self.inner.queue);
        if q.closed {
            log::error!(topic:% = event.topic, event:% = event.about; "shim stopping, event not delivered");
            return;
        }
        q.events.push_back(event);
        if q.running {
            self.inner.changed.notify_all();
        } else {
            self.start_thread(&mut q);
        }
    }

    /// Nobody waits for undelivered events any more (v1: the task was deleted): each gets one
    /// last try from now on instead of retries.
    pub fn stop_retrying(&self) {
        self.inner.halt.set(|h| h.deleted = true);
    }

    /// Stop taking events and give the queued ones up to `limit` to go out; join the thread if it
    /// finished (otherwise it is abandoned to the process exit). True when everything went out.
    pub fn close_within(&self, limit: Duration) -> bool {
        self.inner.halt.set(|h| h.closing = true);
        let mut q = lock(&self.inner.queue);
        q.closed = true;
        if !q.running && !q.events.is_empty() {
            // The thread could not be started before: a last chance.
            self.start_thread(&mut q);
        }
        self.inner.changed.notify_all();
        let (mut q, _) = self
            .inner
            .changed
            .wait_timeout_while(q, limit, |q| q.running)
            .unwrap_or_else(|p| p.into_inner());
        let finished = !q.running && q.events.is_empty();
        if !q.running {
            if let Some(t) = q.thread.take() {
                let _ = t.join();
            }
        }
        finished
    }

    /// Start the thread (none runs): join the one before, which has returned or is returning.
    fn start_thread(&self, q: &mut Queue) {
        if let Some(last) = q.thread.take() {
            let _ = last.join();
        }
        let inner = Arc::clone(&self.inner);
        match thread::Builder::new()
            .name("publisher".into())
            .spawn(move || run(&inner))
        {
            Ok(t) => {
                q.thread = Some(t);
                q.running = true;
            }
            // Kept queued: the next event, or the close, starts a thread again.
            Err(e) => {
                log::error!(error:% = e, queued:% = q.events.len(); "cannot start the publisher thread; events stay queued")
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next event, waiting up to `LINGER` for one; `None` ends the thread (marked not running
/// under the same lock, so an event queued after that starts a new one).
fn next(inner: &Inner) -> Option<Event> {
    let q = lock(&inner.queue);
    let (mut q, _) = inner
        .changed
        .wait_timeout_while(q, LINGER, |q| q.events.is_empty() && !q.closed)
        .unwrap_or_else(|p| p.into_inner());
    let ev = q.events.pop_front();
    if ev.is_none() {
        q.running = false;
        inner.changed.notify_all();
    }
    ev
}

/// Why the publisher stops retrying: the shim is stopping, or its task was deleted.
#[derive(Default)]
struct Halt {
    state: Mutex<HaltState>,
    cv: Condvar,
}

#[derive(Default, Clone, Copy)]
struct HaltState {
    closing: bool,
    deleted: bool,
}

impl HaltState {
    fn reason(self) -> Option<&'static str> {
        if self.closing {
            Some("shim stopping")
        } else if self.deleted {
            Some("task deleted")
        } else {
            None
        }
    }
}

impl Halt {
    fn set(&self, f: impl FnOnce(&mut HaltState)) {
        f(&mut lock(&self.state));
        self.cv.notify_all();
    }

    /// Wait `d` unless halted; the reason if halted.
    fn wait(&self, d: Duration) -> Option<&'static str> {
        let (state, _) = self
            .cv
            .wait_timeout_while(lock(&self.state), d, |s| s.reason().is_none())
            .unwrap_or_else(|p| p.into_inner());
        state.reason()
    }
}

/// The thread: publish every queued event in order, each until it goes out, is refused, or
/// the shim gives up on it (`Halt`).
fn run(inner: &Inner) {
    let (target, reaper, halt) = (&inner.target, &inner.reaper, &inner.halt);
    while let Some(ev) = next(inner) {
        let mut backoff = RETRY_FIRST;
        for attempt in 1u32.. {
            match deliver(target, reaper, ev.topic, &ev.event) {
                Ok(()) => {
                    log::debug!(topic:% = ev.topic, event:% = ev.about, attempts:% = attempt; "published event");
                    break;
                }
                Err(Failure::Permanent(e)) => {
                    log::error!(topic:% = ev.topic, event:% = ev.about, error:% = e; "event refused by containerd, dropped");
                    break;
                }
                Err(Failure::Retry(e)) => {
                    log::warn!(topic:% = ev.topic, event:% = ev.about, attempt:% = attempt, retry_in:% = format!("{backoff:?}"), error:% = e; "post event");
                    if let Some(why) = halt.wait(backoff) {
                        // One last try; then the event is given up, and said so.
                        if let Err(e) = deliver(target, reaper, ev.topic, &ev.event) {
                            log::error!(reason:% = why, topic:% = ev.topic, event:% = ev.about, error:% = e; "event not delivered");
                        }
                        break;
                    }
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// Why a delivery failed: worth retrying (containerd away), or not (containerd said no).
#[derive(Debug)]
enum Failure {
    Retry(String),
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(s) | Failure::Permanent(s) => f.write_str(s),
        }
    }
}

/// One delivery attempt: Forward over containerd's ttrpc socket when it exists, else (or when
/// that containerd has no ttrpc events service) the publish binary.
fn deliver(
    target: &Target,
    reaper: &reaper::Reaper,
    topic: &str,
    event: &Any,
) -> Result<(), Failure> {
    let socket = &target.ttrpc_address;
    match forward(socket, &target.namespace, topic, event) {
        Ok(()) => Ok(()),
        // No ttrpc socket at all (another layout, or a test's fake containerd): the binary knows.
        Err(CallError::Connect(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            publish(target, reaper, topic, &event.encode_to_vec()).map_err(Failure::Retry)
        }
        // containerd 1.6 always serves Events on ttrpc; a containerd that does not says so here.
        Err(CallError::Status(code, _)) if code == ttrpc::Code::UNIMPLEMENTED as i32 => {
            publish(target, reaper, topic, &event.encode_to_vec()).map_err(Failure::Retry)
        }
        Err(e) => {
            let text = format!("forward to {}: {e}", socket.display());
            Err(if retryable(&e) {
                Failure::Retry(text)
            } else {
                Failure::Permanent(text)
            })
        }
    }
}

/// containerd is away or restarting: no connection, a broken one, or Unavailable.
fn retryable(e: &CallError) -> bool {
    match e {
        CallError::Connect(_) | CallError::Io(_) => true,
        CallError::Status(code, _) => *code == ttrpc::Code::UNAVAILABLE as i32,
        CallError::Protocol(_) => false,
    }
}

/// `Events.Forward` of one envelope, stamped now (as containerd stamps what `publish` sends).
fn forward(socket: &Path, namespace: &str, topic: &str, event: &Any) -> Result<(), CallError> {
    let request = ForwardRequest {
        envelope: Some(Envelope {
            timestamp: Some(shim_proto::time::to_timestamp(SystemTime::now())),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(event.clone()),
        }),
    };
    wire::call(
        socket,
        EVENTS_SERVICE,
        "Forward",
        request.encode_to_vec(),
        PUBLISH_TIMEOUT,
    )
    .map(drop)
}

/// Run one `containerd publish` through the reaper, bounded; Err carries a readable reason and
/// its output.
fn publish(
    target: &Target,
    reaper: &reaper::Reaper,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let (out_rx, out_tx) = os_pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
    let out_tx2 = out_tx.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let mut cmd = Command::new(&target.containerd_binary);
    cmd.arg("--address")
        .arg(&target.address)
        .args(["publish", "--topic", topic, "--namespace"])
        .arg(&target.namespace)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(OwnedFd::from(out_tx)))
        .stderr(Stdio::from(OwnedFd::from(out_tx2)));
    let spawned = reaper
        .spawn(&mut cmd)
        .map_err(|e| format!("running {}: {e}", target.containerd_binary.display()))?;
    drop(cmd); // our copies of the child's output ends: EOF comes when the child is gone
    let mut child = spawned.child;
    if let Some(mut stdin) = child.stdin.take() {
        // Small payload, far below a pipe's buffer: cannot block. A child that exits early gives EPIPE.
        let _ = stdin.write_all(payload);
    }
    let status = match spawned.exit.wait_timeout(PUBLISH_TIMEOUT) {
        Some(exit) => Some(exit.status),
        None => {
            let _ = kill(Pid::from_raw(spawned.pid), Signal::SIGKILL);
            let _ = spawned.exit.wait_timeout(Duration::from_secs(5));
            None
        }
    };
    let output = read_available(File::from(OwnedFd::from(out_rx)));
    match status {
        Some(0) => Ok(()),
        Some(code) => Err(format!("exit status {code}: {}", output.trim())),
        None => Err(format!(
            "timed out after {}s and was killed: {}",
            PUBLISH_TIMEOUT.as_secs(),
            output.trim()
        )),
    }
}

/// What the child left in its output pipe, without blocking on a descendant still holding it.
fn read_available(mut f: File) -> String {
    let _ = fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < 64 * 1024 {
        match f.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absent_or_unavailable_containerd_is_retried() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let table = [
            (CallError::Connect(io()), true),
            (CallError::Io(io()), true),
            (
                CallError::Status(ttrpc::Code::UNAVAILABLE as i32, "x".into()),
                true,
            ),
            (
                CallError::Status(ttrpc::Code::INVALID_ARGUMENT as i32, "x".into()),
                false,
            ),
            (
                CallError::Status(ttrpc::Code::NOT_FOUND as i32, "x".into()),
                false,
            ),
            (
                CallError::Status(ttrpc::Code::UNKNOWN as i32, "x".into()),
                false,
            ),
            (CallError::Protocol("garbage".into()), false),
        ];
        for (e, want) in table {
            assert_eq!(retryable(&e), want, "{e}");
        }
    }
}
