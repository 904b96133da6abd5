//! Child processes of the test run: one reaper thread (this process is a subreaper) and bounded waits.
//!
//! Every child is awaited through the reaper, never with `Child::wait`: the reaper also reaps the
//! orphans re-parented to us (shims whose containerd stopped), and it must not steal statuses.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

#[derive(Default)]
struct Table {
    /// Bumped on every spawn, so a reaper that saw ECHILD knows a child may exist now.
    generation: u64,
    own: HashSet<i32>,
    exited: HashMap<i32, Exit>,
}

struct Reaper {
    table: Mutex<Table>,
    changed: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<&'static Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        let r: &'static Reaper = Box::leak(Box::new(Reaper {
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
        }));
        if let Err(e) = sys::become_subreaper() {
            eprintln!("e2e: cannot become a child subreaper: {e}");
        }
        // Lives as long as the process; nothing to join.
        thread::Builder::new()
            .name("e2e-reaper".into())
            .spawn(move || reap_loop(r))
            .expect("spawn reaper thread");
        r
    })
}

fn reap_loop(r: &'static Reaper) {
    loop {
        let seen = r.table.lock().unwrap_or_else(|p| p.into_inner()).generation;
        match sys::wait_any() {
            Ok(Some((pid, status))) => {
                let mut t = r.table.lock().unwrap_or_else(|p| p.into_inner());
                if t.own.remove(&pid) {
                    t.exited.insert(pid, Exit::from_raw(status));
                    r.changed.notify_all();
                }
            }
            Ok(None) => {
                let t = r.table.lock().unwrap_or_else(|p| p.into_inner());
                let _t = r
                    .changed
                    .wait_while(t, |t| t.generation == seen)
                    .unwrap_or_else(|p| p.into_inner());
            }
            Err(e) => {
                eprintln!("e2e: waitpid failed: {e}");
                return;
            }
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Still running when the caller's bound ran out (it was then killed).
    TimedOut,
}

impl Exit {
    fn from_raw(status: i32) -> Exit {
        if status & 0x7f == 0 {
            Exit::Code((status >> 8) & 0xff)
        } else {
            Exit::Signal(status & 0x7f)
        }
    }

    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            _ => None,
        }
    }
}

/// A spawned child, awaited through the reaper. Dropping it does not kill it.
pub struct Proc {
    pid: i32,
    /// Set once the reaper handed us the status: the pid may be reused from then on.
    exited: OnceLock<Exit>,
}

impl Proc {
    /// Spawns `cmd` in a process group of its own.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<(Proc, std::process::Child)> {
        let r = reaper();
        cmd.process_group(0);
        let mut t = r.table.lock().unwrap_or_else(|p| p.into_inner());
        t.generation += 1;
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        t.exited.remove(&pid);
        t.own.insert(pid);
        r.changed.notify_all();
        Ok((
            Proc {
                pid,
                exited: OnceLock::new(),
            },
            child,
        ))
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits up to `bound` for the exit; `Exit::TimedOut` leaves the child running.
    pub fn wait_timeout(&self, bound: Duration) -> Exit {
        if let Some(e) = self.exited.get() {
            return *e;
        }
        let r = reaper();
        let deadline = Instant::now() + bound;
        let mut t = r.table.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = t.exited.remove(&self.pid) {
                return *self.exited.get_or_init(|| e);
            }
            let now = Instant::now();
            if now >= deadline {
                return Exit::TimedOut;
            }
            t = r
                .changed
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// SIGKILLs the child's whole process group and collects its status.
    pub fn kill_group(&self) -> Exit {
        if let Some(e) = self.exited.get() {
            return *e;
        }
        sys::signal(-self.pid, sys::SIGKILL);
        sys::signal(self.pid, sys::SIGKILL);
        self.wait_timeout(Duration::from_secs(10))
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&self, grace: Duration) -> Exit {
        if let Some(e) = self.exited.get() {
            return *e;
        }
        sys::signal(self.pid, sys::SIGTERM);
        match self.wait_timeout(grace) {
            Exit::TimedOut => self.kill_group(),
            e => e,
        }
    }
}

/// The result of a bounded command run.
pub struct Output {
    pub what: String,
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.exit.code()
    }

    /// The last line of stderr: what a failing ctr said, for a failure's first line.
    fn last_words(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }

    /// Panics unless the command exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert!(
            self.code() == Some(code),
            "want exit {code}, got {:?}: {:?}\n{self}",
            self.exit,
            self.last_words()
        );
        self
    }

    /// Panics unless the command failed and its stderr contains `needle`.
    pub fn expect_error(&self, needle: &str) -> &Self {
        assert!(
            self.code().is_some_and(|c| c != 0) && self.stderr.contains(needle),
            "want a failure mentioning {needle:?}, got {:?}: {:?}\n{self}",
            self.exit,
            self.last_words()
        );
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` -> {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.exit, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn read_all(r: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion within `bound` (then SIGKILLs its group), capturing stdout and stderr.
/// `feed`, if given, gets the child's stdin on a thread of its own; otherwise stdin is /dev/null.
pub fn run(
    mut cmd: Command,
    bound: Duration,
    feed: Option<Box<dyn FnOnce(ChildStdin) + Send>>,
) -> Output {
    let what = describe(&cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if feed.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let (proc, mut child) = match Proc::spawn(&mut cmd) {
        Ok(p) => p,
        Err(e) => {
            return Output {
                what,
                exit: Exit::Code(127),
                stdout: String::new(),
                stderr: format!("spawn failed: {e}"),
            }
        }
    };
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let feeder = match (feed, child.stdin.take()) {
        (Some(f), Some(stdin)) => Some(thread::spawn(move || f(stdin))),
        _ => None,
    };
    let mut exit = proc.wait_timeout(bound);
    if exit == Exit::TimedOut {
        proc.kill_group();
        exit = Exit::TimedOut;
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        what,
        exit,
        stdout,
        stderr,
    }
}

/// A stdin feeder writing `data` once `ready` returns, then closing stdin.
pub fn feed_after(
    ready: impl FnOnce() + Send + 'static,
    data: &'static [u8],
) -> Box<dyn FnOnce(ChildStdin) + Send> {
    Box::new(move |mut stdin: ChildStdin| {
        ready();
        let _ = stdin.write_all(data);
        drop(stdin);
    })
}
