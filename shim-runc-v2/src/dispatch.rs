//! Routing one ttrpc request to the Task service: service and method names, payload decode, call,
//! reply encode.

use prost::Message;
use shim_core::validate;
use shim_host::server::{self, Respond};
use shim_host::status::{self, Reply};
use shim_proto::protobuf::Empty;
use shim_proto::task_v2::{
    CheckpointTaskRequest, CloseIoRequest, ConnectRequest, CreateTaskRequest, DeleteRequest,
    ExecProcessRequest, KillRequest, PauseRequest, PidsRequest, ResizePtyRequest, ResumeRequest,
    ShutdownRequest, StartRequest, StateRequest, StatsRequest, UpdateTaskRequest, WaitRequest,
};

use crate::refusal::refused;
use crate::service::{wait_response, Service, Shutdown};

/// containerd 1.6, 1.7 and 2.x (bootstrap version 2) call this one.
pub const TASK_V2: &str = "containerd.task.v2.Task";
/// containerd 2.x with bootstrap version 3: the same messages under another name.
pub const TASK_V3: &str = "containerd.task.v3.Task";

impl server::Service for Service {
    fn serves(&self, name: &str) -> bool {
        name == TASK_V2 || name == TASK_V3
    }

    fn call(&self, _service: &str, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
        call(self, method, payload, respond)
    }
}

/// Run `method` and answer through `respond`: at once for most methods; Wait when the process
/// exits (no thread waits for it); Shutdown before the daemon stops.
pub fn call(svc: &Service, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
    match method {
        "Wait" => {
            let exit = decode::<WaitRequest>(payload).and_then(|r| svc.wait(r));
            server::answer_at_exit(exit, respond, wait_response);
        }
        "Shutdown" => {
            let outcome = decode::<ShutdownRequest>(payload).and_then(|r| svc.shutdown(r));
            let stop = matches!(outcome, Ok(Shutdown::Stopping));
            respond.respond(outcome.map(|_| Empty {}.encode_to_vec()));
            if stop {
                svc.stop();
            }
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
        "Pids" => handle(payload, |r| svc.pids(r)),
        "Pause" => handle(payload, |r| svc.pause(r)),
        "Resume" => handle(payload, |r| svc.resume(r)),
        "Checkpoint" => handle(payload, |r| svc.checkpoint(r)),
        "Kill" => handle(payload, |r| svc.kill(r)),
        "Exec" => handle(payload, |r| svc.exec(r)),
        "ResizePty" => handle(payload, |r| svc.resize_pty(r)),
        "CloseIO" => handle(payload, |r| svc.close_io(r)),
        "Update" => handle(payload, |r| svc.update(r)),
        "Stats" => handle(payload, |r| svc.stats(r)),
        "Connect" => handle(payload, |r| svc.connect(r)),
        _ => Err(status::unimplemented("method", method)),
    }
}

fn handle<Req, Resp>(payload: &[u8], f: impl FnOnce(Req) -> Reply<Resp>) -> Reply<Vec<u8>>
where
    Req: Message + Default + Ids,
    Resp: Message,
{
    f(decode(payload)?).map(|resp| resp.encode_to_vec())
}

/// A request, decoded, with its ids within `validate::MAX_ID_BYTES`: no handler sees, and no
/// message echoes, a huge id.
fn decode<Req: Message + Default + Ids>(payload: &[u8]) -> Reply<Req> {
    let req = Req::decode(payload).map_err(status::undecodable)?;
    let (id, exec_id) = req.ids();
    validate::id_size("container", id).map_err(refused)?;
    if let Some(exec_id) = exec_id {
        validate::id_size("exec", exec_id).map_err(refused)?;
    }
    Ok(req)
}

/// A request's container id and, where it has one, exec id.
trait Ids {
    fn ids(&self) -> (&str, Option<&str>);
}

macro_rules! ids {
    (with exec: $($with:ty),*; without: $($without:ty),*) => {
        $(impl Ids for $with {
            fn ids(&self) -> (&str, Option<&str>) {
                (&self.id, Some(&self.exec_id))
            }
        })*
        $(impl Ids for $without {
            fn ids(&self) -> (&str, Option<&str>) {
                (&self.id, None)
            }
        })*
    };
}

ids!(
    with exec: StateRequest, StartRequest, DeleteRequest, KillRequest, ExecProcessRequest,
        ResizePtyRequest, CloseIoRequest, WaitRequest;
    without: CreateTaskRequest, PidsRequest, PauseRequest, ResumeRequest, CheckpointTaskRequest,
        UpdateTaskRequest, StatsRequest, ConnectRequest, ShutdownRequest
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_id_or_exec_id_is_refused_before_any_handler() {
        let big = "x".repeat(validate::MAX_ID_BYTES + 1);
        let req = StateRequest {
            id: big.clone(),
            exec_id: String::new(),
        };
        let Err(s) = decode::<StateRequest>(&req.encode_to_vec()) else {
            panic!("a huge id must be refused");
        };
        assert_eq!(s.code, 3);
        assert!(s.message.len() < 300);
        let req = KillRequest {
            id: "c1".into(),
            exec_id: big,
            ..Default::default()
        };
        assert!(decode::<KillRequest>(&req.encode_to_vec()).is_err());
    }

    #[test]
    fn garbage_is_invalid_argument() {
        let Err(s) = decode::<StateRequest>(&[0xff, 0xff, 0xff]) else {
            panic!("garbage must be refused");
        };
        assert_eq!(s.code, 3);
    }
}
