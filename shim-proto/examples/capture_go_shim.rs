//! Captures golden bytes from the real Go `containerd-shim` for shim-proto's golden tests.
//!
//! They are a raw `StateResponse` payload (running and stopped) and the `Any{TaskExit}` the shim
//! pipes into `containerd publish`.
//!
//! Run as root: `cargo run -p shim-proto --example capture_go_shim -- shim-proto/tests/golden`
//! Needs /usr/bin/containerd-shim, /usr/sbin/runc and /usr/bin/busybox.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use prost::Message;
use shim_proto::events::TaskExit;
use shim_proto::protobuf::{Any, Empty};
use shim_proto::shim::{
    CreateTaskRequest, KillRequest, StartRequest, StateRequest, StateResponse, WaitRequest,
};
use shim_proto::{type_url, unpack};
use support::{ctx, GoShim, TempDir};

const NS: &str = "shim-proto-golden";
const ID: &str = "golden";

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "shim-proto/tests/golden".to_string())
        .into();
    std::fs::create_dir_all(&out)?;
    let dir = TempDir::new("capture");
    let bundle = dir.path().join("bundle");
    let workdir = dir.path().join("work");
    let runc_root = dir.path().join("runc");
    std::fs::create_dir_all(&workdir)?;
    support::make_busybox_bundle(&bundle, &format!("/{NS}-{ID}"));

    // `-containerd-binary` stand-in: the shim runs `<it> --address A publish --topic T
    // --namespace N` with the Any on stdin. Record argv, then pass stdin to our fifo.
    let fifo = dir.path().join("event.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    let args_file = dir.path().join("publish.args");
    let script = dir.path().join("publish.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\nexec cat > '{}'\n",
            args_file.display(),
            fifo.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let (event_tx, event_rx) = mpsc::channel();
    let fifo_reader = fifo.clone();
    // Left detached on purpose if no event ever comes: the process exits with an error then.
    std::thread::spawn(move || {
        let read = std::fs::File::open(&fifo_reader).and_then(|mut f| {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map(|_| buf)
        });
        let _ = event_tx.send(read);
    });

    let shim = GoShim::spawn(
        Path::new(support::GO_SHIM),
        NS,
        &workdir,
        &bundle,
        &script,
        &["-runtime-root", &runc_root.display().to_string()],
    );
    let _container = support::ContainerGuard::new(runc_root.join(NS), ID);
    let client = shim.client();
    let raw = shim.connect();

    let created = client
        .create(
            ctx(),
            &CreateTaskRequest {
                id: ID.to_string(),
                bundle: bundle.display().to_string(),
                runtime: support::RUNC.to_string(),
                ..Default::default()
            },
        )
        .context("Create")?;
    client
        .start(ctx(), &StartRequest { id: ID.to_string() })
        .context("Start")?;

    let running = raw_state(&raw)?;
    let decoded = StateResponse::decode(running.as_slice())?;
    if decoded.pid != created.pid || decoded.status != 2 {
        bail!("unexpected running state {decoded:?}");
    }
    write_hex(
        &out.join("state_response_running.hex"),
        "StateResponse payload (running busybox sleep) as the Go containerd-shim 1.6.20 answered State",
        &running,
    )?;

    client
        .kill(
            ctx(),
            &KillRequest {
                id: ID.to_string(),
                signal: 9,
                all: false,
            },
        )
        .context("Kill")?;
    let waited = client
        .wait(ctx(), &WaitRequest { id: ID.to_string() })
        .context("Wait")?;
    let stopped = raw_state(&raw)?;
    write_hex(
        &out.join("state_response_stopped.hex"),
        "StateResponse payload (after SIGKILL, exit 137) as the Go containerd-shim 1.6.20 answered State",
        &stopped,
    )?;

    let event = match event_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(read) => read.context("read event fifo")?,
        Err(e) => bail!("the Go shim published no event: {e}"),
    };
    let any = Any::decode(event.as_slice())?;
    let exit: TaskExit = unpack(&any, type_url::TASK_EXIT)?;
    if exit.exit_status != waited.exit_status || exit.id != ID {
        bail!("unexpected TaskExit {exit:?} (wait said {waited:?})");
    }
    let argv = std::fs::read_to_string(&args_file)?;
    write_hex(
        &out.join("task_exit_any.hex"),
        &format!(
            "Any{{TaskExit}} the Go containerd-shim 1.6.20 wrote to stdin of `<containerd-binary> {}`",
            argv.trim()
        ),
        &event,
    )?;

    client.delete(ctx(), &Empty {}).context("Delete")?;
    println!("captured into {}", out.display());
    Ok(())
}

/// State of the init, issued as a raw ttrpc request so the payload is Go's bytes, untouched.
fn raw_state(client: &ttrpc::Client) -> anyhow::Result<Vec<u8>> {
    let req = ttrpc::Request {
        service: "containerd.runtime.linux.shim.v1.Shim".to_string(),
        method: "State".to_string(),
        payload: StateRequest { id: ID.to_string() }.encode_to_vec(),
        timeout_nano: 10_000_000_000,
        metadata: Vec::new(),
    };
    let resp = client.request(req).context("raw State")?;
    Ok(resp.payload)
}

fn write_hex(path: &Path, what: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let date = Command::new("date").arg("-u").arg("+%Y-%m-%d").output()?;
    let text = format!(
        "# {what}.\n# Captured {} by `cargo run -p shim-proto --example capture_go_shim` ({} bytes).\n{}",
        String::from_utf8_lossy(&date.stdout).trim(),
        bytes.len(),
        support::to_hex(bytes)
    );
    std::fs::write(path, text)?;
    Ok(())
}
