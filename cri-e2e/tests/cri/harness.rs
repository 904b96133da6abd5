//! How each CRI test runs: once per shim (`E2E_CRI_SHIMS`, default `go,ours`), each in a private
//! node, its outcome recorded as `cri/<test>` for `cargo xtask test`'s table.

use std::env;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use cri_e2e::node::{Node, Setup, ShimSetup};
use e2e_kit::report::{self, Outcome, Ran};

/// Our task v2 shim's binary (crate shim-runc-v2).
const OURS_BIN: &str = "containerd-shim-rsrunc-v2";

/// `<target>/debug`: the test binary runs from its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("target profile dir").to_path_buf()
}

/// containerd 2.1's bin dir: `CONTAINERD_2_1` (`cargo xtask test` passes it), else where
/// `cargo xtask deps` unpacks it.
fn containerd_bin() -> PathBuf {
    match env::var_os("CONTAINERD_2_1") {
        Some(d) => PathBuf::from(d),
        None => bin_dir()
            .parent()
            .expect("target dir")
            .join("debs/containerd-2.1.9/usr/bin"),
    }
}

/// The setup of `label`, or why it cannot run here.
fn setup(label: &str) -> Result<Setup, String> {
    e2e_kit::prereq::missing(&[
        "ip",
        "tar",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
    ])?;
    let bin = containerd_bin();
    let init = bin_dir().join("reaper");
    let shim = match label {
        "go" => ShimSetup::go(&bin),
        "ours" => ShimSetup::ours(&bin_dir().join(OURS_BIN)),
        other => return Err(format!("unknown shim {other:?} in E2E_CRI_SHIMS")),
    };
    let needed: [&Path; 5] = [
        &bin.join("containerd"),
        &bin.join("ctr"),
        &shim.shim,
        &init,
        Path::new("/usr/lib/cni/loopback"),
    ];
    let absent: Vec<String> = needed
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !absent.is_empty() {
        return Err(format!(
            "missing: {} (`cargo xtask deps`, `cargo build --bins`)",
            absent.join(", ")
        ));
    }
    Ok(Setup { bin, shim, init })
}

fn shims() -> Vec<String> {
    env::var("E2E_CRI_SHIMS")
        .unwrap_or_else(|_| "go,ours".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Runs `body` for every shim, each on a node of its own, and records `cri/<test>`. Fails the
/// test when a shim fails.
pub fn both<R: Into<Ran>>(test: &str, body: impl Fn(&mut Node) -> R) {
    let mut failures = Vec::new();
    for label in shims() {
        let outcome = match setup(&label) {
            Err(why) => e2e_kit::prereq::cannot_run(why),
            Ok(setup) => {
                let run = catch_unwind(AssertUnwindSafe(|| {
                    let mut node = Node::start(&setup, test);
                    body(&mut node).into()
                }));
                match run {
                    Ok(ran) => Outcome::Ran(ran),
                    Err(p) => Outcome::Fail(panic_text(p.as_ref())),
                }
            }
        };
        report::record(&format!("cri/{test}"), &label, &outcome);
        if outcome.is_failure() {
            failures.push(format!("[{label}] {outcome}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
