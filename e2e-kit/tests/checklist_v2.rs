//! The task v2 checklist through `ctr`, under containerd 1.6, 1.7 and 2.1, for Go's
//! `containerd-shim-runc-v2` of the same containerd and ours (`E2E_V2_SHIMS=go,ours`, default
//! `go`; ours = `<target>/debug/containerd-shim-rsrunc-v2`, skipped when not built).
//!
//! One private containerd per (version, shim) (e2e-kit), runtime `io.containerd.runc.v2`
//! resolved to the shim under test, runc through the logging wrapper (`--runc-binary`). Rows
//! use task ids of their own and run a few at a time; rows that stop containerd or need it
//! alone run last. 1.6 is the system's; 1.7 and 2.1 come from `CONTAINERD_1_7` and
//! `CONTAINERD_2_1` (`cargo xtask deps`), skipped when unset unless `SHIM_REQUIRE_ROOT_TESTS=1`.
//! Outcomes go to `$E2E_RESULTS` as `v2-<version>/<row>` per shim (`cargo xtask test` prints
//! them as a table). The test target is named `e2e_containerd_v2` (Cargo.toml): the e2e sweep
//! treats the leftovers of a running `e2e_containerd*` test as live.

#[path = "checklist_v2/mod.rs"]
mod v2;

use v2::rows::ROWS;
use v2::run::{checklist, missing};
use v2::shims::VERSIONS;

/// One trial per containerd version, ignored (not passed) when no shim can run under it.
fn main() {
    let trial = |name: &str, i: usize| {
        trials::trial(name, missing(&VERSIONS[i]).as_deref(), move || {
            checklist(&VERSIONS[i], ROWS)
        })
    };
    trials::run(vec![
        trial("v2_under_containerd_1_6", 0),
        trial("v2_under_containerd_1_7", 1),
        trial("v2_under_containerd_2_1", 2),
    ]);
}
