//! containerd-shim-rsrunc-v2: containerd's runtime v2 shim binary for `io.containerd.rsrunc.v2`;
//! picks the action (`-v`, `-info`, `start`, `delete`, or serve as the daemon).

mod flags;
mod info;
mod version;

use std::io::Write;
use std::path::PathBuf;

use crate::flags::{Env, Flags, Settings};

/// The runtime name containerd knows this shim by (`containerd-shim-<name>-v2` on PATH).
const RUNTIME_NAME: &str = "io.containerd.rsrunc.v2";

fn main() {
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
    fail(anyhow::anyhow!("{action:?}: not implemented yet"));
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
    eprint!("{RUNTIME_NAME}: {e:#}");
    std::process::exit(1);
}
