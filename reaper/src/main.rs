//! The `reaper` binary: run a command as our child, forward signals, reap orphans, pass on its status.

use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use clap::Parser;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;
use reaper::{Exit, Reaper};

const FORWARDED: [Signal; 9] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

/// Run CMD as a child subreaper: forward signals to it, reap every orphan that lands on us,
/// and exit with CMD's status (128+N when signal N killed it).
#[derive(Parser)]
#[command(
    name = "reaper",
    version,
    after_help = "Examples:\n  reaper -- sh -c 'sleep 0.1 & exit 3'     # exits 3 once the orphaned sleep is reaped\n  reaper -g --report - -- make -j4         # signals go to the whole group; one JSON line per reaped pid\n  reaper --close-fds -- daemon             # the daemon gets only stdin, stdout and stderr\n\nAfter CMD exits, reaper waits until every orphan it adopted has exited too (signals received\nmeanwhile go to them, never to CMD's old pid), so nothing is left as a zombie of an init that\ndoes not reap. Inherited fds are passed on to CMD, except the --report fd."
)]
struct Args {
    /// Put CMD in its own process group and forward signals to the whole group.
    #[arg(short = 'g', long = "process-group")]
    group: bool,
    /// Write one JSON line per reaped process to FD, or to stdout with "-".
    #[arg(long, value_name = "FD|-")]
    report: Option<String>,
    /// Close every inherited fd above stderr (but the --report fd) before running CMD.
    #[arg(long)]
    close_fds: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    cmd: Vec<String>,
}

fn main() {
    // A mask inherited from whoever exec'd us would otherwise hold back signals we forward.
    let _ = SigSet::empty().thread_set_mask();
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("reaper: {e:#}");
            std::process::exit(125);
        }
    }
}

fn run() -> Result<i32> {
    let args = Args::parse();
    let report_fd = match args.report.as_deref() {
        None => None,
        Some("-") => Some(1),
        Some(n) => Some(
            n.parse::<RawFd>()
                .with_context(|| format!("--report: not an fd: {n}"))?,
        ),
    };
    if args.close_fds {
        close_inherited_fds(report_fd);
    }
    let mut report: Option<Box<dyn Write>> = match report_fd {
        None => None,
        Some(1) => Some(Box::new(std::io::stdout())),
        Some(fd) => {
            // The report is ours, not CMD's; stdin and stderr stay CMD's too.
            if fd > 2 {
                set_cloexec(fd).with_context(|| format!("--report {fd}"))?;
            }
            // SAFETY: the caller handed us this open fd for the report; we own it from here on.
            Some(Box::new(unsafe { std::fs::File::from_raw_fd(fd) }))
        }
    };

    let (reaper, signals) = Reaper::builder().forward(&FORWARDED).start()?;
    let exits = reaper.subscribe_all();
    let mut cmd = Command::new(&args.cmd[0]);
    cmd.args(&args.cmd[1..]);
    if args.group {
        cmd.process_group(0);
    }
    let spawned = reaper
        .spawn(&mut cmd)
        .with_context(|| format!("cannot run {}", args.cmd[0]))?;
    let main_pid = spawned.pid;
    // Where signals go while CMD has not been reaped: once it has, its pid may be another
    // process's, so this becomes None and signals go to the orphans left.
    let target = Arc::new(Mutex::new(Some(if args.group {
        -main_pid
    } else {
        main_pid
    })));

    let signal_target = Arc::clone(&target);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals {
                let target = signal_target.lock().unwrap_or_else(|p| p.into_inner());
                let sent = target.is_some_and(|t| kill(Pid::from_raw(t), sig).is_ok());
                if !sent {
                    for pid in children() {
                        let _ = kill(Pid::from_raw(pid), sig);
                    }
                }
            }
        })?;

    let mut status = None;
    for exit in exits.iter() {
        if exit.pid == main_pid {
            *target.lock().unwrap_or_else(|p| p.into_inner()) = None;
            status = Some(exit.status);
        }
        write_report(&mut report, &exit, exit.pid == main_pid);
        if status.is_some() {
            break;
        }
    }
    let Some(status) = status else {
        bail!("lost track of the child")
    };
    // Orphans still running would become zombies of an init that does not reap: wait for them.
    reaper.wait_childless(None);
    while let Ok(exit) = exits.try_recv() {
        write_report(&mut report, &exit, false);
    }
    Ok(status)
}

fn write_report(out: &mut Option<Box<dyn Write>>, exit: &Exit, main: bool) {
    if let Some(w) = out {
        let time = exit
            .at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let line = serde_json::json!({
            "pid": exit.pid, "status": exit.status, "signal": exit.signal, "time": time, "main": main,
        });
        // A closed report fd must not stop the reaping.
        let _ = writeln!(w, "{line}").and_then(|_| w.flush());
    }
}

/// Mark `fd` close-on-exec; an error if it is not open.
fn set_cloexec(fd: RawFd) -> Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFD).context("not an open fd")?;
    fcntl(
        fd,
        FcntlArg::F_SETFD(FdFlag::from_bits_retain(flags) | FdFlag::FD_CLOEXEC),
    )
    .context("cannot set FD_CLOEXEC")?;
    Ok(())
}

/// Close every inherited fd above stderr except the report fd.
fn close_inherited_fds(keep: Option<RawFd>) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds.into_iter().filter(|&fd| fd > 2 && Some(fd) != keep) {
        // SAFETY: nothing in this process owns these inherited fds yet (the dir fd is already closed
        // or will fail with EBADF harmlessly).
        unsafe { libc::close(fd) };
    }
}

/// Our current children (adopted orphans included).
fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}
