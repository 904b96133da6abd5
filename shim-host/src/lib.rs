//! shim-host: what both shim fronts run on: their binaries' startup, the ttrpc server and client,
//! the event publisher and the logrus-format logger; and what both translate alike: shim-core's
//! errors as ttrpc statuses, a request's options Anys, and the mounts, IO, status and exit time
//! every API carries. No shim API lives here: a front plugs its service into the server and names
//! its own messages, services and type URLs.

pub mod events;
pub mod goflags;
pub mod limits;
pub mod logrus;
pub mod options;
pub mod publisher;
pub mod server;
pub mod startup;
pub mod status;
pub mod stop;
pub mod types;
pub mod wire;
