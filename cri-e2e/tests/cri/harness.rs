//! How each CRI test runs: once per shim (`E2E_CRI_SHIMS`, default `go,ours`), each in a private
//! node, its outcome recorded as `cri/<test>` for `cargo xtask test`'s table.

use std::env;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cri_e2e::node::{Node, Setup};
use e2e_kit::report::{self, Outcome, Ran};

fn shims() -> Vec<String> {
    env::var("E2E_CRI_SHIMS")
        .unwrap_or_else(|_| "go,ours".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Runs `body` for every shim, each on a node of its own, and records `cri/<test>`. Fails the
/// test when a shim fails.
pub fn both<R: Into<Ran>>(test: &str, body: impl Fn(&mut Node) -> R) {
    let mut failures = Vec::new();
    for label in shims() {
        let outcome = match Setup::find(&label) {
            Err(why) => e2e_kit::prereq::cannot_run(why),
            Ok(setup) => {
                let run = catch_unwind(AssertUnwindSafe(|| {
                    let mut node = Node::start(&setup, test);
                    body(&mut node).into()
                }));
                match run {
                    Ok(ran) => Outcome::Ran(ran),
                    Err(p) => Outcome::Fail(panic_text(p.as_ref())),
                }
            }
        };
        report::record(&format!("cri/{test}"), &label, &outcome);
        if outcome.is_failure() {
            failures.push(format!("[{label}] {outcome}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
