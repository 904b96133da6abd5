//! `ctr events` captured in the background: parsed events, and waits for the one a test expects.

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// One line of `ctr events`: `<date> <time> <zone> <zone> <namespace> <topic> <json>`.
#[derive(Clone, Debug)]
pub struct Event {
    pub topic: String,
    pub body: String,
}

impl Event {
    fn parse(line: &str) -> Option<Event> {
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..6 {
            let t = rest.trim_start();
            let end = t.find(' ').unwrap_or(t.len());
            fields.push(&t[..end]);
            rest = &t[end..];
        }
        let topic = fields[5];
        topic.starts_with('/').then(|| Event {
            topic: topic.to_string(),
            body: rest.trim().to_string(),
        })
    }

    /// The value of a top-level scalar field of the JSON body (`"key":"v"` or `"key":3`).
    pub fn field(&self, key: &str) -> Option<String> {
        let pat = format!("\"{key}\":");
        let at = self.body.find(&pat)? + pat.len();
        let v = &self.body[at..];
        if let Some(s) = v.strip_prefix('"') {
            return s.find('"').map(|e| s[..e].to_string());
        }
        let end = v.find([',', '}']).unwrap_or(v.len());
        Some(v[..end].to_string())
    }

    /// True for the exit of `process` (an exec id, or the container id for the init) in `container`.
    pub fn is_exit_of(&self, container: &str, process: &str) -> bool {
        self.topic == "/tasks/exit"
            && self.field("container_id").as_deref() == Some(container)
            && self.field("id").as_deref() == Some(process)
    }

    /// True when the topic matches and the event concerns `container` (for `/tasks/exit`: its
    /// init, not one of its execs).
    pub fn is(&self, topic: &str, container: &str) -> bool {
        let init_only = topic != "/tasks/exit" || self.field("id").as_deref() == Some(container);
        self.topic == topic
            && init_only
            && (self.field("container_id").as_deref() == Some(container)
                || (topic.starts_with("/containers/")
                    && self.field("id").as_deref() == Some(container)))
    }
}

#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    lines: Vec<String>,
}

type Shared = Arc<(Mutex<Seen>, Condvar)>;

/// Every event seen so far, across containerd restarts (one `ctr events` per containerd life).
pub struct Events {
    watch: Watch,
    current: Option<(Proc, JoinHandle<()>)>,
}

/// A cloneable view of the events seen, for waiting from other threads.
#[derive(Clone)]
pub struct Watch {
    shared: Shared,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            watch: Watch {
                shared: Arc::new((Mutex::new(Seen::default()), Condvar::new())),
            },
            current: None,
        }
    }
}

impl Deref for Events {
    type Target = Watch;
    fn deref(&self) -> &Watch {
        &self.watch
    }
}

pub const EVENT_BOUND: Duration = Duration::from_secs(30);

impl Events {
    /// Starts `cmd` (a `ctr events` command line) and collects what it prints.
    pub fn attach(&mut self, mut cmd: Command) {
        self.detach();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let (proc, mut child) = Proc::spawn(&mut cmd).expect("spawn ctr events");
        let stdout = child.stdout.take().expect("ctr events stdout");
        let shared = Arc::clone(&self.watch.shared);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (lock, cv) = &*shared;
                let mut seen = lock.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(e) = Event::parse(&line) {
                    seen.events.push(e);
                }
                seen.lines.push(line);
                cv.notify_all();
            }
        });
        self.current = Some((proc, reader));
    }

    /// Stops the current `ctr events` (before its containerd goes away).
    pub fn detach(&mut self) {
        if let Some((proc, reader)) = self.current.take() {
            proc.kill_group();
            let _ = reader.join();
        }
    }
}

impl Watch {
    /// A handle for waiting on another thread.
    pub fn watch(&self) -> Watch {
        self.clone()
    }

    pub fn all(&self) -> Vec<Event> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }

    /// The raw lines seen so far, for failure messages.
    pub fn transcript(&self) -> String {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lines
            .join("\n")
    }

    /// Waits up to `bound` for the first event satisfying `pred`.
    pub fn wait_within(&self, bound: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + bound;
        let mut seen = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = seen.events.iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            seen = cv
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits (bounded) for the first event satisfying `pred`; panics with the transcript otherwise.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.wait_within(EVENT_BOUND, pred).unwrap_or_else(|| {
            panic!(
                "no event {what} within {EVENT_BOUND:?}; events seen:\n{}",
                self.transcript()
            )
        })
    }

    /// Waits for `topic` about `container`.
    pub fn wait(&self, topic: &str, container: &str) -> Event {
        self.wait_for(&format!("{topic} for {container}"), |e| {
            e.is(topic, container)
        })
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.detach();
    }
}
