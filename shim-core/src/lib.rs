//! shim-core: owns containers' processes and their IO through runc; no CLI, no protocol.

pub mod cgroup;
pub mod config;
pub mod error;
pub mod events;
pub(crate) mod exits;
pub mod io;
pub mod mount;
pub mod process;
pub mod quote;
pub mod runc;
pub mod service;
pub mod single;
pub(crate) mod table;
pub mod types;
pub mod validate;
pub mod vital;

pub use config::Config;
pub use error::Error;
pub use events::{Event, EventSink, TaskExit};
pub use mount::Mount;
pub use service::Shim;
pub use single::SingleShim;
pub use types::{
    CheckpointRequest, CreateOptions, CreateRequest, ExecRequest, ExitInfo, PidInfo, ProcessState,
    Status,
};
