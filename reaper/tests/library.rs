//! Library tests. harness = false (`trials`): the reaper must start from main, once per process.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use reaper::{Exit, Reaper};

const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    // Every thread of this process blocks the reaper's signals, as a program started with them
    // blocked would: the reaping thread must take them anyway.
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGCHLD);
    blocked.add(Signal::SIGUSR1);
    blocked.thread_block().expect("block signals");
    // Start as a shim does: the soft open-file limit raised to the hard one, children given back
    // the limit this process started with (lowered here first, so the two differ).
    let hard = nofile().1;
    let started_with = hard.min(CHILD_SOFT_LIMIT);
    set_nofile(started_with, hard);
    set_nofile(hard, hard);
    let (reaper, signals) = Reaper::builder()
        .forward(&[Signal::SIGUSR1])
        .child_fd_limit(started_with, hard)
        .start()
        .expect("start reaper");
    let all = reaper.subscribe_all();
    type Test = fn(&Reaper, &Receiver<Exit>, &Receiver<Signal>);
    let tests: [(&str, Test); 9] = [
        (
            "children_get_back_the_open_file_limit_the_process_started_with",
            children_get_back_the_open_file_limit_the_process_started_with,
        ),
        (
            "a_forwarded_signal_arrives_though_every_other_thread_blocks_it",
            a_forwarded_signal_arrives_though_every_other_thread_blocks_it,
        ),
        (
            "exit_codes_and_signal_deaths_are_reported",
            exit_codes_and_signal_deaths_are_reported,
        ),
        (
            "children_start_with_an_empty_signal_mask",
            children_start_with_an_empty_signal_mask,
        ),
        (
            "orphaned_grandchildren_are_reaped",
            orphaned_grandchildren_are_reaped,
        ),
        (
            "watch_after_the_exit_claims_the_buffered_exit",
            watch_after_the_exit_claims_the_buffered_exit,
        ),
        (
            "a_callback_watch_is_called_once_on_the_reaping_thread_or_at_once",
            a_callback_watch_is_called_once_on_the_reaping_thread_or_at_once,
        ),
        (
            "a_child_whose_exec_fails_is_an_error_not_a_panic",
            a_child_whose_exec_fails_is_an_error_not_a_panic,
        ),
        (
            "ten_thousand_children_from_four_threads_lose_no_exit",
            ten_thousand_children_from_four_threads_lose_no_exit,
        ),
    ];
    // Every test shares this reaper and its channels: one after another on the main thread.
    let shared = Arc::new(Mutex::new((reaper, all, signals)));
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let shared = Arc::clone(&shared);
            trials::trial(name, None, move || {
                let guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
                let (reaper, all, signals) = &*guard;
                while all.try_recv().is_ok() {}
                test(reaper, all, signals);
            })
        })
        .collect();
    trials::run_in_order(trials);
}

/// The soft open-file limit this process "started with" (as if run from a shell with ulimit -n).
const CHILD_SOFT_LIMIT: libc::rlim_t = 200;

fn nofile() -> (libc::rlim_t, libc::rlim_t) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `l`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    (l.rlim_cur, l.rlim_max)
}

fn set_nofile(soft: libc::rlim_t, hard: libc::rlim_t) {
    let l = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads `l`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
}

fn children_get_back_the_open_file_limit_the_process_started_with(
    r: &Reaper,
    _: &Receiver<Exit>,
    _: &Receiver<Signal>,
) {
    let (_, hard) = nofile();
    let mut cmd = sh("ulimit -Sn; ulimit -Hn");
    cmd.stdout(Stdio::piped());
    let mut spawned = r.spawn(&mut cmd).expect("spawn");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut spawned.child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(spawned.exit.wait_timeout(LIMIT).map(|e| e.status), Some(0));
    let want = format!("{}\n{hard}\n", hard.min(CHILD_SOFT_LIMIT));
    assert_eq!(out.replace("unlimited", &hard.to_string()), want);
    assert_eq!(nofile().0, hard, "this process keeps its raised limit");
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]);
    c
}

fn a_forwarded_signal_arrives_though_every_other_thread_blocks_it(
    _: &Reaper,
    _: &Receiver<Exit>,
    signals: &Receiver<Signal>,
) {
    nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1).unwrap();
    assert_eq!(signals.recv_timeout(LIMIT), Ok(Signal::SIGUSR1));
}

fn exit_codes_and_signal_deaths_are_reported(r: &Reaper, _: &Receiver<Exit>, _: &Receiver<Signal>) {
    let e = r.spawn(&mut sh("exit 3")).unwrap().exit.wait();
    assert_eq!((e.status, e.signal), (3, None));
    let e = r.spawn(&mut sh("kill -9 $$")).unwrap().exit.wait();
    assert_eq!((e.status, e.signal), (137, Some(9)));
}

fn children_start_with_an_empty_signal_mask(r: &Reaper, _: &Receiver<Exit>, _: &Receiver<Signal>) {
    // Block signals in this thread, as a shim using signalfd would; the child must not inherit them.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGTERM);
    set.add(nix::sys::signal::Signal::SIGUSR1);
    let before = set
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .unwrap();
    let mut cmd = sh("grep -E '^Sig(Blk|Ign)' /proc/self/status");
    cmd.stdout(Stdio::piped());
    let mut s = r.spawn(&mut cmd).unwrap();
    before.thread_set_mask().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(s.child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(s.exit.wait().status, 0);
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
    // glibc keeps its internal signals 32/33 out of reach of signal(); check the standard ones.
    let ign = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .unwrap();
    assert_eq!(
        u64::from_str_radix(ign, 16).unwrap() & 0x7fff_ffff,
        0,
        "{out}"
    );
}

fn orphaned_grandchildren_are_reaped(r: &Reaper, _: &Receiver<Exit>, _: &Receiver<Signal>) {
    let mut cmd = sh("sleep 0.2 & echo $!");
    cmd.stdout(Stdio::piped());
    let mut s = r.spawn(&mut cmd).unwrap();
    let mut line = String::new();
    BufReader::new(s.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let orphan: i32 = line.trim().parse().unwrap();
    assert_eq!(s.exit.wait().status, 0);
    let e = r
        .watch(orphan)
        .wait_timeout(LIMIT)
        .expect("orphan exit reported");
    assert_eq!(e.status, 0);
    assert!(
        !std::path::Path::new(&format!("/proc/{orphan}")).exists(),
        "zombie left"
    );
}

fn watch_after_the_exit_claims_the_buffered_exit(
    r: &Reaper,
    all: &Receiver<Exit>,
    _: &Receiver<Signal>,
) {
    // Not spawned through the reaper, as a container init that runc leaves behind is not.
    #[allow(clippy::zombie_processes)] // the reaper collects it
    let child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as i32;
    while all.recv_timeout(LIMIT).expect("exit seen").pid != pid {}
    let w = r.watch(pid);
    assert_eq!(w.try_exit().map(|e| e.pid), Some(pid));
    assert!(r.watch(pid).try_exit().is_none(), "claimed twice");
    r.forget(pid);
}

fn a_callback_watch_is_called_once_on_the_reaping_thread_or_at_once(
    r: &Reaper,
    all: &Receiver<Exit>,
    _: &Receiver<Signal>,
) {
    let called = |tx: std::sync::mpsc::Sender<(Exit, Option<String>)>| {
        move |e: Exit| {
            let _ = tx.send((e, std::thread::current().name().map(String::from)));
        }
    };
    // Watched before it exits: called on the reaping thread.
    let since = std::time::Instant::now();
    #[allow(clippy::zombie_processes)] // the reaper collects it
    let mut child = sh("read x; exit 3").stdin(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    r.watch_with_since(pid, since, called(tx));
    drop(child.stdin.take());
    let (e, thread) = rx.recv_timeout(LIMIT).expect("callback called");
    assert_eq!((e.pid, e.status), (pid, 3));
    assert_eq!(thread.as_deref(), Some("reaper"));
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "called twice"
    );
    // Already exited and buffered: called at once, on the watching thread.
    #[allow(clippy::zombie_processes)] // the reaper collects it
    let child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as i32;
    while all.recv_timeout(LIMIT).expect("exit seen").pid != pid {}
    let (tx, rx) = std::sync::mpsc::channel();
    r.watch_with_since(pid, since, called(tx));
    let (e, thread) = rx.try_recv().expect("called at once");
    assert_eq!(e.pid, pid);
    assert_ne!(thread.as_deref(), Some("reaper"));
}

fn a_child_whose_exec_fails_is_an_error_not_a_panic(
    r: &Reaper,
    _: &Receiver<Exit>,
    _: &Receiver<Signal>,
) {
    for _ in 0..50 {
        assert!(r.spawn(&mut Command::new("/nonexistent/binary")).is_err());
    }
}

fn ten_thousand_children_from_four_threads_lose_no_exit(
    r: &Reaper,
    all: &Receiver<Exit>,
    _: &Receiver<Signal>,
) {
    const THREADS: usize = 4;
    const EACH: usize = 2500;
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut pids = Vec::with_capacity(EACH);
                for chunk in 0..EACH / 50 {
                    let batch: Vec<_> = (0..50)
                        .map(|_| r.spawn(&mut Command::new("/bin/true")).unwrap())
                        .collect();
                    for s in batch {
                        let e = s
                            .exit
                            .wait_timeout(LIMIT)
                            .unwrap_or_else(|| panic!("lost exit in chunk {chunk}"));
                        assert_eq!((e.pid, e.status), (s.pid, 0));
                        pids.push(s.pid);
                    }
                }
                pids
            })
        })
        .collect();
    let mut expected: HashMap<i32, usize> = HashMap::new();
    for h in handles {
        for pid in h.join().unwrap() {
            *expected.entry(pid).or_default() += 1;
        }
    }
    let total = THREADS * EACH;
    let mut seen = 0;
    let mut reported: HashMap<i32, usize> = HashMap::new();
    while seen < total {
        let e = all.recv_timeout(LIMIT).expect("subscriber saw every exit");
        *reported.entry(e.pid).or_default() += 1;
        seen += 1;
    }
    assert!(all.try_recv().is_err(), "an exit was reported twice");
    // Pids may be reused across 10,000 children: compare per-pid counts.
    assert_eq!(reported, expected);
    eprintln!("  {total} children in {:?}", start.elapsed());
}
