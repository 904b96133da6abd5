//! shim-proto: containerd's shim APIs (runtime v1, task v2/v3) as prost messages and ttrpc stubs.
//!
//! The generated code lives in [`generated`]; the modules below re-export it under short paths:
//! [`shim`] (messages, `Shim` trait, `create_shim`, `ShimClient`), [`task_v2`] and [`task_v3`]
//! (messages, `Task` trait, `create_task`, `TaskClient`), [`types`], [`runc`],
//! [`runc_v1_options`], [`events`], [`events_ttrpc`], [`cgroups_v1`], [`cgroups_v2`] and
//! [`protobuf`]. [`any`] packs and unpacks `Any`s the way Go's `typeurl` does, with the type URLs
//! and event topics of [`type_url`]; [`time`] converts timestamps.
//!
//! # The proto files
//!
//! Each file under `protos/` (line 1 says what it owns) is copied from a tagged upstream release,
//! keeping package names, message names and field numbers, which are all the wire depends on;
//! imports name this tree (`types/mount.proto`) instead of `github.com/containerd/...`.
//!
//! | file | package | module | taken from |
//! |------|---------|--------|------------|
//! | `runtime/v1/shim/v1/shim.proto` | `containerd.runtime.linux.shim.v1` | [`shim`] | containerd v1.6.20 `runtime/v1/shim/v1/` |
//! | `runtime/task/v2/shim.proto` | `containerd.task.v2` | [`task_v2`] | containerd v2.1.9 `api/runtime/task/v2/` (same in v1.7.24) |
//! | `runtime/task/v3/shim.proto` | `containerd.task.v3` | [`task_v3`] | containerd v2.1.9 `api/runtime/task/v3/` (same in v1.7.24) |
//! | `types/mount.proto` | `containerd.types` | [`types`] | containerd v1.6.20 `api/types/` (same fields in v2.1.9) |
//! | `types/task/task.proto` | `containerd.v1.types` | [`types`] | containerd v1.6.20 `api/types/task/` (same fields in v2.1.9) |
//! | `runctypes/runc.proto` | `containerd.linux.runc` | [`runc`] | containerd v1.6.20 `runtime/linux/runctypes/` |
//! | `types/runc/options/oci.proto` | `containerd.runc.v1` | [`runc_v1_options`] | containerd v2.1.9 `api/types/runc/options/` |
//! | `events/task.proto` | `containerd.events` | [`events`] | containerd v1.6.20 `api/events/` (same fields in v2.1.9) |
//! | `services/ttrpc/events/v1/events.proto` | `containerd.services.events.ttrpc.v1` | [`events_ttrpc`] | containerd v1.6.20 `api/services/ttrpc/events/v1/` |
//! | `cgroups/cgroup1/stats/metrics.proto` | `io.containerd.cgroups.v1` | [`cgroups_v1`] | containerd/cgroups v3.1.3 `cgroup1/stats/` |
//! | `cgroups/cgroup2/stats/metrics.proto` | `io.containerd.cgroups.v2` | [`cgroups_v2`] | containerd/cgroups v3.1.3 `cgroup2/stats/` |
//! | `google/protobuf/{any,empty,timestamp}.proto` | `google.protobuf` | [`protobuf`] | protobuf 3.21.12 |
//!
//! Differences between releases that matter to a reader of the wire:
//!
//! - task v3 re-declares all of v2's messages in its own package (it imports nothing from v2):
//!   the encodings are identical and only the ttrpc paths (`/containerd.task.v3.Task/…`) differ.
//! - `containerd.runc.v1.Options`: containerd 1.7 has `criu_path = 8`, which 2.x reserves (it
//!   decodes and is dropped); 2.x adds `task_api_address = 12` and `task_api_version = 13`.
//! - cgroup v2 `Metrics`: cgroups v3.1 (newer than the v3.0.5 in containerd v2.1.9) added
//!   `network = 9` and a few counters; old readers skip them as unknown fields.
//! - In containerd 2.x the events `Envelope` message moved to `containerd.types` (same fields);
//!   a message's name is not on the wire, so [`events_ttrpc::ForwardRequest`] is unchanged.

pub mod any;
pub mod time;
pub mod type_url;

/// Everything protoc generated, laid out by proto package (`containerd::…`, `google::protobuf`).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    unused_qualifications,
    rustdoc::all
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

/// `containerd.runtime.linux.shim.v1`: the Shim service messages, the server trait
/// [`shim::Shim`], [`shim::create_shim`] and the blocking [`shim::ShimClient`].
pub mod shim {
    pub use crate::generated::containerd::runtime::linux::shim::v1::*;
}

/// `containerd.task.v2`: the runtime v2 shim's Task service messages, the server trait
/// [`task_v2::Task`], [`task_v2::create_task`] and the blocking [`task_v2::TaskClient`].
/// [`task_v2::DeleteResponse`] is also what the shim binary's `delete` action prints on stdout.
pub mod task_v2 {
    pub use crate::generated::containerd::task::v2::*;
}

/// `containerd.task.v3`: task API v3, the same messages as [`task_v2`] re-declared in their own
/// package (same wire encoding); only the ttrpc service path `/containerd.task.v3.Task/…` differs.
pub mod task_v3 {
    pub use crate::generated::containerd::task::v3::*;
}

/// `containerd.types` and `containerd.v1.types`: [`types::Mount`], [`types::Status`],
/// [`types::ProcessInfo`].
pub mod types {
    pub use crate::generated::containerd::types::Mount;
    pub use crate::generated::containerd::v1::types::{Process, ProcessInfo, Status};
}

/// `containerd.linux.runc`: runc options carried in `Any`s.
pub mod runc {
    pub use crate::generated::containerd::linux::runc::*;
}

/// `containerd.runc.v1`: the `io.containerd.runc.v2` runtime's [`runc_v1_options::Options`]
/// (`CreateTaskRequest.options`), [`runc_v1_options::CheckpointOptions`] and
/// [`runc_v1_options::ProcessDetails`] (`ProcessInfo.info` in `PidsResponse`).
pub mod runc_v1_options {
    pub use crate::generated::containerd::runc::v1::*;
}

/// `containerd.events`: the task event messages; [`events::Event`] gives each its Any type URL
/// and topic. The v1 shim publishes only `TaskExit`; containerd's runtime v2 README lists all
/// the others but `TaskIO` (a part of `TaskCreate`) for a task API shim.
pub mod events {
    pub use crate::any::Event;
    pub use crate::generated::containerd::events::*;
}

/// `containerd.services.events.ttrpc.v1`: containerd's ttrpc `Events.Forward` service.
pub mod events_ttrpc {
    pub use crate::generated::containerd::services::events::ttrpc::v1::*;
}

/// `io.containerd.cgroups.v1`: cgroup v1 [`cgroups_v1::Metrics`], the `StatsResponse.stats` of a
/// runc shim on a cgroup v1 host.
pub mod cgroups_v1 {
    pub use crate::generated::io::containerd::cgroups::v1::*;
}

/// `io.containerd.cgroups.v2`: cgroup v2 [`cgroups_v2::Metrics`], the `StatsResponse.stats` of a
/// runc shim on a cgroup v2 host.
pub mod cgroups_v2 {
    pub use crate::generated::io::containerd::cgroups::v2::*;
}

/// `google.protobuf` well-known types, generated locally (not `prost-types`).
pub mod protobuf {
    pub use crate::generated::google::protobuf::{Any, Empty, Timestamp};
}

pub use any::{event_topic, pack, pack_json, unpack, AnyError};
