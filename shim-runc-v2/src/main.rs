//! containerd-shim-rsrunc-v2: containerd's runtime v2 shim binary for `io.containerd.rsrunc.v2`;
//! picks the action (`-v`, `-info`, `start`, `delete`, or serve as the daemon) and wires the
//! daemon: log, reaper, event publisher, shim-core and the ttrpc server.

mod bundle;
mod delete;
mod dispatch;
mod flags;
mod info;
mod options;
mod refusal;
mod service;
mod socket;
mod spawn;
mod start;
mod stats;
mod version;

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;
use shim_core::events::{Event, EventSink};
use shim_host::limits::FdLimit;
use shim_host::publisher::{Publisher, Target};
use shim_host::stop::Stopper;
use shim_host::{logrus, server, startup};

use crate::flags::{Action, Env, Flags, Settings};

/// The runtime name containerd knows this shim by (`containerd-shim-<name>-v2` on PATH).
const RUNTIME_NAME: &str = "io.containerd.rsrunc.v2";
/// Bound on every runc call; runc is killed after it.
const RUNC_TIMEOUT: Duration = Duration::from_secs(120);
/// How long queued events may still be published when the daemon stops.
const SHUTDOWN_PUBLISH_LIMIT: Duration = Duration::from_secs(2);

fn main() {
    // Before anything else, in every action as in any Go program: the soft open-file limit up to
    // the hard one; every child (the daemon, runc) gets back the limit we started with.
    let fd_limit = startup::begin();
    let started_limit = fd_limit.as_ref().ok().copied();
    let flags = match Flags::parse_from_go(std::env::args_os()) {
        Ok(f) => f,
        Err(e) => {
            // stderr may be a dead pipe: printing is best effort.
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
    };
    if flags.version {
        print_and_exit(version::text(&binary_name()).as_bytes());
    }
    if flags.info {
        match info::run(RUNTIME_NAME) {
            Ok(bytes) => print_and_exit(&bytes),
            Err(e) => fail(e),
        }
    }
    let settings = Settings::resolve(&flags, &Env::from_process());
    let action = flags.action().unwrap_or_else(|e| fail(anyhow::anyhow!(e)));
    if settings.namespace.is_empty() {
        fail(anyhow::anyhow!("shim namespace cannot be empty"));
    }
    let bundle = match flags.bundle.clone() {
        Some(b) => b,
        None => std::env::current_dir()
            .unwrap_or_else(|e| fail(anyhow::Error::from(e).context("finding the bundle (cwd)"))),
    };
    match action {
        Action::Start => {
            stdio_open();
            // containerd reads the log fifo while `start` runs; stdout and stderr are the answer.
            let log = bundle.join("log");
            let fifo = std::fs::metadata(&log).is_ok_and(|m| m.file_type().is_fifo());
            let _ = logrus::init(fifo.then_some(log.as_path()), &[], settings.debug);
            let exe = std::env::current_exe()
                .unwrap_or_else(|e| fail(anyhow::Error::from(e).context("finding this binary")));
            match start::run(&settings, &bundle, &exe, started_limit) {
                Ok(answer) => print_and_exit(answer.as_bytes()),
                Err(e) => fail(e),
            }
        }
        Action::Delete => {
            // As Go: SIGTERM and SIGINT do not interrupt the cleanup.
            let (reaper, _signals) = startup::reaper(started_limit)
                .forward(&[Signal::SIGTERM, Signal::SIGINT])
                .start()
                .unwrap_or_else(|e| fail(anyhow::anyhow!("starting the reaper: {e}")));
            log_to_stderr(settings.debug);
            match delete::run(&settings, &bundle, reaper, RUNC_TIMEOUT) {
                Ok(bytes) => print_and_exit(&bytes),
                Err(e) => fail(e),
            }
        }
        Action::Serve => {
            let code = match serve(&flags, &settings, &bundle, fd_limit) {
                Ok(()) => 0,
                Err(e) => {
                    log::error!(error:% = format!("{e:#}"); "shim failed");
                    eprint!("{RUNTIME_NAME}: {e:#}");
                    1
                }
            };
            std::process::exit(code);
        }
    }
}

/// The daemon: serve the Task API on the inherited listener (or `-socket`), on this (the main)
/// thread, until Shutdown finds no container left, or SIGTERM/SIGINT.
fn serve(
    flags: &Flags,
    s: &Settings,
    bundle: &Path,
    fd_limit: std::io::Result<FdLimit>,
) -> anyhow::Result<()> {
    // First, before any child exists: become a child subreaper (the containers are our
    // grandchildren once runc exits) and install the reaper's signal handlers.
    let stopper = Stopper::new();
    let (reaper, _) = startup::reaper(fd_limit.as_ref().ok().copied())
        .forward(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1])
        .on_signal(stopper.on_signal())
        .start()
        .map_err(|e| anyhow::anyhow!("starting the reaper: {e}"))?;
    // Without its log fifo the shim still works; there is nowhere else to say so.
    let _ = logrus::init(Some(&bundle.join("log")), &[], s.debug);
    startup::log_panics();
    log::info!(namespace:% = s.namespace, id:% = s.id, pid:% = std::process::id(), debug:% = s.debug; "starting shim");
    startup::log_fd_limit(fd_limit);
    // The socket to remove when we stop: `start` wrote it in the bundle before launching us (the
    // bundle may be gone by then, so it is read now).
    let listen_on = flags.socket.as_deref().map(listen_address);
    let own_socket = match &listen_on {
        Some(a) => a.starts_with("unix://").then(|| a.clone()),
        None => bundle::read_address(bundle),
    };

    let publisher = Publisher::new(
        Target {
            containerd_binary: PathBuf::from(&s.publish_binary),
            address: s.address.clone(),
            ttrpc_address: PathBuf::from(&s.ttrpc_address),
            namespace: s.namespace.clone(),
        },
        reaper.clone(),
    );
    let config = shim_core::config::Config {
        namespace: s.namespace.clone(),
        // criu's default work dir; a task's options may name another.
        workdir: bundle.join("work"),
        runtime_root: PathBuf::from(bundle::DEFAULT_RUNC_ROOT),
        criu: None,
        systemd_cgroup: false,
        runc_timeout: RUNC_TIMEOUT,
        settle_limit: shim_core::config::DEFAULT_SETTLE_LIMIT,
        watch_oom: true,
    };
    let core = Arc::new(
        shim_core::Shim::new(config, reaper, Box::new(Events(publisher.clone())))
            .context("starting shim-core")?,
    );
    let on_shutdown = Arc::clone(&stopper);
    let service = service::Service::new(
        Arc::clone(&core),
        Box::new(move || on_shutdown.stop("shutdown".into())),
    );
    let listen = match listen_on.as_deref() {
        Some(address) => server::Listen::Address(address),
        None => server::Listen::Inherited,
    };
    let server = server::bind(listen, Arc::new(service)).context("starting the ttrpc server")?;
    stopper.set(move |why| {
        if why != "shutdown" {
            // Best effort: nothing of ours keeps running, and the exits go out below.
            core.shutdown();
        }
        let flushed = publisher.close_within(SHUTDOWN_PUBLISH_LIMIT);
        if let Some(address) = &own_socket {
            if let Err(e) = socket::remove(address) {
                log::warn!(error:% = e; "could not remove the shim socket");
            }
        }
        log::info!(events_flushed:% = flushed; "stopped");
    });
    log::info!("serving");
    // The main thread serves; `stopper` ends the process (Shutdown with no container left,
    // SIGTERM or SIGINT).
    shim_core::vital::run("ttrpc", move || server.run());
    anyhow::bail!("the ttrpc server stopped")
}

/// Every shim-core event goes out as task v2 publishes it, in order.
struct Events(Publisher);

impl EventSink for Events {
    fn event(&self, e: Event) {
        self.0.publish(shim_host::events::to_event(&e));
    }
}

/// `-socket`'s value (a path, as Go reads it; `@name` is abstract) as the server takes it.
fn listen_address(socket: &str) -> String {
    if socket.starts_with('@') || socket.starts_with("unix://") {
        socket.to_string()
    } else {
        format!("unix://{socket}")
    }
}

/// Short-lived actions log to stderr (containerd shows it as cleanup warnings) when it is a pipe
/// or a terminal: the logger reopens it by path, which would write a regular file from its start.
fn log_to_stderr(debug: bool) {
    // TODO(shim-host): a logrus init onto an inherited fd would make this unnecessary.
    let stderr = Path::new("/proc/self/fd/2");
    let reopenable = std::fs::metadata(stderr)
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_char_device());
    let _ = logrus::init(reopenable.then_some(stderr), &[], debug);
}

/// Make sure fds 0, 1 and 2 are open (on /dev/null if not), so that no socket or file we open
/// later lands on them and is then taken for stdio by a child.
fn stdio_open() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only inspects the fd table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: open with a static C string; the fd it returns is the lowest free one.
            let _ = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// The name this binary was run as, for `-v`.
fn binary_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "containerd-shim-rsrunc-v2".into())
}

/// Write `bytes` to stdout and exit 0 (1 if stdout is gone).
fn print_and_exit(bytes: &[u8]) -> ! {
    let mut out = std::io::stdout().lock();
    let ok = out.write_all(bytes).and_then(|()| out.flush()).is_ok();
    std::process::exit(if ok { 0 } else { 1 });
}

/// As Go's shims: `<runtime>: <error>` on stderr, exit status 1.
fn fail(e: anyhow::Error) -> ! {
    log::error!(error:% = format!("{e:#}"); "shim failed");
    eprint!("{RUNTIME_NAME}: {e:#}");
    std::process::exit(1);
}
