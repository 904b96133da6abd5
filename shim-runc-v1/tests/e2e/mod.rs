//! End-to-end harness: checklist rows of contract §8 run through containerd 1.6 and `ctr`,
//! once per configured shim, each in a private containerd.

pub mod containerd;
pub mod events;
pub mod expect;
pub mod prereq;
pub mod probe;
pub mod proc;
pub mod rootfs;
pub mod shims;
pub mod sys;

use std::thread;

use shims::Shim;

/// Runs `body` once per configured shim, concurrently, and reports per shim
/// (`PASS`, `FAIL: …`, `SKIP: …`). Panics if any shim failed.
pub fn each_shim(row: &str, body: fn(&Shim)) {
    if prereq::skip(row) {
        return;
    }
    let runs: Vec<_> = shims::configured()
        .into_iter()
        .map(|choice| match choice {
            Ok(shim) => {
                let name = shim.name;
                let h = thread::Builder::new()
                    .name(format!("{row}-{name}"))
                    .spawn(move || body(&shim))
                    .expect("spawn row thread");
                (name.to_string(), Ok(h))
            }
            Err((name, reason)) => (name, Err(reason)),
        })
        .collect();
    let mut failed = Vec::new();
    for (name, run) in runs {
        match run {
            Err(reason) => eprintln!("{row} [{name}]: SKIP: {reason}"),
            Ok(h) => match h.join() {
                Ok(()) => eprintln!("{row} [{name}]: PASS"),
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    eprintln!("{row} [{name}]: FAIL: {msg}");
                    failed.push(name);
                }
            },
        }
    }
    assert!(failed.is_empty(), "{row} failed for: {}", failed.join(", "));
}
