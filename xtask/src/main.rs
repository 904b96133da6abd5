//! cargo xtask: the project's build driver (dispatch and usage).

mod bench;
mod debs;
mod demo;
mod deps;
mod e2e_results;
mod e2e_sweep;
mod fuzz;
mod install;
mod release;
mod run;
mod test;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

  deps                  check the Debian packages the build and tests need; install what is missing (root);
                        unpack containerd 1.7 and 2.1 from newer Debian suites into target/debs
  test [-- ARGS]        deps, fmt, clippy, then every test in the workspace (ARGS go to cargo test)
  install [--prefix P]  release build of shim-runc-v1, shim-ctl, reaper into P/bin (default /usr/local)
  demo                  a busybox container through our shim, standalone, step by step
  bench [--quick] [--v2] [--scale]       our shim against the Go containerd-shim: table + target/bench/latest.json
  fuzz [--time S] [--seed N]
                        fuzz frame reading and request decoding for S seconds (default 60)
";

fn main() {
    if let Err(e) = dispatch() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("--help", &args[..]),
    };
    match cmd {
        "deps" => deps::run(),
        "test" => test::run(test_args(rest)?),
        "install" => install::run(rest),
        "demo" => demo::run(),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// `test [-- ARGS]`: what follows `--` is passed to cargo test as is.
fn test_args(rest: &[String]) -> Result<&[String]> {
    match rest.split_first() {
        None => Ok(rest),
        Some((dashes, extra)) if dashes == "--" => Ok(extra),
        Some(_) => bail!("usage: cargo xtask test [-- ARGS for cargo test]"),
    }
}
