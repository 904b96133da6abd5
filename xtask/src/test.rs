//! `cargo xtask test`: deps, fmt, clippy, then every test in the workspace, the Kubernetes CRI
//! stage (crate cri-e2e), a short fuzz pass, with a closing count and the e2e suites' tables.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{anyhow, bail, Context, Result};

use crate::run::{cargo, step, target_dir, timed};
use crate::{e2e_results, e2e_sweep};

pub fn run(extra: &[String]) -> Result<()> {
    timed("deps", crate::deps::run)?;
    step("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // Every binary first: one crate's tests run another's (shim-ctl drives shim-runc-v1).
    step("build", cargo().args(["build", "--workspace", "--bins"]))?;
    let results = target_dir().join("e2e-results.tsv");
    e2e_results::reset(&results)?;
    sweep("before");
    let mut counts = Counts::default();
    let outcome = timed("test", || tests(extra, &results, &mut counts));
    // Kubernetes' CRI through containerd 2.1 (crate cri-e2e), for Go's runc.v2 and ours: a
    // stage of its own, so its time shows.
    let cri = timed("cri", || cri_tests(extra, &results, &mut counts));
    sweep("after");
    // A short bounded fuzz pass (the binary was built with the others); its counts are printed.
    let fuzzed = timed("fuzz", crate::fuzz::test_pass);
    println!(
        "test: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    e2e_results::print(&results);
    outcome?;
    cri?;
    if counts.failed > 0 {
        bail!("{} tests failed", counts.failed);
    }
    fuzzed
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// Removes what killed e2e runs left behind (e2e_sweep.rs), saying so when there was any.
fn sweep(when: &str) {
    let swept = e2e_sweep::sweep();
    if !swept.is_empty() {
        println!("sweep ({when} the tests): {swept}");
    }
}

/// `cargo test --workspace` but cri-e2e, into <target>/xtask-test.log; the e2e suites append
/// their per-row outcomes to `results`.
fn tests(extra: &[String], results: &Path, counts: &mut Counts) -> Result<()> {
    // cri-e2e runs in its own stage (cri_tests).
    let args = [
        "test",
        "--workspace",
        "--exclude",
        "cri-e2e",
        "--no-fail-fast",
    ];
    cargo_test(&args, "xtask-test.log", extra, results, counts)
}

/// The CRI tests (`cargo test -p cri-e2e`) for both shims, into <target>/xtask-test-cri.log.
fn cri_tests(extra: &[String], results: &Path, counts: &mut Counts) -> Result<()> {
    let args = ["test", "-p", "cri-e2e", "--no-fail-fast"];
    cargo_test(&args, "xtask-test-cri.log", extra, results, counts)
}

/// `cargo <args> <extra>` with the e2e environment, streamed live and into <target>/<log>,
/// counting results.
fn cargo_test(
    args: &[&str],
    log: &str,
    extra: &[String],
    results: &Path,
    counts: &mut Counts,
) -> Result<()> {
    let log_path = target_dir().join(log);
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let log = File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
    let log = Arc::new(Mutex::new(log));
    println!("(log: {})", log_path.display());
    let mut child = cargo()
        .args(args)
        .args(extra)
        .env("SHIM_REQUIRE_ROOT_TESTS", "1")
        // shim-ctl's task v2 scenarios run against our v2 shim too, not only Go's.
        .env("SHIM_CTL_V2_OURS", "1")
        // CONTAINERD_1_7, CONTAINERD_2_1: the newer containerds' bin dirs (deps unpacked them).
        .envs(crate::debs::containerd_bin_dirs())
        // The containerd end-to-end suite runs every row against our shim and the Go reference.
        .env("E2E_SHIMS", "go,ours")
        // The task v2 checklist (e2e-kit), under containerd 1.6, 1.7 and 2.1: every row for
        // Go's containerd-shim-runc-v2 and ours side by side.
        .env("E2E_V2_SHIMS", "go,ours")
        // The CRI tests (cri-e2e): every test for Go's runc.v2 and ours.
        .env("E2E_CRI_SHIMS", "go,ours")
        .env("E2E_RESULTS", results)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let stderr = child.stderr.take().context("cargo test stderr")?;
    let err_log = Arc::clone(&log);
    let stderr_copier =
        thread::spawn(move || tee(stderr, &mut std::io::stderr(), &err_log, |_| {}));
    let stdout_result = tee(stdout, &mut std::io::stdout(), &log, |line| {
        count(line, counts)
    });
    let stderr_result = stderr_copier
        .join()
        .map_err(|_| anyhow!("stderr copier panicked"))?;
    let status = child.wait().context("wait for cargo test")?;
    stdout_result?;
    stderr_result?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Copy `from` line by line to `to` and the shared log, handing each line to `seen`.
fn tee(
    from: impl Read,
    to: &mut impl Write,
    log: &Mutex<File>,
    mut seen: impl FnMut(&str),
) -> Result<()> {
    for line in BufReader::new(from).lines() {
        let line = line.context("read cargo test output")?;
        let _ = writeln!(to, "{line}");
        if let Ok(mut log) = log.lock() {
            let _ = writeln!(log, "{line}");
        }
        seen(&line);
    }
    Ok(())
}

/// Add up the `test result:` lines of libtest and of libtest-mimic (the harness=false binaries
/// on `trials`, whose tests missing a prerequisite are ignored: counted as skipped), and plain
/// `N passed, N failed` lines.
fn count(line: &str, c: &mut Counts) {
    let line = line.trim();
    let body = match line.strip_prefix("test result: ") {
        Some(rest) => rest.split_once(". ").map(|(_, r)| r).unwrap_or(rest),
        None if line.ends_with(" failed") && line.contains(" passed, ") => line,
        None => return,
    };
    for part in body.split([';', ',']) {
        let mut words = part.split_whitespace();
        if let (Some(n), Some(what)) = (
            words.next().and_then(|n| n.parse::<u64>().ok()),
            words.next(),
        ) {
            match what {
                "passed" => c.passed += n,
                "failed" => c.failed += n,
                "ignored" => c.skipped += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_and_plain_closing_lines_are_both_counted() {
        let mut c = Counts::default();
        count("test result: ok. 5 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s", &mut c);
        count("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s", &mut c);
        count("6 passed, 0 failed", &mut c);
        count("test foo ... ok", &mut c);
        assert_eq!((c.passed, c.failed, c.skipped), (14, 3, 2));
    }

    #[test]
    fn libtest_mimic_closing_lines_count_ignored_tests_as_skipped_not_passed() {
        let mut c = Counts::default();
        // A trials binary run unprivileged: every test ignored for its missing prerequisite.
        count("ignoring 9 test(s): missing: not root", &mut c);
        count(
            "test init_and_execs_live_and_die_in_contract_order ... ignored",
            &mut c,
        );
        count("test result: ok. 0 passed; 0 failed; 9 ignored; 0 measured; 0 filtered out; finished in 0.00s", &mut c);
        assert_eq!((c.passed, c.failed, c.skipped), (0, 0, 9));
        // The same as root, with one failure; then one with its status coloured (--color always).
        count("test result: FAILED. 8 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 12.34s", &mut c);
        count("test result: \x1b[32mok\x1b[0m. 2 passed; 0 failed; 1 ignored; 0 measured; 3 filtered out; finished in 0.01s", &mut c);
        assert_eq!((c.passed, c.failed, c.skipped), (10, 1, 10));
    }
}
