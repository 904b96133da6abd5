//! shim-fuzz: an in-process fuzzer for what clients send the shim (stable Rust, no libFuzzer):
//! `shim-fuzz [--time S] [--seed N] [--out DIR]`, or `shim-fuzz --replay FILE` for a finding.
//! Prints the inputs tried, panics and hangs; exits 1 if any input panicked, 2 on a hang.

mod engine;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: shim-fuzz [--time SECONDS] [--seed N] [--out DIR] | --replay FILE";

fn main() {
    let mut config = engine::Config {
        seed: 1,
        time: Duration::from_secs(60),
        out: PathBuf::from("target/fuzz-findings"),
    };
    let mut replay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            usage();
        };
        match arg.as_str() {
            "--time" => match value.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => config.time = Duration::from_secs_f64(s),
                _ => usage(),
            },
            "--seed" => match value.parse() {
                Ok(n) => config.seed = n,
                Err(_) => usage(),
            },
            "--out" => config.out = PathBuf::from(value),
            "--replay" => replay = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    if let Some(path) = replay {
        match std::fs::read(&path) {
            Ok(input) => engine::replay(targets::TARGETS, &input),
            Err(e) => {
                eprintln!("shim-fuzz: {}: {e}", path.display());
                std::process::exit(66);
            }
        }
        return;
    }
    let counts = engine::run(targets::TARGETS, targets::seeds(), &config);
    println!(
        "fuzz: {} inputs in {:.1}s (seed {}, {} targets): {} panics, 0 hangs; corpus {}, slowest input {:.1} ms ({} bytes)",
        counts.inputs,
        counts.elapsed.as_secs_f64(),
        config.seed,
        targets::TARGETS.len(),
        counts.panics,
        counts.corpus,
        counts.slowest.0.as_secs_f64() * 1000.0,
        counts.slowest.1
    );
    if counts.panics > 0 {
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(64);
}
