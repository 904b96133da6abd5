//! `cri-pods-memory [PODS]`: the shims' memory of PODS (10) CRI pods of 1 pause + 3 containers
//! each, through containerd 2.1.9's CRI, Go's runc.v2 against ours, one private node each
//! (cri-e2e's `Node`); prints per-pod PSS and RSS, shims per pod, threads per shim, and the
//! ratios ours/Go, and writes every sample to `<target>/bench/latest-cri-pods.json`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use cri_e2e::node::{Node, Setup};
use cri_e2e::pods::{container, pod_config, run_pod, start};
use e2e_kit::proc;
use serde_json::json;

/// One shim's memory: PSS and RSS in KiB, and its threads.
struct Sample {
    pid: i32,
    pss_kib: u64,
    rss_kib: u64,
    threads: u64,
}

/// The first number after `key` in `text` (a `/proc` file of `Key:   123 kB` lines).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn sample(pid: i32) -> Option<Sample> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        pid,
        pss_kib: field(&smaps, "Pss:")?,
        rss_kib: field(&status, "VmRSS:")?,
        threads: field(&status, "Threads:")?,
    })
}

/// The shims of `pods` pods of 1 pause + 3 containers on a fresh node of `setup`.
fn measure(setup: &Setup, pods: usize) -> Vec<Sample> {
    let node = Node::start(setup, "pods-memory");
    for i in 0..pods {
        let cfg = pod_config(&node, &format!("pod{i}"), true);
        let pod = run_pod(&node, &cfg);
        for c in ["a", "b", "c"] {
            start(&node, &pod, &cfg, &container(c, &["sleep", "3600"]));
        }
    }
    // Let the last starts' transient allocations settle before reading.
    std::thread::sleep(Duration::from_secs(2));
    node.shim_pids().into_iter().filter_map(sample).collect()
}

fn shell(line: &str) -> String {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", line]);
    proc::run(cmd, Duration::from_secs(10), None)
        .stdout
        .trim()
        .to_string()
}

fn main() -> ExitCode {
    let pods: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: cri-pods-memory [PODS (a positive number, default 10)]");
            return ExitCode::from(2);
        }
    };
    let when = shell("date -u +%Y-%m-%dT%H:%MZ");
    let load_before = shell("cut -d' ' -f1-3 /proc/loadavg");
    let mut rows = Vec::new();
    let mut report = Vec::new();
    for label in ["go", "ours"] {
        let setup = match Setup::find(label) {
            Ok(s) => s,
            Err(why) => {
                eprintln!("cri-pods-memory: cannot run {label}: {why}");
                return ExitCode::FAILURE;
            }
        };
        let samples = measure(&setup, pods);
        let sum = |f: fn(&Sample) -> u64| samples.iter().map(f).sum::<u64>();
        let per_pod = |kib: u64| kib as f64 / pods as f64 / 1024.0;
        let (pss, rss, threads) = (sum(|s| s.pss_kib), sum(|s| s.rss_kib), sum(|s| s.threads));
        rows.push((
            label,
            samples.len(),
            per_pod(pss),
            per_pod(rss),
            threads as f64 / samples.len().max(1) as f64,
        ));
        report.push(json!({
            "shim": label,
            "shims": samples.len(),
            "samples": samples.iter().map(|s| json!({
                "pid": s.pid, "pss_kib": s.pss_kib, "rss_kib": s.rss_kib, "threads": s.threads,
            })).collect::<Vec<_>>(),
        }));
    }
    let load_after = shell("cut -d' ' -f1-3 /proc/loadavg");
    println!(
        "{pods} CRI pods of 1 pause + 3 containers (host network), containerd 2.1.9; {when}, \
         {} CPUs, load {load_before} before, {load_after} after",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<6}{:>7}{:>11}{:>16}{:>16}{:>15}",
        "shim", "shims", "shims/pod", "PSS/pod MiB", "RSS/pod MiB", "threads/shim"
    );
    for (label, shims, pss, rss, threads) in &rows {
        println!(
            "{label:<6}{shims:>7}{:>11.2}{pss:>16.2}{rss:>16.2}{threads:>15.1}",
            *shims as f64 / pods as f64
        );
    }
    if let [go, ours] = rows.as_slice() {
        println!(
            "ours/go: PSS per pod {:.2}, RSS per pod {:.2}",
            ours.2 / go.2,
            ours.3 / go.3
        );
    }
    let out = json!({
        "when": when, "pods": pods, "containers_per_pod": 3,
        "load_before": load_before, "load_after": load_after, "shims": report,
    });
    let path = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("bench/latest-cri-pods.json")))
        .unwrap_or_else(|| PathBuf::from("latest-cri-pods.json"));
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    match fs::write(
        &path,
        serde_json::to_string_pretty(&out).unwrap_or_default(),
    ) {
        Ok(()) => println!("samples: {}", path.display()),
        Err(e) => eprintln!("cri-pods-memory: write {}: {e}", path.display()),
    }
    ExitCode::SUCCESS
}
