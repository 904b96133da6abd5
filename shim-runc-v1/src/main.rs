//! shim-runc-v1: containerd's runtime v1 shim binary; wires flags, log, reaper, shim-core and ttrpc.

mod dispatch;
mod flags;
mod service;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;

use shim_core::events::{Event, EventSink};
use shim_host::publisher::{Publisher, Target};
use shim_host::stop::Stopper;
use shim_host::{logrus, server, startup};

use crate::flags::Flags;

/// Bound on every runc call; runc is killed after it.
const RUNC_TIMEOUT: Duration = Duration::from_secs(120);
/// How long queued events may still be published when the shim is told to stop.
const SHUTDOWN_PUBLISH_LIMIT: Duration = Duration::from_secs(2);

fn main() {
    // Before anything else: the soft open-file limit up to the hard one, as Go raises it; children
    // get back the limit we started with. Nowhere to log a failure yet: `run` says it.
    let fd_limit = startup::begin();
    // First, before any child exists: become a child subreaper and install the reaper's signal
    // handlers (SIGCHLD, and the signals handed to the stopper), so no exit can be missed.
    let stopper = Stopper::new();
    let (reaper, _) = startup::reaper(fd_limit.as_ref().ok().copied())
        .forward(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1])
        .on_signal(stopper.on_signal())
        .start()
        .unwrap_or_else(|_| std::process::exit(1));
    let flags = match Flags::parse_from_go(std::env::args_os()) {
        Ok(f) => f,
        Err(e) => {
            // stderr may be a dead pipe: printing is best effort.
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
    };
    let code = match run(flags, reaper, &stopper, fd_limit) {
        Ok(()) => 0,
        Err(e) => {
            log::error!(error:% = format!("{e:#}"); "shim failed");
            1
        }
    };
    std::process::exit(code);
}

/// Serve on this (the main) thread until SIGTERM or SIGINT, which `stopper` takes.
fn run(
    flags: Flags,
    reaper: reaper::Reaper,
    stopper: &Stopper,
    fd_limit: std::io::Result<shim_host::limits::FdLimit>,
) -> anyhow::Result<()> {
    // Without its log fifo the shim still works; there is nowhere else to say so.
    let _ = logrus::init_workdir(flags.workdir.as_deref(), flags.debug);
    startup::log_panics();
    log::info!(namespace:% = flags.namespace, pid:% = std::process::id(), debug:% = flags.debug; "starting shim");
    startup::log_fd_limit(fd_limit);

    let publisher = Publisher::new(
        Target {
            containerd_binary: flags.containerd_binary.clone(),
            address: flags.address.clone(),
            ttrpc_address: format!("{}.ttrpc", flags.address).into(),
            namespace: flags.namespace.clone(),
        },
        reaper.clone(),
    );
    let events = Exits(publisher.clone());
    let config = shim_core::config::Config {
        namespace: flags.namespace.clone(),
        workdir: flags.workdir.clone().unwrap_or_default(),
        runtime_root: flags.runtime_root.clone(),
        criu: flags.criu.clone(),
        systemd_cgroup: flags.systemd_cgroup,
        runc_timeout: RUNC_TIMEOUT,
        settle_limit: shim_core::config::DEFAULT_SETTLE_LIMIT,
        // Under runtime v1 containerd watches the cgroups itself.
        watch_oom: false,
    };
    let core = Arc::new(
        shim_core::SingleShim::new(config, reaper, Box::new(events))
            .context("starting shim-core")?,
    );
    let listen = match flags.socket.as_deref() {
        Some(addr) => server::Listen::Address(addr),
        None => server::Listen::Inherited,
    };
    let server = server::bind(listen, Arc::new(service::Service::new(core.clone())))
        .context("starting the ttrpc server")?;
    stopper.set(move |_why| {
        core.shutdown();
        // Best effort: let the exits the shutdown caused go out, briefly.
        let flushed = publisher.close_within(SHUTDOWN_PUBLISH_LIMIT);
        log::info!(events_flushed:% = flushed; "stopped");
    });
    log::info!("serving");
    shim_core::vital::run("ttrpc", move || server.run());
    anyhow::bail!("the ttrpc server stopped")
}

/// Under runtime v1 containerd publishes every task event itself but the exits: only TaskExit
/// goes out from the shim.
struct Exits(Publisher);

impl EventSink for Exits {
    fn event(&self, e: Event) {
        match e {
            Event::Exit(e) => self.0.publish(shim_host::events::task_exit(&e)),
            // Nobody waits for that task's exits any more.
            Event::Delete { .. } => self.0.stop_retrying(),
            _ => {}
        }
    }
}
