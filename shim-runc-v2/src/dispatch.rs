//! Routing one ttrpc request to the Task service: service and method names, payload decode, call,
//! reply encode.

use shim_host::server::{self, Respond};
use shim_host::status::{self, Reply};

use crate::service::Service;

/// containerd 1.6, 1.7 and 2.x (bootstrap version 2) call this one.
pub const TASK_V2: &str = "containerd.task.v2.Task";
/// containerd 2.x with bootstrap version 3: the same messages under another name.
pub const TASK_V3: &str = "containerd.task.v3.Task";

/// Every method of the Task service (v2 and v3 alike).
pub const METHODS: [&str; 17] = [
    "State",
    "Create",
    "Start",
    "Delete",
    "Pids",
    "Pause",
    "Resume",
    "Checkpoint",
    "Kill",
    "Exec",
    "ResizePty",
    "CloseIO",
    "Update",
    "Wait",
    "Stats",
    "Connect",
    "Shutdown",
];

impl server::Service for Service {
    fn serves(&self, name: &str) -> bool {
        name == TASK_V2 || name == TASK_V3
    }

    fn call(&self, _service: &str, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
        respond.respond(route(self, method, payload));
    }
}

fn route(_svc: &Service, method: &str, _payload: &[u8]) -> Reply<Vec<u8>> {
    if METHODS.contains(&method) {
        // TODO(main, proto): the calls over the multi-container shim-core, with the v2 messages.
        return Err(status::status(
            ttrpc::Code::UNIMPLEMENTED,
            format!("{method}: not implemented yet in this shim"),
        ));
    }
    Err(status::unimplemented("method", method))
}
