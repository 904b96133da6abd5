//! End-to-end harness: checklist rows of contract §8 run through containerd 1.6 and `ctr`,
//! once per configured shim, each in a private containerd.
//!
//! The generic harness is the `e2e-kit` crate (re-exported here under its module names); what
//! is v1's own stays here: the expectations, the choice of shims, the probe of a v1 shim.

pub mod expect;
pub mod probe;
pub mod shims;

pub use e2e_kit::{containerd, prereq, proc, report, sys};

use std::thread;

use report::{Outcome, Ran};
use shims::Shim;

/// Why no row can run here, if none can: not root, a tool missing, or not one configured shim
/// built. Every row is then ignored, or failed under SHIM_REQUIRE_ROOT_TESTS=1 (`trials`); a
/// row that can run for some shims records the others as skipped (report.rs).
pub fn missing() -> Option<String> {
    if let Err(why) = prereq::missing(&["containerd", "ctr"]) {
        return Some(why);
    }
    let absent: Vec<String> = shims::configured()
        .into_iter()
        .map(|choice| choice.err().map(|(_, why)| why))
        .collect::<Option<_>>()?;
    Some(absent.join("; "))
}

/// Runs `body` once per configured shim, concurrently, and records each outcome (report.rs).
/// Panics if any shim failed. `body` returns `()` or a [`Ran`].
pub fn each_shim<R: Into<Ran> + Send + 'static>(row: &str, body: fn(&Shim) -> R) {
    let unrunnable = prereq::missing(&["containerd", "ctr"]).err();
    let runs: Vec<_> = shims::configured()
        .into_iter()
        .map(|choice| match (choice, &unrunnable) {
            (Ok(shim), None) => {
                let name = shim.name.to_string();
                let h = thread::Builder::new()
                    .name(format!("{row}-{name}"))
                    .spawn(move || body(&shim).into())
                    .expect("spawn row thread");
                (name, Ok(h))
            }
            (Ok(shim), Some(reason)) => (shim.name.to_string(), Err(reason.clone())),
            (Err((name, reason)), _) => (name, Err(reason)),
        })
        .collect();
    let mut failed = Vec::new();
    for (name, run) in runs {
        let outcome = match run {
            Err(reason) => prereq::cannot_run(reason),
            Ok(h) => match h.join() {
                Ok(ran) => Outcome::Ran(ran),
                Err(p) => Outcome::Fail(
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                ),
            },
        };
        report::record(row, &name, &outcome);
        if outcome.is_failure() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "{row} failed for: {}", failed.join(", "));
}
