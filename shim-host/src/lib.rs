//! shim-host: what both shim fronts run on: the ttrpc server and client, the event publisher and
//! the logrus-format logger. No shim API lives here: a front plugs its service into the server.

pub mod events;
pub mod goflags;
pub mod limits;
pub mod logrus;
pub mod publisher;
pub mod server;
pub mod status;
pub mod wire;
