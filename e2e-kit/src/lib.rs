//! End-to-end harness shared by the shims' checklists: a private containerd per run (its own
//! temp dir, namespace and mount namespace), driven with `ctr`, its events captured, each
//! outcome recorded for `cargo xtask test`'s table. Test code: harness failures panic.
//!
//! What is generic lives here (processes, events, containerd of any version with a v1 or v2
//! runtime, rootfs, reports, prerequisites); what a checklist expects of a shim stays with it.

pub mod cgroup;
pub mod containerd;
pub mod ctr;
pub mod events;
pub mod prereq;
pub mod proc;
pub mod report;
pub mod rootfs;
pub mod sys;
