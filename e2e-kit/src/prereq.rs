//! Whether this machine can run the suite, and what to do when it cannot (skip, or fail on demand).

use std::env;
use std::path::Path;

use crate::report::Outcome;
use crate::sys;

/// Tools the harness runs whatever the containerd; each must be on PATH (or absolute).
const TOOLS: &[&str] = &[
    "runc",
    "unshare",
    "nsenter",
    "script",
    "sha256sum",
    "/usr/bin/busybox",
];

/// True when `tool` is on PATH, or is an absolute path to a file.
pub fn on_path(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).is_file();
    }
    env::var_os("PATH")
        .map(|p| env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// `Err(reason)` when the suite cannot run here: not root, or one of `extra` (the checklist's
/// own tools, named first, e.g. `containerd` and `ctr`) or of the harness's tools is missing.
pub fn missing(extra: &[&str]) -> Result<(), String> {
    if !sys::is_root() {
        return Err("not root".into());
    }
    let absent: Vec<&str> = extra
        .iter()
        .chain(TOOLS)
        .copied()
        .filter(|t| !on_path(t))
        .collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(format!("missing tools: {}", absent.join(", ")))
    }
}

/// `SHIM_REQUIRE_ROOT_TESTS=1`: everything must run; a skip is a failure.
pub fn required() -> bool {
    env::var("SHIM_REQUIRE_ROOT_TESTS").as_deref() == Ok("1")
}

/// The one place a run that cannot happen here is judged: a skip, or a failure when required.
pub fn cannot_run(reason: String) -> Outcome {
    if required() {
        Outcome::Fail(format!(
            "cannot run ({reason}) and SHIM_REQUIRE_ROOT_TESTS=1"
        ))
    } else {
        Outcome::Skip(reason)
    }
}
