//! Routing one ttrpc request to the Shim service: method name, payload decode, call, reply encode.

use prost::Message;
use shim_core::validate;
use shim_host::server::{self, Respond};
use shim_host::status::{self, to_status, Reply};
use shim_proto::protobuf::Empty;
use shim_proto::shim::{
    CheckpointTaskRequest, CloseIoRequest, CreateTaskRequest, DeleteProcessRequest,
    ExecProcessRequest, KillRequest, ListPidsRequest, ResizePtyRequest, StartRequest, StateRequest,
    UpdateTaskRequest, WaitRequest,
};

use crate::service::{wait_response, Service};

/// The one service this shim serves.
pub const SHIM_SERVICE: &str = "containerd.runtime.linux.shim.v1.Shim";

impl server::Service for Service {
    fn serves(&self, name: &str) -> bool {
        name == SHIM_SERVICE
    }

    fn call(&self, _service: &str, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
        call(self, method, payload, respond)
    }
}

/// Run `method` and answer through `respond`: at once for every method but Wait, whose answer
/// comes when the process exits (no thread waits for it).
pub fn call(svc: &Service, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
    match method {
        "Wait" => {
            let exit = decode::<WaitRequest>(payload).and_then(|r| svc.wait(r));
            server::answer_at_exit(exit, respond, wait_response);
        }
        _ => respond.respond(route(svc, method, payload)),
    }
}

fn route(svc: &Service, method: &str, payload: &[u8]) -> Reply<Vec<u8>> {
    match method {
        "State" => handle(payload, |r| svc.state(r)),
        "Create" => handle(payload, |r| svc.create(r)),
        "Start" => handle(payload, |r| svc.start(r)),
        "Delete" => handle(payload, |r| svc.delete(r)),
        "DeleteProcess" => handle(payload, |r| svc.delete_process(r)),
        "ListPids" => handle(payload, |r| svc.list_pids(r)),
        "Pause" => handle(payload, |r| svc.pause(r)),
        "Resume" => handle(payload, |r| svc.resume(r)),
        "Checkpoint" => handle(payload, |r| svc.checkpoint(r)),
        "Kill" => handle(payload, |r| svc.kill(r)),
        "Exec" => handle(payload, |r| svc.exec(r)),
        "ResizePty" => handle(payload, |r| svc.resize_pty(r)),
        "CloseIO" => handle(payload, |r| svc.close_io(r)),
        "ShimInfo" => handle(payload, |r| svc.shim_info(r)),
        "Update" => handle(payload, |r| svc.update(r)),
        _ => Err(status::unimplemented("method", method)),
    }
}

fn handle<Req, Resp>(payload: &[u8], f: impl FnOnce(Req) -> Reply<Resp>) -> Reply<Vec<u8>>
where
    Req: Message + Default + Named,
    Resp: Message,
{
    f(decode(payload)?).map(|resp| resp.encode_to_vec())
}

/// A request, decoded and with its id (if it has one) within `validate::MAX_ID_BYTES`: no
/// handler sees, and no message echoes, a huge id.
fn decode<Req: Message + Default + Named>(payload: &[u8]) -> Reply<Req> {
    let req = Req::decode(payload).map_err(status::undecodable)?;
    if let Some(id) = req.id() {
        validate::id_size("process", id).map_err(to_status)?;
    }
    Ok(req)
}

/// A request message's process id, if it names one.
trait Named {
    fn id(&self) -> Option<&str>;
}

macro_rules! named {
    (by id: $($with:ty),*; without: $($without:ty),*) => {
        $(impl Named for $with {
            fn id(&self) -> Option<&str> {
                Some(&self.id)
            }
        })*
        $(impl Named for $without {
            fn id(&self) -> Option<&str> {
                None
            }
        })*
    };
}

named!(
    by id: StateRequest, CreateTaskRequest, StartRequest, DeleteProcessRequest, ListPidsRequest,
        KillRequest, ExecProcessRequest, ResizePtyRequest, CloseIoRequest, WaitRequest;
    without: Empty, CheckpointTaskRequest, UpdateTaskRequest
);
