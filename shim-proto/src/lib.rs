//! shim-proto: containerd 1.6 runtime v1 shim API (prost messages, ttrpc stubs) and Any helpers.
//!
//! The generated code lives in [`generated`]; the modules below re-export it under short paths:
//! [`shim`] (messages, `Shim` trait, `create_shim`, `ShimClient`), [`task_v2`] and [`task_v3`]
//! (messages, `Task` trait, `create_task`, `TaskClient`), [`types`], [`runc`],
//! [`runc_v1_options`], [`events`], [`events_ttrpc`], [`cgroups_v1`], [`cgroups_v2`] and
//! [`protobuf`].

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

/// `containerd.events`: task event messages (the v1 shim publishes only `TaskExit`).
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
