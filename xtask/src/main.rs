//! cargo xtask: the project's build driver (dispatch and usage).

mod deps;
mod install;
mod run;
mod test;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

  deps                  install what is missing (Debian packages; needs root)
  test [-- ARGS]        deps, fmt, clippy, every test in the workspace; closing count
  install [--prefix P]  release build of shim-runc-v1, shim-ctl, reaper into P/bin (/usr/local)
  demo                  a busybox container through our shim, step by step
  bench [--quick]       our shim against the Go containerd-shim, as ratios
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
        "test" => test::run(rest),
        "install" => install::run(rest),
        "demo" | "bench" => {
            eprintln!(
                "xtask {cmd}: not implemented yet (arrives with issue {})",
                if cmd == "demo" { 4 } else { 7 }
            );
            std::process::exit(2);
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
