//! `cargo xtask fuzz [--time S] [--seed N]`: shim-host's in-process fuzzer (shim-fuzz) built
//! optimized and run for S seconds; and the short pass `cargo xtask test` runs after the tests.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run::{cargo, root, target_dir};

/// Seconds of the pass `cargo xtask test` runs (on the debug build the tests already made).
pub const TEST_PASS_SECONDS: u32 = 10;

/// `fuzz [--time S] [--seed N]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut time = "60".to_string();
    let mut seed = "1".to_string();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--time" => time.clone_from(value),
            "--seed" => seed.clone_from(value),
            _ => bail!("usage: cargo xtask fuzz [--time SECONDS] [--seed N]"),
        }
    }
    // Optimized, but without the release profile's LTO (minutes per build) and in a target dir of
    // its own, so the release binaries `install` and `bench` use are left as they are.
    let dir = target_dir().join("fuzz");
    let status = cargo()
        .args([
            "build",
            "--release",
            "-p",
            "shim-host",
            "--bin",
            "shim-fuzz",
        ])
        .args(["--config", "profile.release.lto=false"])
        .args(["--config", "profile.release.codegen-units=16"])
        .args(["--config", "profile.release.opt-level=3"])
        .arg("--target-dir")
        .arg(&dir)
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("building shim-fuzz failed ({status})");
    }
    fuzz(&dir.join("release/shim-fuzz"), &time, &seed)
}

/// The short pass after the tests: the debug shim-fuzz for TEST_PASS_SECONDS.
pub fn test_pass() -> Result<()> {
    fuzz(
        &target_dir().join("debug/shim-fuzz"),
        &TEST_PASS_SECONDS.to_string(),
        "1",
    )
}

/// Run `binary` for `time` seconds from `seed`; findings go to <target>/fuzz-findings.
fn fuzz(binary: &Path, time: &str, seed: &str) -> Result<()> {
    let status = Command::new(binary)
        .args(["--time", time, "--seed", seed, "--out"])
        .arg(target_dir().join("fuzz-findings"))
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => bail!("the fuzzer found inputs that panic (saved under target/fuzz-findings; replay one with {} --replay FILE)", binary.display()),
        Some(2) => bail!("the fuzzer found an input that hangs (saved under target/fuzz-findings)"),
        _ => bail!("shim-fuzz failed ({status})"),
    }
}
