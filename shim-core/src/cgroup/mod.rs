//! Cgroups of containers: find a process's cgroup (v1 or v2), read its stats, watch it for OOM kills;
//! and move a process into a named cgroup (the shim, for `shim_cgroup`).
//!
//! Under the task v2 API the shim, not containerd, answers Stats and reports OOM. This module
//! reads what containerd's github.com/containerd/cgroups reads, from the same files, with the same
//! tolerance for missing ones, into plain structs a front maps 1:1 onto
//! `io.containerd.cgroups.v1.Metrics` and `io.containerd.cgroups.v2.Metrics`.

mod error;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod files;
mod group;
mod host;
mod hugepages;
mod join;
mod membership;
mod mountinfo;
mod oom;
pub mod v1;
pub mod v2;

pub use error::CgroupError;
pub use group::{Cgroup, Metrics};
pub use host::{Host, Mode};
pub use join::join;
pub use oom::OomWatcher;
