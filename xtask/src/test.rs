//! `cargo xtask test`: deps, fmt, clippy, then every test in the workspace, with a closing count.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::run::{cargo, root, step};

pub fn run(extra: &[String]) -> Result<()> {
    crate::deps::run()?;
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
    // Every binary first: tests of one crate run another's (shim-ctl drives shim-runc-v1).
    step("build", cargo().args(["build", "--workspace", "--bins"]))?;
    let counts = tests(extra)?;
    println!(
        "test: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    if counts.failed > 0 || !counts.ok {
        bail!("tests failed");
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
    ok: bool,
}

/// `cargo test --workspace`, streamed live and into target/xtask-test.log, counting results.
fn tests(extra: &[String]) -> Result<Counts> {
    println!("==> test");
    let started = Instant::now();
    let log_path = root().join("target").join("xtask-test.log");
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("SHIM_REQUIRE_ROOT_TESTS", "1")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo test")?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().context("cargo test stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        let _ = writeln!(log, "{line}");
        count(&line, &mut counts);
    }
    counts.ok = child.wait()?.success();
    println!(
        "==> test: {} in {:.1}s",
        if counts.ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(counts)
}

/// Add up libtest's `test result:` lines and the plain `N passed, N failed` lines of harness=false tests.
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
        count("6 passed, 0 failed", &mut c);
        count("test foo ... ok", &mut c);
        assert_eq!((c.passed, c.failed, c.skipped), (11, 1, 2));
    }
}
