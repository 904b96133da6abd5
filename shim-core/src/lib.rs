//! shim-core: owns a container's processes and their IO through runc; no CLI, no ttrpc.

pub mod cgroup;
pub mod config;
pub mod error;
pub mod events;
pub(crate) mod exits;
pub mod io;
pub mod mount;
pub mod process;
pub mod runc;
pub mod service;
pub mod validate;

pub use config::Config;
pub use error::Error;
pub use events::{EventSink, TaskExit};
pub use service::{
    CheckpointRequest, CreateOptions, CreateRequest, ExecRequest, ExitInfo, Mount, PidInfo,
    ProcessState, Shim, Status,
};
